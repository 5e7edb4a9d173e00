"""Figures of the study and the explanation (matplotlib, Agg backend, returned as PNG bytes)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from sinecheck.checks.diverge import Divergence
from sinecheck.core.data import make_data
from sinecheck.core.result import MetricName
from sinecheck.study.explain import Explanation
from sinecheck.study.grid import format_value
from sinecheck.study.reference import ExperimentRuns
from sinecheck.study.runner import StudyResult
from sinecheck.study.stats import summarize

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def _axis_index(result: StudyResult, name: str) -> int:
    return [a.name for a in result.spec.axes].index(name)


def plot_study_curves(result: StudyResult, *, column: str | None = None) -> bytes:
    """Predicted curves vs sin(x), one panel per value of the first axis (initializer): the median run (by
    held-out MSE) and a band of the 10–90 % pointwise quantiles over seeds, at one value of the second axis."""
    plt = pyplot()
    spec = result.spec
    cells = spec.cells()
    first = spec.axes[0]
    if len(spec.axes) > 1:
        if column is None:  # the base config's value of the second axis when it is one of the columns
            base_value = str(getattr(spec.base, spec.axes[1].name, ""))
            column = base_value if base_value in spec.axes[1].values else spec.axes[1].values[0]
        cells = [c for c in cells if c.values[1] == column]
    n = len(cells)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols, 3.1 * rows), sharex=True, sharey=True, squeeze=False, layout="constrained"
    )
    data = make_data(spec.base)
    x = data.x_test[:, 0]
    for ax, cell in zip(axes.flat, cells, strict=False):
        curves = np.stack([result.curves[(cell.index, s)] for s in spec.seeds])
        mse = result.values(MetricName.MSE_TEST, cell)
        ok = np.isfinite(mse)
        ax.plot(x, data.y_test[:, 0], color="black", lw=1.8, label="sin(x)")
        if ok.any():
            good = curves[ok]
            median_run = good[np.argsort(mse[ok])[len(good) // 2]]
            ax.fill_between(
                x,
                np.quantile(good, 0.1, axis=0),
                np.quantile(good, 0.9, axis=0),
                alpha=0.3,
                color="tab:blue",
                label="10–90 % over seeds",
            )
            ax.plot(x, median_run, color="tab:blue", lw=1.4, label=f"median run (MSE {np.median(mse[ok]):.3f})")
        ax.set_title(f"{first.name} = {format_value(cell.values[0])}", fontsize=9)
        ax.set_ylim(-1.6, 1.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    suffix = f", {spec.axes[1].name} = {column}" if len(spec.axes) > 1 else ""
    fig.suptitle(f"Predicted waves over {len(spec.seeds)} seeds ({spec.base.epochs} epochs{suffix})", fontsize=11)
    return figure_bytes(fig)


def plot_study_heatmap(result: StudyResult) -> bytes:
    """Mean held-out MSE over seeds for every cell of a two-axis study, annotated."""
    plt = pyplot()
    spec = result.spec
    mean = np.nanmean(result.array(MetricName.MSE_TEST), axis=-1)
    fig, ax = plt.subplots(figsize=(1.3 * mean.shape[1] + 3, 0.45 * mean.shape[0] + 1.6))
    im = ax.imshow(mean, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(mean.shape[1]), [format_value(v) for v in spec.axes[1].values])
    ax.set_yticks(range(mean.shape[0]), [format_value(v) for v in spec.axes[0].values])
    ax.set_xlabel(spec.axes[1].name)
    ax.set_ylabel(spec.axes[0].name)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            ax.text(
                j,
                i,
                f"{mean[i, j]:.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if mean[i, j] > np.nanmean(mean) else "black",
            )
    fig.colorbar(im, ax=ax, label="mean held-out MSE")
    ax.set_title(f"Mean held-out MSE over {len(spec.seeds)} seeds ({spec.base.epochs} epochs)", fontsize=10)
    return figure_bytes(fig)


def plot_study_spread(result: StudyResult) -> bytes:
    """The held-out MSE of every seed in every cell (the spread a single run hides), grouped by the first axis."""
    plt = pyplot()
    spec = result.spec
    cells = spec.cells()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(cells) + 2), 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    second = spec.axes[1].values if len(spec.axes) > 1 else ("",)
    for i, cell in enumerate(cells):
        values = result.values(MetricName.MSE_TEST, cell)
        color = colors[second.index(cell.values[1]) % len(colors)] if len(spec.axes) > 1 else colors[0]
        jitter = np.linspace(-0.25, 0.25, len(values))
        ax.scatter(i + jitter, values, s=9, color=color, alpha=0.75)
        s = summarize(values)
        ax.errorbar(i, s.mean, yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], color="black", capsize=2, lw=1)
    ax.set_xticks(
        range(len(cells)), [" / ".join(format_value(v) for v in c.values) for c in cells], rotation=75, fontsize=6
    )
    if len(spec.axes) > 1:
        for j, v in enumerate(second):
            ax.scatter([], [], color=colors[j % len(colors)], label=f"{spec.axes[1].name} {v}")
        ax.legend(fontsize=7, ncol=len(second))
    ax.set_ylabel("held-out MSE (one dot per seed; bar: mean, 95 % CI)")
    ax.grid(alpha=0.3)
    ax.set_title("Spread over seeds per cell", fontsize=10)
    return figure_bytes(fig)


def plot_sweep(result: StudyResult) -> bytes:
    """Mean held-out MSE (95 % CI) and every seed along a one-axis sweep."""
    plt = pyplot()
    spec = result.spec
    cells = spec.cells()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, cell in enumerate(cells):
        values = result.values(MetricName.MSE_TEST, cell)
        ax.scatter(np.full(len(values), i), values, s=8, color="tab:gray", alpha=0.6)
        s = summarize(values)
        if s.n:
            ax.errorbar(
                i, s.mean, yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], fmt="o", color="tab:blue", capsize=3
            )
        if s.diverged:
            ax.annotate(f"{s.diverged} diverged", (i, s.mean if s.n else 0.5), fontsize=6, color="tab:red")
    ax.set_xticks(range(len(cells)), [format_value(c.values[0]) for c in cells], fontsize=8)
    ax.set_xlabel(spec.axes[0].name)
    ax.set_ylabel("held-out MSE")
    ax.grid(alpha=0.3)
    ax.set_title(f"{spec.name}, {len(spec.seeds)} seeds each\non {spec.base.describe()}", fontsize=7)
    return figure_bytes(fig)


def plot_explain(explanation: Explanation) -> bytes:
    """Shapley attribution of the MSE gap and of the curve distance, with 95 % intervals and the noise floor."""
    plt = pyplot()
    e = explanation
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, attribution, total, noise, title in (
        (axes[0], e.mse_attribution, e.gap, max(e.noise_mse.values()), "held-out MSE (B − A)"),
        (axes[1], e.curve_attribution, e.curve_gap, max(e.noise_curve.values()), "curve RMS distance from A"),
    ):
        items = [*attribution, total]
        labels = [a.factor for a in attribution] + ["total"]
        means = [a.mean for a in items]
        err = [[a.mean - a.ci_low for a in items], [a.ci_high - a.mean for a in items]]
        ax.barh(range(len(items)), means, xerr=err, color=["tab:blue"] * len(attribution) + ["tab:gray"], capsize=3)
        ax.axvspan(-noise, noise, color="tab:orange", alpha=0.15, label=f"seed noise ±{noise:.3f}")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(items)), labels, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(
        f"Why {e.a_name} and {e.b_name} differ: Shapley values over {len(e.seeds)} seeds (95 % CI)", fontsize=10
    )
    return figure_bytes(fig)


def growth_label(divergence: Divergence) -> str:
    """The first divergence as the growth plot marks it: the stage, and the layer (and op) where one is named."""
    label = f"first divergence: {divergence.stage}"
    layer = divergence.layer
    if layer is not None:
        label += f"\nlayer '{layer.name}' ({layer.class_name}) {layer.tensor}"
        if layer.op is not None:
            label += f", op {layer.op.op_type} '{layer.op.name}'"
    return label


def plot_growth(divergence: Divergence, *, title: str) -> bytes:
    """max |Δw| per step on a log scale, with the first divergence marked (its stage, layer and op)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    growth = np.where(divergence.growth > 0, divergence.growth, np.nan)
    ax.plot(np.arange(1, len(growth) + 1), growth, lw=1.2)
    if divergence.step is not None:
        label = "\n".join(textwrap.fill(line, 100) for line in growth_label(divergence).splitlines())
        ax.axvline(divergence.step + 1, color="tab:red", lw=0.8, label=label)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)  # below: names are long
    if divergence.layer is not None:
        title += f" — parts in layer '{divergence.layer.name}' ({divergence.layer.class_name})"
    title = textwrap.fill(title, 90)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("max |Δw|")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=9)
    return figure_bytes(fig)


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
                label = f"{e.label} (seed {r.config.seed}, MSE {r.metrics.mse_test:.3f})" if j == 0 else None
                ax.plot(
                    data.x_test[:, 0],
                    r.pred_test[:, 0],
                    color=color,
                    lw=1.6 if j == 0 else 0.8,
                    alpha=1.0 if j == 0 else 0.35,
                    label=label,
                )
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
