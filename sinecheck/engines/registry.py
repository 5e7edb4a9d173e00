"""Ways to train a TrainConfig.  `keras` (Keras ``fit``) is the reference every other engine must match."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult
from sinecheck.engines.base import ANY_MODEL_ENGINES, Progress, refuse_custom
from sinecheck.engines.fused import train_fused
from sinecheck.engines.keras_fit import train_keras
from sinecheck.engines.numpy_engine import train_numpy
from sinecheck.errors import ConfigError


def _keras(config: TrainConfig, progress: Progress | None, **options: Any) -> RunResult:
    return train_keras(config, progress=progress, **options)


def _fused(config: TrainConfig, progress: Progress | None, **options: Any) -> RunResult:
    return train_fused(config, progress=progress, **options)


def _fused_xla(config: TrainConfig, progress: Progress | None, **options: Any) -> RunResult:
    return train_fused(config, progress=progress, jit_compile=True, **options)


def _numpy(config: TrainConfig, progress: Progress | None, **options: Any) -> RunResult:
    return train_numpy(config, progress=progress, **options)


def _numpy_float64(config: TrainConfig, progress: Progress | None, **options: Any) -> RunResult:
    return train_numpy(config, progress=progress, dtype=np.float64, **options)


#: Every engine by name.  ``keras`` is the reference; ``fused`` equals it bit for bit where it accepts a config;
#: ``fused-xla``, ``numpy`` and ``numpy-float64`` agree within rounding (see the README for measured figures).
ENGINES: dict[str, Callable[..., RunResult]] = {
    "keras": _keras,
    "fused": _fused,
    "fused-xla": _fused_xla,
    "numpy": _numpy,
    "numpy-float64": _numpy_float64,
}


def train(
    config: TrainConfig,
    *,
    engine: str = "keras",
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    fallback: str | None = None,
) -> RunResult:
    """Train `config` from scratch with the named engine and return everything the run produced.

    `initial_weights` (named like ``RunResult.initial_weights``) replaces the seeded start;
    `unseeded_noise` injects training noise drawn outside the global seed (a negative control).
    An engine that cannot train a model/data spec refuses (EngineUnsupported) unless `fallback` names an
    engine that can; the result then says which engine really trained (``result.engine``) and which was
    asked for (``result.options["fallback_from"]``).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    for field_name, name in (("engine", engine), ("fallback", fallback)):
        if name is not None and name not in ENGINES:
            raise ConfigError(f"{field_name}: invalid value {name!r}; allowed: {', '.join(ENGINES)}")
    asked = engine
    if config.custom and engine not in ANY_MODEL_ENGINES and fallback is not None:
        refuse_custom(config, fallback)
        engine = fallback
    refuse_custom(config, engine)
    if (
        isinstance(unseeded_noise, bool)
        or not isinstance(unseeded_noise, (int, float))
        or not (0 <= unseeded_noise < float("inf"))
    ):
        raise ValueError(f"unseeded_noise: invalid value {unseeded_noise!r}; allowed: a finite number >= 0")
    result = ENGINES[engine](config, progress, initial_weights=initial_weights, unseeded_noise=float(unseeded_noise))
    if engine != asked:
        result.options["fallback_from"] = asked
    return result
