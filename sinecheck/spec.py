"""Bring your own model: ``package.module:factory`` or ``path/to/file.py:factory`` specs, loaded with one-line
errors for every way they go wrong (the first part of issue 8; the suite does not use them yet).

A model spec names a callable returning a Keras model (compiled or not); a data spec names one returning
``(x, y)`` arrays.  Every failure is a `SpecError` (a ConfigError: exit status 2 on the command line) that
says which spec, what went wrong and what is expected.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck.config import ConfigError


class SpecError(ConfigError):
    """A model or data spec cannot be used; the message names the spec and the reason."""


def _fail(kind: str, spec: str, reason: str) -> SpecError:
    return SpecError(f"{kind} spec {spec!r}: {reason}")


def load_callable(spec: str, *, kind: str = "model") -> Callable[..., Any]:
    """The callable a ``module:name`` or ``file.py:name`` spec names."""
    if not isinstance(spec, str) or spec.count(":") < 1 or not spec.rpartition(":")[2]:
        raise _fail(kind, str(spec), "expected MODULE:CALLABLE or path/to/file.py:CALLABLE")
    target, _, name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise _fail(kind, spec, f"file {target!r} not found")
        module_name = f"sinecheck_user_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise _fail(kind, spec, f"cannot load {target!r} as Python")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file itself fails to import
            raise _fail(kind, spec, f"importing {target!r} raised {type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise _fail(kind, spec, f"module {exc.name or target!r} not found") from None
        except Exception as exc:
            raise _fail(kind, spec, f"importing {target!r} raised {type(exc).__name__}: {exc}") from None
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise _fail(kind, spec, f"{name!r} not found in {target!r} (callables there: {', '.join(public) or 'none'})")
    obj = getattr(module, name)
    if not callable(obj):
        raise _fail(kind, spec, f"{name!r} in {target!r} is not callable (it is a {type(obj).__name__})")
    return obj


def build_from_spec(spec: str) -> Any:
    """Call a model spec's factory and check that it returned a Keras model."""
    factory = load_callable(spec, kind="model")
    try:
        model = factory()
    except Exception as exc:
        raise _fail("model", spec, f"the factory raised {type(exc).__name__}: {exc}") from None
    from sinecheck.models import keras_module

    keras = keras_module()
    if not isinstance(model, keras.Model):
        raise _fail("model", spec, f"the factory returned a {type(model).__name__}, not a Keras model "
                                   f"({keras.__name__}.Model)")
    return model


def data_from_spec(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """Call a data spec's function and check that it returned ``(x, y)`` arrays of the same length."""
    fn = load_callable(spec, kind="data")
    try:
        out = fn()
    except Exception as exc:
        raise _fail("data", spec, f"the function raised {type(exc).__name__}: {exc}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise _fail("data", spec, f"returned a {type(out).__name__}; expected a pair (x, y) of arrays")
    try:
        x, y = (np.asarray(a) for a in out)
    except Exception as exc:
        raise _fail("data", spec, f"(x, y) are not arrays ({type(exc).__name__}: {exc})") from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise _fail("data", spec, f"x has shape {x.shape} and y {y.shape}; expected the same number (> 0) of "
                                  "samples on axis 0")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise _fail("data", spec, f"x is {x.dtype} and y {y.dtype}; expected numbers")
    return x, y


def check_fits(model: Any, x: np.ndarray, *, spec: str) -> None:
    """Fail with a one-line error when the model's input shape cannot take `x` (batch axis aside)."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return
    if isinstance(shape, list):
        shape = shape[0]
    expected = tuple(shape[1:])
    got = tuple(x.shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got, strict=True)):
        raise _fail("model", spec, f"the model's input shape {tuple(shape)} does not fit the data: x has shape "
                                   f"{x.shape} (samples first)")
