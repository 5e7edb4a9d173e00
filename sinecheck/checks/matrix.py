"""The reproducibility matrix: for each base config, change one factor at a time and compare.

A factor is a pair of sides (environment + config change + how the run is made); each cell is the verdict
of `compare` between the two sides' runs, with its evidence.  Some factors carry an expectation that must
hold on any machine (same seed + same environment is IDENTICAL; no seed and injected noise are NOT); the
rest is measured and reported.  Runs happen in isolated worker processes (`sinecheck.isolation`), one per
environment, shared by every row and factor that needs that environment; base runs are shared too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sinecheck.checks.diverge import Identical, trace_factor
from sinecheck.checks.factors import BASE, FACTORS, Expectation, Factor, Side, factor_by_name
from sinecheck.core.compare import Comparison, Tolerance, Verdict, compare, json_float
from sinecheck.core.config import OptimizerSpec, TrainConfig
from sinecheck.core.enums import TextEnum
from sinecheck.core.environment import Fingerprint
from sinecheck.core.presets import get_preset
from sinecheck.core.result import RunResult, from_json_float
from sinecheck.core.specs import ModelSpec, spec_label
from sinecheck.errors import ConfigError
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.pool import Outcome, RunError, WorkerPool
from sinecheck.isolation.protocol import RequestKind, RunErrorKind

#: Epochs the matrix trains by default.  Bitwise identity (or not) shows after a few steps; how far two
#: runs drift apart (ULP vs CLOSE) grows with epochs, so the grade of "measured" cells depends on it.
DEFAULT_EPOCHS = 5
#: Where a cell is not identical, the matrix can replay both sides step by step to say where they parted
#: (`sinecheck.checks.diverge`); at most this many epochs are traced (a trace holds every weight after every step).
LOCATE_EPOCHS = 10


class Locate(TextEnum):
    """Which cells `run_matrix` replays step by step to say where the two sides first parted."""

    BROKEN = "broken"  # only cells that break their factor's expectation (so a failing check says where)
    ALL = "all"  # every cell that is not identical
    NONE = "none"  # no replay


#: A small Dense(32) config: the fastest row, used by the test suite.
SMALL = TrainConfig(hidden_units=(32,), optimizer=OptimizerSpec("adam", 0.01), n_points=200)


class Row(NamedTuple):
    """One row of the matrix: its label and the base config every factor changes."""

    label: str
    config: TrainConfig


def matrix_rows(
    presets: Iterable[str] = ("keras-default", "tf-explicit", "batch-sweep"),
    *,
    small: bool = True,
    epochs: int = DEFAULT_EPOCHS,
    models: Iterable[ModelSpec] = (),
) -> list[Row]:
    """A row for every config of the presets, plus the small Dense(32) row, plus a row per user model (its
    default config: Adam, MSE, batch 32, seed 0)."""
    rows: list[Row] = []
    for name in presets:
        preset = get_preset(name)
        for cfg, label in zip(preset.configs, preset.labels, strict=True):
            rows.append(
                Row(name if len(preset.configs) == 1 else f"{name}/{label.split()[-1]}", cfg.replace(epochs=epochs))
            )
    if small:
        rows.append(Row("small", SMALL.replace(epochs=epochs)))
    for model in models:
        rows.append(Row(model.label, model.config(epochs=epochs)))
    labels = [label for label, _ in rows]
    if len(set(labels)) != len(labels):
        duplicate = next(label for label in labels if labels.count(label) > 1)
        raise ConfigError(
            f"matrix rows: two rows are called {duplicate!r}; allowed: distinct presets and models "
            "(give models distinct callable names)"
        )
    return rows


@dataclass(frozen=True)
class Evidence:
    """The numbers behind a cell's verdict: the worst tensor, the final weights, the held-out MSE of both sides,
    and (once located) where the two sides first parted.  Its fields are the cell's JSON keys."""

    worst_tensor: str
    max_abs: float
    max_rel: float
    max_ulp: int
    mismatched: int
    size: int
    max_abs_final_weights: float | None
    max_ulp_final_weights: int | None
    digest_a: str
    digest_b: str
    mse_test_a: float | None
    mse_test_b: float | None
    delta_mse_test: float | None
    summary: str
    config: str
    first_divergence: str | None = None  # the line `locate_divergences` adds
    #: For a factor that changes a compile setting: that change as read back from both models
    #: (``jit_compile False → True``), proof that it reached the model.
    reached: str | None = None

    @classmethod
    def of(cls, a: RunResult, b: RunResult, comparison: Comparison) -> Evidence:
        worst = comparison.worst
        final = [t for t in comparison.tensors if t.name.startswith("final/")]
        ma, mb = a.metrics.mse_test, b.metrics.mse_test
        return cls(
            worst_tensor=worst.name,
            max_abs=worst.max_abs,
            max_rel=worst.max_rel,
            max_ulp=worst.max_ulp,
            mismatched=worst.mismatched,
            size=worst.size,
            max_abs_final_weights=max(t.max_abs for t in final) if final else None,
            max_ulp_final_weights=max(t.max_ulp for t in final) if final else None,
            digest_a=a.digests["final_weights"],
            digest_b=b.digests["final_weights"],
            mse_test_a=ma,
            mse_test_b=mb,
            delta_mse_test=mb - ma,
            summary=comparison.summary(),
            config=a.config.describe()
            if a.config == b.config
            else f"A: {a.config.describe()}; B: {b.config.describe()}",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN/inf as strings); `first_divergence` only once located."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for optional in ("first_divergence", "reached"):
            if out[optional] is None:
                del out[optional]
        return {k: json_float(v) if isinstance(v, float) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Inverse of `to_dict` (other keys of `data` are ignored)."""
        text = ("worst_tensor", "digest_a", "digest_b", "summary", "config", "first_divergence", "reached")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = data.get(f.name)
            values[f.name] = from_json_float(value) if isinstance(value, str) and f.name not in text else value
        return cls(**values)


@dataclass
class Cell:
    """One factor on one row: the verdict and its evidence (or why there is none).  Plain data: it
    round-trips through JSON, so parallel pytest workers can share one matrix run."""

    factor: Factor
    row: str
    verdict: Verdict | None = None
    evidence: Evidence | None = None
    report: str = ""  # compare()'s full table, for failure messages
    skipped: str | None = None
    error: str | None = None

    @classmethod
    def measured(cls, factor: Factor, row: str, a: RunResult, b: RunResult, tolerance: Tolerance | None = None) -> Cell:
        """Compare two runs and keep the numbers behind the verdict.  A factor that changes a compile setting is
        an error cell when the setting reads back the same from both models (the change never reached the model)."""
        reached = None
        if factor.reaches is not None and a.compile_record is not None and b.compile_record is not None:
            setting, before, after = (
                factor.reaches,
                factor.reaches.of(a.compile_record),
                factor.reaches.of(b.compile_record),
            )
            if before == after:
                return cls(
                    factor,
                    row,
                    error=f"the change did not reach the model: {setting} reads back {before} on both sides "
                    f"({b.compile_record.describe()}); nothing to compare",
                )
            reached = "; ".join(a.compile_record.changes(b.compile_record))
        comparison = compare(a, b, tolerance=tolerance)
        evidence = dataclasses.replace(Evidence.of(a, b, comparison), reached=reached)
        return cls(factor, row, comparison.verdict, evidence, comparison.report())

    @property
    def first_divergence(self) -> str | None:
        """Where the two sides first parted, once `locate_divergences` replayed the cell."""
        return None if self.evidence is None else self.evidence.first_divergence

    @property
    def meets_expectation(self) -> bool | None:
        """True/False for factors with an expectation, None for measured ones (or when there is no verdict)."""
        if self.verdict is None or self.factor.expect is Expectation.MEASURED:
            return None
        if self.factor.expect is Expectation.IDENTICAL:
            return self.verdict is Verdict.IDENTICAL
        return self.verdict is not Verdict.IDENTICAL

    def check(self) -> Cell:
        """Raise AssertionError, with the full comparison, if the factor's expectation is broken or no
        verdict could be made; return the cell otherwise (measured factors always pass)."""
        if self.error:
            raise AssertionError(f"{self.factor.name} / {self.row}: no verdict: {self.error}")
        if self.meets_expectation is False:
            located = self.first_divergence
            config = None if self.evidence is None else self.evidence.config
            raise AssertionError(
                f"{self.factor.name} / {self.row} ({self.factor.question}): expected "
                f"{self.factor.expect}, got {self.verdict}\n"
                + (f"config: {config}\n" if config else "")
                + self.report
                + (f"\n{located}" if located else "")
            )
        return self

    def short(self) -> str:
        """Cell text for tables: the verdict with its size, e.g. ``ulp 12`` or ``divergent 2.1e-02``."""
        if self.skipped:
            return "refused" if self.skipped.startswith("refused:") else "skipped"
        if self.error or self.verdict is None or self.evidence is None:
            return "error"
        if self.verdict is Verdict.IDENTICAL:
            return "identical"
        if self.verdict is Verdict.ULP:
            return f"ulp {self.evidence.max_ulp}"
        return f"{self.verdict} {self.evidence.max_abs:.1e}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor.name,
            "row": self.row,
            "expect": self.factor.expect.value,
            "verdict": None if self.verdict is None else str(self.verdict),
            "meets_expectation": self.meets_expectation,
            "skipped": self.skipped,
            "error": self.error,
            "report": self.report,
            **({} if self.evidence is None else self.evidence.to_dict()),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        verdict = None if data["verdict"] is None else Verdict[data["verdict"].upper()]
        return cls(
            factor_by_name(data["factor"]),
            data["row"],
            verdict,
            Evidence.from_dict(data) if "worst_tensor" in data else None,
            data.get("report", ""),
            data.get("skipped"),
            data.get("error"),
        )


@dataclass
class Finding:
    """An observation the matrix makes besides verdicts, with its evidence."""

    name: str
    statement: str
    evidence: dict[str, Any]


@dataclass
class Matrix:
    """All cells of a matrix run, the findings, and how long it took."""

    rows: list[Row]
    factors: list[Factor]
    cells: list[Cell]
    findings: list[Finding] = field(default_factory=list)
    elapsed_s: float = 0.0
    fingerprint: Fingerprint | None = None

    def cell(self, factor: str, row: str) -> Cell:
        for c in self.cells:
            if c.factor.name == factor and c.row == row:
                return c
        raise KeyError(f"no cell for factor {factor!r} and row {row!r}")

    def violations(self) -> list[Cell]:
        """Cells whose verdict breaks their factor's expectation (a failed reproducibility promise)."""
        return [c for c in self.cells if c.meets_expectation is False]

    def table(self, *, markdown: bool = False) -> str:
        """Factor × row → verdict, with each factor's expectation."""
        labels = [label for label, _ in self.rows]
        header = ["factor", "expect", *labels]
        body = [[f.name, f.expect, *(self.cell(f.name, label).short() for label in labels)] for f in self.factors]
        if markdown:
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(r) + " |" for r in body]
            return "\n".join(lines)
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        fmt = "  ".join(f"{{:{w}}}" for w in widths)
        return "\n".join(
            [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)]
        ).rstrip()

    def notes(self) -> list[str]:
        """Skipped factors and errors, each with its reason."""
        out: list[str] = []
        for c in self.cells:
            if c.skipped and c.row == self.rows[0][0]:
                out.append(f"{c.factor.name}: skipped ({c.skipped})")
            elif c.error:
                out.append(f"{c.factor.name} / {c.row}: error: {c.error.splitlines()[0]}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed_s,
            "fingerprint": self.fingerprint,
            "rows": {label: cfg.to_dict() for label, cfg in self.rows},
            "factors": [
                {
                    "name": f.name,
                    "question": f.question,
                    "expect": f.expect.value,
                    "epoch_sensitive": f.epoch_sensitive,
                    "requires": list(f.requires),
                }
                for f in self.factors
            ],
            "cells": [c.to_dict() for c in self.cells],
            "findings": [{"name": f.name, "statement": f.statement, "evidence": f.evidence} for f in self.findings],
            "violations": [f"{c.factor.name} / {c.row}" for c in self.violations()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Matrix:
        """Inverse of `to_dict` (the cells' comparison tables come back as text)."""
        rows = [Row(label, TrainConfig.from_dict(cfg)) for label, cfg in data["rows"].items()]
        factors = [factor_by_name(f["name"]) for f in data["factors"]]
        return cls(
            rows,
            factors,
            [Cell.from_dict(c) for c in data["cells"]],
            [Finding(f["name"], f["statement"], f["evidence"]) for f in data["findings"]],
            data["elapsed_s"],
            data["fingerprint"],
        )


Progress = Callable[[int, int, str], None]


def _run_group(
    pool: WorkerPool,
    key: tuple[Environment, int],
    jobs: list[tuple[str, Side, TrainConfig]],
    results: dict[tuple[str, Side], Outcome],
    progress: Callable[[str], None],
) -> None:
    worker = pool.get(*key)
    for row, side, cfg in jobs:
        initial = None
        if side.initial_from is not None:
            source = results.get((row, side.initial_from))
            if not isinstance(source, RunResult):
                results[(row, side)] = RunError(
                    cfg, key[0].name, RunErrorKind.UNAVAILABLE, "the run providing the initial weights failed"
                )
                progress(f"{key[0].name} {row}")
                continue
            initial = source.initial_weights
        # A cell compares weights and predictions only: the model's own `evaluate` would cost ~10 % of each run.
        results[(row, side)] = worker.train(
            cfg, initial_weights=initial, unseeded_noise=side.unseeded_noise, compiled_metrics=False
        )
        progress(f"{key[0].name} {row}")


#: The runs of a matrix, grouped by the worker that makes them ((environment, instance) → (row, side, config)), in
#: two phases: runs that start from another run's initial weights come second.
Group = list[tuple[str, Side, TrainConfig]]
Plan = list[dict[tuple[Environment, int], Group]]


def plan_runs(rows: Sequence[tuple[str, TrainConfig]], factors: Sequence[Factor]) -> Plan:
    """Each distinct (row, side) run once, grouped by worker and phase."""
    jobs: dict[tuple[str, Side], TrainConfig] = {}
    for f in factors:
        for label, base in rows:
            for side in (f.a, f.b):
                jobs.setdefault((label, side), side.config(base))
    phases: Plan = [{}, {}]
    for (label, side), cfg in jobs.items():
        phase = phases[side.initial_from is not None]
        phase.setdefault((side.environment, side.instance), []).append((label, side, cfg))
    return phases


def matrix_workers(factors: Sequence[Factor]) -> list[tuple[Environment, int]]:
    """The (environment, instance) of every worker `run_matrix` uses for these factors (on any rows), to prestart."""
    active = [f for f in factors if not f.missing()]
    return list(dict.fromkeys((side.environment, side.instance) for f in active for side in (f.a, f.b)))


def run_matrix(
    rows: Sequence[tuple[str, TrainConfig]],
    factors: Sequence[Factor],
    *,
    pool: WorkerPool | None = None,
    parallel: int = 2,
    tolerance: Tolerance | None = None,
    progress: Progress | None = None,
    probe_shuffle: bool = True,
    locate: Locate | str = Locate.BROKEN,
) -> Matrix:
    """Train every side of every factor on every row in isolated workers and compare the pairs.

    `locate` replays cells step by step to find where the two sides first parted (`locate_divergences`):
    see `Locate`.
    """
    try:
        locate = Locate(locate)
    except ValueError:
        allowed = ", ".join(m.value for m in Locate)
        raise ConfigError(f"locate: invalid value {locate!r}; allowed: {allowed}") from None
    start = time.perf_counter()
    own_pool = pool is None
    pool = pool or WorkerPool()
    try:
        active = [f for f in factors if not f.missing()]
        phases = plan_runs(rows, active)
        pool.prestart(key for phase in phases for key in phase)  # every import starts now, in the background
        results: dict[tuple[str, Side], Outcome] = {}
        total, done = sum(len(group) for phase in phases for group in phase.values()), 0

        def tick(label: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, label)

        # The shuffle probes run in their worker's lane, right after its runs of the first phase (not after all).
        probes = probe_environments(active) if probe_shuffle else []
        found: dict[Environment, Finding] = {}

        def run_then_probe(key: tuple[Environment, int], group: Group, first: bool) -> None:
            _run_group(pool, key, group, results, tick)
            if first and key[1] == 0 and key[0] in probes:
                found[key[0]] = shuffle_finding(pool, key[0], rows[0][1])

        for index, phase in enumerate(phases):
            groups = sorted(phase.items(), key=lambda kv: -len(kv[1]))  # the biggest group starts first
            with ThreadPoolExecutor(max_workers=max(1, parallel)) as ex:
                for fut in [ex.submit(run_then_probe, key, group, index == 0) for key, group in groups]:
                    fut.result()
        cells = []
        for f in factors:
            missing = f.missing()
            for label, _ in rows:
                if missing:
                    cells.append(Cell(f, label, skipped=f"needs {', '.join(missing)}: not installed"))
                    continue
                a, b = results[(label, f.a)], results[(label, f.b)]
                if isinstance(b, RunError) and b.kind is RunErrorKind.REFUSED and not isinstance(a, RunError):
                    cells.append(Cell(f, label, skipped=f"refused: {b.message}"))  # the factor's change, stated
                    continue
                if isinstance(a, RunError) or isinstance(b, RunError):
                    err = a if isinstance(a, RunError) else b
                    cells.append(Cell(f, label, error=str(err)))
                    continue
                cells.append(Cell.measured(f, label, a, b, tolerance))
        matrix = Matrix([Row(*row) for row in rows], list(factors), cells, fingerprint=pool.get(BASE).fingerprint)
        if locate is not Locate.NONE:
            locate_divergences(matrix, pool, only_broken=locate is Locate.BROKEN)
        for environment in probes:  # in probe order; an environment no run of this matrix used is probed now
            matrix.findings.append(found.get(environment) or shuffle_finding(pool, environment, rows[0][1]))
        matrix.elapsed_s = time.perf_counter() - start
        return matrix
    finally:
        if own_pool:
            pool.close()


def locate_divergences(matrix: Matrix, pool: WorkerPool, *, only_broken: bool = True) -> None:
    """Replay both sides of each non-identical cell (of each broken one with `only_broken`) step by step and
    store the first-divergence line in ``cell.evidence.first_divergence`` (it joins the failure message)."""
    configs = dict(matrix.rows)
    for cell in matrix.cells:
        if cell.verdict is None or cell.verdict is Verdict.IDENTICAL or cell.evidence is None:
            continue  # nothing parted (a broken negative control is identical: there is no step to find)
        if only_broken and cell.meets_expectation is not False:
            continue
        config = configs[cell.row]
        traced = min(config.epochs, LOCATE_EPOCHS)
        try:
            divergence = trace_factor(config.replace(epochs=traced), cell.factor, pool=pool).divergence
        except Exception as exc:  # the verdict stands; say why there is no location
            line = f"first divergence: not located ({type(exc).__name__}: {exc})"
            cell.evidence = dataclasses.replace(cell.evidence, first_divergence=line)
            continue
        line = divergence.describe()
        if isinstance(divergence, Identical):
            line = (
                f"first divergence: not within the {traced} epochs replayed step by step (the replay agreed "
                "bit for bit: the runs parted later, or not reproducibly)"
            )
        line += "" if traced == config.epochs else f" (first {traced} epochs)"
        cell.evidence = dataclasses.replace(cell.evidence, first_divergence=line)


def probe_environments(factors: Sequence[Factor]) -> list[Environment]:
    """The environments `shuffle_findings` probes: the default one, and Keras 2's when the tf-keras factor runs."""
    return [BASE] + [f.b.environment for f in factors if f.name == "tf-keras"]


def shuffle_findings(
    pool: WorkerPool, config: TrainConfig, *, factors: Sequence[Factor] = FACTORS, epochs: int = 3
) -> list[Finding]:
    """Does seeded ``fit(shuffle=True)`` draw a new permutation each epoch?  Observed per Keras implementation."""
    return [shuffle_finding(pool, env, config, epochs=epochs) for env in probe_environments(factors)]


def shuffle_finding(pool: WorkerPool, environment: Environment, config: TrainConfig, *, epochs: int = 3) -> Finding:
    """`shuffle_findings` in one environment (its first worker)."""
    worker = pool.get(environment)
    cfg = config.replace(shuffle=True)
    seeded = worker.call(RequestKind.SHUFFLE_ORDERS, {"config": cfg.to_dict(), "epochs": epochs})["orders"]
    unseeded = worker.call(RequestKind.SHUFFLE_ORDERS, {"config": cfg.replace(seed=None).to_dict(), "epochs": epochs})[
        "orders"
    ]
    fp = worker.fingerprint or {}
    impl = (
        f"tf_keras {fp.get('tf_keras')}" if fp.get("keras_impl") == "tf_keras" else f"Keras {fp.get('keras')}"
    ) + f" on TF {fp.get('tensorflow')}"
    same_seeded = all(o == seeded[0] for o in seeded[1:])
    same_unseeded = all(o == unseeded[0] for o in unseeded[1:])
    samples = len(seeded[0])  # what the probe saw: the config's data (a data spec's own sample count)
    statement = (
        f"{impl}: with a seed, every epoch of fit(shuffle=True) used "
        + ("the SAME permutation" if same_seeded else "a new permutation")
        + "; without a seed, "
        + ("the same permutation" if same_unseeded else "a new one each epoch")
        + f" (seed {cfg.seed}, {epochs} epochs, {samples} samples, batch {cfg.batch_size}"
        + _probed_for(cfg)
        + ")"
    )
    return Finding(
        f"epoch-reshuffle/{environment.name}",
        statement,
        {
            "implementation": impl,
            "samples": samples,
            "batch_size": cfg.batch_size,
            "seeded_same_every_epoch": same_seeded,
            "unseeded_same_every_epoch": same_unseeded,
            "seeded_first_indices": [o[:10] for o in seeded],
            "unseeded_first_indices": [o[:10] for o in unseeded],
        },
    )


def _probed_for(config: TrainConfig) -> str:
    """For a user's model or data: whose fit the shuffle probe measured.  The probe trains a pass-through model
    in place of the user's (fit's order comes from its data pipeline: sample count, batch size and seed)."""
    if not config.custom:
        return ""
    subject = (
        ModelSpec(config.model, config.data).label if config.model else f"the data spec {spec_label(config.data or '')}"
    )
    return f" — the data and batch size of {subject}; a pass-through probe model stood in for its model"
