"""Why do two setups predict different sine waves?  Shapley attribution of the gap to each differing factor.

Given configs A and B, the factors in which they differ (initializer, learning rate, batch size, ...) are
swapped from A to B in every subset, each subset trained on the same seeds.  For each seed the Shapley value
of a factor is its average marginal effect over all orders of swapping; the values add up exactly to that
seed's gap B − A.  Averaged over seeds, with a bootstrap confidence interval over seeds, they say how much of
the gap each factor explains, next to the seed noise floor (how far two seeds of the same config already
differ).  Two quantities are attributed: the held-out MSE, and the predicted curve's RMS distance from A's.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinecheck.core.compare import json_float
from sinecheck.core.config import OptimizerSpec, TrainConfig
from sinecheck.errors import ConfigError
from sinecheck.study.runner import run_cell, run_one
from sinecheck.study.stats import bootstrap_ci


@dataclass(frozen=True)
class ConfigFactor:
    """A difference between A and B that can be swapped on its own (not a matrix `checks.factors.Factor`)."""

    name: str
    a: str
    b: str
    swap: Callable[[TrainConfig], TrainConfig]  # a config with this factor taken from B


def differing_factors(a: TrainConfig, b: TrainConfig) -> list[ConfigFactor]:
    """Every factor in which `a` and `b` differ (the seed excepted: it is the replicate)."""
    out: list[ConfigFactor] = []
    oa, ob = a.optimizer, b.optimizer
    if oa.learning_rate != ob.learning_rate:
        out.append(
            ConfigFactor(
                "learning_rate",
                f"{oa.learning_rate:g}",
                f"{ob.learning_rate:g}",
                lambda c: c.replace(optimizer=OptimizerSpec(c.optimizer.name, ob.learning_rate, c.optimizer.params)),
            )
        )
    if (oa.name, oa.params) != (ob.name, ob.params):
        out.append(
            ConfigFactor(
                "optimizer",
                oa.name,
                ob.name,
                lambda c: c.replace(optimizer=OptimizerSpec(ob.name, c.optimizer.learning_rate, ob.params)),
            )
        )
    da, db = a.to_dict(), b.to_dict()
    for name in da:
        if name in ("optimizer", "seed", "schema") or da[name] == db[name]:
            continue
        value = getattr(b, name)
        out.append(ConfigFactor(name, _show(getattr(a, name)), _show(value), _setter(name, value)))
    return out


def _setter(name: str, value: object) -> Callable[[TrainConfig], TrainConfig]:
    """A swap that sets one TrainConfig field to `value`."""
    return lambda config: config.replace(**{name: value})


def _show(value: object) -> str:
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)


@dataclass
class Attribution:
    """One factor's Shapley value for one quantity: mean over seeds and its 95 % bootstrap interval."""

    factor: str
    mean: float
    ci_low: float
    ci_high: float
    per_seed: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "mean": json_float(self.mean),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "per_seed": [json_float(v) for v in self.per_seed],
        }


@dataclass
class Explanation:
    """The attribution of the gap between A and B, with everything needed to judge it."""

    a_name: str
    b_name: str
    a: TrainConfig
    b: TrainConfig
    factors: list[ConfigFactor]
    seeds: list[int]
    mse: dict[str, np.ndarray]  # subset label -> held-out MSE per seed
    mse_attribution: list[Attribution]
    curve_attribution: list[Attribution]
    gap: Attribution  # MSE(B) - MSE(A)
    curve_gap: Attribution  # RMS distance between B's and A's curves
    noise_mse: dict[str, float]  # seed-to-seed std of the MSE, for A and for B
    noise_curve: dict[str, float]  # mean RMS distance between curves of two seeds, for A and for B
    curves: dict[str, np.ndarray]  # subset label -> curves, seeds × held-out grid
    elapsed_s: float
    engine: str

    def sentence(self) -> str:
        """The one-line answer: "learning_rate explains X ± Y of the MSE gap, ..., seed noise ±V"."""
        parts = [f"{a.factor} {a.mean:+.4f} ± {_half(a):.4f}" for a in self.mse_attribution]
        noise = max(self.noise_mse.values())
        return (
            f"held-out MSE {self.a_name} → {self.b_name}: gap {self.gap.mean:+.4f} ± {_half(self.gap):.4f} "
            f"= {' + '.join(parts)} (95 % CI half-widths over {len(self.seeds)} seeds); "
            f"seed noise: the MSE of one config varies by ±{noise:.4f} (std over seeds)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"name": self.a_name, "config": self.a.to_dict()},
            "b": {"name": self.b_name, "config": self.b.to_dict()},
            "factors": [{"name": f.name, "a": f.a, "b": f.b} for f in self.factors],
            "seeds": self.seeds,
            "engine": self.engine,
            "mse_gap": self.gap.to_dict(),
            "curve_gap": self.curve_gap.to_dict(),
            "mse_attribution": [a.to_dict() for a in self.mse_attribution],
            "curve_attribution": [a.to_dict() for a in self.curve_attribution],
            "noise": {
                "mse_std": {k: json_float(v) for k, v in self.noise_mse.items()},
                "curve_rms_between_seeds": {k: json_float(v) for k, v in self.noise_curve.items()},
            },
            "mse_per_subset": {k: [json_float(float(x)) for x in v] for k, v in self.mse.items()},
            "sentence": self.sentence(),
            "elapsed_s": self.elapsed_s,
        }


def _half(a: Attribution) -> float:
    return (a.ci_high - a.ci_low) / 2 if math.isfinite(a.ci_high) and math.isfinite(a.ci_low) else math.nan


def _summary(name: str, values: np.ndarray) -> Attribution:
    low, high = bootstrap_ci(values)
    return Attribution(name, float(np.nanmean(values)), low, high, [float(v) for v in values])


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def explain(
    a: TrainConfig,
    b: TrainConfig,
    *,
    seeds: Sequence[int] = range(10),
    engine: str = "fused",
    a_name: str = "A",
    b_name: str = "B",
    max_factors: int = 6,
    progress: Callable[[int, int, str], None] | None = None,
    executor: Executor | None = None,
) -> Explanation:
    """Train every subset of swaps from `a` towards `b` on every seed and attribute the gap (see module doc).

    With an `executor` (the study's process pool) each subset's seeds run as one task there, all subsets at
    once; otherwise one run at a time in this process."""
    factors = differing_factors(a, b)
    if not factors:
        raise ConfigError(f"explain: {a_name} and {b_name} differ in no factor but the seed; nothing to explain")
    if len(factors) > max_factors:
        names = ", ".join(f.name for f in factors)
        raise ConfigError(
            f"explain: {len(factors)} differing factors ({names}); allowed: at most {max_factors} "
            f"(2^k subsets × seeds runs)"
        )
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ConfigError(f"seeds: invalid value {len(seeds)}; allowed: at least 2 (the noise floor needs two)")
    k = len(factors)
    subsets = [frozenset(s) for r in range(k + 1) for s in itertools.combinations(range(k), r)]
    label = {s: "+".join(factors[i].name for i in sorted(s)) or a_name for s in subsets}
    started = time.perf_counter()
    mse: dict[frozenset[int], np.ndarray] = {}
    curves: dict[frozenset[int], np.ndarray] = {}
    total, done = len(subsets) * len(seeds), 0
    configs = {}
    for subset in subsets:
        config = a
        for i in sorted(subset):
            config = factors[i].swap(config)
        configs[subset] = config
    pooled = (
        {s: executor.submit(run_cell, [configs[s].replace(seed=x).to_dict() for x in seeds], engine) for s in subsets}
        if executor is not None
        else {}
    )
    for subset in subsets:
        config = configs[subset]
        outputs = pooled[subset].result() if subset in pooled else None
        values, rows = [], []
        for j, seed in enumerate(seeds):
            done += 1
            if progress is not None:
                progress(done, total, f"{label[subset]} seed {seed}")
            record, curve = outputs[j] if outputs is not None else run_one(config.replace(seed=seed), engine)
            values.append(np.nan if record["diverged"] else record["metrics"].mse_test)
            rows.append(curve)
        mse[subset], curves[subset] = np.array(values, np.float64), np.stack(rows)
    full: frozenset[int] = frozenset(range(k))
    empty: frozenset[int] = frozenset()
    distance = {s: np.array([_rms(curves[s][j], curves[empty][j]) for j in range(len(seeds))]) for s in subsets}

    def shapley(value: dict[frozenset[int], np.ndarray], i: int) -> np.ndarray:
        phi = np.zeros(len(seeds))
        for s in subsets:
            if i in s:
                continue
            weight = math.factorial(len(s)) * math.factorial(k - len(s) - 1) / math.factorial(k)
            phi += weight * (value[s | {i}] - value[s])
        return phi

    mse_attr = [_summary(f.name, shapley(mse, i)) for i, f in enumerate(factors)]
    curve_attr = [_summary(f.name, shapley(distance, i)) for i, f in enumerate(factors)]

    def between_seeds(rows: np.ndarray) -> float:
        return float(np.mean([_rms(rows[j], rows[j + 1]) for j in range(len(rows) - 1)]))

    return Explanation(
        a_name,
        b_name,
        a,
        b,
        factors,
        seeds,
        {label[s]: v for s, v in mse.items()},
        mse_attr,
        curve_attr,
        _summary("gap", mse[full] - mse[empty]),
        _summary("curve distance", distance[full]),
        {a_name: float(np.nanstd(mse[empty], ddof=1)), b_name: float(np.nanstd(mse[full], ddof=1))},
        {a_name: between_seeds(curves[empty]), b_name: between_seeds(curves[full])},
        {label[s]: c for s, c in curves.items()},
        time.perf_counter() - started,
        engine,
    )


def render_explanation(e: Explanation) -> str:
    """The explanation as a terminal/Markdown-friendly table plus the one-line answer."""
    lines = [
        f"{e.a_name} vs {e.b_name}: {len(e.factors)} differing factor(s), {len(e.seeds)} seeds, "
        f"{2 ** len(e.factors) * len(e.seeds)} runs with engine {e.engine} in {e.elapsed_s:.0f} s",
        "",
    ]
    wa = max([len("A"), *(len(f.a) for f in e.factors)])
    wb = max([len("B"), *(len(f.b) for f in e.factors)])
    wf = max([len("total (B − A)"), *(len(f.name) for f in e.factors)])
    lines.append(f"{'factor':<{wf}}  {'A':<{wa}}  {'B':<{wb}}  {'Δ MSE (Shapley)':>18}  {'curve RMS (Shapley)':>20}")
    for f, m, c in zip(e.factors, e.mse_attribution, e.curve_attribution, strict=True):
        lines.append(f"{f.name:<{wf}}  {f.a:<{wa}}  {f.b:<{wb}}  {_pm(m):>18}  {_pm(c):>20}")
    lines.append(f"{'total (B − A)':<{wf}}  {'':<{wa}}  {'':<{wb}}  {_pm(e.gap):>18}  {_pm(e.curve_gap):>20}")
    noise_m = ", ".join(f"{k} ±{v:.4f}" for k, v in e.noise_mse.items())
    noise_c = ", ".join(f"{k} {v:.4f}" for k, v in e.noise_curve.items())
    lines += [
        "",
        f"seed noise floor: MSE std over seeds {noise_m}; curve RMS between two seeds {noise_c}",
        "",
        e.sentence(),
    ]
    return "\n".join(lines)


def _pm(a: Attribution) -> str:
    return f"{a.mean:+.4f} ± {_half(a):.4f}"
