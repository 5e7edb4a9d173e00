"""Shared by the zoo's tests: ``examples/zoo.py`` loaded once by file path (as a user's ``models.py``), its model
names, and the spec of each model with its data function."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sinecheck.core.specs import ModelSpec

ZOO = Path(__file__).resolve().parents[1] / "examples" / "zoo.py"


def _load_zoo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sinecheck_examples_zoo", ZOO)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo = sys.modules.get("sinecheck_examples_zoo") or _load_zoo()
MODELS: tuple[str, ...] = tuple(zoo.MODELS)


def zoo_spec(name: str, path: Path = ZOO) -> ModelSpec:
    """The spec of zoo model `name` with its data function, as ``--sinecheck-model`` / ``--sinecheck-data`` give it."""
    return ModelSpec(f"{path}:{name}", f"{path}:{name}_data")
