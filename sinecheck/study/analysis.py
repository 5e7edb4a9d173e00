"""The whole error study as one job: the grid, the sweeps, keras-default vs tf-explicit explained, the claims —
stored, tabulated, plotted and written as Markdown + JSON.  Used by ``sinecheck study`` and ``sinecheck report``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import atomic_write
from sinecheck.core.presets import get_preset
from sinecheck.core.result import MetricName
from sinecheck.study.claims import (
    DEFAULT_CAP,
    LOOKS,
    Claim,
    ClaimVerdict,
    SeedRuns,
    baseline_spread,
    claim_article_batch_loop,
    claim_consistency,
    claim_implementation_factors,
    claim_initializer_and_batch_matter,
    claim_larger_batches_accurate_gradient,
    claim_lr_with_small_stddev_fits_better,
    claim_one_ulp,
    claim_reused_permutation,
    claim_seeding_reproduces,
    claim_smaller_batches_fit_better,
    claim_stddev_drastic,
    fresh_process_runs,
    judge_family,
    looks_up_to,
    render_claims,
)
from sinecheck.study.explain import Explanation, explain, render_explanation
from sinecheck.study.figures import plot_explain, plot_study_curves, plot_study_heatmap, plot_study_spread, plot_sweep
from sinecheck.study.grid import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_INITIALIZERS,
    LEARNING_RATE_SWEEP,
    OPTIMIZER_SWEEP,
    STDDEV_SWEEP,
    Axis,
    StudySpec,
    base_config,
    format_value,
    grid_study,
    sweep_study,
)
from sinecheck.study.runner import ExecutorScope, StudyResult, run_study
from sinecheck.study.stats import Summary, summarize, variance_decomposition

#: The recorded golden baselines (one JSON per TF/Keras environment), read by the implementation-factors claim.
BASELINES_DIR = Path(__file__).resolve().parents[2] / "tests" / "baselines"
#: The metrics summarised per cell in the analysis JSON.
_CELL_METRICS = (MetricName.MSE_TEST, MetricName.MAX_ERR_TEST, MetricName.FINAL_LOSS)
#: (stage label, done, total, elapsed s, ETA s or None)
Progress = Callable[[str, int, int, float, float | None], None]


@dataclass
class StudyPlan:
    """What `run_analysis` runs: the main grid, the sweeps, and whether to explain and judge the claims."""

    grid: StudySpec
    sweeps: list[StudySpec] = field(default_factory=list)
    explain_pair: tuple[str, str] | None = ("keras-default", "tf-explicit")
    claims: bool = True
    claims_cap: int = DEFAULT_CAP  # seeds a sequential claim may grow to (the last planned look)


def default_plan(
    *,
    preset: str = "keras-default",
    seeds: int = 10,
    epochs: int | None = None,
    initializers: Sequence[str] = DEFAULT_INITIALIZERS,
    batch_sizes: Sequence[str] = DEFAULT_BATCH_SIZES,
    axes: Sequence[Axis] = (),
    sweeps: bool = True,
    engine: str = "fused",
) -> StudyPlan:
    """The issue's study: initializer × batch size (or the given `axes`) on `preset`, plus stddev, learning-rate
    and optimizer sweeps on tf-explicit, keras-default vs tf-explicit explained, and the claims."""
    if axes:
        grid = StudySpec(
            " × ".join(a.name for a in axes), base_config(preset, epochs), tuple(axes), tuple(range(seeds)), engine
        )
    else:
        grid = grid_study(
            preset=preset, seeds=seeds, epochs=epochs, initializers=initializers, batch_sizes=batch_sizes, engine=engine
        )
    plan = StudyPlan(grid)
    if sweeps:
        plan.sweeps = [
            sweep_study(Axis(name, values), seeds=seeds, epochs=epochs, engine=engine)
            for name, values in (
                ("stddev", STDDEV_SWEEP),
                ("learning_rate", LEARNING_RATE_SWEEP),
                ("optimizer", OPTIMIZER_SWEEP),
            )
        ]
    return plan


@dataclass
class Analysis:
    """Everything the study produced."""

    plan: StudyPlan
    grid: StudyResult
    sweeps: list[StudyResult]
    explanation: Explanation | None
    claims: list[Claim]
    elapsed_s: float
    runs: int


def run_analysis(
    plan: StudyPlan,
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Run (or resume) every part of `plan`, storing runs under `out_dir`."""
    out = Path(out_dir)
    started = time.perf_counter()

    def stage(label: str) -> Callable[[int, int, float, float | None], None] | None:
        if progress is None:
            return None
        return lambda done, total, elapsed, eta: progress(label, done, total, elapsed, eta)

    pooled = workers > 1 or scheduler is not None
    with (
        ExecutorScope(None, workers, scheduler) if pooled else contextlib.nullcontext() as executor
    ):  # one pool, for the claims too
        grid = run_study(plan.grid, out / "runs" / "grid", executor=executor, progress=stage(plan.grid.name))
        runs = plan.grid.runs
        sweeps = []
        for spec in plan.sweeps:
            sweeps.append(
                run_study(spec, out / "runs" / spec.axes[0].name, executor=executor, progress=stage(spec.name))
            )
            runs += spec.runs
        explanation = None
        if plan.explain_pair:
            a_name, b_name = plan.explain_pair
            epochs = plan.grid.base.epochs
            a, b = (base_config(n, epochs) for n in plan.explain_pair)
            t0 = time.perf_counter()
            explanation = explain(
                a,
                b,
                seeds=plan.grid.seeds,
                engine=plan.grid.engine,
                a_name=a_name,
                b_name=b_name,
                progress=None
                if progress is None
                else (lambda d, t, _label: progress("explain", d, t, time.perf_counter() - t0, None)),
                executor=executor,
            )
            runs += 2 ** len(explanation.factors) * len(explanation.seeds)
        claims: list[Claim] = []
        if plan.claims:
            claims = judge_claims(
                plan,
                grid,
                sweeps,
                explanation,
                progress=progress,
                looks=looks_up_to(plan.claims_cap),
                executor=executor,
                workers=workers if scheduler is None else 2,
            )
    return Analysis(plan, grid, sweeps, explanation, claims, time.perf_counter() - started, runs)


def judge_claims(
    plan: StudyPlan,
    grid: StudyResult,
    sweeps: Sequence[StudyResult],
    explanation: Explanation | None,
    *,
    progress: Progress | None = None,
    looks: Sequence[int] = LOOKS,
    processes: bool = True,
    executor: Executor | None = None,
    workers: int = 1,
) -> list[Claim]:
    """Every claim that the available results (plus dedicated, sequentially added seeds) can judge, then Holm
    over the family.  `processes=False` skips the fresh-process runs (seeding-reproduces, oneDNN off); an
    `executor` (the study's pool, `workers` processes) trains the claims' plain runs in parallel."""
    engine, base = plan.grid.engine, plan.grid.base
    epochs = base.epochs
    names = [a.name for a in plan.grid.axes]
    t0 = time.perf_counter()
    runs = SeedRuns(engine, executor=executor, workers=workers)

    def tick(label: str) -> None:
        if progress is not None:
            progress(f"claims: {label}", runs.trained, 0, time.perf_counter() - t0, None)

    implicit, explicit = base_config("keras-default", epochs), base_config("tf-explicit", epochs)
    if explanation is not None and explanation.engine == engine:
        full = "+".join(f.name for f in explanation.factors)
        for i, seed in enumerate(explanation.seeds):  # the explanation trained both ends already
            runs.know(explanation.a.replace(seed=seed), float(explanation.mse[explanation.a_name][i]))
            runs.know(explanation.b.replace(seed=seed), float(explanation.mse[full][i]))
    for result in (grid, *sweeps):  # every stored run is a seed some claim may need (e.g. tf-explicit's)
        if result.spec.engine == engine:
            for cell in result.spec.cells():
                for seed, mse in zip(result.spec.seeds, result.values(MetricName.MSE_TEST, cell), strict=True):
                    runs.know(cell.config.replace(seed=seed), float(mse))
    stddev = [s for s in sweeps if s.spec.axes[0].name == "stddev"]
    is_grid = names == ["initializer", "batch_size"]
    family = 7 + len(stddev[:1]) + 2 * is_grid  # the statistical claims judged below
    kw: dict[str, Any] = {"looks": looks, "family": family, "progress": tick}

    out: list[Claim] = []
    pending = None
    if processes:
        tick("fresh processes (fit)")
        pool = ThreadPoolExecutor(1)
        pending = pool.submit(fresh_process_runs, base)  # workers run beside the in-process claims
    out.append(claim_consistency(runs, implicit, explicit, **kw))
    out.append(claim_lr_with_small_stddev_fits_better(runs, implicit, explicit, explanation=explanation, **kw))
    if is_grid:
        out.append(claim_initializer_and_batch_matter(grid))
        out.append(claim_smaller_batches_fit_better(grid, family=family))
    if stddev:
        out.append(claim_stddev_drastic(stddev[0], runs=runs, **kw))
    out.append(claim_larger_batches_accurate_gradient(base, runs=runs, **kw))
    loop = get_preset("batch-sweep").with_overrides(epochs=epochs).configs
    out.append(claim_article_batch_loop(runs, loop, **kw))
    out.append(claim_one_ulp(runs, base, **kw))
    fresh: dict[str, Any] = {}
    if pending is not None:
        tick("waiting for the fresh processes")
        fresh = pending.result()
        pool.shutdown()
    on, off = fresh.get("default-1", {}), fresh.get("onednn-off", {})
    onednn = (
        {"onednn_off_mse_delta": off["mse"] - on["mse"], "bitwise_equal": off["digest"] == on["digest"]}
        if "mse" in on and "mse" in off
        else {}
    )
    out.append(
        claim_implementation_factors(
            runs, base, processes=onednn, baselines=baseline_spread(BASELINES_DIR, epochs=epochs), **kw
        )
    )
    out.append(claim_reused_permutation(runs, base, **kw))
    if processes:
        out.insert(1, claim_seeding_reproduces(fresh, in_process=runs.result(base)))
    tick(f"done ({runs.trained} trainings)")
    return judge_family(out)


# -- rendering -----------------------------------------------------------------------------------------------


def _ci(s: Summary) -> str:
    return f"{s.mean:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]" if s.n else "—"


def study_table(result: StudyResult) -> str:
    """Markdown table: one row per cell with MSE mean [95 % CI], std, median, max |err|, diverged, dead ReLUs."""
    spec = result.spec
    head = [a.name for a in spec.axes] + [
        "held-out MSE mean [95 % CI]",
        "std",
        "median",
        "max abs err",
        "final loss",
        "diverged",
        "dead ReLU init → end",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in spec.cells():
        s = summarize(result.values(MetricName.MSE_TEST, cell))
        err = summarize(result.values(MetricName.MAX_ERR_TEST, cell))
        loss = summarize(result.values(MetricName.FINAL_LOSS, cell))
        d0, d1 = result.values("dead_relu_init", cell), result.values("dead_relu_final", cell)
        dead = f"{np.nanmean(d0):.0%} → {np.nanmean(d1):.0%}" if np.isfinite(d0).any() else "—"
        lines.append(
            "| "
            + " | ".join(
                [format_value(v) for v in cell.values]
                + [
                    _ci(s),
                    f"{s.std:.4f}" if s.n else "—",
                    f"{s.median:.4f}" if s.n else "—",
                    f"{err.mean:.3f}" if err.n else "—",
                    f"{loss.mean:.4f}" if loss.n else "—",
                    f"{s.diverged}/{s.n + s.diverged}",
                    dead,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def decomposition_table(result: StudyResult, metric: MetricName = MetricName.MSE_TEST) -> str:
    terms = variance_decomposition(result.array(metric), [a.name for a in result.spec.axes])
    if terms is None:
        return "Variance decomposition: not computable (a run diverged, so the design is unbalanced; or no variation)."
    lines = ["| source | share of variance | df | F | p |", "|---|---|---|---|---|"]
    for name, t in terms.items():
        f = f"{t.f:.1f}" if t.f is not None else "—"
        p = f"{t.p:.2g}" if t.p is not None else "—"
        lines.append(f"| {name} | {t.share:.1%} | {t.df} | {f} | {p} |")
    return "\n".join(lines)


def render_analysis(analysis: Analysis, *, figures: dict[str, str], heading: str = "#") -> str:
    """The study as Markdown (tables, decomposition, sweeps, explanation, claims ledger, figures)."""
    a = analysis
    g = a.grid.spec
    h2 = heading + "#"
    lines = [
        f"{heading} Error study",
        "",
        f"{a.runs} trainings ({g.base.epochs} epochs each, engine `{g.engine}`: "
        + ("bitwise equal to Keras fit" if g.engine == "fused" else "see the engines' agreement")
        + f") in {a.elapsed_s:.0f} s"
        + (
            f" ({a.grid.resumed} grid runs reused from an earlier, interrupted or finished study)"
            if a.grid.resumed
            else ""
        )
        + ". "
        f"Base: {g.base.describe()}; seeds {list(g.seeds)} in every cell (paired). Intervals are 95 % "
        "BCa bootstrap intervals of the mean over seeds. 'Dead ReLU' = hidden "
        "units never active on the training inputs: with x ≥ 0 and zero biases, every unit with a negative "
        "input weight starts dead.",
        "",
        f"{h2} {g.name}",
        "",
        study_table(a.grid),
        "",
        "What explains the variation of the held-out MSE (balanced ANOVA; F tests against the seed variation):",
        "",
        decomposition_table(a.grid),
        "",
    ]
    for key in ("study_heatmap", "study_curves", "study_spread"):
        if key in figures:
            lines += [f"![{key}]({figures[key]})", ""]
    for sweep in a.sweeps:
        lines += [
            f"{h2} {sweep.spec.name}",
            "",
            f"On {sweep.spec.base.describe()}.",
            "",
            study_table(sweep),
            "",
            decomposition_table(sweep),
            "",
        ]
        key = f"sweep_{sweep.spec.axes[0].name}"
        if key in figures:
            lines += [f"![{key}]({figures[key]})", ""]
    if a.explanation is not None:
        lines += [
            f"{h2} Why keras-default and tf-explicit predict different waves",
            "",
            "```",
            render_explanation(a.explanation),
            "```",
            "",
        ]
        if "explain" in figures:
            lines += [f"![explain]({figures['explain']})", ""]
    if a.claims:
        lines += [f"{h2} Claims ledger", "", render_claims(a.claims, markdown=True), ""]
    return "\n".join(lines)


def write_analysis(analysis: Analysis, out_dir: str | Path, *, prefix: str = "") -> dict[str, str]:
    """Write every figure as PNG into `out_dir`; returns figure key → file name (relative to `out_dir`)."""
    out = Path(out_dir)
    figures: dict[str, str] = {}

    def save(key: str, data: bytes) -> None:
        name = f"{prefix}{key}.png"
        atomic_write(out / name, data)
        figures[key] = name

    if len(analysis.grid.spec.axes) == 2:
        save("study_heatmap", plot_study_heatmap(analysis.grid))
    save("study_curves", plot_study_curves(analysis.grid))
    save("study_spread", plot_study_spread(analysis.grid))
    for sweep in analysis.sweeps:
        save(f"sweep_{sweep.spec.axes[0].name}", plot_sweep(sweep))
    if analysis.explanation is not None:
        save("explain", plot_explain(analysis.explanation))
    return figures


def analysis_json(analysis: Analysis) -> dict[str, Any]:
    """Everything as plain JSON: per-cell statistics, decompositions, explanation, claims, timings."""

    def result_dict(r: StudyResult) -> dict[str, Any]:
        cells = []
        for cell in r.spec.cells():
            cells.append(
                {
                    "values": list(cell.values),
                    "config_id": cell.config.replace(seed=0).config_id,
                    **{m.value: summarize(r.values(m, cell)).to_dict() for m in _CELL_METRICS},
                }
            )
        terms = variance_decomposition(r.array(MetricName.MSE_TEST), [a.name for a in r.spec.axes])
        return {
            "spec": r.spec.to_dict(),
            "spec_id": r.spec.spec_id,
            "cells": cells,
            "variance_decomposition": {k: t.to_dict() for k, t in terms.items()} if terms else None,
        }

    return {
        "grid": result_dict(analysis.grid),
        "sweeps": [result_dict(s) for s in analysis.sweeps],
        "explanation": analysis.explanation.to_dict() if analysis.explanation else None,
        "claims": [c.to_dict() for c in analysis.claims],
        "claims_decided": {
            "decided": [c.id for c in analysis.claims if c.verdict is not ClaimVerdict.INCONCLUSIVE],
            "not_decided": [c.id for c in analysis.claims if c.verdict is ClaimVerdict.INCONCLUSIVE],
            "cap": analysis.plan.claims_cap,
        },
        "elapsed_s": analysis.elapsed_s,
        "runs": analysis.runs,
        "fingerprint": analysis.grid.fingerprint,
    }


def write_study_outputs(analysis: Analysis, out_dir: str | Path, *, json_path: str | None = None) -> Path:
    """``study.md`` + figures (+ JSON) in `out_dir`, each written atomically; returns the Markdown path."""
    out = Path(out_dir)
    figures = write_analysis(analysis, out)
    payload = json.dumps(analysis_json(analysis), indent=2) + "\n"
    atomic_write(out / "study.json", payload)
    if json_path:
        atomic_write(json_path, payload)
    return atomic_write(out / "study.md", render_analysis(analysis, figures=figures) + "\n")
