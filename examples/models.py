"""Example models for ``--sinecheck-model`` / ``sinecheck ... --model`` (bring your own model).

Each factory returns an uncompiled Keras model; sinecheck compiles it with the config's optimizer and loss
(a factory may also compile its own).  The factories follow ``TF_USE_LEGACY_KERAS`` as ``tf.keras`` does, so
the tf-keras factor of the matrix can build them with Keras 2.  ``lstm_next`` with the ``sine_windows`` data
is a small next-value sine predictor of the kind the LEMON study used among its seed models; ``lstm_sine``
takes the default sine data, x → sin(x), reading x as a sequence of length 1.
"""

from __future__ import annotations

import os

WINDOW = 8


def _keras():
    if os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes"):
        import tf_keras

        return tf_keras
    import keras

    return keras


def dense_sine():
    """Dense(64, tanh) → Dense(1) on x: the presets' shape with another width and activation."""
    keras = _keras()
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(1)])


def lstm_sine():
    """x → sin(x) through LSTM(16) (x read as a sequence of one step) → Dense(1); takes the default data."""
    keras = _keras()
    return keras.Sequential(
        [keras.Input((1,)), keras.layers.Reshape((1, 1)), keras.layers.LSTM(16), keras.layers.Dense(1)]
    )


def lstm_next():
    """LSTM(16) over a window of `WINDOW` past sine values → the next value (use with ``sine_windows``)."""
    keras = _keras()
    return keras.Sequential([keras.Input((WINDOW, 1)), keras.layers.LSTM(16), keras.layers.Dense(1)])


def conv_next():
    """Conv1D(8, 3, relu) → Flatten → Dense(1) over the same windows (use with ``sine_windows``)."""
    keras = _keras()
    return keras.Sequential(
        [
            keras.Input((WINDOW, 1)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )


def sine_windows(window: int = WINDOW, n_points: int = 1000):
    """(x, y, x_held_out, y_held_out): windows of sin over [0, 10] each followed by its next value, and the
    same on the grid shifted by half a step (never a training point)."""
    import numpy as np

    def windows(t):
        s = np.sin(t).astype(np.float32)
        x = np.stack([s[i : i + window] for i in range(n_points)])[..., None]
        return x, s[window : window + n_points, None]

    step = 10 / (n_points + window - 1)
    t = np.linspace(0, 10, n_points + window)
    return (*windows(t), *windows(t + step / 2))
