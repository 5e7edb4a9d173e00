"""The worker process behind `sinecheck.isolation`: ``python -m sinecheck.isolation.worker ENVIRONMENT_JSON``.

It applies the process-wide settings before anything trains, then answers JSON-line requests on
stdin.  The protocol uses a private copy of the original stdout; file descriptor 1 is pointed at stderr
so that nothing a library prints can corrupt a reply.  A worker leaves with ``os._exit`` once its replies are
flushed: finalizing an interpreter that has run TensorFlow took ~0.9 s of CPU per worker, for nothing.

``python -m sinecheck.isolation.worker --fork-server FD`` is the fork server of `sinecheck.isolation.forkserver`:
it imports TensorFlow once and forks workers on request.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from sinecheck._io import load_tensors
from sinecheck.checks.bench import epoch_runner, time_runner
from sinecheck.checks.trace import Trace, trace_fit
from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import ModelSpec
from sinecheck.engines.registry import train
from sinecheck.errors import ConfigError, SpecError
from sinecheck.isolation.forkserver import MAX_MESSAGE
from sinecheck.isolation.protocol import RequestKind
from sinecheck.keras.probes import epoch_orders
from sinecheck.keras.runtime import probed_fingerprint
from sinecheck.keras.validate import validate_model_spec

_RUNNERS: dict[tuple[str, int], Any] = {}  # bench_fit's built models, for this worker process's lifetime


class _RefuseMatplotlib:
    """A meta-path finder that refuses matplotlib, put in place while TensorFlow imports (`_import_tensorflow`)."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (while a sinecheck worker imports TensorFlow)", name=name
            )


def _import_tensorflow() -> Any:
    """Import TensorFlow the cheap way, for a process that will train:

    - without the matplotlib import Keras makes on the way (it tries ``matplotlib.pyplot`` for
      ``keras.visualization.plot_image_gallery`` and goes on without it): ~0.5 s of a ~3 s import.  matplotlib stays
      importable afterwards, for a model module or anything else that imports it;
    - without Python's cyclic garbage collector, which walked the import's new objects again and again (~0.25 s);
    - then frozen (``gc.freeze``): the import's objects, which live as long as the process, are left out of every
      later collection — Keras's ``clear_session`` collects before each run, tracing triggers more — and a forked
      worker does not copy their pages by touching them.

    None of it changes what runs compute; a process that has TensorFlow already gets it as it is."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    refuse = None if "matplotlib" in sys.modules else _RefuseMatplotlib()
    collecting = gc.isenabled()
    gc.disable()
    if refuse is not None:
        sys.meta_path.insert(0, refuse)
    try:
        import tensorflow as tf
    finally:
        if refuse is not None:
            sys.meta_path.remove(refuse)
        if collecting:
            gc.enable()
    gc.freeze()
    return tf


def _apply(environment: dict[str, Any]) -> None:
    tf = _import_tensorflow()

    intra, inter = environment.get("intra_op_threads"), environment.get("inter_op_threads")
    if intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    if environment.get("op_determinism"):
        tf.config.experimental.enable_op_determinism()


Request = dict[str, Any]
Reply = dict[str, Any]


def _train(config: TrainConfig, request: Request) -> Reply:
    initial = load_tensors(request["initial_weights"]) if request.get("initial_weights") else None
    result = train(
        config,
        initial_weights=initial,
        unseeded_noise=request.get("unseeded_noise", 0.0),
        compiled_metrics=request.get("compiled_metrics", True),
    )
    json_path, _ = result.save(request["out"])
    return {"ok": True, "path": str(json_path)}


def _shuffle_orders(config: TrainConfig, request: Request) -> Reply:
    orders = epoch_orders(config, epochs=int(request.get("epochs", 3)))
    return {"ok": True, "orders": [o.tolist() for o in orders]}


def _trace(config: TrainConfig, request: Request) -> Reply:
    initial = Trace.load(request["initial_from"]).initial if request.get("initial_from") else None
    trace = trace_fit(
        config,
        initial_weights=initial,
        unseeded_noise=request.get("unseeded_noise", 0.0),
        focus_step=request.get("focus_step"),
    )
    return {"ok": True, "path": str(trace.save(request["out"]))}


def _bench_fit(config: TrainConfig, request: Request) -> Reply:
    """The model is built once per (config, epochs per call); later calls only time epochs."""
    key = (config.config_id, int(request["epochs_per_call"]))
    if key not in _RUNNERS:
        _RUNNERS[key] = epoch_runner("keras", config, epochs_per_call=key[1])
    runner = _RUNNERS[key]
    return {
        "ok": True,
        "first_call_s": runner.first_call_s,
        "first_losses": [float(v) for v in runner.first_losses],
        "epoch_ms": time_runner(runner, rounds=int(request["rounds"])),
    }


def _validate(config: TrainConfig, request: Request) -> Reply:
    """`validate_model_spec` on the config's model and data; a problem is its one-line `SpecError`."""
    if config.model is None:
        return {"ok": True}
    try:
        validate_model_spec(ModelSpec(config.model, config.data), batch_size=config.batch_size)
    except SpecError as exc:
        return {"ok": False, "spec_error": str(exc), "error": str(exc)}
    return {"ok": True}


#: What the worker does for each kind of request (EXIT is handled by the request loop).
HANDLERS: dict[RequestKind, Callable[[TrainConfig, Request], Reply]] = {
    RequestKind.TRAIN: _train,
    RequestKind.SHUFFLE_ORDERS: _shuffle_orders,
    RequestKind.TRACE: _trace,
    RequestKind.BENCH_FIT: _bench_fit,
    RequestKind.VALIDATE: _validate,
}


def _handle(request: Request) -> Reply:
    try:
        handler = HANDLERS[RequestKind(request["kind"])]
    except (KeyError, ValueError):
        return {"ok": False, "error": f"unknown request kind {request.get('kind')!r}"}
    return handler(TrainConfig.from_dict(request["config"]), request)


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def serve(environment: dict[str, Any]) -> int:
    """Apply `environment`, say ready (with the fingerprint), then answer requests on stdin until EXIT or its end."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        _apply(environment)
        _send(channel, {"ready": True, "fingerprint": probed_fingerprint(probe_tensorflow=True)})
    except Exception:
        _send(channel, {"ready": False, "error": traceback.format_exc(limit=5)})
        return 1
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("kind") == RequestKind.EXIT:
            break
        try:
            reply = _handle(request)
        except ConfigError as exc:  # a one-line refusal: the message says it all
            reply = {"ok": False, "refused": True, "error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"}
        _send(channel, reply)
    return 0


def _leave(code: int) -> None:
    """Flush what Python buffers and end the process now (no interpreter finalization: see the module docstring)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def fork_server(fd: int) -> int:
    """Import TensorFlow, say ready on the socket `fd`, then fork a worker per request (see
    `sinecheck.isolation.forkserver`); reap them and report their exit statuses; end when the socket closes."""
    control = socket.socket(fileno=fd)
    try:
        _import_tensorflow()  # the import every forked worker shares
    except Exception:
        _report(control, {"ready": False, "error": traceback.format_exc(limit=5)})
        return 1
    _report(control, {"ready": True})
    while True:
        readable, _, _ = select.select([control], [], [], 0.2)
        _reap(control)
        if not readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 3)
        except OSError:
            break
        if not message:
            break  # the pool closed the socket: its workers live on until it ends them
        request = json.loads(message)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _forked_worker(control, fds, request)  # never returns
        for descriptor in fds:
            os.close(descriptor)
        _report(control, {"pid": pid})
    return 0


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(control, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def _report(control: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the pool is gone; its workers are ended through their own pipes
        control.send(json.dumps(message).encode())


def _forked_worker(control: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: take the passed stdin, stdout and stderr, the pool's variables, and serve."""
    code = 1
    try:
        control.close()
        for target, descriptor in zip((0, 1, 2), fds, strict=True):
            os.dup2(descriptor, target)
            os.close(descriptor)
        os.environ.clear()
        os.environ.update(request["variables"])
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own stdin
        sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        code = serve(request["environment"])
    except BaseException:
        traceback.print_exc()
    finally:
        _leave(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--fork-server"]:
        return fork_server(int(args[1]))
    return serve(json.loads(args[0]) if args else {})


if __name__ == "__main__":
    _leave(main())
