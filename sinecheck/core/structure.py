"""Data as users give it to ``fit``: one array, a tuple of arrays (several inputs or outputs), a dict name -> array,
or a pipeline (``tf.data.Dataset``, ``keras.utils.PyDataset``) — recognised and walked without importing
TensorFlow or Keras (a pipeline is told by the names of its classes)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

import numpy as np

from sinecheck.core.enums import TextEnum

#: Inputs, targets or sample weights as a data spec gives them: an array, a tuple of arrays (several inputs or
#: outputs, in the model's order) or a dict name -> array (keys: the model's input or output names).
Arrays: TypeAlias = "np.ndarray | tuple[np.ndarray, ...] | dict[str, np.ndarray]"


class DataForm(TextEnum):
    """The form of a model's training data."""

    SINE = "sine"  # the built-in sine grid (no data spec)
    ARRAYS = "arrays"  # arrays, tuples or dicts of them, in memory
    TF_DATASET = "tf.data.Dataset"
    PY_DATASET = "PyDataset"

    @property
    def pipeline(self) -> bool:
        """Whether the data comes in batches from a pipeline (which then decides batching and shuffling)."""
        return self in (DataForm.TF_DATASET, DataForm.PY_DATASET)


#: (class name, top-level module) of the pipeline classes, by form; tf_keras (Keras 2) calls PyDataset Sequence.
_PIPELINE_CLASSES: dict[tuple[str, str], DataForm] = {
    ("DatasetV2", "tensorflow"): DataForm.TF_DATASET,
    ("PyDataset", "keras"): DataForm.PY_DATASET,
    ("PyDataset", "tf_keras"): DataForm.PY_DATASET,
    ("Sequence", "tf_keras"): DataForm.PY_DATASET,
}


def pipeline_form(value: object) -> DataForm | None:
    """`DataForm.TF_DATASET` or `DataForm.PY_DATASET` for a pipeline object, else None."""
    for cls in type(value).__mro__:
        form = _PIPELINE_CLASSES.get((cls.__name__, cls.__module__.split(".")[0]))
        if form is not None:
            return form
    return None


def named_leaves(value: object) -> list[tuple[str, Any]]:
    """The arrays of a structure with their names: ``[("", a)]`` for one array, ``[("0", a), ("1", b)]`` for a
    tuple or list, ``[(key, a), ...]`` for a dict (in its order)."""
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, (tuple, list)):
        return [(str(i), v) for i, v in enumerate(value)]
    return [("", value)]


def map_leaves(value: object, fn: Any) -> Any:
    """`value` with `fn` applied to every array, in the same structure (a list becomes a tuple)."""
    if isinstance(value, Mapping):
        return {k: fn(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(fn(v) for v in value)
    return fn(value)


#: tf.data's cardinality of a dataset that repeats forever (``tf.data.INFINITE_CARDINALITY``).
_INFINITE = -1


def batch_count(pipeline: Any) -> int | None:
    """A PyDataset's number of batches (``num_batches``, else ``len``); None when it has none (infinite)."""
    try:
        count = pipeline.num_batches
    except (AttributeError, NotImplementedError):
        count = None
    if count is None:
        try:
            count = len(pipeline)
        except TypeError:
            return None
    return int(count)


def finite(pipeline: Any) -> bool:
    """Whether one pass over a pipeline ends: a tf.data.Dataset that does not repeat forever, a PyDataset with a
    number of batches."""
    if pipeline_form(pipeline) is DataForm.PY_DATASET:
        return batch_count(pipeline) is not None
    return int(pipeline.cardinality()) != _INFINITE


def batches(pipeline: Any) -> Iterator[Any]:
    """Every batch of one pass over a (finite) pipeline: a tf.data.Dataset is iterated, a PyDataset indexed
    ``0 … batch_count - 1``."""
    if pipeline_form(pipeline) is DataForm.PY_DATASET:
        for index in range(batch_count(pipeline) or 0):
            yield pipeline[index]
    else:
        yield from pipeline


def sample_count_of(value: object) -> int:
    """The number of samples (axis 0 of the first array) of a structure of arrays, or of one pass over a pipeline."""
    if pipeline_form(value) is None:
        return len(named_leaves(value)[0][1])
    return sum(sample_count_of(_first(batch)) for batch in batches(value))


def _first(batch: Any) -> Any:
    """The inputs of a pipeline batch ``(x, y[, sample_weight])`` (or a batch that is inputs only)."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def frozen(value: Any) -> np.ndarray:
    """`value` as a NumPy array of the dtype it has (no cast, no copy of an array), read-only."""
    array: np.ndarray = np.asarray(value)
    view: np.ndarray = array.view()
    view.setflags(write=False)
    return view
