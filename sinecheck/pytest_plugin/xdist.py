"""Sharing between pytest-xdist workers and their controller, through xdist's public channels (as syrupy does).

- controller → workers: ``workerinput`` carries a directory the controller made for this session, where the
  first worker that needs the session matrix computes it (under a file lock) and the others read it;
- workers → controller: ``workeroutput`` carries each worker's `SessionRecord` (runs, cells, baseline lines),
  merged on the controller in ``pytest_testnodedown`` and printed in its terminal summary.

Without pytest-xdist none of this is used: the session matrix is computed once in the one process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from filelock import FileLock

from sinecheck._io import atomic_write
from sinecheck.pytest_plugin.summary import SessionRecord, get_record

if TYPE_CHECKING:  # pytest-xdist is optional: its types only
    from xdist.workermanage import WorkerController

__all__ = ["ControllerHooks", "computed_once", "is_worker", "register", "send_record", "shared_dir"]

_T = TypeVar("_T")

_SHARED_DIR = "sinecheck_shared_dir"  # workerinput key
_RECORD = "sinecheck_record"  # workeroutput key


def is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def shared_dir(config: pytest.Config) -> Path | None:
    """The directory all workers of this session share (None outside an xdist worker)."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    path = workerinput.get(_SHARED_DIR)
    return None if path is None else Path(path)


def computed_once(
    config: pytest.Config,
    name: str,
    compute: Callable[[], _T],
    *,
    dump: Callable[[_T], dict[str, Any]],
    load: Callable[[dict[str, Any]], _T],
) -> _T:
    """`compute()` in this process — or, in an xdist worker, in the first worker that asks for `name`, which
    stores ``dump(value)`` as JSON in the shared directory; the others wait for it (a file lock) and `load` it."""
    directory = shared_dir(config)
    if directory is None:
        return compute()
    path = directory / f"{name}.json"
    with FileLock(f"{path}.lock"):
        if path.is_file():
            return load(json.loads(path.read_text(encoding="utf-8")))
        value = compute()
        atomic_write(path, json.dumps(dump(value)))
        return value


def send_record(config: pytest.Config) -> None:
    """In a worker: hand this worker's record to the controller (call at session finish)."""
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_RECORD] = json.dumps(get_record(config).to_dict())


class ControllerHooks:
    """pytest-xdist hooks of the controller; registered only when xdist is active (they are xdist's hooks)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.directory: Path | None = None

    def pytest_configure_node(self, node: WorkerController) -> None:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="sinecheck-xdist-"))
        node.workerinput[_SHARED_DIR] = str(self.directory)

    def pytest_testnodedown(self, node: WorkerController, error: object) -> None:
        output: dict[str, Any] = getattr(node, "workeroutput", {})
        if _RECORD in output:
            get_record(self.config).merge(SessionRecord.from_dict(json.loads(output[_RECORD])))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def register(config: pytest.Config) -> None:
    """On an xdist controller, register the `ControllerHooks` (call in ``pytest_configure``)."""
    if config.pluginmanager.hasplugin("xdist") and not is_worker(config):
        config.pluginmanager.register(ControllerHooks(config), "sinecheck-xdist")
