"""Probes that observe what ``fit`` does internally, such as the order in which it visits the data."""

from __future__ import annotations

from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.data import sample_count
from sinecheck.keras.models import build_model, build_optimizer
from sinecheck.keras.runtime import keras_module, to_numpy
from sinecheck.keras.seeding import seed_everything, unseed_everything


def epoch_orders(config: TrainConfig, *, epochs: int = 3) -> list[np.ndarray]:
    """The order of sample indices that ``fit(shuffle=config.shuffle)`` used in each epoch.

    Trains on x = 0, 1, …, n-1 (exact in float32) with a pass-through layer that records every training
    batch, compiled with ``run_eagerly=True`` so the recording sees real values.  Shuffling happens in the
    data pipeline, which does not depend on the model or on eager execution, so the orders are those a
    plain ``fit`` of this config draws after the same seeding — for a model or data spec too (the probe
    then stands in for the spec's model, with as many samples as its data has).
    """
    keras = keras_module()
    keras.backend.clear_session()
    if config.seed is not None:
        seed_everything(config.seed)
    else:
        unseed_everything()
    batches: list[np.ndarray] = []

    layer_base: Any = keras.layers.Layer  # keras is resolved at run time (Keras 3 or tf_keras)

    class Recorder(layer_base):
        def call(self, inputs: Any, training: Any = None) -> Any:
            if training:
                batches.append(np.asarray(to_numpy(inputs)).reshape(-1))
            return inputs

    model = build_model(config.replace(model=None, data=None))
    probe = keras.Sequential([keras.Input(shape=(1,)), Recorder(), *model.layers])
    probe.compile(optimizer=build_optimizer(config.optimizer), loss=config.loss, run_eagerly=True)
    n = sample_count(config)
    x = np.arange(n, dtype=np.float32).reshape(-1, 1)
    y = np.sin(x)
    probe.fit(x, y, batch_size=config.batch_size, epochs=epochs, shuffle=config.shuffle, verbose=0)
    seen = np.concatenate(batches).astype(np.int64)
    if seen.size != n * epochs:
        raise RuntimeError(f"recorded {seen.size} samples, expected {n * epochs}: cannot split into epochs")
    return [seen[i * n : (i + 1) * n] for i in range(epochs)]
