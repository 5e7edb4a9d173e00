"""Golden baselines, unit by unit (no TensorFlow, no training): grading one entry at the boundaries of every
grade, the seed-noise bands, the consistent-shift rule and its paired test, grading whole groups, the failure
heading, table, summary and JSON of a check, and which stored baselines a machine is checked against.

Entries are synthetic: four float32 final weights near 1 (so a ULP, a CLOSE and a DIVERGENT edit are easy to
make), digests made from the arrays."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sinecheck.checks import baseline as bl
from sinecheck.core.compare import Tolerance
from sinecheck.core.config import TrainConfig
from sinecheck.core.records import ModelRecord
from sinecheck.core.result import CompiledMetrics, Metrics, digest_tensors
from sinecheck.errors import BaselineError, ConfigError

HERE = bl.EnvKey("2.21.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")
OLDER = bl.EnvKey("2.20.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")
CONFIG = TrainConfig(hidden_units=(4,), n_points=40, batch_size=8, epochs=100)
FINAL = np.array([1.0, 0.5, -0.25, 2.0], np.float32)
G = bl.Grade
NO_COMPILED = CompiledMetrics()


def _run(
    seed: int = 0,
    mse: float = 0.25,
    *,
    final: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    diverged: bool = False,
    compiled: CompiledMetrics = NO_COMPILED,
    config: TrainConfig = CONFIG,
) -> bl.Entry:
    """One run: `final` weights (FINAL + seed unless given), consistent digests, held-out MSE `mse`."""
    initial = np.linspace(-1, 1, 4).astype(np.float32) + np.float32(seed)
    final = FINAL + np.float32(seed) if final is None else final
    pred = np.array([0.1, 0.2, 0.3], np.float32) if pred is None else pred
    digests = {
        "initial_weights": digest_tensors({"w": initial}),
        "final_weights": digest_tensors({"w": final}),
        "predictions": digest_tensors({"test": pred}),
    }
    arrays = {"initial/w": initial, "final/w": final, "pred/test": pred}
    metrics = Metrics(0.5, 1.0, mse, 1.0, 0.4, compiled)
    return bl.Entry(config.replace(seed=seed), digests, metrics, diverged, arrays)


def _moved(index: int, delta: float) -> np.ndarray:
    out = FINAL.copy()
    out[index] += np.float32(delta)
    return out


def _ulps(index: int, n: int) -> np.ndarray:
    out = FINAL.copy()
    for _ in range(n):
        out[index] = np.nextafter(out[index], np.float32(np.inf))
    return out


def _grade(current: bl.Entry, stored: bl.Entry | None = None, band: float | None = 0.25, **kw: object) -> bl.Drift:
    tolerance = Tolerance(**kw)  # type: ignore[arg-type]
    return bl.grade("g/100ep/seed0", current, _run() if stored is None else stored, band, tolerance)


# -- one entry -----------------------------------------------------------------------------------------------


def test_identical() -> None:
    assert _grade(_run()) == bl.Drift("g/100ep/seed0", G.IDENTICAL, 0.0, 0, 0.0, 0.25, "")


def test_ulp_close_and_divergent_weights() -> None:
    ulp = _grade(_run(final=_ulps(1, 3)))
    assert (ulp.grade, ulp.max_ulp_w, ulp.max_abs_w, ulp.delta_mse) == (G.ULP, 3, 3 * 2.0**-24, 0.0)
    assert ulp.detail == "worst tensor final/w: 1/4 differ"
    assert _grade(_run(final=_ulps(1, 16))).grade is G.ULP  # the default tolerance: 16 ULP
    assert _grade(_run(final=_ulps(1, 17))).grade is G.CLOSE
    assert _grade(_run(final=_ulps(1, 3)), max_ulp=2).grade is G.CLOSE  # the tolerance given is the one used
    close = _grade(_run(final=_moved(3, 1e-5)))
    assert (close.grade, close.max_abs_w) == (G.CLOSE, pytest.approx(1e-5, rel=0.1))
    both = _moved(0, 0.5)
    both[2] += np.float32(0.75)
    divergent = _grade(_run(final=both))
    assert (divergent.grade, divergent.max_abs_w, divergent.detail) == (
        G.DIVERGENT,
        0.75,
        "worst tensor final/w: 2/4 differ",
    )


def test_only_final_weights_count_as_weight_drift() -> None:
    """Predictions that moved while the final weights did not: graded by the arrays (DIVERGENT), but the weight
    columns say the weights did not move."""
    drift = _grade(_run(pred=np.array([0.1, 0.7, 0.3], np.float32)))
    assert (drift.grade, drift.max_abs_w, drift.max_ulp_w) == (G.DIVERGENT, 0.0, 0)
    assert drift.detail == "worst tensor pred/test: 1/3 differ"


def test_no_final_weights_stored() -> None:
    """A run whose arrays hold no final weights: the weight columns are empty, the arrays still graded."""
    stored, current = _run(), _run(pred=np.array([0.1, 0.7, 0.3], np.float32))
    for entry in (stored, current):
        del entry.arrays["final/w"]
    drift = bl.grade("g/seed0", current, stored, 0.25, Tolerance())
    assert (drift.grade, drift.max_abs_w, drift.max_ulp_w) == (G.DIVERGENT, None, None)


def test_the_largest_weight_change_over_every_final_tensor() -> None:
    stored, current = _run(), _run(final=_moved(0, 0.5))
    for entry, extra in ((stored, np.zeros(2, np.float32)), (current, np.array([0.0, 2.0], np.float32))):
        entry.arrays["final/b"] = extra
    drift = bl.grade("g/seed0", current, stored, 0.25, Tolerance())
    assert (drift.max_abs_w, drift.max_ulp_w) == (2.0, 2**30)


@pytest.mark.parametrize(
    ("new_mse", "band", "expected"),
    [
        (0.50, 0.25, G.DIVERGENT),  # moved by exactly the band: inside
        (0.5000001, 0.25, G.MATERIAL),  # just beyond it
        (0.0, 0.25, G.DIVERGENT),  # down by the band
        (-0.0000001, 0.25, G.MATERIAL),  # down beyond it
        (5.0, None, G.DIVERGENT),  # no band (no stored group): never material from the error
        (math.nan, 0.25, G.MATERIAL),  # the error became NaN
        (math.inf, 0.25, G.MATERIAL),
        (math.nan, None, G.DIVERGENT),
    ],
)
def test_divergent_weights_are_material_beyond_the_band(new_mse: float, band: float | None, expected: bl.Grade) -> None:
    drift = _grade(_run(mse=new_mse, final=_moved(0, 0.5)), band=band)
    assert drift.grade is expected
    assert drift.noise_band == band and drift.detail == "worst tensor final/w: 1/4 differ"
    if math.isfinite(new_mse):
        assert drift.delta_mse == pytest.approx(new_mse - 0.25)


def test_close_weights_stay_close_whatever_the_error_did() -> None:
    assert _grade(_run(mse=3.0, final=_moved(3, 1e-5))).grade is G.CLOSE


def test_a_run_that_diverged_on_one_side_only_is_material() -> None:
    drift = _grade(_run(diverged=True, final=_moved(0, 0.5)))
    assert drift == bl.Drift("g/100ep/seed0", G.MATERIAL, 0.5, 2**22, 0.0, 0.25, "diverged False → True")
    assert _grade(_run(), _run(diverged=True)).detail == "diverged True → False"
    both = _grade(_run(diverged=True), _run(diverged=True))
    assert both.grade is G.IDENTICAL


def test_missing_changed_and_digest_only_entries() -> None:
    assert bl.grade("x/seed0", _run(), None, 0.2, Tolerance()) == bl.Drift(
        "x/seed0", G.MISSING, None, None, None, 0.2, "not in the baseline"
    )
    changed = bl.grade("x/seed0", _run(config=CONFIG.replace(epochs=5)), _run(), 0.2, Tolerance())
    assert changed == bl.Drift("x/seed0", G.CHANGED, None, None, None, 0.2, "your config changed: epochs 100 → 5")
    seq, fun = ModelRecord("Sequential", (), ()), ModelRecord("Functional", (), ())
    old, new = _run(), _run(config=CONFIG.replace(epochs=5))
    old.model, new.model = seq, fun
    assert bl.grade("x/seed0", new, old, 0.2, Tolerance()).detail == (
        "your config changed: epochs 100 → 5; your model changed: model class Sequential → Functional"
    )
    meta = _run()
    meta.arrays = {}  # a metadata-only load: the digests decide
    assert bl.grade("x/seed0", _run(mse=9.0), meta, 0.2, Tolerance()) == bl.Drift(
        "x/seed0", G.IDENTICAL, None, None, None, 0.2, "digests only"
    )
    assert bl.grade("x/seed0", _run(final=_ulps(0, 1)), meta, 0.2, Tolerance()) == bl.Drift(
        "x/seed0", G.DIVERGENT, None, None, None, 0.2, "digests only"
    )


EDITED = (
    "differ(s) from this run although the arrays match: an edited or corrupt file? "
    "(`sinecheck baseline record --force` / `pytest --sinecheck-baseline=update`)"
)


def test_recorded_numbers_that_disagree_with_equal_arrays() -> None:
    stored = _run()
    stored.digests["final_weights"] = "0" * 64
    drift = _grade(_run(), stored)
    assert drift == bl.Drift("g/100ep/seed0", G.DIVERGENT, 0.0, 0, 0.0, 0.25, f"recorded final_weights {EDITED}")
    stored = _run(mse=0.1)  # a metric edited within the band, and a digest only this run records
    current = _run()
    current.digests["history"] = "h"
    drift = _grade(current, stored)
    assert (drift.grade, drift.detail) == (G.DIVERGENT, f"recorded history, metric mse_test {EDITED}")
    assert _grade(_run(), _run(mse=-0.1)).grade is G.MATERIAL  # edited beyond the band
    stored = _run()
    stored.metrics = replace(stored.metrics, final_loss=None)
    assert _grade(_run(), stored).detail == f"recorded metric final_loss {EDITED}"
    stored.metrics = replace(stored.metrics, final_loss=math.nan)
    assert _grade(_run(), stored).detail == f"recorded metric final_loss {EDITED}"
    nan = _run()
    nan.metrics = replace(nan.metrics, max_err_train=math.nan)
    assert _grade(nan, nan).grade is G.IDENTICAL  # NaN recorded and NaN again: the same number


def test_compiled_metrics_in_the_detail_and_the_cross_check() -> None:
    old = CompiledMetrics((("loss", 0.5),), (("loss", 0.53124), ("accuracy", 0.75), ("auc", 0.9)))
    new = CompiledMetrics((("loss", 0.5),), (("loss", 0.52984), ("accuracy", 0.765625), ("mae", 0.1)))
    drift = _grade(_run(final=_moved(0, 0.5), compiled=new), _run(compiled=old))
    assert drift.detail == ("worst tensor final/w: 1/4 differ; held-out loss 0.5312 → 0.5298, accuracy 0.75 → 0.7656")
    assert drift.delta_mse == pytest.approx(0.52984 - 0.53124)  # the compiled loss is the graded error
    same = _grade(_run(final=_moved(0, 0.5), compiled=old), _run(compiled=old))
    assert same.detail == "worst tensor final/w: 1/4 differ"
    edited = _grade(_run(compiled=new), _run(compiled=old))
    assert edited.detail == (
        "recorded metric compiled held_out/accuracy, metric compiled held_out/auc, metric compiled held_out/loss "
        f"{EDITED}"
    )
    train = CompiledMetrics((("loss", 0.6),), old.held_out)
    assert _grade(_run(compiled=train), _run(compiled=old)).detail == f"recorded metric compiled train/loss {EDITED}"
    assert _grade(_run(compiled=old), _run(compiled=old)).grade is G.IDENTICAL


def test_same_number() -> None:
    a, b = float("1.5"), 3 / 2  # equal values, distinct objects
    assert bl._same_number(None, None) and bl._same_number(a, b) and bl._same_number(float("nan"), float("nan"))
    assert not bl._same_number(None, 0.0) and not bl._same_number(0.0, None)
    assert not bl._same_number(1.0, 2.0) and not bl._same_number(math.nan, 1.0) and not bl._same_number(1.0, math.nan)


# -- noise bands ---------------------------------------------------------------------------------------------


def test_noise_bands_per_group() -> None:
    entries = {
        "a/100ep/seed0": _run(0, 0.2),
        "a/100ep/seed1": _run(1, 0.3),
        "a/100ep/seed2": _run(2, 0.4),
        "b/100ep/seed0": _run(0, 0.2),
        "b/100ep/seed1": _run(1, math.nan),  # a diverged seed: left out
        "b/100ep/seed2": _run(2, 0.4),
        "c/5ep/seed0": _run(0, 0.3),  # one seed: the floor
        "d/5ep/seed0": _run(0, 0.3),
        "d/5ep/seed1": _run(1, 0.3 + 1e-6),  # (almost) no spread: the floor
        "e/5ep/seed0": _run(0, math.inf),  # no finite seed: no band
    }
    bands = bl.noise_bands(bl.Baseline(OLDER, entries, {}, ""))
    assert bands == {
        "a/100ep": pytest.approx(0.2),  # 2 × the sample std 0.1
        "b/100ep": pytest.approx(0.2 * math.sqrt(2)),
        "c/5ep": 1e-4,
        "d/5ep": 1e-4,
    }


# -- the paired consistent-shift rule ------------------------------------------------------------------------


def test_sign_flip_p_values() -> None:
    assert bl.sign_flip_p([]) == 1.0
    assert bl.sign_flip_p([0.3]) == 1.0
    assert bl.sign_flip_p([1.0, -1.0]) == 1.0
    assert bl.sign_flip_p([1.0, 2.0, 3.0]) == 0.25
    assert bl.sign_flip_p([-1.0, -2.0, -3.0]) == 0.25
    assert bl.sign_flip_p([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]) == 2 / 64  # ties in floating point are counted
    # |3 ± five 1s| >= 6 when at most one of the five is negative: 6 patterns, and their mirror images
    assert bl.sign_flip_p([3.0, 1.0, 1.0, 1.0, 1.0, -1.0]) == 12 / 64
    assert bl.sign_flip_p([1.0] * 16) == 2 / 2**16  # exact up to 16 seeds


def test_sign_flip_p_of_float32_deltas_counts_the_observed_pattern() -> None:
    """Float32 deltas whose float32 mean rounds above their exact mean: the all-positive pattern is the observed one
    and must count (computed in float64 throughout)."""
    deltas = np.array([0.5167034268379211, 0.9509590864181519, 0.15271802246570587, 0.9491629600524902,
                       0.31871312856674194, 0.4290931820869446], np.float32)  # fmt: skip
    assert float(deltas.mean()) > float(deltas.astype(np.float64).mean())
    assert bl.sign_flip_p(deltas) == 2 / 64


def test_sign_flip_p_beyond_sixteen_seeds_is_sampled_with_the_observed_pattern_counted() -> None:
    p = bl.sign_flip_p([1.0] * 20)
    assert 0 < p < 1e-3 and (p * (2**16 + 1)) == pytest.approx(round(p * (2**16 + 1)))
    assert bl.sign_flip_p([1.0, -1.0] * 10) == 1.0
    # 12 up, 8 down: |sum of 20 random signs| >= 4, i.e. 12 or more of one sign — exactly 2 × P(Bin(20, ½) >= 12)
    deltas = [1.0] * 12 + [-1.0] * 8
    exact = 2 * sum(math.comb(20, k) for k in range(12, 21)) / 2**20
    sampled = bl.sign_flip_p(deltas)
    assert abs(sampled - exact) < 0.01 and sampled != exact
    assert bl.sign_flip_p(deltas) == sampled  # a fixed seed: the same p every time


def test_consistent_shift_rule_b_messages() -> None:
    assert bl.consistent_shift([0.3, 0.3], [1.0, 1.0], 0.2) == (
        "consistent shift: all 2 seeds moved the same way (+0.3, +0.3), each by more than 0.1 "
        "(0.5 × the noise band 0.2)"
    )
    assert bl.consistent_shift([-0.1234, -0.2, -0.3], [1.0, 1.0, 1.0], 0.2) == (
        "consistent shift: all 3 seeds moved the same way (-0.123, -0.2, -0.3), each by more than 0.1 "
        "(0.5 × the noise band 0.2)"
    )


@pytest.mark.parametrize(
    ("deltas", "old"),
    [
        ([0.9], [1.0]),  # one seed: rule (a) alone
        ([0.3, -0.3, 0.3], [1.0] * 3),  # mixed signs
        ([0.3, 0.1, 0.3], [1.0] * 3),  # one seed moved by exactly the margin
        ([0.0, 0.3, 0.3], [1.0] * 3),  # one seed did not move
        ([-0.0, 0.3, 0.3], [1.0] * 3),
        ([0.3, math.nan, 0.3], [1.0] * 3),  # not finite: rule (a) decides
        ([0.3, 0.3, 0.3], [1.0, math.inf, 1.0]),
        ([0.05, 0.03, 0.06, 0.04, 0.05], [0.3] * 5),  # five seeds: no test
        ([], []),
        ([1.0, -0.5, -0.5], [1.0] * 3),  # a delta of exactly 1 is a sign like any other
    ],
)
def test_no_consistent_shift(deltas: list[float], old: list[float]) -> None:
    assert bl.consistent_shift(deltas, old, 0.2) is None


def test_a_shift_of_exactly_one() -> None:
    assert bl.consistent_shift([1.0, 1.0], [1.0, 1.0], 0.2) is not None


def test_consistent_shift_rule_c_the_paired_test() -> None:
    deltas, old = [0.05, 0.03, 0.06, 0.04, 0.05, 0.02], [0.2, 0.3, 0.4] * 2
    assert bl.consistent_shift(deltas, old, 0.2) == (
        "consistent shift: mean +0.0417 over 6 seeds (paired sign-flip test p = 0.0312 ≤ 0.05; beyond 10% of the "
        "mean error, 0.03)"
    )
    assert bl.consistent_shift([-x for x in deltas], old, 0.2) == (
        "consistent shift: mean -0.0417 over 6 seeds (paired sign-flip test p = 0.0312 ≤ 0.05; beyond 10% of the "
        "mean error, 0.03)"
    )
    assert bl.consistent_shift([*deltas[:5], -0.01], old, 0.2) is None  # p = 4/64 > 0.05


def test_rule_c_needs_a_mean_shift_beyond_a_tenth_of_the_error() -> None:
    """Mean shift 0.25 against 10 % of a mean error of 2.5 (or -2.5: a compiled loss may be negative): not
    beyond; a little more is."""
    band = 10.0  # rule (b) out of the way
    assert bl.consistent_shift([0.25] * 6, [2.5] * 6, band) is None
    assert bl.consistent_shift([0.25] * 6, [-2.5] * 6, band) is None
    assert bl.consistent_shift([0.25] * 6, [2.4] * 6, band) is not None
    assert bl.consistent_shift([-0.25] * 6, [2.4] * 6, band) is not None


# -- grading groups ------------------------------------------------------------------------------------------

OLD = (0.2, 0.3, 0.4)  # band 0.2, margin 0.1


def _group(
    current_mse: list[float], *, old: tuple[float, ...] = OLD, names: list[str] | None = None
) -> tuple[bl.Baseline, dict[str, bl.Entry]]:
    stored = {f"g/100ep/seed{s}": _run(s, m) for s, m in enumerate(old)}
    current = {f"g/100ep/seed{s}": _run(s, m, final=_moved(0, 0.5) + np.float32(s)) for s, m in enumerate(current_mse)}
    if names is not None:
        current = {n: current[n] for n in names}
    return bl.Baseline(OLDER, stored, {}, ""), current


def test_a_shifted_group_is_material_with_its_reason_first() -> None:
    baseline, current = _group([0.35, 0.45, 0.55])
    result = bl.check_against(current, baseline, bl.Relation.OLDER_VERSION)
    assert [d.grade for d in result.drifts] == [G.MATERIAL] * 3
    assert result.drifts[0].detail == (
        "consistent shift: all 3 seeds moved the same way (+0.15, +0.15, +0.15), each by more than 0.1 "
        "(0.5 × the noise band 0.2); worst tensor final/w: 1/4 differ"
    )
    assert result.against is baseline and result.relation is bl.Relation.OLDER_VERSION


def test_a_shift_promotes_ulp_and_close_entries_and_leaves_a_material_ones_reason() -> None:
    baseline, current = _group([0.35, 0.45, 0.7])
    current["g/100ep/seed0"] = _run(0, 0.35, final=_ulps(0, 1))
    current["g/100ep/seed1"] = _run(1, 0.45, final=_moved(3, 1e-5) + np.float32(1))
    drifts = bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts
    assert [d.grade for d in drifts] == [G.MATERIAL] * 3
    assert drifts[0].detail.startswith("consistent shift: ") and drifts[1].detail.startswith("consistent shift: ")
    assert drifts[2].detail == "worst tensor final/w: 1/4 differ"  # material by rule (a): its own reason


def test_only_a_complete_unchanged_group_is_paired() -> None:
    baseline, current = _group([0.35, 0.45], names=["g/100ep/seed0", "g/100ep/seed1"])  # seed 2 not rerun
    assert [d.grade for d in bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts] == [
        G.DIVERGENT,
        G.DIVERGENT,
    ]
    baseline, current = _group([0.35, 0.45, 0.55])
    current["g/100ep/seed2"] = _run(2, 0.55, config=CONFIG.replace(batch_size=16))
    grades = [d.grade for d in bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts]
    assert grades == [G.DIVERGENT, G.DIVERGENT, G.CHANGED]
    baseline, current = _group([0.35, 0.45, 0.55])
    current["h/100ep/seed0"] = _run(0, 0.5)  # another group, not in the baseline
    grades = [d.grade for d in bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts]
    assert grades == [G.MATERIAL, G.MATERIAL, G.MATERIAL, G.MISSING]


def test_a_group_left_unpaired_does_not_end_the_pairing_of_the_next() -> None:
    for first in (
        {"a/100ep/seed0": _run(0, 0.2)},  # group "a": seed 1 not rerun
        {"a/100ep/seed0": _run(0, 0.2), "a/100ep/seed1": _run(1, 0.3)},  # group "a": no shift
    ):
        baseline, current = _group([0.35, 0.45, 0.55])
        baseline.entries.update({"a/100ep/seed0": _run(0, 0.2), "a/100ep/seed1": _run(1, 0.3)})
        result = bl.check_against({**first, **current}, baseline, bl.Relation.OLDER_VERSION)
        assert [d.grade for d in result.drifts[-3:]] == [G.MATERIAL] * 3


def test_a_group_with_a_metadata_only_seed_is_not_paired() -> None:
    """One stored seed without arrays (graded by digests, no error delta): the other two seeds' shift is not
    judged as if they were the whole group."""
    baseline, current = _group([0.35, 0.45, 0.55])
    baseline.entries["g/100ep/seed0"].arrays = {}
    drifts = bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts
    assert [d.grade for d in drifts] == [G.DIVERGENT] * 3


def test_a_metadata_only_baseline_is_not_paired() -> None:
    baseline, current = _group([0.35, 0.45, 0.55])
    for entry in baseline.entries.values():
        entry.arrays = {}
    drifts = bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).drifts
    assert [(d.grade, d.detail) for d in drifts] == [(G.DIVERGENT, "digests only")] * 3


def test_the_tolerance_reaches_every_entry() -> None:
    baseline, current = _group([0.2, 0.3, 0.4])
    current = {
        n: _run(s, m, final=_ulps(0, 3) + np.float32(s)) for s, (n, m) in enumerate(zip(current, OLD, strict=True))
    }
    assert bl.check_against(current, baseline, bl.Relation.OLDER_VERSION).worst is G.ULP
    strict = bl.check_against(current, baseline, bl.Relation.OLDER_VERSION, tolerance=Tolerance(max_ulp=2))
    assert strict.worst is G.CLOSE


# -- a check's result: worst, failed, heading, changes, table, summary, JSON ---------------------------------


def _drift(name: str, grade: bl.Grade, detail: str = "") -> bl.Drift:
    return bl.Drift(name, grade, 0.0, 0, 0.0, 0.2, detail)


ALL = [_drift(f"e{g.rank}", g) for g in G]


def test_worst_and_failed_per_strictness() -> None:
    older = bl.CheckResult(bl.Baseline(OLDER, {}, {}, ""), bl.Relation.OLDER_VERSION, ALL)
    assert older.worst is G.MISSING
    assert bl.CheckResult(older.against, bl.Relation.OLDER_VERSION, []).worst is G.IDENTICAL
    assert bl.CheckResult(older.against, bl.Relation.OLDER_VERSION, ALL[1:3]).worst is G.CLOSE
    names = {level: [d.name for d in older.failed(level)] for level in bl.STRICT_LEVELS}
    assert names == {
        "bitwise": ["e1", "e2", "e3", "e4", "e5", "e6"],
        "ulp": ["e2", "e3", "e4", "e5", "e6"],
        "material": ["e4", "e5", "e6"],
    }
    same = bl.CheckResult(older.against, bl.Relation.SAME_ENVIRONMENT, ALL)
    assert [d.name for d in same.failed("material")] == ["e1", "e2", "e3", "e4", "e5", "e6"]
    with pytest.raises(ConfigError, match="strict: invalid value 'loose'"):
        older.failed("loose")


def test_headings() -> None:
    result = bl.CheckResult(bl.Baseline(OLDER, {}, {}, ""), bl.Relation.OLDER_VERSION, ALL)
    assert result.heading(ALL[1:], "ulp") == (
        "FAILED: 1 missing, 1 material, 1 divergent, 1 close, 1 ulp beyond --strict=ulp; "
        "1 changed since the baseline was recorded"
    )
    changed = [_drift("a", G.CHANGED), _drift("b", G.CHANGED)]
    assert result.heading(changed, "material") == "FAILED: 2 changed since the baseline was recorded"
    assert result.heading(ALL[4:5], bl.Strictness.MATERIAL, option="--sinecheck-strict") == (
        "FAILED: 1 material beyond --sinecheck-strict=material"
    )
    same = bl.CheckResult(result.against, bl.Relation.SAME_ENVIRONMENT, ALL)
    assert same.heading(ALL[1:2], "nonsense") == "FAILED: 1 ulp where the same environment must be bitwise identical"


def test_changes_are_said_once_with_their_entries() -> None:
    config = "your config changed: epochs 5 → 6"
    model = "your model changed: optimizer Adam → SGD"
    drifts = [
        _drift("a/seed0", G.CHANGED, config),
        _drift("a/seed1", G.CHANGED, config),
        _drift("x", G.DIVERGENT, config),  # not a change
        _drift("b/seed0", G.CHANGED, model),
        _drift("a/seed2", G.CHANGED, config),
        _drift("a/seed3", G.CHANGED, config),
    ]
    result = bl.CheckResult(bl.Baseline(OLDER, {}, {}, ""), bl.Relation.OLDER_VERSION, drifts)
    assert result.changes() == [
        f"{config} (4 entries: a/seed0, a/seed1, a/seed2, …)",
        f"{model} (1 entry: b/seed0)",
    ]
    assert bl._entries(["a", "b", "c"]) == "3 entries: a, b, c"
    assert bl._entries(["a", "b"]) == "2 entries: a, b"


def _result(relation: bl.Relation = bl.Relation.OLDER_VERSION) -> bl.CheckResult:
    baseline = bl.Baseline(OLDER, {"g/seed0": _run(0), "g/seed1": _run(1)}, {}, "", Path("b/old.json"))
    drifts = [
        bl.Drift("g/seed0", G.MATERIAL, 0.1, 900, 0.3, 0.2, "worst tensor final/w: 4/4 differ"),
        bl.Drift("g/seed1", G.IDENTICAL, 0.0, 0, 0.0, 0.2, "shown nowhere"),
        bl.Drift("g/seed2", G.CHANGED, None, None, None, 0.2, "your config changed: epochs 5 → 6"),
        bl.Drift("long/name/seed0", G.ULP, 1.5e-8, 2, -1e-9, None, "worst tensor final/w: 1/4 differ"),
        bl.Drift("z/seed0", G.CLOSE, math.nan, 20, math.nan, 0.2, ""),
    ]
    return bl.CheckResult(baseline, relation, drifts)


def _row(*cells: str) -> str:
    widths = (15, 9, 8, 11, 13, 10)
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def test_the_drift_table() -> None:
    assert _result().table().splitlines() == [
        _row("config", "verdict", "max |Δw|", "max ULP (w)", "ΔMSE held-out", "noise band"),
        _row("-" * 15, "-" * 9, "-" * 8, "-" * 11, "-" * 13, "-" * 10),
        _row("g/seed0", "material", "1.00e-01", "900", "+3.00e-01", "2.00e-01"),
        _row("g/seed1", "identical", "0.00e+00", "0", "+0.00e+00", "2.00e-01"),
        _row("g/seed2", "changed", "—", "—", "—", "2.00e-01"),
        _row("long/name/seed0", "ulp", "1.50e-08", "2", "-1.00e-09", "—"),
        _row("z/seed0", "close", "—", "20", "—", "2.00e-01"),
        "  g/seed0: worst tensor final/w: 4/4 differ",
        "  long/name/seed0: worst tensor final/w: 1/4 differ",
    ]


def test_the_table_names_the_graded_error() -> None:
    compiled = CompiledMetrics((), (("loss", 0.5),))
    baseline = bl.Baseline(OLDER, {"u/seed0": _run(0, compiled=compiled)}, {}, "")
    result = bl.CheckResult(baseline, bl.Relation.OLDER_VERSION, [_drift("u/seed0", G.ULP), _drift("new", G.MISSING)])
    assert "Δloss held-out" in result.table().splitlines()[0]
    baseline.entries["p/seed0"] = _run(0)  # a compiled loss and an MSE: neither name alone
    result.drifts.append(_drift("p/seed0", G.ULP))
    assert "Δheld-out error" in result.table().splitlines()[0]


def test_the_summary() -> None:
    described = "TensorFlow 2.20.0, keras 3.15.1, tensorflow backend, oneDNN on, avx512, Linux-x86_64"
    assert _result().summary().splitlines() == [
        "your config changed since the baseline was recorded: epochs 5 → 6 (1 entry: g/seed2)",
        "(not graded as environment drift: re-record the baseline if the change is intended)",
        f"vs {described} (older version): 1 identical, 1 ulp, 1 close, 1 material, 1 changed",
    ]
    other = bl.CheckResult(_result().against, bl.Relation.OTHER_MACHINE_CLASS, [_drift("a", G.ULP)])
    assert other.summary() == (
        f"vs {described} (other machine class): 1 ulp — a baseline from another CPU/ISA class or oneDNN setting "
        "may legitimately differ (oneDNN picks kernels by instruction set); not a regression"
    )
    model = "your model changed: optimizer Adam → SGD"
    data = "your data changed: x float32[4] → float32[5]"
    changes = bl.CheckResult(
        other.against, bl.Relation.SAME_ENVIRONMENT, [_drift("a", G.CHANGED, model), _drift("b", G.CHANGED, data)]
    )
    assert changes.summary().splitlines()[:2] == [
        "your model changed since the baseline was recorded: optimizer Adam → SGD (1 entry: a)",
        "your data changed since the baseline was recorded: x float32[4] → float32[5] (1 entry: b)",
    ]


def test_the_summary_renames_each_change_once() -> None:
    """A change line whose text repeats its own phrase (a value quoting it) keeps the repetition."""
    details = [
        "your config changed: note 'your config changed: x'",
        "your model changed: name 'your model changed: y'",
        "your data changed: file 'your data changed: z'",
    ]
    drifts = [_drift(f"c{i}", G.CHANGED, d) for i, d in enumerate(details)]
    result = bl.CheckResult(bl.Baseline(OLDER, {}, {}, ""), bl.Relation.OLDER_VERSION, drifts)
    assert result.summary().splitlines()[:3] == [
        "your config changed since the baseline was recorded: note 'your config changed: x' (1 entry: c0)",
        "your model changed since the baseline was recorded: name 'your model changed: y' (1 entry: c1)",
        "your data changed since the baseline was recorded: file 'your data changed: z' (1 entry: c2)",
    ]


def test_drift_and_result_json() -> None:
    drift = bl.Drift("g/seed0", G.CLOSE, math.nan, 20, math.inf, None, "d")
    assert drift.to_dict() == {
        "name": "g/seed0",
        "grade": "close",
        "max_abs_w": "nan",
        "max_ulp_w": 20,
        "delta_mse": "inf",
        "noise_band": None,
        "detail": "d",
    }
    result = _result()
    data = result.to_dict()
    assert data["against"] == OLDER.to_dict() and data["file"] == "b/old.json"
    assert (data["relation"], data["worst"]) == ("older version", "changed")
    assert data["drifts"][0] == {
        "name": "g/seed0",
        "grade": "material",
        "max_abs_w": 0.1,
        "max_ulp_w": 900,
        "delta_mse": 0.3,
        "noise_band": 0.2,
        "detail": "worst tensor final/w: 4/4 differ",
    }
    assert len(data["drifts"]) == 5 and list(data) == ["against", "file", "relation", "worst", "drifts"]


def test_numbers_in_the_table() -> None:
    assert (bl._num(None), bl._num(math.nan), bl._num(1.234e-5), bl._num(-0.5)) == ("—", "—", "1.23e-05", "-5.00e-01")
    assert (bl._num(0.5, signed=True), bl._num(math.inf), bl._num(3)) == ("+5.00e-01", "inf", "3.00e+00")


# -- which baselines a machine is checked against ------------------------------------------------------------


def _key(**changes: object) -> bl.EnvKey:
    return bl.EnvKey(**{**HERE.to_dict(), **changes})


def _store(directory: Path, key: bl.EnvKey, mse: tuple[float, ...] = OLD) -> Path:
    entries = {f"g/100ep/seed{s}": _run(s, m) for s, m in enumerate(mse)}
    return bl.write_baseline(bl.Baseline(key, entries, {}, ""), directory)


def test_select_references(tmp_path: Path) -> None:
    here = _store(tmp_path, HERE)
    _store(tmp_path, _key(tensorflow="2.20.0"))
    _store(tmp_path, _key(tensorflow="2.19.0"))
    newest_older = _store(tmp_path, _key(keras="keras-3.14.0"))  # same TF, older Keras: the most recent older
    _store(tmp_path, _key(tensorflow="2.22.0"))  # newer: not a reference
    avx2 = _store(tmp_path, _key(isa="avx2"))
    no_onednn = _store(tmp_path, _key(onednn=False))
    _store(tmp_path, _key(isa="avx2", tensorflow="2.20.0"))  # another class and another version: not compared
    R = bl.Reference
    assert bl.select_references(HERE, tmp_path) == [
        R(here, bl.Relation.SAME_ENVIRONMENT),
        R(newest_older, bl.Relation.OLDER_VERSION),
        R(no_onednn, bl.Relation.OTHER_MACHINE_CLASS),
        R(avx2, bl.Relation.OTHER_MACHINE_CLASS),
    ]
    here.unlink()
    newest_older.unlink()
    assert [r.relation for r in bl.select_references(HERE, tmp_path)] == [
        bl.Relation.OLDER_VERSION,
        bl.Relation.OTHER_MACHINE_CLASS,
        bl.Relation.OTHER_MACHINE_CLASS,
    ]
    assert bl.select_references(HERE, tmp_path)[0].path.name == f"{_key(tensorflow='2.20.0').slug}.json"
    assert bl.select_references(_key(tensorflow="2.15.0"), tmp_path) == []
    rc = _store(tmp_path / "rc", _key(tensorflow="2.21.0rc1"))  # the same version numbers: not older
    assert bl.select_references(HERE, rc.parent) == []
    assert bl.select_references(HERE, tmp_path / "empty") == []


def test_only_another_machine_class() -> None:
    other, older = bl.Relation.OTHER_MACHINE_CLASS, bl.Relation.OLDER_VERSION
    assert bl.only_other_machine_class([]) is False
    assert bl.only_other_machine_class([(Path("a"), other), (Path("b"), other)]) is True  # type: ignore[list-item]
    assert bl.only_other_machine_class([bl.Reference(Path("a"), other), bl.Reference(Path("b"), older)]) is False


def test_load_references_and_check(tmp_path: Path) -> None:
    _store(tmp_path, _key(tensorflow="2.20.0"))
    _store(tmp_path, HERE)
    (baseline, relation), (older, older_relation) = bl.load_references(HERE, tmp_path)
    assert (baseline.key, relation, older.key, older_relation) == (
        HERE,
        bl.Relation.SAME_ENVIRONMENT,
        _key(tensorflow="2.20.0"),
        bl.Relation.OLDER_VERSION,
    )
    assert sorted(baseline.entries["g/100ep/seed0"].arrays) == ["final/w", "initial/w", "pred/test"]  # with arrays
    current = {f"g/100ep/seed{s}": _run(s, m, final=_ulps(0, 3) + np.float32(s)) for s, m in enumerate(OLD)}
    results = bl.check(current, HERE, tmp_path)
    assert [(r.relation, r.worst) for r in results] == [
        (bl.Relation.SAME_ENVIRONMENT, G.ULP),
        (bl.Relation.OLDER_VERSION, G.ULP),
    ]
    assert [r.worst for r in bl.check(current, HERE, tmp_path, tolerance=Tolerance(max_ulp=0))] == [G.CLOSE] * 2
    path = tmp_path / f"{HERE.slug}.npz"
    path.write_bytes(b"broken")
    with pytest.raises(BaselineError, match="missing or unreadable arrays"):
        bl.load_references(HERE, tmp_path)


def test_diff_two_stored_baselines() -> None:
    old = bl.Baseline(OLDER, {f"g/100ep/seed{s}": _run(s, m) for s, m in enumerate(OLD[:2])}, {}, "")
    new = bl.Baseline(HERE, {f"g/100ep/seed{s}": _run(s, m) for s, m in enumerate(OLD)}, {}, "")
    result = bl.diff(old, new)
    assert result.relation is bl.Relation.OLDER_VERSION and result.against is old
    assert [d.grade for d in result.drifts] == [G.IDENTICAL, G.IDENTICAL, G.MISSING]
    moved = bl.Baseline(
        _key(isa="avx2"), {n: _run(i, final=_ulps(0, 3) + np.float32(i)) for i, n in enumerate(old.entries)}, {}, ""
    )
    other = bl.diff(old, moved, tolerance=Tolerance(max_ulp=1))
    assert other.relation is bl.Relation.OTHER_MACHINE_CLASS and other.worst is G.CLOSE
    rerecorded = replace(moved, key=OLDER)  # the same environment recorded again, 3 ULP apart: a regression
    same = bl.diff(old, rerecorded)
    assert same.relation is bl.Relation.SAME_ENVIRONMENT and same.worst is G.ULP
    assert [d.name for d in same.failed("material")] == ["g/100ep/seed0", "g/100ep/seed1"]
    assert same.heading(same.failed("material"), "material") == (
        "FAILED: 2 ulp where the same environment must be bitwise identical"
    )


def test_failures_leave_out_another_machine_class() -> None:
    baseline = bl.Baseline(OLDER, {}, {}, "")
    bad = [_drift("a", G.CLOSE), _drift("b", G.ULP)]
    older = bl.CheckResult(baseline, bl.Relation.OLDER_VERSION, bad)
    other = bl.CheckResult(baseline, bl.Relation.OTHER_MACHINE_CLASS, bad)
    same = bl.CheckResult(baseline, bl.Relation.SAME_ENVIRONMENT, bad[1:])
    assert bl.failures([older, other, same], "ulp") == [(older, bad[:1]), (same, bad[1:])]
    assert bl.failures([older, other], bl.Strictness.BITWISE) == [bl.Failure(older, bad)]
    assert bl.failures([older, other], "material") == []
    with pytest.raises(ConfigError, match="strict: invalid value 'loose'; allowed: bitwise, ulp, material"):
        bl.failures([], "loose")
