"""Where the time of a check on one model goes: process start, imports, set-up, tracing, epochs, predictions, I/O.

`sinecheck bench --model M --breakdown` measures each part once, in one sitting, the way the matrix and the pytest
plugin pay it: a new interpreter (start and TensorFlow import), the fork server and a worker forked from it, a first
run in a fresh worker (set-up; `fit`'s first epoch less a steady one, i.e. tracing; the remaining epochs; final weights
and predictions, with no ``evaluate``, as in the matrix; the result's trip through a file), a second run in the same
worker (what every further run of a worker costs), one comparison, and a worker's exit.  The matrix's counts
(workers by kind, runs) come from its plan for the chosen factors, so the table says what a matrix pays for each
part: a measured part times its count, not a model of the machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sinecheck.checks.factors import FACTORS, Factor
from sinecheck.checks.matrix import matrix_workers, plan_runs
from sinecheck.core.compare import compare
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult, Timings
from sinecheck.errors import WorkerDied
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.forkserver import ForkServer, forkable
from sinecheck.isolation.pool import RunError, Worker


@dataclass(frozen=True)
class Part:
    """One measured part: its name, its seconds (wall, this machine, this sitting) and how many times a matrix on
    the chosen factors pays it (None: not a per-matrix cost)."""

    name: str
    seconds: float
    per_matrix: int | None = None

    @property
    def matrix_seconds(self) -> float | None:
        return None if self.per_matrix is None else self.seconds * self.per_matrix

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "seconds": self.seconds, "per_matrix": self.per_matrix}


@dataclass(frozen=True)
class Breakdown:
    """The measured parts, the config they were measured on and the matrix's counts."""

    label: str
    config: TrainConfig
    parts: tuple[Part, ...]
    workers_new: int
    workers_forked: int
    runs: int

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "config": self.config.to_dict(),
            "parts": [p.to_dict() for p in self.parts],
            "matrix": {"new_interpreters": self.workers_new, "forked_workers": self.workers_forked, "runs": self.runs},
        }

    def render(self) -> str:
        """The parts as a table: seconds once, count per matrix, seconds per matrix; then the matrix's sum."""
        rows = [("part", "s", "× per matrix", "s per matrix")]
        for p in self.parts:
            rows.append(
                (
                    p.name,
                    f"{p.seconds:.3f}",
                    "" if p.per_matrix is None else str(p.per_matrix),
                    "" if p.matrix_seconds is None else f"{p.matrix_seconds:.1f}",
                )
            )
        total = sum(p.matrix_seconds or 0.0 for p in self.parts)
        rows.append(("sum over a matrix (CPU-seconds if nothing overlapped)", "", "", f"{total:.1f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        head = (
            f"{self.label}: {self.config.epochs} epochs, batch {self.config.batch_size}; a matrix on these factors "
            f"uses {self.workers_new} new interpreters (the fork server among them), {self.workers_forked} forked "
            f"workers and {self.runs} runs"
        )
        return head + "\n" + "\n".join(lines)


def _run_parts(prefix: str, run: RunResult, round_trip_s: float, *, count: int | None) -> list[Part]:
    """A run's own timings split into set-up, tracing, epochs, the end of the run, and the file round trip."""
    t: Timings = run.timings
    steady = t.epoch_ms_median / 1000
    trace = max(t.first_epoch_s - steady, 0.0)
    epochs = max(t.fit_s - trace, 0.0)
    end = max(t.total_s - t.setup_s - t.fit_s, 0.0)
    return [
        Part(f"{prefix}: set-up (seed, data, build, compile, checks)", t.setup_s, count),
        Part(f"{prefix}: trace/compile (1st epoch less a steady one)", trace, count),
        Part(f"{prefix}: training epochs", epochs, count),
        Part(f"{prefix}: final weights and predictions", end, count),
        Part(f"{prefix}: result through a file and the pipe", max(round_trip_s - t.total_s, 0.0), count),
    ]


def _timed_train(worker: Worker, config: TrainConfig) -> tuple[RunResult, float]:
    started = time.perf_counter()
    outcome = worker.train(config, compiled_metrics=False)  # as the matrix runs it
    elapsed = time.perf_counter() - started
    if isinstance(outcome, RunError):
        raise WorkerDied(str(outcome))
    return outcome, elapsed


def measure_breakdown(
    label: str, config: TrainConfig, *, factors: Sequence[Factor] = FACTORS, workdir: Path | None = None
) -> Breakdown:
    """Measure every part once (see the module docstring); raise `WorkerDied` if a worker or a run fails."""
    active = [f for f in factors if not f.missing()]
    keys = matrix_workers(active)
    forked = sum(1 for env, instance in keys if forkable(env, instance=instance, python=env.python or sys.executable))
    new = len(keys) - forked + (1 if forked else 0)  # the fork server is a new interpreter too
    runs = sum(len(group) for phase in plan_runs([(label, config)], active) for group in phase.values())
    parts: list[Part] = []
    with tempfile.TemporaryDirectory(prefix="sinecheck-breakdown-") as scratch:
        work = workdir or Path(scratch)
        started = time.perf_counter()
        with Worker(Environment(), workdir=work) as fresh:
            fresh.start()
            parts.append(Part("new interpreter: start, TensorFlow import, ready", time.perf_counter() - started, new))
            first, first_s = _timed_train(fresh, config)
            second, second_s = _timed_train(fresh, config)
            started = time.perf_counter()
            fresh.request_exit()
            if fresh._proc is not None:
                fresh._proc.wait(timeout=30)
            exit_s = time.perf_counter() - started
        server = ForkServer(workdir=work)
        try:
            started = time.perf_counter()
            server.start()
            parts.append(
                Part(
                    "fork server: start and TensorFlow import (one of the new interpreters)",
                    time.perf_counter() - started,
                )
            )
            started = time.perf_counter()
            with Worker(Environment(), workdir=work, fork_server=server) as child:
                child.start()
                parts.append(Part("forked worker: fork and ready", time.perf_counter() - started, forked))
        finally:
            server.close()
        parts += _run_parts("first run of a worker", first, first_s, count=len(keys))
        parts += _run_parts("each further run of a worker", second, second_s, count=runs - len(keys))
        started = time.perf_counter()
        compare(first, second)
        parts.append(Part("comparison of two runs", time.perf_counter() - started, len(active)))
        parts.append(Part("worker exit", exit_s, len(keys)))
    return Breakdown(label, config, tuple(parts), new, forked, runs)
