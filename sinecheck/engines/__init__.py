"""Ways to train a TrainConfig.  `keras` (Keras ``fit``) is the reference every other engine must match."""

from __future__ import annotations

from collections.abc import Callable

from sinecheck.config import TrainConfig
from sinecheck.result import RunResult

#: Called after each epoch with (epochs done, epochs in total).
Progress = Callable[[int, int], None]


def _keras(config: TrainConfig, progress: Progress | None) -> RunResult:
    from sinecheck.engines.keras_fit import train_keras

    return train_keras(config, progress=progress)


ENGINES: dict[str, Callable[[TrainConfig, Progress | None], RunResult]] = {"keras": _keras}


def train(config: TrainConfig, *, engine: str = "keras", progress: Progress | None = None) -> RunResult:
    """Train `config` from scratch with the named engine and return everything the run produced."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if engine not in ENGINES:
        raise ValueError(f"engine: invalid value {engine!r}; allowed: {', '.join(ENGINES)}")
    return ENGINES[engine](config, progress)
