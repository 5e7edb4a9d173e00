"""Where did two runs part?  Step-by-step traces of Keras ``fit`` and the first (epoch, batch) and stage at which
they differ.

A trace records, after every batch, the loss ``fit`` logs, every weight and every optimizer slot (Adam's
moments, ...), plus the initial weights and the sample order of the first epochs.  Before every batch of those
epochs it also *replays* the step eagerly from the weights the step starts with: the model's output on the
batch, the loss and the gradient (TensorFlow backends; inference mode, so the replay draws no random numbers
and the traced run stays bit for bit the run `train` makes).  Comparing two traces step by step gives the first
step where anything ``fit`` produced differs, and the stage by elimination — both runs enter that step with
equal weights and slots:

- *initial weights* differ before any step; *shuffle order*: the step's batch holds other samples;
- *forward output*, *loss*, *gradient*: the replayed output, loss or gradient differ (the first that does);
- *forward pass / loss*: the loss ``fit`` logged differs although the replay agrees (or was not made);
- *optimizer slot update*: output, loss and gradient agree but a slot (Adam's moments) does not;
- *weight update*: all of that agrees but the weights do not (the update arithmetic itself).

It also gives how the difference grows afterwards (max |Δw| per step).  Traces of two environments (oneDNN
on/off, thread counts, Keras 2 vs 3, another venv's TensorFlow/Keras, ...) are made in worker processes
(`sinecheck.isolation`).
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sinecheck._io import atomic_write
from sinecheck.checks.factors import Factor, Side, factor_by_name
from sinecheck.core.compare import json_float
from sinecheck.core.config import TrainConfig, changed_fields
from sinecheck.core.data import sample_count
from sinecheck.core.enums import TextEnum
from sinecheck.core.environment import keras_backend
from sinecheck.engines.common import Start, fresh_start
from sinecheck.engines.keras_fit import fit
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.pool import WorkerPool
from sinecheck.isolation.protocol import RequestKind
from sinecheck.keras.probes import epoch_orders
from sinecheck.keras.runtime import keras_module, to_numpy

ORDER_EPOCHS = 3  # epochs whose sample order is probed (eagerly: slow for long runs)

#: A Keras object (model, optimizer, variable, loss): Keras is imported lazily and not typed here.
KerasObject = Any
#: (name, size) of each tensor, in the order a trace flattens them.
Layout = list[tuple[str, int]]


@dataclass
class Trace:
    """What one ``fit`` did, step by step."""

    config: TrainConfig
    initial: dict[str, np.ndarray]
    orders: np.ndarray  # (probed epochs, n_points) sample indices
    steps: np.ndarray  # (steps, 2): epoch, batch
    losses: np.ndarray  # (steps,) the loss fit logged after each batch (its running mean)
    weights: np.ndarray  # (steps, n_weights) every weight, flattened in weight_names order
    slots: np.ndarray  # (steps, n_slot_values) every float optimizer slot, flattened
    weight_layout: Layout
    slot_layout: Layout
    # Replayed before each step (TensorFlow backends, probed epochs; NaN rows elsewhere): the model's output on
    # the step's batch (NaN-padded to the batch size), the loss of that output, and the gradient.
    outputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    batch_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gradients: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    gradient_layout: Layout = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        arrays: dict[str, Any] = {
            "orders": self.orders,
            "steps": self.steps,
            "losses": self.losses,
            "weights": self.weights,
            "slots": self.slots,
            "outputs": self.outputs,
            "batch_losses": self.batch_losses,
            "gradients": self.gradients,
            **{f"initial::{k}": v for k, v in self.initial.items()},
        }
        meta = {
            "config": self.config.to_json(),
            "weight_layout": self.weight_layout,
            "slot_layout": self.slot_layout,
            "gradient_layout": self.gradient_layout,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            initial = {k.split("::", 1)[1]: npz[k] for k in npz.files if k.startswith("initial::")}
            return cls(
                TrainConfig.from_json(meta["config"]),
                initial,
                npz["orders"],
                npz["steps"],
                npz["losses"],
                npz["weights"],
                npz["slots"],
                [tuple(x) for x in meta["weight_layout"]],
                [tuple(x) for x in meta["slot_layout"]],
                npz["outputs"],
                npz["batch_losses"],
                npz["gradients"],
                [tuple(x) for x in meta["gradient_layout"]],
            )


def _optimizer_slots(optimizer: KerasObject) -> list[tuple[str, KerasObject]]:
    """The optimizer's float slot variables (moments, accumulators), not its step counter or learning rate."""
    variables = optimizer.variables() if callable(getattr(optimizer, "variables", None)) else optimizer.variables
    out = []
    for i, v in enumerate(variables):
        shape = tuple(v.shape)
        if "float" in str(v.dtype) and shape not in ((),):
            out.append((str(getattr(v, "path", None) or getattr(v, "name", f"slot{i}")), v))
    return out


def trace_fit(
    config: TrainConfig, *, initial_weights: Mapping[str, np.ndarray] | None = None, unseeded_noise: float = 0.0
) -> Trace:
    """Train `config` with Keras ``fit`` (the keras engine's seeded start, with the same `initial_weights` and
    `unseeded_noise` options) and record every step."""
    keras = keras_module()
    probed = min(ORDER_EPOCHS, config.epochs)
    orders = (
        np.stack(epoch_orders(config, epochs=probed))
        if config.shuffle
        else np.tile(np.arange(sample_count(config)), (probed, 1))
    )
    start = fresh_start(config, initial_weights=initial_weights, unseeded_noise=unseeded_noise)
    model = start.model
    names = list(start.initial)
    rows: dict[str, list[Any]] = {
        "steps": [],
        "losses": [],
        "weights": [],
        "slots": [],
        "outputs": [],
        "batch_losses": [],
        "gradients": [],
    }
    layout: dict[str, Layout] = {"slots": []}
    replay = _StepReplay(model, start, orders, config)
    callback: KerasObject = keras.callbacks.Callback

    class Recorder(callback):  # (Keras is untyped)
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
            output, loss, gradient = replay(self.epoch, batch)
            rows["outputs"].append(output)
            rows["batch_losses"].append(loss)
            rows["gradients"].append(gradient)

        def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
            rows["steps"].append((self.epoch, batch))
            rows["losses"].append(float((logs or {}).get("loss", np.nan)))
            trained = self.model  # (Keras's property: on JAX it syncs the state into the model first)
            rows["weights"].append(np.concatenate([np.asarray(w, np.float32).ravel() for w in trained.get_weights()]))
            slots = _optimizer_slots(trained.optimizer)
            layout["slots"] = [(str(name), int(np.prod(v.shape))) for name, v in slots]
            rows["slots"].append(
                np.concatenate([np.asarray(to_numpy(v), np.float32).ravel() for _, v in slots])
                if slots
                else np.zeros(0, np.float32)
            )

    fit(start, config, Recorder())
    return Trace(
        config,
        start.initial,
        np.asarray(orders, np.int64),
        np.array(rows["steps"], np.int64),
        np.array(rows["losses"], np.float64),
        np.stack(rows["weights"]),
        np.stack(rows["slots"]),
        [(n, int(start.initial[n].size)) for n in names],
        layout["slots"],
        np.stack(rows["outputs"]),
        np.array(rows["batch_losses"], np.float64),
        np.stack(rows["gradients"]),
        replay.layout,
    )


class _StepReplay:
    """Before a step: the model's output on the step's batch, its loss and the gradient, computed eagerly from
    the weights the step starts with.  Inference mode (``training=False``) so the replay consumes no random
    numbers and updates no statistics: the traced run stays the run it would have been.  TensorFlow backends
    only (``tf.GradientTape``), and only in epochs whose sample order was probed; NaN otherwise."""

    def __init__(self, model: KerasObject, start: Start, orders: np.ndarray, config: TrainConfig) -> None:
        self.model, self.orders, self.bs = model, orders, config.batch_size
        self.x, self.y = start.data.x_train, start.data.y_train
        self.enabled = keras_backend() == "tensorflow"
        name_of = {id(w): n for w, n in zip(model.weights, start.initial, strict=True)}
        self.layout = [(name_of.get(id(w), "?"), int(np.prod(w.shape))) for w in model.trainable_weights]
        loss = model.loss if start.options.get("compiled_by_factory") else config.loss
        self.loss_fn = keras_module().losses.get(loss) if isinstance(loss, str) else loss
        self.width = sum(size for _, size in self.layout)

    def __call__(self, epoch: int, batch: int) -> tuple[np.ndarray, float, np.ndarray]:
        blank = (np.full(self.bs, np.nan, np.float32), float("nan"), np.full(self.width, np.nan, np.float32))
        if not self.enabled or epoch >= len(self.orders):
            return blank
        import tensorflow as tf

        index = self.orders[epoch][batch * self.bs : (batch + 1) * self.bs]
        xb, yb = tf.constant(self.x[index]), tf.constant(self.y[index])
        try:
            with tf.GradientTape() as tape:
                out = self.model(xb, training=False)
                loss = tf.reduce_mean(self.loss_fn(yb, out))
            grads = tape.gradient(loss, self.model.trainable_weights)
        except Exception:  # a model the replay cannot differentiate: the trace goes on without it
            return blank
        output = np.full(self.bs, np.nan, np.float32)
        flat = np.asarray(out, np.float32).reshape(len(index), -1)[:, 0]
        output[: len(flat)] = flat
        parts = [
            np.zeros(size, np.float32) if g is None else np.asarray(g, np.float32).ravel()
            for g, (_, size) in zip(grads, self.layout, strict=True)
        ]
        return output, float(loss), np.concatenate(parts) if parts else np.zeros(0, np.float32)


class Stage(TextEnum):
    """Where two traces part (see the module doc for how each stage is told apart)."""

    IDENTICAL = "identical"
    DIFFERENT_MODELS = "different models"
    INITIAL_WEIGHTS = "initial weights"
    SHUFFLE_ORDER = "shuffle order"
    FORWARD_OUTPUT = "forward output"
    LOSS = "loss"
    GRADIENT = "gradient"
    FORWARD_PASS_OR_LOSS = "forward pass / loss"
    SLOT_UPDATE = "optimizer slot update (the replayed output, loss and gradient agree)"
    GRADIENT_OR_SLOT = "gradient or optimizer slot (seen in the slot)"
    WEIGHT_UPDATE = "weight update"
    GRADIENT_OR_WEIGHT_UPDATE = "gradient or weight update (no comparable optimizer slots)"


class Divergence(abc.ABC):
    """How two traces compare: `Identical`, `DifferentModels`, or `Parted` at a first difference.

    `growth` is how far apart the weights drift: max |Δw| after each step."""

    stage: Stage
    growth: np.ndarray

    @property
    def step(self) -> int | None:
        """The index (into the steps) of the first step that differs; None when no step does."""
        return None

    @abc.abstractmethod
    def describe(self) -> str: ...

    def _fields(self) -> dict[str, Any]:
        """The JSON fields a variant sets besides the stage (the others are None)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        fields: dict[str, Any] = dict.fromkeys(
            ("step", "epoch", "batch", "stage", "tensor", "index", "value_a", "value_b")
        )
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
    which tensor differs most there, with both sides' values."""

    stage: Stage
    at: TrainingStep | None
    tensor: str
    index: int
    value_a: float
    value_b: float
    growth: np.ndarray

    @property
    def step(self) -> int | None:
        return None if self.at is None else self.at.step

    @property
    def epoch(self) -> int | None:
        return None if self.at is None else self.at.epoch

    @property
    def batch(self) -> int | None:
        return None if self.at is None else self.at.batch

    def describe(self) -> str:
        at = self.at
        where = (
            "before the first step"
            if at is None
            else f"at epoch {at.epoch + 1}, batch {at.batch + 1} (step {at.step + 1})"
        )
        where_in = self.tensor if self.tensor == "logged loss" else f"{self.tensor}[{self.index}]"
        delta = abs(self.value_a - self.value_b)
        values = f": {where_in} = {self.value_a:.9g} vs {self.value_b:.9g} (|Δ| {delta:.3g})"
        grown = f"; max |Δw| grows to {np.nanmax(self.growth):.3g} by the last step" if len(self.growth) else ""
        return f"first divergence {where}, stage: {self.stage}{values}{grown}"

    def _fields(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "tensor": self.tensor,
            "index": self.index,
            "value_a": json_float(self.value_a),
            "value_b": json_float(self.value_b),
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


def _replayed(a: Trace, b: Trace, k: int) -> bool:
    """Whether both traces replayed step `k` (same layouts, values recorded on both sides)."""
    if k >= min(len(a.gradients), len(b.gradients)) or a.gradient_layout != b.gradient_layout:
        return False
    return bool(np.isfinite(a.batch_losses[k]) and np.isfinite(b.batch_losses[k]))


def _first_diff(a: np.ndarray, b: np.ndarray, layout: Layout) -> Difference:
    diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
    i = int(diff[np.argmax(np.abs(a[diff].astype(np.float64) - b[diff]))])
    name, local = _locate(layout, i)
    return Difference(name, local, float(a[i]), float(b[i]))


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
        same_slots = not slots_comparable or np.array_equal(a.slots[k].view(np.uint32), b.slots[k].view(np.uint32))
        same_weights = np.array_equal(a.weights[k].view(np.uint32), b.weights[k].view(np.uint32))
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
            if not _bits_equal(a.outputs[k], b.outputs[k]):
                d = _first_diff(a.outputs[k], b.outputs[k], [("output", a.outputs.shape[1])])
                return Parted(
                    Stage.FORWARD_OUTPUT, at, "model output on the batch", d.index, d.value_a, d.value_b, growth
                )
            if not _bits_equal(a.batch_losses[k : k + 1], b.batch_losses[k : k + 1]):
                loss_a, loss_b = float(a.batch_losses[k]), float(b.batch_losses[k])
                return Parted(Stage.LOSS, at, "batch loss", 0, loss_a, loss_b, growth)
            if not _bits_equal(a.gradients[k], b.gradients[k]):
                d = _first_diff(a.gradients[k], b.gradients[k], a.gradient_layout)
                return Parted(Stage.GRADIENT, at, f"∂loss/∂{d.tensor}", d.index, d.value_a, d.value_b, growth)
        if not same_loss:
            loss_a, loss_b = float(a.losses[k]), float(b.losses[k])
            return Parted(Stage.FORWARD_PASS_OR_LOSS, at, "logged loss", 0, loss_a, loss_b, growth)
        if not same_slots:
            stage = Stage.SLOT_UPDATE if replayed else Stage.GRADIENT_OR_SLOT
            d = _first_diff(a.slots[k], b.slots[k], a.slot_layout)
            return Parted(stage, at, d.tensor, d.index, d.value_a, d.value_b, growth)
        comparable = a.slot_layout and slots_comparable
        stage = Stage.WEIGHT_UPDATE if comparable else Stage.GRADIENT_OR_WEIGHT_UPDATE
        d = _first_diff(a.weights[k], b.weights[k], a.weight_layout)
        return Parted(stage, at, d.tensor, d.index, d.value_a, d.value_b, growth)
    return Identical(growth)


class TracedPair(NamedTuple):
    """Two traces, where they part, and how long tracing them took (worker start-up included)."""

    a: Trace
    b: Trace
    divergence: Divergence
    elapsed_s: float


def trace_sides(config: TrainConfig, sides: Sequence[Side], *, pool: WorkerPool) -> list[Trace]:
    """Trace each matrix `Side` of `config`, in order, in a worker process of its environment.  A side that starts
    from another side's initial weights gets them from that side's trace (traced first if it is not listed)."""
    done: dict[Side, Trace] = {}
    out = []
    for side in sides:
        initial_path = None
        if side.initial_from is not None:
            source = done.get(side.initial_from) or _trace_side(pool, config, side.initial_from)
            done.setdefault(side.initial_from, source)
            initial_path = source.save(
                Path(pool.get(side.environment, side.instance).workdir) / f"trace-initial-{time.perf_counter_ns()}.npz"
            )
        trace = _trace_side(pool, config, side, initial_path)
        done.setdefault(side, trace)
        out.append(trace)
    return out


def _trace_side(pool: WorkerPool, config: TrainConfig, side: Side, initial_path: Path | None = None) -> Trace:
    worker = pool.get(side.environment, side.instance)
    payload: dict[str, Any] = {
        "config": side.config(config).to_dict(),
        "unseeded_noise": side.unseeded_noise,
        "out": str(Path(worker.workdir) / f"trace-{time.perf_counter_ns()}.npz"),
    }
    if initial_path is not None:
        payload["initial_from"] = str(initial_path)
    path = Path(worker.call(RequestKind.TRACE, payload)["path"])
    trace = Trace.load(path)
    path.unlink(missing_ok=True)
    return trace


def trace_factor(config: TrainConfig, factor: Factor, *, pool: WorkerPool) -> TracedPair:
    """Trace both sides of a matrix factor on `config` and find where they part."""
    started = time.perf_counter()
    a, b = trace_sides(config, [factor.a, factor.b], pool=pool)
    return TracedPair(a, b, first_divergence(a, b), time.perf_counter() - started)


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
    try:
        ta, tb = trace_sides(a, [Side(env_a), Side(env_b, changes, instance=1)], pool=pool)
    finally:
        if own:
            pool.close()
    return TracedPair(ta, tb, first_divergence(ta, tb), time.perf_counter() - started)


def diverge_factor(config: TrainConfig, factor_name: str, *, workdir: str | Path | None = None) -> TracedPair:
    """Trace both sides of a matrix factor (each in a worker process of its environment) and compare them."""
    factor = factor_by_name(factor_name)
    started = time.perf_counter()
    with WorkerPool(workdir=workdir) as pool:
        traced = trace_factor(config, factor, pool=pool)
    return traced._replace(elapsed_s=time.perf_counter() - started)
