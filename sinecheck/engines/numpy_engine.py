"""The NumPy engine: an independent implementation of the same training, the oracle that checks TensorFlow.

Forward pass, loss, hand-written backpropagation and batching are plain NumPy; it starts from the same seeded
initial weights and visits the samples in the same order as ``fit`` (both taken from Keras), and uses the
optimizer arithmetic of `sinecheck.engines.updates`.  Its matrix products go through NumPy's BLAS, which
sums in another order than TensorFlow's kernels, so in float32 it agrees with ``fit`` to within rounding that
training amplifies (CLOSE, not IDENTICAL); ``numpy-float64`` runs the same in double precision, to show how
far float32 rounding alone moves the fitted curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult
from sinecheck.engines.base import Progress, refuse_custom
from sinecheck.engines.common import finish, fresh_start
from sinecheck.engines.fused import epoch_orders_from_keras
from sinecheck.engines.updates import Math, update_rule
from sinecheck.errors import EngineUnsupported

#: activation -> (f(z), f'(z) given z and f(z)).
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "linear": (lambda z: z, lambda z, a: np.ones_like(z)),
}
#: loss -> (per-sample loss given the error p - y, its derivative with respect to p).
LOSSES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "mse": (lambda e: e * e, lambda e: 2 * e),
    "mae": (np.abs, np.sign),
}


def check_supported_numpy(config: TrainConfig, *, unseeded_noise: float = 0.0, name: str = "numpy") -> None:
    """Raise EngineUnsupported for what this engine does not implement (it never trains something else)."""
    refuse_custom(config, name)
    if config.activation not in ACTIVATIONS:
        raise EngineUnsupported(f"engine {name}: activation {config.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if config.loss not in LOSSES:
        raise EngineUnsupported(f"engine {name}: loss {config.loss!r}; allowed: {', '.join(LOSSES)}")
    if config.xla:
        raise EngineUnsupported(f"engine {name}: xla=True; allowed: xla=False")
    if unseeded_noise:
        raise EngineUnsupported(f"engine {name}: unseeded_noise; allowed: 0 (use engine keras)")


def _numpy_math(dtype: type) -> Math:
    return Math(sqrt=np.sqrt, square=np.square, power=np.power, maximum=np.maximum, scalar=dtype)


def _forward(
    weights: list[np.ndarray], x: np.ndarray, act: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Output and the (pre-activation, activation) of every hidden layer, kept for the backward pass."""
    h, cache = x, []
    for i in range(0, len(weights), 2):
        z = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            a = act(z)
            cache.append((z, a))
            h = a
        else:
            h = z
    return h, cache


def loss_and_gradients(
    weights: list[np.ndarray], xb: np.ndarray, yb: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean loss over the batch and its gradient with respect to every weight (hand-written backprop)."""
    act, dact = ACTIVATIONS[config.activation]
    per_sample, dper_sample = LOSSES[config.loss]
    out, cache = _forward(weights, xb, act)
    error = out - yb
    n = xb.shape[0]
    loss = per_sample(error).sum() / n
    delta = dper_sample(error) / n
    grads: list[np.ndarray] = [np.empty(0)] * len(weights)
    inputs = [xb] + [a for _, a in cache]
    for layer in range(len(weights) // 2 - 1, -1, -1):
        grads[2 * layer] = inputs[layer].T @ delta
        grads[2 * layer + 1] = delta.sum(axis=0)
        if layer:
            z, a = cache[layer - 1]
            delta = (delta @ weights[2 * layer].T) * dact(z, a)
    return loss, grads


class NumpyLoop:
    """Weights, optimizer slots and step count of one NumPy training run; `run` trains more epochs."""

    def __init__(
        self, config: TrainConfig, initial: list[np.ndarray], x: np.ndarray, y: np.ndarray, dtype: type = np.float32
    ) -> None:
        self.config, self.dtype = config, dtype
        self.rule, self.math = update_rule(config.optimizer), _numpy_math(dtype)
        self.weights: list[np.ndarray] = [w.astype(dtype) for w in initial]
        self.slots: list[tuple[np.ndarray, ...]] = [
            tuple(np.full(w.shape, value, dtype) for _, value in self.rule.slots) for w in self.weights
        ]
        self.x: np.ndarray = x.astype(dtype)
        self.y: np.ndarray = y.astype(dtype)
        self.iterations = 0

    def run(self, orders: np.ndarray, progress: Progress | None = None) -> tuple[list[Any], bool]:
        """Train ``len(orders)`` epochs; return the logged loss of each (Keras's running mean) and whether all
        were finite.  Stops at the first batch with a non-finite loss, like ``TerminateOnNaN``."""
        dtype, bs, lr = self.dtype, self.config.batch_size, self.dtype(self.config.effective_optimizer.rate)
        history: list[Any] = []
        with np.errstate(all="ignore"):  # overflow is a diverged run, reported, not a warning
            for epoch, order in enumerate(orders):
                total, count, finite = dtype(0), dtype(0), True
                for begin in range(0, len(order), bs):
                    index = order[begin : begin + bs]
                    loss, grads = loss_and_gradients(self.weights, self.x[index], self.y[index], self.config)
                    self.iterations += 1
                    t = dtype(self.iterations)
                    for i, (g, w) in enumerate(zip(grads, self.weights, strict=True)):
                        self.weights[i], self.slots[i] = self.rule.step(
                            self.math, g.astype(dtype), w, self.slots[i], t, lr
                        )
                    total, count = dtype(total + dtype(loss) * dtype(len(index))), dtype(count + len(index))
                    finite = bool(np.isfinite(loss))
                    if not finite:
                        break
                history.append(total / count)
                if progress is not None:
                    progress(epoch + 1, len(orders))
                if not finite:
                    return history, False
        return history, True

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The network's output on `x`, computed in this loop's dtype."""
        with np.errstate(all="ignore"):
            return _forward(self.weights, x.astype(self.dtype), ACTIVATIONS[self.config.activation][0])[0]


def train_numpy(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    dtype: type = np.float32,
    compiled_metrics: bool = True,
) -> RunResult:
    """Train with NumPy in `dtype` (float32 or float64) from Keras's seeded start, in ``fit``'s sample order.
    (`compiled_metrics` is part of the `Engine` protocol; the presets this engine trains have none.)"""
    name = "numpy" if dtype is np.float32 else "numpy-float64"
    check_supported_numpy(config, unseeded_noise=unseeded_noise, name=name)
    start = fresh_start(config, initial_weights=initial_weights, clear_session=False)
    orders = epoch_orders_from_keras(config, start.data.y_train)
    loop = NumpyLoop(config, list(start.initial.values()), start.data.x_train, start.data.y_train, dtype)
    t1 = time.perf_counter()
    history, _ = loop.run(orders, progress)
    t2 = time.perf_counter()
    predictions = (loop.predict(start.data.x_train), loop.predict(start.data.x_test))
    start.model.set_weights([w.astype(np.float32) for w in loop.weights])
    result = finish(
        config,
        name,
        start,
        history,
        setup_s=t1 - start.started,
        fit_s=t2 - t1,
        first_epoch_s=(t2 - t1) / max(len(history), 1),
        epoch_ms_median=1000 * (t2 - t1) / max(len(history), 1),
        predictions=predictions,
    )
    result.options["precision"] = np.dtype(dtype).name
    return result
