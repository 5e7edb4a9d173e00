"""The reference engine: Keras ``Model.fit``, exactly as a user of the reference experiments would call it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.data import TrainingData
from sinecheck.core.result import RunResult
from sinecheck.core.structure import DataForm
from sinecheck.engines.base import Progress
from sinecheck.engines.common import Start, finish, fresh_start
from sinecheck.keras.runtime import keras_module
from sinecheck.keras.user_data import fit_data, form_of


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


def _symbolic_batch(form: DataForm, arguments: Mapping[str, Any]) -> Any:
    """The structure of one training batch as shapes and dtypes (batch size unknown), read without drawing a batch:
    a tf.data pipeline's element spec, or ``(x, y[, sample_weight])`` of arrays.  None for anything else (a
    PyDataset's batches exist only by calling it, which may draw random numbers)."""
    keras = keras_module()
    if form is DataForm.TF_DATASET:
        spec = arguments["x"].element_spec
        leaves = keras.tree.flatten(spec)
        if not all(type(leaf).__name__ == "TensorSpec" for leaf in leaves):
            return None  # ragged or sparse parts: leave the building to fit
        return spec
    if form not in (DataForm.ARRAYS, DataForm.SINE):
        return None
    parts = [arguments[k] for k in ("x", "y", "sample_weight") if arguments.get(k) is not None]

    def symbolic(array: Any) -> Any:
        array = np.asarray(array)
        return keras.KerasTensor((None, *array.shape[1:]), dtype=str(array.dtype))

    return tuple(keras.tree.map_structure(symbolic, part) for part in parts)


def build_training_state(model: Any, data: TrainingData, arguments: Mapping[str, Any]) -> None:
    """Build the model's compiled loss, compiled metrics and optimizer variables from the data's shapes before
    ``fit``, with Keras 3's own ``_symbolic_build`` (which ``fit`` runs itself under a distribution strategy and on
    JAX and torch).  Without it, TensorFlow's first trace of ``train_step`` creates those variables, and a
    ``tf.function`` whose first trace creates variables is traced a second time.  Same variables, same values, the
    same bits (tests/test_engines_prebuild.py); one trace instead of two: 15-30 % of a run on the zoo models.  Not
    for tf_keras (no such method) or a PyDataset, nor where the symbolic build fails: there ``fit`` builds them in
    its trace, as before."""
    build = getattr(model, "_symbolic_build", None)
    if build is None or getattr(model, "run_eagerly", False):
        return
    batch = _symbolic_batch(form_of(data), arguments)
    if batch is None:
        return
    try:
        build(data_batch=batch)
    except Exception:  # what Keras cannot build from shapes alone, fit builds in its trace, as before
        return


def fit(start: Start, config: TrainConfig, callback: Any) -> Any:
    """Keras ``fit`` as this engine calls it: the start's model on its training data with `config`'s batch size,
    epochs and shuffle (a pipeline batches and shuffles itself), silent; the callbacks are `callback`, a model
    spec's own (its `sinecheck.FitSpec`) and Keras's ``TerminateOnNaN`` (a NaN/inf loss stops training), and the
    FitSpec's fit arguments are passed as given.  The training state is built first (`build_training_state`: one
    trace instead of two, the same bits).  Returns Keras's ``History``."""
    keras = keras_module()
    arguments = fit_data(start.data, batch_size=config.batch_size, shuffle=config.shuffle)
    build_training_state(start.model, start.data, arguments)
    return start.model.fit(
        **arguments,
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
    compiled_metrics: bool = True,
) -> RunResult:
    """Seed, build, compile and ``fit`` a fresh model; record weights before and after, predictions, timings.

    A NaN/inf loss stops training (Keras's ``TerminateOnNaN``) and the result is marked diverged.
    Predictions are one forward call on the whole grid (no batching, so they do not depend on a predict
    batch size).  `initial_weights` replaces the seeded start (to compare the arithmetic of two backends
    from the same point); `unseeded_noise` > 0 adds a GaussianNoise layer seeded from the OS, outside the
    global seed: a deliberate source of nondeterminism for negative controls.  `compiled_metrics=False` skips
    ``evaluate`` (a user's model's compiled loss and metrics) after training.
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
        compiled_metrics=compiled_metrics,
    )
