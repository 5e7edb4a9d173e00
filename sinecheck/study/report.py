"""The main job: run the three reference experiments over a few seeds and write a Markdown report + plots."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import atomic_write
from sinecheck.core.compare import json_float
from sinecheck.core.data import constant_baseline_mse
from sinecheck.core.environment import Fingerprint, format_fingerprint
from sinecheck.core.result import MetricName
from sinecheck.keras.runtime import probed_fingerprint
from sinecheck.study.analysis import Analysis, analysis_json, render_analysis, write_analysis
from sinecheck.study.figures import plot_losses, plot_waves
from sinecheck.study.reference import ExperimentRuns, check_fresh_starts


def _fmt_stats(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "diverged"
    if finite.size == 1:
        return f"{finite[0]:.4f}"
    return f"{finite.mean():.4f} ± {finite.std(ddof=1):.4f}"


def summary_rows(experiments: Sequence[ExperimentRuns]) -> list[dict[str, Any]]:
    """One JSON-safe row per config: settings, per-seed metrics, digests and timings."""
    rows = []
    for exp in experiments:
        cfg = exp.config
        rows.append(
            {
                "preset": exp.preset,
                "label": exp.label,
                "config_id": cfg.config_id,
                "hidden_units": list(cfg.hidden_units),
                "initializer": str(cfg.kernel_initializer),
                "optimizer": str(cfg.optimizer),
                "batch_size": cfg.batch_size,
                "epochs": cfg.epochs,
                "seeds": [r.config.seed for r in exp.runs],
                "mse_train": [json_float(r.metrics.mse_train) for r in exp.runs],
                "mse_test": [json_float(r.metrics.mse_test) for r in exp.runs],
                "max_err_test": [json_float(r.metrics.max_err_test) for r in exp.runs],
                "final_loss": [json_float(r.metrics.final_loss) for r in exp.runs],
                "diverged": [r.diverged for r in exp.runs],
                "initial_digest": [r.digests["initial_weights"] for r in exp.runs],
                "final_digest": [r.digests["final_weights"] for r in exp.runs],
                "fit_s": [r.timings.fit_s for r in exp.runs],
                "epoch_ms_median": [r.timings.epoch_ms_median for r in exp.runs],
            }
        )
    return rows


def render_markdown(
    experiments: Sequence[ExperimentRuns], env: Fingerprint, *, elapsed_s: float, figures: Sequence[str]
) -> str:
    """The report text: environment, one table row per config, the figures, and how to read them."""
    seeds = sorted({r.config.seed for e in experiments for r in e.runs if r.config.seed is not None})
    base = constant_baseline_mse(experiments[0].config) if experiments else float("nan")
    lines = [
        "# sinecheck report: the three reference experiments and the error study",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} in {elapsed_s:.0f} s.",
        f"Environment: {format_fingerprint(env)}.",
        "",
        f"Each configuration was trained from a fresh, freshly seeded model for seeds {seeds}. Errors are "
        "measured against the clean sin(x) on the training grid and on a held-out grid of the points between "
        f"training points. For scale: predicting the best constant scores MSE {base:.4f}. With few seeds, "
        "the ± (sample standard deviation over seeds) is itself uncertain: one seed is one sample, not the answer.",
        "",
        "| preset | run | initializer | optimizer | batch | MSE train | MSE held-out | max abs err held-out "
        "| final loss | fit s (mean) | ms/epoch | initial weights (first seed) | final weights (first seed) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in experiments:
        cfg, first = e.config, e.runs[0]
        lines.append(
            f"| {e.preset} | {e.label} | {cfg.kernel_initializer} | {cfg.optimizer} | {cfg.batch_size} "
            f"| {_fmt_stats(e.values(MetricName.MSE_TRAIN))} | {_fmt_stats(e.values(MetricName.MSE_TEST))} "
            f"| {_fmt_stats(e.values(MetricName.MAX_ERR_TEST))} | {_fmt_stats(e.values(MetricName.FINAL_LOSS))} "
            f"| {np.mean([r.timings.fit_s for r in e.runs]):.2f} "
            f"| {np.median([r.timings.epoch_ms_median for r in e.runs]):.1f} "
            f"| `{first.digests['initial_weights'][:16]}` | `{first.digests['final_weights'][:16]}` |"
        )
    sweep = [e.runs[0] for e in experiments if e.preset == "batch-sweep"]
    if len(sweep) > 1:
        problems = check_fresh_starts(sweep)
        lines += [
            "",
            "Batch sweep: "
            + (
                "every batch size started from the same freshly initialised weights (identical initial digests), "
                "as it must: no batch size continued training another's model."
                if not problems
                else "**not fresh models**: " + "; ".join(problems)
            ),
        ]
    diverged = [(e.label, r.config.seed) for e in experiments for r in e.runs if r.diverged]
    if diverged:
        lines += ["", f"Diverged runs (NaN/inf loss): {diverged}."]
    lines += ["", "## Predicted waves", ""]
    lines += [f"![{Path(f).stem}]({f})" for f in figures]
    lines += [
        "",
        "Config ids name each run exactly: `sinecheck run PRESET --json out.json` gives the full "
        "config, digests and metrics of a single run.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    experiments: Sequence[ExperimentRuns], out_dir: str | Path, *, elapsed_s: float, analysis: Analysis | None = None
) -> Path:
    """Write report.md, report.json, waves.png and loss.png — and the study's figures and section when an
    `analysis` is given — into `out_dir` (each atomically); return report.md."""
    out = Path(out_dir)
    env = experiments[0].runs[0].fingerprint if experiments else probed_fingerprint()
    atomic_write(out / "waves.png", plot_waves(experiments))
    atomic_write(out / "loss.png", plot_losses(experiments))
    payload: dict[str, Any] = {
        "environment": env,
        "elapsed_s": elapsed_s,
        "rows": summary_rows(experiments),
        "configs": {e.config.config_id: e.config.to_dict() for e in experiments},
    }
    text = render_markdown(experiments, env, elapsed_s=elapsed_s, figures=["waves.png", "loss.png"])
    if analysis is not None:
        figures = write_analysis(analysis, out)
        text += "\n" + render_analysis(analysis, figures=figures, heading="##") + "\n"
        payload["study"] = analysis_json(analysis)
    atomic_write(out / "report.json", json.dumps(payload, indent=2, default=_json_default) + "\n")
    return atomic_write(out / "report.md", text)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
