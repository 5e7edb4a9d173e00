"""Running a study: one run per (cell, seed), on a process pool or Dask, stored as it finishes so a study resumes."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict, cast

import numpy as np

from sinecheck._io import atomic_write
from sinecheck.core.config import TrainConfig
from sinecheck.core.data import make_data
from sinecheck.core.environment import Fingerprint
from sinecheck.core.result import MetricName, Metrics
from sinecheck.engines.registry import train
from sinecheck.errors import ConfigError
from sinecheck.keras.runtime import probed_fingerprint
from sinecheck.study.grid import METRICS, GridCell, StudySpec


def dead_relu_fraction(weights: Sequence[np.ndarray], x: np.ndarray) -> float:
    """Share of hidden ReLU units whose pre-activation is <= 0 on every input in `x` (never active, so no
    gradient reaches them: they cannot help the fit).  `weights` are kernel, bias per layer."""
    h, dead, units = np.asarray(x, np.float64), 0, 0
    for i in range(0, len(weights) - 2, 2):
        z = h @ np.asarray(weights[i], np.float64) + np.asarray(weights[i + 1], np.float64)
        dead += int(np.sum(np.all(z <= 0, axis=0)))
        units += z.shape[1]
        h = np.maximum(z, 0)
    return dead / units if units else 0.0


#: A per-run figure of a study's records besides its `Metrics`.
Diagnostic = Literal["dead_relu_init", "dead_relu_final", "fit_s", "total_s"]


class RunRecord(TypedDict):
    """What the study keeps of one (cell, seed) run: ``runs/<cell>/seed-<s>.json`` (plus ``cell``, its axis
    values, once stored), the metrics there written as `METRICS` in that order by `record_to_json`."""

    config_id: str
    seed: int | None
    engine: str
    metrics: Metrics  # errors against the clean sin(x), the final loss
    diverged: bool
    diverged_epoch: int | None
    dead_relu_init: float | None  # share of hidden ReLU units never active on the training inputs
    dead_relu_final: float | None
    fit_s: float | None
    total_s: float | None


def record_to_json(record: RunRecord) -> dict[str, Any]:
    """`record` as its run file holds it: the metrics as `METRICS`, in that order (NaN as JSON's ``NaN``)."""
    return {**record, "metrics": {name.value: record["metrics"].get(name) for name in METRICS}}


def record_from_json(data: dict[str, Any]) -> RunRecord:
    """Inverse of `record_to_json` (the record keeps any other key of the file, such as ``cell``)."""
    return cast(RunRecord, {**data, "metrics": Metrics.from_json(data["metrics"])})


class RunOutput(NamedTuple):
    """One run reduced to its record and its held-out prediction curve."""

    record: RunRecord
    curve: np.ndarray


def run_one(config: TrainConfig, engine: str) -> RunOutput:
    """Train one (cell, seed) and reduce it to the study's record and the held-out prediction curve."""
    result = train(config, engine=engine)
    x = make_data(config).x_train
    relu = config.activation == "relu"
    record: RunRecord = {
        "config_id": config.config_id,
        "seed": config.seed,
        "engine": result.engine,
        "metrics": result.metrics,
        "diverged": result.diverged,
        "diverged_epoch": result.diverged_epoch,
        "dead_relu_init": dead_relu_fraction(list(result.initial_weights.values()), x) if relu else None,
        "dead_relu_final": (
            dead_relu_fraction(list(result.final_weights.values()), x) if relu and not result.diverged else None
        ),
        "fit_s": result.timings.fit_s,
        "total_s": result.timings.total_s,
    }
    return RunOutput(record, result.pred_test.reshape(-1))


def run_cell(configs: list[dict[str, Any]], engine: str) -> list[RunOutput]:
    """The unit of work sent to an executor: every seed of one cell, in one process (its traced loop is reused)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return [run_one(TrainConfig.from_dict(c), engine) for c in configs]


@dataclass
class StudyResult:
    """Every run of a study: records (metrics, diagnostics) and held-out prediction curves, by cell and seed."""

    spec: StudySpec
    records: dict[tuple[int, int], RunRecord]
    curves: dict[tuple[int, int], np.ndarray]
    elapsed_s: float = 0.0
    resumed: int = 0
    fingerprint: Fingerprint = field(default_factory=Fingerprint)

    def values(self, metric: MetricName | Diagnostic, cell: GridCell) -> np.ndarray:
        """`metric` of each seed of `cell` (NaN where a run diverged or the metric is missing)."""
        out = []
        for seed in self.spec.seeds:
            rec = self.records[(cell.index, seed)]
            if isinstance(metric, MetricName):
                value = None if rec["diverged"] else rec["metrics"].get(metric)
            else:
                value = rec.get(metric)
            out.append(np.nan if value is None else float(value))
        return np.array(out)

    def array(self, metric: MetricName | Diagnostic) -> np.ndarray:
        """`metric` as an array shaped (len(axis 1), ..., len(axis k), seeds)."""
        shape = [len(a.values) for a in self.spec.axes] + [len(self.spec.seeds)]
        return np.stack([self.values(metric, c) for c in self.spec.cells()]).reshape(shape)


def run_study(
    spec: StudySpec,
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int, float, float | None], None] | None = None,
) -> StudyResult:
    """Run every (cell, seed) of `spec` not already stored in `out_dir`, then load them all.

    ``workers=1`` runs in this process; more uses a process pool (spawned, so TensorFlow state never crosses);
    `scheduler` (``tcp://host:port``) sends cells to a Dask cluster; `executor` takes any Executor instead.
    `progress(done, total, elapsed_s, eta_s)` is called as runs finish.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: invalid value {workers!r}; allowed: an integer >= 1")
    store = StudyStore(out_dir, spec)
    cells = spec.cells()
    pending = [(c, [s for s in spec.seeds if not store.has(c, s)]) for c in cells]
    pending = [(c, seeds) for c, seeds in pending if seeds]
    total = spec.runs
    done = total - sum(len(s) for _, s in pending)
    resumed = done
    started = time.perf_counter()

    def report(done_now: int) -> None:
        if progress is not None:
            elapsed = time.perf_counter() - started
            fresh = done_now - resumed
            eta = elapsed / fresh * (total - done_now) if fresh else None
            progress(done_now, total, elapsed, eta)

    report(done)
    tasks = [(c, [c.config.replace(seed=s).to_dict() for s in seeds]) for c, seeds in pending]
    if pending and executor is None and scheduler is None and workers == 1:
        for cell, configs in tasks:
            for config in configs:  # one run at a time, so progress moves and an interrupt loses one run
                record, curve = run_one(TrainConfig.from_dict(config), spec.engine)
                store.save(cell, record, curve)
                done += 1
                report(done)
    elif pending:
        with ExecutorScope(executor, workers, scheduler) as pool:
            futures: dict[Future[list[RunOutput]], GridCell] = {
                pool.submit(run_cell, configs, spec.engine): cell for cell, configs in tasks
            }
            for future in as_completed(futures):
                for record, curve in future.result():
                    store.save(futures[future], record, curve)
                    done += 1
                report(done)
    result = store.load()
    result.elapsed_s, result.resumed = time.perf_counter() - started, resumed
    return result


class ExecutorScope:
    """The executor a study runs on, as a context: the caller's (left open), a Dask client's, or a process pool."""

    def __init__(self, given: Executor | None, workers: int, scheduler: str | None) -> None:
        self.given, self.workers, self.scheduler = given, workers, scheduler
        self.client: Any = None  # a dask.distributed.Client (dask is optional and untyped)
        self.pool: Executor | None = None

    def __enter__(self) -> Executor:
        if self.given is not None:
            return self.given
        if self.scheduler is not None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise ConfigError("--scheduler: needs dask.distributed (pip install -e '.[dask]')") from None
            connect: Callable[[str], Any] = Client  # (dask.distributed is untyped)
            self.client = connect(self.scheduler)
            executor: Executor = self.client.get_executor()
            return executor
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.client is not None:
            self.client.close()


class StudyStore:
    """A study's directory: ``study.json`` (the spec) and ``runs/<cell>/seed-<s>.json`` + ``.npy`` per run.

    The ``.npy`` is written first and the JSON last (both atomically), so a run counts as stored only when
    complete.  A directory holding another study is an error, never silently mixed or overwritten.
    """

    def __init__(self, root: str | os.PathLike[str], spec: StudySpec) -> None:
        self.root, self.spec = Path(root), spec
        spec_path = self.root / "study.json"
        if spec_path.exists():
            try:
                stored = json.loads(spec_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(
                    f"{spec_path}: unreadable study file ({exc}); delete the directory to start over"
                ) from None
            if stored != spec.to_dict():
                raise ConfigError(
                    f"{spec_path}: holds another study (id {StudySpec.from_dict(stored).spec_id}, "
                    f"this one is {spec.spec_id}); allowed: the same study, or a new --out directory"
                )
        else:
            atomic_write(spec_path, json.dumps(spec.to_dict(), indent=2) + "\n")

    def _paths(self, cell: GridCell, seed: int | None) -> tuple[Path, Path]:
        stem = self.root / "runs" / cell.key / f"seed-{seed}"
        return stem.with_suffix(".json"), stem.with_suffix(".npy")

    def has(self, cell: GridCell, seed: int) -> bool:
        json_path, npy_path = self._paths(cell, seed)
        return json_path.exists() and npy_path.exists()

    def save(self, cell: GridCell, record: RunRecord, curve: np.ndarray) -> None:
        json_path, npy_path = self._paths(cell, record["seed"])
        atomic_write(npy_path, lambda fh: np.save(fh, np.asarray(curve, np.float32), allow_pickle=False))
        atomic_write(json_path, json.dumps({**record_to_json(record), "cell": list(cell.values)}, indent=1) + "\n")

    def load(self) -> StudyResult:
        records, curves = {}, {}
        for cell in self.spec.cells():
            for seed in self.spec.seeds:
                json_path, npy_path = self._paths(cell, seed)
                try:
                    records[(cell.index, seed)] = record_from_json(json.loads(json_path.read_text()))
                    curves[(cell.index, seed)] = np.load(npy_path, allow_pickle=False)
                except (OSError, KeyError, TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"{json_path}: missing or unreadable run ({exc}); rerun the study to fill it"
                    ) from None
        return StudyResult(self.spec, records, curves, fingerprint=probed_fingerprint())
