"""Statistics of the study: per-cell summaries with bootstrap intervals and a balanced-ANOVA variance decomposition."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinecheck.core.compare import json_float


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
        return {k: json_float(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[..., Any] = np.mean,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
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
        res = stats.bootstrap(
            (values,),
            statistic,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
            vectorized=True,
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(values: np.ndarray) -> Summary:
    """Mean, standard deviation (ddof=1), median and 95 % bootstrap CI of the mean, over the finite values."""
    values = np.asarray(values, np.float64)
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return Summary(0, int(values.size), math.nan, math.nan, math.nan, math.nan, math.nan)
    low, high = bootstrap_ci(ok)
    return Summary(
        int(ok.size),
        int(values.size - ok.size),
        float(ok.mean()),
        float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
        float(np.median(ok)),
        low,
        high,
    )


@dataclass(frozen=True)
class Term:
    """One source of variation in a balanced ANOVA: its share of the total sum of squares, degrees of freedom,
    F statistic against the within-cell (seed) variation and the p-value of that F."""

    share: float
    df: int
    f: float | None
    p: float | None

    def to_dict(self) -> dict[str, Any]:
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
        return np.asarray(cell_means.mean(axis=other, keepdims=True) - grand)

    sums: list[tuple[str, float, int]] = []
    for i, name in enumerate(names):
        sums.append((name, float((np.broadcast_to(effect((i,)), levels) ** 2).sum() * reps), levels[i] - 1))
    for i, j in itertools.combinations(range(k), 2):
        inter = effect((i, j)) - effect((i,)) - effect((j,))
        sums.append(
            (
                f"{names[i]} × {names[j]}",
                float((np.broadcast_to(inter, levels) ** 2).sum() * reps),
                (levels[i] - 1) * (levels[j] - 1),
            )
        )
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
