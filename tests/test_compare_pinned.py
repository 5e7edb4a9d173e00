"""What a user of `compare` sees, pinned value by value: the CLOSE/DIVERGENT boundary, byte order, the notes,
the report and summary text and the `--json` shape of a comparison (issue 16, mutation survivors).

Expected values are written out literally (or derived from the documented format with hashlib/struct), never
recomputed with the module's own helpers, so a changed rule or a renamed key fails here.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest

from sinecheck.core.compare import (
    ULP_INF,
    Comparison,
    Tolerance,
    Verdict,
    assert_identical,
    assert_reproducible,
    compare,
    digest,
    ulp_distance,
)

F32 = np.float32


def _f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=F32)


# -- the CLOSE / DIVERGENT boundary: |a-b| <= atol + rtol*|b| is CLOSE (inclusive) ------------------------------


@pytest.mark.parametrize(
    ("a", "b", "rtol", "atol", "expected"),
    [
        (1.0, 1.5, 0.0, 0.5, Verdict.CLOSE),  # |Δ| == atol exactly
        (1.0, 1.5, 0.0, 0.25, Verdict.DIVERGENT),
        (3.0, 2.0, 0.5, 0.0, Verdict.CLOSE),  # |Δ| == rtol*|b| exactly
        (3.0, 2.0, 0.25, 0.0, Verdict.DIVERGENT),
        (3.5, 2.0, 0.5, 0.5, Verdict.CLOSE),  # |Δ| == atol + rtol*|b| exactly
    ],
)
def test_close_boundary_is_inclusive(a: float, b: float, rtol: float, atol: float, expected: Verdict) -> None:
    result = compare(np.array([a]), np.array([b]), max_ulp=0, rtol=rtol, atol=atol)
    assert result.verdict == expected, result.summary()


def test_divergent_note_counts_elements_singular_and_plural() -> None:
    one = compare(_f32(1, 2, 3), _f32(1, 2, 4))
    two = compare(_f32(1, 2, 3), _f32(2, 2, 4))
    assert one.tensors[0].note == "1 element beyond rtol/atol"
    assert two.tensors[0].note == "2 elements beyond rtol/atol"


# -- byte order ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["f2", "f4", "f8", "i4", "u2"])
def test_big_endian_array_equals_its_native_copy(dtype: str) -> None:
    native = np.array([0, 1, 2, 3], dtype="=" + dtype)
    swapped = native.astype(">" + dtype if np.little_endian else "<" + dtype)
    assert swapped.dtype.byteorder in (">", "<")
    for a, b in ((swapped, native), (native, swapped), (swapped, swapped)):
        result = compare(a, b)
        assert result.verdict == Verdict.IDENTICAL, result.summary()
        assert result.tensors[0].dtype_a == result.tensors[0].dtype_b == str(native.dtype)
    assert digest(swapped) == digest(native)


def test_big_endian_one_ulp_apart_is_one_ulp() -> None:
    a = np.array([1.0], dtype=">f4")
    b = np.nextafter(_f32(1.0), F32(2))
    assert ulp_distance(a, b).tolist() == [1]
    assert compare(a, b).tensors[0].max_ulp == 1


# -- digest: sha256 of "<dtype.str>|<shape>|" + little-endian C-order bytes ------------------------------------------


def test_digest_format_is_the_documented_one() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F32)
    expected = hashlib.sha256(b"<f4|2,3|" + np.array([1, 2, 3, 4, 5, 6], dtype="<f4").tobytes()).hexdigest()
    assert digest(x) == expected
    assert digest(np.asfortranarray(x)) == expected
    flags = np.array([True, False])
    assert digest(flags) == hashlib.sha256(b"|b1|2|" + b"\x01\x00").hexdigest()


@pytest.mark.parametrize("bad", [np.array([object()], dtype=object), np.zeros(2, dtype="V4")])
def test_digest_refuses_object_and_void(bad: np.ndarray) -> None:
    with pytest.raises(TypeError, match=rf"cannot digest an array of dtype {bad.dtype}: its bytes are not its values"):
        digest(bad)


# -- notes: sign of zero / NaN payload only where the bits differ with 0 ULP ---------------------------------------


def test_sign_of_zero_note_only_for_zero_ulp() -> None:
    zero = compare(_f32(0.0, 1.0), _f32(-0.0, 1.0)).tensors[0]
    assert (zero.verdict, zero.max_ulp, zero.note) == (
        Verdict.ULP,
        0,
        "bits differ only in the sign of zero or NaN payload",
    )
    assert (zero.max_abs, zero.max_rel) == (0.0, 0.0)
    one = compare(_f32(1.0), np.nextafter(_f32(1.0), F32(2))).tensors[0]
    assert (one.verdict, one.max_ulp, one.note) == (Verdict.ULP, 1, "")


def test_nan_payload_note_and_zero_relative_difference() -> None:
    quiet = np.array([0x7FC00000], dtype=np.uint32).view(F32)
    other = np.array([0x7FC00001], dtype=np.uint32).view(F32)
    diff = compare(quiet, other).tensors[0]
    assert (diff.verdict, diff.note, diff.max_abs, diff.max_rel) == (
        Verdict.ULP,
        "bits differ only in the sign of zero or NaN payload",
        0.0,
        0.0,
    )


def test_notes_for_several_problems_are_joined_with_semicolons() -> None:
    nan, inf = float("nan"), float("inf")
    diff = compare(_f32(nan, nan, nan, 1.0, 5.0), _f32(1.0, 1.0, 1.0, inf, 5.0)).tensors[0]
    assert diff.note == "NaN in a only at (0,) (and 2 more); inf vs finite at (3,)"
    two = compare(_f32(1.0, nan, nan), _f32(1.0, 2.0, 3.0)).tensors[0]
    assert two.note == "NaN in a only at (1,) (and 1 more)"


def test_integer_difference_note() -> None:
    diff = compare(np.array([1, 2, 3]), np.array([1, 5, 4])).tensors[0]
    assert (diff.verdict, diff.note, diff.max_ulp, diff.max_abs) == (
        Verdict.DIVERGENT,
        "integer values must match exactly; 2 differ",
        3,
        3.0,
    )


def test_no_floating_point_warnings_leak() -> None:
    nan, inf = float("nan"), float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compare(_f32(0.0, nan, inf, 1.0, -0.0), _f32(0.0, 1.0, 2.0, 0.0, 0.0))
    assert result.verdict == Verdict.DIVERGENT


# -- structural mismatches ----------------------------------------------------------------------------------------


def test_shape_and_dtype_mismatch_note_names_both() -> None:
    result = compare({"w": np.zeros(2, dtype=F32)}, {"w": np.zeros(3, dtype=np.float64)})
    diff = result.tensors[0]
    assert diff.name == "w"
    assert diff.note == "shape (2,) vs (3,); dtype float32 vs float64"
    assert diff.digest_a == hashlib.sha256(b"<f4|2|" + bytes(8)).hexdigest()
    assert diff.digest_b == hashlib.sha256(b"<f8|3|" + bytes(24)).hexdigest()
    assert result.summary() == (
        "DIVERGENT: 1/1 tensors differ; worst w: shape (2,) vs (3,); dtype float32 vs float64 "
        "(allowed: 16 ULP, rtol 1e-4, atol 1e-5)"
    )


def test_missing_in_b_keeps_a_side() -> None:
    diff = compare({"k": _f32(1, 2)}, {"other": _f32(1)}).tensors[0]
    assert (diff.name, diff.note, diff.shape_a, diff.dtype_a, diff.shape_b, diff.dtype_b) == (
        "k",
        "missing in b",
        (2,),
        "float32",
        None,
        None,
    )
    assert diff.digest_a is not None and diff.digest_b is None
    assert (diff.size, diff.mismatched) == (2, 2)


def test_identical_tensor_fields() -> None:
    diff = compare(_f32(1, 2), _f32(1, 2)).tensors[0]
    assert (diff.dtype_a, diff.dtype_b, diff.max_abs, diff.max_rel, diff.max_ulp, diff.mismatched) == (
        "float32",
        "float32",
        0.0,
        0.0,
        0,
        0,
    )


def test_structural_tensor_ranks_worst_even_against_int64_extremes() -> None:
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    result = compare({"i": np.array([lo]), "s": np.zeros(2)}, {"i": np.array([hi]), "s": np.zeros(3)})
    assert result.tensors[0].max_ulp == ULP_INF  # the int64 extremes are the whole range apart
    assert result.worst.name == "s"


# -- report and summary text --------------------------------------------------------------------------------------


def _mixed() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    a = {"same": _f32(1, 2), "close": _f32(0.5, 1.0), "gone": _f32(1)}
    b = {"same": _f32(1, 2), "close": _f32(0.5, 1.0001), "new": _f32(1)}
    return a, b


def test_report_text_is_pinned() -> None:
    result = compare(*_mixed())
    lines = result.report().splitlines()
    assert lines[0] == (
        "DIVERGENT: 3/4 tensors differ; worst gone: missing in b (allowed: 16 ULP, rtol 1e-4, atol 1e-5)"
    )
    header = lines[1].split()
    assert header == [
        "tensor", "verdict", "mismatched", "max", "|Δ|", "a", "vs", "b", "there", "max", "rel",
        "max", "ULP", "digest", "a", "digest", "b", "note",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[2:6]}
    assert lines[2].startswith("gone ") and lines[3].startswith("new ")  # worst first, ties in input order
    assert rows["gone"].split() == ["gone", "divergent", "1", "/", "1", "(100.0", "%)", "n/a", "n/a", "n/a",
                                    rows["gone"].split()[10], "-", "missing", "in", "b"]  # fmt: skip
    assert len(rows["gone"].split()[10]) == 12  # digests are shown as their first 12 hex digits
    assert rows["new"].split()[10] == "-"
    close = rows["close"].split()
    assert close[:7] == ["close", "close", "1", "/", "2", "(50.0", "%)"]
    assert close[7:13] == ["0.0001", "at", "(1,)", "1", "vs", "1.00010002"]
    assert close[13:16] == ["0.0001", "at", "(1,)"]
    assert close[16] == "839"  # float32 1.0 → 1.0001: 839 representable steps
    same = rows["same"].split()
    assert same[:9] == ["same", "identical", "0", "/", "2", "(0.0", "%)", "0", "0"]
    assert not rows["same"].endswith(" ")  # trailing padding stripped, leading kept
    assert lines[-1] == "tolerance: 16 ULP, rtol 1e-4, atol 1e-5"


def test_report_columns_line_up() -> None:
    lines = compare(*_mixed()).report().splitlines()
    assert lines[1].index("verdict") == lines[2].index("divergent") == lines[5].index("identical")


def test_report_hides_rows_beyond_max_rows() -> None:
    a = {f"t{i:02d}": _f32(i) for i in range(21)}
    b = dict(a, t20=_f32(99))
    text = compare(a, b).report()
    assert "... 1 more tensors not shown (at worst identical)" in text
    assert "t20" in text.splitlines()[2]
    zero = compare(a, b).report(max_rows=0).splitlines()
    assert zero[2] == "... 21 more tensors not shown (at worst divergent)"


def test_summary_of_numeric_difference_with_note() -> None:
    result = compare({"w": _f32(0.25, 0.5, 1.0, 3.0)}, {"w": _f32(0.25, 0.5, 1.0, 3.5)})
    # float32 spacing in [2, 4) is 2**-22, so 3.0 -> 3.5 is 2**21 steps
    assert result.summary() == (
        "DIVERGENT: 1/1 tensors differ; worst w: 1 / 4 elements (25.0 %), max |Δ| 0.5 at (3,), max rel 0.143, "
        "max 2097152 ULP, 1 element beyond rtol/atol (allowed: 16 ULP, rtol 1e-4, atol 1e-5)"
    )


@pytest.mark.parametrize(
    ("mismatched", "size", "shown"),
    [(0, 4, "(0.0 %)"), (1, 1000, "(0.1 %)"), (1, 1001, "(<0.1 %)"), (1, 200, "(0.5 %)"),
     (999, 1000, "(99.9 %)"), (1999, 2000, "(>99.9 %)"), (4, 4, "(100.0 %)"), (1, 2, "(50.0 %)")],
)  # fmt: skip
def test_mismatched_percentage_text(mismatched: int, size: int, shown: str) -> None:
    a = np.arange(size, dtype=F32)
    b = a.copy()
    b[:mismatched] += 1000
    line = compare(a, b).report().splitlines()[2]
    assert f"{mismatched} / {size} {shown}" in line


@pytest.mark.parametrize(
    ("delta", "shown"),
    [(0.123456, "0.123"), (0.000123456, "0.00012"), (123456.0, "1.2e+05"), (2.5, "2.5"), (1.0, "1")],
)
def test_float_formatting_in_the_report(delta: float, shown: str) -> None:
    line = compare(np.array([0.0]), np.array([delta])).report().splitlines()[2]
    assert line.split()[7:10] == [shown, "at", "(0,)"]


def test_report_shows_inf_for_nan_vs_number() -> None:
    line = compare(_f32(float("nan")), _f32(1.0)).report().splitlines()[2]
    assert line.split()[7:10] == ["inf", "at", "(0,)"]


@pytest.mark.parametrize(
    ("tolerance", "text"),
    [
        (Tolerance(), "16 ULP, rtol 1e-4, atol 1e-5"),
        (Tolerance(max_ulp=0, rtol=0.0, atol=1.0), "0 ULP, rtol 0, atol 1"),
        (Tolerance(rtol=1e-3, atol=1e4), "16 ULP, rtol 0.001, atol 1e4"),
        (Tolerance(rtol=0.5, atol=2.5e-7), "16 ULP, rtol 0.5, atol 2.5e-7"),
        (Tolerance(rtol=9999.0, atol=1.25e5), "16 ULP, rtol 9999, atol 1.25e5"),
    ],
)
def test_tolerance_description(tolerance: Tolerance, text: str) -> None:
    assert tolerance.describe() == text


# -- Tolerance validation -----------------------------------------------------------------------------------------


def test_tolerance_max_ulp_numpy_integer_becomes_int() -> None:
    tol = Tolerance(max_ulp=np.int64(3))
    assert type(tol.max_ulp) is int and tol.max_ulp == 3
    json.dumps(compare(_f32(1), _f32(1), tolerance=tol).to_dict())


@pytest.mark.parametrize(("field", "value"), [("rtol", "0.1"), ("atol", True), ("rtol", None)])
def test_tolerance_rejects_non_numbers_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^Tolerance\.{field} must be a finite non-negative number, got "):
        Tolerance(**{field: value})  # type: ignore[arg-type]


# -- errors name the side and the problem -------------------------------------------------------------------------


class _BadRun:
    def tensors(self) -> list[int]:
        return [1]


def test_error_messages_name_the_side() -> None:
    with pytest.raises(TypeError, match=r"^b\.tensors\(\) must return a Mapping, got list$"):
        compare(_f32(1), _BadRun())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^cannot compare a of type int: pass a numpy array, a Mapping of name -> "):
        compare(3, _f32(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^cannot compare b of type str: .*or an object with a tensors\(\) method$"):
        compare(_f32(1), "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tensor names must be str, got 1 in a$"):
        compare({1: _f32(1)}, {"x": _f32(1)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^tensor 'c' has unsupported dtype complex64; "):
        compare({"c": np.zeros(1, np.complex64)}, {"c": np.zeros(1, np.complex64)})


def test_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(KeyError, match=r"unknown tensor name 'z'; available: x, y"):
        compare({"x": _f32(1)}, {"y": _f32(1)}, names=["z"])
    with pytest.raises(KeyError, match=r"unknown tensor name 'z'; available: none"):
        compare({}, {}, names=["z"])
    with pytest.raises(ValueError, match=r"^nothing to compare$"):
        compare({}, {})


def test_ulp_distance_error_message() -> None:
    with pytest.raises(TypeError, match=r"^ulp_distance needs two arrays of the same IEEE float dtype \(float16, "):
        ulp_distance(_f32(1), np.array([1.0]))


def test_assert_functions_honour_names() -> None:
    a = {"same": _f32(1), "diff": _f32(1)}
    b = {"same": _f32(1), "diff": _f32(2)}
    assert assert_identical(a, b, names=["same"]).identical
    assert assert_reproducible(a, b, at_most="identical", names=["same"]).identical
    with pytest.raises(AssertionError, match=r"expected at most identical, got divergent"):
        assert_identical(a, b)
    with pytest.raises(ValueError, match=r"allowed: a Verdict or one of identical, ulp, close, divergent$"):
        assert_reproducible(a, b, at_most="bitwise")


# -- the JSON form (`sinecheck compare --json`) --------------------------------------------------------------------


def test_tensor_to_dict_is_pinned_for_a_numeric_difference() -> None:
    result = compare({"w": np.array([[1.0, 2.0], [4.0, 8.0]])}, {"w": np.array([[1.0, 2.0], [4.0, 10.0]])})
    d = result.tensors[0].to_dict()
    digest_a, digest_b = d.pop("digest_a"), d.pop("digest_b")
    assert d == {
        "name": "w",
        "verdict": "divergent",
        "shape_a": [2, 2],
        "shape_b": [2, 2],
        "dtype_a": "float64",
        "dtype_b": "float64",
        "size": 4,
        "mismatched": 1,
        "mismatched_fraction": 0.25,
        "max_abs": 2.0,
        "max_abs_index": [1, 1],
        "max_rel": 0.2,
        "max_rel_index": [1, 1],
        "max_ulp": 2**50,  # float64 spacing in [8, 16) is 2**-49; 8 -> 10 is 2 / 2**-49 steps
        "note": "1 element beyond rtol/atol",
        "value_a": 8.0,
        "value_b": 10.0,
    }
    body = np.array([1.0, 2.0, 4.0], dtype="<f8").tobytes()
    assert digest_a == hashlib.sha256(b"<f8|2,2|" + body + np.array([8.0], "<f8").tobytes()).hexdigest()
    assert digest_b == hashlib.sha256(b"<f8|2,2|" + body + np.array([10.0], "<f8").tobytes()).hexdigest()


def test_tensor_to_dict_is_pinned_for_a_structural_difference() -> None:
    d = compare({"w": np.zeros((2,), np.int32)}, {"w": np.zeros((1, 2), np.int32)}).tensors[0].to_dict()
    assert d == {
        "name": "w",
        "verdict": "divergent",
        "shape_a": [2],
        "shape_b": [1, 2],
        "dtype_a": "int32",
        "dtype_b": "int32",
        "size": 2,
        "mismatched": 2,
        "mismatched_fraction": 1.0,
        "max_abs": "nan",
        "max_abs_index": None,
        "max_rel": "nan",
        "max_rel_index": None,
        "max_ulp": ULP_INF,
        "digest_a": hashlib.sha256(b"<i4|2|" + bytes(8)).hexdigest(),
        "digest_b": hashlib.sha256(b"<i4|1,2|" + bytes(8)).hexdigest(),
        "note": "shape (2,) vs (1, 2)",
        "value_a": None,
        "value_b": None,
    }


def test_comparison_to_dict_keys_and_values() -> None:
    result = compare(_f32(1, 2), _f32(1, 2))
    d = result.to_dict()
    assert set(d) == {"verdict", "identical", "summary", "tolerance", "tensors"}
    assert (d["verdict"], d["identical"]) == ("identical", True)
    assert d["summary"] == "IDENTICAL: 0/1 tensors differ (allowed: 16 ULP, rtol 1e-4, atol 1e-5)"
    assert d["tolerance"] == {"max_ulp": 16, "rtol": 1e-4, "atol": 1e-5}
    assert isinstance(result, Comparison) and len(d["tensors"]) == 1
