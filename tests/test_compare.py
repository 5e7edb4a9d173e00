"""Tests for sinecheck.core.compare: crafted edge cases plus hypothesis properties (pure NumPy, fast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sinecheck.core.compare import (
    ULP_INF,
    Comparison,
    TensorDiff,
    Tolerance,
    Verdict,
    assert_identical,
    assert_reproducible,
    compare,
    digest,
    ulp_distance,
)

F16, F32, F64 = np.float16, np.float32, np.float64
FLOAT_DTYPES = [F16, F32, F64]
UINT64_MAX = int(np.iinfo(np.uint64).max)


def steps(x: np.ndarray, k: int, toward: float = np.inf) -> np.ndarray:
    """Move every element k representable values toward `toward` (k calls of nextafter)."""
    x = np.asarray(x)
    for _ in range(k):
        x = np.nextafter(x, x.dtype.type(toward))
    return x


def one(a, b, **kw) -> TensorDiff:
    """Compare two arrays and return the single TensorDiff."""
    result = compare(a, b, **kw)
    assert len(result.tensors) == 1
    return result.tensors[0]


# ------------------------------------------------------------------------------------------
# Verdict
# ------------------------------------------------------------------------------------------


def test_verdict_is_ordered_and_prints_lowercase():
    assert Verdict.IDENTICAL < Verdict.ULP < Verdict.CLOSE < Verdict.DIVERGENT
    assert [int(v) for v in Verdict] == [0, 1, 2, 3]
    assert str(Verdict.ULP) == "ulp"
    assert f"{Verdict.DIVERGENT}" == "divergent"


# ------------------------------------------------------------------------------------------
# ulp_distance
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_ulp_signed_zero_is_zero_and_neighbour_is_one(dtype):
    x = np.array([0.0, 1.0, -1.0, 1e-3, np.finfo(dtype).tiny], dtype=dtype)
    up = np.nextafter(x, dtype(np.inf))
    d = ulp_distance(x, up)
    assert d.dtype == np.uint64
    assert d.tolist() == [1, 1, 1, 1, 1]
    assert ulp_distance(np.array([0.0], dtype), np.array([-0.0], dtype)).tolist() == [0]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("k", [2, 5, 17])
def test_ulp_k_steps_is_k_ulp(dtype, k):
    x = np.array([1.0, -2.5, 100.0], dtype=dtype)
    assert ulp_distance(x, steps(x, k)).tolist() == [k] * 3
    assert ulp_distance(steps(x, k), x).tolist() == [k] * 3


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_ulp_across_zero_counts_both_sides(dtype):
    s = np.array(np.finfo(dtype).smallest_subnormal, dtype=dtype)
    # -s, -0 (== +0), +s: two steps; -3s .. +4s: seven steps
    assert int(ulp_distance(-s, s)) == 2
    start = steps(np.array(0.0, dtype=dtype), 3, toward=-np.inf)
    assert start == -3 * s
    end = steps(start, 7)
    assert end == 4 * s
    assert int(ulp_distance(start, end)) == 7


@pytest.mark.parametrize(("dtype", "max_bits"), [(F16, 0x7BFF), (F32, 0x7F7FFFFF), (F64, 0x7FEFFFFFFFFFFFFF)])
def test_ulp_whole_range_does_not_overflow(dtype, max_bits):
    big = np.finfo(dtype).max
    d = ulp_distance(np.array([-big], dtype=dtype), np.array([big], dtype=dtype))
    assert d.dtype == np.uint64
    assert int(d[0]) == 2 * max_bits
    # -inf .. +inf is two more
    inf = np.array([np.inf], dtype=dtype)
    assert int(ulp_distance(-inf, inf)[0]) == 2 * max_bits + 2


def test_ulp_whole_range_through_compare():
    big = np.finfo(F64).max
    diff = one(np.array([-big, 1.0]), np.array([big, 1.0]))
    assert diff.max_ulp == 2 * 0x7FEFFFFFFFFFFFFF
    assert diff.verdict is Verdict.DIVERGENT
    assert diff.max_abs == math.inf and diff.max_abs_index == (0,)


def test_ulp_nan_positions():
    a = np.array([np.nan, np.nan, 1.0, 2.0], dtype=F32)
    b = np.array([np.nan, 1.0, np.nan, 2.0], dtype=F32)
    assert ulp_distance(a, b).tolist() == [0, UINT64_MAX, UINT64_MAX, 0]
    assert ULP_INF == UINT64_MAX


def test_ulp_zero_dim_returns_array():
    d = ulp_distance(np.array(1.0, F32), np.array(-1.0, F32))
    assert isinstance(d, np.ndarray) and d.shape == () and d.dtype == np.uint64
    assert int(d) == 2 * 0x3F800000


@pytest.mark.parametrize(
    ("a", "b", "names"),
    [
        (np.zeros(2, F32), np.zeros(2, F64), ("float32", "float64")),
        (np.zeros(2, np.int32), np.zeros(2, np.int32), ("int32",)),
        (np.zeros(2, F16), np.zeros(2, np.int16), ("float16", "int16")),
    ],
)
def test_ulp_rejects_mixed_or_non_float_dtypes(a, b, names):
    with pytest.raises(TypeError) as exc:
        ulp_distance(a, b)
    for name in names:
        assert name in str(exc.value)


# ------------------------------------------------------------------------------------------
# per-tensor verdicts
# ------------------------------------------------------------------------------------------


def test_identical_arrays_including_nan_and_inf():
    a = np.array([[0.0, -0.0, np.nan], [np.inf, -np.inf, 3.5]], dtype=F32)
    result = compare({"w": a}, {"w": a.copy()})
    assert result.verdict is Verdict.IDENTICAL and result.identical
    d = result.tensors[0]
    assert (d.mismatched, d.max_abs, d.max_ulp, d.max_abs_index) == (0, 0.0, 0, None)
    assert d.digest_a == d.digest_b == digest(a)
    assert d.size == 6 and d.shape_a == d.shape_b == (2, 3) and d.dtype_a == "float32"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_signed_zero_is_ulp_not_identical(dtype):
    a = np.array([1.0, 0.0], dtype=dtype)
    b = np.array([1.0, -0.0], dtype=dtype)
    d = one(a, b, max_ulp=0)
    assert d.verdict is Verdict.ULP
    assert d.max_ulp == 0 and d.mismatched == 1 and d.max_abs == 0.0
    assert d.max_abs_index == (1,)
    assert d.digest_a != d.digest_b
    assert not compare(a, b).identical


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nextafter_neighbour_is_one_ulp(dtype):
    a = np.array([0.25, 3.0], dtype=dtype)
    b = a.copy()
    b[1] = np.nextafter(b[1], dtype(-np.inf))
    d = one(a, b, max_ulp=1)
    assert (d.verdict, d.max_ulp, d.mismatched, d.max_abs_index) == (Verdict.ULP, 1, 1, (1,))


@pytest.mark.parametrize(("k", "expected"), [(16, Verdict.ULP), (17, Verdict.CLOSE)])
def test_max_ulp_boundary_default_tolerance(k, expected):
    a = np.array([1.0, 2.0], dtype=F32)
    b = steps(a, k)
    d = one(a, b)
    assert d.max_ulp == k
    assert d.verdict is expected


@pytest.mark.parametrize("limit", [0, 3, 100])
def test_max_ulp_boundary_custom(limit):
    a = np.full(4, 7.0, dtype=F64)
    assert one(a, steps(a, limit), max_ulp=limit).verdict <= Verdict.ULP
    assert one(a, steps(a, limit + 1), max_ulp=limit, rtol=0, atol=0).verdict is Verdict.DIVERGENT


def test_same_nan_same_bits_identical_other_payload_ulp():
    a = np.array([1.0, np.nan], dtype=F32)
    assert one(a, a.copy()).verdict is Verdict.IDENTICAL
    b = a.copy()
    b.view(np.uint32)[1] = 0x7FC00001  # another quiet NaN payload
    assert np.isnan(b[1])
    d = one(a, b, max_ulp=0)
    assert (d.verdict, d.mismatched, d.max_ulp, d.max_abs) == (Verdict.ULP, 1, 0, 0.0)


def test_nan_vs_number_is_divergent():
    a = np.array([1.0, 2.0, np.nan], dtype=F32)
    b = np.array([1.0, 2.0, 3.0], dtype=F32)
    d = one(a, b, max_ulp=10**9, rtol=1e9, atol=1e9)
    assert d.verdict is Verdict.DIVERGENT
    assert "NaN in a only at (2,)" in d.note
    assert d.max_ulp == ULP_INF and d.max_abs == math.inf and d.max_abs_index == (2,)
    reverse = one(b, a)
    assert "NaN in b only at (2,)" in reverse.note
    assert reverse.max_abs == math.inf and reverse.max_rel == math.inf and reverse.max_rel_index == (2,)


def test_nan_at_different_positions_is_divergent():
    a = np.array([np.nan, 1.0, 1.0], dtype=F64)
    b = np.array([1.0, 1.0, np.nan], dtype=F64)
    d = one(a, b, max_ulp=10**6, rtol=1.0, atol=1.0)
    assert d.verdict is Verdict.DIVERGENT
    assert "NaN in a only at (0,)" in d.note and "NaN in b only at (2,)" in d.note
    assert d.mismatched == 2


def test_inf_vs_inf_equal_opposite_or_finite_divergent():
    a = np.array([np.inf, -np.inf, 1.0], dtype=F32)
    assert one(a, a.copy()).verdict is Verdict.IDENTICAL
    b = np.array([-np.inf, -np.inf, 1.0], dtype=F32)
    d = one(a, b, max_ulp=UINT64_MAX, rtol=1e30, atol=1e30)
    assert d.verdict is Verdict.DIVERGENT and "+inf vs -inf at (0,)" in d.note
    # inf vs the largest finite float is only 1 ULP apart, yet divergent
    c = np.array([np.finfo(F32).max, -np.inf, 1.0], dtype=F32)
    d = one(a, c, max_ulp=10)
    assert d.max_ulp == 1
    assert d.verdict is Verdict.DIVERGENT and "inf vs finite at (0,)" in d.note
    assert d.max_abs == math.inf and d.max_rel == math.inf
    assert one(a, np.array([np.nan, -np.inf, 1.0], F32)).note == "NaN in b only at (0,)"
    r = one(c, a)  # finite in a, inf in b: |a-b|/|b| is inf/inf, reported as inf
    assert "inf vs finite at (0,)" in r.note and r.max_rel == math.inf and r.max_rel_index == (0,)


def test_close_case():
    a = np.array([1.0, 5.0], dtype=F32)
    b = np.array([1.00001, 5.0], dtype=F32)
    d = one(a, b)
    assert d.max_ulp > 16
    assert d.verdict is Verdict.CLOSE
    # tolerance is relative to b, and atol alone can rescue it too
    assert one(a, b, rtol=0, atol=2e-5).verdict is Verdict.CLOSE
    assert one(a, b, rtol=0, atol=0).verdict is Verdict.DIVERGENT
    assert one(np.float32(0.0), np.float32(1e-6)).verdict is Verdict.CLOSE  # atol 1e-5
    # like numpy.isclose the tolerance scales with |b|, so it is not symmetric
    assert one(np.array([1.0]), np.array([0.5]), rtol=0.6, atol=0).verdict is Verdict.DIVERGENT
    assert one(np.array([0.5]), np.array([1.0]), rtol=0.6, atol=0).verdict is Verdict.CLOSE


def test_different_seed_sized_difference_is_divergent():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 4)).astype(F32)
    b = (a + rng.normal(scale=0.1, size=a.shape)).astype(F32)
    assert compare(a, b).verdict is Verdict.DIVERGENT


def test_divergent_statistics():
    a = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=F64)
    b = np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 0.5]], dtype=F64)
    d = one(a, b)
    assert d.verdict is Verdict.DIVERGENT
    assert d.max_abs == 1.0 and d.max_abs_index == (0, 1)
    assert d.max_rel == 1.0 and d.max_rel_index == (1, 2)
    assert d.mismatched == 2 and d.size == 6
    assert d.mismatched_fraction == pytest.approx(1 / 3)
    assert "2 elements beyond rtol/atol" in d.note
    # b == 0 and a != 0 gives infinite relative difference
    z = one(np.array([0.0, 3.0]), np.array([0.0, 0.0]))
    assert z.max_rel == math.inf and z.max_rel_index == (1,)
    assert z.max_abs == 3.0


def test_mismatched_count_and_fraction_ignore_equal_nans():
    a = np.array([np.nan, 1, 2, 3, 4, 5, 6, 7], dtype=F32)
    b = a.copy()
    b[[2, 5, 7]] += 1
    d = one(a, b)
    assert d.mismatched == 3 and d.size == 8
    assert d.mismatched_fraction == 0.375
    assert one(np.zeros((0, 3), F32), np.zeros((0, 3), F32)).mismatched_fraction == 0.0
    big = np.zeros(2000, F32)
    tiny_change = big.copy()
    tiny_change[1234] = 1.0
    text = compare(big, tiny_change).report()
    assert "1 / 2000 (<0.1 %)" in text and "at (1234,)" in text


def test_shape_mismatch():
    d = one(np.zeros(3, F32), np.zeros(4, F32))
    assert d.verdict is Verdict.DIVERGENT
    assert d.note == "shape (3,) vs (4,)"
    assert (d.shape_a, d.shape_b, d.size, d.mismatched) == ((3,), (4,), 4, 4)
    assert d.max_ulp == ULP_INF and math.isnan(d.max_abs)
    assert d.digest_a == digest(np.zeros(3, F32))


def test_dtype_mismatch():
    d = one(np.zeros(3, F32), np.zeros(3, F64))
    assert d.verdict is Verdict.DIVERGENT
    assert d.note == "dtype float32 vs float64"
    assert (d.dtype_a, d.dtype_b) == ("float32", "float64")


def test_missing_keys_on_either_side():
    x = np.ones(2, F32)
    result = compare({"both": x, "only_a": x}, {"both": x, "only_b": np.ones(3, F32)})
    assert result.verdict is Verdict.DIVERGENT
    by_name = {t.name: t for t in result.tensors}
    assert [t.name for t in result.tensors] == ["both", "only_a", "only_b"]
    assert by_name["both"].verdict is Verdict.IDENTICAL
    assert by_name["only_a"].note == "missing in b" and by_name["only_a"].verdict is Verdict.DIVERGENT
    assert by_name["only_b"].note == "missing in a" and by_name["only_b"].verdict is Verdict.DIVERGENT
    assert by_name["only_a"].digest_b is None and by_name["only_a"].shape_b is None
    assert by_name["only_b"].shape_b == (3,) and by_name["only_b"].size == 3


def test_names_filter_and_unknown_name():
    a = {"loss": np.float32(1), "final/w": np.zeros(2, F32), "only_a": np.zeros(1, F32)}
    b = {"loss": np.float32(1), "final/w": np.ones(2, F32)}
    assert compare(a, b).verdict is Verdict.DIVERGENT
    only_loss = compare(a, b, names=["loss"])
    assert only_loss.verdict is Verdict.IDENTICAL and [t.name for t in only_loss.tensors] == ["loss"]
    assert [t.name for t in compare(a, b, names="loss").tensors] == ["loss"]
    assert compare(a, b, names=["only_a"]).tensors[0].note == "missing in b"
    with pytest.raises(KeyError) as exc:
        compare(a, b, names=["loss", "nope"])
    message = str(exc.value)
    assert "nope" in message and "loss" in message and "final/w" in message and "only_a" in message


def test_nothing_to_compare():
    with pytest.raises(ValueError, match="nothing to compare"):
        compare({}, {})
    with pytest.raises(ValueError, match="nothing to compare"):
        compare({"a": np.zeros(1)}, {"a": np.zeros(1)}, names=[])


class FakeRun:
    def __init__(self, shift: float) -> None:
        self._t = {
            "initial/layer0/kernel": np.arange(6, dtype=F32).reshape(2, 3),
            "final/layer0/kernel": np.arange(6, dtype=F32).reshape(2, 3) + F32(shift),
            "loss": np.array(0.25, F32),
        }

    def tensors(self) -> dict[str, np.ndarray]:
        return self._t


def test_object_with_tensors_method():
    result = compare(FakeRun(0.0), FakeRun(0.5))
    assert [t.name for t in result.tensors] == ["initial/layer0/kernel", "final/layer0/kernel", "loss"]
    assert result.verdict is Verdict.DIVERGENT
    assert result.worst.name == "final/layer0/kernel"
    assert compare(FakeRun(0.0), FakeRun(0.0)).identical
    # mixing a run with a plain mapping works too
    assert compare(FakeRun(0.0), dict(FakeRun(0.0).tensors())).identical


def test_plain_array_is_named_value_and_bad_input_rejected():
    assert compare(np.zeros(2), np.zeros(2)).tensors[0].name == "value"
    with pytest.raises(TypeError, match="list"):
        compare([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(TypeError, match="complex"):
        compare({"c": np.zeros(2, np.complex64)}, {"c": np.zeros(2, np.complex64)})


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integer_and_bool_are_exact_only(dtype):
    a = np.array([0, 1, 1], dtype=dtype)
    assert one(a, a.copy()).verdict is Verdict.IDENTICAL
    b = np.array([0, 1, 0], dtype=dtype)
    d = one(a, b, max_ulp=10**6, rtol=10.0, atol=10.0)
    assert d.verdict is Verdict.DIVERGENT
    assert (d.mismatched, d.max_abs, d.max_abs_index, d.max_ulp) == (1, 1.0, (2,), 1)


def test_int64_extremes_distance_is_exact():
    info = np.iinfo(np.int64)
    d = one(np.array([info.min]), np.array([info.max]))
    assert d.max_ulp == info.max - info.min


def test_zero_size_and_zero_dim():
    assert compare(np.zeros((0, 4), F32), np.zeros((0, 4), F32)).verdict is Verdict.IDENTICAL
    assert compare(np.zeros((0, 4), F32), np.zeros((4, 0), F32)).verdict is Verdict.DIVERGENT
    d = one(np.array(1.0, F32), np.array(2.0, F32))
    assert d.max_abs_index == () and d.max_rel_index == () and d.shape_a == ()
    assert d.verdict is Verdict.DIVERGENT and d.max_abs == 1.0 and d.max_rel == 0.5


def test_worst_ties_broken_by_ulp_then_abs():
    base = np.array([1.0, 2.0], dtype=F32)
    result = compare(
        {"three": base, "five": base, "same": base, "five_big": base * 4},
        {"three": steps(base, 3), "five": steps(base, 5), "same": base, "five_big": steps(base * 4, 5)},
    )
    assert result.verdict is Verdict.ULP
    assert result.worst.name == "five_big"  # 5 ULP like "five", but a larger |Δ|
    order = [line.split()[0] for line in result.report().splitlines()[2:6]]
    assert order == ["five_big", "five", "three", "same"]
    divergent = compare({"ulp": base, "bad": base}, {"ulp": steps(base, 1), "bad": base + 1})
    assert divergent.worst.name == "bad"


# ------------------------------------------------------------------------------------------
# Tolerance
# ------------------------------------------------------------------------------------------


def test_tolerance_defaults():
    assert Tolerance() == Tolerance(max_ulp=16, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_ulp", -1),
        ("max_ulp", 1.5),
        ("max_ulp", math.inf),
        ("rtol", -1e-3),
        ("rtol", math.nan),
        ("atol", math.inf),
        ("atol", -2.0),
    ],
)
def test_tolerance_validation(field, value):
    with pytest.raises(ValueError) as exc:
        Tolerance(**{field: value})
    message = str(exc.value)
    assert field in message and repr(value) in message and "non-negative" in message
    with pytest.raises(ValueError, match=field):
        compare(np.zeros(1), np.zeros(1), **{field: value})


def test_keyword_overrides_replace_only_given_fields():
    base = Tolerance(max_ulp=2, rtol=0.5, atol=0.0)
    result = compare(np.zeros(1), np.zeros(1), tolerance=base, max_ulp=7)
    assert result.tolerance == Tolerance(max_ulp=7, rtol=0.5, atol=0.0)
    assert compare(np.zeros(1), np.zeros(1), atol=0.0).tolerance == Tolerance(atol=0.0)


# ------------------------------------------------------------------------------------------
# report, summary, to_dict
# ------------------------------------------------------------------------------------------


def _ulp_run():
    w = np.zeros((2, 64), dtype=F32) + F32(1.5)
    w2 = w.copy()
    w2[0, 17] = steps(w2[0, 17], 12)
    w2[1, 3] = steps(w2[1, 3], 2)
    a = {"final/layer0/kernel": w, "loss": np.array(0.5, F32), "pred/test": np.arange(3, dtype=F32)}
    b = {"final/layer0/kernel": w2, "loss": np.array(0.5, F32), "pred/test": np.arange(3, dtype=F32)}
    return compare(a, b), w, w2


def test_summary_line():
    result, w, _ = _ulp_run()
    s = result.summary()
    assert "\n" not in s
    assert s.startswith("ULP: 1/3 tensors differ; worst final/layer0/kernel: 2 / 128 elements (1.6 %)")
    assert "at (0, 17)" in s and "max 12 ULP" in s
    assert s.endswith("(allowed: 16 ULP, rtol 1e-4, atol 1e-5)")
    assert compare(w, w).summary().startswith("IDENTICAL: 0/1 tensors differ")


def test_report_table():
    result, w, w2 = _ulp_run()
    text = result.report()
    assert str(result) == text
    lines = text.splitlines()
    assert lines[0] == result.summary()
    assert lines[1].split()[:3] == ["tensor", "verdict", "mismatched"]
    row = lines[2]
    assert row.startswith("final/layer0/kernel") and " ulp " in row
    assert "2 / 128 (1.6 %)" in row and "(0, 17)" in row and " 12 " in row
    assert digest(w)[:12] in row and digest(w2)[:12] in row
    assert lines[-1] == "tolerance: 16 ULP, rtol 1e-4, atol 1e-5"
    # columns are aligned: "verdict" starts at the same offset on every table line
    col = lines[1].index("verdict")
    assert all(line[col - 2 : col] == "  " and line[col] != " " for line in lines[2:5])
    short = result.report(max_rows=1)
    assert "2 more tensors not shown" in short and "pred/test" not in short


def test_report_shows_missing_digest_and_note():
    text = compare({"a": np.zeros(2)}, {"b": np.zeros(2)}).report()
    assert "missing in b" in text and "missing in a" in text
    assert digest(np.zeros(2))[:12] in text


def _walk_json_types(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str
            _walk_json_types(v)
    elif isinstance(obj, list):
        for v in obj:
            _walk_json_types(v)
    else:
        assert type(obj) in (str, int, float, bool, type(None)), (obj, type(obj))
        if type(obj) is float:
            assert math.isfinite(obj)


def test_to_dict_is_json_safe_with_inf_and_nan():
    a = {"x": np.array([1.0, np.nan], F32), "y": np.zeros(2), "z": np.array([0.0, 1.0])}
    b = {"x": np.array([1.0, 2.0], F32), "y": np.zeros(3), "z": np.array([0.0, 0.0])}
    d = compare(a, b).to_dict()
    _walk_json_types(d)
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["verdict"] == "divergent"
    x, y, z = back["tensors"]
    assert x["max_abs"] == "inf" and x["max_abs_index"] == [1] and x["verdict"] == "divergent"
    assert y["max_abs"] == "nan" and y["shape_b"] == [3]
    assert z["max_rel"] == "inf" and z["max_abs"] == 1.0
    assert back["tolerance"] == {"max_ulp": 16, "rtol": 1e-4, "atol": 1e-5}


# ------------------------------------------------------------------------------------------
# assert helpers
# ------------------------------------------------------------------------------------------


def test_assert_identical():
    a = np.array([1.0, 2.0], F32)
    result = assert_identical(a, a.copy())
    assert isinstance(result, Comparison) and result.identical
    b = np.array([1.0, -2.0], F32)
    with pytest.raises(AssertionError) as exc:
        assert_identical(a, b)
    message = str(exc.value)
    assert compare(a, b).report() in message
    assert digest(a)[:12] in message and digest(b)[:12] in message


def test_assert_reproducible_levels():
    a = np.array([0.0, 1.0], F32)
    b = np.array([-0.0, 1.0], F32)
    with pytest.raises(AssertionError, match="tolerance: 16 ULP"):
        assert_reproducible(a, b)
    assert assert_reproducible(a, b, at_most=Verdict.ULP).verdict is Verdict.ULP
    c = np.array([0.0, 1.00001], F32)
    with pytest.raises(AssertionError, match="CLOSE"):
        assert_reproducible(a, c, at_most=Verdict.ULP)
    assert assert_reproducible(a, c, at_most="close").verdict is Verdict.CLOSE
    assert assert_reproducible(a, c, at_most=Verdict.ULP, tolerance=Tolerance(max_ulp=1000)).verdict is Verdict.ULP
    with pytest.raises(AssertionError):
        assert_reproducible(a, c, at_most=Verdict.CLOSE, tolerance=Tolerance(rtol=0, atol=0))
    with pytest.raises(ValueError, match="at_most: invalid value 'bitwise'; allowed: a Verdict or one of identical"):
        assert_reproducible(a, a, at_most="bitwise")


# ------------------------------------------------------------------------------------------
# digest
# ------------------------------------------------------------------------------------------


def test_digest_covers_dtype_shape_and_bytes():
    x = np.arange(6, dtype=F32)
    assert digest(x) == digest(x.copy())
    assert digest(x) != digest(x.reshape(2, 3))
    assert digest(x) != digest(x.view(np.int32))
    assert digest(np.zeros(1, F32)) != digest(np.array([-0.0], F32))
    m = np.arange(12, dtype=F64).reshape(3, 4)
    assert digest(m.T) == digest(np.ascontiguousarray(m.T))
    assert digest(m) == digest(m.astype(">f8"))
    assert len(digest(x)) == 64 and int(digest(x), 16) >= 0


# ------------------------------------------------------------------------------------------
# hypothesis properties
# ------------------------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
any_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite_f64 = st.floats(allow_nan=False, allow_infinity=False)


@settings(deadline=None)
@given(hnp.arrays(F32, shapes, elements=any_f32))
def test_prop_compare_self_is_identical(x):
    result = compare({"x": x}, {"x": x.copy()})
    assert result.verdict is Verdict.IDENTICAL
    assert result.tensors[0].mismatched == 0


@settings(deadline=None)
@given(st.data())
def test_prop_ulp_symmetric(data):
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES))
    shape = data.draw(shapes)
    elements = st.floats(width=8 * np.dtype(dtype).itemsize)
    a = data.draw(hnp.arrays(dtype, shape, elements=elements))
    b = data.draw(hnp.arrays(dtype, shape, elements=elements))
    assert np.array_equal(ulp_distance(a, b), ulp_distance(b, a))
    assert not ulp_distance(a, a).any()


@settings(deadline=None)
@given(
    st.one_of(
        st.floats(width=16, allow_nan=False, allow_infinity=False).map(F16),
        finite_f32.map(F32),
        finite_f64.map(F64),
    ),
    st.integers(0, 40),
)
def test_prop_k_nextafter_steps_is_k_ulp(x, k):
    x = np.asarray(x)
    if x != np.finfo(x.dtype).max:
        assert int(ulp_distance(x, np.nextafter(x, x.dtype.type(np.inf)))) == 1
    end = steps(x, k)
    assume(bool(np.isfinite(end)))
    assert int(ulp_distance(x, end)) == k
    assert int(ulp_distance(end, x)) == k


@settings(deadline=None)
@given(
    st.one_of(
        st.lists(finite_f32, min_size=3, max_size=3).map(lambda v: np.array(sorted(v), F32)),
        st.lists(finite_f64, min_size=3, max_size=3).map(lambda v: np.array(sorted(v), F64)),
    )
)
def test_prop_ulp_additive_along_the_line(v):
    a, b, c = v
    d_ac = int(ulp_distance(a, c))
    assert d_ac == int(ulp_distance(a, b)) + int(ulp_distance(b, c))
    assert (d_ac == 0) == (a == c)


tolerances = st.builds(
    Tolerance,
    max_ulp=st.integers(0, 10**7),
    rtol=st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 0.1, 1.0]),
    atol=st.sampled_from([0.0, 1e-8, 1e-5, 1e-2, 1.0]),
)


@settings(deadline=None)
@given(
    hnp.arrays(F32, st.integers(1, 6), elements=st.floats(-100, 100, width=32)),
    st.lists(st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 0.3, -0.0]), min_size=1, max_size=6),
    tolerances,
    st.integers(0, 10**7),
    st.sampled_from([0.0, 1e-4, 0.5]),
    st.sampled_from([0.0, 1e-4, 0.5]),
)
def test_prop_loosening_tolerance_never_worsens(a, rel_noise, tol, more_ulp, more_rtol, more_atol):
    noise = np.resize(np.array(rel_noise, dtype=F32), a.shape)
    b = (a * (F32(1) + noise)).astype(F32)
    looser = Tolerance(tol.max_ulp + more_ulp, tol.rtol + more_rtol, tol.atol + more_atol)
    tight = compare(a, b, tolerance=tol).verdict
    loose = compare(a, b, tolerance=looser).verdict
    assert loose <= tight
    assert compare(a, b, tolerance=Tolerance(0, 0.0, 0.0)).verdict >= tight


def test_values_at_the_greatest_difference_are_shown_side_by_side() -> None:
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    b = np.array([1.0, 2.5, 3.0], dtype=np.float32)
    diff = compare({"w": a}, {"w": b}).worst
    assert (diff.value_a, diff.value_b, diff.max_abs_index) == (2.0, 2.5, (1,))
    assert "2 vs 2.5" in compare({"w": a}, {"w": b}).report()
    assert compare({"w": a}, {"w": a}).worst.verdict is Verdict.IDENTICAL
