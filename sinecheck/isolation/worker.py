"""The worker process behind `sinecheck.isolation`: ``python -m sinecheck.isolation.worker ENVIRONMENT_JSON``.

It applies the process-wide settings before anything trains, then answers JSON-line requests on
stdin.  The protocol uses a private copy of the original stdout; file descriptor 1 is pointed at stderr
so that nothing a library prints can corrupt a reply.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from sinecheck._io import load_tensors
from sinecheck.checks.bench import epoch_runner, time_runner
from sinecheck.checks.trace import Trace, trace_fit
from sinecheck.core.config import TrainConfig
from sinecheck.engines.registry import train
from sinecheck.errors import ConfigError
from sinecheck.isolation.protocol import RequestKind
from sinecheck.keras.probes import epoch_orders
from sinecheck.keras.runtime import probed_fingerprint

_RUNNERS: dict[tuple[str, int], Any] = {}  # bench_fit's built models, for this worker process's lifetime


def _apply(environment: dict[str, Any]) -> None:
    import tensorflow as tf

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
    result = train(config, initial_weights=initial, unseeded_noise=request.get("unseeded_noise", 0.0))
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


#: What the worker does for each kind of request (EXIT is handled by the request loop).
HANDLERS: dict[RequestKind, Callable[[TrainConfig, Request], Reply]] = {
    RequestKind.TRAIN: _train,
    RequestKind.SHUFFLE_ORDERS: _shuffle_orders,
    RequestKind.TRACE: _trace,
    RequestKind.BENCH_FIT: _bench_fit,
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


def main() -> int:
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    environment = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
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


if __name__ == "__main__":
    sys.exit(main())
