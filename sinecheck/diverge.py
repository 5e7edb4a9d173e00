"""Where did two runs part?  Step-by-step traces of Keras ``fit`` and the first (epoch, batch) and stage at which
they differ.

A trace records, after every batch, the loss ``fit`` logs, every weight and every optimizer slot (Adam's
moments, ...), plus the initial weights and the sample order of the first epochs.  Comparing two traces step
by step gives the first step where anything differs, and the stage by elimination — both runs enter the step
with equal weights and slots:

- *initial weights* differ before any step; *shuffle order*: the step's batch holds other samples;
- *forward pass / loss*: the logged loss differs (same weights, same data, another result);
- *gradient*: the loss agrees but an optimizer slot fed by the gradient differs (for optimizers with slots);
- *weight update*: loss and slots agree but the weights do not (the update arithmetic itself).

It also gives how the difference grows afterwards (max |Δw| per step).  Traces of two environments (oneDNN
on/off, thread counts, Keras 2 vs 3, ...) are made in worker processes (`sinecheck.isolate`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.config import TrainConfig
from sinecheck.storage import atomic_write

ORDER_EPOCHS = 3  # epochs whose sample order is probed (eagerly: slow for long runs)


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
    weight_layout: list[tuple[str, int]]  # (name, size) in flattening order
    slot_layout: list[tuple[str, int]]

    def save(self, path: str | Path) -> Path:
        arrays = {"orders": self.orders, "steps": self.steps, "losses": self.losses, "weights": self.weights,
                  "slots": self.slots, **{f"initial::{k}": v for k, v in self.initial.items()}}
        meta = {"config": self.config.to_json(), "weight_layout": self.weight_layout,
                "slot_layout": self.slot_layout}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            initial = {k.split("::", 1)[1]: npz[k] for k in npz.files if k.startswith("initial::")}
            return cls(TrainConfig.from_json(meta["config"]), initial, npz["orders"], npz["steps"], npz["losses"],
                       npz["weights"], npz["slots"], [tuple(x) for x in meta["weight_layout"]],
                       [tuple(x) for x in meta["slot_layout"]])


def _optimizer_slots(optimizer: Any) -> list[tuple[str, Any]]:
    """The optimizer's float slot variables (moments, accumulators), not its step counter or learning rate."""
    variables = optimizer.variables() if callable(getattr(optimizer, "variables", None)) else optimizer.variables
    out = []
    for i, v in enumerate(variables):
        shape = tuple(v.shape)
        if "float" in str(v.dtype) and shape not in ((),):
            out.append((getattr(v, "path", None) or getattr(v, "name", f"slot{i}"), v))
    return out


def trace_fit(config: TrainConfig, *, initial_weights: Mapping[str, np.ndarray] | None = None) -> Trace:
    """Train `config` with Keras ``fit`` (the keras engine's seeded start) and record every step."""
    from sinecheck.data import sample_count
    from sinecheck.engines.common import fresh_start
    from sinecheck.models import keras_module, to_numpy
    from sinecheck.probes import epoch_orders

    keras = keras_module()
    probed = min(ORDER_EPOCHS, config.epochs)
    orders = (np.stack(epoch_orders(config, epochs=probed)) if config.shuffle
              else np.tile(np.arange(sample_count(config)), (probed, 1)))
    start = fresh_start(config, initial_weights=initial_weights)
    model = start.model
    names = list(start.initial)
    rows: dict[str, list[Any]] = {"steps": [], "losses": [], "weights": [], "slots": []}
    layout: dict[str, list[tuple[str, int]]] = {"slots": []}

    class Recorder(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            rows["steps"].append((self.epoch, batch))
            rows["losses"].append(float((logs or {}).get("loss", np.nan)))
            rows["weights"].append(np.concatenate([np.asarray(w, np.float32).ravel() for w in model.get_weights()]))
            slots = _optimizer_slots(model.optimizer)
            layout["slots"] = [(str(name), int(np.prod(v.shape))) for name, v in slots]
            rows["slots"].append(np.concatenate([np.asarray(to_numpy(v), np.float32).ravel() for _, v in slots])
                                 if slots else np.zeros(0, np.float32))

    model.fit(start.data.x_train, start.data.y_train, batch_size=config.batch_size, epochs=config.epochs,
              shuffle=config.shuffle, verbose=0, callbacks=[Recorder(), keras.callbacks.TerminateOnNaN()])
    return Trace(config, start.initial, np.asarray(orders, np.int64), np.array(rows["steps"], np.int64),
                 np.array(rows["losses"], np.float64), np.stack(rows["weights"]), np.stack(rows["slots"]),
                 [(n, int(start.initial[n].size)) for n in names], layout["slots"])


@dataclass
class Divergence:
    """The first place two traces part, and how far apart they drift afterwards."""

    step: int | None  # index into the steps; None: identical throughout (or parted before step 0)
    epoch: int | None
    batch: int | None
    stage: str  # "identical" | "initial weights" | "shuffle order" | "forward pass / loss" | "gradient" | ...
    tensor: str | None
    index: int | None
    value_a: float | None
    value_b: float | None
    growth: np.ndarray  # max |Δw| after each step

    def describe(self) -> str:
        if self.stage == "identical":
            return (f"identical: every step's loss, weights and optimizer slots agree bit for bit "
                    f"({len(self.growth)} steps)")
        where = "before the first step" if self.step is None else (
            f"at epoch {self.epoch + 1}, batch {self.batch + 1} (step {self.step + 1})")
        values = ("" if self.value_a is None else
                  f": {self.tensor}[{self.index}] = {self.value_a:.9g} vs {self.value_b:.9g} "
                  f"(|Δ| {abs(self.value_a - self.value_b):.3g})")
        grown = f"; max |Δw| grows to {np.nanmax(self.growth):.3g} by the last step" if len(self.growth) else ""
        return f"first divergence {where}, stage: {self.stage}{values}{grown}"

    def to_dict(self) -> dict[str, Any]:
        from sinecheck.compare import json_float

        return {"step": self.step, "epoch": self.epoch, "batch": self.batch, "stage": self.stage,
                "tensor": self.tensor, "index": self.index, "value_a": json_float(self.value_a),
                "value_b": json_float(self.value_b), "growth": [json_float(float(g)) for g in self.growth],
                "summary": self.describe()}


def _locate(layout: list[tuple[str, int]], flat_index: int) -> tuple[str, int]:
    offset = 0
    for name, size in layout:
        if flat_index < offset + size:
            return name, flat_index - offset
        offset += size
    return "?", flat_index


def _first_diff(a: np.ndarray, b: np.ndarray, layout: list[tuple[str, int]]) -> tuple[str, int, float, float]:
    diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
    i = int(diff[np.argmax(np.abs(a[diff].astype(np.float64) - b[diff]))])
    name, local = _locate(layout, i)
    return name, local, float(a[i]), float(b[i])


def first_divergence(a: Trace, b: Trace) -> Divergence:
    """Compare two traces of the same config (see the module doc for how the stage is decided)."""
    steps = min(len(a.steps), len(b.steps))
    growth = (np.max(np.abs(a.weights[:steps].astype(np.float64) - b.weights[:steps]), axis=1) if steps
              else np.zeros(0))
    for name in a.initial:
        if name in b.initial and not np.array_equal(a.initial[name], b.initial[name]):
            flat_a, flat_b = a.initial[name].ravel(), b.initial[name].ravel()
            i = int(np.argmax(np.abs(flat_a.astype(np.float64) - flat_b)))
            return Divergence(None, None, None, "initial weights", name, i, float(flat_a[i]), float(flat_b[i]),
                              growth)
    bs = a.config.batch_size
    slots_comparable = [size for _, size in a.slot_layout] == [size for _, size in b.slot_layout]
    for k in range(steps):
        epoch, batch = (int(v) for v in a.steps[k])
        same_loss = a.losses[k] == b.losses[k] or (np.isnan(a.losses[k]) and np.isnan(b.losses[k]))
        same_slots = not slots_comparable or np.array_equal(a.slots[k].view(np.uint32), b.slots[k].view(np.uint32))
        same_weights = np.array_equal(a.weights[k].view(np.uint32), b.weights[k].view(np.uint32))
        if same_loss and same_slots and same_weights:
            continue
        if epoch < min(len(a.orders), len(b.orders)):
            batch_a = np.sort(a.orders[epoch][batch * bs:(batch + 1) * bs])
            batch_b = np.sort(b.orders[epoch][batch * bs:(batch + 1) * bs])
            if not np.array_equal(batch_a, batch_b):
                j = int(np.flatnonzero(a.orders[epoch] != b.orders[epoch])[0])
                return Divergence(k, epoch, batch, "shuffle order", f"epoch {epoch + 1} order", j,
                                  float(a.orders[epoch][j]), float(b.orders[epoch][j]), growth)
        if not same_loss:
            return Divergence(k, epoch, batch, "forward pass / loss", "logged loss", 0, float(a.losses[k]),
                              float(b.losses[k]), growth)
        if not same_slots:
            name, i, va, vb = _first_diff(a.slots[k], b.slots[k], a.slot_layout)
            return Divergence(k, epoch, batch, "gradient (seen in the optimizer slot it feeds)", name, i, va, vb,
                              growth)
        name, i, va, vb = _first_diff(a.weights[k], b.weights[k], a.weight_layout)
        stage = ("weight update" if a.slot_layout and slots_comparable
                 else "gradient or weight update (no comparable optimizer slots)")
        return Divergence(k, epoch, batch, stage, name, i, va, vb, growth)
    return Divergence(None, None, None, "identical", None, None, None, None, growth)


def plot_growth(divergence: Divergence, *, title: str) -> bytes:
    """max |Δw| per step on a log scale, with the first divergence marked."""
    from sinecheck.figures import figure_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    growth = np.where(divergence.growth > 0, divergence.growth, np.nan)
    ax.plot(np.arange(1, len(growth) + 1), growth, lw=1.2)
    if divergence.step is not None:
        ax.axvline(divergence.step + 1, color="tab:red", lw=0.8, label=f"first divergence: {divergence.stage}")
        ax.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("max |Δw|")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=9)
    return figure_bytes(fig)


def diverge_factor(config: TrainConfig, factor_name: str, *, workdir: str | Path | None = None
                   ) -> tuple[Trace, Trace, Divergence, float]:
    """Trace both sides of a matrix factor (each in a worker process of its environment) and compare them."""
    from sinecheck.config import ConfigError
    from sinecheck.isolate import WorkerPool
    from sinecheck.matrix import factor_by_name

    factor = factor_by_name(factor_name)
    for side in (factor.a, factor.b):
        if side.unseeded_noise or side.initial_from is not None or side.repeat:
            raise ConfigError(f"--factor: {factor_name!r} cannot be traced (injected noise, loaded initial weights "
                              "or a same-process repeat); allowed: factors that differ by environment or config")
    started = time.perf_counter()
    traces = []
    with WorkerPool(workdir=workdir) as pool:
        for side in (factor.a, factor.b):
            worker = pool.get(side.environment, side.instance)
            reply = worker.call("trace", {"config": side.config(config).to_dict(),
                                          "out": str(Path(worker.workdir) / f"trace-{len(traces)}.npz")})
            traces.append(Trace.load(reply["path"]))
    return traces[0], traces[1], first_divergence(traces[0], traces[1]), time.perf_counter() - started
