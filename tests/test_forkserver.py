"""The fork server: which workers are forked, that a forked worker trains the same bits as a new interpreter (on the
sine model and on a zoo model with Dropout, through the whole matrix), and that no process outlives its pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sinecheck.checks.factors import factor_by_name
from sinecheck.checks.matrix import run_matrix
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import SpecError
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.forkserver import ForkedProcess, forkable
from sinecheck.isolation.pool import WorkerPool, validate_isolated
from sinecheck.keras.validate import validate_model_spec

TINY = TrainConfig(hidden_units=(8,), n_points=64, epochs=2)
ZOO = Path(__file__).resolve().parent.parent / "examples" / "zoo.py"
THREADS_1 = Environment("threads-1", intra_op_threads=1, inter_op_threads=1)
OP_DETERMINISM = Environment("op-determinism", op_determinism=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def all_gone(pids: list[int], *, within: float = 10.0) -> bool:
    """Whether every process in `pids` has ended within `within` seconds."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


@pytest.mark.parametrize(
    ("environment", "instance", "python", "expected"),
    [
        pytest.param(Environment(), 0, sys.executable, True, id="defaults"),
        pytest.param(THREADS_1, 0, sys.executable, True, id="threads"),
        pytest.param(OP_DETERMINISM, 0, sys.executable, True, id="op-determinism"),
        pytest.param(Environment(), 1, sys.executable, False, id="second-instance-is-a-new-interpreter"),
        pytest.param(
            Environment("o", {"TF_ENABLE_ONEDNN_OPTS": "0"}), 0, sys.executable, False, id="onednn-read-at-import"
        ),
        pytest.param(
            Environment("k", {"TF_USE_LEGACY_KERAS": "1"}), 0, sys.executable, False, id="keras-read-at-import"
        ),
        pytest.param(Environment("h", {"PYTHONHASHSEED": "0"}), 0, sys.executable, False, id="hash-seed-at-start"),
        pytest.param(Environment("p", python="/other/python"), 0, "/other/python", False, id="other-interpreter"),
        pytest.param(Environment(), 0, "/other/python", False, id="pool-with-another-python"),
    ],
)
def test_only_environments_set_after_import_are_forked(
    environment: Environment, instance: int, python: str, expected: bool
) -> None:
    assert forkable(environment, instance=instance, python=python) is expected


def test_pool_forks_what_it_may_and_starts_the_rest_as_new_interpreters(tmp_path: Path) -> None:
    with WorkerPool(workdir=tmp_path) as pool:
        assert pool.get(Environment()).fork_server is not None
        assert pool.get(Environment(), 1).fork_server is None
        assert pool.get(Environment("o", {"TF_ENABLE_ONEDNN_OPTS": "0"})).fork_server is None
    with WorkerPool(workdir=tmp_path, fork=False) as pool:
        assert pool.get(Environment()).fork_server is None


@pytest.mark.timeout(300)
def test_forked_workers_train_the_bits_of_new_interpreters() -> None:
    """Each environment the server serves, forked and as a new interpreter: the same digests, and the forked
    worker's TensorFlow reports its own settings (threads, op determinism)."""
    environments = [Environment(), THREADS_1, OP_DETERMINISM]
    digests: dict[bool, list[dict[str, str]]] = {}
    with WorkerPool() as forked, WorkerPool(fork=False) as fresh:
        for fork, pool in ((True, forked), (False, fresh)):
            pool.prestart((environment, 0) for environment in environments)
            runs = [pool.get(environment).train(TINY) for environment in environments]
            assert all(isinstance(run, RunResult) for run in runs), [str(run) for run in runs]
            digests[fork] = [run.digests for run in runs if isinstance(run, RunResult)]
            kinds = {type(pool.get(environment)._proc) for environment in environments}
            assert kinds == ({ForkedProcess} if fork else {subprocess.Popen})
        threads = forked.get(THREADS_1).fingerprint or {}
        assert threads.get("intra_op_threads") == 1 and threads.get("inter_op_threads") == 1
        assert (forked.get(OP_DETERMINISM).fingerprint or {}).get("op_determinism") is True
        assert (forked.get(Environment()).fingerprint or {}).get("op_determinism") is False
        hash_seeds = {(pool.get(Environment()).fingerprint or {}).get("pythonhashseed") for pool in (forked, fresh)}
        assert hash_seeds == {"0"}  # the server imported with the workers' hash seed
    assert digests[True] == digests[False]


@pytest.mark.timeout(600)
def test_matrix_cells_are_the_same_with_forked_and_new_workers() -> None:
    """The matrix on a zoo model with Dropout (its seed generator state must start where a new process starts it),
    forked workers against new interpreters: every seeded digest and every verdict is the same."""
    spec = ModelSpec(f"{ZOO}:mnist_convnet", f"{ZOO}:mnist_convnet_data")
    rows = [(spec.label, spec.config(epochs=2))]
    factors = [factor_by_name(name) for name in ("same-process", "fresh-process", "op-determinism", "threads-1")]
    cells = {}
    for fork in (True, False):
        with WorkerPool(fork=fork) as pool:
            matrix = run_matrix(rows, factors, pool=pool, probe_shuffle=False)
        cells[fork] = [
            (c.factor.name, c.verdict, c.evidence and (c.evidence.digest_a, c.evidence.digest_b)) for c in matrix.cells
        ]
    assert cells[True] == cells[False]
    assert all(verdict is not None for _, verdict, _ in cells[True])


@pytest.mark.timeout(120)
def test_a_killed_forked_worker_is_replaced_and_nothing_outlives_the_pool() -> None:
    with WorkerPool() as pool:
        worker = pool.get(Environment())
        assert isinstance(worker.train(TINY), RunResult)
        first = worker._proc
        assert isinstance(first, ForkedProcess)
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() == -signal.SIGKILL  # the server reaped it and reported how it ended
        assert isinstance(worker.train(TINY), RunResult)  # a new fork serves the next request
        second = worker._proc
        assert isinstance(second, ForkedProcess) and second.pid != first.pid
        server = pool._fork_server
        assert server is not None and server._proc is not None
        pids = [second.pid, server._proc.pid]
    assert all_gone(pids)


@pytest.mark.timeout(120)
def test_prestarted_workers_closed_at_once_leave_no_process() -> None:
    pool = WorkerPool()
    pool.prestart([(Environment(), 0), (Environment(), 1), (THREADS_1, 0)])
    time.sleep(0.5)  # the starts are under way
    workers = [pool.get(Environment()), pool.get(Environment(), 1), pool.get(THREADS_1)]
    server = pool._fork_server
    pool.close()
    pids = [w._proc.pid for w in workers if w._proc is not None]
    assert pids
    assert all_gone(pids)
    # still importing TensorFlow half a second in: killed, not waited for (a bad spec must not wait for them)
    fresh = workers[1]._proc
    assert fresh is not None and fresh.returncode == -signal.SIGKILL, fresh.returncode if fresh else None
    assert server is not None and server._proc is not None and server._proc.returncode == -signal.SIGKILL


@pytest.mark.timeout(120)
def test_a_spec_checked_in_a_worker_fails_with_the_in_process_message() -> None:
    bad = ModelSpec(f"{ZOO}:mnist_convnet", f"{ZOO}:weather_forecaster_data")  # images model, time-series data
    with pytest.raises(SpecError) as in_process:
        validate_model_spec(bad)
    with WorkerPool() as pool, pytest.raises(SpecError) as isolated:
        validate_isolated(pool, [ModelSpec(f"{ZOO}:weather_forecaster", f"{ZOO}:weather_forecaster_data"), bad])
    assert str(isolated.value) == str(in_process.value)
    assert "\n" not in str(isolated.value)
