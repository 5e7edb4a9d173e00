"""Tiny models of every class `diverge` must take (tests/test_diverge_layers.py), each in two versions that differ in
exactly one known place: ``NAME`` and ``NAME_nudged``, whose layer ``NUDGED`` computes a LeakyReLU with a slope one
ULP away (an op attribute, so both versions run the same ops on the same inputs and only that op's output differs)
— or, for ``backward``, whose layer ``NUDGED`` is the identity forward and differs only in its gradient.  Data
functions: ``NAME_data``; 64 samples, two batches of 32 (arrays; a `tf.data` pipeline of dicts for ``two_outputs``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

N = 64
NUDGED = "nudged"
SLOPE = 0.2
SLOPE_NUDGED = float(np.nextafter(np.float32(SLOPE), np.float32(1)))  # one ULP above 0.2 in float32


def leaky(x: Any) -> Any:
    """LeakyReLU with slope `SLOPE`."""
    return tf.nn.leaky_relu(x, alpha=SLOPE)


def leaky_nudged(x: Any) -> Any:
    """LeakyReLU with slope `SLOPE_NUDGED`."""
    return tf.nn.leaky_relu(x, alpha=SLOPE_NUDGED)


def _leaky(nudged: bool) -> Any:
    return leaky_nudged if nudged else leaky


def _features(seed: int, width: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(N, width)).astype(np.float32)


def _target(x: np.ndarray) -> np.ndarray:
    return np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)


# -- exactly one known layer differs ------------------------------------------------------------------------------


def dense(nudged: bool = False) -> Any:
    """Dense(8, relu) → Dense(8, leaky, name NUDGED) → Dense(1); MSE, Adam."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="first"),
            keras.layers.Dense(8, activation=_leaky(nudged), name=NUDGED),
            keras.layers.Dense(1, name="last"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def dense_nudged() -> Any:
    return dense(nudged=True)


def dense_data() -> tuple[np.ndarray, np.ndarray]:
    x = _features(0)
    return x, _target(x)


# -- an Embedding (sparse IndexedSlices gradients) -----------------------------------------------------------------


def embedding(nudged: bool = False) -> Any:
    """int64 token ids → Embedding(20, 4) → GlobalAveragePooling1D → Dense(4, leaky, name NUDGED) → softmax(2);
    sparse categorical cross-entropy."""
    inputs = keras.Input((6,), dtype="int64")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4, name="tokens")(inputs))
    x = keras.layers.Dense(4, activation=_leaky(nudged), name=NUDGED)(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classes")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def embedding_nudged() -> Any:
    return embedding(nudged=True)


def embedding_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 20, size=(N, 6), dtype=np.int64)
    return tokens, (tokens.sum(axis=1) % 2).astype(np.int64)


# -- a subclassed model, returned unbuilt -------------------------------------------------------------------------


class Net(keras.Model):
    def __init__(self, nudged: bool) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu", name="hidden")
        self.nudged = keras.layers.Dense(8, activation=_leaky(nudged), name=NUDGED)
        self.head = keras.layers.Dense(1, name="head")

    def call(self, inputs: Any) -> Any:
        return self.head(self.nudged(self.hidden(inputs)) + 0.5)


def subclassed(nudged: bool = False) -> Any:
    """A ``keras.Model`` subclass (Dense → Dense(leaky, name NUDGED) → + 0.5 → Dense), unbuilt; MSE."""
    model = Net(nudged)
    model.compile(optimizer="adam", loss="mse")
    return model


def subclassed_nudged() -> Any:
    return subclassed(nudged=True)


def subclassed_data() -> tuple[np.ndarray, np.ndarray]:
    return dense_data()


# -- two outputs, two losses, dicts through a tf.data pipeline ---------------------------------------------------


def two_outputs(nudged: bool = False) -> Any:
    """One input, a shared Dense, two heads ``level`` (MSE) and ``NUDGED`` (leaky, MAE), loss weights 1 / 0.5."""
    inputs = keras.Input((4,), name="features")
    shared = keras.layers.Dense(8, activation="relu", name="shared")(inputs)
    level = keras.layers.Dense(1, name="level")(shared)
    other = keras.layers.Dense(1, activation=_leaky(nudged), name=NUDGED)(shared)
    model = keras.Model({"features": inputs}, {"level": level, NUDGED: other})
    model.compile(optimizer="adam", loss={"level": "mse", NUDGED: "mae"}, loss_weights={"level": 1.0, NUDGED: 0.5})
    return model


def two_outputs_nudged() -> Any:
    return two_outputs(nudged=True)


def two_outputs_data() -> Any:
    """A shuffled `tf.data` pipeline of dicts: inputs by input name, targets by output name."""
    x = _features(2)
    targets = {"level": _target(x), NUDGED: np.cos(x[:, :1])}
    return tf.data.Dataset.from_tensor_slices(({"features": x}, targets)).shuffle(N, seed=3).batch(32)


# -- BatchNormalization and Dropout (training-mode forward, random masks) -----------------------------------------


def batchnorm(nudged: bool = False) -> Any:
    """Dense → BatchNormalization → Dropout(0.5) → Dense(8, leaky, name NUDGED) → Dropout(0.25) → Dense(1); MSE."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="first"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(8, activation=_leaky(nudged), name=NUDGED),
            keras.layers.Dropout(0.25, name="drop_after"),
            keras.layers.Dense(1, name="last"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def batchnorm_nudged() -> Any:
    return batchnorm(nudged=True)


def batchnorm_data() -> tuple[np.ndarray, np.ndarray]:
    return dense_data()


# -- only the backward pass differs -------------------------------------------------------------------------------


class _GradientSlope(keras.layers.Layer):
    """The identity forward; backward, the incoming gradient through a LeakyReLU of slope 1 (the identity) or one
    ULP below 1 (negative gradients shrink by at most one ULP)."""

    def __init__(self, nudged: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slope = float(np.nextafter(np.float32(1), np.float32(0))) if nudged else 1.0

    def call(self, inputs: Any) -> Any:
        slope = self.slope

        @tf.custom_gradient
        def identity(x: Any) -> Any:
            return tf.identity(x), lambda dy: tf.nn.leaky_relu(dy, alpha=slope)

        return identity(inputs)


def backward(nudged: bool = False) -> Any:
    """Dense(8, tanh) → the gradient-slope layer (name NUDGED) → Dense(1); MSE."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="tanh", name="first"),
            _GradientSlope(nudged, name=NUDGED),
            keras.layers.Dense(1, name="last"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def backward_nudged() -> Any:
    return backward(nudged=True)


def backward_data() -> tuple[np.ndarray, np.ndarray]:
    return dense_data()


# -- runs that part only at the second step -----------------------------------------------------------------------


def late(nudged: bool = False) -> Any:
    """Dense(4, leaky, name NUDGED, all-ones kernel) → Dense(1): with ``late_data`` unshuffled, the first batch gives
    the leaky layer only positive inputs (the slope does not act), the second batch negative ones too."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4, activation=_leaky(nudged), kernel_initializer="ones", name=NUDGED),
            keras.layers.Dense(1, name="last"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def late_nudged() -> Any:
    return late(nudged=True)


def late_data() -> tuple[np.ndarray, np.ndarray]:
    """32 samples of positive features, then 32 of any sign."""
    x = _features(4)
    x[:32] = np.abs(x[:32])
    return x, _target(x)
