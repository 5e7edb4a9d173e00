"""Keras factories: initializer, optimizer and model built from a TrainConfig.

Every layer gets a *fresh* initializer instance (sharing one seeded instance between layers would give
them correlated weights), and the model is built on an explicit ``Input((1,))`` so its weights exist —
and can be recorded — before training starts.
"""

from __future__ import annotations

from typing import Any

from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.environment import keras_backend
from sinecheck.keras.runtime import keras_module

_INITIALIZER_CLASSES: dict[str, str] = {
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
    "random_normal": "RandomNormal",
    "truncated_normal": "TruncatedNormal",
    "random_uniform": "RandomUniform",
    "constant": "Constant",
    "zeros": "Zeros",
    "ones": "Ones",
}
_OPTIMIZER_CLASSES: dict[str, str] = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def build_initializer(spec: InitializerSpec) -> Any:
    """A new Keras initializer instance for `spec` (unseeded: it draws from the global Keras seed)."""
    keras = keras_module()
    return getattr(keras.initializers, _INITIALIZER_CLASSES[spec.name])(**spec.kwargs())


def build_optimizer(spec: OptimizerSpec) -> Any:
    """A new Keras optimizer for `spec`, with its learning rate and non-default parameters."""
    keras = keras_module()
    return getattr(keras.optimizers, _OPTIMIZER_CLASSES[spec.name])(**spec.kwargs())


def build_model(config: TrainConfig, *, noise: tuple[float, int] | None = None) -> Any:
    """An uncompiled ``Sequential``: ``Dense(u, activation)`` per hidden width, then ``Dense(1)``.

    `noise` = (stddev, seed) adds a ``GaussianNoise`` layer (active in training only, no weights) after the
    last hidden layer; with a seed drawn outside the global seed it is an injected source of nondeterminism.
    """
    keras = keras_module()
    layers: list[Any] = [keras.Input(shape=(1,))]
    for units in config.hidden_units:
        layers.append(
            keras.layers.Dense(
                units,
                activation=config.activation,
                kernel_initializer=build_initializer(config.kernel_initializer),
                bias_initializer=build_initializer(config.bias_initializer),
            )
        )
    if noise is not None:
        layers.append(keras.layers.GaussianNoise(noise[0], seed=noise[1]))
    layers.append(
        keras.layers.Dense(
            1,
            kernel_initializer=build_initializer(config.kernel_initializer),
            bias_initializer=build_initializer(config.bias_initializer),
        )
    )
    return keras.Sequential(layers)


def compile_model(model: Any, config: TrainConfig) -> Any:
    """Compile with the config's optimizer (its learning rate times ``lr_scale``) and loss.

    On TensorFlow ``jit_compile`` is explicit (`config.xla`), never Keras's "auto", whose meaning depends on
    the device.  JAX always compiles its train step with XLA (without it every op dispatches alone, ~70×
    slower here) and torch never does, so other backends keep "auto".
    """
    jit = config.xla if keras_backend() == "tensorflow" else "auto"
    model.compile(optimizer=build_optimizer(config.effective_optimizer), loss=config.loss, jit_compile=jit)
    return model


def model_weight_names(model: Any) -> list[str]:
    """Stable names for any model's weights, in ``get_weights()`` order: ``layer{index}.{class}/{weight}`` —
    independent of Keras's per-session layer numbering, so two processes (or Keras 2 and 3) name them alike."""
    model = getattr(model, "sinecheck_inner", model)
    owner: dict[int, str] = {}
    for i, layer in enumerate(model.layers):
        for w in layer.weights:
            owner.setdefault(id(w), f"layer{i}.{type(layer).__name__.lower()}")
    names: list[str] = []
    for w in model.weights:
        short = str(getattr(w, "name", "w")).split("/")[-1].split(":")[0]
        name = f"{owner.get(id(w), 'model')}/{short}"
        while name in names:  # two weights of one layer with the same short name
            name += "'"
        names.append(name)
    return names


def weight_names(config: TrainConfig) -> list[str]:
    """Stable names for the built-in Dense model's weights (``layer0/kernel`` …), independent of Keras's
    per-session layer numbering."""
    names: list[str] = []
    for i in range(len(config.hidden_units) + 1):
        names += [f"layer{i}/kernel", f"layer{i}/bias"]
    return names
