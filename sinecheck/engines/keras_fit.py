"""The reference engine: Keras ``Model.fit``, exactly as a user of the reference experiments would call it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult
from sinecheck.engines.base import Progress
from sinecheck.engines.common import Start, finish, fresh_start
from sinecheck.keras.runtime import keras_module
from sinecheck.keras.user_data import fit_data


def _epoch_recorder(progress: Progress | None, epochs: int) -> Any:
    keras = keras_module()

    callback_base: Any = keras.callbacks.Callback  # keras is resolved at run time (Keras 3 or tf_keras)

    class EpochRecorder(callback_base):
        """Wall time of each epoch, and progress reports."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)
            if progress is not None:
                progress(epoch + 1, epochs)

    return EpochRecorder()


def fit(start: Start, config: TrainConfig, callback: Any) -> Any:
    """Keras ``fit`` as this engine calls it: the start's model on its training data with `config`'s batch size,
    epochs and shuffle (a pipeline batches and shuffles itself), silent; the callbacks are `callback`, a model
    spec's own (its `sinecheck.FitSpec`) and Keras's ``TerminateOnNaN`` (a NaN/inf loss stops training), and the
    FitSpec's fit arguments are passed as given.  Returns Keras's ``History``."""
    keras = keras_module()
    return start.model.fit(
        **fit_data(start.data, batch_size=config.batch_size, shuffle=config.shuffle),
        epochs=config.epochs,
        verbose=0,
        callbacks=[callback, *start.callbacks, keras.callbacks.TerminateOnNaN()],
        **start.fit_kwargs,
    )


def train_keras(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
) -> RunResult:
    """Seed, build, compile and ``fit`` a fresh model; record weights before and after, predictions, timings.

    A NaN/inf loss stops training (Keras's ``TerminateOnNaN``) and the result is marked diverged.
    Predictions are one forward call on the whole grid (no batching, so they do not depend on a predict
    batch size).  `initial_weights` replaces the seeded start (to compare the arithmetic of two backends
    from the same point); `unseeded_noise` > 0 adds a GaussianNoise layer seeded from the OS, outside the
    global seed: a deliberate source of nondeterminism for negative controls.
    """
    start = fresh_start(config, initial_weights=initial_weights, unseeded_noise=unseeded_noise)
    recorder = _epoch_recorder(progress, config.epochs)
    t1 = time.perf_counter()
    history = fit(start, config, recorder)
    t2 = time.perf_counter()
    epoch_s = recorder.seconds
    return finish(
        config,
        "keras",
        start,
        history.history.get("loss", []),
        setup_s=t1 - start.started,
        fit_s=t2 - t1,
        first_epoch_s=epoch_s[0] if epoch_s else 0.0,
        epoch_ms_median=1000 * float(np.median(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)),
    )
