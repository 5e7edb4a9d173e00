"""Run configs in fresh Python processes under a controlled environment.

Process-wide switches (op determinism, thread pools, oneDNN, the Keras backend, Keras 2 vs 3) cannot be
flipped back inside one process, so every environment gets its own worker subprocess.  A worker serves
many requests, paying the TensorFlow import once.  Requests and replies are JSON lines; arrays travel as
``.npz`` files (never pickle).  A crash, a hang or an import error becomes a `RunError` with the worker's
stderr, never a hung caller.  A pool forks the workers of environments that differ from TensorFlow's defaults only
in thread counts and op determinism from one process that imported TensorFlow once (`sinecheck.isolation.forkserver`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import save_tensors
from sinecheck.core.config import TrainConfig
from sinecheck.core.environment import Fingerprint
from sinecheck.core.result import RunResult
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import SpecError, WorkerDied
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.forkserver import ForkedProcess, ForkServer, forkable
from sinecheck.isolation.protocol import RequestKind, RunErrorKind

DEFAULT_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 180.0


@dataclass
class RunError:
    """A run that produced no result: the worker crashed, hung, failed to start, or training raised."""

    config: TrainConfig
    environment: str
    kind: RunErrorKind
    message: str
    stderr_tail: str = ""
    diverged: bool = field(default=False, init=False)

    def __str__(self) -> str:
        tail = f"\n--- worker stderr (last lines) ---\n{self.stderr_tail}" if self.stderr_tail else ""
        return f"{self.kind} in environment {self.environment}: {self.message}{tail}"


Outcome = RunResult | RunError


class Worker:
    """One long-lived Python subprocess with a fixed `Environment`, serving train requests in order."""

    def __init__(
        self,
        environment: Environment,
        *,
        workdir: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        fork_server: ForkServer | None = None,
        instance: int = 0,
    ) -> None:
        self.environment = environment
        self.instance = instance  # 1: a second fresh process of the environment (`Environment.variables`)
        self.fork_server = fork_server  # forks this worker when it serves its environment; else a new interpreter
        self.python = python
        self.startup_timeout = startup_timeout
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sinecheck-worker-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[str] | ForkedProcess | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_path = self.workdir / f"{environment.name}-{id(self):x}.stderr"
        self._counter = 0
        self.fingerprint: Fingerprint | None = None  # as the worker reported it
        self.startup_error: str | None = None
        self._start_lock = threading.Lock()  # a prestart in the background and a first request start one process
        self._closing = threading.Event()  # set by `close`: a start under way is abandoned, not waited for

    # -- process management ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the process and wait until it has imported TensorFlow and applied the environment."""
        with self._start_lock:
            self._start()

    def prestart(self) -> None:
        """`start` in the background: the process imports TensorFlow while the caller goes on.  A failure is not
        raised here: the first request starts the worker again and reports it."""

        def start_quietly() -> None:
            with contextlib.suppress(WorkerDied):
                self.start()

        threading.Thread(target=start_quietly, daemon=True).start()

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.fingerprint = None  # a failed (re)start is a startup error, whatever an earlier process said
        self._lines = queue.Queue()
        if self._closing.is_set():
            raise WorkerDied("the pool is closing")
        if self.fork_server is not None and self.fork_server.serves(self.environment):
            self._proc = self.fork_server.spawn(self.environment, self._stderr_path, self.startup_timeout)
        else:
            self._proc = self._popen()
        if self._closing.is_set():  # `close` came while the process was being made: it may not have seen it
            self.kill()
        # The reader gets this process's own queue: a reader of an earlier process that only now sees
        # end-of-file must not report it to the new process's caller.
        threading.Thread(target=self._pump, args=(self._proc, self._lines), daemon=True).start()
        reply = self._receive(self.startup_timeout)
        if not reply.get("ready"):
            self.kill()  # alive but not a working worker: the next request must start a fresh one
            raise WorkerDied(reply.get("error", "worker did not report ready"))
        self.fingerprint = reply.get("fingerprint")

    def _popen(self) -> subprocess.Popen[str]:
        """A new interpreter running the worker module with the environment's variables."""
        args = [self.python, "-m", "sinecheck.isolation.worker", json.dumps(self.environment.to_dict())]
        with open(self._stderr_path, "w", encoding="utf-8") as stderr:
            return subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=self.environment.variables(instance=self.instance),
                bufsize=1,
            )

    @staticmethod
    def _pump(proc: subprocess.Popen[str] | ForkedProcess, lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self.kill()
                raise WorkerDied(f"no answer within {timeout:g} s (killed)") from None
            if line is None:
                # stdout is closed; the process normally exits with it, but one that closed its stdout and
                # kept running must not hang the caller.
                code = None
                if self._proc is not None:
                    try:
                        code = self._proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self.kill()
                        code = self._proc.returncode
                raise WorkerDied(f"worker exited with status {code}")
            if line.startswith("{"):
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not a protocol line (something else printed to the real stdout)
                if isinstance(message, dict):
                    return message

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self._stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        noise = ("I0000 ", "WARNING: All log messages", "To enable the following instructions")
        kept = [ln for ln in text.splitlines() if not ln.startswith(noise)]
        return "\n".join(kept[-lines:])

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def request_exit(self) -> None:
        """Ask the worker to exit without waiting (so a pool can let all its workers wind down at once)."""
        if self._proc is not None and self._proc.poll() is None and self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.write(json.dumps({"kind": RequestKind.EXIT}) + "\n")
                self._proc.stdin.flush()
                self._proc.stdin.close()
            except OSError:
                self.kill()

    def close(self) -> None:
        """Ask the worker to exit (kill it if it does not within 10 s), and remove its temporary directory.  A worker
        still starting (importing TensorFlow) is killed at once: a pool closed early, e.g. on a bad model spec, does
        not wait for imports nobody will use.  A closed worker does not start again."""
        self._closing.set()
        proc = self._proc
        if proc is not None and self.fingerprint is None and proc.poll() is None:
            proc.kill()  # still starting (or never ready); `_start` then fails and lets go of the lock
        with self._start_lock:  # a start under way ends first, so that no process outlives its pool
            self.request_exit()
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------------
    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its reply; start (or restart) the process as needed."""
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(payload) + "\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise WorkerDied(f"cannot write to worker: {exc}") from None
        return self._receive(timeout)

    def _error(self, config: TrainConfig, kind: RunErrorKind, message: str) -> RunError:
        return RunError(config, self.environment.name, kind, message, self.stderr_tail())

    def train(
        self,
        config: TrainConfig,
        *,
        initial_weights: Mapping[str, np.ndarray] | None = None,
        unseeded_noise: float = 0.0,
        compiled_metrics: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> Outcome:
        """Train `config` in the worker; a failure of any kind comes back as a `RunError`.  `compiled_metrics=False`:
        no ``evaluate`` of a user's model after training (see `sinecheck.engines.registry.train`)."""
        self._counter += 1
        stem = self.workdir / f"run-{id(self):x}-{self._counter}"
        payload: dict[str, Any] = {
            "kind": RequestKind.TRAIN,
            "config": config.to_dict(),
            "out": str(stem),
            "unseeded_noise": unseeded_noise,
            "compiled_metrics": compiled_metrics,
        }
        if initial_weights is not None:
            init_path = stem.with_name(stem.name + "-init.npz")
            save_tensors(init_path, initial_weights)
            payload["initial_weights"] = str(init_path)
        try:
            reply = self.request(payload, timeout)
        except WorkerDied as exc:
            kind = (
                RunErrorKind.STARTUP
                if self.fingerprint is None
                else (RunErrorKind.TIMEOUT if "no answer" in str(exc) else RunErrorKind.CRASH)
            )
            return self._error(config, kind, str(exc))
        if not reply.get("ok"):
            kind = RunErrorKind.REFUSED if reply.get("refused") else RunErrorKind.EXCEPTION
            return RunError(config, self.environment.name, kind, reply.get("error", "unknown error"))
        try:
            result = RunResult.load(reply["path"])
        except (KeyError, ValueError, OSError) as exc:  # e.g. a worker interpreter with another sinecheck
            return self._error(config, RunErrorKind.EXCEPTION, f"cannot read the worker's result: {exc}")
        for suffix in (".json", ".npz"):
            Path(str(stem) + suffix).unlink(missing_ok=True)
        return result

    def call(self, kind: RequestKind, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """Any other request (e.g. ``shuffle_orders``): the reply dict, or raise `WorkerDied`/`RuntimeError`."""
        reply = self.request({"kind": kind, **payload}, timeout)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "unknown error"))
        return reply


class WorkerPool:
    """Workers keyed by (environment, instance): instance 1 of an environment is a second fresh process.

    With `fork` (the default), workers whose environment allows it are forked from one fork server
    (`sinecheck.isolation.forkserver.forkable`); ``fork=False`` starts every worker as a new interpreter.
    """

    def __init__(
        self, *, workdir: str | os.PathLike[str] | None = None, python: str = sys.executable, fork: bool = True
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sinecheck-pool-"))
        self.python = python
        self.fork = fork
        self._workers: dict[tuple[Environment, int], Worker] = {}
        self._lock = threading.Lock()
        self._fork_server: ForkServer | None = None

    def get(self, environment: Environment, instance: int = 0) -> Worker:
        with self._lock:
            key = (environment, instance)
            if key not in self._workers:
                python = environment.python or self.python
                server = None
                if self.fork and forkable(environment, instance=instance, python=python):
                    if self._fork_server is None:
                        self._fork_server = ForkServer(workdir=self.workdir, python=python)
                    server = self._fork_server
                self._workers[key] = Worker(
                    environment, workdir=self.workdir, python=python, fork_server=server, instance=instance
                )
            return self._workers[key]

    def close(self) -> None:
        """Stop every worker: all are asked to exit first, then each is waited for (or killed); then the fork server.
        Processes still importing TensorFlow are killed at once (see `Worker.close`)."""
        if self._fork_server is not None:
            self._fork_server.abandon_start()  # the workers waiting for it to fork them then give up too
        for worker in self._workers.values():
            worker.request_exit()
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
        if self._fork_server is not None:
            self._fork_server.close()
            self._fork_server = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def prestart(self, keys: Iterable[tuple[Environment, int]]) -> None:
        """Start the workers of these (environment, instance) keys in the background: their imports run while the
        caller validates or trains elsewhere (see `Worker.prestart`)."""
        for environment, instance in keys:
            self.get(environment, instance).prestart()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_isolated(pool: WorkerPool, specs: Iterable[ModelSpec], *, batch_size: int = 32) -> None:
    """`sinecheck.keras.validate.validate_model_spec` for each spec, in the pool's default worker (so the caller
    never imports TensorFlow): its one-line `SpecError` is raised here; a worker that cannot start is `WorkerDied`."""
    worker = pool.get(Environment())
    for spec in specs:
        config = spec.config(batch_size=batch_size)
        reply = worker.request({"kind": RequestKind.VALIDATE, "config": config.to_dict()}, DEFAULT_TIMEOUT_S)
        if reply.get("spec_error"):
            raise SpecError(reply["spec_error"])
        if not reply.get("ok"):
            raise WorkerDied(reply.get("error", "validation failed in the worker"))


def run_isolated(
    configs: list[TrainConfig], environment: Environment | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> list[Outcome]:
    """Train each config in one fresh worker process of `environment` (default: TensorFlow's defaults)."""
    with Worker(environment or Environment()) as worker:
        return [worker.train(cfg, timeout=timeout) for cfg in configs]
