"""A fork server: one process imports TensorFlow once, and workers whose environment it can serve are forked from it.

Importing TensorFlow takes about 4 s of CPU here, and the matrix needs up to a dozen workers, most of which train
one run: their imports were a third of a matrix's cost.  The variables TensorFlow and Keras read when they are
imported (oneDNN, the Keras backend, Keras 2 vs 3, the hash seed Python draws at start-up) cannot change after the
import, but thread counts and op determinism are applied before TensorFlow's runtime starts, which importing it
does not do.  So the server, started with TensorFlow's defaults, imports TensorFlow and nothing else, trains
nothing, and forks a worker for each `Environment` that differs from the defaults only in those settings
(`forkable`); every other environment, and every second instance of one (the fresh-process factor's second
process), is a new interpreter as before.  A forked worker has trained nothing, its runtime starts in the child,
and it shares only the server's import (and so its hash seed) with its siblings.

The server is ``python -m sinecheck.isolation.worker --fork-server FD``: requests come on the Unix socket FD, each
with the child's stdin, stdout and stderr as passed file descriptors; the server answers with the child's pid and
later reports its exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from sinecheck.errors import WorkerDied
from sinecheck.isolation.environment import Environment

#: How long the server may take to import TensorFlow and say it is ready.
SERVER_STARTUP_TIMEOUT_S = 180.0
#: The bytes one control message may take (a JSON object; the environment variables are the largest part).
MAX_MESSAGE = 1 << 20


def forkable(environment: Environment, *, instance: int, python: str) -> bool:
    """Whether a worker for `environment` can be forked from a server started with TensorFlow's defaults: no
    variable of its own (those are read at import), the server's interpreter, and the first instance (a second
    instance is the fresh-process factor's own new interpreter)."""
    return instance == 0 and not environment.env and environment.python is None and python == sys.executable


class ForkedProcess:
    """A worker forked by the server, seen through the part of `subprocess.Popen` the pool uses."""

    def __init__(self, server: ForkServer, pid: int, stdin: IO[str], stdout: IO[str]) -> None:
        self._server = server
        self.pid = pid
        self.stdin: IO[str] | None = stdin
        self.stdout: IO[str] | None = stdout

    @property
    def returncode(self) -> int | None:
        return self._server.exit_status(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        status = self._server.wait_exit(self.pid, timeout)
        if status is None:
            raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0.0)
        return status

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The parent's side of the fork server: start it once, then `spawn` workers; `close` ends it (not its
    workers: each is ended by its own `Worker`)."""

    def __init__(self, *, workdir: Path, python: str = sys.executable) -> None:
        self.python = python
        self.workdir = workdir
        self.variables = Environment().variables()  # what the server imported TensorFlow with
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # one spawn at a time on the control socket
        self._start_lock = threading.Lock()  # one start, however many workers want the server at once
        self._changed = threading.Condition()
        self._replies: list[dict[str, Any]] = []
        self._exits: dict[int, int] = {}
        self._ended = False
        self._ready = False
        self.startup_error: str | None = None

    def serves(self, environment: Environment) -> bool:
        """Whether a child forked now would get the variables `environment` would give a new interpreter."""
        return environment.variables() == self.variables

    def start(self) -> None:
        """Start the server and wait until it has imported TensorFlow; raise `WorkerDied` if it cannot."""
        with self._start_lock:
            self._start()

    def _start(self) -> None:
        if self._proc is not None:
            if self._ended:
                raise WorkerDied(self.startup_error or "the fork server has ended")
            return
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # keeps message boundaries
        stderr_path = self.workdir / f"fork-server-{id(self):x}.stderr"
        with open(stderr_path, "wb") as stderr:
            self._proc = subprocess.Popen(
                [self.python, "-m", "sinecheck.isolation.worker", "--fork-server", str(child.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.variables,
                pass_fds=(child.fileno(),),
            )
        child.close()
        self._sock = parent
        threading.Thread(target=self._listen, args=(parent,), daemon=True).start()
        reply = self._next_reply(SERVER_STARTUP_TIMEOUT_S)
        if not reply.get("ready"):
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            self.startup_error = f"fork server did not start: {reply.get('error', '')}{tail}".strip()
            self.close()
            raise WorkerDied(self.startup_error)
        self._ready = True

    def _listen(self, sock: socket.socket) -> None:
        """Read the server's JSON lines: replies to spawns, and exit statuses of forked workers."""
        while True:
            try:
                packet = sock.recv(MAX_MESSAGE)
            except OSError:
                packet = b""
            if not packet:
                break
            message = json.loads(packet)
            with self._changed:
                if "exited" in message:
                    self._exits[int(message["exited"])] = int(message["status"])
                else:
                    self._replies.append(message)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _next_reply(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._replies:
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    return {"error": "the fork server ended" if self._ended else f"no answer within {timeout:g} s"}
                self._changed.wait(remaining)
            return self._replies.pop(0)

    def exit_status(self, pid: int) -> int | None:
        """A forked worker's exit status once it has ended (a signal as ``-N``, like `subprocess`), else None."""
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            if self._ended:  # the server is gone and cannot report: the worker's end is seen by its own pipe
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return self._exits.setdefault(pid, -1)
            return None

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.exit_status(pid)
            if status is not None:
                return status
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            with self._changed:
                self._changed.wait(0.2 if remaining is None else min(remaining, 0.2))

    def spawn(self, environment: Environment, stderr_path: Path, timeout: float) -> ForkedProcess:
        """Fork a worker for `environment`: its stdin and stdout are pipes to this process, its stderr
        `stderr_path`.  Raise `WorkerDied` when the server cannot."""
        self.start()
        assert self._sock is not None
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        request = {"environment": environment.to_dict(), "variables": environment.variables()}
        try:
            with self._lock:
                try:
                    socket.send_fds(self._sock, [json.dumps(request).encode()], [stdin_r, stdout_w, stderr])
                except OSError as exc:
                    raise WorkerDied(f"cannot reach the fork server: {exc}") from None
                reply = self._next_reply(timeout)
        finally:
            for fd in (stdin_r, stdout_w, stderr):
                os.close(fd)
        if "pid" not in reply:
            os.close(stdin_w)
            os.close(stdout_r)
            raise WorkerDied(str(reply.get("error", "the fork server could not fork a worker")))
        writer = os.fdopen(stdin_w, "w", encoding="utf-8", buffering=1)
        reader = os.fdopen(stdout_r, "r", encoding="utf-8")
        return ForkedProcess(self, int(reply["pid"]), writer, reader)

    def abandon_start(self) -> None:
        """Kill the server if it is still importing TensorFlow (nothing is forked from it then); a ready one is
        left alone.  Its start then fails with `WorkerDied`, as do the spawns waiting for it."""
        if self._proc is not None and not self._ready and self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        """End the server (its forked workers live on until their own `Worker` ends them); a server still importing
        TensorFlow is killed, not waited for."""
        self.abandon_start()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with self._changed:
            self._ended = True
            self._changed.notify_all()
