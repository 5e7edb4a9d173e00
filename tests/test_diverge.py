"""First-divergence localization: the stage logic on synthetic traces, and real traces in worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from sinecheck.config import TrainConfig
from sinecheck.diverge import Trace, first_divergence

CFG = TrainConfig(hidden_units=(2,), n_points=8, batch_size=4, epochs=2)


def _trace(**changes: object) -> Trace:
    steps = np.array([(0, 0), (0, 1), (1, 0), (1, 1)])
    base = Trace(CFG, {"layer0/kernel": np.ones((1, 2), np.float32)}, np.tile(np.arange(8), (2, 1)), steps,
                 np.array([0.5, 0.4, 0.3, 0.2]), np.zeros((4, 7), np.float32), np.zeros((4, 3), np.float32),
                 [("layer0/kernel", 2), ("layer0/bias", 2), ("layer1/kernel", 2), ("layer1/bias", 1)],
                 [("m", 3)])
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_identical_traces() -> None:
    d = first_divergence(_trace(), _trace())
    assert d.stage == "identical" and d.step is None and "bit for bit" in d.describe()


def test_each_stage_is_named() -> None:
    other_init = {"layer0/kernel": np.array([[1.0, 2.0]], np.float32)}
    assert first_divergence(_trace(), _trace(initial=other_init)).stage == "initial weights"
    orders = np.tile(np.arange(8), (2, 1))
    orders[1] = orders[1][::-1]
    w = np.zeros((4, 7), np.float32)
    w[2, 5] = 1e-3  # weights part in epoch 2, whose first batch holds other samples
    d = first_divergence(_trace(), _trace(orders=orders, weights=w))
    assert (d.stage, d.epoch, d.batch) == ("shuffle order", 1, 0)
    losses = np.array([0.5, 0.41, 0.3, 0.2])
    d = first_divergence(_trace(), _trace(losses=losses))
    assert (d.stage, d.step, d.value_a, d.value_b) == ("forward pass / loss", 1, 0.4, 0.41)
    slots = np.zeros((4, 3), np.float32)
    slots[1, 2] = 1e-7
    d = first_divergence(_trace(), _trace(slots=slots))
    assert d.stage.startswith("gradient") and (d.tensor, d.index) == ("m", 2)
    w = np.zeros((4, 7), np.float32)
    w[3, 6] = np.float32(2e-9)
    d = first_divergence(_trace(), _trace(weights=w))
    assert (d.stage, d.step, d.tensor, d.index) == ("weight update", 3, "layer1/bias", 0)
    assert d.growth.tolist() == [0.0, 0.0, 0.0, pytest.approx(2e-9)]


def test_real_traces_in_worker_processes(tmp_path) -> None:
    pytest.importorskip("tensorflow")
    from sinecheck.diverge import diverge_factor, plot_growth

    config = TrainConfig(hidden_units=(8,), n_points=64, batch_size=16, epochs=2)
    *_, same, _ = diverge_factor(config, "fresh-process", workdir=tmp_path)
    assert same.stage == "identical"
    a, b, shuffled, _ = diverge_factor(config, "shuffle-off", workdir=tmp_path)
    assert (shuffled.stage, shuffled.step) == ("shuffle order", 0)
    assert len(a.steps) == len(b.steps) == 8 and a.weights.shape == (8, 8 * 3 + 1)
    assert plot_growth(shuffled, title="shuffle-off").startswith(b"\x89PNG")
    path = a.save(tmp_path / "a.npz")
    again = Trace.load(path)
    assert np.array_equal(again.weights, a.weights) and again.config == a.config
