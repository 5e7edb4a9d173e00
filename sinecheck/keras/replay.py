"""Replay a step of Keras ``fit`` layer by layer: the batch ``fit`` fed it, every layer call's inputs and outputs, the
loss, the gradients, and (for the first steps) every TensorFlow op of each layer call.

How the traced run stays bit for bit the run ``train`` makes, and how the replay is made equal to the step:

* **the batch**: the model's ``train_step`` is wrapped on the instance before ``fit`` builds its train function; the
  wrapper copies the step's ``data`` (x, y, sample weights, any nesting) to Python with a stateful
  ``tf.numpy_function`` and calls the original step.  The copy adds no arithmetic (tested: a trace's final weights
  are `train`'s).  The optimizer is built before ``fit`` (Keras would build it in the first step, with the same
  zeros), so that its slots exist before the first step and can be set back.
* **the replay**: after the step (``on_train_batch_end``) every variable of the model, the optimizer, the metrics
  and the seed generators is set to the value it had before the step, and Keras's own ``train_step`` runs again
  on the captured batch in a graph function traced with the batch signature ``fit`` traced with (grappler's
  fusions apply as in ``fit``).  In that run each layer's ``call`` is wrapped to hand back its inputs and outputs,
  ``compute_loss`` and ``apply_gradients`` to hand back the loss and the gradients (IndexedSlices densified), and
  an outer tape gives the gradient of the loss with respect to each call's inputs and outputs.  The replay's
  variables after the step are compared bit for bit with those ``fit`` left (`ReplayedStep.exact`: when they agree,
  the replay *is* the step), then every variable is set back to what ``fit`` left, exactly.
* **training mode**: the replay runs the step as Keras does (``training=True``) from the seed generators' states
  before the step, so Dropout draws the same masks, BatchNormalization uses the same batch statistics.
* **ops**: for the first steps, each layer call runs again eagerly on its recorded inputs (from the state before
  the step) under a TensorFlow op callback (the mechanism tfdbg2 uses), forward and backward (with the recorded
  gradient of its outputs): each op's type, a name (the layer's name scope + type) and digests of its inputs and
  outputs.  Eager execution runs the ops one by one where the graph may fuse them; `StepDetail.eager_matches`
  says per call whether the eager run reproduced the recorded output.

TensorFlow backend only; Keras 3 and tf_keras.  Memory stays bounded: digests for every step, values of layer
outputs only within a byte budget, ops only for the first steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinecheck.core.enums import TextEnum

#: A Keras or TensorFlow object (model, layer, variable, tensor): imported lazily and not typed here.
KerasObject = Any

#: Bytes of layer outputs and output gradients a replayer keeps as values over all steps (then only digests).
DETAIL_BYTES = 64 * 2**20
#: At most this many steps keep values.
DETAIL_STEPS = 16
#: Steps whose ops are traced (each layer call re-run eagerly under an op callback).
OP_STEPS = 2
#: The digest columns of a layer call, in `ReplayedStep.digests`.
DIGEST_COLUMNS = ("inputs", "outputs", "output gradients", "input gradients")
INPUTS, OUTPUTS, OUTPUT_GRADIENTS, INPUT_GRADIENTS = range(4)
#: The digest of "nothing to digest" (no float inputs, no gradient): equal on both sides.
NO_DIGEST = 0


def digest(arrays: Sequence[np.ndarray]) -> int:
    """A 63-bit digest of arrays' dtypes, shapes and bytes (bitwise: -0.0 is not 0.0); `NO_DIGEST` for none."""
    if not arrays:
        return NO_DIGEST
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(b"".join(bytes(v) for v in a.ravel()) if a.dtype.kind == "O" else np.ascontiguousarray(a).tobytes())
    return int.from_bytes(h.digest(), "little") >> 1 or 1


class Phase(TextEnum):
    """Whether an op ran in a layer call's forward pass or in its backward pass (the gradient)."""

    FORWARD = "forward"
    BACKWARD = "backward"


@dataclass(frozen=True)
class LayerCall:
    """One call of a layer in a replayed step: its name (its path below the model: ``lstm_1/lstm_cell``), class,
    when it began and how deep it ran.  Calls are listed in the order they *finished* (an inner layer
    before the layer that calls it); `start` is the order they began (the model itself is 0), `depth` how many
    calls enclose it, `weights` the indices (into the trainable weights) of the weights this layer owns itself
    (not through an inner layer)."""

    name: str
    class_name: str
    start: int
    depth: int
    weights: tuple[int, ...] = ()

    def to_json(self) -> list[Any]:
        return [self.name, self.class_name, self.start, self.depth, list(self.weights)]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> LayerCall:
        return cls(str(value[0]), str(value[1]), int(value[2]), int(value[3]), tuple(int(i) for i in value[4]))


@dataclass(frozen=True)
class OpRecord:
    """One TensorFlow op of a layer call, run eagerly: its type, a name (the name scope it ran in + type, numbered
    like TensorFlow numbers graph ops) and digests of its inputs and outputs."""

    phase: Phase
    op_type: str
    name: str
    inputs: int
    outputs: int

    def to_json(self) -> list[Any]:
        return [str(self.phase), self.op_type, self.name, f"{self.inputs:x}", f"{self.outputs:x}"]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> OpRecord:
        return cls(Phase(value[0]), str(value[1]), str(value[2]), int(value[3], 16), int(value[4], 16))


@dataclass
class StepDetail:
    """Values of a replayed step: each call's output arrays, the gradient of the loss with respect to them and
    to its float inputs (empty where there are none), and, for the first steps, each call's ops and whether its
    eager re-run reproduced its recorded output."""

    outputs: list[list[np.ndarray]]
    output_gradients: list[list[np.ndarray]]
    input_gradients: list[list[np.ndarray]]
    ops: list[list[OpRecord]] | None = None
    eager_matches: list[bool] | None = None

    @property
    def nbytes(self) -> int:
        values = (*self.outputs, *self.output_gradients, *self.input_gradients)
        return sum(a.nbytes for leaves in values for a in leaves)


@dataclass
class ReplayedStep:
    """What the replay of one step found: whether it reproduced ``fit``'s step bit for bit, the digest of the
    batch, the loss, the weights' gradients (flattened in trainable-weight order), the layer calls with digests
    (rows: calls, columns: `DIGEST_COLUMNS`) and, within the budget, their values."""

    exact: bool
    batch: int
    loss: float
    gradients: np.ndarray
    calls: tuple[LayerCall, ...]
    digests: np.ndarray
    detail: StepDetail | None = None


# -- layer calls -------------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """A layer call as the wrapper saw it: the layer, when it began, how deep, its arguments and its outputs."""

    layer: KerasObject
    path: str
    start: int
    depth: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: Any


@dataclass
class _CallLog:
    """The calls of one run in the order they finished, and the stack of calls under way."""

    calls: list[_Call] = field(default_factory=list)
    stack: list[KerasObject] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)


def model_layers(model: KerasObject) -> list[KerasObject]:
    """The model and every layer inside it (nested ones too), outer before inner."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return [model]
    return list(flatten(include_self=True, recursive=True))


@contextlib.contextmanager
def _wrapped_calls(layers: Sequence[KerasObject], log: _CallLog) -> Iterator[None]:
    """Each layer's ``call`` wrapped on its instance so that `log` gets every call (Keras's ``__call__`` looks
    ``call`` up on the instance); the wrappers are removed afterwards."""
    saved: list[tuple[KerasObject, bool, Any]] = []

    def wrap(layer: KerasObject, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start, depth = next(log.counter), len(log.stack)
            path = "/".join([str(outer.name) for outer in log.stack[1:]] + [str(layer.name)])
            log.stack.append(layer)
            try:
                outputs = original(*args, **kwargs)
            finally:
                log.stack.pop()
            log.calls.append(_Call(layer, path, start, depth, args, kwargs, outputs))
            return outputs

        return call

    try:
        for layer in layers:
            own = "call" in vars(layer)
            original = layer.call
            saved.append((layer, own, original))
            object.__setattr__(layer, "call", wrap(layer, original))
        yield
    finally:
        for layer, own, original in saved:
            if own:
                object.__setattr__(layer, "call", original)
            else:
                object.__delattr__(layer, "call")


@contextlib.contextmanager
def _intercepted(model: KerasObject, grabbed: dict[str, Any]) -> Iterator[None]:
    """``compute_loss``, the optimizer's ``scale_loss`` and ``apply_gradients`` wrapped on their instances so that
    the loss, the scaled loss and the gradients a train step computes land in `grabbed`."""
    optimizer = getattr(model, "optimizer", None)
    targets: list[tuple[KerasObject, str, str]] = [(model, "compute_loss", "loss")]
    if optimizer is not None:
        targets += [(optimizer, "scale_loss", "scaled_loss"), (optimizer, "apply_gradients", "gradients")]
    saved: list[tuple[KerasObject, str, bool, Any]] = []

    def wrap(original: Callable[..., Any], key: str) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            if key == "gradients":
                pairs = list(args[0] if args else kwargs.pop("grads_and_vars"))
                grabbed[key] = {id(v): g for g, v in pairs}
                return original(pairs, *args[1:], **kwargs)
            result = original(*args, **kwargs)
            grabbed[key] = result
            return result

        return method

    try:
        for owner, name, key in targets:
            original = getattr(owner, name, None)
            if original is None:
                continue
            saved.append((owner, name, name in vars(owner), original))
            object.__setattr__(owner, name, wrap(original, key))
        yield
    finally:
        for owner, name, own, original in saved:
            if own:
                object.__setattr__(owner, name, original)
            else:
                object.__delattr__(owner, name)


# -- the trace of a replay function: which tensors it returns and what they are --------------------------------


@dataclass(frozen=True)
class _Slot:
    """Where a tensor argument of a layer call went in the replay function's returned tensors."""

    index: int


@dataclass
class _CallMeta:
    """A call of the replay function's trace: its public description, the layer, where its input and output
    tensors are among the returned ones, and its arguments with `_Slot` s for tensors (None when some argument
    could not be returned, so the call cannot be re-run)."""

    call: LayerCall
    layer: KerasObject
    inputs: list[int]
    outputs: list[int]
    template: tuple[Any, dict[str, Any]] | None


@dataclass
class _TraceMeta:
    """What one trace of the replay function returns: the calls, and which returned tensors have gradients (floats)."""

    calls: list[_CallMeta] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)


def _is_float(dtype: KerasObject) -> bool:
    return bool(getattr(dtype, "is_floating", False))


# -- the replayer ------------------------------------------------------------------------------------------------


class StepReplayer:
    """Captures the batch of every ``fit`` step of `model` and replays the step (see the module doc).  Values are
    kept for the first `detail_steps` replayed steps within `detail_bytes`, ops traced for the first `op_steps`; with
    `focus`, values and ops for that one step only (a second trace aimed at a step found by a first).

    Use: `install` before ``fit``; from a callback, `begin` at ``on_train_batch_begin`` and `end` at
    ``on_train_batch_end`` (which returns the `ReplayedStep`, or None with the reason in `problem`); `uninstall`
    after ``fit``."""

    def __init__(
        self,
        model: KerasObject,
        *,
        detail_bytes: int = DETAIL_BYTES,
        detail_steps: int = DETAIL_STEPS,
        op_steps: int = OP_STEPS,
        focus: int | None = None,
    ) -> None:
        self.model = model
        self.layers = model_layers(model)
        self.trainable = list(model.trainable_weights)
        self.detail_bytes, self.detail_steps, self.op_steps = detail_bytes, detail_steps, op_steps
        self.problem: str | None = None  # why the last step was not replayed (None: it was)
        self.steps = 0  # steps replayed so far
        self.focus = focus  # the one step (0-based, of fit's steps) that keeps values and ops; None: the first ones
        self._step = -1  # the index of fit's step being ended
        self._owned = self._owned_weights()
        self._batches: list[tuple[int, list[np.ndarray]]] = []
        self._signatures: list[Any] = []  # per trace of the capturing step: the data's structure of TypeSpecs
        self._functions: dict[int, tuple[Any, _TraceMeta]] = {}
        self._original_step: Callable[..., Any] | None = None
        self._own_step = False
        self._pre: dict[int, tuple[KerasObject, np.ndarray]] = {}
        self._mark = 0
        self.installed = False

    # -- installing ------------------------------------------------------------------------------------------

    def install(self) -> None:
        """Build the optimizer and wrap ``train_step`` to capture every batch; refused (with `problem` set) for a
        train step XLA compiles (a NumPy function cannot run inside it, and the replay would not be XLA's), or when
        the model does not let itself be wrapped."""
        if getattr(self.model, "jit_compile", False) is True:
            self.problem = "the train step is XLA-compiled (jit_compile=True), which the replay does not reproduce"
            return
        try:
            self._install()
        except Exception as exc:
            self.problem = f"the replay could not be set up ({type(exc).__name__}: {_quoted(exc)})"

    def _install(self) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        built = getattr(optimizer, "built", getattr(optimizer, "_built", False))  # Keras 3, tf_keras (unset: not)
        if optimizer is not None and built is False and hasattr(optimizer, "build"):
            optimizer.build(self.trainable)
        self._own_step = "train_step" in vars(self.model)
        self._original_step = self.model.train_step
        object.__setattr__(self.model, "train_step", self._capturing(self.model.train_step))
        self.installed = True

    def uninstall(self) -> None:
        """Give the model its own ``train_step`` back."""
        if not self.installed:
            return
        if self._own_step:
            object.__setattr__(self.model, "train_step", self._original_step)
        else:
            object.__delattr__(self.model, "train_step")
        self.installed = False

    def _capturing(self, step: Callable[..., Any]) -> Callable[..., Any]:
        import tensorflow as tf

        def train_step(data: Any) -> Any:
            key = len(self._signatures)

            def keep(*arrays: np.ndarray) -> np.int32:
                self._batches.append((key, [np.array(a) for a in arrays]))
                return np.int32(0)

            try:
                signature = tf.nest.map_structure(lambda t: tf.type_spec_from_value(t) if tf.is_tensor(t) else t, data)
                tensors = [t for t in tf.nest.flatten(data, expand_composites=True) if tf.is_tensor(t)]
                tf.numpy_function(keep, tensors, tf.int32, stateful=True, name="sinecheck_capture")
            except Exception as exc:  # data the capture cannot copy: fit trains on, without replays
                self.problem = f"the batch could not be captured ({type(exc).__name__}: {_quoted(exc)})"
                signature = None
            self._signatures.append(signature)
            return step(data)

        return train_step

    def _owned_weights(self) -> dict[int, tuple[int, ...]]:
        """id(layer) -> the indices of the trainable weights it owns itself (the innermost layer holding one)."""
        index = {id(w): i for i, w in enumerate(self.trainable)}
        owner: dict[int, int] = {}
        for layer in self.layers:  # outer before inner: an inner layer takes its weights over
            for w in getattr(layer, "trainable_weights", []):
                if id(w) in index:
                    owner[index[id(w)]] = id(layer)
        owned: dict[int, list[int]] = {}
        for i, layer_id in sorted(owner.items()):
            owned.setdefault(layer_id, []).append(i)
        return {k: tuple(v) for k, v in owned.items()}

    # -- state -----------------------------------------------------------------------------------------------

    def _variables(self, *, all_state: bool) -> list[KerasObject]:
        """The model's and optimizer's variables (with `all_state`: the metrics' and the global random generators'
        too), each once."""
        model = self.model
        groups: list[Any] = [model.variables]
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            variables = optimizer.variables
            groups.append(variables() if callable(variables) else variables)
        if all_state:
            groups += [getattr(m, "variables", []) for m in getattr(model, "metrics", [])]
            groups.append(_global_generator_states())
        seen: dict[int, KerasObject] = {}
        for group in groups:
            for v in group:
                seen.setdefault(id(v), v)
        return list(seen.values())

    def _snapshot(self, *, all_state: bool = True) -> dict[int, tuple[KerasObject, np.ndarray]]:
        return {id(v): (v, np.array(v.numpy())) for v in self._variables(all_state=all_state)}

    @staticmethod
    def _assign(snapshot: dict[int, tuple[KerasObject, np.ndarray]]) -> None:
        for v, value in snapshot.values():
            v.assign(value)

    # -- steps -----------------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Before a step: remember every variable's value."""
        if self.installed:
            self._pre = self._snapshot()
            self._mark = len(self._batches)

    def end(self) -> ReplayedStep | None:
        """After a step: replay it (see the module doc); None, with the reason in `problem`, when it cannot be."""
        self._step += 1
        if not self.installed:
            return None
        batches = self._batches[self._mark :]
        del self._batches[:]
        if len(batches) != 1:
            self.problem = (
                f"fit reported {len(batches)} steps at once (steps_per_execution > 1): a step cannot be replayed alone"
            )
            return None
        if self._signatures[batches[0][0]] is None:
            return None
        post = self._snapshot()
        try:
            replayed = self._replay(*batches[0], post)
        except Exception as exc:  # a model the replay cannot run: the trace goes on without it
            self.problem = f"the replay raised {type(exc).__name__}: {_quoted(exc)}"
            return None
        finally:
            self._assign(post)
        self.problem = None
        self.steps += 1
        return replayed

    def _data(self, key: int, arrays: list[np.ndarray]) -> Any:
        import tensorflow as tf

        signature = self._signatures[key]
        leaves = iter(arrays)
        flat = [
            tf.constant(next(leaves)) if isinstance(s, tf.TypeSpec) else s
            for s in tf.nest.flatten(signature, expand_composites=True)
        ]
        return tf.nest.pack_sequence_as(signature, flat, expand_composites=True)

    def _replay(
        self, key: int, arrays: list[np.ndarray], post: dict[int, tuple[KerasObject, np.ndarray]]
    ) -> ReplayedStep:
        self._assign(self._pre)
        function, meta = self._function(key)
        result = function(self._data(key, arrays))
        after = self._snapshot(all_state=False)
        exact = all(value.tobytes() == post[i][1].tobytes() for i, (_, value) in after.items() if i in post)
        tensors = [np.asarray(t) for t in result["tensors"]]
        gradients_of = dict(zip(meta.sources, (np.asarray(g) for g in result["tensor_gradients"]), strict=True))
        rows, outputs, output_gradients, input_gradients = [], [], [], []
        for c in meta.calls:
            outs = [tensors[i] for i in c.outputs]
            grads = [gradients_of[i] for i in c.outputs if i in gradients_of]
            grads_in = [gradients_of[i] for i in c.inputs if i in gradients_of]
            rows.append((digest([tensors[i] for i in c.inputs]), digest(outs), digest(grads), digest(grads_in)))
            outputs.append(outs)
            output_gradients.append(grads)
            input_gradients.append(grads_in)
        detail: StepDetail | None = StepDetail(outputs, output_gradients, input_gradients)
        assert detail is not None
        if self.focus is not None:
            keep = ops = self._step == self.focus
        else:
            keep = self.steps < self.detail_steps and detail.nbytes <= self.detail_bytes
            ops = keep and self.steps < self.op_steps
        if not keep:
            detail = None
        else:
            self.detail_bytes -= detail.nbytes
            if ops:
                detail.ops, detail.eager_matches = self._trace_ops(meta, tensors, gradients_of)
        weights = [np.asarray(g, np.float32).ravel() for g in result["gradients"]]
        return ReplayedStep(
            exact,
            digest(arrays),
            float(np.asarray(result["loss"])),
            np.concatenate(weights) if weights else np.zeros(0, np.float32),
            tuple(c.call for c in meta.calls),
            np.array(rows, np.uint64).reshape(len(rows), len(DIGEST_COLUMNS)),
            detail,
        )

    # -- the replay function ---------------------------------------------------------------------------------

    def _function(self, key: int) -> tuple[Any, _TraceMeta]:
        """The replay function for batches of the capturing step's trace `key`, traced for that trace's batch
        signature (so its shapes are those ``fit`` traced with), and what it returns."""
        if key not in self._functions:
            import tensorflow as tf

            meta = _TraceMeta()
            function = tf.function(self._body(meta), autograph=False)
            self._functions[key] = (function.get_concrete_function(self._signatures[key]), meta)
        return self._functions[key]

    def _body(self, meta: _TraceMeta) -> Callable[[Any], dict[str, Any]]:
        import tensorflow as tf

        assert self._original_step is not None
        original_step = self._original_step

        def replay(data: Any) -> dict[str, Any]:
            graph = tf.compat.v1.get_default_graph()
            log, grabbed = _CallLog(), dict[str, Any]()
            with _wrapped_calls(self.layers, log), _intercepted(self.model, grabbed), tf.GradientTape() as outer:
                original_step(data)
            tensors: list[Any] = []
            slot_of: dict[int, int] = {}

            def slot(t: Any) -> int | None:
                if not tf.is_tensor(t) or isinstance(t, tf.Variable) or getattr(t, "graph", None) is not graph:
                    return None
                if id(t) not in slot_of:
                    slot_of[id(t)] = len(tensors)
                    tensors.append(t)
                return slot_of[id(t)]

            for c in log.calls:
                found = [slot(t) for t in tf.nest.flatten(c.outputs, expand_composites=True) if tf.is_tensor(t)]
                outs = [i for i in found if i is not None]
                if not outs or len(outs) != len(found):
                    continue  # a call inside a loop or branch (an LSTM's cell): its tensors live in another graph
                leaves = [t for t in tf.nest.flatten((c.args, c.kwargs), expand_composites=True) if tf.is_tensor(t)]
                ins = [slot(t) for t in leaves]
                template = None
                if None not in ins:
                    template = tf.nest.map_structure(
                        lambda t: _Slot(slot_of[id(t)]) if id(t) in slot_of and tf.is_tensor(t) else t,
                        (c.args, c.kwargs),
                    )
                call = LayerCall(c.path, type(c.layer).__name__, c.start, c.depth, self._owned.get(id(c.layer), ()))
                meta.calls.append(_CallMeta(call, c.layer, [i for i in ins if i is not None], outs, template))
            meta.sources[:] = [i for i, t in enumerate(tensors) if _is_float(t.dtype)]
            loss = grabbed.get("scaled_loss", grabbed.get("loss"))
            tensor_gradients: list[Any] = []
            if loss is not None and meta.sources:
                tensor_gradients = outer.gradient(
                    loss, [tensors[i] for i in meta.sources], unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
            else:
                meta.sources[:] = []
            by_variable = grabbed.get("gradients", {})
            gradients = [
                tf.zeros(w.shape, tf.float32)
                if by_variable.get(id(w)) is None
                else tf.cast(tf.convert_to_tensor(by_variable[id(w)]), tf.float32)
                for w in self.trainable
            ]
            unscaled = grabbed.get("loss")
            return {
                "loss": tf.constant(np.nan, tf.float32) if unscaled is None else tf.cast(unscaled, tf.float32),
                "gradients": gradients,
                "tensors": tensors,
                "tensor_gradients": list(tensor_gradients),
            }

        return replay

    # -- ops -------------------------------------------------------------------------------------------------

    def _trace_ops(
        self, meta: _TraceMeta, tensors: list[np.ndarray], gradients_of: dict[int, np.ndarray]
    ) -> tuple[list[list[OpRecord]], list[bool]]:
        """Each call re-run eagerly from the state before the step on its recorded inputs, forward then backward,
        under an op callback: its ops, and whether the re-run reproduced the recorded output."""
        ops: list[list[OpRecord]] = []
        matches: list[bool] = []
        for c in meta.calls:
            self._assign(self._pre)
            try:
                recorded, outputs = self._ops_of(c, tensors, gradients_of)
            except Exception:  # a call that cannot run alone (it needs its caller's context): no ops
                ops.append([])
                matches.append(False)
                continue
            ops.append(recorded)
            matches.append(digest(outputs) == digest([tensors[i] for i in c.outputs]))
        return ops, matches

    def _ops_of(
        self, c: _CallMeta, tensors: list[np.ndarray], gradients_of: dict[int, np.ndarray]
    ) -> tuple[list[OpRecord], list[np.ndarray]]:
        import tensorflow as tf
        from tensorflow.python.eager import context
        from tensorflow.python.framework import op_callbacks

        if c.template is None:
            return [], []
        constants = {i: tf.constant(tensors[i]) for i in c.inputs}
        args, kwargs = tf.nest.map_structure(lambda s: constants[s.index] if isinstance(s, _Slot) else s, c.template)
        watched = [constants[i] for i in c.inputs if i in gradients_of]
        log = _CallLog()
        recorded: list[OpRecord] = []
        names: dict[str, int] = {}
        phase = [Phase.FORWARD]
        parent = c.call.name.rpartition("/")[0] + "/" if "/" in c.call.name else ""  # the layer's scope is its own

        def callback(
            op_type: Any, inputs: Any, attrs: Any, outputs: Any, op_name: Any = None, graph: Any = None
        ) -> None:
            if graph is not None or (phase[0] is Phase.FORWARD and (not log.stack or log.stack[-1] is not c.layer)):
                return
            kind = op_type.decode() if isinstance(op_type, bytes) else str(op_type)
            scope = context.context().scope_name
            base = f"{parent}{scope}{kind}" if scope else f"{c.call.name}/gradients/{kind}"
            n = names.get(base, 0)
            names[base] = n + 1
            recorded.append(
                OpRecord(
                    phase[0], kind, base if n == 0 else f"{base}_{n}", _digest_tensors(inputs), _digest_tensors(outputs)
                )
            )

        with _wrapped_calls(self.layers, log), tf.GradientTape() as tape:
            tape.watch(watched)
            op_callbacks.add_op_callback(callback)
            try:
                result = c.layer(*args, **kwargs)
            finally:
                op_callbacks.remove_op_callback(callback)
        outputs = [t for t in tf.nest.flatten(result, expand_composites=True) if tf.is_tensor(t)]
        pairs = [(t, gradients_of[i]) for t, i in zip(outputs, c.outputs, strict=False) if i in gradients_of]
        sources = watched + list(getattr(c.layer, "trainable_weights", []))
        if pairs and sources:
            phase[0] = Phase.BACKWARD
            op_callbacks.add_op_callback(callback)
            try:
                tape.gradient(
                    [t for t, _ in pairs],
                    sources,
                    output_gradients=[tf.constant(g) for _, g in pairs],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
            finally:
                op_callbacks.remove_op_callback(callback)
        return recorded, [np.asarray(t) for t in outputs]


def _quoted(exc: BaseException) -> str:
    """An exception's text on one line, at most 300 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def _digest_tensors(tensors: Sequence[Any]) -> int:
    """`digest` of eager tensors' values (resource and variant handles count by dtype only)."""
    arrays = []
    for t in tensors:
        try:
            arrays.append(np.asarray(t.numpy()))
        except Exception:
            arrays.append(np.array(str(getattr(t, "dtype", "?"))))
    return digest(arrays)


def _global_generator_states() -> list[KerasObject]:
    """The state variables of the process-wide random generators that exist (none is created): Keras 3's global
    seed generator (unseeded ``keras.random`` ops) and TensorFlow's global ``tf.random.Generator``."""
    states = []
    global_state = sys.modules.get("keras.src.backend.common.global_state")
    keras_generator = None if global_state is None else global_state.get_global_attribute("global_seed_generator")
    if keras_generator is not None:
        states.append(keras_generator.state)
    stateful = sys.modules.get("tensorflow.python.ops.stateful_random_ops")
    tf_generator = getattr(stateful, "global_generator", None)
    if tf_generator is not None:
        states.append(tf_generator.state)
    return states
