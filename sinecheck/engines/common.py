"""What every engine does around its training loop: a fresh, seeded start and the RunResult at the end.

Sharing these keeps engines comparable: the same initial weights for the same seed, the same
predictions, metrics and divergence rule, so any difference `compare` finds comes from the loop itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.data import SineData, make_data
from sinecheck.core.environment import keras_backend
from sinecheck.core.records import Compiler, CompileRecord, data_record
from sinecheck.core.result import RunResult, Timings, digest_tensors, error_metrics
from sinecheck.keras.compiled import evaluate_compiled, read_model, settle
from sinecheck.keras.models import build_model, compile_model, model_weight_names, weight_names
from sinecheck.keras.runtime import is_compiled, keras_module, probed_fingerprint, to_numpy
from sinecheck.keras.seeding import private_initializer_seeds, seed_everything, unseed_everything
from sinecheck.keras.user_model import build_spec_model


@dataclass
class Start:
    """A compiled fresh model with its data, recorded initial weights and how the start was made."""

    model: Any
    data: SineData
    initial: dict[str, np.ndarray]
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    compiled: CompileRecord | None = None  # how the model was compiled, read back before training


def reset_keras_state() -> None:
    """Drop every model, layer-name counter and the global seed generator of earlier runs in this process."""
    keras_module().backend.clear_session()


def names_of(model: Any, config: TrainConfig) -> list[str]:
    """Stable weight names: ``layer0/kernel`` … for the built-in model, ``layer1.lstm/kernel`` … for a spec's."""
    return model_weight_names(model) if config.model is not None else weight_names(config)


def weights_of(model: Any, config: TrainConfig) -> dict[str, np.ndarray]:
    """The model's weights as copies under stable names (see `names_of`)."""
    return {name: np.array(w) for name, w in zip(names_of(model, config), model.get_weights(), strict=True)}


def fresh_start(
    config: TrainConfig,
    *,
    initial_weights: Mapping[str, np.ndarray] | None = None,
    unseeded_noise: float = 0.0,
    clear_session: bool = True,
) -> Start:
    """Clear Keras state, seed (or truly unseed), build and compile the model, optionally load weights.

    `initial_weights` replaces the seeded start (to compare two backends' arithmetic from one point);
    `unseeded_noise` > 0 adds a GaussianNoise layer seeded from the OS, outside the global seed.
    ``clear_session=False`` skips Keras's ``clear_session`` for a seeded config and seeds without flushing
    TensorFlow's kernel cache (seeding alone resets Keras's seed generator, so the weights are the same): a
    flush costs an already compiled loop ~0.25 s of re-instantiation on its next call.
    """
    started = time.perf_counter()
    if clear_session or config.seed is None:
        reset_keras_state()
    if config.seed is not None:
        seed_everything(config.seed, keep_kernel_cache=not clear_session)
    else:
        unseed_everything()
    data = make_data(config)
    noise = (unseeded_noise, secrets.randbits(31)) if unseeded_noise > 0 else None
    options: dict[str, Any] = {}
    with private_initializer_seeds(config.seed) if config.seed is not None else contextlib.nullcontext():
        if config.model is None:
            model = compile_model(build_model(config, noise=noise), config)
        else:
            model = build_spec_model(config, data.x_train, noise=noise)
            if is_compiled(model):  # the factory's own compile (the config's changes re-compiled in by `settle`)
                options["compiled_by_factory"] = True
            else:
                model = compile_model(model, config)
    by = Compiler.FACTORY if options.get("compiled_by_factory") else Compiler.SINECHECK
    model, compiled = settle(model, config, compiled_by=by)
    if unseeded_noise > 0:
        options["unseeded_noise"] = unseeded_noise
    if initial_weights is not None:
        names = names_of(model, config)
        if list(initial_weights) != names:
            raise ValueError(f"initial_weights: tensors {list(initial_weights)}; allowed: exactly {names}")
        model.set_weights([np.asarray(initial_weights[n]) for n in names])
        options["initial_weights"] = digest_tensors(initial_weights)
    return Start(model, data, weights_of(model, config), options, started, compiled)


def finish(
    config: TrainConfig,
    engine: str,
    start: Start,
    loss_history: Any,
    *,
    setup_s: float,
    fit_s: float,
    first_epoch_s: float,
    epoch_ms_median: float,
    trace_s: float | None = None,
    predictions: tuple[np.ndarray, np.ndarray] | None = None,
) -> RunResult:
    """Record final weights and predictions (one forward call per grid) and build the RunResult.

    A run is diverged when a logged loss or a final weight is not finite.  The engine's own times (see
    `Timings`) gain ``total_s``, from the fresh start to here.  `predictions` (train grid, held-out grid)
    replaces the Keras forward call, for an engine that computes them itself (the NumPy engine in float64).
    """
    model, data = start.model, start.data
    final = weights_of(model, config)
    if predictions is None:
        predictions = (to_numpy(model(data.x_train, training=False)), to_numpy(model(data.x_test, training=False)))
    pred_train, pred_test = (np.asarray(p, dtype=np.float32) for p in predictions)  # stored as float32
    loss = np.asarray(loss_history, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(loss))
    metrics = error_metrics(
        np.asarray(predictions[0]),
        np.asarray(predictions[1]),
        data.y_train_clean,
        data.y_test,
        final_loss=float(loss[-1]) if loss.size else None,
    )
    if engine == "keras" and config.model is not None:  # a user's model: its own compiled loss and metrics
        compiled = evaluate_compiled(
            model, (data.x_train, data.y_train), (data.x_test, data.y_test), batch_size=config.batch_size
        )
        metrics = dataclasses.replace(metrics, compiled=compiled)
    return RunResult(
        config=config,
        engine=engine,
        initial_weights=start.initial,
        final_weights=final,
        pred_train=pred_train,
        pred_test=pred_test,
        loss_history=loss,
        metrics=metrics,
        diverged=bool(bad.size) or not all(np.isfinite(w).all() for w in final.values()),
        diverged_epoch=int(bad[0]) + 1 if bad.size else None,
        timings=Timings(
            total_s=time.perf_counter() - start.started,
            setup_s=setup_s,
            fit_s=fit_s,
            first_epoch_s=first_epoch_s,
            epoch_ms_median=epoch_ms_median,
            trace_s=trace_s,
        ),
        fingerprint=probed_fingerprint(probe_tensorflow=keras_backend() == "tensorflow"),
        options=start.options,
        model_record=read_model(model),
        compile_record=start.compiled if engine == "keras" else None,  # the other engines run their own loop
        data_record=data_record(data),
    )
