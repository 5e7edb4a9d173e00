"""The fused engine: the whole of ``fit`` — every epoch and step — inside one TensorFlow graph.

Keras ``fit`` on this model is overhead-bound: each step costs ~2 ms of Python and dispatch around
microseconds of arithmetic.  This engine runs the identical per-step computation — Keras's own layers,
``compute_loss``, loss tracker, ``GradientTape`` and ``optimizer.apply_gradients``, in the same order as
Keras's TensorFlow ``train_step`` — inside one ``tf.function`` loop over epochs and batches (including the
last partial batch), visiting the samples in the order ``fit`` would (taken from Keras's own data adapter).
Only Keras versions where that equality was checked bit for bit are accepted (see `TESTED_KERAS`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sinecheck.config import ConfigError, TrainConfig
from sinecheck.engines.common import Start, finish, fresh_start
from sinecheck.models import keras_module
from sinecheck.result import RunResult
from sinecheck.seeding import keras_backend, uses_legacy_keras

#: Keras minor versions whose ``fit`` this engine reproduced bit for bit (tests/test_fused.py).
TESTED_KERAS: tuple[str, ...] = ("3.15",)
UNTESTED_OK_ENV = "SINECHECK_FUSED_ALLOW_UNTESTED"


class EngineUnsupported(ConfigError):
    """The engine cannot honour this config or environment (it never silently trains something else)."""


def check_supported(config: TrainConfig, *, unseeded_noise: float = 0.0) -> None:
    """Raise EngineUnsupported naming what this engine cannot reproduce."""
    if uses_legacy_keras():
        raise EngineUnsupported("engine fused: Keras 2 (tf_keras) is not supported; allowed: Keras 3")
    if keras_backend() != "tensorflow":
        raise EngineUnsupported(f"engine fused: Keras backend {keras_backend()!r}; allowed: tensorflow")
    version = keras_module().__version__
    if not version.startswith(TESTED_KERAS) and not os.environ.get(UNTESTED_OK_ENV):
        raise EngineUnsupported(
            f"engine fused: Keras {version} has not been shown to match fit bit for bit; allowed: "
            f"{', '.join(v + '.x' for v in TESTED_KERAS)} (set {UNTESTED_OK_ENV}=1 to run anyway)")
    if config.xla:
        raise EngineUnsupported("engine fused: xla=True; allowed: xla=False (use engine fused-xla for XLA)")
    if unseeded_noise:
        raise EngineUnsupported("engine fused: unseeded_noise; allowed: 0 (use engine keras)")


def epoch_orders_from_keras(config: TrainConfig, y: np.ndarray) -> np.ndarray:
    """The sample order of every epoch, drawn by Keras's own data adapter exactly as ``fit`` draws it.

    The adapter is fed the sample indices as inputs (with the real targets), so the batches it yields
    spell out the permutation; ``fit`` iterates the same kind of dataset once per epoch.
    """
    from keras.src.trainers.data_adapters import get_data_adapter

    n = config.n_points
    if not config.shuffle:
        return np.tile(np.arange(n, dtype=np.int32), (config.epochs, 1))
    index = np.arange(n, dtype=np.float32).reshape(-1, 1)  # exact in float32 below 2**24
    adapter = get_data_adapter(index, y, batch_size=config.batch_size, shuffle=True)
    dataset = adapter.get_tf_dataset()
    orders = np.empty((config.epochs, n), dtype=np.int32)
    for epoch in range(config.epochs):
        seen = [batch[0].numpy().reshape(-1) for batch in dataset]
        orders[epoch] = np.concatenate(seen).astype(np.int32)
    return orders


def prepare_fused(config: TrainConfig, *, initial_weights: Mapping[str, np.ndarray] | None = None,
                  unseeded_noise: float = 0.0, jit_compile: bool = False) -> tuple[Start, Callable[[Any], Any]]:
    """A fresh start and ``run_epochs(order)``: one traced graph that trains ``len(order)`` epochs, epoch ``e``
    visiting the samples in ``order[e]``, and returns the logged loss of each epoch.  Calling it again
    continues training the same model without re-tracing (that is how the benchmarks time an epoch)."""
    check_supported(config, unseeded_noise=unseeded_noise)
    import tensorflow as tf
    from keras.src.losses import loss as loss_module

    start = fresh_start(config, initial_weights=initial_weights)
    model = start.model
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    tracker = model._loss_tracker
    n, bs = config.n_points, config.batch_size
    full, tail = divmod(n, bs)
    x = tf.constant(start.data.x_train)
    y = tf.constant(start.data.y_train)

    def step(xb: Any, yb: Any) -> Any:  # Keras 3.15's TensorFlow train_step, op for op
        with tf.GradientTape() as tape:
            y_pred = model(xb, training=True)
            loss = model._compute_loss(x=xb, y=yb, y_pred=y_pred, sample_weight=None, training=True)
            tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=tf.shape(xb)[0])
            loss = optimizer.scale_loss(loss)
        weights = model.trainable_weights
        grads = tape.gradient(loss, weights)
        optimizer.apply_gradients(zip(grads, weights, strict=True))
        return loss

    @tf.function(jit_compile=jit_compile, input_signature=[tf.TensorSpec([None, n], tf.int32)])
    def run_epochs(order: Any) -> Any:
        epochs = tf.shape(order)[0]
        history = tf.TensorArray(tf.float32, size=epochs, clear_after_read=False)
        done = tf.constant(0)
        for epoch in tf.range(epochs):
            xs = tf.gather(x, order[epoch])
            ys = tf.gather(y, order[epoch])
            for v in tracker.variables:
                v.assign(tf.zeros_like(v))
            finite = tf.constant(True)
            for s in tf.range(full):
                if finite:
                    loss = step(xs[s * bs:(s + 1) * bs], ys[s * bs:(s + 1) * bs])
                    finite = tf.math.is_finite(loss)
            if tail and finite:
                loss = step(xs[full * bs:], ys[full * bs:])
                finite = tf.math.is_finite(loss)
            history = history.write(epoch, tracker.result())
            done = epoch + 1
            if not finite:  # like TerminateOnNaN: the epoch ends at the bad batch, training stops
                break
        return history.stack()[:done]

    return start, run_epochs


def train_fused(config: TrainConfig, *, progress: Any = None, initial_weights: Mapping[str, np.ndarray] | None = None,
                unseeded_noise: float = 0.0, jit_compile: bool = False, name: str = "fused") -> RunResult:
    """Train like ``fit`` in one graph; bitwise equal to the keras engine for supported configs."""
    start, run_epochs = prepare_fused(config, initial_weights=initial_weights, unseeded_noise=unseeded_noise,
                                      jit_compile=jit_compile)
    orders = epoch_orders_from_keras(config, start.data.y_train)
    t1 = time.perf_counter()
    loss = run_epochs(orders).numpy()
    t2 = time.perf_counter()
    if progress is not None:
        progress(config.epochs, config.epochs)
    # One call runs every epoch, so these per-epoch figures include the one-time trace (~0.5 s here).
    timings = {"setup_s": t1 - start.started, "fit_s": t2 - t1, "first_epoch_s": t2 - t1,
               "epoch_ms_median": 1000 * (t2 - t1) / max(len(loss), 1)}
    return finish(config, name, start, loss, timings)
