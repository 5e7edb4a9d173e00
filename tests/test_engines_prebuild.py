"""The keras engine builds a model's training state before ``fit`` (`build_training_state`): TensorFlow then traces
``train_step`` once instead of twice, and every bit of the run stays the same.  Proved here on every zoo model (a
Dropout conv net, an LSTM on a tf.data pipeline, Embedding + attention, a functional model with two inputs and two
outputs, a subclassed model, mixed precision …) and on a sine preset, each trained with and without it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from zoo_support import MODELS, zoo_spec

from sinecheck.core.config import TrainConfig
from sinecheck.core.presets import PRESETS

pytest.importorskip("tensorflow")

EPOCHS = 2


def _train_counting(monkeypatch: pytest.MonkeyPatch, config: TrainConfig, *, prebuild: bool) -> tuple[Any, int]:
    """Train `config` with the keras engine (with or without the pre-build); also return how often TensorFlow traced
    Keras's ``train_step`` (Python runs it only while tracing)."""
    import sinecheck.engines.keras_fit as keras_fit
    from sinecheck.engines.registry import train

    trainer = pytest.importorskip("keras.src.backend.tensorflow.trainer").TensorFlowTrainer
    real_step = trainer.train_step
    traces = 0

    def train_step(self: Any, batch: Any) -> Any:
        nonlocal traces
        traces += 1
        return real_step(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "train_step", train_step)
        if not prebuild:
            patch.setattr(keras_fit, "build_training_state", lambda *args: None)
        return train(config, compiled_metrics=False), traces


def _check_same_bits_one_trace(monkeypatch: pytest.MonkeyPatch, config: TrainConfig) -> None:
    plain, plain_traces = _train_counting(monkeypatch, config, prebuild=False)
    built, built_traces = _train_counting(monkeypatch, config, prebuild=True)
    assert built.digests == plain.digests, f"the pre-build changed the run: {built.digests} vs {plain.digests}"
    assert (plain_traces, built_traces) == (2, 1), f"train_step traces without / with: {plain_traces} / {built_traces}"


@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_same_bits_one_trace(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_same_bits_one_trace(monkeypatch, zoo_spec(name).config(epochs=EPOCHS))


def test_sine_preset_same_bits_one_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(PRESETS["keras-default"].configs[0], epochs=EPOCHS)
    _check_same_bits_one_trace(monkeypatch, config)


def test_a_model_keras_cannot_build_from_shapes_trains_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Keras's symbolic build fails (a model it cannot run on shapes alone), `fit` builds the state in its
    trace as it always did: the run goes on with the same bits."""
    keras = pytest.importorskip("keras")
    config = dataclasses.replace(PRESETS["keras-default"].configs[0], epochs=EPOCHS)
    plain, _ = _train_counting(monkeypatch, config, prebuild=False)

    def cannot(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Unable to automatically build the model")

    monkeypatch.setattr(keras.Model, "_symbolic_build", cannot)
    failed, traces = _train_counting(monkeypatch, config, prebuild=True)
    assert failed.digests == plain.digests and traces == 2
