"""Claims of the reference experiments (and one of ours), each measured and judged with stated statistics.

Every claim gets a measurement, the test used and a verdict: *supported* / *not supported* only when the
evidence clears the stated bar (a 95 % bootstrap interval that excludes zero, an ANOVA F test at p < 0.05),
*inconclusive* otherwise — never a hard-coded expectation.  The verdict rules are plain functions
(`verdict_from_interval`, `verdict_from_test`) so tests can check a verdict against its own numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinecheck.core.compare import json_float
from sinecheck.core.config import TrainConfig
from sinecheck.core.data import make_data
from sinecheck.core.enums import TextEnum
from sinecheck.core.result import MetricName
from sinecheck.engines.common import fresh_start
from sinecheck.engines.fused import epoch_orders_from_keras, train_fused
from sinecheck.engines.numpy_engine import loss_and_gradients
from sinecheck.engines.registry import train
from sinecheck.study.explain import Explanation
from sinecheck.study.runner import StudyResult
from sinecheck.study.stats import bootstrap_ci, variance_decomposition

ALPHA = 0.05


class ClaimVerdict(TextEnum):
    """What the evidence says of a claim: only a result that clears the stated bar supports or refutes it."""

    SUPPORTED = "supported"
    NOT_SUPPORTED = "not supported"
    INCONCLUSIVE = "inconclusive"


@dataclass
class Claim:
    """One claim, how it was measured, the verdict and the numbers behind it."""

    id: str
    claim: str
    source: str  # "reference experiments" or "sinecheck"
    test: str
    verdict: ClaimVerdict
    numbers: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claim": self.claim,
            "source": self.source,
            "test": self.test,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "numbers": _jsonable(self.numbers),
        }


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


def verdict_from_interval(low: float, high: float, *, better_if_negative: bool) -> ClaimVerdict:
    """Supported when the 95 % interval of the effect excludes zero on the claimed side; not supported when it
    excludes zero on the other side; inconclusive when it contains zero (or could not be computed)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ClaimVerdict.INCONCLUSIVE
    if high < 0:
        return ClaimVerdict.SUPPORTED if better_if_negative else ClaimVerdict.NOT_SUPPORTED
    if low > 0:
        return ClaimVerdict.NOT_SUPPORTED if better_if_negative else ClaimVerdict.SUPPORTED
    return ClaimVerdict.INCONCLUSIVE


def verdict_from_test(p: float | None) -> ClaimVerdict:
    """Supported when the test rejects "no effect" at p < ALPHA; otherwise inconclusive (absence of evidence
    is not evidence of absence at these sample sizes)."""
    return ClaimVerdict.SUPPORTED if p is not None and p < ALPHA else ClaimVerdict.INCONCLUSIVE


def _without(result: StudyResult, axis: str, value: str, metric: MetricName) -> tuple[np.ndarray, list[str]]:
    """The study array of `metric` with one level of `axis` (e.g. the zeros control) left out."""
    data = result.array(metric)
    names = [a.name for a in result.spec.axes]
    i = names.index(axis)
    values = list(result.spec.axes[i].values)
    if value in values:
        data = np.delete(data, values.index(value), axis=i)
    return data, names


# -- the claims ----------------------------------------------------------------------------------------------


def claim_seeding_consistency(config: TrainConfig, *, runs: int = 4, engine: str = "fused") -> Claim:
    """Explicit seeds make runs consistent: the same seeded config trained `runs` times, and unseeded."""
    seeded = [train(config, engine=engine) for _ in range(runs)]
    unseeded = [train(config.replace(seed=None), engine=engine) for _ in range(runs)]
    seeded_digests = {r.digests["final_weights"] for r in seeded}
    unseeded_digests = {r.digests["final_weights"] for r in unseeded}
    mse_seeded = [r.metrics.mse_test for r in seeded]
    mse_unseeded = [r.metrics.mse_test for r in unseeded]
    if len(seeded_digests) > 1:
        verdict = ClaimVerdict.NOT_SUPPORTED
    elif len(unseeded_digests) > 1:
        verdict = ClaimVerdict.SUPPORTED
    else:
        verdict = ClaimVerdict.INCONCLUSIVE
    return Claim(
        "seeding-consistency",
        "Setting seeds (and settings) explicitly gives consistent results across runs.",
        "reference experiments",
        f"train {config.describe()} {runs}× with seed {config.seed} and {runs}× unseeded (engine {engine}); count "
        "distinct final-weight digests; supported if the seeded runs are bitwise identical and the unseeded differ",
        verdict,
        {
            "runs": runs,
            "seeded_distinct_digests": len(seeded_digests),
            "unseeded_distinct_digests": len(unseeded_digests),
            "mse_seeded": mse_seeded,
            "mse_unseeded": mse_unseeded,
            "mse_std_unseeded": float(np.std(mse_unseeded, ddof=1)) if runs > 1 else None,
        },
        f"seeded: {len(seeded_digests)} distinct result(s) in {runs} runs (held-out MSE std "
        f"{np.std(mse_seeded):.2g}); unseeded: {len(unseeded_digests)} distinct, MSE "
        f"{min(mse_unseeded):.4f}–{max(mse_unseeded):.4f}",
    )


def claim_initializer_and_batch_matter(grid: StudyResult, *, control: str = "zeros") -> Claim:
    """The initializer and the batch size change the predictions (ANOVA main effects, zeros control left out)."""
    data, names = _without(grid, "initializer", control, MetricName.MSE_TEST)
    terms = variance_decomposition(data, names) or {}
    init, batch = terms.get("initializer"), terms.get("batch_size")
    ps = [t.p if t else None for t in (init, batch)]
    verdict = (
        ClaimVerdict.SUPPORTED
        if all(verdict_from_test(p) == ClaimVerdict.SUPPORTED for p in ps)
        else ClaimVerdict.INCONCLUSIVE
    )
    return Claim(
        "initializer-and-batch-size",
        "The kernel initializer and the batch size change the predictions.",
        "reference experiments",
        f"two-way ANOVA of held-out MSE over initializer × batch size with {len(grid.spec.seeds)} seeds per cell "
        f"({control} control left out); supported if both main effects have p < {ALPHA}",
        verdict,
        {name: t.to_dict() for name, t in terms.items()},
        "; ".join(f"{n}: {t.share:.0%} of variance, p = {t.p:.2g}" for n, t in terms.items() if t.p is not None)
        or "not computable (a run diverged or nothing varied)",
    )


def claim_lr_with_small_stddev_fits_better(explanation: Explanation) -> Claim:
    """A larger learning rate with a small-stddev initializer (tf-explicit) fits better than the defaults."""
    gap = explanation.gap
    verdict = verdict_from_interval(gap.ci_low, gap.ci_high, better_if_negative=True)
    parts = {a.factor: {"mean": a.mean, "ci": [a.ci_low, a.ci_high]} for a in explanation.mse_attribution}
    return Claim(
        "larger-lr-small-stddev",
        f"{explanation.b_name} (larger learning rate, small-stddev initializer) fits the "
        f"sine better in {explanation.b.epochs} epochs than {explanation.a_name}.",
        "reference experiments",
        f"paired difference of held-out MSE, {explanation.b_name} − {explanation.a_name}, over "
        f"{len(explanation.seeds)} seeds; 95 % bootstrap interval; supported if it lies below 0",
        verdict,
        {"gap_mean": gap.mean, "gap_ci": [gap.ci_low, gap.ci_high], "attribution": parts},
        f"MSE gap {gap.mean:+.4f} (95 % CI {gap.ci_low:+.4f} … {gap.ci_high:+.4f}); "
        + ", ".join(f"{a.factor} {a.mean:+.4f}" for a in explanation.mse_attribution),
    )


def claim_stddev_drastic(sweep: StudyResult, *, drastic_share: float = 0.5) -> Claim:
    """Changing the TruncatedNormal stddev drastically alters the outcome."""
    terms = variance_decomposition(sweep.array(MetricName.MSE_TEST), [a.name for a in sweep.spec.axes]) or {}
    term = terms.get("stddev")
    means = {
        v: float(np.nanmean(sweep.values(MetricName.MSE_TEST, c)))
        for v, c in zip(sweep.spec.axes[0].values, sweep.spec.cells(), strict=True)
    }
    if term is None or term.p is None:
        verdict = ClaimVerdict.INCONCLUSIVE
    elif term.p < ALPHA and term.share >= drastic_share:
        verdict = ClaimVerdict.SUPPORTED
    elif term.p < ALPHA:
        verdict = ClaimVerdict.NOT_SUPPORTED  # it matters, but explains less than `drastic_share` of the variation
    else:
        verdict = ClaimVerdict.INCONCLUSIVE
    return Claim(
        "stddev-drastic",
        "Changing the TruncatedNormal stddev drastically alters the outcome.",
        "reference experiments",
        f"one-way ANOVA of held-out MSE over stddev {', '.join(sweep.spec.axes[0].values)} with "
        f"{len(sweep.spec.seeds)} seeds each; 'drastic' = p < {ALPHA} and the stddev explains ≥ "
        f"{drastic_share:.0%} of the variance (otherwise: it matters, not drastically → not supported)",
        verdict,
        {"anova": term.to_dict() if term else None, "mean_mse_by_stddev": means},
        (
            f"stddev explains {term.share:.0%} of the MSE variance (p = {term.p:.2g}); mean MSE "
            f"{min(means.values()):.4f}–{max(means.values()):.4f}"
        )
        if term and term.p is not None
        else "not computable",
    )


def claim_smaller_batches_fit_better(grid: StudyResult, *, control: str = "zeros") -> Claim:
    """Smaller batches fit better in a fixed number of epochs (Spearman rank correlation over every run)."""
    from scipy import stats

    data, names = _without(grid, "initializer", control, MetricName.MSE_TEST)
    axis = names.index("batch_size")
    sizes = [grid.spec.cells()[0].config.n_points if v == "full" else int(v) for v in grid.spec.axes[axis].values]
    shape = [1] * data.ndim
    shape[axis] = len(sizes)
    batch = np.broadcast_to(np.array(sizes).reshape(shape), data.shape)
    ok = np.isfinite(data)
    rho, p = stats.spearmanr(batch[ok], data[ok])
    per_batch = {str(s): float(np.nanmean(np.take(data, i, axis=axis))) for i, s in enumerate(sizes)}
    verdict = (
        (ClaimVerdict.SUPPORTED if rho > 0 else ClaimVerdict.NOT_SUPPORTED) if p < ALPHA else ClaimVerdict.INCONCLUSIVE
    )
    return Claim(
        "smaller-batches-fit-better",
        f"Smaller batches fit the sine better in a fixed number of epochs ({grid.spec.base.epochs}).",
        "reference experiments",
        f"Spearman rank correlation of batch size with held-out MSE over all {int(ok.sum())} runs of the grid "
        f"({control} control left out); supported if ρ > 0 at p < {ALPHA}",
        verdict,
        {"spearman_rho": float(rho), "p": float(p), "mean_mse_by_batch_size": per_batch},
        f"ρ = {rho:+.2f} (p = {p:.2g}); mean MSE by batch size: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in per_batch.items()),
    )


def gradient_error_by_batch(config: TrainConfig, batch_sizes: Sequence[int], seeds: Sequence[int]) -> dict[int, float]:
    """Mean relative error ‖g_batch − g_full‖ / ‖g_full‖ of minibatch gradients at the seeded initial weights,
    over every batch of one shuffled epoch and every seed (float64 NumPy backprop, independent of TF)."""
    out: dict[int, list[float]] = {b: [] for b in batch_sizes}
    data = make_data(config)
    x, y = data.x_train.astype(np.float64), data.y_train.astype(np.float64)
    for seed in seeds:
        weights = [
            w.astype(np.float64) for w in fresh_start(config.replace(seed=seed), clear_session=False).initial.values()
        ]
        _, full = loss_and_gradients(weights, x, y, config)
        g_full = np.concatenate([g.ravel() for g in full])
        order = np.random.default_rng(seed).permutation(len(x))
        for b in batch_sizes:
            for begin in range(0, len(x) - b + 1, b):
                idx = order[begin : begin + b]
                _, grads = loss_and_gradients(weights, x[idx], y[idx], config)
                g = np.concatenate([q.ravel() for q in grads])
                out[b].append(float(np.linalg.norm(g - g_full) / np.linalg.norm(g_full)))
    return {b: float(np.mean(v)) for b, v in out.items() if v}


def claim_larger_batches_accurate_gradient(
    grid: StudyResult,
    config: TrainConfig,
    *,
    batch_sizes: Sequence[int] = (8, 32, 64, 128, 256),
    seeds: Sequence[int] = range(5),
) -> Claim:
    """Larger batches estimate the gradient more accurately, and so converge differently."""
    errors = gradient_error_by_batch(config, batch_sizes, seeds)
    values = [errors[b] for b in batch_sizes if b in errors]
    decreasing = all(a > b for a, b in itertools.pairwise(values))
    terms = variance_decomposition(*(_without(grid, "initializer", "zeros", MetricName.FINAL_LOSS))) or {}
    term = terms.get("batch_size")
    converge = term is not None and term.p is not None and term.p < ALPHA
    verdict = (
        ClaimVerdict.SUPPORTED
        if decreasing and converge
        else (ClaimVerdict.NOT_SUPPORTED if not decreasing else ClaimVerdict.INCONCLUSIVE)
    )
    return Claim(
        "larger-batches-gradient",
        "Larger batches give a more accurate gradient estimate, and so a different convergence.",
        "reference experiments",
        "relative error of minibatch gradients against the full-batch gradient at the seeded initial weights "
        f"(batch sizes {list(batch_sizes)}, seeds {list(seeds)}); and the batch-size main effect on the final "
        f"training loss in the grid (ANOVA); supported if the error falls strictly with batch size and p < {ALPHA}",
        verdict,
        {"relative_gradient_error": errors, "final_loss_anova": term.to_dict() if term else None},
        "gradient error "
        + ", ".join(f"b={b}: {e:.3f}" for b, e in errors.items())
        + (
            f"; batch size explains {term.share:.0%} of final-loss variance (p = {term.p:.2g})"
            if term and term.p is not None
            else ""
        ),
    )


def claim_reused_permutation(
    config: TrainConfig,
    *,
    seeds: Sequence[int] = range(10),
    engine: str = "fused",
    progress: Callable[[int, int, str], None] | None = None,
) -> Claim:
    """Ours: seeded ``fit`` (Keras 3.15 / TF 2.21) reuses one permutation every epoch — does that cost fit?"""
    reused, fresh, distinct = [], [], []
    seeds = list(seeds)
    for i, seed in enumerate(seeds):
        if progress is not None:
            progress(i + 1, len(seeds), f"permutation claim seed {seed}")
        cfg = config.replace(seed=seed)
        keras_orders = epoch_orders_from_keras(cfg, np.zeros((cfg.n_points, 1), np.float32))
        distinct.append(len({o.tobytes() for o in keras_orders}))
        rng = np.random.default_rng([seed, 1])
        new_orders = np.stack([rng.permutation(cfg.n_points) for _ in range(cfg.epochs)]).astype(np.int32)
        reused.append(train(cfg, engine=engine).metrics.mse_test)
        fresh.append(train_fused(cfg, orders=new_orders).metrics.mse_test)
    diff = np.array(reused) - np.array(fresh)
    low, high = bootstrap_ci(diff)
    verdict = verdict_from_interval(low, high, better_if_negative=False)
    return Claim(
        "reused-permutation",
        f"Seeded fit reuses one permutation every epoch (measured here: "
        f"{max(distinct)} distinct order(s) in {config.epochs} epochs); that costs fit quality compared with a fresh "
        "permutation per epoch.",
        "sinecheck",
        f"per seed ({len(seeds)}), the same initial weights trained with fit's orders and with a fresh permutation "
        "per epoch (fused engine, given orders); paired difference of held-out MSE (reused − fresh), 95 % "
        "bootstrap interval; supported if above 0",
        verdict,
        {
            "distinct_orders_per_run": distinct,
            "mse_reused": reused,
            "mse_fresh": fresh,
            "diff_mean": float(diff.mean()),
            "diff_ci": [low, high],
        },
        f"MSE reused − fresh {diff.mean():+.4f} (95 % CI {low:+.4f} … {high:+.4f}); fit drew "
        f"{max(distinct)} distinct order(s) per run",
    )


def render_claims(claims: Sequence[Claim], *, markdown: bool = False) -> str:
    """The claims ledger: claim, verdict, the numbers in one line, the test used."""
    if markdown:
        lines = ["| claim | verdict | measured | test |", "|---|---|---|---|"]
        lines += [f"| {c.claim} | **{c.verdict}** | {c.summary} | {c.test} |" for c in claims]
        return "\n".join(lines)
    out = []
    for c in claims:
        out += [f"[{c.verdict.upper()}] {c.claim}", f"    measured: {c.summary}", f"    test: {c.test}"]
    return "\n".join(out)
