"""The claims' statistics and verdict rules, pinned on synthetic data: every rule gives each of its verdicts.

No training here: each claim's measurement is replaced by a synthetic one (a `SeedRuns` whose held-out MSE is a
formula of the config and the seed, or a monkeypatched measurement function), so every test runs in well under a
second and fails if a rule, a direction, a margin, the looks correction or the Holm step changes.
"""

from __future__ import annotations

import math
import zlib
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy")

from sinecheck.core.presets import get_preset
from sinecheck.study import claims as c
from sinecheck.study.claims import ClaimVerdict as V
from sinecheck.study.claims import Direction, Evidence, StatTest
from sinecheck.study.stats import bca_bootstrap, blocked_main_effect, bootstrap_ci, holm, variance_decomposition

IMPLICIT = get_preset("keras-default").configs[0].replace(epochs=2)
EXPLICIT = get_preset("tf-explicit").configs[0].replace(epochs=2)
LOOKS = (10, 20)


def _noise(*key: object) -> float:
    """A standard normal draw fixed by `key` (crc32: no hash randomisation)."""
    return float(np.random.default_rng(zlib.crc32(repr(key).encode())).normal())


class FakeRuns(c.SeedRuns):
    """Held-out MSE = ``formula(config, engine)``; nothing is trained."""

    def __init__(self, formula: Any) -> None:
        super().__init__("fused")
        self.formula = formula

    def mse_test(self, config: Any, engine: str | None = None) -> float:
        self.trained += 1
        return float(self.formula(config, engine or self.engine))


def _judged(claim: c.Claim) -> c.Claim:
    return c.judge_family([claim])[0]


# -- statistics ----------------------------------------------------------------------------------------------


def test_bca_p_values_agree_with_the_t_test_on_normal_data() -> None:
    from scipy import stats

    x = np.random.default_rng(1).normal(0.3, 1.0, 20)
    boot = bca_bootstrap(x, lambda a: a[..., 0].mean(axis=-1))
    t = stats.ttest_1samp(x, 0.0, alternative="greater").pvalue
    assert boot.p_greater(0.0) == pytest.approx(t, rel=0.35), (boot.p_greater(0.0), t)
    assert boot.p_greater(0.0) + boot.p_less(0.0) == pytest.approx(1.0)
    low, high = boot.ci(0.95)
    assert low < x.mean() < high
    assert boot.p_greater(low) == pytest.approx(0.025, abs=0.01)  # the p-value inverts the interval
    assert boot.p_less(high) == pytest.approx(0.025, abs=0.01)


def test_bca_covers_better_than_percentile_on_skewed_small_samples() -> None:
    """Exponential samples of 10 (true mean 1): the percentile interval undercovers; BCa less so."""
    from scipy import stats

    rng = np.random.default_rng(0)
    bca = percentile = 0
    for _ in range(200):
        x = rng.exponential(1.0, 10)
        low, high = bootstrap_ci(x)
        bca += low <= 1 <= high
        r = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=2000, random_state=np.random.default_rng(0))
        percentile += r.confidence_interval.low <= 1 <= r.confidence_interval.high
    assert bca > percentile, (bca, percentile)


def test_bootstrap_degenerate_samples() -> None:
    same = bca_bootstrap(np.full(5, 0.4), lambda a: a[..., 0].mean(axis=-1))
    assert same.ci() == (0.4, 0.4) and same.p_greater(0.3) == 0.0 and same.p_greater(0.5) == 1.0
    assert math.isnan(bca_bootstrap(np.array([np.nan]), lambda a: a[..., 0].mean(axis=-1)).estimate)
    assert bootstrap_ci(np.array([0.4, 0.4, 0.4])) == pytest.approx((0.4, 0.4))


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2, 0.001]) == pytest.approx([0.2, 0.002])
    assert holm([]) == []
    # Shaffer: the first two exclude each other (one claim), so the second step still counts two claims
    assert holm([0.01, 0.02, 0.5], ["a", "a", "b"]) == pytest.approx([0.02, 0.04, 0.5])
    assert holm([0.01, 0.02, 0.5]) == pytest.approx([0.03, 0.04, 0.5])


def test_blocked_test_does_not_count_shared_seeds_as_replicates() -> None:
    """A factor whose effect varies from seed to seed (factor × seed interaction, no mean effect), repeated in every
    cell of another factor: the pooled ANOVA (runs as independent replicates) calls it significant; blocked on the
    seed it is not."""
    seeds, others = 10, 8
    effect = np.array([[_noise("level", i, s) for s in range(seeds)] for i in range(3)])  # level × seed only
    data = np.stack([effect + 0.01 * j for j in range(others)], axis=1)  # (3, 8 others, seeds)
    data = data + 0.01 * np.array([[[_noise(i, j, s) for s in range(seeds)] for j in range(others)] for i in range(3)])
    pooled = variance_decomposition(data, ["factor", "other"])
    assert pooled is not None and pooled["factor"].p is not None and pooled["factor"].p < 0.01, pooled["factor"]
    blocked = blocked_main_effect(data, 0)
    assert blocked is not None and blocked.p is not None and blocked.p > 0.1, blocked
    shifted = data + np.array([0.0, 1.5, 3.0])[:, None, None]  # a consistent effect on top: found
    found = blocked_main_effect(shifted, 0)
    assert found is not None and found.p is not None and found.p < 1e-3


# -- the judging machinery -----------------------------------------------------------------------------------


def _evidence(p_effect: float, p_equivalent: float | None, estimate: float, direction: Direction) -> Evidence:
    return Evidence("x", estimate, estimate, estimate, 0.95, p_effect, p_equivalent, direction, 10, 10, 1)


@pytest.mark.parametrize(
    ("p_effect", "p_equiv", "estimate", "direction", "expected"),
    [
        (0.001, 1.0, 1.0, Direction.GREATER, V.SUPPORTED),
        (0.001, 1.0, -1.0, Direction.GREATER, V.NOT_SUPPORTED),  # significant the other way
        (0.001, 1.0, -1.0, Direction.LESS, V.SUPPORTED),
        (0.5, 0.001, 0.0, Direction.GREATER, V.NOT_SUPPORTED),  # equivalent: smaller than the margin
        (0.001, 0.001, 0.001, Direction.GREATER, V.NOT_SUPPORTED),  # real but negligible
        (0.5, 0.5, 1.0, Direction.GREATER, V.INCONCLUSIVE),
        (0.5, 0.001, 0.0, Direction.EQUAL, V.SUPPORTED),
        (0.001, 1.0, 2.0, Direction.EQUAL, V.NOT_SUPPORTED),
        (0.5, 0.5, 0.0, Direction.EQUAL, V.INCONCLUSIVE),
    ],
)
def test_verdict_rule(p_effect: float, p_equiv: float, estimate: float, direction: Direction, expected: V) -> None:
    ev = _evidence(p_effect, p_equiv, estimate, direction)
    ev.p_effect_holm, ev.p_equivalent_holm = p_effect, p_equiv
    assert c.verdict_of(ev) is expected


def test_holm_over_the_family_can_undo_a_lone_significance() -> None:
    """p = 0.03 decides a claim alone; beside three other open claims (two hypotheses each, which exclude each
    other: Shaffer counts claims, not hypotheses) it is multiplied by 4 and does not."""
    lone = c.Claim("a", "a", "x", "x", V.INCONCLUSIVE, evidence=_evidence(0.03, None, 1.0, Direction.GREATER))
    assert c.judge_family([lone])[0].verdict is V.SUPPORTED
    family = [lone] + [
        c.Claim(str(i), "b", "x", "x", V.INCONCLUSIVE, evidence=_evidence(0.5, 0.5, 1.0, Direction.GREATER))
        for i in range(3)
    ]
    judged = c.judge_family(family)
    assert judged[0].verdict is V.INCONCLUSIVE
    assert judged[0].evidence is not None and judged[0].evidence.p_effect_holm == pytest.approx(0.12)
    bitwise = c.Claim("b", "b", "x", "x", V.SUPPORTED)  # no evidence: keeps its verdict, not in the family
    assert c.judge_family([bitwise])[0].verdict is V.SUPPORTED


def _mean(a: np.ndarray) -> np.ndarray:
    return np.asarray(a[..., 0].mean(axis=-1))


MEAN = StatTest("mean", lambda a: a[..., 0].mean(axis=-1), Direction.GREATER, margin=(-0.1, 0.1))


def test_sequential_stops_when_decided_and_corrects_for_looks() -> None:
    strong, rows = c.sequential(MEAN, lambda s: [1.0 + 0.1 * _noise(s)], looks=(10, 20, 50), family=3)
    assert (strong.stopped, strong.seeds, strong.cap, rows.shape) == ("decided", 10, 50, (10, 1))
    raw = bca_bootstrap(rows, MEAN.statistic)
    weight = 10 / (10 + 20 + 50)  # the first look's share of α
    assert strong.p_effect == pytest.approx(min(1.0, 2 * min(raw.p_greater(0.0), raw.p_less(0.0)) / weight))
    assert strong.confidence == pytest.approx(1 - 0.05 * weight)
    null, _ = c.sequential(MEAN, lambda s: [_noise(s)], looks=(10, 20, 50), family=3)
    assert (null.stopped, null.seeds) == ("cap", 50)  # pure noise, SD 1 against a margin of 0.1: the cap
    assert null.low < 0 < null.high
    tiny, _ = c.sequential(MEAN, lambda s: [0.01 * _noise(s)], looks=(10, 20, 50), family=3)
    assert tiny.stopped == "decided" and tiny.p_equivalent < 0.05 / 6  # shown negligible: decided early


# -- each claim, each verdict --------------------------------------------------------------------------------


def _is_explicit(config: Any) -> bool:
    return config.kernel_initializer.name == "truncated_normal"


@pytest.mark.parametrize(
    ("sd_implicit", "sd_explicit", "looks", "expected", "stopped"),
    [
        (0.10, 0.01, LOOKS, V.SUPPORTED, "decided"),
        (0.01, 0.10, LOOKS, V.NOT_SUPPORTED, "decided"),
        (0.05, 0.05, (6,), V.INCONCLUSIVE, "cap"),
    ],
)
def test_claim_consistency(sd_implicit: float, sd_explicit: float, looks: tuple, expected: V, stopped: str) -> None:
    runs = FakeRuns(
        lambda cfg, e: 0.3 + (sd_explicit if _is_explicit(cfg) else sd_implicit) * _noise(cfg.seed, _is_explicit(cfg))
    )
    claim = _judged(c.claim_consistency(runs, IMPLICIT, EXPLICIT, looks=looks, family=1))
    assert (claim.verdict, claim.evidence.stopped) == (expected, stopped), claim.summary  # type: ignore[union-attr]
    assert claim.source == c.ARTICLE and claim.numbers["sd_ratio"] == pytest.approx(
        np.exp(claim.evidence.estimate)  # type: ignore[union-attr]
    )


def test_claim_consistency_equal_spread_is_not_supported() -> None:
    """The same seed noise in both setups (ratio ~1 within 0.8–1.25): shown not more consistent."""
    runs = FakeRuns(lambda cfg, e: 0.3 + 0.05 * _noise(cfg.seed) + 0.001 * _noise(cfg.seed, _is_explicit(cfg)))
    claim = _judged(c.claim_consistency(runs, IMPLICIT, EXPLICIT, looks=LOOKS, family=1))
    assert claim.verdict is V.NOT_SUPPORTED and claim.evidence.p_equivalent_holm < 0.05  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("gap", "noise", "looks", "expected"),
    [
        (-0.1, 0.01, LOOKS, V.SUPPORTED),
        (0.1, 0.01, LOOKS, V.NOT_SUPPORTED),
        (0.0, 0.001, LOOKS, V.NOT_SUPPORTED),
        (0.0, 0.2, (8,), V.INCONCLUSIVE),
    ],
)
def test_claim_lr_with_small_stddev(gap: float, noise: float, looks: tuple, expected: V) -> None:
    runs = FakeRuns(lambda cfg, e: 0.3 + (gap if _is_explicit(cfg) else 0.0) + noise * _noise(cfg.seed, cfg.config_id))
    claim = _judged(c.claim_lr_with_small_stddev_fits_better(runs, IMPLICIT, EXPLICIT, looks=looks, family=1))
    assert claim.verdict is expected, claim.summary


def test_claim_seeding_reproduces_gives_each_verdict() -> None:
    same = {"default-1": {"digest": "a", "mse": 0.2}, "default-2": {"digest": "a", "mse": 0.2}}
    other = {"default-1": {"digest": "a", "mse": 0.2}, "default-2": {"digest": "b", "mse": 0.21}}
    failed = {"default-1": {"error": "worker died"}, "default-2": {"digest": "a", "mse": 0.2}}
    assert c.claim_seeding_reproduces(same).verdict is V.SUPPORTED
    assert c.claim_seeding_reproduces(other).verdict is V.NOT_SUPPORTED
    claim = c.claim_seeding_reproduces(failed)
    assert claim.verdict is V.INCONCLUSIVE and "worker died" in claim.summary
    assert c.claim_seeding_reproduces(same).source == c.OURS


@pytest.mark.parametrize(
    ("level", "noise", "looks", "expected"),
    [(1.0, 0.05, LOOKS, V.SUPPORTED), (0.05, 1.0, LOOKS, V.NOT_SUPPORTED), (0.5, 0.4, (6,), V.INCONCLUSIVE)],
)
def test_claim_stddev_drastic(level: float, noise: float, looks: tuple, expected: V) -> None:
    from sinecheck.study.grid import Axis, sweep_study

    sweep_spec = sweep_study(Axis("stddev", ("0.01", "0.1", "1.0")), seeds=looks[0], epochs=2)
    steps = {0.01: 0.0, 0.1: 1.0, 1.0: 2.0}

    def value(cfg: Any, _e: str) -> float:
        sd = cfg.kernel_initializer.kwargs()["stddev"]
        return level * steps[sd] + noise * _noise(sd, cfg.seed)

    sweep = _synthetic(
        sweep_spec,
        lambda v, s: value(sweep_spec.cells()[["0.01", "0.1", "1.0"].index(v[0])].config.replace(seed=s), ""),
    )
    claim = _judged(c.claim_stddev_drastic(sweep, runs=FakeRuns(value), looks=looks, family=1))
    assert claim.verdict is expected, claim.summary
    assert claim.evidence is not None and claim.evidence.null == 0.5  # "drastic" = at least half the variation


def _synthetic(spec: Any, value: Any) -> Any:
    from sinecheck.study.runner import StudyResult

    records, curves = {}, {}
    for cell in spec.cells():
        for seed in spec.seeds:
            v = float(value(cell.values, seed))
            records[(cell.index, seed)] = {"diverged": False, "metrics": {"mse_test": v, "final_loss": v}}
            curves[(cell.index, seed)] = np.zeros(1)
    return StudyResult(spec, records, curves)  # type: ignore[arg-type]


def _grid(seeds: int, value: Any) -> Any:
    from sinecheck.study.grid import grid_study

    spec = grid_study(
        seeds=seeds, epochs=2, initializers=["glorot_uniform", "he_normal", "zeros"], batch_sizes=["8", "32", "64"]
    )
    return _synthetic(spec, value)


SIZE = {"8": 0.0, "32": 1.0, "64": 2.0}


@pytest.mark.parametrize(
    ("slope", "noise", "expected"),
    [(0.1, 0.01, V.SUPPORTED), (-0.1, 0.01, V.NOT_SUPPORTED), (0.0, 1.0, V.INCONCLUSIVE)],
)
def test_claim_smaller_batches_fit_better(slope: float, noise: float, expected: V) -> None:
    grid = _grid(8, lambda v, s: 0.3 + slope * SIZE[v[1]] + noise * _noise(v, s))
    claim = _judged(c.claim_smaller_batches_fit_better(grid, family=1))
    assert claim.verdict is expected, claim.summary
    assert claim.evidence is not None and claim.evidence.seeds == 8  # one value per seed, not per run


def test_claim_smaller_batches_no_trend_is_not_supported() -> None:
    """Within every seed, batch 32 best and 8 and 64 equal (ρ = 0 in every block): no monotone trend."""
    grid = _grid(10, lambda v, s: {"8": 0.5, "32": 0.3, "64": 0.5}[v[1]] + 0.01 * _noise(v[0], s))
    claim = _judged(c.claim_smaller_batches_fit_better(grid, family=1))
    assert claim.verdict is V.NOT_SUPPORTED and abs(claim.evidence.estimate) < 0.1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("init", "batch", "expected"),
    [(1.0, 1.0, V.SUPPORTED), (1.0, 0.0, V.INCONCLUSIVE), (0.0, 0.0, V.INCONCLUSIVE)],
)
def test_claim_initializer_and_batch_matter(init: float, batch: float, expected: V) -> None:
    effect = {"glorot_uniform": 0.0, "he_normal": 1.0, "zeros": 5.0}
    grid = _grid(8, lambda v, s: init * effect[v[0]] + batch * SIZE[v[1]] + 0.05 * _noise(v, s) + _noise(s))
    assert _judged(c.claim_initializer_and_batch_matter(grid)).verdict is expected


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ({8: 0.9, 32: 0.5, 128: 0.2}, V.SUPPORTED),
        ({8: 0.2, 32: 0.5, 128: 0.9}, V.NOT_SUPPORTED),
        ({8: 0.5, 32: 0.3, 128: 0.5}, V.NOT_SUPPORTED),  # slope 0 (symmetric in log b): within the ±0.05 margin
    ],
)
def test_claim_larger_batches_gradient(monkeypatch: pytest.MonkeyPatch, errors: dict, expected: V) -> None:
    def fake(config: Any, batch_sizes: Any, seed: int, **_: Any) -> dict:
        return {cp: {b: e * (1 + 0.01 * _noise(seed, cp, b)) for b, e in errors.items()} for cp in (0, 5)}

    monkeypatch.setattr(c, "gradient_errors", fake)
    claim = _judged(c.claim_larger_batches_accurate_gradient(IMPLICIT, batch_sizes=(8, 32, 128), looks=LOOKS, family=1))
    assert claim.verdict is expected, claim.summary


def test_claim_larger_batches_gradient_inconclusive_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(config: Any, batch_sizes: Any, seed: int, **_: Any) -> dict:
        return {cp: {b: float(np.exp(0.5 * _noise(seed, cp, b))) for b in batch_sizes} for cp in (0, 5)}

    monkeypatch.setattr(c, "gradient_errors", fake)
    claim = _judged(c.claim_larger_batches_accurate_gradient(IMPLICIT, batch_sizes=(8, 32, 64), looks=(6,), family=1))
    assert claim.verdict is V.INCONCLUSIVE and claim.evidence.stopped == "cap", claim.summary  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("loop_gap", "fresh_gap", "noise", "looks", "expected"),
    [
        (-0.1, -0.1, 0.01, LOOKS, V.SUPPORTED),  # the loop ranks 128 better, and so do fresh models
        (-0.1, 0.1, 0.01, LOOKS, V.NOT_SUPPORTED),  # reversed for fresh models
        (-0.1, 0.0, 0.001, LOOKS, V.NOT_SUPPORTED),  # no practical difference for fresh models
        (-0.1, 0.0, 0.2, (8,), V.INCONCLUSIVE),
    ],
)
def test_claim_article_batch_loop(
    monkeypatch: pytest.MonkeyPatch, loop_gap: float, fresh_gap: float, noise: float, looks: tuple, expected: V
) -> None:
    def fake_loop(runs: Any, configs: Any, seed: int) -> tuple[list[float], list[float]]:
        e = noise * _noise(seed)
        return [0.4, 0.4 + loop_gap / 2, 0.4 + loop_gap], [0.4, 0.4, 0.4 + fresh_gap + e]

    monkeypatch.setattr(c, "article_loop", fake_loop)
    configs = get_preset("batch-sweep").with_overrides(epochs=2).configs
    claim = _judged(c.claim_article_batch_loop(FakeRuns(lambda cfg, e: 0.0), configs, looks=looks, family=1))
    assert claim.verdict is expected, claim.summary
    assert claim.numbers["loop_gap"] == pytest.approx(loop_gap)


def _fake_ulp(monkeypatch: pytest.MonkeyPatch, change: Any) -> FakeRuns:
    """Seeded runs with MSE 0.3 + 0.05 noise(seed); the one-ULP run adds ``change(seed)``."""
    x = np.linspace(0, 10, 8).reshape(-1, 1).astype(np.float32)

    def result(cfg: Any, mse: float) -> SimpleNamespace:
        w = {"k0": np.ones((1, 2), np.float32), "b0": np.zeros(2, np.float32)}
        return SimpleNamespace(
            initial_weights=w,
            final_weights=w,
            pred_test=np.array([mse]),
            diverged=False,
            metrics=SimpleNamespace(mse_test=mse),
            config=cfg,
        )

    def train(cfg: Any, engine: str, initial_weights: Any = None) -> SimpleNamespace:
        moved = change(initial_weights["seed"]) if initial_weights is not None else 0.0
        return result(cfg, 0.3 + 0.05 * _noise(cfg.seed) + moved)

    runs = FakeRuns(lambda cfg, e: 0.3 + 0.05 * _noise(cfg.seed))
    w = {"k0": np.ones((1, 2), np.float32), "b0": np.zeros(2, np.float32)}
    monkeypatch.setattr(c, "fresh_start", lambda cfg, clear_session: SimpleNamespace(initial=w))
    monkeypatch.setattr(c, "one_ulp_start", lambda initial, cfg, seed: ({"seed": seed}, 0, seed % 2 == 0))
    monkeypatch.setattr(c, "train", train)
    monkeypatch.setattr(c, "make_data", lambda cfg: SimpleNamespace(x_train=x))
    return runs


@pytest.mark.parametrize(
    ("change", "looks", "expected"),
    [
        (lambda s: 0.07 * _noise("ulp", s), (50, 100), V.SUPPORTED),  # as much spread as a new seed (ratio ~1)
        (lambda s: 1e-6 * _noise("ulp", s), LOOKS, V.NOT_SUPPORTED),  # far less
        (lambda s: 0.07 * _noise("ulp", s), (5,), V.INCONCLUSIVE),
    ],
)
def test_claim_one_ulp(monkeypatch: pytest.MonkeyPatch, change: Any, looks: tuple, expected: V) -> None:
    runs = _fake_ulp(monkeypatch, change)
    claim = _judged(c.claim_one_ulp(runs, IMPLICIT, looks=looks, family=1, first_look=1))
    assert claim.verdict is expected, claim.summary
    assert claim.source == c.SUMMERS and math.isfinite(claim.numbers["ratio_live_units"])
    assert claim.numbers["perturbed_unit_dead_at_init"] == sum(1 for s in range(claim.evidence.seeds) if s % 2 == 0)  # type: ignore[union-attr]


def test_one_ulp_start_moves_one_weight_by_one_ulp() -> None:
    w = {"k": np.array([[0.5, -0.25, 0.125]], np.float32), "b": np.zeros(3, np.float32)}
    moved, unit, dead = c.one_ulp_start(w, IMPLICIT.replace(n_points=16), seed=3)
    diff = moved["k"] != w["k"]
    assert diff.sum() == 1 and diff[0, unit]
    assert abs(moved["k"][0, unit]) == np.nextafter(abs(w["k"][0, unit]), np.float32(np.inf))
    assert dead == (w["k"][0, unit] < 0)  # x >= 0 and a zero bias: a negative input weight is a dead unit
    assert np.array_equal(w["k"], [[0.5, -0.25, 0.125]])  # the original is untouched


@pytest.mark.parametrize(
    ("change", "looks", "expected"),
    [
        (1e-4, LOOKS, V.SUPPORTED),
        (0.2, LOOKS, V.NOT_SUPPORTED),  # an implementation change that moves the outcome like a new seed
        (0.1, (5,), V.INCONCLUSIVE),
    ],
)
def test_claim_implementation_factors(change: float, looks: tuple, expected: V) -> None:
    runs = FakeRuns(
        lambda cfg, e: 0.3 + 0.05 * _noise(cfg.seed) + (change * _noise("xla", cfg.seed) if e == "fused-xla" else 0.0)
    )
    claim = _judged(c.claim_implementation_factors(runs, IMPLICIT, looks=looks, family=1))
    assert claim.verdict is expected, claim.summary
    assert claim.source == c.PHAM


@pytest.mark.parametrize(
    ("shift", "noise", "looks", "expected"),
    [
        (0.1, 0.01, LOOKS, V.SUPPORTED),
        (-0.1, 0.01, LOOKS, V.NOT_SUPPORTED),
        (0.0, 0.001, LOOKS, V.NOT_SUPPORTED),
        (0.0, 0.2, (6,), V.INCONCLUSIVE),
    ],
)
def test_claim_reused_permutation(
    monkeypatch: pytest.MonkeyPatch, shift: float, noise: float, looks: tuple, expected: V
) -> None:
    base = IMPLICIT.replace(epochs=3)
    monkeypatch.setattr(c, "epoch_orders_from_keras", lambda cfg, y: np.tile(np.arange(cfg.n_points), (3, 1)))
    monkeypatch.setattr(
        c,
        "train_fused",
        lambda cfg, orders: SimpleNamespace(
            diverged=False, metrics=SimpleNamespace(mse_test=0.3 - shift + noise * _noise(cfg.seed))
        ),
    )
    monkeypatch.setattr(
        c, "train", lambda cfg, engine: SimpleNamespace(diverged=False, metrics=SimpleNamespace(mse_test=0.3))
    )
    claim = _judged(c.claim_reused_permutation(FakeRuns(lambda cfg, e: 0.3), base, looks=looks, family=1))
    assert claim.verdict is expected, claim.summary
    assert claim.numbers["distinct_orders_per_run"] == [1] * claim.evidence.seeds  # type: ignore[union-attr]


def test_baseline_spread_reads_the_stored_environments(tmp_path: Any) -> None:
    import json

    def write(env: str, values: dict[str, float]) -> None:
        entries = {k: {"config": {"epochs": 100}, "metrics": {"mse_test": v}} for k, v in values.items()}
        (tmp_path / f"{env}-tensorflow-x.json").write_text(json.dumps({"entries": entries}))

    write("tf2.1-keras3.1", {"a/seed0": 0.20, "a/seed1": 0.30})
    write("tf2.2-keras3.1", {"a/seed0": 0.22, "a/seed1": 0.30})
    out = c.baseline_spread(tmp_path)
    assert out["entries"] == 2 and out["environments"] == ["tf2.1-keras3.1", "tf2.2-keras3.1"]
    assert out["sd_across_environments_mean"] == pytest.approx(np.mean([np.std([0.2, 0.22], ddof=1), 0.0]))
    assert out["sd_across_seeds_mean"] == pytest.approx(
        np.mean([np.std([0.2, 0.3], ddof=1), np.std([0.22, 0.3], ddof=1)])
    )


def test_render_claims_says_what_was_decided() -> None:
    decided = c.Claim(
        "a", "claim a", c.ARTICLE, "m", V.SUPPORTED, evidence=_evidence(0.001, 1.0, 1.0, Direction.GREATER)
    )
    open_ = c.Claim("b", "claim b", c.PHAM, "m", V.INCONCLUSIVE, evidence=_evidence(0.5, 0.5, 1.0, Direction.GREATER))
    open_.evidence.stopped, open_.evidence.cap = "cap", 200  # type: ignore[union-attr]
    judged = c.judge_family([decided, open_])
    text = c.render_claims(judged)
    assert "source: " + c.PHAM in text and "interval: x:" in text
    assert text.splitlines()[-1] == "decided: a (supported); not decided: b (cap of 200 seeds reached)"
    md = c.render_claims(judged, markdown=True)
    assert md.count("\n| ") == 2 and md.endswith("not decided: b (cap of 200 seeds reached)")
    as_json = judged[1].to_dict()
    assert {"source", "method", "interval", "seeds", "cap", "stopped", "verdict"} <= set(as_json)
    assert as_json["stopped"] == "cap" and as_json["cap"] == 200
    ratio = c.Claim(
        "r",
        "r",
        c.PHAM,
        "m",
        V.INCONCLUSIVE,
        evidence=_evidence(0.5, 0.5, math.log(2.0), Direction.LESS),
        test=StatTest("ratio", _mean, Direction.LESS, shown=math.exp),
    ).to_dict()
    assert ratio["interval"]["estimate"] == pytest.approx(2.0)  # shown as the ratio, tested on the log scale
    assert ratio["evidence"]["estimate"] == pytest.approx(math.log(2.0))


def test_seed_runs_prefetch_trains_each_missing_run_once_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prefetch` sends only unknown (config, engine) pairs, split over the workers, and records their MSEs."""
    from concurrent.futures import Future

    sent: list[tuple[list[int], str]] = []

    def fake_cell(configs: list[dict], engine: str) -> list:
        sent.append(([cfg["seed"] for cfg in configs], engine))
        return [
            ({"diverged": cfg["seed"] == 3, "metrics": SimpleNamespace(mse_test=0.1 * cfg["seed"])}, None)
            for cfg in configs
        ]

    class Inline:
        def submit(self, fn: Any, *args: Any) -> Future:
            f: Future = Future()
            f.set_result(fn(*args))
            return f

    monkeypatch.setattr(c, "run_cell", fake_cell)
    runs = c.SeedRuns("fused", executor=Inline(), workers=2)  # type: ignore[arg-type]
    runs.know(IMPLICIT.replace(seed=0), 0.5)
    wanted = [(IMPLICIT.replace(seed=s), None) for s in (0, 1, 2, 3, 4, 1)] + [(IMPLICIT.replace(seed=1), "fused-xla")]
    runs.prefetch(wanted)
    assert sent == [([1, 3], "fused"), ([2, 4], "fused"), ([1], "fused-xla")]
    assert runs.trained == 5
    assert runs.mse_test(IMPLICIT.replace(seed=2)) == pytest.approx(0.2)  # memoised: nothing trains here
    assert math.isnan(runs.mse_test(IMPLICIT.replace(seed=3)))  # diverged
    assert runs.mse_test(IMPLICIT.replace(seed=0)) == 0.5
    runs.prefetch(wanted)
    assert len(sent) == 3  # all known now


def test_rows_equal_up_to_rounding_count_as_degenerate() -> None:
    """Rows that differ only by float rounding (e.g. a slope of errors scaled by a common factor) give a
    zero-width interval, not a BCa computed from rounding noise."""
    rows = 0.71 + np.array([0.0, 1e-16, -1e-16, 2e-16, 0.0])
    boot = bca_bootstrap(rows, lambda a: a[..., 0].mean(axis=-1))
    assert boot.degenerate and boot.p_greater(0.0) == 0.0 and boot.p_less(1.0) == 0.0


def test_bca_p_value_beyond_every_replicate_uses_the_bca_limit() -> None:
    """A null far beyond every bootstrap replicate: with a positive acceleration the clipped tail share mapped
    through BCa gave p ≈ 0.04 (a ratio of 3e-4 could never be shown below 1); the limit gives Φ(−(1/a − z0))."""
    from scipy.stats import norm

    from sinecheck.study.stats import Bootstrap

    reps = np.sort(np.random.default_rng(0).normal(-8.0, 1.0, 4000))
    boot = Bootstrap(-8.0, reps, 0.0, 0.3, 50)
    assert boot.p_less(0.0) == pytest.approx(max(norm.cdf(-1 / 0.3), 1 / 4001), rel=1e-6)
    assert boot.p_greater(-20.0) == pytest.approx(1 / 4001)  # below every replicate, a > 0: the floor
    flipped = Bootstrap(8.0, -reps[::-1], 0.0, -0.3, 50)
    assert flipped.p_greater(0.0) == pytest.approx(max(norm.cdf(-1 / 0.3), 1 / 4001), rel=1e-6)


def test_claim_one_ulp_first_look_skips_early_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _fake_ulp(monkeypatch, lambda s: 1e-6 * _noise("ulp", s))  # decided at any look
    claim = c.claim_one_ulp(runs, IMPLICIT, looks=(10, 20, 50), family=1, first_look=20)
    assert claim.evidence is not None and (claim.evidence.seeds, claim.evidence.looks) == (20, 2)


def test_parallel_rows_keeps_the_order_across_workers() -> None:
    from concurrent.futures import Future

    chunks: list[int] = []

    class Inline:
        def submit(self, fn: Any, *args: Any) -> Future:
            chunks.append(len(args[1]))
            f: Future = Future()
            f.set_result(fn(*args))
            return f

    runs = c.SeedRuns("fused", executor=Inline(), workers=2)  # type: ignore[arg-type]
    assert c.parallel_rows(runs, divmod, [(n, 3) for n in range(7)]) == [divmod(n, 3) for n in range(7)]
    assert chunks == [4, 3]
    assert c.parallel_rows(c.SeedRuns("fused"), divmod, [(7, 2)]) == [(3, 1)]  # no executor: in this process


def test_claims_cap_option_and_looks() -> None:
    import argparse

    from sinecheck.cli.study import claims_cap

    assert claims_cap("50") == 50
    with pytest.raises(argparse.ArgumentTypeError, match="'2'.*>= 3"):
        claims_cap("2")
    with pytest.raises(argparse.ArgumentTypeError, match="'x'"):
        claims_cap("x")
    assert c.looks_up_to(50) == (10, 20, 50)
    assert c.looks_up_to(200) == c.LOOKS == (10, 20, 50, 100, 200)
    assert c.looks_up_to(30) == (10, 20, 30) and c.looks_up_to(5) == (5,)
    with pytest.raises(ValueError, match="claims cap"):
        c.looks_up_to(2)


def test_explain_on_a_pool_keeps_every_run_in_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """explain with an executor: each subset's seeds as one pool task, results in seed order, the same
    attribution as run one by one (runs faked: MSE from the config's learning rate and the seed)."""
    from concurrent.futures import Future

    from sinecheck.study import explain as ex

    def record(cfg: Any) -> tuple[dict, np.ndarray]:
        mse = cfg.optimizer.learning_rate * 10 + 0.001 * cfg.seed + (0.05 if _is_explicit(cfg) else 0.0)
        return {"diverged": False, "metrics": SimpleNamespace(mse_test=mse)}, np.full(4, mse)

    tasks: list[int] = []

    class Inline:
        def submit(self, fn: Any, *args: Any) -> Future:
            tasks.append(len(args[0]))
            f: Future = Future()
            f.set_result(fn(*args))
            return f

    monkeypatch.setattr(ex, "run_one", lambda cfg, engine: record(cfg))
    monkeypatch.setattr(ex, "run_cell", lambda configs, engine: [record(ex.TrainConfig.from_dict(c)) for c in configs])
    alone = ex.explain(IMPLICIT, EXPLICIT, seeds=range(3))
    pooled = ex.explain(IMPLICIT, EXPLICIT, seeds=range(3), executor=Inline())  # type: ignore[arg-type]
    assert tasks == [3, 3, 3, 3]  # 2 factors: 4 subsets, one task each
    for key, values in alone.mse.items():
        assert np.array_equal(pooled.mse[key], values), key
    assert pooled.gap.per_seed == alone.gap.per_seed
    assert alone.gap.mean == pytest.approx(0.09 + 0.05)  # lr 0.001 -> 0.01 (x10) and the explicit initializer
