"""Keras 3 optimizer arithmetic as pure functions, op for op, shared by the fused and NumPy engines.

Each rule transcribes one ``update_step`` of Keras 3.15 (``keras/src/optimizers/*.py``) with the same
operations in the same order and the same Python-float constants (``1 - beta_1`` is computed in double,
then rounded once to the weight dtype, as Keras does).  Rules are written with arithmetic operators and a
small `Math` namespace, so the same text runs on TensorFlow tensors (the fused engines, bitwise equal to
``fit``) and on NumPy arrays (the NumPy oracle).

Every update is elementwise, but that alone does not make it safe to update all weights as one flat vector:
TensorFlow's graph optimizer rewrites ``x / sqrt(y)`` into ``x * rsqrt(y)``, and the vectorised ``Rsqrt``
kernel rounds differently from its scalar loop, so an element's bits depend on where it sits in its tensor
(measured: RMSprop on a 15-wide bias differed by up to 64 ULP when flattened).  `UpdateRule.flat_safe` says
whether a rule is free of such position-dependent kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sinecheck.core.config import OPTIMIZERS, OptimizerSpec

Array = Any


@dataclass(frozen=True)
class Math:
    """The few non-operator functions a rule needs, for one array library and float dtype."""

    sqrt: Callable[[Array], Array]
    square: Callable[[Array], Array]
    power: Callable[[Array, Array], Array]
    maximum: Callable[[Array, Array], Array]
    scalar: Callable[[float], Array]  # a Python number as a 0-d value of the weight dtype


#: One update: (math, gradient, weight, slots, step t as weight dtype, learning rate) -> (weight, slots).
Step = Callable[[Math, Array, Array, tuple[Array, ...], Array, Array], tuple[Array, tuple[Array, ...]]]


@dataclass(frozen=True)
class UpdateRule:
    """An optimizer as data: its slot variables (name, initial value) and its update step."""

    name: str
    slots: tuple[tuple[str, float], ...]
    step: Step
    #: True when every op gives an element the same bits wherever it sits (no ``x / sqrt(y)``).
    flat_safe: bool = True


def update_rule(spec: OptimizerSpec) -> UpdateRule:
    """The update rule of `spec`, with its parameters bound (Keras defaults where `spec` does not set one)."""
    p = {**OPTIMIZERS[spec.name], **dict(spec.params)}
    builders: dict[str, Callable[[dict[str, Any]], UpdateRule]] = {
        "adam": _adam,
        "sgd": _sgd,
        "rmsprop": _rmsprop,
        "adagrad": _adagrad,
    }
    return builders[spec.name](p)


def _adam(p: dict[str, Any]) -> UpdateRule:
    b1, b2, eps, amsgrad = float(p["beta_1"]), float(p["beta_2"]), float(p["epsilon"]), bool(p["amsgrad"])

    def step(
        mt: Math, g: Array, w: Array, slots: tuple[Array, ...], t: Array, lr: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        m, v = slots[0], slots[1]
        b1_power = mt.power(mt.scalar(b1), t)
        b2_power = mt.power(mt.scalar(b2), t)
        alpha = lr * mt.sqrt(1 - b2_power) / (1 - b1_power)
        m = m + (g - m) * (1 - b1)
        v = v + (mt.square(g) - v) * (1 - b2)
        if amsgrad:
            v_hat = mt.maximum(slots[2], v)
            return w - (m * alpha) / (mt.sqrt(v_hat) + eps), (m, v, v_hat)
        return w - (m * alpha) / (mt.sqrt(v) + eps), (m, v)

    slots = (("momentum", 0.0), ("velocity", 0.0)) + ((("velocity_hat", 0.0),) if amsgrad else ())
    return UpdateRule("adam", slots, step)


def _sgd(p: dict[str, Any]) -> UpdateRule:
    momentum, nesterov = float(p["momentum"]), bool(p["nesterov"])

    def step(
        mt: Math, g: Array, w: Array, slots: tuple[Array, ...], t: Array, lr: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        if momentum == 0:
            return w - g * lr, ()
        mom = mt.scalar(momentum)
        m = slots[0] * mom - g * lr
        if nesterov:
            return w + (m * mom - g * lr), (m,)
        return w + m, (m,)

    return UpdateRule("sgd", (("momentum", 0.0),) if momentum != 0 else (), step)


def _rmsprop(p: dict[str, Any]) -> UpdateRule:
    rho, momentum, eps, centered = float(p["rho"]), float(p["momentum"]), float(p["epsilon"]), bool(p["centered"])

    def step(
        mt: Math, g: Array, w: Array, slots: tuple[Array, ...], t: Array, lr: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        velocity = mt.scalar(rho) * slots[0] + (1 - rho) * mt.square(g)
        out = [velocity]
        if centered:
            average = mt.scalar(rho) * slots[-1] + (1 - rho) * g
            denominator = velocity - mt.square(average) + eps
        else:
            denominator = velocity + eps
        increment = (lr * g) / mt.sqrt(denominator)
        if momentum > 0:
            m = mt.scalar(momentum) * slots[1] + increment
            out.append(m)
            w = w - m
        else:
            w = w - increment
        if centered:
            out.append(average)
        return w, tuple(out)

    slots = (
        (("velocity", 0.0),)
        + ((("momentum", 0.0),) if momentum > 0 else ())
        + ((("average_gradient", 0.0),) if centered else ())
    )
    return UpdateRule("rmsprop", slots, step, flat_safe=False)  # (lr * g) / sqrt(denominator)


def _adagrad(p: dict[str, Any]) -> UpdateRule:
    initial, eps = float(p["initial_accumulator_value"]), float(p["epsilon"])

    def step(
        mt: Math, g: Array, w: Array, slots: tuple[Array, ...], t: Array, lr: Array
    ) -> tuple[Array, tuple[Array, ...]]:
        accumulator = slots[0] + mt.square(g)
        return w - (lr * g) / mt.sqrt(accumulator + eps), (accumulator,)

    return UpdateRule("adagrad", (("accumulator", initial),), step, flat_safe=False)  # (lr * g) / sqrt(...)
