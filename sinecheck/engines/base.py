"""What every engine shares at the seam: its name, its call signature, the progress callback, and the refusal of
configs it cannot train."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.enums import TextEnum
from sinecheck.core.result import RunResult
from sinecheck.errors import ConfigError, EngineUnsupported

#: Called after each epoch with (epochs done, epochs in total).
Progress = Callable[[int, int], None]


class EngineName(TextEnum):
    """The ways to train a TrainConfig.  ``keras`` (Keras ``fit``) is the reference the others are checked against."""

    KERAS = "keras"
    FUSED = "fused"
    FUSED_XLA = "fused-xla"
    NUMPY = "numpy"
    NUMPY_FLOAT64 = "numpy-float64"


def parse_engine(
    value: object, *, field: str = "engine", allowed: Iterable[EngineName] = tuple(EngineName)
) -> EngineName:
    """The one check of an engine name (API, CLI, plugin, study specs): the EngineName, or a ConfigError that names
    `field`, the bad value and what is allowed."""
    choices = tuple(allowed)
    for name in choices:
        if value == name.value:
            return name
    raise ConfigError(f"{field}: invalid value {value!r}; allowed: {', '.join(c.value for c in choices)}")


class Engine(Protocol):
    """How the registry calls an engine: train `config` from scratch and return everything the run produced."""

    def __call__(
        self,
        config: TrainConfig,
        *,
        progress: Progress | None,
        initial_weights: Mapping[str, np.ndarray] | None,
        unseeded_noise: float,
        compiled_metrics: bool,
    ) -> RunResult: ...


#: Engines that train any Keras model (a model or data spec): Keras ``fit`` itself.  The others build the
#: Dense stack of a TrainConfig on the sine grid and nothing else.
ANY_MODEL_ENGINES: tuple[EngineName, ...] = (EngineName.KERAS,)


def refuse_custom(config: TrainConfig, engine: EngineName | str) -> None:
    """Raise EngineUnsupported when `engine` cannot train the config's model or data spec."""
    if config.custom and engine not in ANY_MODEL_ENGINES:
        spec = " and ".join(f"{k} spec {v!r}" for k, v in (("model", config.model), ("data", config.data)) if v)
        raise EngineUnsupported(
            f"engine {engine}: cannot train the {spec} (it builds Dense stacks on the sine data only); allowed: "
            f"{', '.join(ANY_MODEL_ENGINES)} — or ask for a fallback (train(..., fallback='keras'), "
            "--fallback-engine keras)"
        )
