"""Bring your own model: build a spec's Keras model and check it against the data before anything trains."""

from __future__ import annotations

from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import load_callable, spec_error
from sinecheck.keras.runtime import is_compiled, keras_module


def build_spec_model(config: TrainConfig, x: Any, *, noise: tuple[float, int] | None = None) -> Any:
    """The model of ``config.model`` (a `sinecheck.core.specs` factory), checked against the training inputs `x`.

    `noise` wraps it so a ``GaussianNoise`` layer perturbs its output in training (the injected-noise negative
    control); the wrapper adds no weights, so weight names and initial weights stay those of the model.
    """
    assert config.model is not None
    model = build_from_spec(config.model)
    check_fits(model, x, spec=config.model)
    if noise is None:
        return model
    keras = keras_module()
    inputs = keras.Input(shape=tuple(x.shape[1:]))
    outputs = keras.layers.GaussianNoise(noise[0], seed=noise[1])(model(inputs))
    wrapped = keras.Model(inputs, outputs)
    wrapped.sinecheck_inner = model
    if is_compiled(model):
        wrapped.compile(optimizer=model.optimizer.__class__.from_config(model.optimizer.get_config()), loss=model.loss)
    return wrapped


def build_from_spec(spec: str) -> Any:
    """Call a model spec's factory and check that it returned a Keras model."""
    factory = load_callable(spec, kind="model")
    try:
        model = factory()
    except Exception as exc:
        raise spec_error("model", spec, f"the factory raised {type(exc).__name__}: {exc}") from None
    keras = keras_module()
    if not isinstance(model, keras.Model):
        raise spec_error(
            "model", spec, f"the factory returned a {type(model).__name__}, not a Keras model ({keras.__name__}.Model)"
        )
    return model


def check_fits(model: Any, x: np.ndarray, *, spec: str) -> None:
    """Fail with a one-line error when the model's input shape cannot take `x` (batch axis aside)."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return
    if isinstance(shape, list):
        shape = shape[0]
    expected = tuple(shape[1:])
    got = tuple(x.shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got, strict=True)):
        raise spec_error(
            "model",
            spec,
            f"the model's input shape {tuple(shape)} does not fit the data: x has shape {x.shape} (samples first)",
        )
