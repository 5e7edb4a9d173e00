"""Ways to train a TrainConfig.  `keras` (Keras ``fit``) is the reference every other engine must match."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult
from sinecheck.engines.base import ANY_MODEL_ENGINES, Engine, EngineName, Progress, parse_engine, refuse_custom
from sinecheck.engines.fused import train_fused
from sinecheck.engines.keras_fit import train_keras
from sinecheck.engines.numpy_engine import train_numpy


def _fused_xla(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    compiled_metrics: bool = True,
) -> RunResult:
    return train_fused(
        config, progress=progress, initial_weights=initial_weights, unseeded_noise=unseeded_noise, jit_compile=True
    )


def _numpy_float64(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    compiled_metrics: bool = True,
) -> RunResult:
    return train_numpy(
        config, progress=progress, initial_weights=initial_weights, unseeded_noise=unseeded_noise, dtype=np.float64
    )


#: Every engine by name.  ``keras`` is the reference; ``fused`` equals it bit for bit where it accepts a config;
#: ``fused-xla``, ``numpy`` and ``numpy-float64`` agree within rounding (measured figures: docs/engines.md).
ENGINES: dict[str, Engine] = {
    EngineName.KERAS.value: train_keras,
    EngineName.FUSED.value: train_fused,
    EngineName.FUSED_XLA.value: _fused_xla,
    EngineName.NUMPY.value: train_numpy,
    EngineName.NUMPY_FLOAT64.value: _numpy_float64,
}


def train(
    config: TrainConfig,
    *,
    engine: EngineName | str = EngineName.KERAS,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    fallback: EngineName | str | None = None,
    compiled_metrics: bool = True,
) -> RunResult:
    """Train `config` from scratch with the named engine and return everything the run produced.

    `initial_weights` (named like ``RunResult.initial_weights``) replaces the seeded start;
    `unseeded_noise` injects training noise drawn outside the global seed (a negative control).
    An engine that cannot train a model/data spec refuses (EngineUnsupported) unless `fallback` names an
    engine that can; the result then says which engine really trained (``result.engine``) and which was
    asked for (``result.options["fallback_from"]``).  `compiled_metrics=False` skips Keras ``evaluate`` of a
    user's model after training (its compiled loss and metrics), for callers that compare only weights and
    predictions (the matrix): a run's weights and predictions are the same either way.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    asked = engine = parse_engine(engine)
    if config.custom and engine not in ANY_MODEL_ENGINES and fallback is not None:
        engine = parse_engine(fallback, field="fallback")
        refuse_custom(config, engine)
    refuse_custom(config, engine)
    if (
        isinstance(unseeded_noise, bool)
        or not isinstance(unseeded_noise, (int, float))
        or not (0 <= unseeded_noise < float("inf"))
    ):
        raise ValueError(f"unseeded_noise: invalid value {unseeded_noise!r}; allowed: a finite number >= 0")
    run = ENGINES[engine.value]
    result = run(
        config,
        progress=progress,
        initial_weights=initial_weights,
        unseeded_noise=float(unseeded_noise),
        compiled_metrics=compiled_metrics,
    )
    if engine is not asked:
        result.options["fallback_from"] = asked.value
    return result
