"""Validate a user's model spec once, before anything trains: build the model, load its data, and check that they fit.

`validate_model_spec` is what the pytest plugin runs at configure time for each ``--sinecheck-model`` (a problem is
one usage error) and what the commands that take ``--model`` run before they train (one line, exit status 2): the
same checks, the same words.  Each problem is a `SpecError` of one line that names the spec and says what is wrong
and what is allowed.  Keras's global state is left as it was found (the session is cleared, Python's and NumPy's
global random states restored), so a run trained after it is bit for bit the run trained without it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from sinecheck.core.data import TrainingData, UserData, make_data
from sinecheck.core.specs import ModelSpec, spec_error
from sinecheck.core.structure import DataForm, map_leaves
from sinecheck.errors import SpecError
from sinecheck.keras.models import compile_model
from sinecheck.keras.runtime import is_compiled, keras_module
from sinecheck.keras.user_data import (
    Leaf,
    check_fit_arguments,
    check_labels,
    form_of,
    input_leaves,
)
from sinecheck.keras.user_model import (
    build_fit_spec,
    check_input_leaves,
    ensure_built,
    graph_inputs,
    output_shapes,
    quoted_error,
)

__all__ = ["validate_model_spec"]

#: Samples of array data the model and its compiled loss are tried on (a pipeline: its first batch).
TRIAL_SAMPLES = 2


def validate_model_spec(spec: ModelSpec, *, batch_size: int = 32) -> None:
    """Import the factory and call it once, load the data, and check inputs (structure, per-sample shapes, dtypes),
    labels against a categorical loss, FitSpec arguments, and the model with its compiled loss on the first samples:
    a one-line `SpecError` (``model spec 'models.py:f': …`` or ``data spec …``) for the first problem found."""
    with _clean_state():
        try:
            _validate(spec, batch_size)
        except SpecError:
            raise
        except Exception as exc:  # what no check above foresaw: still one line naming the spec, never a traceback
            raise spec_error(
                "model", spec.model, f"checking the model on its data raised {type(exc).__name__}: {quoted_error(exc)}"
            ) from None


@contextmanager
def _clean_state() -> Iterator[None]:
    """Clear the Keras session before and after (models, layer-name counters, the seed generator) and restore
    Python's and NumPy's global random states (an unseeded initializer draws its seed from Python's)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras = keras_module()
    keras.backend.clear_session()
    try:
        yield
    finally:
        keras.backend.clear_session()
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _validate(spec: ModelSpec, batch_size: int) -> None:
    config = spec.config(batch_size=batch_size)
    data = make_data(config)  # a data spec's problems: one-line SpecErrors already
    fit_spec = build_fit_spec(spec.model)  # the factory raised, or returned no Keras model
    model = fit_spec.model
    ensure_built(model, data, batch_size=batch_size, spec=spec.model)
    leaves = input_leaves(data)
    check_input_leaves(model, leaves, spec=spec.model)
    _check_input_dtypes(model, leaves, spec=spec.model)
    if not is_compiled(model):
        model = compile_model(model, config)  # as training compiles it: the config's optimizer and loss (MSE)
    check_labels(model, data, output_shapes(model, data, batch_size=batch_size), spec=spec.model)
    check_fit_arguments(fit_spec, data, model, spec=spec.model)
    _check_trial_batch(model, data, spec=spec.model)


# -- input dtypes ------------------------------------------------------------------------------------------------


def _is_text(dtype: str) -> bool:
    """Whether a dtype name is a string dtype (NumPy ``<U5`` / ``|S3`` / object, TensorFlow ``string``)."""
    if dtype in ("string", "str"):
        return True
    try:
        return np.dtype(dtype).kind in "USO"
    except TypeError:
        return False


def _graph_inputs(model: Any) -> list[tuple[str, str]] | None:
    """(name, dtype) of each input of a model with a graph; None for a subclassed model."""
    inputs = graph_inputs(model)
    return None if inputs is None else [(name, str(getattr(t.dtype, "name", t.dtype))) for name, t in inputs]


def _check_input_dtypes(model: Any, leaves: list[Leaf], *, spec: str) -> None:
    """Strings into a numeric input (or numbers into a string input): Keras would fail inside ``fit`` with a cast
    error; numbers of another numeric dtype are cast by Keras and allowed."""
    inputs = _graph_inputs(model)
    if inputs is None:
        return  # a subclassed model: building it on a batch of the data (ensure_built) has tried the dtypes
    named = all(leaf.name and not leaf.name.isdigit() for leaf in leaves) and len(leaves) > 1
    by_name = {leaf.name: leaf for leaf in leaves}
    for i, (name, dtype) in enumerate(inputs):
        leaf = by_name.get(name) if named else leaves[i] if i < len(leaves) else None
        if leaf is None or _is_text(leaf.dtype) == _is_text(dtype):
            continue
        label = "x" if leaf.name == "" else f"x[{leaf.name!r}]" if not leaf.name.isdigit() else f"x[{leaf.name}]"
        which = "input" if len(inputs) == 1 else f"input {name!r}"
        if _is_text(leaf.dtype):
            raise spec_error(
                "model",
                spec,
                f"{label} holds strings ({leaf.dtype}) but the model's {which} takes {dtype}; allowed: numbers for "
                "this input, or an input of dtype 'string' (keras.Input(..., dtype='string')) feeding a StringLookup "
                "or TextVectorization layer",
            )
        raise spec_error(
            "model",
            spec,
            f"{label} holds {leaf.dtype} numbers but the model's {which} takes strings ({dtype}); allowed: "
            "strings for this input, or a numeric keras.Input",
        )


# -- the model and its compiled loss on the first samples ----------------------------------------------------------


def _first(value: Any, n: int) -> Any:
    return None if value is None else map_leaves(value, lambda a: a[:n])


def _trial_batch(data: TrainingData) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) of the first `TRIAL_SAMPLES` samples of arrays, or a pipeline's first batch."""
    if form_of(data).pipeline:
        assert isinstance(data, UserData)
        pipeline = data.x_train
        batch = pipeline[0] if data.form is DataForm.PY_DATASET else next(iter(pipeline))
        parts = tuple(batch)
        return parts[0], parts[1], parts[2] if len(parts) > 2 else None
    weights = data.sample_weight if isinstance(data, UserData) else None
    return _first(data.x_train, TRIAL_SAMPLES), _first(data.y_train, TRIAL_SAMPLES), _first(weights, TRIAL_SAMPLES)


def _check_trial_batch(model: Any, data: TrainingData, *, spec: str) -> None:
    """Call the model (inference mode) and its compiled loss and metrics on the first samples: whatever they raise,
    as one line — the catch-all for what the checks above do not know (a custom loss, labels of another shape)."""
    x, y, sample_weight = _trial_batch(data)
    what = "the first batch of the pipeline" if form_of(data).pipeline else f"the first {TRIAL_SAMPLES} samples"
    try:
        y_pred = model(x, training=False)
    except Exception as exc:
        raise spec_error(
            "model", spec, f"calling the model on {what} of the data raised {type(exc).__name__}: {quoted_error(exc)}"
        ) from None
    try:
        model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    except Exception as exc:
        raise spec_error(
            "model",
            spec,
            f"the compiled loss{_loss_text(getattr(model, 'loss', None))} on {what} of the data raised "
            f"{type(exc).__name__}: {quoted_error(exc)}; allowed: labels y that fit the model's outputs for that loss",
        ) from None
    try:
        model.compute_metrics(x, y, y_pred, sample_weight)
    except Exception as exc:
        raise spec_error(
            "model",
            spec,
            f"a compiled metric on {what} of the data raised {type(exc).__name__}: {quoted_error(exc)}; allowed: "
            "metrics that take the labels y and the model's outputs",
        ) from None


def _loss_text(loss: Any) -> str:
    if loss is None:
        return ""
    if isinstance(loss, str):
        return f" {loss}"
    if isinstance(loss, Mapping):
        return " " + ", ".join(f"{k}: {_loss_text(v).strip()}" for k, v in loss.items())
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return f" {name}"
