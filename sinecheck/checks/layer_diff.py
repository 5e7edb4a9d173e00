"""Down to the layer and the op: where two traces' replays of the same step first differ.

Forward: the first layer call (in the order calls *finish*, so an inner layer before the layer that calls it)
whose output differs; whether its inputs were still equal (inputs equal + output different: this layer's arithmetic
is where the runs part).  Backward: walking the calls from the last begun to the first, the first whose input or
weight gradient differs while the gradient of its output was still equal (this layer's backward arithmetic).  Then,
inside that layer, the first op whose output differs in the two sides' eager op-by-op re-runs (traced for the
first steps only: `sinecheck.keras.replay.OP_STEPS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sinecheck.checks.trace import Trace
from sinecheck.keras.replay import (
    INPUT_GRADIENTS,
    INPUTS,
    OP_STEPS,
    OUTPUT_GRADIENTS,
    OUTPUTS,
    LayerCall,
    Phase,
    digest,
)


@dataclass(frozen=True)
class OpDifference:
    """The first op of a layer call whose output differs between the two sides' eager re-runs: its type, name,
    phase, position among the call's ops of that phase, and whether its inputs were still equal."""

    op_type: str
    name: str
    phase: Phase
    position: int
    inputs_equal: bool

    def describe(self) -> str:
        where = "" if self.phase is Phase.FORWARD else " (backward)"
        inputs = "its inputs were equal" if self.inputs_equal else "its inputs already differed"
        if self.op_type == "ReadVariableOp":  # its input is a handle: the value it reads is the variable's
            inputs = "the variable it reads differs: the layer's state, e.g. a seed generator's"
        return f"first differing op{where}: {self.op_type} '{self.name}' ({inputs})"


@dataclass(frozen=True)
class LayerDifference:
    """The first layer call of a step whose replays differ: the layer's name (its path below the model) and class,
    which of its tensors differs (``output``, ``output gradient``, ``input gradient`` or ``∂loss/∂WEIGHT``), whether
    what it started from was still equal (forward: its inputs; backward: the gradient of its output), the element
    that differs most with both values (None when the step's values were not kept), how many elements differ, and
    the first differing op (or why none is named)."""

    name: str
    class_name: str
    tensor: str
    inputs_equal: bool
    element: tuple[int, ...] | None = None
    value_a: float | None = None
    value_b: float | None = None
    differing: tuple[int, int] | None = None  # (elements that differ, elements)
    op: OpDifference | None = None
    op_note: str | None = None

    @property
    def backward(self) -> bool:
        return self.tensor != "output"

    def describe(self) -> str:
        """e.g. ``layer 'dense_1' (Dense) output[3, 7] = 0.12 vs 0.13 (…); its inputs were equal: …; first differing
        op: MatMul 'dense_1/MatMul' (…)``."""
        at = "" if self.element is None else "[" + ", ".join(str(i) for i in self.element) + "]"
        text = f"layer '{self.name}' ({self.class_name}) {self.tensor}{at}"
        if self.value_a is not None and self.value_b is not None:
            text += f" = {self.value_a:.9g} vs {self.value_b:.9g}"
        if self.differing is not None:
            text += f" ({self.differing[0]} of {self.differing[1]} elements differ)"
        if not self.backward:
            text += (
                "; its inputs were equal: this layer's arithmetic is where the runs part"
                if self.inputs_equal
                else "; its inputs already differed: the runs part before it, in an op outside the layers"
            )
        else:
            text += (
                "; the gradient of its output was equal: this layer's backward arithmetic is where the runs part"
                if self.inputs_equal
                else "; the gradient of its output already differed"
            )
        if self.op is not None:
            text += f"; {self.op.describe()}"
        elif self.op_note:
            text += f"; {self.op_note}"
        return text


def comparable(a: Trace, b: Trace) -> bool:
    """Whether both traces called the same layers in the same way (class, order, depth, weights), so calls can be
    compared one to one (their names may differ)."""

    def shape(calls: list[LayerCall]) -> list[tuple[str, int, int, tuple[int, ...]]]:
        return [(c.class_name, c.start, c.depth, c.weights) for c in calls]

    return bool(a.calls) and shape(a.calls) == shape(b.calls)


def _differs(a: Trace, b: Trace, k: int, i: int, column: int) -> bool:
    return bool(a.digests[k, i, column] != b.digests[k, i, column])


def _element(
    x: np.ndarray, y: np.ndarray
) -> tuple[tuple[int, ...], float | None, float | None, tuple[int, int]] | None:
    """The element where two arrays differ most (bitwise, per dtype: float16/32/64 by their own bits) with both
    values and how many differ; None when they are bitwise equal or not comparable."""
    if x.shape != y.shape or x.dtype != y.dtype:
        return None
    if x.dtype.kind == "f":
        bits = np.dtype(f"u{x.dtype.itemsize}")
        neq = x.view(bits) != y.view(bits)
    else:
        neq = x != y
    flat = np.flatnonzero(neq)
    if not flat.size:
        return None
    if x.dtype.kind in "fiub":
        delta = np.abs(x.ravel()[flat].astype(np.float64) - y.ravel()[flat].astype(np.float64))
        i = int(flat[int(np.argmax(np.nan_to_num(delta, nan=np.inf)))])
        values: tuple[float | None, float | None] = (float(x.ravel()[i]), float(y.ravel()[i]))
    else:
        i, values = int(flat[0]), (None, None)
    element = tuple(int(v) for v in np.unravel_index(i, x.shape)) if x.ndim else ()
    return element, values[0], values[1], (int(flat.size), int(x.size))


#: Which leaf of a call's tensors differs first, and there: the element, both values, (differing, total) elements.
LeafDifference = tuple[int, tuple[tuple[int, ...], float | None, float | None, tuple[int, int]]]


def _leaf_difference(leaves_a: list[np.ndarray], leaves_b: list[np.ndarray]) -> LeafDifference | None:
    for j, (x, y) in enumerate(zip(leaves_a, leaves_b, strict=False)):
        found = _element(x, y)
        if found is not None:
            return j, found
    return None


def _ops(a: Trace, b: Trace, k: int, i: int, phase: Phase) -> tuple[OpDifference | None, str | None]:
    """The first op of call `i` at step `k` whose output differs between the sides, or why none is named."""
    da, db = a.details.get(k), b.details.get(k)
    if da is None or db is None or da.ops is None or db.ops is None:
        return None, f"ops not traced at this step (they are for the first {OP_STEPS} replayed steps)"
    ops_a = [op for op in da.ops[i] if op.phase is phase]
    ops_b = [op for op in db.ops[i] if op.phase is phase]
    if not ops_a or not ops_b:
        return None, "no ops traced: the layer's call could not be re-run on its own"
    for p, (x, y) in enumerate(zip(ops_a, ops_b, strict=False)):
        if x.op_type != y.op_type:
            return None, f"the two sides ran other ops (op {p + 1}: {x.op_type} vs {y.op_type})"
        if x.outputs != y.outputs:
            return OpDifference(x.op_type, x.name, phase, p, x.inputs == y.inputs), None
    if len(ops_a) != len(ops_b):
        return None, f"the two sides ran {len(ops_a)} vs {len(ops_b)} ops"
    eager = [bool(d.eager_matches[i]) if d.eager_matches else False for d in (da, db)]
    sides = {(True, True): "on both sides", (True, False): "on side A only", (False, True): "on side B only"}.get(
        (eager[0], eager[1]), "on neither side"
    )
    return None, (
        f"no op differs when the layer runs eagerly op by op (which reproduces the step's output {sides}): "
        "the runs part in arithmetic the graph fuses"
    )


def forward_difference(a: Trace, b: Trace, k: int) -> LayerDifference | None:
    """The first layer call (inner before outer) whose output differs at step `k`; None when every output agrees."""
    if not comparable(a, b):
        return None
    for i, call in enumerate(a.calls):
        if not _differs(a, b, k, i, OUTPUTS):
            continue
        inputs_equal = not _differs(a, b, k, i, INPUTS)
        found = _kept_difference(a, b, k, i, "outputs")
        tensor = "output"
        if found is not None and len(a.details[k].outputs[i]) > 1:
            tensor = f"output {found[0]}"
        op, note = _ops(a, b, k, i, Phase.FORWARD)
        return _layer_difference(a, b, k, call, tensor, inputs_equal, found, op, note)
    return None


def _kept_difference(a: Trace, b: Trace, k: int, i: int, field: str) -> LeafDifference | None:
    """The first differing element of call `i`'s `field` (outputs, input_gradients, output_gradients) at step `k`,
    or None when a side kept no values for that step."""
    if k not in a.details or k not in b.details:
        return None
    leaves_a: list[np.ndarray] = getattr(a.details[k], field)[i]
    leaves_b: list[np.ndarray] = getattr(b.details[k], field)[i]
    return _leaf_difference(leaves_a, leaves_b)


def _layer_difference(
    a: Trace,
    b: Trace,
    k: int,
    call: LayerCall,
    tensor: str,
    inputs_equal: bool,
    found: LeafDifference | None,
    op: OpDifference | None,
    note: str | None,
) -> LayerDifference:
    """The `LayerDifference` of `call`: with the element found (both values, how many differ), or only the layer and
    op when no element was found (the step's values not kept: the op note says so)."""
    if found is None:
        return LayerDifference(call.name, call.class_name, tensor, inputs_equal, op=op, op_note=_kept(a, b, note, k))
    element, value_a, value_b, count = found[1]
    return LayerDifference(call.name, call.class_name, tensor, inputs_equal, element, value_a, value_b, count, op, note)


def _kept(a: Trace, b: Trace, note: str | None, k: int) -> str | None:
    """The op note, preceded by "values not kept" when a side kept no values for step `k` (beyond its budget)."""
    if k in a.details and k in b.details:
        return note
    kept = f"values not kept at step {k + 1} (a trace keeps them for its first steps)"
    return kept if note is None else f"{kept}; {note}"


def _weight_digests(trace: Trace, k: int) -> list[int]:
    """Per call: the digest of the gradient of the weights it owns at step `k`."""
    offsets = np.cumsum([0] + [size for _, size in trace.gradient_layout])
    row = trace.gradients[k]
    n = len(trace.gradient_layout)
    return [digest([row[offsets[w] : offsets[w + 1]] for w in call.weights if w < n]) for call in trace.calls]


def backward_difference(a: Trace, b: Trace, k: int) -> LayerDifference | None:
    """Walking the calls backwards (last begun first), the first whose input or weight gradient differs while the
    gradient of its output was still equal; else the loss's gradient (the model's output gradient) or the first
    call whose output gradient differs.  None when every gradient agrees."""
    if not comparable(a, b) or a.gradient_layout != b.gradient_layout:
        return None
    weights_a, weights_b = _weight_digests(a, k), _weight_digests(b, k)
    order = sorted(range(len(a.calls)), key=lambda i: a.calls[i].start, reverse=True)
    for i in order:
        if _differs(a, b, k, i, OUTPUT_GRADIENTS):
            continue
        if weights_a[i] != weights_b[i]:
            return _weight_difference(a, b, k, i)
        if _differs(a, b, k, i, INPUT_GRADIENTS):
            op, note = _ops(a, b, k, i, Phase.BACKWARD)
            found = _kept_difference(a, b, k, i, "input_gradients")
            return _layer_difference(a, b, k, a.calls[i], "input gradient", True, found, op, note)
    differing = [i for i in order if _differs(a, b, k, i, OUTPUT_GRADIENTS)]
    if not differing:
        return None
    roots = [i for i in differing if a.calls[i].depth == 0]
    i = roots[0] if roots else differing[0]
    call = a.calls[i]
    found = _kept_difference(a, b, k, i, "output_gradients")
    op, note = (
        (None, "the gradient of the loss with respect to the model's output (the loss's backward pass)")
        if (call.depth == 0)
        else _ops(a, b, k, i, Phase.BACKWARD)
    )
    return _layer_difference(a, b, k, call, "output gradient", False, found, op, note)


def _weight_difference(a: Trace, b: Trace, k: int, i: int) -> LayerDifference:
    """Call `i`'s own weight gradient differs (its output gradient was equal): the weight and element that differ
    most, from the gradients every replayed step keeps."""
    call = a.calls[i]
    offsets = np.cumsum([0] + [size for _, size in a.gradient_layout])
    for w in (w for w in call.weights if w < len(a.gradient_layout)):
        x, y = a.gradients[k][offsets[w] : offsets[w + 1]], b.gradients[k][offsets[w] : offsets[w + 1]]
        found = _element(x, y)
        if found is not None:
            name = a.gradient_layout[w][0]
            element, value_a, value_b, count = found
            op, note = _ops(a, b, k, i, Phase.BACKWARD)
            return LayerDifference(
                call.name, call.class_name, f"∂loss/∂{name}", True, element, value_a, value_b, count, op, note
            )
    return LayerDifference(call.name, call.class_name, "weight gradient", True)
