"""Claims of the reference article, of two papers and of our own, each measured and judged with stated statistics.

Every claim names its source, its method, the statistic with its interval, the seeds used and the seed cap.
How a verdict is reached (the same for every statistical claim):

* **paired seeds**: the quantities compared are measured on the same seeds, and every statistic is computed on
  rows (one per seed); the bootstrap resamples whole rows, so nothing is treated as independent that is not.
  Grid claims whose runs share seeds across cells block on the seed (no pooled-run p-values).
* **BCa bootstrap** (`stats.bca_bootstrap`): the interval and the p-values (by inverting the interval).
* **sequential seeds**: a claim with dedicated runs starts at `LOOKS[0]` seeds and adds seeds at the planned
  looks until it is decided or the cap (the last look) is reached.  Honest over looks: a weighted Bonferroni —
  the look at n seeds spends α·n/Σlooks (its p-values are divided by n/Σlooks, its interval is at level
  1 − α·n/Σlooks), so most of α is kept for the cap and the looks together never spend more than α.
* **Holm** over the family: each statistical claim contributes up to two hypotheses — "no effect" (two-sided)
  and "the effect is at least the practical margin" (the equivalence test, TOST) — all adjusted together by
  Holm's step-down with Shaffer's refinement (a claim's two nulls exclude each other, so each step counts the
  claims still open, not the hypotheses).  A claim stops adding seeds once one of its hypotheses would be
  rejected even at the strictest step (α / number of claims), so at the cap only a claim whose interval still
  straddles both bars remains.
* **verdicts**: *supported* when the effect is significant in the claimed direction (and not shown negligible);
  *not supported* only from an interval: significant the other way, or equivalent to no effect within the
  practical margin (TOST); *inconclusive* otherwise — which happens only at the seed cap, with the interval shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.checks.factors import factor_by_name
from sinecheck.core.compare import json_float
from sinecheck.core.config import TrainConfig
from sinecheck.core.data import make_data
from sinecheck.core.enums import TextEnum
from sinecheck.core.result import MetricName, RunResult
from sinecheck.engines.common import fresh_start
from sinecheck.engines.fused import epoch_orders_from_keras, train_fused
from sinecheck.engines.numpy_engine import loss_and_gradients
from sinecheck.engines.registry import train
from sinecheck.isolation.pool import RunError, WorkerPool
from sinecheck.study.explain import Explanation
from sinecheck.study.runner import StudyResult, dead_relu_fraction, run_cell
from sinecheck.study.stats import Bootstrap, bca_bootstrap, blocked_main_effect, holm

ALPHA = 0.05
#: Seed counts at which a sequential claim is judged; the last is the cap.
LOOKS: tuple[int, ...] = (10, 20, 50, 100, 200)
#: The cap of ``sinecheck study`` / ``report`` unless asked otherwise: every claim decided on this machine at 200
#: (TF 2.21.0, Keras 3.15.1; at 50 the lr and one-ULP claims were not); see `looks_up_to`.
DEFAULT_CAP = 200


def looks_up_to(cap: int) -> tuple[int, ...]:
    """The planned looks of `LOOKS` below `cap`, then `cap` itself (the last look)."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 3:
        raise ValueError(f"claims cap: invalid value {cap!r}; allowed: an integer >= 3")
    return (*(n for n in LOOKS if n < cap), cap)


#: Practical margin for a difference of held-out MSE (2 % of the best constant's MSE, ~0.44 on this data).
MSE_MARGIN = 0.01


class ClaimVerdict(TextEnum):
    """What the evidence says of a claim: only a result that clears the stated bar supports or refutes it."""

    SUPPORTED = "supported"
    NOT_SUPPORTED = "not supported"
    INCONCLUSIVE = "inconclusive"


class Direction(TextEnum):
    """What a claim says of its statistic relative to the null value."""

    GREATER = "greater"
    LESS = "less"
    EQUAL = "equal"  # the claim is that the statistic is within the margin of the null value


@dataclass(frozen=True)
class StatTest:
    """How a claim's statistic is judged: the statistic of the seed rows, the claimed direction against `null`,
    the practical margin `(low, high)` of the equivalence test (None: no equivalence test), and how to show it."""

    label: str
    statistic: Callable[[np.ndarray], np.ndarray]  # rows (..., n, k) -> (...)
    direction: Direction
    null: float = 0.0
    margin: tuple[float, float] | None = None
    shown: Callable[[float], float] = float  # e.g. exp for a log ratio
    unit: str = ""


@dataclass
class Evidence:
    """The numbers behind a statistical verdict: estimate, interval, p-values (looks-corrected and Holm-adjusted),
    seeds used and the cap."""

    label: str
    estimate: float
    low: float
    high: float
    confidence: float
    p_effect: float  # two-sided, "no effect", × planned looks
    p_equivalent: float | None  # TOST against the margin, × planned looks (None: no equivalence test)
    direction: Direction
    seeds: int
    cap: int
    looks: int
    margin: tuple[float, float] | None = None
    null: float = 0.0
    p_effect_holm: float = math.nan
    p_equivalent_holm: float | None = None
    stopped: str = "fixed"  # "decided" (before the cap), "cap", or "fixed" (a fixed set of runs)

    def interval_text(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({self.confidence:.2%} BCa)"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["direction"] = self.direction.value
        out["margin"] = list(self.margin) if self.margin else None
        return out


@dataclass
class Claim:
    """One claim: its source, how it was measured, the verdict and the numbers behind it."""

    id: str
    claim: str
    source: str  # the article, a paper, or "sinecheck" (our own)
    method: str
    verdict: ClaimVerdict
    numbers: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    evidence: Evidence | None = None
    test: StatTest | None = None

    def to_dict(self) -> dict[str, Any]:
        ev = self.evidence
        show = self.test.shown if self.test else float  # e.g. a ratio tested on the log scale, shown as the ratio
        return {
            "id": self.id,
            "claim": self.claim,
            "source": self.source,
            "method": self.method,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "interval": (
                {
                    "statistic": ev.label,
                    "estimate": json_float(show(ev.estimate)),
                    "low": json_float(show(ev.low)),
                    "high": json_float(show(ev.high)),
                    "level": ev.confidence,
                    "p_effect_holm": json_float(ev.p_effect_holm),
                    "p_equivalent_holm": json_float(ev.p_equivalent_holm),
                }
                if ev
                else None
            ),
            "seeds": ev.seeds if ev else self.numbers.get("seeds"),
            "cap": ev.cap if ev else self.numbers.get("cap"),
            "stopped": ev.stopped if ev else "fixed",
            "evidence": _jsonable(ev.to_dict()) if ev else None,  # raw: on the scale the statistic is tested
            "numbers": _jsonable(self.numbers),
        }


ARTICLE = "the reference article (why sine predictions differ between TensorFlow and Keras, 2025)"
SUMMERS = "Summers & Dinneen, Nondeterminism and instability in neural network optimization, ICML 2021"
PHAM = "Pham et al., Problems and opportunities in training deep learning software systems, ASE 2020"
OURS = "sinecheck"


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return json_float(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


# -- judging ---------------------------------------------------------------------------------------------------


def evaluate(
    test: StatTest, rows: np.ndarray, *, looks: int = 1, cap: int | None = None, weight: float = 1.0
) -> Evidence:
    """The BCa bootstrap of `test`'s statistic on `rows` (seeds × columns).  This look's share `weight` of α
    (weighted Bonferroni over the planned looks: the weights sum to 1) divides both p-values, and the interval is
    at level 1 − ALPHA·weight."""
    boot: Bootstrap = bca_bootstrap(rows, test.statistic)
    p_effect = min(1.0, 2 * min(boot.p_greater(test.null), boot.p_less(test.null)) / weight)
    p_equiv: float | None = None
    if test.margin is not None:
        lo, hi = test.margin
        p_equiv = min(1.0, max(boot.p_greater(lo), boot.p_less(hi)) / weight)
    confidence = 1 - ALPHA * weight
    low, high = boot.ci(confidence)
    return Evidence(
        test.label,
        boot.estimate,
        low,
        high,
        confidence,
        p_effect,
        p_equiv,
        test.direction,
        boot.n,
        cap if cap is not None else boot.n,
        looks,
        test.margin,
        test.null,
    )


def decided(evidence: Evidence, family: int) -> bool:
    """Whether a hypothesis of this claim would be rejected even at the strictest step of the family's correction
    (α / `family` claims, see `judge_family`): then more seeds cannot change its verdict."""
    bar = ALPHA / max(family, 1)
    return evidence.p_effect < bar or (evidence.p_equivalent is not None and evidence.p_equivalent < bar)


def verdict_of(evidence: Evidence) -> ClaimVerdict:
    """The verdict from the Holm-adjusted p-values (see the module doc); inconclusive when neither is below ALPHA."""
    effect = evidence.p_effect_holm < ALPHA
    equivalent = evidence.p_equivalent_holm is not None and evidence.p_equivalent_holm < ALPHA
    if evidence.direction is Direction.EQUAL:
        if equivalent:
            return ClaimVerdict.SUPPORTED
        return ClaimVerdict.NOT_SUPPORTED if effect else ClaimVerdict.INCONCLUSIVE
    if equivalent:
        return ClaimVerdict.NOT_SUPPORTED  # the effect is smaller than the practical margin
    if effect:
        above = evidence.estimate > evidence.null
        sign_ok = above if evidence.direction is Direction.GREATER else not above
        return ClaimVerdict.SUPPORTED if sign_ok else ClaimVerdict.NOT_SUPPORTED
    return ClaimVerdict.INCONCLUSIVE


def judge_family(claims: Sequence[Claim]) -> list[Claim]:
    """Holm-adjust the p-values of every statistical claim together (its "no effect" test, and its equivalence
    test where it has a margin), then set each verdict from them (claims without evidence, such as a bitwise
    check, keep theirs)."""
    slots: list[tuple[Evidence, str, float]] = []
    for claim in claims:
        if claim.evidence is not None:
            slots.append((claim.evidence, "p_effect_holm", claim.evidence.p_effect))
            if claim.evidence.p_equivalent is not None:
                slots.append((claim.evidence, "p_equivalent_holm", claim.evidence.p_equivalent))
    groups = [id(evidence) for evidence, _, _ in slots]  # a claim's two nulls exclude each other
    for (evidence, name, _), adjusted in zip(slots, holm([p for _, _, p in slots], groups), strict=True):
        setattr(evidence, name, adjusted)
    for claim in claims:
        if claim.evidence is not None:
            claim.verdict = verdict_of(claim.evidence)
    return list(claims)


Row = Sequence[float]


def sequential(
    test: StatTest,
    measure: Callable[[int], Row],
    *,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    known: Mapping[int, Row] | None = None,
    progress: Callable[[str], None] | None = None,
    prefetch: Callable[[Sequence[int]], None] | None = None,
) -> tuple[Evidence, np.ndarray]:
    """Judge `test` on seeds 0, 1, ... : at each planned look (a number of seeds) measure the missing seeds
    (`measure(seed)` → one row; `known` rows are reused), evaluate, and stop once decided (see `decided`) or at
    the cap.  `prefetch(seeds)` is called with each look's new seeds first (to train them in parallel).  Returns the
    evidence (seeds used, cap, how it stopped) and the rows."""
    rows: dict[int, Row] = dict(known or {})
    evidence: Evidence | None = None
    for n in looks:
        if prefetch is not None:
            prefetch([seed for seed in range(n) if seed not in rows])
        for seed in range(n):
            if seed not in rows:
                rows[seed] = measure(seed)
        if progress is not None:
            progress(f"{test.label}: {n} seeds")
        data = np.array([rows[s] for s in range(n)], np.float64)
        evidence = evaluate(test, data, looks=len(looks), cap=looks[-1], weight=n / sum(looks))
        if decided(evidence, family):
            evidence.stopped = "decided"
            break
    assert evidence is not None
    if evidence.stopped != "decided":
        evidence.stopped = "cap"
    return evidence, np.array([rows[s] for s in range(evidence.seeds if evidence.seeds else 0)], np.float64)


class SeedRuns:
    """Trainings shared by the claims, memoised by (config id, engine): a seed trained for one claim is reused by
    every other claim that needs it (the fused engine is bitwise equal to ``fit`` within one Keras version)."""

    def __init__(self, engine: str = "fused", *, executor: Executor | None = None, workers: int = 1) -> None:
        self.engine = engine
        self.executor, self.workers = executor, workers
        self.runs: dict[tuple[str, str], RunResult] = {}
        self.mse: dict[tuple[str, str], float] = {}
        self.trained = 0

    def prefetch(self, wanted: Sequence[tuple[TrainConfig, str | None]]) -> None:
        """Train the (config, engine) pairs whose MSE is not known yet on the executor, `workers` chunks at once
        (the study's process pool: its workers have TensorFlow loaded and the graphs traced).  In this process
        when there is no executor: then `mse_test` trains them one by one as asked."""
        if self.executor is None:
            return
        todo: dict[str, list[dict[str, Any]]] = {}
        for config, engine in wanted:
            name = engine or self.engine
            if (config.config_id, name) not in self.mse and config.config_id not in {
                c["_id"] for c in todo.get(name, [])
            }:
                todo.setdefault(name, []).append({**config.to_dict(), "_id": config.config_id})
        futures = []
        for name, configs in todo.items():
            for k in range(self.workers):
                chunk = configs[k :: self.workers]
                if chunk:
                    ids = [c.pop("_id") for c in chunk]
                    futures.append((name, ids, self.executor.submit(run_cell, chunk, name)))
        for name, ids, future in futures:
            for config_id, (record, _) in zip(ids, future.result(), strict=True):
                self.mse[(config_id, name)] = math.nan if record["diverged"] else float(record["metrics"].mse_test)
                self.trained += 1

    def result(self, config: TrainConfig, engine: str | None = None) -> RunResult:
        key = (config.config_id, engine or self.engine)
        if key not in self.runs:
            self.runs[key] = train(config, engine=key[1])
            self.trained += 1
        return self.runs[key]

    def mse_test(self, config: TrainConfig, engine: str | None = None) -> float:
        key = (config.config_id, engine or self.engine)
        if key not in self.mse:
            r = self.result(config, engine)
            self.mse[key] = math.nan if r.diverged else float(r.metrics.mse_test)
        return self.mse[key]

    def know(self, config: TrainConfig, mse: float, engine: str | None = None) -> None:
        """Record a run's held-out MSE measured elsewhere (e.g. by `explain` on the same engine)."""
        self.mse.setdefault((config.config_id, engine or self.engine), float(mse))


@dataclass(frozen=True)
class PairedMse:
    """Per seed, the held-out MSE of two configs (one paired row), and the prefetch that trains a look's new
    seeds of both at once — the measurement of the claims that compare keras-default with tf-explicit."""

    runs: SeedRuns
    first: TrainConfig
    second: TrainConfig

    def measure(self, seed: int) -> tuple[float, float]:
        return self.runs.mse_test(self.first.replace(seed=seed)), self.runs.mse_test(self.second.replace(seed=seed))

    def prefetch(self, seeds: Sequence[int]) -> None:
        self.runs.prefetch([(c.replace(seed=s), None) for s in seeds for c in (self.first, self.second)])


def _apply_all(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The unit of work sent to a pool process: `fn` over each argument tuple (`fn` is a module-level function)."""
    return [fn(*args) for args in calls]


def parallel_rows(runs: SeedRuns, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
    """`fn(*args)` for every tuple of `calls`, split over the pool's `workers` processes when `runs` has an
    executor (`fn` must be module-level, its arguments picklable), else in this process; in order."""
    calls = list(calls)
    if runs.executor is None or len(calls) < 2:
        return _apply_all(fn, calls)
    parts = [list(range(k, len(calls), runs.workers)) for k in range(runs.workers)]
    parts = [p for p in parts if p]
    futures = [runs.executor.submit(_apply_all, fn, [calls[i] for i in p]) for p in parts]
    out: list[Any] = [None] * len(calls)
    for part, future in zip(parts, futures, strict=True):
        for i, value in zip(part, future.result(), strict=True):
            out[i] = value
    return out


def _rows_hook(
    runs: SeedRuns, fn: Callable[..., Any], args: Callable[[int], tuple[Any, ...]], cache: dict[int, Any]
) -> Callable[[Sequence[int]], None]:
    """A `sequential` prefetch that computes each new seed's row with `fn(*args(seed))` (in parallel) into `cache`."""

    def prefetch(seeds: Sequence[int]) -> None:
        todo = [s for s in seeds if s not in cache]
        for seed, row in zip(todo, parallel_rows(runs, fn, [args(s) for s in todo]), strict=True):
            cache[seed] = row
            runs.trained += 1

    return prefetch


def _spread_ratio(a: np.ndarray, num: int, den: int) -> np.ndarray:
    """log(SD of column `num` / SD of column `den`) over the seed axis."""
    return np.asarray(np.log(a[..., num].std(axis=-1, ddof=1) / a[..., den].std(axis=-1, ddof=1)))


def _iqr(a: np.ndarray) -> np.ndarray:
    q = np.quantile(a, [0.25, 0.75], axis=-1)
    return np.asarray(q[1] - q[0])


def _change_ratio(a: np.ndarray) -> np.ndarray:
    """log(RMS(col 1 − col 0) / √2 / SD(col 0)): the spread a change causes (each run's share of the squared
    difference) against the seed-to-seed spread; 0 when the change decorrelates runs as much as a new seed."""
    d = a[..., 1] - a[..., 0]
    rms = np.sqrt(np.mean(d**2, axis=-1) / 2)
    return np.asarray(np.log(rms / a[..., 0].std(axis=-1, ddof=1)))


def _mean_diff(a: np.ndarray) -> np.ndarray:
    return np.asarray((a[..., 1] - a[..., 0]).mean(axis=-1))


def _stopped_text(ev: Evidence) -> str:
    return {
        "decided": f"decided at {ev.seeds} seeds (cap {ev.cap})",
        "cap": f"cap of {ev.cap} seeds reached",
        "fixed": f"{ev.seeds} seeds (fixed set)",
    }[ev.stopped]


SEQUENTIAL_METHOD = (
    "seeds added at looks {looks} until decided (weighted Bonferroni over the looks: look n spends α·n/{total}, "
    "its p-values divided by n/{total}, its interval at level 1 − 0.05·n/{total}); Holm (Shaffer) over the family"
)


def _seq_text(looks: Sequence[int] = LOOKS) -> str:
    return SEQUENTIAL_METHOD.format(looks=list(looks), total=sum(looks))


# -- the article's claims ----------------------------------------------------------------------------------------


def claim_consistency(
    runs: SeedRuns,
    implicit: TrainConfig,
    explicit: TrainConfig,
    *,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    names: tuple[str, str] = ("keras-default", "tf-explicit"),
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """The article: explicit control (TruncatedNormal(0.02) + Adam(0.01)) gives more consistent results across
    runs (different random initialisations) than Keras's implicit defaults — the spread of held-out MSE."""
    test = StatTest(
        f"SD ratio {names[1]} / {names[0]} of held-out MSE",
        lambda a: _spread_ratio(a, 1, 0),
        Direction.LESS,
        margin=(-math.log(1.25), math.log(1.25)),
        shown=math.exp,
    )
    paired = PairedMse(runs, implicit, explicit)
    ev, rows = sequential(
        test,
        paired.measure,
        looks=looks,
        family=family,
        progress=progress,
        prefetch=paired.prefetch,
    )
    iqr = bca_bootstrap(rows, lambda a: np.log(_iqr(a[..., 1]) / _iqr(a[..., 0])))
    iqr_low, iqr_high = iqr.ci(ev.confidence)
    sd = rows.std(axis=0, ddof=1) if len(rows) > 1 else np.full(2, math.nan)
    return Claim(
        "consistency",
        f"{names[1]} (explicit initializer and learning rate) gives more consistent held-out MSE across runs with "
        f"different random initialisations than {names[0]} (Keras defaults).",
        ARTICLE,
        f"both setups trained on the same seeds; ratio of the seed-to-seed SD of held-out MSE ({names[1]} / "
        f"{names[0]}), BCa bootstrap over seeds (paired rows) on the log ratio; supported if below 1, not "
        f"supported if above 1 or within the margin 0.8–1.25 (TOST); IQR ratio shown beside it; " + _seq_text(looks),
        ClaimVerdict.INCONCLUSIVE,
        {
            "sd": {names[0]: sd[0], names[1]: sd[1]},
            "sd_ratio": math.exp(ev.estimate),
            "sd_ratio_ci": [math.exp(ev.low), math.exp(ev.high)],
            "iqr_ratio": math.exp(iqr.estimate),
            "iqr_ratio_ci": [math.exp(iqr_low), math.exp(iqr_high)],
            "mse_mean": {names[0]: float(np.mean(rows[:, 0])), names[1]: float(np.mean(rows[:, 1]))},
        },
        f"SD {sd[0]:.4f} ({names[0]}) vs {sd[1]:.4f} ({names[1]}): ratio {math.exp(ev.estimate):.2f} "
        f"[{math.exp(ev.low):.2f}, {math.exp(ev.high):.2f}]; IQR ratio {math.exp(iqr.estimate):.2f} "
        f"[{math.exp(iqr_low):.2f}, {math.exp(iqr_high):.2f}]",
        ev,
        test,
    )


def claim_lr_with_small_stddev_fits_better(
    runs: SeedRuns,
    implicit: TrainConfig,
    explicit: TrainConfig,
    *,
    explanation: Explanation | None = None,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """The article: a larger learning rate with a small-stddev initializer (tf-explicit) fits better than the
    defaults (paired MSE difference over seeds)."""
    test = StatTest(
        "mean MSE difference explicit − implicit", _mean_diff, Direction.LESS, margin=(-MSE_MARGIN, MSE_MARGIN)
    )
    paired = PairedMse(runs, implicit, explicit)
    ev, _ = sequential(
        test,
        paired.measure,
        looks=looks,
        family=family,
        progress=progress,
        prefetch=paired.prefetch,
    )
    parts = (
        {a.factor: {"mean": a.mean, "ci": [a.ci_low, a.ci_high]} for a in explanation.mse_attribution}
        if explanation
        else {}
    )
    return Claim(
        "larger-lr-small-stddev",
        f"tf-explicit (larger learning rate, small-stddev initializer) fits the sine better in {explicit.epochs} "
        "epochs than keras-default.",
        ARTICLE,
        "paired difference of held-out MSE (tf-explicit − keras-default) per seed, mean with BCa interval; "
        f"supported if below 0, not supported if above 0 or within ±{MSE_MARGIN} (TOST); " + _seq_text(looks),
        ClaimVerdict.INCONCLUSIVE,
        {"gap_mean": ev.estimate, "gap_ci": [ev.low, ev.high], "attribution": parts},
        f"MSE gap {ev.estimate:+.4f} [{ev.low:+.4f}, {ev.high:+.4f}]"
        + ("; Shapley: " + ", ".join(f"{k} {v['mean']:+.4f}" for k, v in parts.items()) if parts else ""),
        ev,
        test,
    )


def _without(result: StudyResult, axis: str, value: str, metric: MetricName) -> tuple[np.ndarray, list[str]]:
    """The study array of `metric` with one level of `axis` (e.g. the zeros control) left out."""
    data = result.array(metric)
    names = [a.name for a in result.spec.axes]
    i = names.index(axis)
    values = list(result.spec.axes[i].values)
    if value in values:
        data = np.delete(data, values.index(value), axis=i)
    return data, names


def claim_initializer_and_batch_matter(grid: StudyResult, *, control: str = "zeros") -> Claim:
    """The article: the initializer and the batch size change the predictions — seed-blocked F tests (the seeds
    are shared across cells), the zeros control left out."""
    data, names = _without(grid, "initializer", control, MetricName.MSE_TEST)
    terms = {n: blocked_main_effect(data, names.index(n)) for n in ("initializer", "batch_size")}
    ps = [t.p if t is not None and t.p is not None else 1.0 for t in terms.values()]
    n = data.shape[-1]
    p = max(ps)  # intersection-union: both effects must be shown
    shares = [t.share for t in terms.values() if t is not None]
    ev = Evidence(
        "smaller share of the two blocked effects",
        min(shares) if len(shares) == 2 else math.nan,
        math.nan,
        math.nan,
        1 - ALPHA,
        min(1.0, p),
        None,
        Direction.GREATER,
        n,
        n,
        1,
    )
    return Claim(
        "initializer-and-batch-size",
        "The kernel initializer and the batch size change the predictions.",
        ARTICLE,
        f"held-out MSE of the grid ({control} control left out): for each factor, cell means over the other factor "
        "give a levels × seeds table, tested by a two-way ANOVA without replication (the seed is a block: its "
        "interaction with the factor is the error term); supported if both effects are significant (the larger "
        "p, Holm-adjusted); an F test cannot show absence, so this claim is never 'not supported'; seeds fixed "
        "by the grid",
        ClaimVerdict.INCONCLUSIVE,
        {k: t.to_dict() if t else None for k, t in terms.items()},
        "; ".join(f"{k}: {t.share:.0%} of the blocked variation, p = {t.p:.2g}" for k, t in terms.items() if t)
        or "not computable (a run diverged or nothing varied)",
        ev,
    )


def _eta_squared(a: np.ndarray) -> np.ndarray:
    """Share of the (seeds × levels) table's variation between the level means."""
    grand = a.mean(axis=(-2, -1), keepdims=True)
    level = a.mean(axis=-2, keepdims=True)
    between = a.shape[-2] * ((level - grand) ** 2).sum(axis=(-2, -1))
    total = ((a - grand) ** 2).sum(axis=(-2, -1))
    return np.asarray(between / total)


def claim_stddev_drastic(
    sweep: StudyResult,
    *,
    runs: SeedRuns | None = None,
    drastic_share: float = 0.5,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """The article: changing the TruncatedNormal stddev drastically alters the outcome — the share of the MSE
    variation explained by the stddev, with an interval (more seeds of the sweep trained as needed)."""
    cells = sweep.spec.cells()
    values = sweep.spec.axes[0].values
    known = {s: [float(v) for v in sweep.array(MetricName.MSE_TEST)[:, i]] for i, s in enumerate(sweep.spec.seeds)}
    test = StatTest(
        "share of MSE variation between stddev levels (η²)", _eta_squared, Direction.GREATER, null=drastic_share
    )

    def measure(seed: int) -> Row:
        if runs is None:
            raise ValueError("claim_stddev_drastic: more seeds needed than the sweep has, and no runs to train them")
        return [runs.mse_test(c.config.replace(seed=seed)) for c in cells]

    used_looks = looks if runs is not None else (len(sweep.spec.seeds),)
    ev, rows = sequential(
        test,
        measure,
        looks=used_looks,
        family=family,
        known=known,
        progress=progress,
        prefetch=None
        if runs is None
        else lambda seeds: runs.prefetch([(c.config.replace(seed=s), None) for s in seeds for c in cells]),
    )
    means = dict(zip(values, rows.mean(axis=0).tolist(), strict=True)) if len(rows) else {}
    return Claim(
        "stddev-drastic",
        "Changing the TruncatedNormal stddev drastically alters the outcome.",
        ARTICLE,
        f"held-out MSE over stddev {', '.join(values)} on the same seeds; η² = share of the (seeds × stddev) "
        f"variation between stddev means, BCa interval over seeds; 'drastic' = η² ≥ {drastic_share:.0%}: supported "
        f"if the interval lies above, not supported if below; " + _seq_text(used_looks),
        ClaimVerdict.INCONCLUSIVE,
        {"share": ev.estimate, "share_ci": [ev.low, ev.high], "mean_mse_by_stddev": means},
        f"stddev explains {ev.estimate:.0%} [{ev.low:.0%}, {ev.high:.0%}] of the MSE variation; mean MSE "
        + (f"{min(means.values()):.4f}–{max(means.values()):.4f}" if means else "—"),
        ev,
        test,
    )


def _spearman_rows(a: np.ndarray, x: Sequence[float]) -> np.ndarray:
    """Spearman ρ of `x` with each row's values (last axis), for an array (..., len(x))."""
    from scipy import stats

    rx = stats.rankdata(x)
    ry = stats.rankdata(a, axis=-1)
    rx = rx - rx.mean()
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denom = np.sqrt((rx**2).sum() * (ry**2).sum(axis=-1))
    with np.errstate(all="ignore"):
        return np.asarray(np.where(denom > 0, (ry * rx).sum(axis=-1) / denom, 0.0))


def claim_smaller_batches_fit_better(grid: StudyResult, *, control: str = "zeros", family: int = 10) -> Claim:
    """The article: smaller batches fit better in a fixed number of epochs — Spearman ρ of batch size with MSE
    within each (seed, initializer) block, averaged per seed; the seeds are the replicates."""
    data, names = _without(grid, "initializer", control, MetricName.MSE_TEST)
    axis = names.index("batch_size")
    sizes = [grid.spec.cells()[0].config.n_points if v == "full" else int(v) for v in grid.spec.axes[axis].values]
    other = 1 - axis
    blocks = np.moveaxis(data, (other, axis), (0, 1))  # (initializers, batch sizes, seeds)
    rho = _spearman_rows(np.moveaxis(blocks, 1, -1), sizes)  # (initializers, seeds)
    per_seed = np.nanmean(rho, axis=0)
    label = "mean within-seed Spearman ρ(batch size, MSE)"
    test = StatTest(label, lambda a: a[..., 0].mean(axis=-1), Direction.GREATER, margin=(-0.1, 0.1))
    ev = evaluate(test, per_seed[:, None])
    per_batch = {str(s): float(np.nanmean(np.take(data, i, axis=axis))) for i, s in enumerate(sizes)}
    return Claim(
        "smaller-batches-fit-better",
        f"Smaller batches fit the sine better in a fixed number of epochs ({grid.spec.base.epochs}).",
        ARTICLE,
        f"per seed and initializer ({control} left out), Spearman ρ of batch size with held-out MSE across the "
        f"{len(sizes)} batch sizes; averaged over initializers, one value per seed (no pooled runs); BCa interval "
        "of the mean over seeds; supported if above 0, not supported if below 0 or within ±0.1 (TOST); seeds fixed "
        "by the grid",
        ClaimVerdict.INCONCLUSIVE,
        {"mean_rho": ev.estimate, "rho_ci": [ev.low, ev.high], "mean_mse_by_batch_size": per_batch},
        f"ρ = {ev.estimate:+.2f} [{ev.low:+.2f}, {ev.high:+.2f}] over {ev.seeds} seeds; mean MSE by batch size: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in per_batch.items()),
        ev,
        test,
    )


def gradient_errors(
    config: TrainConfig,
    batch_sizes: Sequence[int],
    seed: int,
    *,
    checkpoints: Sequence[int] | None = None,
    runs: SeedRuns | None = None,
    draws: int = 16,
) -> dict[int, dict[int, float]]:
    """Relative error ‖g_batch − g_full‖ / ‖g_full‖ of minibatch gradients at the weights after each of
    `checkpoints` epochs of seeded training (default: 0, a quarter and all of the config's epochs; 0 = the seeded
    start), averaged over `draws` random minibatches per size; float64 NumPy backprop at the same weights for
    both gradients.  Returns checkpoint → batch size → error.  `runs` shares the full-length run."""
    data = make_data(config)
    x, y = data.x_train.astype(np.float64), data.y_train.astype(np.float64)
    cfg = config.replace(seed=seed)
    out: dict[int, dict[int, float]] = {}
    for epochs in checkpoints if checkpoints is not None else (0, config.epochs // 4, config.epochs):
        if epochs == 0:
            weights = list(fresh_start(cfg, clear_session=False).initial.values())
        elif runs is not None and epochs == config.epochs:
            weights = list(runs.result(cfg).final_weights.values())
        else:
            weights = list(train(cfg.replace(epochs=epochs), engine="fused").final_weights.values())
        w = [np.asarray(v, np.float64) for v in weights]
        _, full = loss_and_gradients(w, x, y, config)
        g_full = np.concatenate([g.ravel() for g in full])
        norm = float(np.linalg.norm(g_full))
        errors: dict[int, float] = {}
        for b in batch_sizes:
            rng = np.random.default_rng([seed, epochs, b])
            values = []
            for _ in range(draws):
                idx = rng.choice(len(x), size=min(b, len(x)), replace=False)
                _, grads = loss_and_gradients(w, x[idx], y[idx], config)
                g = np.concatenate([q.ravel() for q in grads])
                values.append(float(np.linalg.norm(g - g_full)) / norm if norm > 0 else math.nan)
            errors[b] = float(np.mean(values))
        out[epochs] = errors
    return out


def gradient_row(
    config: dict[str, Any], batch_sizes: tuple[int, ...], checkpoints: tuple[int, ...] | None, seed: int
) -> dict[int, dict[int, float]]:
    """`gradient_errors` for one seed (module-level: it runs in a pool process)."""
    return gradient_errors(TrainConfig.from_dict(config), batch_sizes, seed, checkpoints=checkpoints)


def claim_larger_batches_accurate_gradient(
    config: TrainConfig,
    *,
    batch_sizes: Sequence[int] = (8, 32, 64, 128, 256),
    checkpoints: Sequence[int] | None = None,
    runs: SeedRuns | None = None,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """The article: larger batches estimate the gradient more accurately — measured directly: minibatch vs
    full-batch gradient at the same weights, at several points along training."""
    per_seed: dict[int, dict[int, dict[int, float]]] = {}
    pool = runs if runs is not None else SeedRuns()
    args = (config.to_dict(), tuple(batch_sizes), None if checkpoints is None else tuple(checkpoints))
    prefetch = _rows_hook(pool, gradient_row, lambda s: (*args, s), per_seed)

    def measure(seed: int) -> Row:
        prefetch([seed])
        errors = per_seed[seed]
        logb = np.log(np.asarray(batch_sizes, np.float64))
        slopes = [float(np.polyfit(logb, np.log([e[b] for b in batch_sizes]), 1)[0]) for e in errors.values()]
        return [float(np.mean(slopes))]

    test = StatTest(
        "mean slope of log gradient error on log batch size",
        lambda a: a[..., 0].mean(axis=-1),
        Direction.LESS,
        margin=(-0.05, 0.05),
    )
    ev, _ = sequential(test, measure, looks=looks, family=family, progress=progress, prefetch=prefetch)
    points = list(per_seed[0]) if per_seed else []
    mean_errors = {
        c: {b: float(np.mean([per_seed[s][c][b] for s in range(ev.seeds)])) for b in batch_sizes} for c in points
    }
    return Claim(
        "larger-batches-gradient",
        "Larger batches give a more accurate estimate of the gradient.",
        ARTICLE,
        "relative error ‖g_b − g_full‖/‖g_full‖ of minibatch gradients against the full-batch gradient at the same "
        f"weights (float64 backprop; 16 random minibatches per size), after {points} epochs of training, batch sizes "
        f"{list(batch_sizes)}; "
        "per seed, the least-squares slope of log error on log batch size (−0.5 for independent samples), averaged "
        "over the checkpoints; BCa interval of the mean; supported if below 0, not supported if above 0 or within "
        "±0.05 (TOST); " + _seq_text(looks),
        ClaimVerdict.INCONCLUSIVE,
        {"relative_gradient_error": mean_errors},
        f"slope {ev.estimate:+.2f} [{ev.low:+.2f}, {ev.high:+.2f}]; mean relative error by batch size at epochs "
        + "; ".join(f"{c}: " + ", ".join(f"{e:.3g}" for e in errs.values()) for c, errs in mean_errors.items()),
        ev,
        test,
    )


def article_loop(runs: SeedRuns, configs: Sequence[TrainConfig], seed: int) -> tuple[list[float], list[float]]:
    """The article's batch-size loop replayed for one seed: one model fitted at each batch size in turn, each
    stage starting from the previous stage's final weights with a freshly compiled optimizer; and fresh models
    (same seed) at each size.  Returns (loop MSEs, fresh MSEs) by batch size."""
    loop, fresh = [], []
    weights: Mapping[str, np.ndarray] | None = None
    for i, cfg in enumerate(configs):
        c = cfg.replace(seed=seed)
        fresh.append(runs.mse_test(c))
        if i == 0:
            r = runs.result(c)
        else:
            r = train(c, engine=runs.engine, initial_weights=weights)
            runs.trained += 1
        loop.append(math.nan if r.diverged else float(r.metrics.mse_test))
        weights = r.final_weights
    return loop, fresh


def loop_row(configs: list[dict[str, Any]], seed: int, engine: str) -> list[float]:
    """`article_loop` for one seed (module-level: it runs in a pool process): loop MSEs, then fresh MSEs."""
    loop, fresh = article_loop(SeedRuns(engine), [TrainConfig.from_dict(c) for c in configs], seed)
    return [*loop, *fresh]


def claim_article_batch_loop(
    runs: SeedRuns,
    configs: Sequence[TrainConfig],
    *,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """The article's batch-size loop as written (one model compiled once per size and fitted again, so later sizes
    continue training) against fresh models per size: does the loop's ranking of the smallest vs the largest
    batch size hold for fresh models?  Paired over seeds."""
    k = len(configs)
    sizes = [c.batch_size for c in configs]
    orientation: list[float] = []

    def statistic(a: np.ndarray) -> np.ndarray:
        fresh = a[..., 2 * k - 1] - a[..., k]  # fresh: largest − smallest batch
        return np.asarray(orientation[0] * fresh.mean(axis=-1))

    cache: dict[int, list[float]] = {}
    prefetch = _rows_hook(runs, loop_row, lambda s: ([c.to_dict() for c in configs], s, runs.engine), cache)

    def measure(seed: int) -> Row:
        prefetch([seed])
        return cache[seed]

    # the loop's own ranking fixes the orientation: measured on the first look's seeds, then kept
    prefetch(range(looks[0]))
    first = [measure(s) for s in range(looks[0])]
    loop_gap = float(np.nanmean([r[k - 1] - r[0] for r in first]))
    orientation.append(1.0 if loop_gap > 0 else -1.0)
    test = StatTest(
        "fresh-model MSE gap, oriented as the loop ranks",
        statistic,
        Direction.GREATER,
        margin=(-MSE_MARGIN, MSE_MARGIN),
    )
    ev, rows = sequential(
        test,
        measure,
        looks=looks,
        family=family,
        known=dict(enumerate(first)),
        progress=progress,
        prefetch=prefetch,
    )
    loop_means = dict(zip(map(str, sizes), np.nanmean(rows[:, :k], axis=0).tolist(), strict=True))
    fresh_means = dict(zip(map(str, sizes), np.nanmean(rows[:, k:], axis=0).tolist(), strict=True))
    better = sizes[-1] if loop_gap < 0 else sizes[0]
    return Claim(
        "article-batch-loop",
        f"The article's loop (one model fitted at batch {', then '.join(map(str, sizes))}) ranks batch {better} "
        f"better than batch {sizes[0] if better == sizes[-1] else sizes[-1]}; the ranking holds for fresh models.",
        ARTICLE,
        f"per seed, the loop replayed (fused engine; each size starts from the previous size's final weights with "
        "a new optimizer, as re-compiling does) and fresh models of each size from the same seed; the loop's "
        f"ranking of batch {sizes[0]} vs {sizes[-1]} (mean over the first {looks[0]} seeds) orients the fresh "
        "models' paired MSE gap; supported if the oriented gap is above 0, not supported if below 0 or within "
        f"±{MSE_MARGIN} (TOST); " + _seq_text(looks),
        ClaimVerdict.INCONCLUSIVE,
        {"loop_mse_by_batch": loop_means, "fresh_mse_by_batch": fresh_means, "loop_gap": loop_gap},
        "mean MSE loop "
        + ", ".join(f"{b}: {v:.4f}" for b, v in loop_means.items())
        + "; fresh "
        + ", ".join(f"{b}: {v:.4f}" for b, v in fresh_means.items())
        + f"; oriented fresh gap {ev.estimate:+.4f} [{ev.low:+.4f}, {ev.high:+.4f}]",
        ev,
        test,
    )


# -- the papers' claims --------------------------------------------------------------------------------------------


def one_ulp_start(
    initial: Mapping[str, np.ndarray], config: TrainConfig, seed: int
) -> tuple[dict[str, np.ndarray], int, bool]:
    """The `initial` weights with one first-layer kernel weight (drawn by `seed`) moved by one ULP away from zero
    (np.nextafter); also which hidden unit it feeds and whether that unit is dead at the start (never active on
    `config`'s training inputs)."""
    weights = {k: np.array(v, copy=True) for k, v in initial.items()}
    names = list(weights)
    kernel = weights[names[0]]
    unit = int(np.random.default_rng([seed, 7]).integers(kernel.shape[-1]))
    kernel[0, unit] = np.nextafter(kernel[0, unit], np.float32(np.inf) if kernel[0, unit] >= 0 else -np.inf)
    x = make_data(config).x_train.astype(np.float64)
    z = x @ kernel.astype(np.float64)[:, unit : unit + 1] + weights[names[1]].astype(np.float64)[unit]
    return weights, unit, bool(np.all(z <= 0))


def one_ulp_row(config: dict[str, Any], seed: int, engine: str) -> tuple[float, bool, float, float]:
    """One seed of the one-ULP claim (module-level: it runs in a pool process): held-out MSE of the seeded run
    with one initial weight moved one ULP, whether that weight's unit was dead at the start, and the dead-ReLU
    shares at the start and after training."""
    cfg = TrainConfig.from_dict(config).replace(seed=seed)
    initial = fresh_start(cfg, clear_session=False).initial
    weights, _, dead = one_ulp_start(initial, cfg, seed)
    changed = train(cfg, engine=engine, initial_weights=weights)
    x = make_data(cfg).x_train
    return (
        math.nan if changed.diverged else float(changed.metrics.mse_test),
        dead,
        dead_relu_fraction(list(initial.values()), x),
        dead_relu_fraction(list(changed.final_weights.values()), x),
    )


def claim_one_ulp(
    runs: SeedRuns,
    config: TrainConfig,
    *,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
    first_look: int = 50,
) -> Claim:
    """Summers & Dinneen: a one-ULP change of a single initial weight spreads the outcome about as much as a new
    seed does — with the dead-ReLU diagnostic that explains this model.  Its first look is at `first_look` seeds
    (or the cap): most one-ULP changes leave a run nearly unchanged and a few move it as far as a new seed, a
    heavy tail that ten seeds can miss entirely (measured: ratio ~1e-6 at 10 seeds, 0.29 at 50)."""
    looks = tuple(n for n in looks if n >= first_look) or (looks[-1],)
    cache: dict[int, tuple[float, bool, float, float]] = {}
    rows_hook = _rows_hook(runs, one_ulp_row, lambda s: (config.to_dict(), s, runs.engine), cache)
    diag: dict[int, tuple[bool, bool, float, float]] = {}

    def prefetch(seeds: Sequence[int]) -> None:
        runs.prefetch([(config.replace(seed=s), None) for s in seeds])  # the unchanged runs (shared, memoised)
        rows_hook(seeds)

    def measure(seed: int) -> Row:
        prefetch([seed])
        mse_changed, dead, dead_init, dead_final = cache[seed]
        mse_base = runs.mse_test(config.replace(seed=seed))
        diag[seed] = (bool(dead), mse_changed == mse_base, float(dead_init), float(dead_final))
        return [mse_base, mse_changed]

    test = StatTest(
        "spread ratio one-ULP change / new seed",
        _change_ratio,
        Direction.EQUAL,
        margin=(-math.log(2), math.log(2)),
        shown=math.exp,
    )
    ev, rows = sequential(test, measure, looks=looks, family=family, progress=progress, prefetch=prefetch)
    seeds = range(ev.seeds)
    dead_hit = [diag[s][0] for s in seeds]
    same = [diag[s][1] for s in seeds]
    alive_changed = sum(1 for s in seeds if not diag[s][0] and not diag[s][1])
    live = [s for s in seeds if not diag[s][0]]
    d_live = rows[live, 1] - rows[live, 0] if len(rows) else np.empty(0)
    live_ratio = (
        float(np.sqrt(np.mean(d_live**2) / 2) / np.std(rows[:, 0], ddof=1))
        if d_live.size and len(rows) > 1
        else math.nan
    )
    dead_init = float(np.mean([diag[s][2] for s in seeds]))
    dead_final = float(np.mean([diag[s][3] for s in seeds]))
    return Claim(
        "one-ulp",
        "A one-ULP change of a single initial weight spreads the outcome about as much as changing the seed.",
        SUMMERS,
        "per seed, the seeded run and the same run with one first-layer weight (random unit) moved one ULP "
        "(np.nextafter); ratio RMS(ΔMSE)/√2 ÷ SD of MSE across seeds (1 = as much spread as a new seed), BCa on the "
        "log ratio; supported if within 0.5–2 (TOST), not supported if outside 1 significantly; "
        + _seq_text(looks)
        + "; dead-ReLU diagnostic: a unit with pre-activation ≤ 0 on every input gets no gradient, so a change of "
        "its weight that keeps it dead changes nothing",
        ClaimVerdict.INCONCLUSIVE,
        {
            "ratio": math.exp(ev.estimate),
            "ratio_ci": [math.exp(ev.low), math.exp(ev.high)],
            "perturbed_unit_dead_at_init": int(sum(dead_hit)),
            "bitwise_equal_mse": int(sum(same)),
            "live_unit_changed_outcome": alive_changed,
            "ratio_live_units": live_ratio,
            "dead_relu_init": dead_init,
            "dead_relu_final": dead_final,
            "mean_abs_mse_change": float(np.mean(np.abs(rows[:, 1] - rows[:, 0]))) if len(rows) else math.nan,
        },
        f"ratio {math.exp(ev.estimate):.2f} [{math.exp(ev.low):.2f}, {math.exp(ev.high):.2f}]; "
        f"{sum(dead_hit)}/{ev.seeds} changed weights fed a unit dead at init, {sum(same)}/{ev.seeds} runs ended "
        f"with a bitwise-equal MSE (ratio over live-unit changes only {live_ratio:.2f}); dead ReLUs {dead_init:.0%} at "
        f"init → {dead_final:.0%} after training",
        ev,
        test,
    )


def baseline_spread(directory: str | Path, *, epochs: int = 100) -> dict[str, Any]:
    """From the recorded golden baselines (one JSON per TF/Keras environment): the SD of held-out MSE across
    environments at a fixed seed, and across seeds within an environment, for every entry of `epochs` epochs
    present in every environment.  Descriptive: the stored runs are few."""

    envs: dict[str, dict[str, float]] = {}
    for path in sorted(Path(directory).glob("tf*.json")):
        try:
            entries = json.loads(path.read_text())["entries"]
        except (OSError, ValueError, KeyError):
            continue
        envs[path.stem.split("-tensorflow")[0]] = {
            k: float(e["metrics"]["mse_test"])
            for k, e in entries.items()
            if e.get("config", {}).get("epochs") == epochs and not e.get("diverged")
        }
    common = set.intersection(*(set(v) for v in envs.values())) if envs else set()
    if len(envs) < 2 or not common:
        return {"environments": sorted(envs), "entries": 0}
    env_sd = [float(np.std([envs[e][k] for e in envs], ddof=1)) for k in sorted(common)]
    groups: dict[str, list[str]] = {}
    for k in common:
        groups.setdefault(k.rsplit("/seed", 1)[0], []).append(k)
    seed_sd = [
        float(np.std([envs[e][k] for k in keys], ddof=1)) for e in envs for keys in groups.values() if len(keys) > 1
    ]
    return {
        "environments": sorted(envs),
        "entries": len(common),
        "sd_across_environments_mean": float(np.mean(env_sd)),
        "sd_across_seeds_mean": float(np.mean(seed_sd)) if seed_sd else math.nan,
    }


def claim_implementation_factors(
    runs: SeedRuns,
    config: TrainConfig,
    *,
    other_engine: str = "fused-xla",
    processes: Mapping[str, Any] | None = None,
    baselines: Mapping[str, Any] | None = None,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """Pham et al.: at a fixed seed, implementation-level factors still vary the outcome, less than seeds do.
    Measured per seed as fused vs fused-xla (XLA's reordered arithmetic); oneDNN off (fresh processes, fit) and
    other TF/Keras versions (stored baselines) reported beside it."""

    def measure(seed: int) -> Row:
        c = config.replace(seed=seed)
        return [runs.mse_test(c), runs.mse_test(c, other_engine)]

    test = StatTest(
        f"spread ratio {other_engine} vs {runs.engine} at a fixed seed / new seed",
        _change_ratio,
        Direction.LESS,
        margin=(-math.log(1.25), math.log(1.25)),
        shown=math.exp,
    )
    ev, rows = sequential(
        test,
        measure,
        looks=looks,
        family=family,
        progress=progress,
        prefetch=lambda seeds: runs.prefetch(
            [(config.replace(seed=s), e) for s in seeds for e in (runs.engine, other_engine)]
        ),
    )
    differ = int(np.sum(rows[:, 0] != rows[:, 1])) if len(rows) else 0
    numbers: dict[str, Any] = {
        "ratio": math.exp(ev.estimate),
        "ratio_ci": [math.exp(ev.low), math.exp(ev.high)],
        "seeds_with_different_mse": differ,
        "mean_abs_mse_change": float(np.mean(np.abs(rows[:, 1] - rows[:, 0]))) if len(rows) else math.nan,
        "seed_sd": float(np.std(rows[:, 0], ddof=1)) if len(rows) > 1 else math.nan,
        "onednn_off": dict(processes or {}),
        "baselines": dict(baselines or {}),
    }
    extra = ""
    if processes and processes.get("onednn_off_mse_delta") is not None:
        extra += f"; oneDNN off (fresh process, fit, seed 0): ΔMSE {processes['onednn_off_mse_delta']:+.2e}"
    if baselines and baselines.get("entries"):
        extra += (
            f"; stored baselines ({len(baselines['environments'])} TF/Keras environments, "
            f"{baselines['entries']} runs of {config.epochs} epochs): SD across environments "
            f"{baselines['sd_across_environments_mean']:.4f} vs across seeds {baselines['sd_across_seeds_mean']:.4f}"
        )
    return Claim(
        "implementation-factors",
        "At a fixed seed, implementation-level factors (here XLA's arithmetic) still vary the outcome, but less "
        "than changing the seed does.",
        PHAM,
        f"per seed, the same seeded run with the {runs.engine} and {other_engine} engines; ratio RMS(ΔMSE)/√2 ÷ SD "
        "of MSE across seeds, BCa on the log ratio; supported if below 1, not supported if above 1 or within "
        "0.8–1.25 (TOST); " + _seq_text(looks) + "; oneDNN off and other TF/Keras versions descriptive only",
        ClaimVerdict.INCONCLUSIVE,
        numbers,
        f"ratio {math.exp(ev.estimate):.3g} [{math.exp(ev.low):.3g}, {math.exp(ev.high):.3g}]; {differ}/{ev.seeds} "
        "seeds changed MSE" + extra,
        ev,
        test,
    )


# -- our own claims ------------------------------------------------------------------------------------------------


def fresh_process_runs(config: TrainConfig, *, seed: int = 0) -> dict[str, Any]:
    """Train the seeded `config` with Keras ``fit`` in two fresh default processes and one with oneDNN off (the
    isolation workers, concurrently): digests and held-out MSEs."""

    cfg = config.replace(seed=seed)
    onednn = factor_by_name("onednn-off").b.environment
    sides = {"default-1": (factor_by_name("fresh-process").a.environment, 0)}
    sides["default-2"] = (sides["default-1"][0], 1)
    sides["onednn-off"] = (onednn, 0)
    out: dict[str, Any] = {}
    with WorkerPool() as pool, ThreadPoolExecutor(len(sides)) as threads:
        futures = {name: threads.submit(pool.get(env, inst).train, cfg) for name, (env, inst) in sides.items()}
        for name, future in futures.items():
            result = future.result()
            if isinstance(result, RunError):
                out[name] = {"error": str(result)}
            else:
                out[name] = {"digest": result.digests["final_weights"], "mse": float(result.metrics.mse_test)}
    return out


def claim_seeding_reproduces(processes: Mapping[str, Any], *, in_process: RunResult | None = None) -> Claim:
    """Ours: the same seed reproduces the run bitwise across fresh processes with Keras ``fit`` (not within one
    process, where a cached shuffle order could make a repeat look reproducible)."""
    a, b = processes.get("default-1", {}), processes.get("default-2", {})
    if "digest" not in a or "digest" not in b:
        verdict = ClaimVerdict.INCONCLUSIVE
        summary = "a worker failed: " + "; ".join(str(p.get("error")) for p in (a, b) if "error" in p)
    else:
        verdict = ClaimVerdict.SUPPORTED if a["digest"] == b["digest"] else ClaimVerdict.NOT_SUPPORTED
        summary = (
            f"final weights {'identical' if a['digest'] == b['digest'] else 'differ'} in two fresh processes "
            f"(MSE {a['mse']:.6f} / {b['mse']:.6f})"
        )
    numbers: dict[str, Any] = {"processes": dict(processes), "seeds": 1, "cap": 1}
    if in_process is not None and "digest" in a:
        same = in_process.digests["final_weights"] == a["digest"]
        numbers["fused_in_process_equals_fit"] = same
        summary += f"; the {in_process.engine} engine in this process gives {'the same' if same else 'other'} bits"
    return Claim(
        "seeding-reproduces",
        "A fixed seed reproduces a training run bitwise (Keras fit, fresh processes).",
        OURS,
        "the seeded base config trained with Keras fit in two fresh worker processes (TensorFlow defaults); "
        "bitwise comparison of the final weights: supported if identical, not supported if not (a deterministic "
        "check, outside the Holm family)",
        verdict,
        numbers,
        summary,
    )


def permutation_row(config: dict[str, Any], seed: int) -> tuple[float, int]:
    """One seed of the reused-permutation claim (module-level: it runs in a pool process): held-out MSE with a
    fresh permutation per epoch, and how many distinct orders fit itself drew."""
    cfg = TrainConfig.from_dict(config).replace(seed=seed)
    keras_orders = epoch_orders_from_keras(cfg, np.zeros((cfg.n_points, 1), np.float32))
    rng = np.random.default_rng([seed, 1])
    new_orders = np.stack([rng.permutation(cfg.n_points) for _ in range(cfg.epochs)]).astype(np.int32)
    fresh = train_fused(cfg, orders=new_orders)
    return (math.nan if fresh.diverged else float(fresh.metrics.mse_test)), len({o.tobytes() for o in keras_orders})


def claim_reused_permutation(
    runs: SeedRuns,
    config: TrainConfig,
    *,
    looks: Sequence[int] = LOOKS,
    family: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Claim:
    """Ours: seeded ``fit`` (Keras 3.15 / TF 2.21) reuses one permutation every epoch — does that cost fit?"""
    distinct: dict[int, int] = {}
    cache: dict[int, tuple[float, int]] = {}
    rows_hook = _rows_hook(runs, permutation_row, lambda s: (config.to_dict(), s), cache)

    def prefetch(seeds: Sequence[int]) -> None:
        runs.prefetch([(config.replace(seed=s), None) for s in seeds])  # fit's own orders: the shared runs
        rows_hook(seeds)

    def measure(seed: int) -> Row:
        prefetch([seed])
        fresh, distinct[seed] = cache[seed]
        return [runs.mse_test(config.replace(seed=seed)), fresh]

    test = StatTest(
        "mean MSE difference reused − fresh permutation",
        lambda a: -_mean_diff(a),
        Direction.GREATER,
        margin=(-MSE_MARGIN, MSE_MARGIN),
    )
    ev, _ = sequential(test, measure, looks=looks, family=family, progress=progress, prefetch=prefetch)
    most = max(distinct.values()) if distinct else 0
    return Claim(
        "reused-permutation",
        f"Seeded fit reuses one permutation every epoch (measured here: {most} distinct order(s) in "
        f"{config.epochs} epochs); that costs fit quality compared with a fresh permutation per epoch.",
        OURS,
        "per seed, the same initial weights trained with fit's orders and with a fresh permutation per epoch "
        "(fused engine, given orders); paired difference of held-out MSE (reused − fresh), BCa interval; supported "
        f"if above 0, not supported if below 0 or within ±{MSE_MARGIN} (TOST); " + _seq_text(looks),
        ClaimVerdict.INCONCLUSIVE,
        {"distinct_orders_per_run": [distinct[s] for s in sorted(distinct)][: ev.seeds], "diff_mean": ev.estimate},
        f"MSE reused − fresh {ev.estimate:+.4f} [{ev.low:+.4f}, {ev.high:+.4f}]; fit drew {most} distinct "
        "order(s) per run",
        ev,
        test,
    )


# -- rendering -----------------------------------------------------------------------------------------------------


def _interval(c: Claim) -> str:
    ev = c.evidence
    if ev is None:
        return "— (bitwise check)"
    if not math.isfinite(ev.low):
        return f"— (F tests; larger p, Holm-adjusted: {ev.p_effect_holm:.2g})"
    show = c.test.shown if c.test else float
    return (
        f"{ev.label}: {show(ev.estimate):.4g} [{show(ev.low):.4g}, {show(ev.high):.4g}] "
        f"({ev.confidence:.1%} BCa); p (Holm) effect {ev.p_effect_holm:.2g}"
        + (f", equivalence {ev.p_equivalent_holm:.2g}" if ev.p_equivalent_holm is not None else "")
    )


def _seeds(c: Claim) -> str:
    ev = c.evidence
    if ev is None:
        return "1 seed, 2 fresh processes"
    return _stopped_text(ev)


def decided_line(claims: Sequence[Claim]) -> str:
    """What was decided and what was not (with why)."""
    done = [f"{c.id} ({c.verdict})" for c in claims if c.verdict is not ClaimVerdict.INCONCLUSIVE]
    open_ = [f"{c.id} ({_seeds(c)})" for c in claims if c.verdict is ClaimVerdict.INCONCLUSIVE]
    return f"decided: {', '.join(done) or 'none'}; not decided: {', '.join(open_) or 'none'}"


def render_claims(claims: Sequence[Claim], *, markdown: bool = False) -> str:
    """The claims ledger: claim, source, verdict, the numbers, the interval, seeds used / cap, the method; and a
    closing line saying what was decided and what was not."""
    if markdown:
        lines = [
            "| claim | source | verdict | measured | interval | seeds | method |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.claim} | {c.source} | **{c.verdict}** | {c.summary} | {_interval(c)} | {_seeds(c)} | {c.method} |"
            for c in claims
        ]
        return "\n".join(lines) + "\n\n" + decided_line(claims)
    out = []
    for c in claims:
        out += [
            f"[{c.verdict.upper()}] {c.claim}",
            f"    source: {c.source}",
            f"    measured: {c.summary}",
            f"    interval: {_interval(c)}",
            f"    seeds: {_seeds(c)}",
            f"    method: {c.method}",
        ]
    out.append(decided_line(claims))
    return "\n".join(out)
