"""A user's data meets their model: the arguments ``fit`` gets, a batch to build a subclassed model with, the
predictions of every output (in one call on arrays, batch by batch through a pipeline), and the one-line checks
that the labels fit the compiled loss and the fit arguments fit the data."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from sinecheck.core.data import SineData, TrainingData, UserData
from sinecheck.core.specs import spec_error
from sinecheck.core.structure import DataForm, batches, map_leaves, named_leaves
from sinecheck.keras.fit_spec import FitSpec
from sinecheck.keras.runtime import to_numpy

#: Prediction dtypes stored as the model computes them; any other float (bfloat16) is widened to float32.
_KEPT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class Leaf(NamedTuple):
    """One array of a structure, known before training: its name (``""`` alone), shape (None where a pipeline
    leaves it open) and dtype name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    @property
    def label(self) -> str:
        """``y`` or ``y['kind']`` / ``y[1]``."""
        return "y" if self.name == "" else f"y[{self.name!r}]" if not self.name.isdigit() else f"y[{self.name}]"


def form_of(data: TrainingData) -> DataForm:
    return DataForm.SINE if isinstance(data, SineData) else data.form


def fit_data(data: TrainingData, *, batch_size: int, shuffle: bool) -> dict[str, Any]:
    """The data arguments of ``fit``: ``x``, ``y`` (and ``sample_weight``), ``batch_size`` and ``shuffle`` for arrays
    (the config's); only ``x`` for a pipeline, with ``shuffle=False`` (its batches and order are the pipeline's)."""
    if form_of(data).pipeline:
        return {"x": data.x_train, "shuffle": False}
    out: dict[str, Any] = {"x": data.x_train, "y": data.y_train, "batch_size": batch_size, "shuffle": shuffle}
    if isinstance(data, UserData) and data.sample_weight is not None:
        out["sample_weight"] = data.sample_weight
    return out


def data_note(data: TrainingData) -> str | None:
    """What the run record says about a pipeline: that the config's batch size and shuffle do not apply."""
    if not form_of(data).pipeline:
        return None
    return f"{form_of(data)}: the pipeline decides batching and shuffling (the config's batch_size and shuffle unused)"


# -- what is known before training ------------------------------------------------------------------------------


def _leaf_of_spec(name: str, spec: Any) -> Leaf:
    """A Leaf of a ``tf.TensorSpec`` (a pipeline's element spec)."""
    dims = spec.shape.as_list() if spec.shape.rank is not None else []
    return Leaf(name, tuple(dims), str(spec.dtype.name))


def _leaves(value: Any) -> list[Leaf]:
    out = []
    for name, leaf in named_leaves(value):
        if hasattr(leaf, "shape") and hasattr(getattr(leaf, "shape", None), "as_list"):  # a TensorSpec / tensor
            out.append(_leaf_of_spec(name, leaf))
        else:
            array = np.asarray(leaf)
            out.append(Leaf(name, tuple(array.shape), str(array.dtype)))
    return out


def _pipeline_element(data: UserData) -> tuple[Any, ...]:
    """The structure of a pipeline's batches, ``(x, y[, sample_weight])``: a tf.data element spec, or a PyDataset's
    first batch."""
    element = data.x_train.element_spec if data.form is DataForm.TF_DATASET else data.x_train[0]
    if not isinstance(element, (tuple, list)) or len(element) not in (2, 3):
        raise spec_error(
            "data",
            data.spec,
            f"the {data.form} yields {type(element).__name__} batches; allowed: batches (x, y) or "
            "(x, y, sample_weight)",
        )
    return tuple(element)


def target_leaves(data: TrainingData) -> list[Leaf]:
    """The targets' arrays (shape with the sample axis first; None where a pipeline leaves it open)."""
    if isinstance(data, UserData) and data.form.pipeline:
        return _leaves(_pipeline_element(data)[1])
    return _leaves(data.y_train)


def input_leaves(data: TrainingData) -> list[Leaf]:
    if isinstance(data, UserData) and data.form.pipeline:
        return _leaves(_pipeline_element(data)[0])
    return _leaves(data.x_train)


def build_batch(data: TrainingData, batch_size: int) -> Any:
    """Inputs to build a model with: the first `batch_size` samples of arrays, a pipeline's first batch (a
    PyDataset's) or zeros shaped like its element spec (a tf.data.Dataset: nothing is drawn from the pipeline)."""
    if isinstance(data, UserData) and data.form is DataForm.PY_DATASET:
        return _pipeline_element(data)[0]
    if isinstance(data, UserData) and data.form is DataForm.TF_DATASET:
        spec = _pipeline_element(data)[0]

        def zeros(leaf: Any) -> np.ndarray:
            shape = [1 if d is None else d for d in (leaf.shape.as_list() if leaf.shape.rank is not None else [1])]
            return np.zeros(shape, dtype=str if leaf.dtype.name == "string" else leaf.dtype.as_numpy_dtype)

        return map_leaves(spec, zeros)
    return map_leaves(data.x_train, lambda a: a[:batch_size])


# -- predictions -------------------------------------------------------------------------------------------------


@dataclass
class Outputs:
    """A model's predictions on one split, per output (``""`` for a model with one output), with the targets of
    the same samples (None where the data has no target for an output)."""

    predictions: dict[str, np.ndarray]
    targets: dict[str, np.ndarray | None]


def output_names(model: Any, outputs: Any) -> list[str]:
    """Stable names for a model's outputs: a dict's keys; the model's ``output_names`` (the output layers' names)
    for a list of them when it has them; else ``output0``, ``output1`` …; ``[""]`` for one output."""
    if isinstance(outputs, Mapping):
        return [str(k) for k in outputs]
    if not isinstance(outputs, (tuple, list)) or len(outputs) == 1:
        return [""]
    inner = getattr(model, "sinecheck_inner", model)
    names = [str(n) for n in (getattr(inner, "output_names", None) or [])]
    if len(names) == len(outputs) and len(set(names)) == len(names):
        return names
    return [f"output{i}" for i in range(len(outputs))]


def _stored(array: Any) -> np.ndarray:
    out = np.asarray(to_numpy(array))
    if (out.dtype.kind == "f" and out.dtype not in _KEPT_DTYPES) or out.dtype.kind == "V":
        out = out.astype(np.float32)  # bfloat16 and the like: float32 holds every value exactly
    return out


def named_outputs(model: Any, outputs: Any) -> dict[str, Any]:
    """A model's outputs (a tensor, a list or a dict of them) by `output_names`, in the model's order."""
    names = output_names(model, outputs)
    if isinstance(outputs, Mapping):
        return {name: outputs[name] for name in names}
    values = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    return dict(zip(names, values, strict=True))


def _by_output(model: Any, outputs: Any, targets: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    named = named_outputs(model, outputs)
    names = list(named)
    given = dict(named_leaves(targets)) if targets is not None else {}
    by_position = list(given.values()) if not isinstance(targets, Mapping) else []
    paired: dict[str, Any] = {}
    for i, name in enumerate(names):
        paired[name] = (
            given.get(name) if isinstance(targets, Mapping) else by_position[i] if i < len(by_position) else None
        )
    return {n: _stored(v) for n, v in named.items()}, paired


def predict(model: Any, data: TrainingData, split: str) -> Outputs:
    """The model's predictions on the ``train`` or ``test`` split in inference mode: one call on all the arrays
    (so they do not depend on a predict batch size), or batch by batch over one pass of a pipeline."""
    x = data.x_train if split == "train" else data.x_test
    if not form_of(data).pipeline:
        y = data.y_train_clean if split == "train" else data.y_test
        predictions, targets = _by_output(model, model(x, training=False), y)
        return Outputs(predictions, {k: None if v is None else np.asarray(v) for k, v in targets.items()})
    parts: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[Any]] = {}
    for batch in batches(x):
        predictions, targets = _by_output(model, model(batch[0], training=False), batch[1])
        for name, value in predictions.items():
            parts.setdefault(name, []).append(value)
            labels.setdefault(name, []).append(targets[name])
    if not parts:
        raise spec_error("data", str(getattr(data, "spec", "")), f"the {split} pipeline yielded no batches")
    return Outputs(
        {n: np.concatenate(v) for n, v in parts.items()},
        {n: None if any(t is None for t in v) else np.concatenate([_stored(t) for t in v]) for n, v in labels.items()},
    )


# -- checks before training -----------------------------------------------------------------------------------


def _loss_name(loss: Any) -> str:
    """``sparse_categorical_crossentropy`` for the string, the Loss object or the function."""
    if isinstance(loss, str):
        return loss
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in str(name)).lstrip("_")
    return snake


def _losses_by_output(loss: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(loss, Mapping):
        return {n: loss.get(n) for n in names}
    if isinstance(loss, (tuple, list)):
        return {n: loss[i] if i < len(loss) else None for i, n in enumerate(names)}
    return dict.fromkeys(names, loss)


def _fits(shape: tuple[int | None, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected, strict=True)
    )


def check_labels(
    model: Any, data: TrainingData, output_shapes: Mapping[str, tuple[int | None, ...]], *, spec: str
) -> None:
    """A one-line SpecError when labels do not fit a categorical cross-entropy: one-hot labels with a sparse loss,
    or class ids with a loss that expects one-hot labels (Keras would fail deep inside ``fit``)."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return
    leaves = target_leaves(data)
    names = list(output_shapes)
    if all(leaf.name and not leaf.name.isdigit() for leaf in leaves):  # a dict of targets, by output name
        labels = {leaf.name: leaf for leaf in leaves}
    else:
        labels = dict(zip(names, leaves, strict=False))
    for name, fn in _losses_by_output(loss, names).items():
        label, shape = labels.get(name), output_shapes[name]
        if fn is None or label is None or not shape:
            continue
        loss_name = _loss_name(fn)
        out = f" (output {name!r})" if name else ""
        if "sparse_categorical" in loss_name:
            if not (_fits(label.shape[1:], shape[1:-1]) or _fits(label.shape[1:], (*shape[1:-1], 1))):
                raise spec_error(
                    "model",
                    spec,
                    f"loss {loss_name}{out} takes class ids, but the labels {label.label} have shape {label.shape} "
                    f"({label.dtype}) for outputs of shape {shape}; allowed: class ids of shape "
                    f"{(shape[0], *shape[1:-1])}, or one-hot labels with loss categorical_crossentropy",
                )
        elif "categorical" in loss_name and "hinge" not in loss_name and not _fits(label.shape[1:], shape[1:]):
            raise spec_error(
                "model",
                spec,
                f"loss {loss_name}{out} takes one-hot labels of the output's shape {shape}, but the labels "
                f"{label.label} have shape {label.shape} ({label.dtype}); allowed: one-hot labels "
                "(keras.utils.to_categorical), or class ids with loss sparse_categorical_crossentropy",
            )


#: fit arguments that need arrays (Keras refuses them with a pipeline).
_ARRAYS_ONLY = ("validation_split", "sample_weight")


def check_fit_arguments(fit_spec: FitSpec, data: TrainingData, model: Any, *, spec: str) -> None:
    """A one-line SpecError for FitSpec arguments ``fit`` does not take, or that clash with the data spec."""
    parameters = inspect.signature(model.fit).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(fit_spec.fit_kwargs) - set(parameters))
        if unknown:
            allowed = ", ".join(
                p
                for p in parameters
                if p not in ("self", "x", "y", "batch_size", "epochs", "shuffle", "verbose", "callbacks")
            )
            raise spec_error("model", spec, f"FitSpec.fit_kwargs {unknown}: not arguments of fit; allowed: {allowed}")
    if "sample_weight" in fit_spec.fit_kwargs and isinstance(data, UserData) and data.sample_weight is not None:
        raise spec_error(
            "model",
            spec,
            "FitSpec.fit_kwargs sample_weight given and the data spec returns sample weights too; allowed: one of them",
        )
    clash = [key for key in _ARRAYS_ONLY if key in fit_spec.fit_kwargs and form_of(data).pipeline]
    if clash:
        raise spec_error(
            "model",
            spec,
            f"FitSpec.fit_kwargs {clash} with a {form_of(data)} (the data spec {getattr(data, 'spec', '')}); allowed "
            "with a pipeline: validation_data, and sample weights as the third element of its batches",
        )
