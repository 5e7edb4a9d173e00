"""Bring your own model: ``package.module:factory`` or ``path/to/file.py:factory`` specs, loaded with one-line
errors for every way they go wrong.

A model spec names a callable returning a Keras model (compiled or not) or a ``sinecheck.FitSpec``; a data spec
names one returning the data in one of the forms `DATA_FORMS` lists.  Every failure is a `SpecError` (a
ConfigError: exit status 2 on the command line) that says which spec, what went wrong and what is expected.
Module specs are imported with the current directory on ``sys.path`` (as ``python -m`` would), file specs relative
to it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.structure import finite, frozen, map_leaves, named_leaves, pipeline_form
from sinecheck.errors import SpecError


def spec_error(kind: str, spec: str, reason: str) -> SpecError:
    return SpecError(f"{kind} spec {spec!r}: {reason}")


def load_callable(
    spec: str, *, kind: str = "model", before_import: Callable[[], None] | None = None
) -> Callable[..., Any]:
    """The callable a ``module:name`` or ``file.py:name`` spec names.  `before_import` runs once the file or module
    is known to exist, just before the user's code is imported (the CLI and the plugin start TensorFlow quietly
    there, since a model file imports Keras; a misspelt spec still fails without importing anything)."""
    if not isinstance(spec, str) or spec.count(":") < 1 or not spec.rpartition(":")[2]:
        raise spec_error(kind, str(spec), "expected MODULE:CALLABLE or path/to/file.py:CALLABLE")
    target, _, name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise spec_error(kind, spec, f"file {target!r} not found")
        module_name = f"sinecheck_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
        loaded = sys.modules.get(module_name)
        if loaded is not None and getattr(loaded, "__sinecheck_mtime__", None) == path.stat().st_mtime_ns:
            return _attribute(loaded, target, name, kind, spec)
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise spec_error(kind, spec, f"cannot load {target!r} as Python")
        module = importlib.util.module_from_spec(loader_spec)
        if before_import is not None:
            before_import()
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file itself fails to import
            sys.modules.pop(module_name, None)
            raise spec_error(kind, spec, f"importing {target!r} raised {type(exc).__name__}: {exc}") from None
        module.__sinecheck_mtime__ = path.stat().st_mtime_ns  # type: ignore[attr-defined]
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())
        try:
            if importlib.util.find_spec(target) is None:
                raise ModuleNotFoundError(name=target)
            if before_import is not None and target not in sys.modules:
                before_import()
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise spec_error(kind, spec, f"module {exc.name or target!r} not found") from None
        except Exception as exc:
            raise spec_error(kind, spec, f"importing {target!r} raised {type(exc).__name__}: {exc}") from None
    return _attribute(module, target, name, kind, spec)


def _attribute(module: Any, target: str, name: str, kind: str, spec: str) -> Callable[..., Any]:
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        there = ", ".join(public) or "none"
        raise spec_error(kind, spec, f"{name!r} not found in {target!r} (callables there: {there})")
    obj: Callable[..., Any] = getattr(module, name)
    if not callable(obj):
        raise spec_error(kind, spec, f"{name!r} in {target!r} is not callable (it is a {type(obj).__name__})")
    return obj


#: What a data spec may return, for its error messages.
DATA_FORMS = (
    "a pair (x, y), or (x, y, sample_weight) or (x, y, x_held_out, y_held_out), each an array, a tuple/list of "
    "arrays or a dict name -> array; or a tf.data.Dataset / keras.utils.PyDataset of (x, y[, sample_weight]) "
    "batches, or a pair (train, held_out) of them"
)
#: dtype kinds allowed: inputs may be numbers, booleans or strings; targets and sample weights numbers or booleans.
_INPUT_KINDS, _TARGET_KINDS = "biufUS", "biuf"


def data_from_spec(spec: str) -> tuple[Any, ...]:
    """Call a data spec's function and check what it returned (see `DATA_FORMS`).

    Arrays come back as given — the same dtype, shape and values, as read-only views (a tuple or list of them
    as a tuple, a dict as a dict); pipelines (``tf.data.Dataset``, ``keras.utils.PyDataset``) as they are, one or
    a pair (train, held-out).  Every array of one split has the same number (> 0) of samples on axis 0, and the
    held-out inputs have the training inputs' structure and per-sample shapes.
    """
    fn = load_callable(spec, kind="data")
    try:
        out = fn()
    except Exception as exc:
        raise spec_error("data", spec, f"the function raised {type(exc).__name__}: {exc}") from None
    if pipeline_form(out) is not None:
        return (_finite(spec, out),)
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3, 4):
        what = f"a {len(out)}-tuple" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}"
        raise spec_error("data", spec, f"returned {what}; expected {DATA_FORMS}")
    forms = [pipeline_form(part) for part in out]
    if any(forms):
        if len(out) != 2 or not all(forms):
            kinds = ", ".join(str(f) if f else type(p).__name__ for f, p in zip(forms, out, strict=True))
            raise spec_error("data", spec, f"returned ({kinds}); expected {DATA_FORMS}")
        return tuple(_finite(spec, part) for part in out)
    names = ("x", "y", "sample_weight") if len(out) == 3 else ("x", "y", "x_held_out", "y_held_out")
    parts = tuple(_arrays(spec, name, part) for name, part in zip(names, out, strict=False))
    splits = [names[:3] if len(out) == 3 else names[:2]] + ([names[2:]] if len(out) == 4 else [])
    for split in splits:
        counts = {
            f"{name}{_suffix(key)}": leaf for name in split for key, leaf in named_leaves(parts[names.index(name)])
        }
        if (
            any(a.ndim == 0 for a in counts.values())
            or len({len(a) for a in counts.values()}) != 1
            or not len(next(iter(counts.values())))
        ):
            shapes = " and ".join(f"{name} {a.shape}" for name, a in counts.items())
            raise spec_error("data", spec, f"{shapes}; expected the same number (> 0) of samples on axis 0 (shape[0])")
    if len(out) == 4:
        _same_structure(spec, parts[0], parts[2])
    return parts


def _finite(spec: str, pipeline: Any) -> Any:
    if not finite(pipeline):
        raise spec_error(
            "data",
            spec,
            f"the {pipeline_form(pipeline)} never ends (it repeats forever, or has no number of batches); allowed: "
            "a pipeline whose one pass is one epoch (no .repeat(); a PyDataset with __len__ or num_batches)",
        )
    return pipeline


def _suffix(key: str) -> str:
    return "" if key == "" else f"[{key!r}]" if not key.isdigit() else f"[{key}]"


def _arrays(spec: str, name: str, value: object) -> Any:
    """One part of a data spec's return value as read-only arrays, or a one-line error."""
    if _numeric_list(value):  # a plain list of numbers is one array, not several
        value = np.asarray(value)
    leaves = named_leaves(value)
    if len(leaves) == 0:
        raise spec_error("data", spec, f"{name} is an empty {type(value).__name__}; allowed: one or more arrays")
    kinds = _INPUT_KINDS if name.startswith("x") else _TARGET_KINDS
    for key, leaf in leaves:
        nested = isinstance(leaf, (tuple, list)) and any(
            isinstance(v, (np.ndarray, Mapping, tuple, list)) for v in leaf
        )
        if key != "" and (isinstance(leaf, Mapping) or nested):
            raise spec_error(
                "data",
                spec,
                f"{name}{_suffix(key)} is a {type(leaf).__name__}; allowed: an array, a tuple/list of arrays or a "
                "dict name -> array (one level)",
            )
    try:
        out = map_leaves(value, frozen)
    except Exception as exc:
        raise spec_error("data", spec, f"{name} is not arrays ({type(exc).__name__}: {exc})") from None
    for key, leaf in named_leaves(out):
        if leaf.dtype.kind not in kinds:
            what = "numbers, booleans or strings" if kinds == _INPUT_KINDS else "numbers"
            raise spec_error("data", spec, f"{name}{_suffix(key)} is {leaf.dtype}; expected {what}")
    return out


def _numeric_list(value: object) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, bool, np.generic)) for v in value)


def _same_structure(spec: str, x: Any, x_held_out: Any) -> None:
    ours, theirs = dict(named_leaves(x)), dict(named_leaves(x_held_out))
    if list(ours) != list(theirs) and sorted(ours) != sorted(theirs):
        raise spec_error(
            "data",
            spec,
            f"x_held_out has inputs {sorted(theirs)} but x {sorted(ours)}; expected the same inputs",
        )
    for key, array in ours.items():
        if theirs[key].shape[1:] != array.shape[1:]:
            raise spec_error(
                "data",
                spec,
                f"x_held_out{_suffix(key)} has shape {theirs[key].shape} but x{_suffix(key)} {array.shape}; "
                "expected the same shape per sample",
            )


def spec_label(spec: str) -> str:
    """A short name for tables and test ids: the callable's name (``lstm_sine`` for ``x/models.py:lstm_sine``)."""
    return spec.rpartition(":")[2]


def spec_identity(spec: str) -> str:
    """What names a spec wherever it is run from: ``pkg.mod:f`` for a module, ``file.py:f`` (the file's name
    without its directory) for a file — so ``examples/models.py:f`` and ``/abs/examples/models.py:f`` are one."""
    target, _, name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        target = Path(target.replace("\\", "/")).name
    return f"{target}:{name}"


def spec_slug(model: str | None, data: str | None = None) -> str:
    """A file-name-safe name for a (model, data) pair, e.g. ``models-lstm_sine`` (from `spec_identity`)."""
    parts = []
    for prefix, spec in (("", model), ("data-", data)):
        if spec:
            target, _, name = spec_identity(spec).rpartition(":")
            parts.append(prefix + re.sub(r"[^A-Za-z0-9_]+", "-", f"{target.removesuffix('.py')}-{name}").strip("-"))
    return "+".join(parts) or "sine"


@dataclass(frozen=True)
class ModelSpec:
    """A user's model (and optionally data) spec, as given to ``--sinecheck-model`` / ``--model``."""

    model: str
    data: str | None = None

    def __post_init__(self) -> None:
        TrainConfig(model=self.model, data=self.data)  # the same syntax check and message as a config's

    @property
    def label(self) -> str:
        """Short name for table rows and test ids: ``lstm_sine`` (``lstm_next+sine_windows`` with data)."""
        return spec_label(self.model) + (f"+{spec_label(self.data)}" if self.data else "")

    @property
    def slug(self) -> str:
        return spec_slug(self.model, self.data)

    def config(self, **changes: Any) -> TrainConfig:
        """The default TrainConfig (Adam 0.001, MSE, batch 32, shuffle, seed 0) on this model and data."""
        return TrainConfig(model=self.model, data=self.data, **changes)


def pair_specs(models: list[str], data: list[str]) -> list[ModelSpec]:
    """Pair repeated ``--model`` and ``--data`` options: one data spec applies to every model, else one each."""
    if data and len(data) not in (1, len(models)):
        raise SpecError(
            f"data specs: {len(data)} given for {len(models)} model spec(s); allowed: none, one for "
            "every model, or one per model in the same order"
        )
    if data and not models:
        raise SpecError("data spec given without a model spec; allowed: --data together with --model")
    paired: list[str | None] = [*data] * len(models) if len(data) == 1 else [*data] or [None] * len(models)
    return [ModelSpec(m, d) for m, d in zip(models, paired, strict=True)]


def load_specs(
    models: list[str], data: list[str], *, before_import: Callable[[], None] | None = None
) -> list[ModelSpec]:
    """`pair_specs`, then import every named callable: a spec that names nothing fails before anything trains
    (what the factory returns is checked when a run builds it; `before_import` as in `load_callable`)."""
    specs = pair_specs(models, data)
    for spec in specs:
        load_callable(spec.model, kind="model", before_import=before_import)
        if spec.data:
            load_callable(spec.data, kind="data", before_import=before_import)
    return specs
