"""Bring your own model: ``package.module:factory`` or ``path/to/file.py:factory`` specs, loaded with one-line
errors for every way they go wrong.

A model spec names a callable returning a Keras model (compiled or not); a data spec names one returning
``(x, y)`` arrays, or ``(x, y, x_held_out, y_held_out)``.  Every failure is a `SpecError` (a ConfigError: exit
status 2 on the command line) that says which spec, what went wrong and what is expected.  Module specs are
imported with the current directory on ``sys.path`` (as ``python -m`` would), file specs relative to it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.errors import SpecError


def spec_error(kind: str, spec: str, reason: str) -> SpecError:
    return SpecError(f"{kind} spec {spec!r}: {reason}")


def load_callable(spec: str, *, kind: str = "model") -> Callable[..., Any]:
    """The callable a ``module:name`` or ``file.py:name`` spec names."""
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


def data_from_spec(spec: str) -> tuple[np.ndarray, ...]:
    """Call a data spec's function and check it returned ``(x, y)`` or ``(x, y, x_held_out, y_held_out)``:
    numeric arrays, each pair with the same number of samples on axis 0."""
    fn = load_callable(spec, kind="data")
    try:
        out = fn()
    except Exception as exc:
        raise spec_error("data", spec, f"the function raised {type(exc).__name__}: {exc}") from None
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 4):
        what = f"a {len(out)}-tuple" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}"
        raise spec_error(
            "data", spec, f"returned {what}; expected a pair (x, y) of arrays, or (x, y, x_held_out, y_held_out)"
        )
    try:
        arrays = tuple(np.asarray(a) for a in out)
    except Exception as exc:
        raise spec_error("data", spec, f"(x, y) are not arrays ({type(exc).__name__}: {exc})") from None
    pairs = [(arrays[0], arrays[1], ("x", "y"))]
    if len(arrays) == 4:
        pairs.append((arrays[2], arrays[3], ("x_held_out", "y_held_out")))
    for x, y, names in pairs:
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
            raise spec_error(
                "data",
                spec,
                f"{names[0]} has shape {x.shape} and {names[1]} {y.shape}; expected the "
                "same number (> 0) of samples on axis 0",
            )
        if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
            raise spec_error("data", spec, f"{names[0]} is {x.dtype} and {names[1]} {y.dtype}; expected numbers")
    if len(arrays) == 4 and arrays[2].shape[1:] != arrays[0].shape[1:]:
        raise spec_error(
            "data",
            spec,
            f"x_held_out has shape {arrays[2].shape} but x {arrays[0].shape}; expected the same shape per sample",
        )
    return arrays


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


def load_specs(models: list[str], data: list[str]) -> list[ModelSpec]:
    """`pair_specs`, then import every named callable: a spec that names nothing fails before anything trains
    (what the factory returns is checked when a run builds it)."""
    specs = pair_specs(models, data)
    for spec in specs:
        load_callable(spec.model, kind="model")
        if spec.data:
            load_callable(spec.data, kind="data")
    return specs
