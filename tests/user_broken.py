"""Model and data specs that cannot be used, one per way a user's spec goes wrong (tests/test_validate.py): each must be
one line naming the spec and the problem, before anything trains.  ``tiny`` and ``numbers`` are the good ones."""

from __future__ import annotations

import numpy as np

N = 64


def _keras():  # imported inside the factories: importing this file stays cheap
    import keras

    return keras


def tiny() -> object:
    """Dense(2) → Dense(1) on one number: the default sine data fits it."""
    keras = _keras()
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(2), keras.layers.Dense(1)])


def three_inputs_wide() -> object:
    """Takes 3 numbers per sample: the sine data (1 per sample) does not fit."""
    keras = _keras()
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])


def raises() -> object:
    raise RuntimeError("no GPU found\n(this factory needs CUDA)")


def features() -> object:
    """A functional model whose one input is called ``features``."""
    keras = _keras()
    inputs = keras.Input((4,), name="features")
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def sparse_classifier() -> object:
    keras = _keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def categorical_classifier() -> object:
    keras = _keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def custom_loss() -> object:
    """A loss that reads a label column the data does not have: only running it finds that."""
    keras = _keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=lambda y, p: keras.ops.mean((y[:, 5] - p[:, 0]) ** 2))
    return model


def _x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, 4)).astype(np.float32)


def numbers() -> tuple[np.ndarray, np.ndarray]:
    return _x(), np.zeros((N, 1), np.float32)


def keyed_wrong() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """x as a dict whose key is not the model's input name (``features``)."""
    return {"feats": _x()}, np.zeros((N, 1), np.float32)


def class_ids() -> tuple[np.ndarray, np.ndarray]:
    return _x(), np.arange(N) % 3


def one_hot() -> tuple[np.ndarray, np.ndarray]:
    return _x(), np.eye(3, dtype=np.float32)[np.arange(N) % 3]


def words() -> tuple[np.ndarray, np.ndarray]:
    """Strings where the model takes numbers."""
    return np.array([[f"w{i}"] for i in range(N)]), np.zeros((N, 1), np.float32)


def raising_data() -> tuple[np.ndarray, np.ndarray]:
    raise FileNotFoundError("data/train.csv")
