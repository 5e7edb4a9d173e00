"""The sine dataset and the atomic file writes (no TensorFlow needed)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sinecheck._io import atomic_write
from sinecheck.core.config import TrainConfig
from sinecheck.core.data import constant_baseline_mse, make_data


def test_reference_grid_matches_linspace() -> None:
    data = make_data(TrainConfig())
    x = np.linspace(0, 10, 1000)
    assert data.x_train.shape == (1000, 1) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[:, 0], x.astype(np.float32))
    np.testing.assert_array_equal(data.y_train[:, 0], np.sin(x).astype(np.float32))
    np.testing.assert_array_equal(data.y_train_clean[:, 0], np.sin(x))
    assert data.y_train_clean.dtype == np.float64


def test_held_out_grid_is_dense_and_disjoint() -> None:
    cfg = TrainConfig(n_points=101)
    data = make_data(cfg)
    train, test = data.x_train[:, 0].astype(np.float64), data.x_test[:, 0].astype(np.float64)
    assert test.size == 3 * 100
    assert test.min() > cfg.x_min and test.max() < cfg.x_max
    assert not np.isin(data.x_test[:, 0], data.x_train[:, 0]).any()
    # three points strictly inside every training interval
    counts = np.histogram(test, bins=train)[0]
    assert (counts == 3).all()
    np.testing.assert_allclose(data.y_test[:, 0], np.sin(data.x_test[:, 0].astype(np.float64)), atol=1e-6)


def test_noise_is_fixed_by_noise_seed_not_training_seed() -> None:
    cfg = TrainConfig(noise_std=0.1)
    a, b = make_data(cfg), make_data(cfg.replace(seed=5))
    np.testing.assert_array_equal(a.y_train, b.y_train)
    c = make_data(cfg.replace(noise_seed=1))
    assert not np.array_equal(a.y_train, c.y_train)
    resid = a.y_train[:, 0].astype(np.float64) - a.y_train_clean[:, 0]
    assert 0.08 < resid.std() < 0.12
    np.testing.assert_array_equal(a.y_train_clean, make_data(TrainConfig()).y_train_clean)


def test_arrays_are_read_only() -> None:
    data = make_data(TrainConfig(n_points=10))
    with pytest.raises(ValueError):
        data.x_train[0, 0] = 1.0


def test_constant_baseline() -> None:
    assert constant_baseline_mse(TrainConfig()) == pytest.approx(np.var(np.sin(np.linspace(0, 10, 1000))))
    assert 0.4 < constant_baseline_mse(TrainConfig()) < 0.5


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path) -> None:
    target = tmp_path / "out.bin"
    atomic_write(target, b"old")

    def explode(fh) -> None:
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]
