"""Step-by-step traces of Keras ``fit``: after every batch the loss ``fit`` logs, every weight and every optimizer
slot, plus the initial weights and the sample order of the first epochs; and, on the TensorFlow backend, a replay
of every step layer by layer (`sinecheck.keras.replay`): the batch, each layer call's inputs, outputs and
gradients (digests every step, values within a budget), the loss, the weights' gradients, and for the first steps
each layer call's TensorFlow ops.  The traced run stays bit for bit the run `sinecheck.engines.registry.train`
makes (the replay sets every variable back exactly; tested)."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import atomic_write
from sinecheck.core.config import TrainConfig
from sinecheck.core.data import sample_count
from sinecheck.core.environment import keras_backend
from sinecheck.core.structure import pipeline_form
from sinecheck.engines.common import fresh_start
from sinecheck.engines.keras_fit import fit
from sinecheck.keras.probes import epoch_orders
from sinecheck.keras.replay import DIGEST_COLUMNS, LayerCall, OpRecord, ReplayedStep, StepDetail, StepReplayer
from sinecheck.keras.runtime import keras_module, to_numpy

ORDER_EPOCHS = 3  # epochs whose sample order is probed (eagerly: slow for long runs)

#: A Keras object (model, optimizer, variable, loss): Keras is imported lazily and not typed here.
KerasObject = Any
#: (name, size) of each tensor, in the order a trace flattens them.
Layout = list[tuple[str, int]]


class Replay(enum.IntEnum):
    """How a step was replayed (`Trace.replay`): not at all, not reproducing ``fit``'s step, or bit for bit."""

    NONE = 0
    INEXACT = 1
    EXACT = 2


def _empty(dtype: type = np.float32, *shape: int) -> np.ndarray:
    return np.zeros(shape or (0,), dtype)


@dataclass
class Trace:
    """What one ``fit`` did, step by step (see the module doc)."""

    config: TrainConfig
    initial: dict[str, np.ndarray]
    orders: np.ndarray  # (probed epochs, n_points) sample indices (no rows for a pipeline)
    steps: np.ndarray  # (steps, 2): epoch, batch
    losses: np.ndarray  # (steps,) the loss fit logged after each batch (its running mean)
    weights: np.ndarray  # (steps, n_weights) every weight, flattened in weight_names order
    slots: np.ndarray  # (steps, n_slot_values) every float optimizer slot, flattened
    weight_layout: Layout
    slot_layout: Layout
    # The replay of each step (TensorFlow backend; NaN / zero rows where a step was not replayed):
    batch_losses: np.ndarray = field(default_factory=lambda: _empty(np.float64))  # (steps,) the step's loss
    gradients: np.ndarray = field(default_factory=lambda: _empty(np.float32, 0, 0))  # (steps, trainable values)
    gradient_layout: Layout = field(default_factory=list)
    replay: np.ndarray = field(default_factory=lambda: _empty(np.int8))  # (steps,) a `Replay` value
    batches: np.ndarray = field(default_factory=lambda: _empty(np.uint64))  # (steps,) digest of the step's batch
    calls: list[LayerCall] = field(default_factory=list)  # the layer calls of a step, in the order they finished
    digests: np.ndarray = field(default_factory=lambda: _empty(np.uint64, 0, 0, len(DIGEST_COLUMNS)))
    details: dict[int, StepDetail] = field(default_factory=dict)  # step -> values (the first steps)
    replay_note: str | None = None  # why steps were not replayed (the first reason met)

    def replayed(self, k: int) -> bool:
        """Whether step `k` was replayed layer by layer."""
        return k < len(self.replay) and self.replay[k] != Replay.NONE

    def save(self, path: str | Path) -> Path:
        """Write the trace as one compressed ``.npz`` (no pickles: arrays and a JSON header)."""
        arrays: dict[str, Any] = {
            "orders": self.orders,
            "steps": self.steps,
            "losses": self.losses,
            "weights": self.weights,
            "slots": self.slots,
            "batch_losses": self.batch_losses,
            "gradients": self.gradients,
            "replay": self.replay,
            "batches": self.batches,
            "digests": self.digests,
            **{f"initial::{k}": v for k, v in self.initial.items()},
        }
        details: dict[str, Any] = {}
        for k, detail in self.details.items():
            kinds = (("out", detail.outputs), ("grad", detail.output_gradients), ("ingrad", detail.input_gradients))
            for kind, values in kinds:
                for c, leaves in enumerate(values):
                    for j, leaf in enumerate(leaves):
                        arrays[f"detail::{k}::{kind}::{c}::{j}"] = leaf
            details[str(k)] = {
                "leaves": [
                    [len(o), len(g), len(i)]
                    for o, g, i in zip(detail.outputs, detail.output_gradients, detail.input_gradients, strict=True)
                ],
                "ops": None if detail.ops is None else [[op.to_json() for op in ops] for ops in detail.ops],
                "eager": detail.eager_matches,
            }
        meta = {
            "config": self.config.to_json(),
            "weight_layout": self.weight_layout,
            "slot_layout": self.slot_layout,
            "gradient_layout": self.gradient_layout,
            "calls": [c.to_json() for c in self.calls],
            "details": details,
            "replay_note": self.replay_note,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace `save` wrote."""
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            initial = {k.split("::", 1)[1]: npz[k] for k in npz.files if k.startswith("initial::")}
            details = {}
            for key, entry in meta.get("details", {}).items():
                values = [
                    [
                        [npz[f"detail::{key}::{kind}::{c}::{j}"] for j in range(counts[n])]
                        for c, counts in enumerate(entry["leaves"])
                    ]
                    for n, kind in enumerate(("out", "grad", "ingrad"))
                ]
                ops = None if entry["ops"] is None else [[OpRecord.from_json(op) for op in ops] for ops in entry["ops"]]
                details[int(key)] = StepDetail(values[0], values[1], values[2], ops, entry["eager"])
            n = len(npz["steps"])

            def array(key: str, default: np.ndarray) -> np.ndarray:
                """An array of the file, or `default` for a trace written before it existed."""
                return npz[key] if key in npz.files else default

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
                npz["batch_losses"],
                npz["gradients"],
                [tuple(x) for x in meta["gradient_layout"]],
                array("replay", np.zeros(n, np.int8)),
                array("batches", np.zeros(n, np.uint64)),
                [LayerCall.from_json(c) for c in meta.get("calls", [])],
                array("digests", np.zeros((n, 0, len(DIGEST_COLUMNS)), np.uint64)),
                details,
                meta.get("replay_note"),
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


def _orders(config: TrainConfig, data: Any) -> np.ndarray:
    """The sample order of the first epochs (a pipeline decides its own: no rows)."""
    if pipeline_form(data) is not None:
        return np.zeros((0, 0), np.int64)
    probed = min(ORDER_EPOCHS, config.epochs)
    if config.shuffle:
        return np.stack(epoch_orders(config, epochs=probed)).astype(np.int64)
    return np.tile(np.arange(sample_count(config)), (probed, 1)).astype(np.int64)


class _Rows:
    """A trace's rows as ``fit`` goes (see `Trace` for the fields)."""

    def __init__(self, gradient_width: int) -> None:
        self.steps: list[tuple[int, int]] = []
        self.losses: list[float] = []
        self.weights: list[np.ndarray] = []
        self.slots: list[np.ndarray] = []
        self.slot_layout: Layout = []
        self.replayed: list[ReplayedStep | None] = []
        self.gradient_width = gradient_width
        self.note: str | None = None


def trace_fit(
    config: TrainConfig,
    *,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    focus_step: int | None = None,
) -> Trace:
    """Train `config` with Keras ``fit`` (the keras engine's seeded start, with the same `initial_weights` and
    `unseeded_noise` options) and record every step, replaying each layer by layer on the TensorFlow backend.
    Values and ops are kept for the first steps, or with `focus_step` for that step only."""
    keras = keras_module()
    start = fresh_start(config, initial_weights=initial_weights, unseeded_noise=unseeded_noise)
    orders = _orders(config, start.data.x_train)
    model = start.model
    name_of = {id(w): n for w, n in zip(model.weights, start.initial, strict=True)}
    gradient_layout = [(name_of.get(id(w), "?"), int(np.prod(w.shape))) for w in model.trainable_weights]
    rows = _Rows(sum(size for _, size in gradient_layout))
    replayer = StepReplayer(model, focus=focus_step) if keras_backend() == "tensorflow" else None
    if replayer is None:
        rows.note = f"the {keras_backend()} backend: the replay runs on TensorFlow only"
    callback: KerasObject = keras.callbacks.Callback

    class Recorder(callback):  # (Keras is untyped)
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
            if replayer is not None:
                replayer.begin()

        def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
            rows.steps.append((self.epoch, batch))
            rows.losses.append(float((logs or {}).get("loss", np.nan)))
            trained = self.model  # (Keras's property: on JAX it syncs the state into the model first)
            rows.weights.append(np.concatenate([np.asarray(w, np.float32).ravel() for w in trained.get_weights()]))
            slots = _optimizer_slots(trained.optimizer)
            rows.slot_layout = [(str(name), int(np.prod(v.shape))) for name, v in slots]
            rows.slots.append(
                np.concatenate([np.asarray(to_numpy(v), np.float32).ravel() for _, v in slots])
                if slots
                else np.zeros(0, np.float32)
            )
            if replayer is not None:
                rows.replayed.append(replayer.end())
                rows.note = rows.note or replayer.problem

    if replayer is not None:
        replayer.install()
        rows.note = replayer.problem
    try:
        fit(start, config, Recorder())
    finally:
        if replayer is not None:
            replayer.uninstall()
    return _trace(config, start.initial, orders, rows, gradient_layout)


def _trace(
    config: TrainConfig, initial: dict[str, np.ndarray], orders: np.ndarray, rows: _Rows, gradient_layout: Layout
) -> Trace:
    """The Trace of recorded rows: replayed steps whose layer calls are not those of the first replayed step are
    dropped from the layer comparison (their call structure changed)."""
    n = len(rows.steps)
    replayed = rows.replayed + [None] * (n - len(rows.replayed))
    first = next((r for r in replayed if r is not None), None)
    calls = list(first.calls) if first is not None else []
    digests = np.zeros((n, len(calls), len(DIGEST_COLUMNS)), np.uint64)
    replay = np.zeros(n, np.int8)
    batches = np.zeros(n, np.uint64)
    batch_losses = np.full(n, np.nan)
    gradients = np.full((n, rows.gradient_width), np.nan, np.float32)
    details: dict[int, StepDetail] = {}
    note = rows.note
    for k, r in enumerate(replayed):
        if r is None:
            continue
        if list(r.calls) != calls:
            note = note or f"step {k + 1} called other layers than step 1: not compared layer by layer"
            continue
        replay[k] = Replay.EXACT if r.exact else Replay.INEXACT
        batches[k], batch_losses[k], gradients[k] = r.batch, r.loss, r.gradients
        digests[k] = r.digests
        if r.detail is not None:
            details[k] = r.detail
    return Trace(
        config,
        initial,
        orders,
        np.array(rows.steps, np.int64).reshape(n, 2),
        np.array(rows.losses, np.float64),
        np.stack(rows.weights) if rows.weights else np.zeros((0, 0), np.float32),
        np.stack(rows.slots) if rows.slots else np.zeros((0, 0), np.float32),
        [(name, int(v.size)) for name, v in initial.items()],
        rows.slot_layout,
        batch_losses,
        gradients,
        gradient_layout,
        replay,
        batches,
        calls,
        digests,
        details,
        note,
    )
