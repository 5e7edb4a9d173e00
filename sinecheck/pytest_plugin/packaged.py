"""The packaged model suite in the user's session: specs validated, then `model_suite` collected beside the user's.

- `prestart_pool`: first thing at configure time, the session's worker pool starts its matrix workers in the
  background, so their TensorFlow imports overlap the validation below.
- `validate_models`: at configure time, each model spec is built once on its data and checked
  (`sinecheck.keras.validate.validate_model_spec`); a problem is one pytest usage error.  Only the main process
  validates (a pytest-xdist controller, or a run without xdist): workers start after it, from the same specs.
- `add_suite`: when models are given, the session's collection gains the `model_suite` module, collected from the
  installed package whatever the user's arguments, ``testpaths`` and ``--import-mode`` are, under the node id
  ``sinecheck/pytest_plugin/model_suite.py`` (each xdist worker collects it the same way; the controller collects
  nothing).  A session that names the module's file itself collects it once, the ordinary way.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from sinecheck.checks.factors import select_factors
from sinecheck.checks.matrix import matrix_workers
from sinecheck.errors import ConfigError, SpecError
from sinecheck.isolation.pool import WorkerPool
from sinecheck.keras.validate import validate_model_spec
from sinecheck.pytest_plugin import xdist
from sinecheck.pytest_plugin.settings import Settings

__all__ = [
    "MARKER",
    "POOL_KEY",
    "SUITE_MODULE",
    "SUITE_NODEID",
    "PackagedSuite",
    "add_suite",
    "close_pool",
    "prestart_pool",
    "suite_path",
    "validate_models",
]

#: The module of the packaged tests and the node id they are collected under.
SUITE_MODULE = "sinecheck.pytest_plugin.model_suite"
SUITE_NODEID = "sinecheck/pytest_plugin/model_suite.py"
#: The marker every packaged test carries (``-m "not sinecheck_suite"`` leaves them out).
MARKER = "sinecheck_suite"


def suite_path() -> Path:
    """Where the packaged suite's module file is (found without importing it)."""
    return Path(__file__).with_name("model_suite.py").resolve()


#: The session's worker pool when it was started early (`prestart_pool`); the `sinecheck_pool` fixture yields it.
POOL_KEY = pytest.StashKey[WorkerPool]()


def prestart_pool(config: pytest.Config) -> None:
    """With models given (and no pytest-xdist, no ``--help``): create the session's worker pool now and start every
    matrix worker in the background, so that their TensorFlow imports overlap this process's own (the model files)
    and the model checks.  The pool is closed at the end of the session (or at once, if configuring fails)."""
    options = config.option
    models = config.getoption("sinecheck_model") or list(config.getini("sinecheck_models"))
    in_xdist = xdist.is_worker(config) or bool(getattr(options, "numprocesses", None))
    if not models or options.help or options.version or in_xdist:
        return
    try:
        factors = select_factors(config.getoption("sinecheck_factor") or list(config.getini("sinecheck_factors")))
    except ConfigError:
        return  # the settings say so as a usage error in a moment
    pool = config.stash[POOL_KEY] = WorkerPool()
    pool.prestart(matrix_workers(factors))


def close_pool(config: pytest.Config) -> None:
    """Close the pool `prestart_pool` started, if any (idempotent)."""
    pool = config.stash.get(POOL_KEY, None)
    if pool is not None:
        del config.stash[POOL_KEY]
        pool.close()


def validate_models(config: pytest.Config, settings: Settings) -> None:
    """Build each model spec once on its data and check it (imports TensorFlow): a `SpecError` becomes one pytest
    usage error.  Nothing to do without models, in an xdist worker, or for ``--help`` / ``--version``."""
    options = config.option
    if not settings.models or xdist.is_worker(config) or options.help or options.version:
        return
    for spec in settings.models:
        try:
            validate_model_spec(spec)
        except SpecError as exc:
            raise pytest.UsageError(f"--sinecheck-model/--sinecheck-data: {exc}") from None


class PackagedSuite(pytest.Module):
    """The `model_suite` module as a pytest Module, imported by its package name (so ``--import-mode`` and the
    module's place outside the rootdir do not matter)."""

    def _getobj(self) -> ModuleType:
        return importlib.import_module(SUITE_MODULE)


def add_suite(session: pytest.Session, report: pytest.CollectReport) -> None:
    """Append the packaged suite to the session's collected nodes (call on the session's own collect report)."""
    path = suite_path()
    initial: frozenset[Path] = getattr(session, "_initialpaths", frozenset())
    if path in initial:  # the user named the file: pytest collects it itself
        return
    report.result.append(PackagedSuite.from_parent(session, path=path, nodeid=SUITE_NODEID))
