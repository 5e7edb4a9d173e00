"""Isolated workers: Environment validation, real TensorFlow workers, and every failure mode with fake workers.

The fake workers are small Python scripts passed as ``Worker(python=...)``: they are started exactly like the
real one (``PATH -m sinecheck.isolation.worker ENV_JSON``), ignore their arguments and misbehave on purpose, so the
failure handling is tested in a fraction of a second each and without TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sinecheck.core.compare import Verdict, compare
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult, digest_tensors
from sinecheck.errors import ConfigError
from sinecheck.isolation.environment import CONTROLLED_VARS, DEFAULT_HASH_SEED, Environment
from sinecheck.isolation.pool import DEFAULT_TIMEOUT_S, STARTUP_TIMEOUT_S, RunError, Worker, WorkerPool, run_isolated

TINY = TrainConfig(hidden_units=(8,), n_points=64, epochs=1)

# -- Environment ----------------------------------------------------------------------------------------


def test_unknown_variable_is_named_and_the_allowed_ones_listed() -> None:
    with pytest.raises(ConfigError) as info:
        Environment(env={"KERAS_BACKEND": "jax", "LD_PRELOAD": "/tmp/evil.so"})
    message = str(info.value)
    assert "'LD_PRELOAD'" in message
    assert all(var in message for var in CONTROLLED_VARS)


@pytest.mark.parametrize("field", ["intra_op_threads", "inter_op_threads"])
@pytest.mark.parametrize("value", [-1, True, False, 1.5, "2"])
def test_invalid_thread_counts_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        Environment(**{field: value})


@pytest.mark.parametrize("value", [None, 0, 1, 4])
def test_valid_thread_counts_are_kept(value: int | None) -> None:
    env = Environment(intra_op_threads=value, inter_op_threads=value)
    assert env.intra_op_threads == value and env.inter_op_threads == value


def test_variables_drop_every_inherited_controlled_var(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CONTROLLED_VARS:
        monkeypatch.setenv(var, "inherited")
    monkeypatch.setenv("SINECHECK_TEST_UNRELATED", "kept")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    out = Environment(env={"KERAS_BACKEND": "tensorflow", "PYTHONHASHSEED": 0}).variables()
    assert out["KERAS_BACKEND"] == "tensorflow" and out["PYTHONHASHSEED"] == "0"
    leaked = [var for var in CONTROLLED_VARS if var not in ("KERAS_BACKEND", "PYTHONHASHSEED") and var in out]
    assert leaked == []
    assert out["SINECHECK_TEST_UNRELATED"] == "kept"
    assert out["PYTHONUNBUFFERED"] == "1" and out["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_every_worker_hashes_with_seed_0_but_a_second_instance_with_pythons_random_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One hash seed for all workers (a factor changes only what it names; the default environment's workers fork
    from one process), whatever the caller's shell says; the fresh-process factor's second process hashes like a
    user's next process; an environment that sets the seed keeps it in both."""
    monkeypatch.setenv("PYTHONHASHSEED", "123")
    assert Environment().variables()["PYTHONHASHSEED"] == DEFAULT_HASH_SEED == "0"
    assert Environment().variables(instance=1)["PYTHONHASHSEED"] == "random"
    one = Environment("h1", {"PYTHONHASHSEED": "1"})
    assert one.variables()["PYTHONHASHSEED"] == one.variables(instance=1)["PYTHONHASHSEED"] == "1"


def test_a_second_instance_is_started_with_its_own_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The pool gives a worker its instance, and the worker starts its interpreter with that instance's variables."""
    started: list[dict[str, str]] = []

    def popen(*args: Any, env: dict[str, str], **kwargs: Any) -> Any:
        started.append(env)
        raise OSError("not started (test)")

    monkeypatch.setattr(subprocess, "Popen", popen)
    with WorkerPool(workdir=tmp_path, fork=False) as pool:
        for instance in (0, 1):
            worker = pool.get(Environment(), instance)
            assert worker.instance == instance
            with pytest.raises(OSError, match="not started"):
                worker.start()
    assert [env["PYTHONHASHSEED"] for env in started] == ["0", "random"]


def test_variables_keep_the_callers_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert Environment().variables()["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_env_as_dict_or_tuple_gives_equal_hashable_environments() -> None:
    a = Environment(env={"TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow"})
    b = Environment(env=(("KERAS_BACKEND", "tensorflow"), ("TF_ENABLE_ONEDNN_OPTS", "0")))
    assert a == b and hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    assert a.env == (("KERAS_BACKEND", "tensorflow"), ("TF_ENABLE_ONEDNN_OPTS", "0"))
    assert a != Environment(env={"TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_BACKEND": "tensorflow"})
    assert a != Environment(env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert Environment(**a.to_dict()) == a


def test_describe() -> None:
    assert Environment().describe() == "default (TensorFlow defaults)"
    env = Environment(
        name="det", env={"TF_ENABLE_ONEDNN_OPTS": "0"}, intra_op_threads=1, inter_op_threads=2, op_determinism=True
    )
    assert env.describe() == "det (TF_ENABLE_ONEDNN_OPTS=0, threads 1/2, op determinism on)"


# -- real workers (TensorFlow; each process costs a few seconds) ------------------------------------------


@pytest.mark.timeout(60)
def test_fresh_processes_reproduce_the_in_process_run() -> None:
    from sinecheck.engines.registry import train

    outcomes = run_isolated([TINY, TINY])
    assert all(isinstance(o, RunResult) for o in outcomes), [str(o) for o in outcomes]
    a, b = outcomes
    assert compare(a, b).verdict is Verdict.IDENTICAL, compare(a, b).report()
    local = train(TINY)  # this process may have trained other things before: it must not matter
    assert compare(a, local).verdict is Verdict.IDENTICAL, compare(a, local).report()
    assert a.digests == local.digests
    assert a.config == TINY and a.options == {}


@pytest.mark.timeout(60)
def test_a_worker_imports_tensorflow_without_matplotlib_and_can_still_import_it() -> None:
    """Workers skip the matplotlib import Keras makes while TensorFlow imports (~0.5 s each); Keras goes on without
    its image-gallery helper, and matplotlib itself stays importable.  The garbage collector, off during the import,
    is on again afterwards, with the import's objects frozen out of later collections."""
    pytest.importorskip("matplotlib")
    script = textwrap.dedent(
        """
        import gc, sys
        from sinecheck.isolation.worker import _import_tensorflow
        frozen_before = gc.get_freeze_count()
        _import_tensorflow()
        finders = [type(f).__name__ for f in sys.meta_path]
        print("tensorflow" in sys.modules, "matplotlib" in sys.modules, "_RefuseMatplotlib" in finders)
        print(gc.isenabled(), frozen_before == 0 and gc.get_freeze_count() > 100_000)
        import matplotlib.pyplot
        print("matplotlib" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "False", "False", "True", "True", "True"], done.stdout


@pytest.mark.timeout(60)
def test_importing_tensorflow_leaves_a_disabled_collector_disabled() -> None:
    """`_import_tensorflow` turns the collector back on only if it was on (a caller's own `gc.disable` stands)."""
    script = textwrap.dedent(
        """
        import gc
        gc.disable()
        from sinecheck.isolation.worker import _import_tensorflow
        _import_tensorflow()
        print(gc.isenabled())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False"], done.stdout


CONTROLLED = Environment(
    name="controlled", env={"TF_ENABLE_ONEDNN_OPTS": "0"}, intra_op_threads=1, inter_op_threads=1, op_determinism=True
)


@pytest.fixture(scope="module")
def controlled_worker():
    """One real worker with every process-wide switch set (shared by the tests below to save start-ups)."""
    with Worker(CONTROLLED) as worker:
        worker.start()
        yield worker


@pytest.mark.timeout(60)
def test_worker_fingerprint_reports_its_environment(controlled_worker: Worker) -> None:
    fp = controlled_worker.fingerprint
    assert fp is not None
    assert fp["op_determinism"] is True
    assert fp["intra_op_threads"] == 1 and fp["inter_op_threads"] == 1
    assert fp["onednn"] is False
    result = controlled_worker.train(TINY)
    assert isinstance(result, RunResult), str(result)
    assert result.fingerprint["op_determinism"] is True and result.fingerprint["intra_op_threads"] == 1


@pytest.mark.timeout(60)
def test_initial_weights_and_unseeded_noise_pass_through(controlled_worker: Worker) -> None:
    shapes = {"layer0/kernel": (1, 8), "layer0/bias": (8,), "layer1/kernel": (8, 1), "layer1/bias": (1,)}
    rng = np.random.default_rng(5)
    start = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    a = controlled_worker.train(TINY, initial_weights=start, unseeded_noise=0.1)
    b = controlled_worker.train(TINY, initial_weights=start, unseeded_noise=0.1)
    assert isinstance(a, RunResult) and isinstance(b, RunResult), (str(a), str(b))
    assert compare(a.initial_weights, start).identical
    assert a.options == {"unseeded_noise": 0.1, "initial_weights": digest_tensors(start)}
    # the noise really reached training: same start, same seed, different final weights
    assert compare(a.initial_weights, b.initial_weights).identical
    assert not compare(a.final_weights, b.final_weights).identical


@pytest.mark.timeout(60)
def test_training_exception_is_a_run_error_and_the_worker_survives(controlled_worker: Worker) -> None:
    bad = {"wrong/name": np.zeros((1, 8), np.float32)}
    error = controlled_worker.train(TINY, initial_weights=bad)
    assert isinstance(error, RunError)
    assert error.kind == "exception" and error.environment == "controlled" and error.config == TINY
    assert "ValueError" in error.message and "initial_weights" in error.message
    pid = controlled_worker._proc.pid
    result = controlled_worker.train(TINY)
    assert isinstance(result, RunResult), str(result)
    assert controlled_worker._proc.pid == pid  # the same process served the next request


# -- failure modes with fake workers (no TensorFlow) ----------------------------------------------------

READY = 'print(json.dumps({"ready": True, "fingerprint": {"fake": True}}), flush=True)\n'
ANSWER_LOOP = """
for line in sys.stdin:
    if json.loads(line).get("kind") == "exit":
        break
    print(json.dumps({"ok": False, "error": "fake answer %d" % RUN}), flush=True)
"""
STARTUP_FAILS = """
sys.stderr.write("ModuleNotFoundError: No module named 'tensorflow_is_missing'\\n")
sys.exit(3)
"""
SEGFAULTS = """
sys.stdin.readline()
sys.stderr.write("Fatal Python error: Segmentation fault\\n")
os._exit(139)
"""
UNREADABLE_RESULT = """
sys.stdin.readline()
print(json.dumps({"ok": True, "path": "/nonexistent/sinecheck-result.json"}), flush=True)
sys.stdin.readline()
"""
CLOSES_STDOUT = """
sys.stdin.readline()
os.close(1)
time.sleep(3600)
"""


def fake_python(tmp_path: Path, *parts: str, name: str = "fake-python") -> str:
    """An executable script that stands in for the Python interpreter running ``-m sinecheck.isolation.worker``.

    The body is `parts`, each dedented on its own.  It can read ``RUN``: how many times this script has
    been started (1 the first time).
    """
    path = tmp_path / name
    counter = tmp_path / f"{name}.count"
    head = f"""#!{sys.executable}
import json, os, subprocess, sys, time
from pathlib import Path
from typing import Any
_count = Path({str(counter)!r})
RUN = int(_count.read_text()) + 1 if _count.exists() else 1
_count.write_text(str(RUN))
"""
    path.write_text(head + "".join(textwrap.dedent(p) for p in parts))
    path.chmod(0o755)
    return str(path)


def fake_worker(
    tmp_path: Path, *parts: str, environment: Environment | None = None, startup_timeout: float = STARTUP_TIMEOUT_S
) -> Worker:
    """A `Worker` whose interpreter is ``fake_python(tmp_path, *parts)``, working in ``tmp_path / "w"``."""
    python = fake_python(tmp_path, *parts)
    return Worker(environment or Environment(), python=python, workdir=tmp_path / "w", startup_timeout=startup_timeout)


def is_dead(worker: Worker) -> bool:
    return worker._proc is not None and worker._proc.poll() is not None


@pytest.mark.timeout(30)
def test_worker_is_started_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("TF_DETERMINISTIC_OPS", "1")
    env = Environment(name="e", env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    with fake_worker(
        tmp_path,
        """
        seen = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in ("KERAS_BACKEND",
                "TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS", "PYTHONUNBUFFERED")}}
        print(json.dumps({"ready": True, "fingerprint": seen}), flush=True)
        sys.stdin.readline()
    """,
        environment=env,
    ) as worker:
        worker.start()
        seen = worker.fingerprint
    assert seen["argv"][:2] == ["-m", "sinecheck.isolation.worker"] and json.loads(seen["argv"][2]) == env.to_dict()
    assert seen["env"] == {
        "KERAS_BACKEND": None,
        "TF_DETERMINISTIC_OPS": None,
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    assert is_dead(worker)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("parts", "kind", "message", "stderr"),
    [
        pytest.param((STARTUP_FAILS,), "startup", "status 3", "tensorflow_is_missing", id="startup-failure"),
        pytest.param((READY, SEGFAULTS), "crash", "status 139", "Segmentation fault", id="crash-during-a-request"),
        pytest.param((READY, UNREADABLE_RESULT), "exception", "nonexistent", "", id="unreadable-result"),
    ],
)
def test_failed_request_is_a_run_error_that_names_the_cause(
    tmp_path: Path, parts: tuple[str, ...], kind: str, message: str, stderr: str
) -> None:
    with fake_worker(tmp_path, *parts, environment=Environment(name="broken")) as worker:
        error = worker.train(TINY)
    assert isinstance(error, RunError) and error.kind == kind and error.environment == "broken"
    assert message in error.message
    assert stderr in error.stderr_tail and stderr in str(error)  # the worker's stderr is carried


@pytest.mark.timeout(30)
def test_worker_that_reports_not_ready_is_a_startup_error_and_is_stopped(tmp_path: Path) -> None:
    with fake_worker(
        tmp_path,
        """
        print(json.dumps({"ready": False, "error": "cannot import tensorflow"}), flush=True)
        time.sleep(3600)
    """,
    ) as worker:
        error = worker.train(TINY)
        assert isinstance(error, RunError) and error.kind == "startup"
        assert "cannot import tensorflow" in error.message
        assert is_dead(worker)  # not left running, and not reused as if it were a worker


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("parts", "startup_timeout", "timeout", "kind", "seconds"),
    [
        pytest.param((READY, "time.sleep(3600)\n"), STARTUP_TIMEOUT_S, 2, "timeout", (1.5, 10), id="hung-times-out"),
        # the default timeout is 10 minutes: only the end of stdout can end this
        pytest.param(
            (READY, CLOSES_STDOUT), STARTUP_TIMEOUT_S, DEFAULT_TIMEOUT_S, "crash", (0, 15), id="closes-stdout-lives-on"
        ),
        pytest.param(("time.sleep(3600)\n",), 1, DEFAULT_TIMEOUT_S, "startup", (0, 10), id="never-says-ready"),
    ],
)
def test_stuck_worker_is_a_run_error_in_time_and_is_killed(
    tmp_path: Path,
    parts: tuple[str, ...],
    startup_timeout: float,
    timeout: float,
    kind: str,
    seconds: tuple[float, float],
) -> None:
    with fake_worker(tmp_path, *parts, startup_timeout=startup_timeout) as worker:
        t0 = time.monotonic()
        error = worker.train(TINY, timeout=timeout)
        elapsed = time.monotonic() - t0
        assert isinstance(error, RunError) and error.kind == kind, str(error)
        assert seconds[0] < elapsed < seconds[1]
        assert is_dead(worker)


@pytest.mark.timeout(30)
def test_non_protocol_output_is_ignored_and_an_error_reply_is_an_exception(tmp_path: Path) -> None:
    with fake_worker(
        tmp_path,
        """
        print("a library greeting on stdout", flush=True)
        print("{not json, but starts like it", flush=True)
        print(json.dumps(["a", "json", "list"]), flush=True)
    """,
        READY,
        """
        sys.stdin.readline()
        print("more chatter", flush=True)
        print(json.dumps({"ok": False, "error": "boom"}), flush=True)
        sys.stdin.readline()
    """,
    ) as worker:
        error = worker.train(TINY)
        assert worker.fingerprint == {"fake": True}
        assert isinstance(error, RunError) and error.kind == "exception" and error.message == "boom"
        assert worker._proc.poll() is None  # an error reply does not end the worker


@pytest.mark.timeout(30)
def test_crashed_worker_is_replaced_by_a_new_process(tmp_path: Path) -> None:
    with fake_worker(
        tmp_path,
        READY,
        """
        if RUN == 1:
            sys.stdin.readline()
            sys.exit(1)
    """,
        ANSWER_LOOP,
    ) as worker:
        first = worker.train(TINY)
        assert isinstance(first, RunError) and first.kind == "crash"
        second = worker.train(TINY)
        assert isinstance(second, RunError) and second.kind == "exception"
        assert second.message == "fake answer 2"  # answered by the second process
        third = worker.train(TINY)
        assert third.message == "fake answer 2"  # which keeps serving


@pytest.mark.timeout(30)
def test_failed_restart_is_a_startup_error(tmp_path: Path) -> None:
    with fake_worker(
        tmp_path,
        """
        if RUN == 2:
            sys.stderr.write("second start failed\\n")
            sys.exit(2)
    """,
        READY,
        """
        sys.stdin.readline()
        sys.exit(1)
    """,
    ) as worker:
        assert worker.train(TINY).kind == "crash"
        error = worker.train(TINY)
        assert error.kind == "startup", str(error)  # not "crash": this process never became a worker
        assert "second start failed" in error.stderr_tail
        assert worker.fingerprint is None


@pytest.mark.timeout(30)
def test_restarted_worker_does_not_see_the_end_of_the_previous_process(tmp_path: Path) -> None:
    """Process 1 times out while a child of it still holds its stdout open; that stdout ends (the child
    exits) while process 2 is working on a request.  The end of the old stream must not be taken for the
    end of the new one."""
    with fake_worker(
        tmp_path,
        READY,
        """
        if RUN == 1:
            sys.stdin.readline()
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])  # inherits stdout
            sys.exit(0)
        sys.stdin.readline()
        time.sleep(3.5)
        print(json.dumps({"ok": False, "error": "late answer"}), flush=True)
        sys.stdin.readline()
    """,
    ) as worker:
        assert worker.train(TINY, timeout=0.5).kind == "timeout"
        error = worker.train(TINY, timeout=20)
        assert error.kind == "exception" and error.message == "late answer", str(error)


@pytest.mark.timeout(30)
def test_pool_reuses_workers_per_environment_and_instance(tmp_path: Path) -> None:
    python = fake_python(tmp_path, READY, "RUN = 0\n", ANSWER_LOOP)
    pool = WorkerPool(python=python)
    env = Environment(name="e", env={"TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow"})
    same = Environment(name="e", env=(("KERAS_BACKEND", "tensorflow"), ("TF_ENABLE_ONEDNN_OPTS", "0")))
    try:
        first = pool.get(env)
        assert pool.get(same) is first and pool.get(env, 0) is first
        second = pool.get(env, instance=1)
        other = pool.get(Environment(name="other"))
        assert len({id(first), id(second), id(other)}) == 3
        workers = [first, second, other]
        for w in workers:
            assert w.python == python
            assert w.train(TINY).message == "fake answer 0"
        assert len({w._proc.pid for w in workers}) == 3
    finally:
        pool.close()
    assert all(is_dead(w) for w in workers)
    assert not pool.workdir.exists()
    assert pool.get(env) is not first  # a closed pool starts over
    pool.close()
