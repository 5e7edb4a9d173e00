"""The sine dataset: a training grid, a dense held-out grid between its points, and clean targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import data_from_spec

#: The held-out grid has this many points per training interval (none of them on the training grid).
HELD_OUT_PER_INTERVAL = 3


@dataclass(frozen=True)
class SineData:
    """Training inputs/targets (float32 columns, what Keras trains on) and the clean sin(x) targets in float64.

    Errors are measured against `y_train_clean` / `y_test`: sin of the exact float64 grid, so float32
    rounding of the targets is not counted as model error.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    y_train_clean: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def make_data(config: TrainConfig) -> SineData:
    """Build the dataset a config describes.

    ``x = linspace(x_min, x_max, n_points)`` in float64, cast to float32 once (what Keras would do), and
    ``y = sin(x)`` plus optional Gaussian noise from `noise_seed`.  The held-out grid splits every
    training interval into four, keeping only the three interior points, so it never touches a training x.
    Errors are always measured against the clean sin(x).  A config with a data spec gets that function's
    arrays instead (`spec_data`).
    """
    if config.data is not None:
        return spec_data(config.data)
    x = np.linspace(config.x_min, config.x_max, config.n_points)
    y_clean = np.sin(x)
    y = y_clean
    if config.noise_std > 0:
        rng = np.random.default_rng(config.noise_seed)
        y = y_clean + config.noise_std * rng.standard_normal(x.shape)
    fine = np.linspace(config.x_min, config.x_max, (HELD_OUT_PER_INTERVAL + 1) * (config.n_points - 1) + 1)
    x_test = np.delete(fine, np.s_[:: HELD_OUT_PER_INTERVAL + 1])
    return SineData(
        x_train=_column(x),
        y_train=_column(y),
        y_train_clean=_column(y_clean, np.float64),
        x_test=_column(x_test),
        y_test=_column(np.sin(x_test), np.float64),
    )


def spec_data(spec: str) -> SineData:
    """The arrays a data spec returns, as float32 training arrays; errors are measured against its y (float64).

    Without held-out arrays the "held-out" split is the training data itself: there is nothing else to score.
    """
    arrays = data_from_spec(spec)
    x, y = arrays[:2]
    x_test, y_test = arrays[2:] if len(arrays) == 4 else (x, y)
    return SineData(
        x_train=_frozen(x),
        y_train=_frozen(y),
        y_train_clean=_frozen(y, np.float64),
        x_test=_frozen(x_test),
        y_test=_frozen(y_test, np.float64),
    )


def sample_count(config: TrainConfig) -> int:
    """How many training samples a config has (for a data spec, what its function returns)."""
    return config.n_points if config.data is None else len(make_data(config).x_train)


def _frozen(values: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    out: np.ndarray = np.ascontiguousarray(values, dtype=dtype)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    out.setflags(write=False)
    return out


def _column(values: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    return _frozen(values.reshape(-1, 1), dtype)


def constant_baseline_mse(config: TrainConfig) -> float:
    """MSE of the best constant prediction (the mean of sin on the grid): the score a useless fit gets."""
    y = np.sin(np.linspace(config.x_min, config.x_max, config.n_points))
    return float(np.var(y))
