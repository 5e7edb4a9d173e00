"""`FitSpec`: a model spec's model together with the callbacks and ``fit`` arguments it is trained with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sinecheck.errors import ConfigError, ConfigTypeError

#: The ``fit`` arguments sinecheck sets itself (from the config and the data spec), never a FitSpec.
OWNED_FIT_ARGUMENTS: tuple[str, ...] = ("x", "y", "batch_size", "epochs", "shuffle", "verbose")


@dataclass(frozen=True)
class FitSpec:
    """What a model factory may return instead of a bare Keras model: the model and how ``fit`` trains it.

    ``FitSpec(model, callbacks=(EarlyStopping(...),), fit_kwargs={"validation_split": 0.2})``

    - `model`: the ``keras.Model`` (compiled by the factory or not);
    - `callbacks`: Keras callbacks passed to ``fit`` in addition to sinecheck's own (EarlyStopping,
      ReduceLROnPlateau, a learning-rate schedule, ...);
    - `fit_kwargs`: any other ``fit`` argument, passed as given (``class_weight``, ``validation_split``,
      ``validation_data``, ``sample_weight``, ...).  sinecheck owns ``x``, ``y``, ``batch_size``, ``epochs``,
      ``shuffle`` and ``verbose`` (from the config and the data spec); ``callbacks`` go in `callbacks`.

    A factory is called afresh for every run, so stateful callbacks start anew each time.
    """

    model: Any
    callbacks: Sequence[Any] = ()
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.callbacks, (str, bytes)) or not isinstance(self.callbacks, Sequence):
            raise ConfigTypeError(
                f"FitSpec.callbacks: invalid value {self.callbacks!r}; allowed: a tuple or list of Keras callbacks"
            )
        for callback in self.callbacks:
            if not callable(getattr(callback, "set_model", None)):
                raise ConfigTypeError(
                    f"FitSpec.callbacks: {callback!r} is not a Keras callback; allowed: keras.callbacks.Callback "
                    "instances"
                )
        if not isinstance(self.fit_kwargs, Mapping):
            raise ConfigTypeError(
                f"FitSpec.fit_kwargs: invalid value {self.fit_kwargs!r}; allowed: a dict of fit argument -> value"
            )
        for key in self.fit_kwargs:
            if not isinstance(key, str):
                raise ConfigTypeError(f"FitSpec.fit_kwargs: key {key!r} is not a str; allowed: fit argument names")
            if key == "callbacks":
                raise ConfigError(
                    "FitSpec.fit_kwargs: 'callbacks' given; allowed: callbacks in FitSpec.callbacks (sinecheck adds "
                    "its own)"
                )
            if key in OWNED_FIT_ARGUMENTS:
                raise ConfigError(
                    f"FitSpec.fit_kwargs: {key!r} is set by sinecheck (from the config or the data spec); allowed: "
                    f"any fit argument but {', '.join(OWNED_FIT_ARGUMENTS)}"
                )
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        object.__setattr__(self, "fit_kwargs", MappingProxyType(dict(self.fit_kwargs)))

    def describe(self) -> dict[str, list[str]]:
        """What the run record says about it: the callbacks' class names and the fit arguments' names."""
        return {
            "callbacks": [type(callback).__name__ for callback in self.callbacks],
            "fit_kwargs": sorted(self.fit_kwargs),
        }
