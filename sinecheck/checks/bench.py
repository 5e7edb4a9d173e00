"""Per-epoch cost of each engine on one config, measured in one process and run — so ratios mean something.

Absolute times on a shared 2-core machine are noise; ratios of medians measured back to back are not.  Each
engine gets an `EpochRunner`: its one-time cost (tracing, XLA compilation, fit's first call) is measured
on its own, then every timed call trains `epochs_per_call` more epochs of the same model (fit's per-call
set-up — data adapter, callbacks, ~25 ms here — is spread over them, as in a long ``fit``).  Used by
``sinecheck bench`` and by the pytest-benchmark suite in ``tests/benchmarks``.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.engines.base import EngineName, parse_engine
from sinecheck.engines.common import fresh_start
from sinecheck.engines.fused import (
    FusedProgram,
    GraphKey,
    check_supported,
    epoch_orders_from_keras,
    logged_losses,
)
from sinecheck.engines.numpy_engine import NumpyLoop, check_supported_numpy
from sinecheck.errors import ConfigError, EngineUnsupported, WorkerDied
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.pool import Worker
from sinecheck.isolation.protocol import RequestKind
from sinecheck.keras.user_data import fit_data

#: Engines `bench` times, in display order; ``keras`` is the reference every ratio is taken against.
BENCH_ENGINES: tuple[EngineName, ...] = (EngineName.KERAS, EngineName.FUSED, EngineName.FUSED_XLA, EngineName.NUMPY)


@dataclass
class EpochRunner:
    """A model ready to train: `first_call_s` was its one-time cost, each `call()` trains `epochs` epochs.

    `first_losses` is the loss ``fit`` would log for each epoch of the first call (which starts from the
    config's fresh initial weights, as a run of `epochs` epochs does), so a benchmark can check that what it
    timed trained — and agrees with ``fit`` — without a timed call converting anything.
    """

    engine: str
    epochs: int
    call: Callable[[], object]
    first_call_s: float
    first_losses: np.ndarray


def epoch_runner(engine: str, config: TrainConfig, *, epochs_per_call: int = 5) -> EpochRunner:
    """Build `config`'s model for `engine` and pay its one-time costs; see `EpochRunner`."""
    name = parse_engine(engine, allowed=BENCH_ENGINES)
    if isinstance(epochs_per_call, bool) or not isinstance(epochs_per_call, int) or epochs_per_call < 1:
        raise ConfigError(f"epochs_per_call: invalid value {epochs_per_call!r}; allowed: an integer >= 1")
    cfg = config.replace(epochs=epochs_per_call)
    builders = {
        EngineName.KERAS: _keras_runner,
        EngineName.FUSED: _fused_runner,
        EngineName.FUSED_XLA: _fused_runner,
        EngineName.NUMPY: _numpy_runner,
    }
    return builders[name](name.value, cfg)


def _keras_runner(engine: str, cfg: TrainConfig) -> EpochRunner:
    start = fresh_start(cfg)
    arguments = fit_data(start.data, batch_size=cfg.batch_size, shuffle=cfg.shuffle)  # a pipeline: only x

    def call() -> Any:
        return start.model.fit(**arguments, epochs=cfg.epochs, verbose=0)

    t = time.perf_counter()
    history = call()  # traces the train step: fit's first call
    first_s = time.perf_counter() - t
    return EpochRunner(engine, cfg.epochs, call, first_s, np.asarray(history.history["loss"], np.float32))


def _fused_runner(engine: str, cfg: TrainConfig) -> EpochRunner:
    jit = engine == "fused-xla"
    check_supported(cfg, jit_compile=jit)
    start = fresh_start(cfg, clear_session=False)
    t = time.perf_counter()
    program = FusedProgram(GraphKey.of(cfg, jit_compile=jit))  # a new one: its tracing is what we measure
    program.load(start, cfg.effective_optimizer.rate)
    orders = epoch_orders_from_keras(cfg, start.data.y_train)

    def call() -> np.ndarray:
        return np.asarray(program.run(orders, False)[0].numpy())

    step_losses = call()
    first_s = time.perf_counter() - t
    return EpochRunner(engine, cfg.epochs, call, first_s, logged_losses(step_losses, cfg))


def _numpy_runner(engine: str, cfg: TrainConfig) -> EpochRunner:
    check_supported_numpy(cfg)
    start = fresh_start(cfg, clear_session=False)
    loop = NumpyLoop(cfg, list(start.initial.values()), start.data.x_train, start.data.y_train)
    orders = epoch_orders_from_keras(cfg, start.data.y_train)

    def call() -> tuple[list[Any], bool]:
        return loop.run(orders)

    t = time.perf_counter()
    history, _ = call()
    first_s = time.perf_counter() - t
    return EpochRunner(engine, cfg.epochs, call, first_s, np.asarray(history, np.float32))


@dataclass
class EngineTiming:
    """One engine's figures: per-epoch milliseconds of every timed call, and its one-time cost."""

    engine: str
    epoch_ms: list[float] = field(default_factory=list)
    first_call_s: float | None = None
    error: str | None = None

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.epoch_ms) if self.epoch_ms else None

    @property
    def min_ms(self) -> float | None:
        return min(self.epoch_ms) if self.epoch_ms else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "epoch_ms": self.epoch_ms,
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "first_call_s": self.first_call_s,
            "error": self.error,
        }


def time_runner(runner: EpochRunner, *, rounds: int) -> list[float]:
    """Per-epoch milliseconds of `rounds` timed calls, with Python's garbage collector paused (as `timeit`
    does: a collection of another engine's leftovers would otherwise land in whichever call it hits)."""
    out = []
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            runner.call()
            out.append(1000 * (time.perf_counter() - t) / runner.epochs)
    finally:
        if enabled:
            gc.enable()
    return out


def time_engine(engine: str, config: TrainConfig, *, epochs_per_call: int, rounds: int) -> EngineTiming:
    """Time one engine on `config`; an engine that refuses the config is reported, not raised."""
    timing = EngineTiming(engine)
    try:
        runner = epoch_runner(engine, config, epochs_per_call=epochs_per_call)
    except EngineUnsupported as exc:
        timing.error = str(exc)
        return timing
    timing.first_call_s = runner.first_call_s
    timing.epoch_ms = time_runner(runner, rounds=rounds)
    return timing


@dataclass
class BenchRow:
    """Every engine's timing on one config (one row of the `sinecheck bench` table)."""

    label: str
    config: TrainConfig
    timings: list[EngineTiming]

    def ratio(self, engine: str) -> float | None:
        """How many times faster per epoch than Keras ``fit`` (ratio of medians), if both were measured."""
        by = {t.engine: t.median_ms for t in self.timings}
        keras, other = by.get("keras"), by.get(engine)
        if keras is None or other is None:
            return None
        return keras / other

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "config": self.config.to_dict(),
            "config_id": self.config.config_id,
            "timings": [t.to_dict() for t in self.timings],
            "ratio_vs_keras": {t.engine: self.ratio(t.engine) for t in self.timings},
        }


def run_bench(
    cases: Sequence[tuple[str, TrainConfig]],
    *,
    engines: Sequence[EngineName | str] = BENCH_ENGINES,
    epochs_per_call: int = 5,
    rounds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Time every engine on every (label, config), engine after engine in this process (never in parallel)."""
    rows = []
    for label, config in cases:
        timings = []
        for engine in engines:
            if progress is not None:
                progress(f"{label}: {engine}")
            timings.append(time_engine(engine, config, epochs_per_call=epochs_per_call, rounds=rounds))
        rows.append(BenchRow(label, config, timings))
    return rows


def time_backend_fit(
    backend: str, config: TrainConfig, *, epochs_per_call: int, rounds: int, timeout: float = 900.0
) -> EngineTiming:
    """Keras ``fit`` per epoch on a Keras 3 backend (tensorflow, jax, torch), timed inside a fresh worker
    process with ``KERAS_BACKEND`` set — the backend is process-wide.  A backend that is not installed or
    fails is reported in `EngineTiming.error`."""
    timing = EngineTiming(f"keras/{backend}")
    worker = Worker(Environment(name=backend, env=(("KERAS_BACKEND", backend),)))
    try:
        reply = worker.call(
            RequestKind.BENCH_FIT,
            {"config": config.to_dict(), "epochs_per_call": epochs_per_call, "rounds": rounds},
            timeout=timeout,
        )
    except (WorkerDied, RuntimeError) as exc:
        timing.error = _last_error_line(f"{exc}\n{worker.stderr_tail()}")
        return timing
    finally:
        worker.close()
    timing.first_call_s, timing.epoch_ms = reply["first_call_s"], reply["epoch_ms"]
    return timing


def _last_error_line(text: str) -> str:
    """The most telling line of a worker failure (e.g. ``ModuleNotFoundError: No module named 'jax'``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["failed"])[-1][:200]


def render_bench(rows: Sequence[BenchRow], *, backends: Sequence[EngineTiming] = ()) -> str:
    """The bench table: per engine, median and min ms/epoch, one-time cost, and × faster than fit."""
    lines = [f"{'config':<24} {'engine':<16} {'ms/epoch':>9} {'min':>9} {'first call':>11} {'× fit':>8}"]
    for row in rows:
        for t in row.timings:
            if t.error:
                lines.append(f"{row.label:<24} {t.engine:<16} {'refused: ' + t.error.split('; allowed')[0]}")
                continue
            ratio = row.ratio(t.engine)
            lines.append(
                f"{row.label:<24} {t.engine:<16} {t.median_ms:>9.3f} {t.min_ms:>9.3f} "
                f"{t.first_call_s:>10.2f}s {ratio:>7.1f}×"
            )
    if backends:
        base = backends[0].median_ms
        lines.append("")
        lines.append(
            f"{'Keras fit per backend':<24} {'backend':<16} {'ms/epoch':>9} {'min':>9} {'first call':>11} {'× tf':>8}"
        )
        for t in backends:
            if t.error or t.median_ms is None:
                lines.append(f"{'':<24} {t.engine:<16} unavailable: {t.error}")
                continue
            speed = f"{base / t.median_ms:>7.1f}×" if base else ""
            lines.append(
                f"{'':<24} {t.engine:<16} {t.median_ms:>9.3f} {t.min_ms:>9.3f} {t.first_call_s:>10.2f}s {speed}"
            )
    return "\n".join(lines)
