"""The main job: run the three reference experiments over a few seeds and write a Markdown report + plots."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.compare import json_float
from sinecheck.config import PRESETS, TrainConfig
from sinecheck.data import constant_baseline_mse, make_data
from sinecheck.figures import figure_bytes, pyplot
from sinecheck.result import RunResult
from sinecheck.seeding import fingerprint, format_fingerprint
from sinecheck.storage import atomic_write

#: Called before each run with (index from 1, total, label).
RunProgress = Callable[[int, int, str], None]


@dataclass
class ExperimentRuns:
    """All seeds of one config of one preset."""

    preset: str
    label: str
    config: TrainConfig  # the seed-0 (first seed) config
    runs: list[RunResult]

    def values(self, metric: str) -> np.ndarray:
        return np.array([np.nan if r.metrics[metric] is None else r.metrics[metric] for r in self.runs])


def run_reference(*, presets: Sequence[str] = tuple(PRESETS), seeds: Sequence[int] = (0, 1, 2),
                  epochs: int | None = None, progress: RunProgress | None = None,
                  train: Callable[[TrainConfig], RunResult] | None = None) -> list[ExperimentRuns]:
    """Train every config of the named presets once per seed, each from a fresh, freshly seeded model."""
    if train is None:
        from sinecheck.engines import train as train_fn

        train = train_fn
    plan: list[tuple[str, str, list[TrainConfig]]] = []
    for name in presets:
        preset = PRESETS[name].with_overrides(epochs=epochs)
        for cfg, label in zip(preset.configs, preset.labels, strict=True):
            plan.append((name, label, [cfg.replace(seed=s) for s in seeds]))
    total = sum(len(cfgs) for _, _, cfgs in plan)
    done = 0
    out: list[ExperimentRuns] = []
    for name, label, cfgs in plan:
        runs = []
        for cfg in cfgs:
            done += 1
            if progress is not None:
                progress(done, total, f"{name} {label} seed {cfg.seed}")
            runs.append(train(cfg))
        out.append(ExperimentRuns(name, label, cfgs[0], runs))
    return out


def check_fresh_starts(runs: Sequence[RunResult]) -> list[str]:
    """Problems with a sweep that should train each setting on a fresh model from the same seeded start.

    Runs of one seed and one architecture/initializer must share their initial-weight digest, and no run
    may start from the weights another run ended with: the classic mistake of re-compiling one model
    and calling ``fit`` again only continues training it.
    """
    problems: list[str] = []
    finals = {r.digests["final_weights"]: r for r in runs}
    for r in runs:
        source = finals.get(r.digests["initial_weights"])
        if source is not None and source is not r:
            problems.append(f"batch {r.config.batch_size} started from the final weights of batch "
                            f"{source.config.batch_size} (it continued training that model)")
    starts: dict[tuple[Any, ...], str] = {}
    for r in runs:
        key = (r.config.seed, r.config.hidden_units, r.config.kernel_initializer, r.config.bias_initializer)
        starts.setdefault(key, r.digests["initial_weights"])
        if r.config.seed is not None and r.digests["initial_weights"] != starts[key]:
            problems.append(f"batch {r.config.batch_size} started from other initial weights than its "
                            f"same-seed siblings ({r.digests['initial_weights'][:12]} vs {starts[key][:12]})")
    return problems


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
        rows.append({
            "preset": exp.preset, "label": exp.label, "config_id": cfg.config_id,
            "hidden_units": list(cfg.hidden_units), "initializer": str(cfg.kernel_initializer),
            "optimizer": str(cfg.optimizer), "batch_size": cfg.batch_size, "epochs": cfg.epochs,
            "seeds": [r.config.seed for r in exp.runs],
            "mse_train": [json_float(r.metrics["mse_train"]) for r in exp.runs],
            "mse_test": [json_float(r.metrics["mse_test"]) for r in exp.runs],
            "max_err_test": [json_float(r.metrics["max_err_test"]) for r in exp.runs],
            "final_loss": [json_float(r.metrics["final_loss"]) for r in exp.runs],
            "diverged": [r.diverged for r in exp.runs],
            "initial_digest": [r.digests["initial_weights"] for r in exp.runs],
            "final_digest": [r.digests["final_weights"] for r in exp.runs],
            "fit_s": [r.timings["fit_s"] for r in exp.runs],
            "epoch_ms_median": [r.timings["epoch_ms_median"] for r in exp.runs],
        })
    return rows


def render_markdown(experiments: Sequence[ExperimentRuns], env: dict[str, Any], *, elapsed_s: float,
                    figures: Sequence[str]) -> str:
    """The report text: environment, one table row per config, the figures, and how to read them."""
    seeds = sorted({r.config.seed for e in experiments for r in e.runs})
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
            f"| {_fmt_stats(e.values('mse_train'))} | {_fmt_stats(e.values('mse_test'))} "
            f"| {_fmt_stats(e.values('max_err_test'))} | {_fmt_stats(e.values('final_loss'))} "
            f"| {np.mean([r.timings['fit_s'] for r in e.runs]):.2f} "
            f"| {np.median([r.timings['epoch_ms_median'] for r in e.runs]):.1f} "
            f"| `{first.digests['initial_weights'][:16]}` | `{first.digests['final_weights'][:16]}` |")
    sweep = [e.runs[0] for e in experiments if e.preset == "batch-sweep"]
    if len(sweep) > 1:
        problems = check_fresh_starts(sweep)
        lines += ["", "Batch sweep: " + (
            "every batch size started from the same freshly initialised weights (identical initial digests), "
            "as it must: no batch size continued training another's model." if not problems
            else "**not fresh models**: " + "; ".join(problems))]
    diverged = [(e.label, r.config.seed) for e in experiments for r in e.runs if r.diverged]
    if diverged:
        lines += ["", f"Diverged runs (NaN/inf loss): {diverged}."]
    lines += ["", "## Predicted waves", ""]
    lines += [f"![{Path(f).stem}]({f})" for f in figures]
    lines += ["", "Config ids name each run exactly: `sinecheck run PRESET --json out.json` gives the full "
              "config, digests and metrics of a single run.", ""]
    return "\n".join(lines)


def plot_waves(experiments: Sequence[ExperimentRuns]) -> bytes:
    """One panel per preset: sin(x) and each config's held-out predictions (first seed bold, others faint)."""
    plt = pyplot()
    presets = list(dict.fromkeys(e.preset for e in experiments))
    fig, axes = plt.subplots(1, len(presets), figsize=(5.2 * len(presets), 4.0), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], presets, strict=True):
        group = [e for e in experiments if e.preset == name]
        data = make_data(group[0].config)
        ax.plot(data.x_test[:, 0], data.y_test[:, 0], color="black", lw=2.2, label="sin(x)")
        for i, e in enumerate(group):
            color = colors[i % len(colors)]
            for j, r in enumerate(e.runs):
                label = f"{e.label} (seed {r.config.seed}, MSE {r.metrics['mse_test']:.3f})" if j == 0 else None
                ax.plot(data.x_test[:, 0], r.pred_test[:, 0], color=color, lw=1.6 if j == 0 else 0.8,
                        alpha=1.0 if j == 0 else 0.35, label=label)
        ax.set_title(f"{name}: {group[0].config.kernel_initializer}, {group[0].config.optimizer}", fontsize=9)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("prediction")
    fig.suptitle("Predicted waves after training (faint lines: other seeds)", fontsize=11)
    return figure_bytes(fig)


def plot_losses(experiments: Sequence[ExperimentRuns]) -> bytes:
    """Training loss per epoch (log scale) of every config's first seed, all on one axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for e in experiments:
        loss = e.runs[0].loss_history
        ax.plot(np.arange(1, len(loss) + 1), loss, label=f"{e.preset} {e.label}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return figure_bytes(fig)


def write_report(experiments: Sequence[ExperimentRuns], out_dir: str | Path, *, elapsed_s: float,
                 analysis: Any = None) -> Path:
    """Write report.md, report.json, waves.png and loss.png — and the study's figures and section when an
    `analysis` (sinecheck.analysis.Analysis) is given — into `out_dir` (each atomically); return report.md."""
    out = Path(out_dir)
    env = experiments[0].runs[0].fingerprint if experiments else fingerprint()
    atomic_write(out / "waves.png", plot_waves(experiments))
    atomic_write(out / "loss.png", plot_losses(experiments))
    payload: dict[str, Any] = {"environment": env, "elapsed_s": elapsed_s, "rows": summary_rows(experiments),
                               "configs": {e.config.config_id: e.config.to_dict() for e in experiments}}
    text = render_markdown(experiments, env, elapsed_s=elapsed_s, figures=["waves.png", "loss.png"])
    if analysis is not None:
        from sinecheck.analysis import analysis_json, render_analysis, write_analysis

        figures = write_analysis(analysis, out)
        text += "\n" + render_analysis(analysis, figures=figures, heading="##") + "\n"
        payload["study"] = analysis_json(analysis)
    atomic_write(out / "report.json", json.dumps(payload, indent=2, default=_json_default) + "\n")
    return atomic_write(out / "report.md", text)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
