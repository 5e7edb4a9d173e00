"""Example models for ``--sinecheck-model`` / ``sinecheck ... --model`` (bring your own model).

Each factory returns an uncompiled Keras model; sinecheck compiles it with the config's optimizer and loss.
``lstm_sine`` is a small sine predictor of the kind the LEMON study used among its seed models.
"""

from __future__ import annotations


def _keras():
    import keras

    return keras


def dense_sine():
    """Dense(64, tanh) → Dense(1) on x: the presets' shape with another width and activation."""
    keras = _keras()
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(1)])


def lstm_sine():
    """LSTM(16) over a window of 8 past sine values → the next value."""
    keras = _keras()
    return keras.Sequential([keras.Input((8, 1)), keras.layers.LSTM(16), keras.layers.Dense(1)])


def sine_windows(window: int = 8, n_points: int = 1000):
    """(x, y) for `lstm_sine`: windows of sin over linspace(0, 10), each followed by its next value."""
    import numpy as np

    t = np.linspace(0, 10, n_points + window, dtype=np.float64)
    s = np.sin(t).astype(np.float32)
    x = np.stack([s[i:i + window] for i in range(n_points)])[..., None]
    y = s[window:window + n_points, None]
    return x, y
