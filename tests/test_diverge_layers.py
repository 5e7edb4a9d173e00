"""`diverge` down to the layer and the op, on every model class: traces made in this process (`trace_fit`) of two
versions of a tiny model that differ in exactly one known layer (tests/diverge_models.py), compared step by step."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from sinecheck.checks.diverge import Identical, Parted, Stage, first_divergence
from sinecheck.checks.trace import Replay, Trace, trace_fit
from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import ModelSpec

MODELS = Path(__file__).with_name("diverge_models.py")


def _config(name: str, data: str | None = None, **changes: object) -> TrainConfig:
    return ModelSpec(f"{MODELS}:{name}", f"{MODELS}:{data or name}_data").config(epochs=1, **changes)


@functools.cache
def _trace(name: str) -> Trace:
    """The trace of tests/diverge_models.py's model `name` (``X_nudged`` trains on X's data), made once."""
    return trace_fit(_config(name, name.removesuffix("_nudged")))


def _parted(name: str) -> Parted:
    a, b = _trace(name), _trace(f"{name}_nudged")
    assert (a.replay == Replay.EXACT).all() and (b.replay == Replay.EXACT).all(), (a.replay_note, b.replay_note)
    d = first_divergence(a, b)
    assert isinstance(d, Parted), d.describe()
    return d


def test_the_one_nudged_layer_and_its_op_are_named() -> None:
    """Two runs that differ in exactly one layer's activation (a LeakyReLU slope one ULP apart): diverge names that
    layer, that its inputs were equal, the element and both values, and the op (LeakyRelu) whose inputs were equal
    but output not — in describe() and in the JSON."""
    d = _parted("dense")
    assert (d.stage, d.step, d.replay_exact, d.inferred) == (Stage.FORWARD_OUTPUT, 0, True, None)
    layer = d.layer
    assert layer is not None and (layer.name, layer.class_name, layer.tensor, layer.inputs_equal) == (
        "nudged",
        "Dense",
        "output",
        True,
    )
    assert layer.element is not None and len(layer.element) == 2 and layer.value_a != layer.value_b
    assert layer.value_a is not None and layer.value_a < 0  # LeakyReLU's slope acts on negative inputs only
    assert layer.op is not None and (layer.op.op_type, layer.op.name, layer.op.inputs_equal) == (
        "LeakyRelu",
        "nudged/LeakyRelu",
        True,
    )
    text = d.describe()
    assert "stage: forward output: layer 'nudged' (Dense) output[" in text
    assert "its inputs were equal: this layer's arithmetic is where the runs part" in text
    assert "first differing op: LeakyRelu 'nudged/LeakyRelu' (its inputs were equal)" in text
    record = d.to_dict()
    assert {k: record[k] for k in ("layer", "layer_class", "layer_inputs_equal", "op", "op_type")} == {
        "layer": "nudged",
        "layer_class": "Dense",
        "layer_inputs_equal": True,
        "op": "nudged/LeakyRelu",
        "op_type": "LeakyRelu",
    }
    assert record["layer_element"] == list(layer.element) and record["replay_exact"] is True


@pytest.mark.parametrize("name", ["embedding", "subclassed", "two_outputs", "batchnorm"])
def test_every_model_class_is_replayed_down_to_the_layer(name: str) -> None:
    """An Embedding (IndexedSlices gradients), a subclassed model returned unbuilt, a model with two outputs and two
    losses fed dicts by a shuffled tf.data pipeline, and one with BatchNormalization and Dropout (training-mode
    forward: the replay draws the same masks, so neither Dropout is blamed): every step replays bit for bit and the
    nudged layer is named, with its op."""
    d = _parted(name)
    assert d.stage is Stage.FORWARD_OUTPUT and d.layer is not None, d.describe()
    assert (d.layer.name, d.layer.inputs_equal) == ("nudged", True), d.describe()
    assert d.layer.op is not None and d.layer.op.op_type == "LeakyRelu", d.describe()


def test_a_difference_in_the_backward_pass_only_is_named_walking_backwards() -> None:
    """A layer whose forward is the identity on both sides and whose gradient differs by one ULP: every output and
    the loss agree, the stage is the gradient, and walking backwards names that layer (the gradient of its output
    was equal, the gradient of its input is not) and its backward op."""
    d = _parted("backward")
    assert d.stage is Stage.GRADIENT and d.layer is not None, d.describe()
    layer = d.layer
    assert (layer.name, layer.tensor, layer.inputs_equal) == ("nudged", "input gradient", True)
    assert layer.value_a is not None and layer.value_b is not None and layer.value_a != layer.value_b
    assert layer.op is not None and layer.op.op_type == "LeakyRelu" and str(layer.op.phase) == "backward"
    assert "the gradient of its output was equal: this layer's backward arithmetic" in d.describe()


def test_identical_runs_name_no_layer_and_the_trace_is_the_run_train_makes(tmp_path: Path) -> None:
    """The negative control: the same model trained twice is identical and names no layer.  The trace (batches
    captured in the train step, every step replayed and every variable set back) is bit for bit the run `train`
    makes, Dropout and BatchNormalization included; a saved trace loads with its layer calls, values and ops."""
    from sinecheck.engines.registry import train

    first = _trace("batchnorm")
    again = trace_fit(_config("batchnorm"))
    d = first_divergence(first, again)
    assert isinstance(d, Identical) and d.layer is None and d.to_dict()["layer"] is None
    result = train(_config("batchnorm"))
    assert np.array_equal(first.weights[-1], np.concatenate([w.ravel() for w in result.final_weights.values()]))
    assert np.float32(first.losses[-1]) == result.loss_history[-1]  # the epoch's logged loss
    loaded = Trace.load(first.save(tmp_path / "trace.npz"))
    assert loaded.calls == first.calls and np.array_equal(loaded.digests, first.digests)
    detail, back = first.details[0], loaded.details[0]
    assert back.ops == detail.ops and back.eager_matches == detail.eager_matches
    assert all(
        np.array_equal(x, y)
        for a, b in zip(detail.outputs, back.outputs, strict=True)
        for x, y in zip(a, b, strict=True)
    )
    assert first_divergence(Trace.load(_trace("batchnorm_nudged").save(tmp_path / "b.npz")), loaded).describe() == (
        first_divergence(_trace("batchnorm_nudged"), first).describe()
    )


def test_a_later_step_is_named_and_a_focused_trace_keeps_that_step() -> None:
    """Runs that part only at the second step (the nudged slope acts on the second batch only) are named there,
    down to the op; a trace focused on that step (what `diverge` makes when the first traces kept no ops for the
    step) keeps values and ops for it alone and names the same layer and op."""
    a = trace_fit(_config("late", shuffle=False))
    b = trace_fit(_config("late_nudged", "late", shuffle=False))
    d = first_divergence(a, b)
    assert d.step == 1 and d.layer is not None and d.layer.op is not None, d.describe()
    assert (d.layer.name, d.layer.op.op_type, d.layer.inputs_equal) == ("nudged", "LeakyRelu", True)
    focused = trace_fit(_config("late_nudged", "late", shuffle=False), focus_step=1)
    assert list(focused.details) == [1] and focused.details[1].ops
    assert np.array_equal(focused.weights, b.weights)  # the same run, other steps kept
    assert first_divergence(a, focused).describe() == d.describe()
