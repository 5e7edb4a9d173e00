"""The error study: how prediction error varies across any factors of a TrainConfig, over many seeds.

A study is a full-factorial grid of axes (initializer × batch size by default; any `TrainConfig` factor can be
an axis) with the same seeds in every cell, so cells are compared seed for seed and the design stays
balanced for the variance decomposition.  Each run records its errors against the clean sin(x), its final
loss, whether it diverged and the fraction of dead ReLU units at the start and the end (a unit that is never
active on the data cannot help the fit).  Runs are independent, so the study runs on any
`concurrent.futures.Executor` — a process pool by default, a Dask cluster when given a scheduler — one task
per cell; each finished cell is stored at once (JSON per run + ``.npy`` predictions), so an interrupted study
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.config import ConfigError, InitializerSpec, OptimizerSpec, TrainConfig, get_preset
from sinecheck.storage import atomic_write

STUDY_SCHEMA = 1

#: The initializers of the default study grid; ``zeros`` is the pathological control (no symmetry breaking).
DEFAULT_INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "random_normal(stddev=0.05)",
    "truncated_normal(stddev=0.02)", "random_uniform", "zeros",
)
#: Batch sizes of the default grid; "full" is the whole training set in one batch.
DEFAULT_BATCH_SIZES: tuple[str, ...] = ("8", "32", "64", "128", "full")
DEFAULT_STDDEVS: tuple[str, ...] = ("0.002", "0.005", "0.02", "0.05", "0.1", "0.2", "0.5")
DEFAULT_LEARNING_RATES: tuple[str, ...] = ("0.0003", "0.001", "0.003", "0.01", "0.03", "0.1")
DEFAULT_OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")
METRICS: tuple[str, ...] = ("mse_test", "mse_train", "max_err_test", "max_err_train", "final_loss")


# -- axes ----------------------------------------------------------------------------------------------------


def _set_initializer(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(kernel_initializer=InitializerSpec.parse(text))


def _set_bias_initializer(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(bias_initializer=InitializerSpec.parse(text))


def _set_batch_size(config: TrainConfig, text: str) -> TrainConfig:
    if text == "full":
        return config.replace(batch_size=config.n_points)
    return config.replace(batch_size=_int("batch_size", text))


def _set_learning_rate(config: TrainConfig, text: str) -> TrainConfig:
    opt = config.optimizer
    return config.replace(optimizer=OptimizerSpec(opt.name, _float("learning_rate", text), opt.params))


def _set_optimizer(config: TrainConfig, text: str) -> TrainConfig:
    """Another optimizer at the same learning rate (its own defaults otherwise), so only the rule changes."""
    return config.replace(optimizer=OptimizerSpec(text.strip(), config.optimizer.learning_rate))


def _set_stddev(config: TrainConfig, text: str) -> TrainConfig:
    """The kernel initializer's stddev; a kernel initializer without one becomes truncated_normal."""
    spec = config.kernel_initializer
    name = spec.name if spec.name in ("truncated_normal", "random_normal") else "truncated_normal"
    params = {**(spec.kwargs() if name == spec.name else {}), "stddev": _float("stddev", text)}
    return config.replace(kernel_initializer=InitializerSpec(name, tuple(params.items())))


def _set_units(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(hidden_units=tuple(_int("units", u) for u in text.split("-")))


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}: invalid value {text!r}; allowed: an integer") from None


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}: invalid value {text!r}; allowed: a number") from None


#: Axes with their own spelling; any other TrainConfig field is an axis too (its value parsed from JSON).
NAMED_AXES: dict[str, Callable[[TrainConfig, str], TrainConfig]] = {
    "initializer": _set_initializer, "bias_initializer": _set_bias_initializer, "batch_size": _set_batch_size,
    "learning_rate": _set_learning_rate, "optimizer": _set_optimizer, "stddev": _set_stddev, "units": _set_units,
}


def _set_field(name: str) -> Callable[[TrainConfig, str], TrainConfig]:
    def apply(config: TrainConfig, text: str) -> TrainConfig:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        return config.replace(**{name: value})

    return apply


@dataclass(frozen=True)
class Axis:
    """One factor of the grid: a name (``initializer``, ``batch_size``, ``learning_rate``, ``stddev``,
    ``optimizer``, ``units`` or any TrainConfig field) and its values as text, the way a user types them."""

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        from sinecheck.config import field_names

        allowed = sorted(set(NAMED_AXES) | set(field_names()) - {"seed", "schema"})
        if self.name not in allowed:
            raise ConfigError(f"axis: invalid value {self.name!r}; allowed: {', '.join(allowed)}")
        values = tuple(str(v).strip() for v in self.values)
        if not values or any(not v for v in values):
            raise ConfigError(f"{self.name}: invalid values {list(self.values)!r}; allowed: one or more values")
        if len(set(values)) != len(values):
            raise ConfigError(f"{self.name}: invalid values {list(values)!r}; allowed: distinct values")
        object.__setattr__(self, "values", values)

    def apply(self, config: TrainConfig, value: str) -> TrainConfig:
        """`config` with this axis set to `value` (validated: a bad value names the axis and what is allowed)."""
        return NAMED_AXES.get(self.name, _set_field(self.name))(config, value)

    @classmethod
    def parse(cls, text: str) -> Axis:
        """``name=v1,v2,...`` (values with parentheses, like ``truncated_normal(stddev=0.02)``, stay whole)."""
        name, sep, rest = text.partition("=")
        if not sep:
            raise ConfigError(f"--axis: invalid value {text!r}; allowed: NAME=V1,V2,... e.g. learning_rate=0.001,0.01")
        return cls(name.strip(), tuple(split_values(rest)))


def split_values(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a, b(x=1, y=2)`` → ``["a", "b(x=1, y=2)"]``."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current.strip())
    return out


# -- spec ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its axis values and the config they make (seed left to the study)."""

    index: int
    values: tuple[str, ...]
    config: TrainConfig

    @property
    def key(self) -> str:
        """A filesystem-safe, stable name for the cell's stored runs."""
        return f"c{self.index:03d}-{self.config.replace(seed=0).config_id}"


@dataclass(frozen=True)
class StudySpec:
    """What a study runs: a base config, its axes (full factorial), the seeds of every cell, the engine."""

    name: str
    base: TrainConfig
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    engine: str = "fused"

    def __post_init__(self) -> None:
        from sinecheck.engines import ENGINES

        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: invalid value {list(self.seeds)!r}; allowed: one or more distinct seeds")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine: invalid value {self.engine!r}; allowed: {', '.join(ENGINES)}")
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ConfigError(f"axes: invalid value {names!r}; allowed: each axis once")
        self.cells()  # every value must make a valid config: fail now, not halfway through

    def cells(self) -> list[Cell]:
        out = []
        for i, values in enumerate(itertools.product(*(a.values for a in self.axes))):
            config = self.base
            for axis, value in zip(self.axes, values, strict=True):
                config = axis.apply(config, value)
            out.append(Cell(i, tuple(values), config))
        return out

    @property
    def runs(self) -> int:
        return math.prod(len(a.values) for a in self.axes) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": STUDY_SCHEMA, "name": self.name, "base": self.base.to_dict(),
                "axes": [{"name": a.name, "values": list(a.values)} for a in self.axes],
                "seeds": list(self.seeds), "engine": self.engine}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        if data.get("schema") != STUDY_SCHEMA:
            raise ConfigError(f"study schema: invalid value {data.get('schema')!r}; allowed: {STUDY_SCHEMA}")
        return cls(data["name"], TrainConfig.from_dict(data["base"]),
                   tuple(Axis(a["name"], tuple(a["values"])) for a in data["axes"]), tuple(data["seeds"]),
                   data.get("engine", "fused"))

    @property
    def spec_id(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def grid_study(*, preset: str = "keras-default", seeds: int = 10, epochs: int | None = None,
               initializers: Sequence[str] = DEFAULT_INITIALIZERS, batch_sizes: Sequence[str] = DEFAULT_BATCH_SIZES,
               engine: str = "fused") -> StudySpec:
    """The main grid: kernel initializer × batch size × seeds on a preset's first config."""
    base = base_config(preset, epochs)
    return StudySpec("initializer × batch size", base,
                     (Axis("initializer", tuple(initializers)), Axis("batch_size", tuple(batch_sizes))),
                     tuple(range(seeds)), engine)


def sweep_study(axis: Axis, *, preset: str = "tf-explicit", seeds: int = 10, epochs: int | None = None,
                engine: str = "fused") -> StudySpec:
    """A one-axis sweep (stddev, learning rate, optimizer, ...) on a preset's first config."""
    return StudySpec(f"{axis.name} sweep", base_config(preset, epochs), (axis,), tuple(range(seeds)), engine)


def base_config(preset: str, epochs: int | None = None) -> TrainConfig:
    """A preset's first config, with `epochs` when given: the base of a study or of one side of `explain`."""
    base = get_preset(preset).configs[0]
    return base if epochs is None else base.replace(epochs=epochs)


# -- running -------------------------------------------------------------------------------------------------


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


def run_one(config: TrainConfig, engine: str) -> tuple[dict[str, Any], np.ndarray]:
    """Train one (cell, seed) and reduce it to the study's record and the held-out prediction curve."""
    from sinecheck.data import make_data
    from sinecheck.engines import train

    result = train(config, engine=engine)
    x = make_data(config).x_train
    relu = config.activation == "relu"
    record = {
        "config_id": config.config_id, "seed": config.seed, "engine": result.engine,
        "metrics": {k: result.metrics.get(k) for k in METRICS}, "diverged": result.diverged,
        "diverged_epoch": result.diverged_epoch,
        "dead_relu_init": dead_relu_fraction(list(result.initial_weights.values()), x) if relu else None,
        "dead_relu_final": (dead_relu_fraction(list(result.final_weights.values()), x)
                            if relu and not result.diverged else None),
        "fit_s": result.timings.get("fit_s"), "total_s": result.timings.get("total_s"),
    }
    return record, result.pred_test.reshape(-1)


def run_cell(configs: list[dict[str, Any]], engine: str) -> list[tuple[dict[str, Any], np.ndarray]]:
    """The unit of work sent to an executor: every seed of one cell, in one process (its traced loop is reused)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return [run_one(TrainConfig.from_dict(c), engine) for c in configs]


@dataclass
class StudyResult:
    """Every run of a study: records (metrics, diagnostics) and held-out prediction curves, by cell and seed."""

    spec: StudySpec
    records: dict[tuple[int, int], dict[str, Any]]
    curves: dict[tuple[int, int], np.ndarray]
    elapsed_s: float = 0.0
    resumed: int = 0
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def values(self, metric: str, cell: Cell) -> np.ndarray:
        """`metric` of each seed of `cell` (NaN where a run diverged or the metric is missing)."""
        out = []
        for seed in self.spec.seeds:
            rec = self.records[(cell.index, seed)]
            value = rec["metrics"].get(metric) if metric in METRICS else rec.get(metric)
            out.append(np.nan if value is None or (rec["diverged"] and metric in METRICS) else float(value))
        return np.array(out)

    def array(self, metric: str) -> np.ndarray:
        """`metric` as an array shaped (len(axis 1), ..., len(axis k), seeds)."""
        shape = [len(a.values) for a in self.spec.axes] + [len(self.spec.seeds)]
        return np.stack([self.values(metric, c) for c in self.spec.cells()]).reshape(shape)


def run_study(spec: StudySpec, out_dir: str | os.PathLike[str], *, workers: int = 1, scheduler: str | None = None,
              executor: Executor | None = None,
              progress: Callable[[int, int, float, float | None], None] | None = None) -> StudyResult:
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
            futures: dict[Future[Any], Cell] = {pool.submit(run_cell, configs, spec.engine): cell
                                                for cell, configs in tasks}
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
        self.client: Any = None
        self.pool: Executor | None = None

    def __enter__(self) -> Executor:
        if self.given is not None:
            return self.given
        if self.scheduler is not None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise ConfigError("--scheduler: needs dask.distributed (pip install -e '.[dask]')") from None
            self.client = Client(self.scheduler)
            return self.client.get_executor()
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.client is not None:
            self.client.close()


# -- storage -------------------------------------------------------------------------------------------------


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
                raise ConfigError(f"{spec_path}: unreadable study file ({exc}); delete the directory to start over"
                                  ) from None
            if stored != spec.to_dict():
                raise ConfigError(f"{spec_path}: holds another study (id {StudySpec.from_dict(stored).spec_id}, "
                                  f"this one is {spec.spec_id}); allowed: the same study, or a new --out directory")
        else:
            atomic_write(spec_path, json.dumps(spec.to_dict(), indent=2) + "\n")

    def _paths(self, cell: Cell, seed: int) -> tuple[Path, Path]:
        stem = self.root / "runs" / cell.key / f"seed-{seed}"
        return stem.with_suffix(".json"), stem.with_suffix(".npy")

    def has(self, cell: Cell, seed: int) -> bool:
        json_path, npy_path = self._paths(cell, seed)
        return json_path.exists() and npy_path.exists()

    def save(self, cell: Cell, record: dict[str, Any], curve: np.ndarray) -> None:
        json_path, npy_path = self._paths(cell, record["seed"])
        atomic_write(npy_path, lambda fh: np.save(fh, np.asarray(curve, np.float32), allow_pickle=False))
        atomic_write(json_path, json.dumps({**record, "cell": list(cell.values)}, indent=1) + "\n")

    def load(self) -> StudyResult:
        records, curves = {}, {}
        for cell in self.spec.cells():
            for seed in self.spec.seeds:
                json_path, npy_path = self._paths(cell, seed)
                try:
                    records[(cell.index, seed)] = json.loads(json_path.read_text())
                    curves[(cell.index, seed)] = np.load(npy_path, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"{json_path}: missing or unreadable run ({exc}); rerun the study to fill it"
                                      ) from None
        from sinecheck.seeding import fingerprint

        return StudyResult(self.spec, records, curves, fingerprint=fingerprint())


# -- statistics ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Statistics of one cell's values over seeds (NaN = diverged runs, left out and counted)."""

    n: int
    diverged: int
    mean: float
    std: float
    median: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        from sinecheck.compare import json_float

        return {k: json_float(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def bootstrap_ci(values: np.ndarray, statistic: Callable[..., Any] = np.mean, *, confidence: float = 0.95,
                 resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval (scipy.stats.bootstrap), reproducible through `seed`.

    A sample whose values are all equal has a zero-width interval (scipy reports NaN for it)."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1 or np.ptp(values) == 0:
        v = float(statistic(values))
        return v, v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((values,), statistic, confidence_level=confidence, n_resamples=resamples,
                              method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(values: np.ndarray) -> Summary:
    """Mean, standard deviation (ddof=1), median and 95 % bootstrap CI of the mean, over the finite values."""
    values = np.asarray(values, np.float64)
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return Summary(0, int(values.size), math.nan, math.nan, math.nan, math.nan, math.nan)
    low, high = bootstrap_ci(ok)
    return Summary(int(ok.size), int(values.size - ok.size), float(ok.mean()),
                   float(ok.std(ddof=1)) if ok.size > 1 else 0.0, float(np.median(ok)), low, high)


@dataclass(frozen=True)
class Term:
    """One source of variation in a balanced ANOVA: its share of the total sum of squares, degrees of freedom,
    F statistic against the within-cell (seed) variation and the p-value of that F."""

    share: float
    df: int
    f: float | None
    p: float | None

    def to_dict(self) -> dict[str, Any]:
        from sinecheck.compare import json_float

        return {"share": json_float(self.share), "df": self.df, "f": json_float(self.f), "p": json_float(self.p)}


def variance_decomposition(data: np.ndarray, names: Sequence[str]) -> dict[str, Term] | None:
    """How the variation of a balanced full-factorial design (last axis: seeds, the replicates) splits into
    each axis, each pair of axes (interaction) and the seeds (within cells).

    These are the sums of squares of a fixed-effects ANOVA, which for a balanced design are orthogonal
    projections: a main effect is the variation of the axis's marginal means, an interaction what the pair's
    cell means add beyond both main effects, "seed" the variation within cells; F tests (scipy.stats.f) each
    term against the seed variation.  Interactions of three or more axes are reported together.  None when a
    run diverged (the design is no longer balanced) or nothing varies.
    """
    from scipy import stats

    data = np.asarray(data, np.float64)
    if not np.isfinite(data).all() or data.ndim != len(names) + 1:
        return None
    k, reps = len(names), data.shape[-1]
    grand = data.mean()
    total = float(((data - grand) ** 2).sum())
    if total == 0:
        return None
    cell_means = data.mean(axis=-1)
    levels = cell_means.shape

    def effect(axes: tuple[int, ...]) -> np.ndarray:  # marginal means over the other axes, centred
        other = tuple(i for i in range(k) if i not in axes)
        return cell_means.mean(axis=other, keepdims=True) - grand

    sums: list[tuple[str, float, int]] = []
    for i, name in enumerate(names):
        sums.append((name, float((np.broadcast_to(effect((i,)), levels) ** 2).sum() * reps), levels[i] - 1))
    for i, j in itertools.combinations(range(k), 2):
        inter = effect((i, j)) - effect((i,)) - effect((j,))
        sums.append((f"{names[i]} × {names[j]}", float((np.broadcast_to(inter, levels) ** 2).sum() * reps),
                     (levels[i] - 1) * (levels[j] - 1)))
    within = float(((data - cell_means[..., None]) ** 2).sum())
    df_within = int(np.prod(levels)) * (reps - 1)
    if k > 2:
        ss = max(total - sum(s for _, s, _ in sums) - within, 0.0)
        sums.append(("higher-order interactions", ss, int(np.prod(levels)) - 1 - sum(d for _, _, d in sums)))
    out: dict[str, Term] = {}
    for name, ss, df in sums:
        f = p = None
        if df > 0 and df_within > 0 and within > 0:
            f = (ss / df) / (within / df_within)
            p = float(stats.f.sf(f, df, df_within))
        out[name] = Term(ss / total, df, f, p)
    out["seed (within cells)"] = Term(within / total, df_within, None, None)
    return out


def format_value(value: str) -> str:
    """Axis values as shown in tables (full initializer specs are long)."""
    return value.replace("(stddev=", "(").replace("random_normal", "rand_normal")
