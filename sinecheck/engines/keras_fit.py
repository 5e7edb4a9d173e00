"""The reference engine: Keras ``Model.fit``, exactly as a user of the reference experiments would call it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from sinecheck.config import TrainConfig
from sinecheck.data import make_data
from sinecheck.models import build_model, compile_model, keras_module, to_numpy, weight_names
from sinecheck.result import RunResult, digest_tensors, error_metrics
from sinecheck.seeding import fingerprint, keras_backend, seed_everything, unseed_everything


def reset_keras_state() -> None:
    """Drop every model, layer-name counter and the global seed generator of earlier runs in this process."""
    keras_module().backend.clear_session()


def _epoch_recorder(progress: Any, epochs: int) -> Any:
    keras = keras_module()

    class EpochRecorder(keras.callbacks.Callback):
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


def _weights(model: Any, config: TrainConfig) -> dict[str, np.ndarray]:
    return {name: np.array(w) for name, w in zip(weight_names(config), model.get_weights(), strict=True)}


def train_keras(config: TrainConfig, *, progress: Any = None,
                initial_weights: Mapping[str, np.ndarray] | None = None, unseeded_noise: float = 0.0) -> RunResult:
    """Seed, build, compile and ``fit`` a fresh model; record weights before and after, predictions, timings.

    A NaN/inf loss stops training (Keras's ``TerminateOnNaN``) and the result is marked diverged.
    Predictions are one forward call on the whole grid (no batching, so they do not depend on a predict
    batch size).  `initial_weights` replaces the seeded start (to compare the arithmetic of two backends
    from the same point); `unseeded_noise` > 0 adds a GaussianNoise layer seeded from the OS, outside the
    global seed: a deliberate source of nondeterminism for negative controls.
    """
    keras = keras_module()
    t0 = time.perf_counter()
    reset_keras_state()
    if config.seed is not None:
        seed_everything(config.seed)
    else:
        unseed_everything()
    data = make_data(config)
    noise = (unseeded_noise, secrets.randbits(31)) if unseeded_noise > 0 else None
    model = compile_model(build_model(config, noise=noise), config)
    options: dict[str, Any] = {}
    if unseeded_noise > 0:
        options["unseeded_noise"] = unseeded_noise
    if initial_weights is not None:
        names = weight_names(config)
        if list(initial_weights) != names:
            raise ValueError(f"initial_weights: tensors {list(initial_weights)}; allowed: exactly {names}")
        model.set_weights([np.asarray(initial_weights[n]) for n in names])
        options["initial_weights"] = digest_tensors(initial_weights)
    initial = _weights(model, config)
    recorder = _epoch_recorder(progress, config.epochs)
    t1 = time.perf_counter()
    history = model.fit(data.x_train, data.y_train, batch_size=config.batch_size, epochs=config.epochs,
                        shuffle=config.shuffle, verbose=0,
                        callbacks=[recorder, keras.callbacks.TerminateOnNaN()])
    t2 = time.perf_counter()
    final = _weights(model, config)
    pred_train = np.asarray(to_numpy(model(data.x_train, training=False)), dtype=np.float32)
    pred_test = np.asarray(to_numpy(model(data.x_test, training=False)), dtype=np.float32)
    loss = np.asarray(history.history.get("loss", []), dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(loss))
    diverged = bool(bad.size) or not all(np.isfinite(w).all() for w in final.values())
    metrics = error_metrics(pred_train, pred_test, data.y_train_clean, data.y_test)
    metrics["final_loss"] = float(loss[-1]) if loss.size else None
    epoch_s = recorder.seconds
    timings = {
        "total_s": time.perf_counter() - t0,
        "setup_s": t1 - t0,
        "fit_s": t2 - t1,
        "first_epoch_s": epoch_s[0] if epoch_s else 0.0,
        "epoch_ms_median": 1000 * float(np.median(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)),
    }
    return RunResult(
        config=config, engine="keras", initial_weights=initial, final_weights=final,
        pred_train=pred_train, pred_test=pred_test, loss_history=loss, metrics=metrics,
        diverged=diverged, diverged_epoch=int(bad[0]) + 1 if bad.size else None, timings=timings,
        fingerprint=fingerprint(probe_tensorflow=keras_backend() == "tensorflow"), options=options,
    )
