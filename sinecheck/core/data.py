"""The training data of a config: the sine dataset (a training grid, a dense held-out grid between its points, and
clean targets) or what a data spec returns, kept exactly as given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import data_from_spec
from sinecheck.core.structure import DataForm, pipeline_form, sample_count_of

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


@dataclass(frozen=True)
class UserData:
    """What a data spec returned, exactly as given: no casts, no reshapes (arrays as read-only views).

    For `DataForm.ARRAYS` each of `x_train`, `y_train`, `sample_weight`, `x_test`, `y_test` is an array, a tuple
    of arrays or a dict name -> array (`sinecheck.core.structure.Arrays`); `sample_weight` may be None.  For a
    pipeline form `x_train` / `x_test` are the pipelines (batches of ``(x, y[, sample_weight])``) and the other
    fields None.  Without held-out data the held-out split is the training data itself (`held_out` False).
    """

    spec: str
    form: DataForm
    x_train: Any
    y_train: Any
    sample_weight: Any
    x_test: Any
    y_test: Any
    held_out: bool

    @property
    def y_train_clean(self) -> Any:
        """The training targets errors are measured against: the targets themselves (there is no clean truth)."""
        return self.y_train


#: A config's training data: the sine grid, or a data spec's.
TrainingData: TypeAlias = SineData | UserData


def make_data(config: TrainConfig) -> TrainingData:
    """Build the dataset a config describes.

    ``x = linspace(x_min, x_max, n_points)`` in float64, cast to float32 once (what Keras would do), and
    ``y = sin(x)`` plus optional Gaussian noise from `noise_seed`.  The held-out grid splits every
    training interval into four, keeping only the three interior points, so it never touches a training x.
    Errors are always measured against the clean sin(x).  A config with a data spec gets that function's
    data instead, as given (`spec_data`).
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


def spec_data(spec: str) -> UserData:
    """The data a data spec returns, as given (see `sinecheck.core.specs.data_from_spec` for the forms).

    Without held-out data the "held-out" split is the training data itself: there is nothing else to score.
    """
    parts = data_from_spec(spec)
    form = pipeline_form(parts[0])
    if form is not None:
        return UserData(spec, form, parts[0], None, None, parts[-1], None, held_out=len(parts) == 2)
    x, y = parts[:2]
    weight = parts[2] if len(parts) == 3 else None
    x_test, y_test = parts[2:] if len(parts) == 4 else (x, y)
    return UserData(spec, DataForm.ARRAYS, x, y, weight, x_test, y_test, held_out=len(parts) == 4)


def sample_count(config: TrainConfig) -> int:
    """How many training samples a config has: for a data spec, what its function returns (one pass over a
    pipeline)."""
    if config.data is None:
        return config.n_points
    return sample_count_of(make_data(config).x_train)


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
