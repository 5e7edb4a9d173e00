"""The Keras factories build exactly the reference experiments' models and optimizers."""

from __future__ import annotations

import pytest

from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.presets import get_preset
from sinecheck.keras.models import build_initializer, build_model, build_optimizer, compile_model

keras = pytest.importorskip("keras")


def _dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_keras_default_model() -> None:
    model = build_model(get_preset("keras-default").configs[0])
    first, last = _dense_layers(model)
    assert (first.units, last.units) == (128, 1)
    assert first.activation is keras.activations.relu and last.activation is keras.activations.linear
    assert isinstance(first.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(first.bias_initializer, keras.initializers.Zeros)
    assert model.count_params() == 128 * 2 + 129


def test_tf_explicit_uses_truncated_normal_on_both_layers_with_fresh_instances() -> None:
    model = build_model(get_preset("tf-explicit").configs[0])
    inits = [layer.kernel_initializer for layer in _dense_layers(model)]
    assert all(isinstance(i, keras.initializers.TruncatedNormal) for i in inits)
    assert all(i.stddev == pytest.approx(0.02) for i in inits)
    assert inits[0] is not inits[1]


def test_adam_defaults_and_explicit_learning_rate() -> None:
    default = build_optimizer(OptimizerSpec())
    reference = keras.optimizers.Adam()
    for attr in ("beta_1", "beta_2", "epsilon", "amsgrad"):
        assert getattr(default, attr) == getattr(reference, attr)
    assert float(default.learning_rate) == pytest.approx(float(reference.learning_rate))
    assert float(build_optimizer(OptimizerSpec("adam", 0.01)).learning_rate) == pytest.approx(0.01)
    sgd = build_optimizer(OptimizerSpec("sgd", 0.1, (("momentum", 0.9),)))
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
    assert sgd.nesterov is False and float(sgd.learning_rate) == pytest.approx(0.1)
    rms = build_optimizer(OptimizerSpec("rmsprop", 0.01, (("centered", True),)))
    assert isinstance(rms, keras.optimizers.RMSprop) and rms.centered is True
    assert (rms.rho, rms.momentum, rms.epsilon) == (pytest.approx(0.9), 0.0, pytest.approx(1e-7))
    adagrad = build_optimizer(OptimizerSpec("adagrad"))
    assert isinstance(adagrad, keras.optimizers.Adagrad)
    assert adagrad.initial_accumulator_value == pytest.approx(0.1) and float(adagrad.learning_rate) == pytest.approx(
        1e-3
    )


#: What each initializer name builds: the Keras class and its configuration (seed aside), Keras's defaults.
INITIALIZERS = {
    "glorot_uniform": ("GlorotUniform", {}),
    "he_normal": ("HeNormal", {}),
    "lecun_normal": ("LecunNormal", {}),
    "orthogonal": ("Orthogonal", {"gain": 1.0}),
    "random_uniform": ("RandomUniform", {"minval": -0.05, "maxval": 0.05}),
    "constant": ("Constant", {"value": 0.0}),
    "zeros": ("Zeros", {}),
    "ones": ("Ones", {}),
    "random_normal": ("RandomNormal", {"mean": 0.0, "stddev": 0.05}),
    "truncated_normal": ("TruncatedNormal", {"mean": 0.0, "stddev": 0.05}),
}


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_every_initializer_builds(name: str) -> None:
    cls, expected = INITIALIZERS[name]
    initializer = build_initializer(InitializerSpec(name))
    assert type(initializer) is getattr(keras.initializers, cls)
    config = {k: v for k, v in initializer.get_config().items() if k not in ("seed", "input_axes", "output_axes")}
    assert config == expected
    parsed = build_initializer(InitializerSpec.parse("truncated_normal(stddev=0.02)"))
    assert parsed.get_config()["stddev"] == pytest.approx(0.02)


def test_compile_is_explicit_about_xla() -> None:
    cfg = TrainConfig(hidden_units=(4,), xla=True)
    model = compile_model(build_model(cfg), cfg)
    assert model.jit_compile is True
    cfg = cfg.replace(xla=False)
    assert compile_model(build_model(cfg), cfg).jit_compile is False


def test_deeper_models() -> None:
    model = build_model(TrainConfig(hidden_units=(8, 4), activation="tanh"))
    assert [d.units for d in _dense_layers(model)] == [8, 4, 1]
    assert [d.activation for d in _dense_layers(model)] == [keras.activations.tanh] * 2 + [keras.activations.linear]
    assert model.count_params() == (1 * 8 + 8) + (8 * 4 + 4) + (4 * 1 + 1)
