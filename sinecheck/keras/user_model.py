"""Bring your own model: build a spec's Keras model (and its `FitSpec`), build its weights, and check it against
the data before anything trains."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.data import TrainingData
from sinecheck.core.specs import load_callable, spec_error
from sinecheck.core.structure import map_leaves, named_leaves
from sinecheck.keras.compiled import compile_arguments
from sinecheck.keras.fit_spec import FitSpec
from sinecheck.keras.runtime import is_compiled, keras_module
from sinecheck.keras.user_data import Leaf, build_batch, input_leaves, named_outputs

#: Longest exception text quoted in a one-line error.
_QUOTE = 300
#: Terminal colour codes (Keras 3 bolds parts of its messages).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def build_spec_model(config: TrainConfig, data: TrainingData, *, noise: tuple[float, int] | None = None) -> FitSpec:
    """The model of ``config.model`` (a `sinecheck.core.specs` factory) with its callbacks and fit arguments,
    its weights built (`ensure_built`) and its inputs checked against the training data.

    `noise` wraps it so a ``GaussianNoise`` layer perturbs its outputs in training (the injected-noise negative
    control); the wrapper adds no weights, so weight names and initial weights stay those of the model.
    """
    assert config.model is not None
    fit_spec = build_fit_spec(config.model)
    model = fit_spec.model
    ensure_built(model, data, batch_size=config.batch_size, spec=config.model)
    check_input_leaves(model, input_leaves(data), spec=config.model)
    if noise is not None:
        model = _with_noise(model, noise, data, config.batch_size)
    return dataclasses.replace(fit_spec, model=model)


def build_fit_spec(spec: str) -> FitSpec:
    """Call a model spec's factory: a Keras model becomes ``FitSpec(model)``; a FitSpec's model must be one too."""
    factory = load_callable(spec, kind="model")
    try:
        made = factory()
    except Exception as exc:
        raise spec_error("model", spec, f"the factory raised {type(exc).__name__}: {quoted_error(exc)}") from None
    fit_spec = made if isinstance(made, FitSpec) else FitSpec(made)
    keras = keras_module()
    if not isinstance(fit_spec.model, keras.Model):
        what = "its FitSpec's model is" if isinstance(made, FitSpec) else "the factory returned"
        raise spec_error(
            "model",
            spec,
            f"{what} a {type(fit_spec.model).__name__}, not a Keras model ({keras.__name__}.Model) or a "
            "sinecheck.FitSpec of one",
        )
    return fit_spec


def build_from_spec(spec: str) -> Any:
    """Call a model spec's factory and check that it returned a Keras model (or a FitSpec): the model."""
    return build_fit_spec(spec).model


def ensure_built(model: Any, data: TrainingData, *, batch_size: int, spec: str) -> None:
    """Make a model's weights exist before anything records them: a subclassed model (or a Sequential without an
    ``Input``) is called once on a batch of the data, in inference mode.  A model that still has no weights is a
    one-line SpecError."""
    if getattr(model, "built", False) and model.weights:
        return
    try:
        model(build_batch(data, batch_size), training=False)
    except Exception as exc:
        raise spec_error(
            "model",
            spec,
            f"calling the model on a batch of the data to build its weights raised {type(exc).__name__}: "
            f"{quoted_error(exc)}",
        ) from None
    if not model.weights:
        raise spec_error(
            "model",
            spec,
            "the model has no weights after a call on a batch of the data (inference mode); allowed: a model whose "
            "layers create their weights when it is called (or one built with keras.Input / model.build)",
        )


def quoted_error(exc: BaseException) -> str:
    """An exception's message on one line, without Keras's call context ("Exception encountered when calling …",
    "Arguments received by …"), TensorFlow's "in user code" frames or terminal colours, at most `_QUOTE` characters."""
    lines = []
    for raw in _ANSI.sub("", str(exc)).splitlines():
        line = raw.strip()
        if line.startswith(("Arguments received by", "Call arguments received by")):
            break
        if not line or line.startswith(("Exception encountered when calling", "in user code:", 'File "')):
            continue
        lines.append(line)
    text = " ".join(" ".join(lines).split()) or type(exc).__name__
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def _shape(tensor: Any) -> tuple[int | None, ...]:
    shape = tensor.shape
    return tuple(shape.as_list() if hasattr(shape, "as_list") else shape)


def output_shapes(model: Any, data: TrainingData, *, batch_size: int) -> dict[str, tuple[int | None, ...]]:
    """Each output's shape (sample axis first, None where open), by `output_names`: read from a functional model's
    graph, else from one inference call on a batch of the data."""
    inner = getattr(model, "sinecheck_inner", model)
    outputs = _symbolic_outputs(inner)
    if outputs is None:  # a subclassed model has no graph
        outputs = inner(build_batch(data, batch_size), training=False)
    return {name: _shape(value) for name, value in named_outputs(inner, outputs).items()}


def _symbolic_outputs(model: Any) -> Any:
    """A graph model's outputs in its structure (a tensor, a list or a dict), or None for a model without a graph."""
    for attribute in ("output", "outputs"):  # (a Keras 3 Sequential has only the list)
        try:
            outputs = getattr(model, attribute)
        except (AttributeError, ValueError):
            continue
        if isinstance(outputs, list) and len(outputs) == 1:
            return outputs[0]
        if outputs is not None and (not isinstance(outputs, list) or outputs):
            return outputs
    return None


def graph_inputs(model: Any) -> list[tuple[str, Any]] | None:
    """(name, symbolic tensor) of each input of a model with a graph (functional, Sequential with an Input); None
    for a subclassed model or one without inputs yet."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return [(str(getattr(t, "name", f"input{i}")).split(":")[0], t) for i, t in enumerate(inputs)]


def _model_inputs(model: Any) -> list[tuple[str, tuple[int | None, ...]]] | None:
    """(name, shape) of each input of a model with a graph; else None."""
    inputs = graph_inputs(model)
    return None if inputs is None else [(name, _shape(t)) for name, t in inputs]


def check_fits(model: Any, x: Any, *, spec: str) -> None:
    """Fail with a one-line error when the model's inputs cannot take `x` (an array, a tuple of them or a dict by
    input name; batch axis aside)."""
    leaves = [Leaf(name, tuple(np.shape(a)), str(np.asarray(a).dtype)) for name, a in named_leaves(x)]
    check_input_leaves(model, leaves, spec=spec)


def check_input_leaves(model: Any, leaves: list[Leaf], *, spec: str) -> None:
    """`check_fits` on the data's input arrays as `Leaf` s (shapes known before training, also of a pipeline)."""
    inputs = _model_inputs(model)
    if inputs is not None:
        problem = _one_keyed_input_problem(model, inputs, leaves) or _input_problem(inputs, leaves)
        if problem is not None:
            raise spec_error("model", spec, problem)


def _one_keyed_input_problem(
    model: Any, inputs: list[tuple[str, tuple[int | None, ...]]], leaves: list[Leaf]
) -> str | None:
    """A dict x for a model with one input: a Sequential takes no dict, a functional model only its input's name."""
    keys = [leaf.name for leaf in leaves]
    if len(inputs) != 1 or not keys or not all(k and not k.isdigit() for k in keys):
        return None
    if type(model).__name__ == "Sequential":
        return (
            f"x is a dict (keys {keys}) but a Sequential model takes one array; allowed: x as one array, or a "
            "functional model whose keras.Input(name=...) names the dict's key"
        )
    name = inputs[0][0]
    if keys != [name]:
        return (
            f"the model's input is {name!r} but x has keys {sorted(keys)}; allowed: a dict keyed by the model's input "
            "name, or one array"
        )
    return None


def _input_problem(inputs: list[tuple[str, tuple[int | None, ...]]], leaves: list[Leaf]) -> str | None:
    """Why the model's inputs (name, shape) cannot take the data's input arrays, or None."""
    names = [name for name, _ in inputs]
    if len(inputs) == 1 and len(leaves) == 1:
        pairs = [(inputs[0], leaves[0])]
    elif all(leaf.name and not leaf.name.isdigit() for leaf in leaves):  # a dict by input name
        given = {leaf.name: leaf for leaf in leaves}
        if any(name not in given for name in names):
            return (
                f"the model's inputs are {names} but x has keys {sorted(given)}; allowed: a dict keyed by the "
                "model's input names, or a tuple of arrays in its input order"
            )
        pairs = [((name, shape), given[name]) for name, shape in inputs]
    elif len(inputs) != len(leaves):
        what = "one array" if len(leaves) == 1 else f"{len(leaves)} arrays"
        return (
            f"the model has {len(inputs)} inputs {names} but x is {what}; allowed: a tuple of {len(inputs)} arrays "
            "in the model's input order, or a dict keyed by its input names"
        )
    else:
        pairs = list(zip(inputs, leaves, strict=True))
    for (name, shape), leaf in pairs:
        if not _fits(leaf.shape[1:], shape[1:]):
            which = "input shape" if len(inputs) == 1 else f"input {name!r} has shape"
            label = "x" if leaf.name == "" else f"x[{leaf.name!r}]"
            return (
                f"the model's {which} {tuple(shape)} does not fit the data: {label} has shape {leaf.shape} "
                "(samples first)"
            )
    return None


def _fits(got: tuple[int | None, ...], expected: tuple[int | None, ...]) -> bool:
    """Whether per-sample shape `got` fits `expected` (None fits anything), also one axis of size 1 more or less
    at the end: Keras adds or drops it itself (an (n,) array fits an input of shape (None, 1))."""
    candidates = [got, (*got, 1)] + ([got[:-1]] if got and got[-1] == 1 else [])
    return any(
        len(c) == len(expected) and all(e is None or g is None or e == g for e, g in zip(expected, c, strict=True))
        for c in candidates
    )


def _with_noise(model: Any, noise: tuple[float, int], data: TrainingData, batch_size: int) -> Any:
    """`model` behind a GaussianNoise(stddev, seed) on each output, active in training only; compiled like the
    model when the factory compiled it."""
    keras = keras_module()
    inputs = _model_inputs(model)
    if inputs is not None and len(inputs) == 1 and not isinstance(_symbolic_outputs(model), (Mapping, tuple, list)):
        graph_input = keras.Input(shape=tuple(inputs[0][1][1:]), dtype=model.inputs[0].dtype)
        wrapped = keras.Model(graph_input, keras.layers.GaussianNoise(noise[0], seed=noise[1])(model(graph_input)))
        wrapped.sinecheck_inner = model
    else:
        wrapped = _noisy_wrapper(model, noise)
        wrapped(build_batch(data, batch_size), training=False)
    if is_compiled(model):  # as the factory compiled it (losses, loss weights, metrics), with a fresh optimizer
        arguments = compile_arguments(model) or {"loss": model.loss}
        optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config())
        wrapped.compile(**{**arguments, "optimizer": optimizer})
    return wrapped


def _noisy_wrapper(model: Any, noise: tuple[float, int]) -> Any:
    """A subclassed wrapper (any inputs, any outputs) that keeps the model's output names for its losses."""
    keras = keras_module()
    model_base: Any = keras.Model  # keras is resolved at run time (Keras 3 or tf_keras)

    class Noisy(model_base):
        def __init__(self) -> None:
            super().__init__()
            self.sinecheck_inner = model
            self.noise = keras.layers.GaussianNoise(noise[0], seed=noise[1])

        def call(self, inputs: Any, training: Any = None) -> Any:
            outputs = self.sinecheck_inner(inputs, training=training)
            return map_leaves(outputs, lambda t: self.noise(t, training=training))

    wrapped = Noisy()
    names = getattr(model, "output_names", None)
    if names:
        wrapped.output_names = list(names)
    return wrapped
