"""Statistics of the study: BCa bootstrap intervals and p-values over paired seeds, Holm's correction, per-cell
summaries and a balanced-ANOVA variance decomposition (plus its seed-blocked F test)."""

from __future__ import annotations

import itertools
import math
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


#: Bootstrap resamples used for intervals and p-values (enough for tail probabilities of ~1e-3).
RESAMPLES = 4000


@dataclass(frozen=True)
class Bootstrap:
    """A bias-corrected and accelerated (BCa) bootstrap of one statistic of paired rows (seeds × columns).

    Rows (seeds) are resampled jointly, so columns measured on the same seed stay paired.  Besides the interval,
    the BCa distribution gives one-sided p-values by inverting the interval (Efron & Tibshirani 1993, ch. 14–15):
    `p_greater(t)` is the smallest level at which the lower BCa bound exceeds `t`.
    """

    estimate: float
    replicates: np.ndarray  # sorted bootstrap replicates of the statistic
    z0: float  # bias correction
    accel: float  # acceleration (jackknife)
    n: int

    @property
    def degenerate(self) -> bool:
        """Every replicate equal (e.g. every row identical): the interval has zero width."""
        scale = max(1.0, abs(self.estimate)) if math.isfinite(self.estimate) else 1.0
        return self.replicates.size == 0 or float(np.ptp(self.replicates)) <= 1e-12 * scale

    def _level(self, z: float) -> float:
        from scipy.stats import norm

        w = self.z0 + z
        denom = 1 - self.accel * w
        if denom <= 0:
            return 1.0 if z > 0 else 0.0
        return float(norm.cdf(self.z0 + w / denom))

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided BCa interval at `confidence`."""
        from scipy.stats import norm

        if not math.isfinite(self.estimate):
            return math.nan, math.nan
        if self.degenerate:
            return self.estimate, self.estimate
        tail = (1 - confidence) / 2
        qs = [self._level(float(norm.ppf(tail))), self._level(float(norm.ppf(1 - tail)))]
        low, high = np.quantile(self.replicates, qs)
        return float(low), float(high)

    def p_greater(self, t: float) -> float:
        """One-sided p-value for "the statistic is greater than `t`" (null: it is <= t)."""
        from scipy.stats import norm

        if not math.isfinite(self.estimate):
            return 1.0
        if self.degenerate:
            return 0.0 if self.estimate > t else 1.0
        b = self.replicates.size
        below = int(np.searchsorted(self.replicates, t, side="left"))
        ties = int(np.searchsorted(self.replicates, t, side="right")) - below
        floor = 1.0 / (b + 1)  # the bootstrap cannot resolve smaller tail probabilities
        if ties == 0 and below in (0, b):  # beyond every replicate: BCa's limit as G(t) -> 0 or 1
            u = math.inf if below == b else -math.inf
            if self.accel == 0 or (self.accel > 0) != (u > 0):
                return 1.0 - floor if u > 0 else floor
            return float(min(1.0 - floor, max(floor, norm.cdf(1 / self.accel - self.z0))))
        g = (below + 0.5 * ties) / b
        u = float(norm.ppf(g)) - self.z0
        denom = 1 + self.accel * u
        if denom <= 0:
            return 1.0 - floor if u > 0 else floor
        return float(min(1.0 - floor, max(floor, norm.cdf(u / denom - self.z0))))

    def p_less(self, t: float) -> float:
        """One-sided p-value for "the statistic is less than `t`" (null: it is >= t)."""
        if not math.isfinite(self.estimate):
            return 1.0
        if self.degenerate:
            return 0.0 if self.estimate < t else 1.0
        return float(min(1.0, max(0.0, 1.0 - self.p_greater(t))))


def bca_bootstrap(
    rows: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Bootstrap:
    """BCa bootstrap of `statistic` over the rows of `rows` (n seeds × k columns; a 1-D array is one column).

    `statistic` maps an array shaped (..., n, k) to (...): it is called once on every resample at once and once
    on the n leave-one-out samples (the jackknife that estimates the acceleration).  Reproducible via `seed`.
    """
    from scipy.stats import norm

    data = np.asarray(rows, np.float64)
    if data.ndim == 1:
        data = data[:, None]
    data = data[np.isfinite(data).all(axis=1)]
    n = data.shape[0]
    if n == 0:
        return Bootstrap(math.nan, np.empty(0), 0.0, 0.0, 0)
    estimate = float(statistic(data))
    if n == 1 or float(np.ptp(data, axis=0).max()) <= 1e-12 * max(1.0, float(np.abs(data).max())):
        return Bootstrap(estimate, np.full(1, estimate), 0.0, 0.0, n)
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        reps = np.asarray(statistic(data[rng.integers(0, n, (resamples, n))]), np.float64)
        reps = np.sort(reps[np.isfinite(reps)])
        keep = ~np.eye(n, dtype=bool)
        jack = np.asarray(statistic(np.stack([data[keep[i]] for i in range(n)])), np.float64)
    if reps.size == 0 or not math.isfinite(estimate):
        return Bootstrap(estimate, reps, 0.0, 0.0, n)
    share = (np.sum(reps < estimate) + 0.5 * np.sum(reps == estimate)) / reps.size
    z0 = float(norm.ppf(min(max(share, 0.5 / reps.size), 1 - 0.5 / reps.size)))
    jack = jack[np.isfinite(jack)]  # a leave-one-out sample can be degenerate (e.g. a zero SD in a log ratio)
    d = jack.mean() - jack if jack.size else np.zeros(1)
    ss = float(np.sum(d**2))
    accel = float(np.sum(d**3) / (6 * ss**1.5)) if ss > 0 and np.isfinite(ss) else 0.0
    return Bootstrap(estimate, reps, z0, accel, n)


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[..., Any] = np.mean,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """BCa bootstrap confidence interval of `statistic` (called with ``axis=-1``) over the finite `values`.

    BCa rather than percentile: the percentile interval undercovers at ten seeds and is [min, max] at two.  A
    sample whose values are all equal has a zero-width interval."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1 or np.ptp(values) == 0:
        v = float(statistic(values))
        return v, v
    boot = bca_bootstrap(values, lambda a: statistic(a[..., 0], axis=-1), resamples=resamples, seed=seed)
    return boot.ci(confidence)


def holm(pvalues: Sequence[float], groups: Sequence[object] | None = None) -> list[float]:
    """Holm's step-down adjusted p-values: family-wise error control over the whole list, under any dependence.

    With `groups` (one label per p-value; hypotheses of one group are mutually exclusive, so at most one of them
    can be true — e.g. "no effect" and "an effect at least the margin"), Shaffer's refinement: each step
    multiplies by the number of groups that still have a hypothesis not yet rejected, instead of the number of
    hypotheses left."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    labels = list(groups) if groups is not None else list(range(len(pvalues)))
    out = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        left = len({labels[j] for j in order[rank:]})
        running = max(running, min(1.0, left * pvalues[i]))
        out[i] = running
    return out


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


def blocked_main_effect(data: np.ndarray, axis: int) -> Term | None:
    """F test of one factor of a grid whose last axis is the seed, with the seed as a block.

    The seeds are shared across cells (same seed, same start in every cell), so the runs are not independent
    replicates: the cell means over the other factors give a (levels × seeds) table, tested by a two-way ANOVA
    without replication — the factor's mean square against its interaction with the seed (df (a−1)(n−1)).
    `share` is the factor's share of that table's variation.  None when a run diverged or nothing varies."""
    from scipy import stats

    data = np.asarray(data, np.float64)
    if not np.isfinite(data).all() or data.ndim < 2:
        return None
    other = tuple(i for i in range(data.ndim - 1) if i != axis)
    table = data.mean(axis=other) if other else data  # (levels, seeds)
    a, n = table.shape
    grand = table.mean()
    ss_factor = n * float(((table.mean(axis=1) - grand) ** 2).sum())
    ss_seed = a * float(((table.mean(axis=0) - grand) ** 2).sum())
    ss_total = float(((table - grand) ** 2).sum())
    ss_resid = max(ss_total - ss_factor - ss_seed, 0.0)
    df_f, df_r = a - 1, (a - 1) * (n - 1)
    if ss_total == 0 or df_f < 1 or df_r < 1:
        return None
    if ss_resid == 0:
        return Term(ss_factor / ss_total, df_f, math.inf, 0.0 if ss_factor > 0 else 1.0)
    f = (ss_factor / df_f) / (ss_resid / df_r)
    return Term(ss_factor / ss_total, df_f, f, float(stats.f.sf(f, df_f, df_r)))
