"""Reproducibility verdicts between two collections of float arrays (pure NumPy).

Two training runs are compared tensor by tensor and each pair gets a :class:`Verdict`:
bitwise ``IDENTICAL``, within a few units in the last place (``ULP``), numerically
``CLOSE`` or ``DIVERGENT``. The overall verdict is the worst tensor verdict.
This module deliberately does not import TensorFlow or Keras so it stays fast and testable.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "ULP_INF",
    "Comparison",
    "TensorDiff",
    "Tolerance",
    "Verdict",
    "assert_identical",
    "assert_reproducible",
    "compare",
    "digest",
    "json_float",
    "ulp_distance",
]

#: ULP distance used when no distance exists (NaN vs number, shape/dtype/key mismatch).
ULP_INF: int = int(np.iinfo(np.uint64).max)

_UINT_OF_SIZE: dict[int, type[np.unsignedinteger[Any]]] = {
    1: np.uint8,
    2: np.uint16,
    4: np.uint32,
    8: np.uint64,
}
_IEEE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class Verdict(enum.IntEnum):
    """How far apart two tensors (or runs) are; ordered so that a larger value is worse."""

    IDENTICAL = 0  # every tensor bitwise equal (same dtype, same shape, same raw bytes)
    ULP = 1  # not bitwise, but every element within `max_ulp` units in the last place
    CLOSE = 2  # beyond ULP, but every element within |a-b| <= atol + rtol*|b|
    DIVERGENT = 3  # beyond tolerance, NaN vs number, inf vs finite, shape/dtype/key mismatch

    def __str__(self) -> str:
        return self.name.lower()


# --------------------------------------------------------------------------------------------
# low-level helpers
# --------------------------------------------------------------------------------------------


def _native(x: np.ndarray) -> np.ndarray:
    """Return `x` in native byte order so bit views and dtype comparisons are meaningful."""
    if x.dtype.byteorder not in ("=", "|"):
        return x.astype(x.dtype.newbyteorder("="))
    return x


def _ordered_key(x: np.ndarray) -> np.ndarray:
    """Map IEEE float bits to unsigned ints whose order matches the float order.

    Negative floats map below 2**(n-1), positive ones above it, and both zeros onto it, so the
    absolute difference of two keys is the number of representable floats between the values.
    """
    utype = _UINT_OF_SIZE[x.dtype.itemsize]
    bits = x.view(utype)
    sign = utype(1 << (8 * x.dtype.itemsize - 1))
    magnitude = bits & utype(sign - utype(1))
    return np.asarray(np.where((bits & sign) != 0, sign - magnitude, sign + magnitude))


def _int_key(x: np.ndarray) -> np.ndarray:
    """Map integer/bool values to unsigned ints with the same order (offset for signed ints)."""
    utype = _UINT_OF_SIZE[x.dtype.itemsize]
    bits = x.view(utype)
    if x.dtype.kind == "i":
        return np.asarray(bits ^ utype(1 << (8 * x.dtype.itemsize - 1)))
    return bits


def _key_distance(ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
    """|ka - kb| for unsigned keys without wrap-around, as uint64."""
    return np.asarray(np.maximum(ka, kb) - np.minimum(ka, kb)).astype(np.uint64)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise distance in units in the last place between two same-dtype float arrays.

    Counts the representable values between `a` and `b` (so +0.0 and -0.0 are 0 apart and
    ``nextafter(x, inf)`` is 1 away); the result is uint64 so even -max..+max cannot overflow.
    Both-NaN positions give 0, exactly-one-NaN positions give the uint64 maximum (``ULP_INF``).
    Inputs broadcast like any NumPy binary operation.

    Raises:
        TypeError: if the dtypes differ or are not float16, float32 or float64.
    """
    a = _native(np.asarray(a))
    b = _native(np.asarray(b))
    if a.dtype != b.dtype or a.dtype not in _IEEE_FLOATS:
        raise TypeError(
            "ulp_distance needs two arrays of the same IEEE float dtype (float16, float32 or "
            f"float64), got {a.dtype} and {b.dtype}"
        )
    dist = _key_distance(_ordered_key(a), _ordered_key(b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    dist = np.where(nan_a & nan_b, np.uint64(0), dist)
    dist = np.where(nan_a ^ nan_b, np.uint64(ULP_INF), dist)
    return np.asarray(dist, dtype=np.uint64)


def _check_supported(name: str, x: np.ndarray) -> None:
    """Reject dtypes whose raw bytes or element-wise distance have no clear meaning here."""
    if x.dtype in _IEEE_FLOATS or x.dtype.kind in "iub":
        return
    raise TypeError(
        f"tensor {name!r} has unsupported dtype {x.dtype}; compare handles float16/32/64, integer and bool arrays"
    )


class HasTensors(Protocol):
    """Anything that lists its arrays by name, such as a RunResult."""

    def tensors(self) -> Mapping[str, np.ndarray]: ...


#: What `compare` takes on each side: one array, named arrays, or an object with a ``tensors()`` method.
Comparable: TypeAlias = np.ndarray | np.generic | Mapping[str, npt.ArrayLike] | HasTensors


def digest(array: npt.ArrayLike) -> str:
    """SHA-256 hex digest of an array's dtype, shape and C-order bytes (little-endian).

    Two arrays have the same digest exactly when they are bitwise identical, so digests can be
    logged and compared across machines and processes without shipping the arrays.
    """
    x = np.asarray(array)
    if x.dtype.hasobject or x.dtype.kind == "V":
        raise TypeError(f"cannot digest an array of dtype {x.dtype}: its bytes are not its values")
    if x.dtype.byteorder not in ("|", "<"):
        x = x.astype(x.dtype.newbyteorder("<"))
    h = hashlib.sha256()
    h.update(f"{x.dtype.str}|{','.join(str(n) for n in x.shape)}|".encode())
    h.update(x.tobytes(order="C"))
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# tolerance and per-tensor result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """Thresholds that separate ULP, CLOSE and DIVERGENT verdicts.

    Defaults: 16 ULP covers reordered float32 arithmetic (e.g. a different reduction order on
    another thread count); rtol 1e-4 / atol 1e-5 accept small accumulated numeric drift; runs
    with different seeds differ by O(0.1) in the weights and must come out DIVERGENT.
    """

    max_ulp: int = 16
    rtol: float = 1e-4
    atol: float = 1e-5

    def __post_init__(self) -> None:
        value: Any = self.max_ulp
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"Tolerance.max_ulp must be a non-negative integer, got {value!r}")
        object.__setattr__(self, "max_ulp", int(value))
        for field in ("rtol", "atol"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"Tolerance.{field} must be a finite non-negative number, got {value!r}")
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"Tolerance.{field} must be a finite non-negative number, got {value!r}")
            object.__setattr__(self, field, float(value))

    def describe(self) -> str:
        """One-line human description, e.g. ``16 ULP, rtol 1e-4, atol 1e-5``."""
        return f"{self.max_ulp} ULP, rtol {_fmt_param(self.rtol)}, atol {_fmt_param(self.atol)}"


Index = tuple[int, ...]


@dataclass(frozen=True)
class TensorDiff:
    """Comparison of one named tensor between side a and side b.

    For a shape/dtype mismatch or a missing key no element-wise statistics exist: then
    ``mismatched == size`` (the larger side's size), ``max_abs``/``max_rel`` are NaN,
    ``max_ulp`` is ``ULP_INF`` and the missing side's shape/dtype/digest are None.
    For integer/bool tensors ``max_ulp`` is the exact integer distance |a-b| (1 ULP = 1).
    """

    name: str
    verdict: Verdict
    shape_a: Index | None
    shape_b: Index | None
    dtype_a: str | None
    dtype_b: str | None
    size: int
    mismatched: int
    max_abs: float
    max_abs_index: Index | None
    max_rel: float
    max_rel_index: Index | None
    max_ulp: int
    digest_a: str | None
    digest_b: str | None
    note: str = ""
    value_a: float | None = None  # the two values where |a - b| is greatest, shown side by side
    value_b: float | None = None

    @property
    def mismatched_fraction(self) -> float:
        """Fraction of elements that are not bitwise equal (0.0 for empty tensors)."""
        return self.mismatched / self.size if self.size else 0.0

    @property
    def structural(self) -> bool:
        """True if the tensors could not be compared element-wise (missing, shape or dtype)."""
        return self.max_ulp == ULP_INF and math.isnan(self.max_abs)

    def _severity(self) -> tuple[int, int, float]:
        abs_key = math.inf if math.isnan(self.max_abs) else self.max_abs
        return (int(self.verdict), self.max_ulp, abs_key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: lists for tuples, strings for verdict and for inf/nan floats."""
        return {
            "name": self.name,
            "verdict": str(self.verdict),
            "shape_a": _json_index(self.shape_a),
            "shape_b": _json_index(self.shape_b),
            "dtype_a": self.dtype_a,
            "dtype_b": self.dtype_b,
            "size": int(self.size),
            "mismatched": int(self.mismatched),
            "mismatched_fraction": json_float(self.mismatched_fraction),
            "max_abs": json_float(self.max_abs),
            "max_abs_index": _json_index(self.max_abs_index),
            "max_rel": json_float(self.max_rel),
            "max_rel_index": _json_index(self.max_rel_index),
            "max_ulp": int(self.max_ulp),
            "digest_a": self.digest_a,
            "digest_b": self.digest_b,
            "note": self.note,
            "value_a": None if self.value_a is None else json_float(self.value_a),
            "value_b": None if self.value_b is None else json_float(self.value_b),
        }


def json_float(value: float | None) -> float | str | None:
    """A float for JSON: finite values as plain floats, NaN/inf as the strings "nan"/"inf"/"-inf" (JSON has
    no spelling for them), None as None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _json_index(idx: Index | None) -> list[int] | None:
    return None if idx is None else [int(i) for i in idx]


def _index_of(flat: int, shape: Index) -> Index:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _first_index(mask: np.ndarray) -> Index:
    return _index_of(int(np.argmax(mask.ravel())), mask.shape)


def _where_text(mask: np.ndarray) -> str:
    count = int(np.count_nonzero(mask))
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"at {_first_index(mask)}{more}"


def _structural_diff(name: str, a: np.ndarray | None, b: np.ndarray | None, note: str) -> TensorDiff:
    sizes = [x.size for x in (a, b) if x is not None]
    size = int(max(sizes)) if sizes else 0
    return TensorDiff(
        name=name,
        verdict=Verdict.DIVERGENT,
        shape_a=None if a is None else tuple(a.shape),
        shape_b=None if b is None else tuple(b.shape),
        dtype_a=None if a is None else str(a.dtype),
        dtype_b=None if b is None else str(b.dtype),
        size=size,
        mismatched=size,
        max_abs=math.nan,
        max_abs_index=None,
        max_rel=math.nan,
        max_rel_index=None,
        max_ulp=ULP_INF,
        digest_a=None if a is None else digest(a),
        digest_b=None if b is None else digest(b),
        note=note,
    )


def _diff_tensor(name: str, a: np.ndarray | None, b: np.ndarray | None, tol: Tolerance) -> TensorDiff:
    """Compare one pair of tensors (either may be missing) and classify the difference."""
    if a is None or b is None:
        return _structural_diff(name, a, b, "missing in a" if a is None else "missing in b")
    problems = []
    if a.shape != b.shape:
        problems.append(f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dtype != b.dtype:
        problems.append(f"dtype {a.dtype} vs {b.dtype}")
    if problems:
        return _structural_diff(name, a, b, "; ".join(problems))

    is_float = a.dtype.kind == "f"
    utype = _UINT_OF_SIZE[a.dtype.itemsize]
    differs = a.view(utype) != b.view(utype)  # bitwise: equal-bit NaNs count as equal
    mismatched = int(np.count_nonzero(differs))
    identical = TensorDiff(
        name=name,
        verdict=Verdict.IDENTICAL,
        shape_a=tuple(a.shape),
        shape_b=tuple(b.shape),
        dtype_a=str(a.dtype),
        dtype_b=str(b.dtype),
        size=int(a.size),
        mismatched=mismatched,
        max_abs=0.0,
        max_abs_index=None,
        max_rel=0.0,
        max_rel_index=None,
        max_ulp=0,
        digest_a=digest(a),
        digest_b=digest(b),
    )
    if mismatched == 0:
        return identical

    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    with np.errstate(all="ignore"):
        if is_float:
            nan_a, nan_b = np.isnan(a), np.isnan(b)
            ulps = ulp_distance(a, b)
            same = ~differs | (nan_a & nan_b)  # +0 vs -0 needs no special case: |0 - -0| == 0
            absdiff = np.where(same, 0.0, np.abs(a64 - b64))
            absdiff = np.where(np.isnan(absdiff), np.inf, absdiff)  # NaN vs number
        else:
            ulps = _key_distance(_int_key(a), _int_key(b))
            absdiff = ulps.astype(np.float64)
        absb = np.abs(b64)
        rel = np.where(absdiff == 0, 0.0, absdiff / absb)
        rel = np.where(np.isnan(rel), np.inf, rel)  # inf/inf where b is inf and a is not
        close = absdiff <= tol.atol + tol.rtol * absb

    abs_flat = int(np.argmax(np.where(differs, absdiff, -1.0).ravel()))
    rel_flat = int(np.argmax(np.where(differs, rel, -1.0).ravel()))
    max_ulp = int(ulps.max())
    measured = replace(
        identical,
        max_abs=float(absdiff.ravel()[abs_flat]),
        max_abs_index=_index_of(abs_flat, a.shape),
        max_rel=float(rel.ravel()[rel_flat]),
        max_rel_index=_index_of(rel_flat, a.shape),
        max_ulp=max_ulp,
        value_a=float(a64.ravel()[abs_flat]),
        value_b=float(b64.ravel()[abs_flat]),
    )

    if not is_float:
        note = f"integer values must match exactly; {mismatched} differ"
        return replace(measured, verdict=Verdict.DIVERGENT, note=note)

    notes = []
    if np.any(nan_a & ~nan_b):
        notes.append(f"NaN in a only {_where_text(nan_a & ~nan_b)}")
    if np.any(nan_b & ~nan_a):
        notes.append(f"NaN in b only {_where_text(nan_b & ~nan_a)}")
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    opposite = inf_a & inf_b & (a != b)
    one_sided = inf_a ^ inf_b
    one_sided &= ~(nan_a | nan_b)  # inf vs NaN is already reported as a NaN mismatch
    if np.any(opposite):
        notes.append(f"+inf vs -inf {_where_text(opposite)}")
    if np.any(one_sided):
        notes.append(f"inf vs finite {_where_text(one_sided)}")
    if notes:
        return replace(measured, verdict=Verdict.DIVERGENT, note="; ".join(notes))

    if max_ulp <= tol.max_ulp:
        note = "bits differ only in the sign of zero or NaN payload" if max_ulp == 0 else ""
        return replace(measured, verdict=Verdict.ULP, note=note)
    if bool(np.all(close)):
        return replace(measured, verdict=Verdict.CLOSE)
    beyond = int(np.count_nonzero(~close))
    note = f"{beyond} element{'s' if beyond != 1 else ''} beyond rtol/atol"
    return replace(measured, verdict=Verdict.DIVERGENT, note=note)


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------


def _fmt_param(x: float) -> str:
    """Compact tolerance formatting: 1e-4, 1e-5, 0.01, 2.5e-7."""
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _fmt_float(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    return f"{x:.2g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.3g}"


def _fmt_ulp(n: int) -> str:
    return "n/a" if n == ULP_INF else str(n)


def _fmt_pct(frac: float) -> str:
    pct = 100.0 * frac
    if 0 < pct < 0.1:
        return "<0.1 %"
    if 99.9 < pct < 100:
        return ">99.9 %"
    return f"{pct:.1f} %"


def _fmt_at(value: float, idx: Index | None) -> str:
    text = _fmt_float(value)
    return text if idx is None else f"{text} at {idx}"


def _fmt_digest(d: str | None) -> str:
    return "-" if d is None else d[:12]


# --------------------------------------------------------------------------------------------
# comparison result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`: overall verdict, one :class:`TensorDiff` per tensor, tolerance."""

    verdict: Verdict
    tensors: tuple[TensorDiff, ...]
    tolerance: Tolerance

    @property
    def worst(self) -> TensorDiff:
        """The tensor with the worst verdict; ties broken by max ULP, then max |a-b|."""
        return max(self.tensors, key=TensorDiff._severity)

    @property
    def identical(self) -> bool:
        """True if every tensor is bitwise identical."""
        return self.verdict == Verdict.IDENTICAL

    def _ranked(self) -> list[TensorDiff]:
        order = sorted(range(len(self.tensors)), key=lambda i: self.tensors[i]._severity(), reverse=True)
        # sorted(reverse=True) keeps ties in original order, which is what we want
        return [self.tensors[i] for i in order]

    def summary(self) -> str:
        """One line: verdict, how many tensors differ and details of the worst one."""
        n_diff = sum(1 for t in self.tensors if t.verdict != Verdict.IDENTICAL)
        head = f"{self.verdict.name}: {n_diff}/{len(self.tensors)} tensors differ"
        allowed = f"(allowed: {self.tolerance.describe()})"
        if n_diff == 0:
            return f"{head} {allowed}"
        w = self.worst
        if w.structural:
            detail = w.note
        else:
            detail = (
                f"{w.mismatched} / {w.size} elements ({_fmt_pct(w.mismatched_fraction)}), "
                f"max |Δ| {_fmt_at(w.max_abs, w.max_abs_index)}, max rel {_fmt_float(w.max_rel)}, "
                f"max {_fmt_ulp(w.max_ulp)} ULP"
            )
            if w.note:
                detail += f", {w.note}"
        return f"{head}; worst {w.name}: {detail} {allowed}"

    def report(self, max_rows: int = 20) -> str:
        """Multi-line aligned table, one row per tensor (worst first), a and b side by side."""
        header = (
            "tensor",
            "verdict",
            "mismatched",
            "max |Δ|",
            "a vs b there",
            "max rel",
            "max ULP",
            "digest a",
            "digest b",
            "note",
        )
        ranked = self._ranked()
        shown = ranked[: max(max_rows, 0)]
        rows = [header]
        for t in shown:
            rows.append(
                (
                    t.name,
                    str(t.verdict),
                    f"{t.mismatched} / {t.size} ({_fmt_pct(t.mismatched_fraction)})",
                    _fmt_at(t.max_abs, t.max_abs_index),
                    ""
                    if t.value_a is None or t.value_b is None or t.verdict == Verdict.IDENTICAL
                    else f"{t.value_a:.9g} vs {t.value_b:.9g}",
                    _fmt_at(t.max_rel, t.max_rel_index),
                    _fmt_ulp(t.max_ulp),
                    _fmt_digest(t.digest_a),
                    _fmt_digest(t.digest_b),
                    t.note,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [self.summary()]
        for r in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        hidden = ranked[len(shown) :]
        if hidden:
            worst_hidden = max(t.verdict for t in hidden)
            lines.append(f"... {len(hidden)} more tensors not shown (at worst {worst_hidden})")
        lines.append(f"tolerance: {self.tolerance.describe()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (plain Python types; inf/nan floats encoded as strings)."""
        return {
            "verdict": str(self.verdict),
            "identical": self.identical,
            "summary": self.summary(),
            "tolerance": asdict(self.tolerance),
            "tensors": [t.to_dict() for t in self.tensors],
        }


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def _as_tensors(side: str, x: Comparable) -> dict[str, np.ndarray]:
    """Normalise a side to {name: native-byte-order ndarray}."""
    if isinstance(x, (np.ndarray, np.generic)):
        items: Mapping[Any, Any] = {"value": x}
    elif isinstance(x, Mapping):
        items = x
    elif callable(getattr(x, "tensors", None)):
        items = x.tensors()
        if not isinstance(items, Mapping):
            raise TypeError(f"{side}.tensors() must return a Mapping, got {type(items).__name__}")
    else:
        raise TypeError(
            f"cannot compare {side} of type {type(x).__name__}: pass a numpy array, a Mapping of "
            "name -> array, or an object with a tensors() method"
        )
    out: dict[str, np.ndarray] = {}
    for name, value in items.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r} in {side}")
        arr = _native(np.asarray(value))
        _check_supported(name, arr)
        out[name] = arr
    return out


def compare(
    a: Comparable,
    b: Comparable,
    *,
    tolerance: Tolerance | None = None,
    max_ulp: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    names: Iterable[str] | None = None,
) -> Comparison:
    """Compare two runs (arrays, Mappings of arrays, or objects with ``tensors()``) tensor by tensor.

    Keyword overrides replace the matching :class:`Tolerance` fields; `names` restricts the
    comparison to those keys. Keys present on one side only give a DIVERGENT tensor.

    Raises:
        KeyError: a name in `names` exists on neither side.
        ValueError: nothing to compare.
        TypeError: unsupported input or dtype.
    """
    tol = tolerance if tolerance is not None else Tolerance()
    tol = replace(
        tol,
        max_ulp=tol.max_ulp if max_ulp is None else max_ulp,
        rtol=tol.rtol if rtol is None else rtol,
        atol=tol.atol if atol is None else atol,
    )
    ta = _as_tensors("a", a)
    tb = _as_tensors("b", b)
    available = list(ta) + [k for k in tb if k not in ta]
    if names is None:
        selected = available
    else:
        selected = list(dict.fromkeys([names] if isinstance(names, str) else names))
        for name in selected:
            if name not in ta and name not in tb:
                raise KeyError(f"unknown tensor name {name!r}; available: {', '.join(available) or 'none'}")
    if not selected:
        raise ValueError("nothing to compare")
    diffs = tuple(_diff_tensor(name, ta.get(name), tb.get(name), tol) for name in selected)
    verdict = max(d.verdict for d in diffs)
    return Comparison(verdict=Verdict(verdict), tensors=diffs, tolerance=tol)


def assert_reproducible(
    a: Comparable,
    b: Comparable,
    *,
    at_most: Verdict | str = Verdict.IDENTICAL,
    tolerance: Tolerance | None = None,
    names: Iterable[str] | None = None,
) -> Comparison:
    """Compare and raise AssertionError (message: the full report) if worse than `at_most`.

    `at_most` may be a Verdict or its name ("ulp"); `tolerance` (default: `Tolerance()`) and `names` are
    :func:`compare`'s.
    """
    if isinstance(at_most, str) and at_most.upper() not in Verdict.__members__:
        allowed = ", ".join(v.name.lower() for v in Verdict)
        raise ValueError(f"at_most: invalid value {at_most!r}; allowed: a Verdict or one of {allowed}")
    limit = Verdict[at_most.upper()] if isinstance(at_most, str) else Verdict(at_most)
    result = compare(a, b, tolerance=tolerance, names=names)
    if result.verdict > limit:
        raise AssertionError(f"expected at most {limit}, got {result.verdict}\n{result.report()}")
    return result


def assert_identical(a: Comparable, b: Comparable, *, names: Iterable[str] | None = None) -> Comparison:
    """Raise AssertionError with the full report unless every tensor is bitwise identical."""
    return assert_reproducible(a, b, at_most=Verdict.IDENTICAL, names=names)
