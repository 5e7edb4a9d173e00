"""First-divergence localization: the stage logic on synthetic traces, and real traces in worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinecheck.checks.diverge import DifferentModels, Identical, Parted, Stage, Trace, first_divergence
from sinecheck.checks.trace import Replay
from sinecheck.core.config import TrainConfig
from sinecheck.keras.replay import INPUT_GRADIENTS, OUTPUTS, LayerCall

NUDGED_PAIR = ("embedding", "embedding_nudged")  # tests/diverge_models.py
CFG = TrainConfig(hidden_units=(2,), n_points=8, batch_size=4, epochs=2)


def _trace(**changes: object) -> Trace:
    steps = np.array([(0, 0), (0, 1), (1, 0), (1, 1)])
    base = Trace(
        CFG,
        {"layer0/kernel": np.ones((1, 2), np.float32)},
        np.tile(np.arange(8), (2, 1)),
        steps,
        np.array([0.5, 0.4, 0.3, 0.2]),
        np.zeros((4, 7), np.float32),
        np.zeros((4, 3), np.float32),
        [("layer0/kernel", 2), ("layer0/bias", 2), ("layer1/kernel", 2), ("layer1/bias", 1)],
        [("m", 3)],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_identical_traces() -> None:
    d = first_divergence(_trace(), _trace())
    assert isinstance(d, Identical) and d.stage is Stage.IDENTICAL and d.step is None
    assert "bit for bit" in d.describe()
    keys = ["step", "epoch", "batch", "stage", "tensor", "index", "value_a", "value_b", "layer", "layer_class"]
    assert list(d.to_dict())[:10] == keys and list(d.to_dict())[-2:] == ["growth", "summary"]
    assert d.to_dict()["stage"] == "identical" and d.to_dict()["tensor"] is None and d.to_dict()["layer"] is None
    assert d.layer is None


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
    assert d.stage.startswith("gradient or optimizer slot") and (d.tensor, d.index) == ("m", 2)
    w = np.zeros((4, 7), np.float32)
    w[3, 6] = np.float32(2e-9)
    d = first_divergence(_trace(), _trace(weights=w))
    assert (d.stage, d.step, d.tensor, d.index) == ("weight update", 3, "layer1/bias", 0)
    assert d.growth.tolist() == [0.0, 0.0, 0.0, pytest.approx(2e-9)]


CALLS_LAYOUT = [("layer0/kernel", 2), ("layer0/bias", 2), ("layer1/kernel", 2), ("layer1/bias", 1)]
CALLS = [
    LayerCall("dense", "Dense", 1, 1, (0, 1)),
    LayerCall("dense_1", "Dense", 2, 1, (2, 3)),
    LayerCall("sequential", "Sequential", 0, 0),
]


def _replayed(**changes: object) -> Trace:
    """A trace whose 4 steps were replayed bit for bit: three layer calls (digests all 7), batch losses, gradients."""
    fields: dict[str, object] = {
        "batch_losses": np.full(4, 0.25),
        "gradients": np.zeros((4, 7), np.float32),
        "gradient_layout": CALLS_LAYOUT,
        "replay": np.full(4, Replay.EXACT, np.int8),
        "batches": np.full(4, 5, np.uint64),
        "calls": CALLS,
        "digests": np.full((4, 3, 4), 7, np.uint64),
    }
    fields.update(changes)
    return _trace(**fields)


def test_replayed_stages_are_named() -> None:
    """With the replay, a step's difference is pinned to a layer's forward output, the loss, a layer's gradient or
    the optimizer's slot update; the logged values alone could only say "gradient or slot"."""
    slots = np.zeros((4, 3), np.float32)
    slots[1, 0] = 1e-7
    weights = np.zeros((4, 7), np.float32)
    weights[1, 0] = 1e-7
    digests = np.full((4, 3, 4), 7, np.uint64)
    digests[1, 1:, OUTPUTS] = 8  # dense_1 and the model part, dense_1's inputs still equal
    d = first_divergence(_replayed(), _replayed(digests=digests, slots=slots, weights=weights))
    assert (d.stage, d.step) == ("forward output", 1) and d.layer is not None
    assert (d.layer.name, d.layer.class_name, d.layer.inputs_equal, d.layer.element) == ("dense_1", "Dense", True, None)
    assert "layer 'dense_1' (Dense) output; its inputs were equal: this layer's arithmetic" in d.describe()
    assert "values not kept at step 2" in d.describe() and "stage inferred" not in d.describe()
    record = d.to_dict()
    assert (record["layer"], record["layer_class"], record["layer_inputs_equal"], record["op"]) == (
        "dense_1",
        "Dense",
        True,
        None,
    )
    assert record["replay_exact"] is True and record["inferred"] is None
    losses = np.array([0.25, 0.2500001, 0.25, 0.25])
    d = first_divergence(_replayed(), _replayed(batch_losses=losses, slots=slots))
    assert (d.stage, d.step, d.tensor) == ("loss", 1, "batch loss")
    grads = np.zeros((4, 7), np.float32)
    grads[1, 6] = 1e-8
    d = first_divergence(_replayed(), _replayed(gradients=grads, slots=slots))
    assert (d.stage, d.tensor, d.layer.name if d.layer else None) == (
        "gradient",
        "layer 'dense_1' ∂loss/∂layer1/bias",
        "dense_1",
    )
    assert "∂loss/∂layer1/bias[0] = 0 vs 9.99999994e-09" in d.describe()
    assert "the gradient of its output was equal: this layer's backward arithmetic" in d.describe()
    digests = np.full((4, 3, 4), 7, np.uint64)
    digests[1, 0, INPUT_GRADIENTS] = 9  # dense's input gradient (no weight of its own changed)
    d = first_divergence(_replayed(), _replayed(digests=digests, slots=slots))
    assert (d.stage, d.layer.name if d.layer else None, d.layer.tensor if d.layer else None) == (
        "gradient",
        "dense",
        "input gradient",
    )
    d = first_divergence(_replayed(), _replayed(slots=slots))
    assert d.stage.startswith("optimizer slot update") and d.tensor == "m" and d.layer is None
    weights = np.zeros((4, 7), np.float32)
    weights[1, 6] = 1e-7  # only a non-trainable weight (say a moving variance) differs
    untrained = {"gradient_layout": CALLS_LAYOUT[:3], "gradients": np.zeros((4, 6), np.float32)}
    d = first_divergence(_replayed(**untrained), _replayed(weights=weights, **untrained))
    assert d.stage.startswith("non-trainable weight update") and d.tensor == "layer1/bias"
    batches = np.full(4, 5, np.uint64)
    batches[1] = 6
    assert first_divergence(_replayed(), _replayed(batches=batches, slots=slots)).stage == "batch data"
    none = np.array([2, 0, 2, 2], np.int8)  # not replayed on one side (another backend, XLA)
    d = first_divergence(_replayed(), _replayed(replay=none, slots=slots, replay_note="the jax backend"))
    assert d.stage.startswith("gradient or") and "stage inferred: side B not replayed (the jax backend)" in d.describe()
    inexact = np.array([2, 1, 2, 2], np.int8)
    d = first_divergence(_replayed(), _replayed(replay=inexact, digests=digests, slots=slots))
    assert d.stage == "gradient" and "side B's replay did not reproduce its step bit for bit" in d.describe()
    other = _replayed(weight_layout=[("layer0/kernel", 4), ("layer1/kernel", 3)])
    d = first_divergence(_replayed(), other)
    assert isinstance(d, DifferentModels) and d.stage == "different models" and "not comparable" in d.describe()
    assert d.to_dict()["tensor"] == d.detail and d.to_dict()["growth"] == [] and d.step is None


def test_the_replay_is_summarised_per_side() -> None:
    """The CLI's replay line and JSON record: steps replayed bit for bit per side, and why others were not."""
    from sinecheck.checks.diverge import replay_record, replay_summary

    partly = _replayed(replay=np.array([2, 1, 0, 0], np.int8), replay_note="the jax backend")
    assert replay_record(partly) == {"steps": 4, "replayed": 2, "exact": 1, "layer_calls": 3, "note": "the jax backend"}
    line = replay_summary(_replayed(), partly)
    assert line.startswith("replayed layer by layer (3 layer calls a step): A 4 of 4 steps bit for bit; ")
    assert line.endswith("B 1 of 4 steps bit for bit (1 more replayed, not bit for bit) (the jax backend)")


def test_two_configs_part_where_they_differ(tmp_path) -> None:
    """`diverge_pair`: another learning rate parts at the first weight update, another initializer before the
    first step, another width is not comparable step by step, a model with one layer changed parts in that layer —
    on any machine (traces saved in the worker processes, loaded here)."""
    pytest.importorskip("tensorflow")
    from sinecheck.checks.diverge import diverge_pair
    from sinecheck.core.config import OptimizerSpec
    from sinecheck.core.specs import ModelSpec
    from sinecheck.isolation.pool import WorkerPool
    from sinecheck.study.figures import growth_label, plot_growth

    config = TrainConfig(hidden_units=(8,), n_points=64, batch_size=16, epochs=1)
    with WorkerPool(workdir=tmp_path) as pool:  # the three pairs share two processes
        d = diverge_pair(config, config.replace(optimizer=OptimizerSpec("adam", 0.002)), pool=pool).divergence
        assert (d.stage, d.step) == ("weight update", 0)
        d = diverge_pair(config, config.replace(kernel_initializer="he_normal"), pool=pool).divergence
        assert isinstance(d, Parted) and d.stage == "initial weights" and d.tensor == "layer0/kernel"
        d = diverge_pair(config, config.replace(hidden_units=(4,)), pool=pool).divergence
        assert d.stage == "different models"
        # an Embedding model and its version with one layer's activation a ULP apart: named down to layer and op
        models = Path(__file__).with_name("diverge_models.py")
        a, b = (ModelSpec(f"{models}:{name}", f"{models}:embedding_data").config(epochs=1) for name in NUDGED_PAIR)
        d = diverge_pair(a, b, pool=pool).divergence
    assert d.layer is not None and d.layer.op is not None, d.describe()
    assert (d.stage, d.layer.name, d.layer.op.op_type) == ("forward output", "nudged", "LeakyRelu")
    assert "layer 'nudged' (Dense) output, op LeakyRelu 'nudged/LeakyRelu'" in growth_label(d)
    assert plot_growth(d, title="embedding").startswith(b"\x89PNG")


def test_real_traces_in_worker_processes(tmp_path) -> None:
    pytest.importorskip("tensorflow")
    from sinecheck.checks.diverge import trace_factor
    from sinecheck.checks.factors import factor_by_name
    from sinecheck.isolation.pool import WorkerPool
    from sinecheck.study.figures import plot_growth

    config = TrainConfig(hidden_units=(8,), n_points=72, batch_size=16, epochs=1)  # 5 steps, the last of 8 samples
    with WorkerPool(workdir=tmp_path) as pool:
        same = trace_factor(config, factor_by_name("fresh-process"), pool=pool).divergence
        a, b, shuffled, _ = trace_factor(config, factor_by_name("shuffle-off"), pool=pool)
    assert same.stage == "identical"
    assert (shuffled.stage, shuffled.step) == ("shuffle order", 0)
    assert len(a.steps) == len(b.steps) == 5 and a.weights.shape == (5, 8 * 3 + 1)
    assert plot_growth(shuffled, title="shuffle-off").startswith(b"\x89PNG")
    path = a.save(tmp_path / "a.npz")
    again = Trace.load(path)
    assert np.array_equal(again.weights, a.weights) and again.config == a.config
    assert np.array_equal(again.gradients, a.gradients) and again.gradient_layout == a.gradient_layout
    # every step was replayed bit for bit (the short last batch too), and the replay did not change the run it watched
    assert (a.replay == Replay.EXACT).all() and np.isfinite(a.batch_losses).all() and a.gradients.shape == (5, 25)
    from sinecheck.engines.registry import train

    final = train(config).final_weights
    assert np.array_equal(a.weights[-1], np.concatenate([w.ravel() for w in final.values()]))
