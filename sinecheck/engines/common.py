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
from sinecheck.core.data import TrainingData, make_data
from sinecheck.core.environment import keras_backend
from sinecheck.core.records import Compiler, CompileRecord, data_record
from sinecheck.core.result import RunResult, Timings, digest_tensors, error_metrics
from sinecheck.core.specs import spec_error
from sinecheck.keras.compiled import evaluate_compiled, read_model, settle
from sinecheck.keras.models import build_model, compile_model, model_weight_names, weight_names
from sinecheck.keras.runtime import is_compiled, keras_module, probed_fingerprint, to_numpy
from sinecheck.keras.seeding import private_initializer_seeds, seed_everything, unseed_everything
from sinecheck.keras.user_data import Outputs, check_fit_arguments, check_labels, data_note, predict
from sinecheck.keras.user_model import build_spec_model, output_shapes


@dataclass
class Start:
    """A compiled fresh model with its data, recorded initial weights and how the start was made; a model spec's
    own callbacks and fit arguments (its `sinecheck.FitSpec`) go to ``fit`` with it."""

    model: Any
    data: TrainingData
    initial: dict[str, np.ndarray]
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    callbacks: tuple[Any, ...] = ()
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
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
    callbacks: tuple[Any, ...] = ()
    fit_kwargs: Mapping[str, Any] = {}
    with private_initializer_seeds(config.seed) if config.seed is not None else contextlib.nullcontext():
        if config.model is None:
            model = compile_model(build_model(config, noise=noise), config)
        else:
            fit_spec = build_spec_model(config, data, noise=noise)
            model, callbacks, fit_kwargs = fit_spec.model, tuple(fit_spec.callbacks), fit_spec.fit_kwargs
            if is_compiled(model):  # the factory's own optimizer and loss, not the config's
                options["compiled_by_factory"] = True
            else:
                model = compile_model(model, config)
            check_labels(model, data, output_shapes(model, data, batch_size=config.batch_size), spec=config.model)
            check_fit_arguments(fit_spec, data, model, spec=config.model)
            if callbacks or fit_kwargs:
                options["fit_spec"] = fit_spec.describe()
    note = data_note(data)
    if note is not None:
        options["data"] = note
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
    return Start(model, data, weights_of(model, config), options, started, callbacks, fit_kwargs, compiled)


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
    compiled_metrics: bool = True,
) -> RunResult:
    """Record final weights and predictions (one forward call per grid) and build the RunResult.

    A run is diverged when a logged loss or a final weight is not finite.  The engine's own times (see
    `Timings`) gain ``total_s``, from the fresh start to here.  `predictions` (train grid, held-out grid)
    replaces the Keras forward call, for an engine that computes them itself (the NumPy engine in float64).
    `compiled_metrics=False` leaves a user's model's compiled loss and metrics out (no ``evaluate``).
    """
    model, data = start.model, start.data
    final = weights_of(model, config)
    if config.model is not None and list(final) != list(start.initial):
        created = [name for name in final if name not in start.initial] or list(final)
        raise spec_error(
            "model",
            config.model,
            f"training created weights that did not exist after building it ({', '.join(created[:4])}); allowed: a "
            "model whose weights all exist after one call on a batch of the data (inference mode)",
        )
    loss = np.asarray(loss_history, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(loss))
    final_loss = float(loss[-1]) if loss.size else None
    outputs: dict[str, np.ndarray] = {}
    if predictions is not None or (config.model is None and config.data is None):  # the sine presets, as ever
        if predictions is None:
            predictions = (to_numpy(model(data.x_train, training=False)), to_numpy(model(data.x_test, training=False)))
        pred_train, pred_test = (np.asarray(p, dtype=np.float32) for p in predictions)  # stored as float32
        metrics = error_metrics(
            np.asarray(predictions[0]),
            np.asarray(predictions[1]),
            data.y_train_clean,
            data.y_test,
            final_loss=final_loss,
        )
    else:  # a user's model or data: every output, in the dtype the model computes it
        train, test = predict(model, data, "train"), predict(model, data, "test")
        pred_train, pred_test = next(iter(train.predictions.values())), next(iter(test.predictions.values()))
        if len(train.predictions) > 1:
            outputs = {
                f"{split}/{name}": value
                for split, out in (("train", train), ("test", test))
                for name, value in out.predictions.items()
            }
        (p_train, t_train), (p_test, t_test) = _scored(train), _scored(test)
        metrics = error_metrics(p_train, p_test, t_train, t_test, final_loss=final_loss)
    if engine == "keras" and config.model is not None and compiled_metrics:  # a user's model: its own loss, metrics
        metrics = dataclasses.replace(metrics, compiled=evaluate_compiled(model, data, batch_size=config.batch_size))
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
        output_predictions=outputs,
        model_record=read_model(model),
        compile_record=start.compiled if engine == "keras" else None,  # the other engines run their own loop
        data_record=data_record(data),
    )


def _scored(outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and the targets they are scored against (a user's data: MSE / max |error| against its labels,
    as for the sine data).  One output: its arrays, a 1-D target as a column.  Several: every output whose
    targets are numbers and broadcast against it, flattened into one vector each; none: NaN."""
    pairs = []
    for name, prediction in outputs.predictions.items():
        target = outputs.targets.get(name)
        if target is None or target.dtype.kind not in "biuf":
            continue
        target = target.reshape(-1, 1) if target.ndim == 1 else target
        try:
            shape = np.broadcast_shapes(prediction.shape, target.shape)
        except ValueError:
            continue
        pairs.append((prediction, target, shape))
    if len(pairs) == 1 and len(outputs.predictions) == 1:
        return pairs[0][0], pairs[0][1]
    if not pairs:
        return np.full(1, np.nan), np.zeros(1)
    return (
        np.concatenate([np.broadcast_to(p, shape).ravel() for p, _, shape in pairs]),
        np.concatenate([np.broadcast_to(t, shape).astype(np.float64).ravel() for _, t, shape in pairs]),
    )
