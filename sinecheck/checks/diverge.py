"""Where did two runs part?  Compare two step-by-step traces of Keras ``fit`` (`sinecheck.checks.trace`): the first
(epoch, batch), the stage, and — where the step was replayed — the layer and the op at which they differ.

Comparing two traces step by step gives the first step where anything ``fit`` produced (logged loss, weights,
optimizer slots) differs; both runs entered that step with equal weights and slots, so the stage follows by
elimination:

- *initial weights* differ before any step; *shuffle order* / *batch data*: the step's batch holds other samples;
- *forward output*: a layer call's output differs in the replay of the step — named down to the first layer
  (inner before outer) whose output differs, whether its inputs were still equal, and the first differing op;
- *loss*: every layer output agrees but the loss does not;
- *gradient*: a gradient differs — named down to the first layer, walking backwards, whose backward arithmetic
  differs, and its first differing op;
- *forward pass / loss*: the loss ``fit`` logged differs although the replay agrees (or was not made);
- *optimizer slot update*: outputs, loss and gradients agree but a slot (Adam's moments) does not;
- *weight update*: all of that agrees but the weights do not (the update arithmetic itself); *non-trainable weight
  update* when only non-trainable weights differ (a layer's own update, e.g. BatchNormalization's moving statistics).

When both sides' replays reproduced their step bit for bit, the replay *is* the step and the stage is measured;
otherwise (a replay that did not reproduce its step, or none) the describe line says plainly that the stage is
inferred, and why.  It also gives how the difference grows afterwards (max |Δw| per step).  Traces of two
environments (oneDNN on/off, thread counts, Keras 2 vs 3, another venv's TensorFlow/Keras, ...) are made in worker
processes (`sinecheck.isolation`).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sinecheck.checks.factors import Factor, Side, factor_by_name
from sinecheck.checks.layer_diff import LayerDifference, backward_difference, comparable, forward_difference
from sinecheck.checks.trace import Layout, Replay, Trace, trace_fit
from sinecheck.core.compare import json_float
from sinecheck.core.config import TrainConfig, changed_fields
from sinecheck.core.enums import TextEnum
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.pool import WorkerPool
from sinecheck.isolation.protocol import RequestKind
from sinecheck.keras.replay import OUTPUTS

__all__ = [
    "DifferentModels",
    "Divergence",
    "Identical",
    "LayerDifference",
    "Parted",
    "Stage",
    "Trace",
    "TracedPair",
    "TrainingStep",
    "diverge_factor",
    "diverge_pair",
    "first_divergence",
    "replay_record",
    "replay_summary",
    "trace_factor",
    "trace_fit",
    "trace_sides",
]


class Stage(TextEnum):
    """Where two traces part (see the module doc for how each stage is told apart)."""

    IDENTICAL = "identical"
    DIFFERENT_MODELS = "different models"
    INITIAL_WEIGHTS = "initial weights"
    SHUFFLE_ORDER = "shuffle order"
    BATCH_DATA = "batch data"
    FORWARD_OUTPUT = "forward output"
    LOSS = "loss"
    GRADIENT = "gradient"
    FORWARD_PASS_OR_LOSS = "forward pass / loss"
    SLOT_UPDATE = "optimizer slot update (the replayed outputs, loss and gradients agree)"
    GRADIENT_OR_SLOT = "gradient or optimizer slot (seen in the slot)"
    WEIGHT_UPDATE = "weight update"
    STATE_UPDATE = "non-trainable weight update (a layer's own update, e.g. BatchNormalization's moving statistics)"
    GRADIENT_OR_WEIGHT_UPDATE = "gradient or weight update (no comparable optimizer slots)"


#: The JSON fields of every divergence, in order (a variant sets those it knows; the others are None).
FIELDS = (
    "step",
    "epoch",
    "batch",
    "stage",
    "tensor",
    "index",
    "value_a",
    "value_b",
    "layer",
    "layer_class",
    "layer_tensor",
    "layer_element",
    "layer_inputs_equal",
    "op",
    "op_type",
    "op_inputs_equal",
    "replay_exact",
    "inferred",
)


class Divergence(abc.ABC):
    """How two traces compare: `Identical`, `DifferentModels`, or `Parted` at a first difference.

    `growth` is how far apart the weights drift: max |Δw| after each step."""

    stage: Stage
    growth: np.ndarray

    @property
    def step(self) -> int | None:
        """The index (into the steps) of the first step that differs; None when no step does."""
        return None

    @property
    def layer(self) -> LayerDifference | None:
        """The first layer whose replays differ, where the stage is one of the replay's; else None."""
        return None

    @abc.abstractmethod
    def describe(self) -> str: ...

    def _fields(self) -> dict[str, Any]:
        """The JSON fields a variant sets besides the stage (the others are None)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The divergence as JSON: `FIELDS`, the growth per step and the describe line."""
        fields: dict[str, Any] = dict.fromkeys(FIELDS)
        fields.update(self._fields())
        fields["stage"] = self.stage.value
        return {**fields, "growth": [json_float(float(g)) for g in self.growth], "summary": self.describe()}


@dataclass(frozen=True, eq=False)
class Identical(Divergence):
    """Every step's loss, weights and optimizer slots agree bit for bit."""

    growth: np.ndarray
    stage: Stage = field(default=Stage.IDENTICAL, init=False)

    def describe(self) -> str:
        return f"identical: every step's loss, weights and optimizer slots agree bit for bit ({len(self.growth)} steps)"


@dataclass(frozen=True, eq=False)
class DifferentModels(Divergence):
    """The traces are of models with other weight shapes: not comparable step by step."""

    detail: str  # the first weight shapes of both sides
    growth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stage: Stage = field(default=Stage.DIFFERENT_MODELS, init=False)

    def describe(self) -> str:
        return f"the two runs train different models, not comparable step by step ({self.detail})"

    def _fields(self) -> dict[str, Any]:
        return {"tensor": self.detail}


@dataclass(frozen=True)
class TrainingStep:
    """A step of a trace: its index, and the (0-based) epoch and batch it trained."""

    step: int
    epoch: int
    batch: int


@dataclass(frozen=True, eq=False)
class Parted(Divergence):
    """The first difference: at which step (None: before the first one), in which stage, and the element of
    which tensor differs most there, with both sides' values (None where not kept); for a stage of the replay, the
    first layer (and op) where the replays differ; whether both replays reproduced their step bit for bit, and
    when the stage is inferred rather than measured, why."""

    stage: Stage
    at: TrainingStep | None
    tensor: str
    index: int | None
    value_a: float | None
    value_b: float | None
    growth: np.ndarray
    found_layer: LayerDifference | None = None
    replay_exact: bool | None = None  # None: the step was not replayed on both sides
    inferred: str | None = None  # why the stage is inferred rather than measured

    @property
    def step(self) -> int | None:
        return None if self.at is None else self.at.step

    @property
    def epoch(self) -> int | None:
        return None if self.at is None else self.at.epoch

    @property
    def batch(self) -> int | None:
        return None if self.at is None else self.at.batch

    @property
    def layer(self) -> LayerDifference | None:
        return self.found_layer

    def describe(self) -> str:
        at = self.at
        where = (
            "before the first step"
            if at is None
            else f"at epoch {at.epoch + 1}, batch {at.batch + 1} (step {at.step + 1})"
        )
        text = f"first divergence {where}, stage: {self.stage}"
        if self.found_layer is not None:
            text += f": {self.found_layer.describe()}"
        elif self.value_a is not None and self.value_b is not None:
            where_in = self.tensor if self.index is None else f"{self.tensor}[{self.index}]"
            delta = abs(self.value_a - self.value_b)
            text += f": {where_in} = {self.value_a:.9g} vs {self.value_b:.9g} (|Δ| {delta:.3g})"
        else:
            text += f": {self.tensor}"
        if self.inferred:
            text += f" [stage inferred: {self.inferred}]"
        grown = f"; max |Δw| grows to {np.nanmax(self.growth):.3g} by the last step" if len(self.growth) else ""
        return text + grown

    def _fields(self) -> dict[str, Any]:
        found = self.found_layer
        op = None if found is None else found.op
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "tensor": self.tensor,
            "index": self.index,
            "value_a": json_float(self.value_a),
            "value_b": json_float(self.value_b),
            "layer": None if found is None else found.name,
            "layer_class": None if found is None else found.class_name,
            "layer_tensor": None if found is None else found.tensor,
            "layer_element": None if found is None or found.element is None else list(found.element),
            "layer_inputs_equal": None if found is None else found.inputs_equal,
            "op": None if op is None else op.name,
            "op_type": None if op is None else op.op_type,
            "op_inputs_equal": None if op is None else op.inputs_equal,
            "replay_exact": self.replay_exact,
            "inferred": self.inferred,
        }


@dataclass(frozen=True)
class Difference:
    """The element where two flattened arrays differ most: its tensor, index in that tensor and both values."""

    tensor: str
    index: int
    value_a: float
    value_b: float


def _locate(layout: Layout, flat_index: int) -> tuple[str, int]:
    offset = 0
    for name, size in layout:
        if flat_index < offset + size:
            return name, flat_index - offset
        offset += size
    return "?", flat_index


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality (NaN equals NaN, -0.0 does not equal 0.0)."""
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _first_diff(a: np.ndarray, b: np.ndarray, layout: Layout) -> Difference:
    diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
    i = int(diff[np.argmax(np.nan_to_num(np.abs(a[diff].astype(np.float64) - b[diff]), nan=np.inf))])
    name, local = _locate(layout, i)
    return Difference(name, local, float(a[i]), float(b[i]))


def _replayed(a: Trace, b: Trace, k: int) -> bool:
    """Whether both traces replayed step `k` with the same weight layout."""
    return a.replayed(k) and b.replayed(k) and a.gradient_layout == b.gradient_layout


def _inferred(a: Trace, b: Trace, k: int) -> str | None:
    """Why a stage found at step `k` is inferred rather than measured (None: both replays reproduced the step)."""
    missing = [side for side, t in (("A", a), ("B", b)) if not t.replayed(k)]
    if missing:
        note = a.replay_note if "A" in missing else b.replay_note
        sides = " and ".join(missing)
        return f"side {sides} not replayed" + (f" ({note})" if note else "")
    inexact = [side for side, t in (("A", a), ("B", b)) if t.replay[k] != Replay.EXACT]
    if inexact:
        return (
            f"side {' and '.join(inexact)}'s replay did not reproduce its step bit for bit (recording each layer's "
            "output can keep TensorFlow from fusing ops across a layer boundary, e.g. a residual Add after a Dense)"
        )
    return None


def _replay_stage(a: Trace, b: Trace, k: int, at: TrainingStep, growth: np.ndarray) -> Parted | None:
    """The stage of the replay at step `k` where the replays differ (forward, loss, gradient), or None."""
    exact = bool(a.replay[k] == Replay.EXACT and b.replay[k] == Replay.EXACT)
    inferred = _inferred(a, b, k)
    if a.batches[k] != b.batches[k]:
        return Parted(
            Stage.BATCH_DATA, at, "the step's batch (its digest)", None, None, None, growth, None, exact, inferred
        )
    forward = forward_difference(a, b, k)
    if forward is not None:
        return Parted(
            Stage.FORWARD_OUTPUT,
            at,
            f"layer '{forward.name}' output",
            None,
            forward.value_a,
            forward.value_b,
            growth,
            forward,
            exact,
            inferred,
        )
    if not comparable(a, b) and a.calls and b.calls and a.digests[k, -1, OUTPUTS] != b.digests[k, -1, OUTPUTS]:
        return Parted(
            Stage.FORWARD_OUTPUT,
            at,
            "model output on the batch (the sides' layer calls differ)",
            None,
            None,
            None,
            growth,
            None,
            exact,
            inferred,
        )
    if not _bits_equal(a.batch_losses[k : k + 1], b.batch_losses[k : k + 1]):
        loss_a, loss_b = float(a.batch_losses[k]), float(b.batch_losses[k])
        return Parted(Stage.LOSS, at, "batch loss", 0, loss_a, loss_b, growth, None, exact, inferred)
    backward = backward_difference(a, b, k)
    if backward is not None:
        return Parted(
            Stage.GRADIENT,
            at,
            f"layer '{backward.name}' {backward.tensor}",
            None,
            backward.value_a,
            backward.value_b,
            growth,
            backward,
            exact,
            inferred,
        )
    if not _bits_equal(a.gradients[k], b.gradients[k]):
        d = _first_diff(a.gradients[k], b.gradients[k], a.gradient_layout)
        return Parted(
            Stage.GRADIENT, at, f"∂loss/∂{d.tensor}", d.index, d.value_a, d.value_b, growth, None, exact, inferred
        )
    return None


def first_divergence(a: Trace, b: Trace) -> Divergence:
    """Compare two traces of the same model (see the module doc for how the stage is decided)."""
    if [size for _, size in a.weight_layout] != [size for _, size in b.weight_layout]:
        shapes = ", ".join(f"{n} {s}" for n, s in a.weight_layout[:3])
        other = ", ".join(f"{n} {s}" for n, s in b.weight_layout[:3])
        return DifferentModels(f"A: {shapes} … vs B: {other} …")
    steps = min(len(a.steps), len(b.steps))
    growth = np.max(np.abs(a.weights[:steps].astype(np.float64) - b.weights[:steps]), axis=1) if steps else np.zeros(0)
    for name in a.initial:
        if name in b.initial and not np.array_equal(a.initial[name], b.initial[name]):
            flat_a, flat_b = a.initial[name].ravel(), b.initial[name].ravel()
            i = int(np.argmax(np.abs(flat_a.astype(np.float64) - flat_b)))
            return Parted(Stage.INITIAL_WEIGHTS, None, name, i, float(flat_a[i]), float(flat_b[i]), growth)
    bs_a, bs_b = a.config.batch_size, b.config.batch_size
    slots_comparable = [size for _, size in a.slot_layout] == [size for _, size in b.slot_layout]
    for k in range(steps):
        epoch, batch = (int(v) for v in a.steps[k])
        same_loss = a.losses[k] == b.losses[k] or (np.isnan(a.losses[k]) and np.isnan(b.losses[k]))
        same_slots = not slots_comparable or _bits_equal(a.slots[k], b.slots[k])
        same_weights = _bits_equal(a.weights[k], b.weights[k])
        if same_loss and same_slots and same_weights:
            continue
        at = TrainingStep(k, epoch, batch)
        if epoch < min(len(a.orders), len(b.orders)):
            batch_a = np.sort(a.orders[epoch][batch * bs_a : (batch + 1) * bs_a])
            batch_b = np.sort(b.orders[epoch][batch * bs_b : (batch + 1) * bs_b])
            if not np.array_equal(batch_a, batch_b):
                j = int(np.flatnonzero(a.orders[epoch] != b.orders[epoch])[0])
                order_a, order_b = float(a.orders[epoch][j]), float(b.orders[epoch][j])
                return Parted(Stage.SHUFFLE_ORDER, at, f"epoch {epoch + 1} order", j, order_a, order_b, growth)
        replayed = _replayed(a, b, k)
        if replayed:
            parted = _replay_stage(a, b, k, at, growth)
            if parted is not None:
                return parted
        exact = bool(a.replay[k] == Replay.EXACT and b.replay[k] == Replay.EXACT) if replayed else None
        inferred = _inferred(a, b, k)
        if not same_loss:
            loss_a, loss_b = float(a.losses[k]), float(b.losses[k])
            return Parted(
                Stage.FORWARD_PASS_OR_LOSS, at, "logged loss", None, loss_a, loss_b, growth, None, exact, inferred
            )
        if not same_slots:
            stage = Stage.SLOT_UPDATE if replayed else Stage.GRADIENT_OR_SLOT
            d = _first_diff(a.slots[k], b.slots[k], a.slot_layout)
            return Parted(stage, at, d.tensor, d.index, d.value_a, d.value_b, growth, None, exact, inferred)
        comparable_slots = a.slot_layout and slots_comparable
        stage = Stage.WEIGHT_UPDATE if comparable_slots else Stage.GRADIENT_OR_WEIGHT_UPDATE
        d = _first_diff(a.weights[k], b.weights[k], a.weight_layout)
        if replayed and not _trainable_differs(a, b, k):
            stage = Stage.STATE_UPDATE
        return Parted(stage, at, d.tensor, d.index, d.value_a, d.value_b, growth, None, exact, inferred)
    return Identical(growth)


def _trainable_differs(a: Trace, b: Trace, k: int) -> bool:
    """Whether a trainable weight differs after step `k` (the replay's gradient layout names the trainable ones)."""
    trainable = {name for name, _ in a.gradient_layout}
    offset = 0
    for name, size in a.weight_layout:
        if name in trainable and not _bits_equal(
            a.weights[k][offset : offset + size], b.weights[k][offset : offset + size]
        ):
            return True
        offset += size
    return False


def replay_record(trace: Trace) -> dict[str, Any]:
    """How a trace's steps were replayed, for JSON: steps, steps replayed, replays bit for bit the step ``fit``
    made, layer calls per step, and why steps were not replayed (None when all were)."""
    return {
        "steps": len(trace.steps),
        "replayed": int(np.count_nonzero(trace.replay != Replay.NONE)),
        "exact": int(np.count_nonzero(trace.replay == Replay.EXACT)),
        "layer_calls": len(trace.calls),
        "note": trace.replay_note,
    }


def replay_summary(a: Trace, b: Trace) -> str:
    """One line: how many steps each side replayed layer by layer, and how many bit for bit as ``fit`` made them."""
    parts = []
    for side, trace in (("A", a), ("B", b)):
        record = replay_record(trace)
        text = f"{side} {record['exact']} of {record['steps']} steps bit for bit"
        if record["replayed"] != record["exact"]:
            text += f" ({record['replayed'] - record['exact']} more replayed, not bit for bit)"
        if record["note"]:
            text += f" ({record['note']})"
        parts.append(text)
    layers = max(len(a.calls), len(b.calls))
    return f"replayed layer by layer ({layers} layer calls a step): " + "; ".join(parts)


class TracedPair(NamedTuple):
    """Two traces, where they part, and how long tracing them took (worker start-up included)."""

    a: Trace
    b: Trace
    divergence: Divergence
    elapsed_s: float


def trace_sides(
    config: TrainConfig, sides: Sequence[Side], *, pool: WorkerPool, focus_step: int | None = None
) -> list[Trace]:
    """Trace each matrix `Side` of `config`, in order, in a worker process of its environment.  A side that starts
    from another side's initial weights gets them from that side's trace (traced first if it is not listed).  Sides
    in processes of their own that start from nothing of another side's are traced at the same time.  With
    `focus_step`, each trace keeps values and ops for that step only (see `trace_fit`)."""
    workers = [(side.environment, side.instance) for side in sides]
    if len(set(workers)) == len(workers) and all(side.initial_from is None for side in sides):
        with ThreadPoolExecutor(max_workers=len(sides)) as ex:
            return list(ex.map(lambda side: _trace_side(pool, config, side, focus_step=focus_step), sides))
    done: dict[Side, Trace] = {}
    out = []
    for side in sides:
        initial_path = None
        if side.initial_from is not None:
            source = done.get(side.initial_from) or _trace_side(pool, config, side.initial_from, focus_step=focus_step)
            done.setdefault(side.initial_from, source)
            initial_path = source.save(
                Path(pool.get(side.environment, side.instance).workdir) / f"trace-initial-{time.perf_counter_ns()}.npz"
            )
        trace = _trace_side(pool, config, side, initial_path, focus_step=focus_step)
        done.setdefault(side, trace)
        out.append(trace)
    return out


def _trace_side(
    pool: WorkerPool,
    config: TrainConfig,
    side: Side,
    initial_path: Path | None = None,
    *,
    focus_step: int | None = None,
) -> Trace:
    worker = pool.get(side.environment, side.instance)
    payload: dict[str, Any] = {
        "config": side.config(config).to_dict(),
        "unseeded_noise": side.unseeded_noise,
        "out": str(Path(worker.workdir) / f"trace-{time.perf_counter_ns()}.npz"),
        "focus_step": focus_step,
    }
    if initial_path is not None:
        payload["initial_from"] = str(initial_path)
    path = Path(worker.call(RequestKind.TRACE, payload)["path"])
    trace = Trace.load(path)
    path.unlink(missing_ok=True)
    return trace


def _focused(config: TrainConfig, sides: list[Side], pool: WorkerPool, a: Trace, b: Trace) -> TracedPair:
    """Where `a` and `b` part; when that names a layer at a step whose values or ops a side did not keep (they are
    kept for the first steps), both sides are traced again keeping that step's (a seeded run repeats bit for bit)
    and compared again.  A second pair that parts elsewhere (runs that do not repeat) is not used."""
    divergence = first_divergence(a, b)
    step, layer = divergence.step, divergence.layer
    if step is None or layer is None or all(step in t.details and t.details[step].ops for t in (a, b)):
        return TracedPair(a, b, divergence, 0.0)
    fa, fb = trace_sides(config, sides, pool=pool, focus_step=step)
    again = first_divergence(fa, fb)
    if again.step != step or again.layer is None or again.layer.name != layer.name:
        return TracedPair(a, b, divergence, 0.0)
    return TracedPair(fa, fb, again, 0.0)


def trace_factor(config: TrainConfig, factor: Factor, *, pool: WorkerPool) -> TracedPair:
    """Trace both sides of a matrix factor on `config` and find where they part (down to the layer and op; see
    `_focused` for a divergence after the first steps)."""
    started = time.perf_counter()
    sides = [factor.a, factor.b]
    a, b = trace_sides(config, sides, pool=pool)
    return _focused(config, sides, pool, a, b)._replace(elapsed_s=time.perf_counter() - started)


def diverge_pair(
    a: TrainConfig,
    b: TrainConfig,
    *,
    env_a: Environment | None = None,
    env_b: Environment | None = None,
    workdir: str | Path | None = None,
    pool: WorkerPool | None = None,
) -> TracedPair:
    """Trace config `a` in environment `env_a` and `b` in `env_b` (default TensorFlow's defaults), each in a
    worker process of its own, and find where they part.  A `pool` lets several pairs share the two processes;
    without one, both are fresh and closed afterwards."""
    env_a, env_b = env_a or Environment("a"), env_b or Environment("b")
    changes = tuple((name, getattr(b, name)) for name in changed_fields(a, b))
    started = time.perf_counter()
    own = pool is None
    pool = pool or WorkerPool(workdir=workdir)
    sides = [Side(env_a), Side(env_b, changes, instance=1)]
    try:
        ta, tb = trace_sides(a, sides, pool=pool)
        traced = _focused(a, sides, pool, ta, tb)
    finally:
        if own:
            pool.close()
    return traced._replace(elapsed_s=time.perf_counter() - started)


def diverge_factor(config: TrainConfig, factor_name: str, *, workdir: str | Path | None = None) -> TracedPair:
    """Trace both sides of a matrix factor (each in a worker process of its environment) and compare them."""
    factor = factor_by_name(factor_name)
    started = time.perf_counter()
    with WorkerPool(workdir=workdir) as pool:
        traced = trace_factor(config, factor, pool=pool)
    return traced._replace(elapsed_s=time.perf_counter() - started)
