"""The fused engines: the whole of ``fit`` — every epoch and step — inside one TensorFlow graph.

Keras ``fit`` on this model is overhead-bound: each step costs ~2 ms of Python and dispatch around
microseconds of arithmetic.  ``fused`` runs the same arithmetic as Keras 3's TensorFlow ``train_step`` —
Dense's own ops (``matmul``, ``add`` → ``BiasAdd``, activation), Keras's ``compute_loss``, the gradient
of the same graph, the optimizer's ``update_step`` transcribed op for op (`sinecheck.engines.updates`),
the loss tracker's running mean — in one ``tf.function`` loop over epochs and batches (including the last
partial batch), visiting samples in the order ``fit`` would (drawn by Keras's own data adapter).  Weights
and optimizer slots are loop-carried tensors, not variables, and the optimizer updates all of them as one
flat vector (elementwise, so no bit changes): that removes most per-step ops.  Only Keras versions where
the equality was checked bit for bit are accepted (see `TESTED_KERAS`).  ``fused-xla`` compiles the same
loop with XLA: much faster, equal to ``fit`` only within rounding (XLA fuses and reorders arithmetic).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinecheck.core.config import OptimizerSpec, TrainConfig
from sinecheck.core.environment import keras_backend, uses_legacy_keras
from sinecheck.core.result import RunResult
from sinecheck.engines.base import Progress, refuse_custom
from sinecheck.engines.common import Start, finish, fresh_start
from sinecheck.engines.updates import Math, update_rule
from sinecheck.errors import ConfigError, EngineUnsupported
from sinecheck.keras.runtime import keras_module
from sinecheck.keras.seeding import seed_everything

#: Keras minor versions whose ``fit`` this engine reproduced bit for bit (tests/test_fused.py).
TESTED_KERAS: tuple[str, ...] = ("3.15",)
UNTESTED_OK_ENV = "SINECHECK_FUSED_ALLOW_UNTESTED"


def check_supported(config: TrainConfig, *, unseeded_noise: float = 0.0, jit_compile: bool = False) -> None:
    """Raise EngineUnsupported naming what this engine cannot reproduce."""
    name = "fused-xla" if jit_compile else "fused"
    refuse_custom(config, name)
    if uses_legacy_keras():
        raise EngineUnsupported(f"engine {name}: Keras 2 (tf_keras) is not supported; allowed: Keras 3")
    if keras_backend() != "tensorflow":
        raise EngineUnsupported(f"engine {name}: Keras backend {keras_backend()!r}; allowed: tensorflow")
    version = keras_module().__version__
    if not version.startswith(TESTED_KERAS) and not os.environ.get(UNTESTED_OK_ENV):
        raise EngineUnsupported(
            f"engine {name}: Keras {version} has not been shown to match fit bit for bit; allowed: "
            f"{', '.join(v + '.x' for v in TESTED_KERAS)} (set {UNTESTED_OK_ENV}=1 to run anyway)"
        )
    if config.xla and not jit_compile:
        raise EngineUnsupported(f"engine {name}: xla=True; allowed: xla=False (use engine fused-xla for XLA)")
    if unseeded_noise:
        raise EngineUnsupported(f"engine {name}: unseeded_noise; allowed: 0 (use engine keras)")


#: Epochs read from Keras's data adapter before concluding that a seeded ``fit`` repeats its permutation.
REPEAT_CHECK_EPOCHS = 3


def epoch_orders_from_keras(config: TrainConfig, y: np.ndarray) -> np.ndarray:
    """The sample order of every epoch, drawn by Keras's own data adapter exactly as ``fit`` draws it.

    The adapter is fed the sample indices as inputs (with the real targets), so the batches it yields spell
    out the permutation; ``fit`` iterates a new iterator of the same dataset each epoch.  Each iterator costs
    ~20 ms here, so for a seeded config, once the first `REPEAT_CHECK_EPOCHS` epochs came out identical (a
    seeded shuffle op restarts with its iterator: Keras 3.15 / TF 2.21 reuse one permutation), the rest
    repeat it; otherwise (unseeded, or a version that reshuffles) every epoch is read.
    """
    n = config.n_points
    if not config.shuffle:
        return np.tile(np.arange(n, dtype=np.int32), (config.epochs, 1))
    if config.seed is not None:  # seeded: the same orders every time (read once per process)
        return _seeded_orders(config.seed, n, config.batch_size, config.epochs).copy()
    return _read_orders(config, y)


@functools.lru_cache(maxsize=64)
def _seeded_orders(seed: int, n_points: int, batch_size: int, epochs: int) -> np.ndarray:
    seed_everything(seed, keep_kernel_cache=True)  # as fresh_start left it: the adapter's shuffle draws from it
    config = TrainConfig(seed=seed, n_points=n_points, batch_size=batch_size, epochs=epochs)
    return _read_orders(config, np.zeros((n_points, 1), np.float32))


def _read_orders(config: TrainConfig, y: np.ndarray) -> np.ndarray:
    from keras.src.trainers.data_adapters import get_data_adapter

    n = config.n_points
    index = np.arange(n, dtype=np.float32).reshape(-1, 1)  # exact in float32 below 2**24
    adapter = get_data_adapter(index, y, batch_size=config.batch_size, shuffle=True)
    # One element per epoch: the batches of indices re-joined (the permutation is drawn before batching).
    dataset = adapter.get_tf_dataset().map(lambda *batch: batch[0]).unbatch().batch(n)
    orders = np.empty((config.epochs, n), dtype=np.int32)
    for epoch in range(config.epochs):
        if config.seed is not None and epoch == REPEAT_CHECK_EPOCHS and (orders[1:epoch] == orders[0]).all():
            orders[epoch:] = orders[0]
            break
        orders[epoch] = next(iter(dataset)).numpy().reshape(-1).astype(np.int32)
    return orders


def _tf_math() -> Math:
    import tensorflow as tf

    return Math(
        sqrt=tf.sqrt,
        square=tf.square,
        power=tf.pow,
        maximum=tf.maximum,
        scalar=lambda value: tf.constant(value, tf.float32),
    )


#: Steps traced back to back inside one loop iteration.  The executor pays a fixed cost per loop iteration
#: and per loop variable, so unrolling 8 steps cut keras-default from ~1.75 to ~1.4–1.5 ms/epoch here.
UNROLL = 8


@dataclass(frozen=True)
class GraphKey:
    """What decides the traced graph; configs that agree on it share one `FusedProgram`."""

    hidden_units: tuple[int, ...]
    activation: str
    loss: str
    optimizer: tuple[str, tuple[tuple[str, Any], ...]]  # name and non-default parameters (not the rate)
    batch_size: int
    n_points: int
    jit_compile: bool

    @classmethod
    def of(cls, config: TrainConfig, *, jit_compile: bool) -> GraphKey:
        return cls(
            config.hidden_units,
            config.activation,
            config.loss,
            (config.optimizer.name, config.optimizer.params),
            config.batch_size,
            config.n_points,
            jit_compile,
        )


class FusedProgram:
    """One traced training loop for every config with the same `GraphKey`.

    Weights, optimizer slots, step count, learning rate and data live in TensorFlow variables, so a new run
    only assigns values (`load`) and calls `run` — no re-tracing.  ``run(order, exact)`` trains ``len(order)``
    more epochs, epoch ``e`` visiting the samples in ``order[e]``, and returns the loss of every step
    (``[epochs, steps]``), the number of epochs done and whether every loss was finite.  It stops after the
    first epoch with a non-finite loss; with ``exact=True`` it stops at that very step (like Keras's
    ``TerminateOnNaN``), otherwise at the end of its unrolled block — `train_fused` replays a diverged run
    exactly, so results never depend on the fast path.
    """

    def __init__(self, key: GraphKey) -> None:
        import tensorflow as tf

        keras = keras_module()
        self.key = key
        widths = (1, *key.hidden_units, 1)
        self.shapes: list[tuple[int, ...]] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            self.shapes += [(fan_in, fan_out), (fan_out,)]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        size = sum(self.sizes)
        self.rule = update_rule(OptimizerSpec(key.optimizer[0], 1.0, key.optimizer[1]))
        self.weights = tf.Variable(tf.zeros([size]), name="fused/weights")
        self.slots = [tf.Variable(tf.zeros([size]), name=f"fused/{name}") for name, _ in self.rule.slots]
        self.iterations = tf.Variable(0, dtype=tf.int64, name="fused/iterations")
        self.learning_rate = tf.Variable(0.0, name="fused/learning_rate")  # Keras keeps it in a float32 variable
        self.x = tf.Variable(tf.zeros([key.n_points, 1]), name="fused/x")
        self.y = tf.Variable(tf.zeros([key.n_points, 1]), name="fused/y")
        activation, loss_fn, math = keras.activations.get(key.activation), keras.losses.get(key.loss), _tf_math()
        shapes, sizes, rule = self.shapes, self.sizes, self.rule
        n, bs = key.n_points, key.batch_size
        full, tail = divmod(n, bs)
        unroll = 1 if key.jit_compile else max(1, min(UNROLL, full))

        def forward(pieces: list[Any], xb: Any) -> Any:  # Dense.call per layer: matmul, add (BiasAdd), activation
            h = xb
            for i in range(0, len(pieces), 2):
                h = keras.ops.add(keras.ops.matmul(h, pieces[i]), pieces[i + 1])
                if i + 2 < len(pieces):
                    h = activation(h)
            return h

        flat = rule.flat_safe

        def unflatten(vector: Any) -> list[Any]:
            parts = tf.split(vector, sizes)
            return [p if len(s) == 1 else tf.reshape(p, s) for p, s in zip(parts, shapes, strict=True)]

        def flatten(pieces: list[Any]) -> Any:
            return tf.concat([q if len(q.shape) == 1 else tf.reshape(q, [-1]) for q in pieces], 0)

        def step(w: Any, state: tuple[Any, ...], it: Any, xb: Any, yb: Any) -> tuple[Any, tuple[Any, ...], Any, Any]:
            """One Keras train step.  Flat-safe rules carry weights and slots as one flat vector each (fewer
            ops per step); the others carry them per weight tensor, as Keras stores them."""
            pieces = unflatten(w) if flat else list(w)
            with tf.GradientTape() as tape:
                tape.watch(pieces)
                per_sample = loss_fn(yb, forward(pieces, xb))  # then "sum_over_batch_size", as Keras reduces
                loss = tf.math.divide_no_nan(tf.reduce_sum(per_sample), float(per_sample.shape[0]))
            grads = tape.gradient(loss, pieces)
            t = tf.cast(it + 1, tf.float32)
            if flat:
                w, state = rule.step(math, flatten(grads), w, state, t, self.learning_rate)
                return w, tuple(state), it + 1, loss
            updated = [
                rule.step(math, g, p, tuple(slot[i] for slot in state), t, self.learning_rate)
                for i, (g, p) in enumerate(zip(grads, pieces, strict=True))
            ]
            state = tuple(tuple(u[1][j] for u in updated) for j in range(len(state)))
            return tuple(u[0] for u in updated), state, it + 1, loss

        @tf.function(
            jit_compile=key.jit_compile,
            input_signature=[tf.TensorSpec([None, n], tf.int32), tf.TensorSpec([], tf.bool)],
        )
        def run(order: Any, exact: Any) -> tuple[Any, Any, Any]:
            w, it = self.weights.read_value(), self.iterations.read_value()
            state = tuple(v.read_value() for v in self.slots)
            if not flat:
                w, state = tuple(unflatten(w)), tuple(tuple(unflatten(v)) for v in state)
            epochs = tf.shape(order)[0]
            history = tf.TensorArray(tf.float32, size=epochs, element_shape=[full + (tail > 0)])
            finite, done = tf.constant(True), tf.constant(0)
            blocks = tf.where(exact, 0, full // unroll)
            while done < epochs and finite:
                xs, ys = tf.gather(self.x, order[done]), tf.gather(self.y, order[done])
                x_batches = tf.reshape(xs[: full * bs], [full, bs, 1])
                y_batches = tf.reshape(ys[: full * bs], [full, bs, 1])
                losses = tf.TensorArray(tf.float32, size=full + (tail > 0), element_shape=[])
                s = tf.constant(0)
                while s < blocks * unroll and finite:  # the fast path: `unroll` steps per loop iteration
                    tf.autograph.experimental.set_loop_options(parallel_iterations=1)
                    for k in range(unroll):
                        w, state, it, loss = step(w, state, it, x_batches[s + k], y_batches[s + k])
                        losses = losses.write(s + k, loss)
                        finite = tf.logical_and(finite, tf.math.is_finite(loss))
                    s += unroll
                while s < full and finite:  # the rest, one step at a time
                    tf.autograph.experimental.set_loop_options(parallel_iterations=1)
                    w, state, it, loss = step(w, state, it, x_batches[s], y_batches[s])
                    losses = losses.write(s, loss)
                    finite = tf.math.is_finite(loss)
                    s += 1
                if tail and finite:
                    w, state, it, loss = step(w, state, it, xs[full * bs :], ys[full * bs :])
                    losses = losses.write(full, loss)
                    finite = tf.math.is_finite(loss)
                history = history.write(done, losses.stack())
                done += 1
            self.weights.assign(w if flat else flatten(list(w)))
            for variable, value in zip(self.slots, state, strict=True):
                variable.assign(value if flat else flatten(list(value)))
            self.iterations.assign(it)
            return history.stack(), done, finite

        self.run = run

    def load(self, start: Start, learning_rate: float) -> None:
        """Start a new run from `start`: its initial weights (flattened), fresh optimizer slots and step count,
        the learning rate and its training data."""
        initial = np.concatenate([w.reshape(-1) for w in start.initial.values()]).astype(np.float32)
        self.weights.assign(initial)
        for variable, (_, value) in zip(self.slots, self.rule.slots, strict=True):
            variable.assign(np.full(initial.shape, value, np.float32))
        self.iterations.assign(0)
        self.learning_rate.assign(learning_rate)
        self.x.assign(start.data.x_train)
        self.y.assign(start.data.y_train)

    def warm_up(self) -> float:
        """Trace and optimise the graph (first call) or re-instantiate its kernels (after TensorFlow flushed
        its kernel cache, e.g. on ``tf.random.set_seed``) with a call that trains nothing, so that the next
        call times training alone.  Returns the seconds it took.  XLA compiles per number of epochs, so a
        warm-up cannot help it: 0.0 there."""
        if self.key.jit_compile:
            return 0.0
        t = time.perf_counter()
        self.run(np.zeros((0, self.key.n_points), np.int32), False)
        return time.perf_counter() - t

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat weight vector as the model's list of weight arrays."""
        parts = np.split(flat, np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes, strict=True)]


@functools.lru_cache(maxsize=32)
def fused_program(key: GraphKey) -> FusedProgram:
    """The (cached) program for `key`: a study's runs with one architecture and batch size trace once."""
    return FusedProgram(key)


def logged_losses(step_losses: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The loss ``fit`` logs per epoch, from the loss of every step: Keras's ``Mean`` tracker, in float32.

    ``total += loss * batch_size`` and ``count += batch_size`` in step order, then ``total / count``; the
    running sum is accumulated sequentially (``np.add.accumulate``), so its rounding is the tracker's.
    """
    full, tail = divmod(config.n_points, config.batch_size)
    sizes = np.array([config.batch_size] * full + ([tail] if tail else []), np.float32)
    out = np.empty(len(step_losses), np.float32)
    for e, losses in enumerate(np.asarray(step_losses, np.float32)):
        bad = np.flatnonzero(~np.isfinite(losses))
        used = bad[0] + 1 if bad.size else len(losses)
        total = np.add.accumulate(losses[:used] * sizes[:used], dtype=np.float32)[-1]
        count = np.float32(sizes[:used].sum())
        out[e] = total / count
    return out


def train_fused(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    jit_compile: bool = False,
    orders: np.ndarray | None = None,
    compiled_metrics: bool = True,
) -> RunResult:
    """Train like ``fit`` in one graph: bitwise equal to the keras engine (``fused``), or XLA-compiled
    (``fused-xla``: faster, equal only to within rounding; see the README for the measured agreement).

    `orders` (epochs × n_points sample indices) replaces the order ``fit`` would visit — an experiment on
    the order itself (recorded in ``options["sample_order"]``); the result is then no longer ``fit``'s.
    `compiled_metrics` is part of the `Engine` protocol; the presets this engine trains have none.
    """
    check_supported(config, unseeded_noise=unseeded_noise, jit_compile=jit_compile)
    start = fresh_start(config, initial_weights=initial_weights, clear_session=False)
    program = fused_program(GraphKey.of(config, jit_compile=jit_compile))
    if orders is None:
        orders = epoch_orders_from_keras(config, start.data.y_train)
    else:
        orders = np.asarray(orders, np.int32)
        expected = (config.epochs, config.n_points)
        if orders.shape != expected or not (np.sort(orders, axis=1) == np.arange(config.n_points)).all():
            raise ConfigError(
                f"orders: invalid value of shape {orders.shape}; allowed: {expected[0]} permutations "
                f"of range({expected[1]})"
            )
        start.options["sample_order"] = "given"
    trace_s = program.warm_up()
    t1 = time.perf_counter()
    program.load(start, config.effective_optimizer.rate)
    step_losses, done, finite = program.run(orders, False)
    if not bool(finite):  # the fast path stops at the end of an unrolled block: replay, stopping at the bad step
        program.load(start, config.effective_optimizer.rate)
        step_losses, done, finite = program.run(orders, True)
    loss = logged_losses(step_losses.numpy()[: int(done)], config)
    t2 = time.perf_counter()
    start.model.set_weights(program.split(program.weights.numpy()))
    if progress is not None:
        progress(len(loss), config.epochs)
    # XLA compiles per number of epochs inside the timed call; `fit_s` includes it there.
    return finish(
        config,
        "fused-xla" if jit_compile else "fused",
        start,
        loss,
        setup_s=t1 - start.started - trace_s,
        trace_s=trace_s,
        fit_s=t2 - t1,
        first_epoch_s=(t2 - t1) / max(len(loss), 1),
        epoch_ms_median=1000 * (t2 - t1) / max(len(loss), 1),
    )
