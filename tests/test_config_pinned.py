"""TrainConfig's limits and messages, pinned at their boundaries (issue 16, mutation survivors): the range checks of
optimizer and initializer parameters, the layer limits, the data interval, the exact error text (field, bad value,
what is allowed), `describe` and `changed_fields`.  Expected values are written out, not recomputed."""

from __future__ import annotations

import re

import pytest

from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig, changed_fields
from sinecheck.errors import ConfigError, ConfigTypeError

FIELDS = (
    "hidden_units, activation, kernel_initializer, bias_initializer, optimizer, loss, batch_size, epochs, shuffle, "
    "seed, xla, n_points, x_min, x_max, noise_std, noise_seed, model, data, lr_scale"
)


def _raises(exc: type[Exception], message: str) -> pytest.RaisesContext[Exception]:
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


# -- optimizer parameters in [0, 1) --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), [("adam", "beta_1"), ("adam", "beta_2"), ("rmsprop", "rho")])
@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_decay_rates_outside_zero_one_are_refused(name: str, key: str, bad: float) -> None:
    with _raises(ConfigError, f"{name}.{key}: invalid value {bad!r}; allowed: a number in [0, 1)"):
        OptimizerSpec(name, None, ((key, bad),))


@pytest.mark.parametrize(("name", "key"), [("adam", "beta_1"), ("adam", "beta_2"), ("rmsprop", "rho")])
@pytest.mark.parametrize("good", [0.0, 0.5, 0.9999])
def test_decay_rates_inside_zero_one_are_kept(name: str, key: str, good: float) -> None:
    assert OptimizerSpec(name, None, ((key, good),)).kwargs()[key] == good


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_sgd_momentum_outside_zero_one_is_refused(bad: float) -> None:
    with _raises(ConfigError, f"sgd.momentum: invalid value {bad!r}; allowed: a number in [0, 1]"):
        OptimizerSpec("sgd", None, (("momentum", bad),))


@pytest.mark.parametrize("good", [0.0, 1.0])
def test_sgd_momentum_bounds_are_kept(good: float) -> None:
    assert OptimizerSpec("sgd", None, (("momentum", good),)).kwargs()["momentum"] == good
    assert OptimizerSpec("rmsprop", None, (("momentum", 1.5),)).kwargs()["momentum"] == 1.5  # Keras allows it there


def test_optimizer_text_and_kwargs() -> None:
    spec = OptimizerSpec("adam", 0.01, (("epsilon", 1e-6), ("beta_1", 0.8)))
    assert str(spec) == "adam(lr=0.01, beta_1=0.8, epsilon=1e-06)"
    assert spec.kwargs() == {"learning_rate": 0.01, "beta_1": 0.8, "epsilon": 1e-6}
    assert str(OptimizerSpec("sgd")) == "sgd(lr=0.01)"


# -- layers and the data interval ----------------------------------------------------------------------------------


def test_eight_hidden_layers_accepted_nine_refused() -> None:
    assert TrainConfig(hidden_units=(2,) * 8).hidden_units == (2,) * 8
    with _raises(ConfigError, f"hidden_units: invalid value {(2,) * 9!r}; allowed: 1 to 8 layer widths"):
        TrainConfig(hidden_units=(2,) * 9)
    with _raises(ConfigError, "hidden_units: invalid value (); allowed: 1 to 8 layer widths"):
        TrainConfig(hidden_units=())


def test_layer_width_limits() -> None:
    assert TrainConfig(hidden_units=(1, 65536)).hidden_units == (1, 65536)
    with _raises(ConfigError, "hidden_units[1]: invalid value 65537; allowed: an integer in [1, 65536]"):
        TrainConfig(hidden_units=(4, 65537))
    with _raises(ConfigError, "hidden_units[0]: invalid value 0; allowed: an integer in [1, 65536]"):
        TrainConfig(hidden_units=(0,))


def test_x_max_must_exceed_x_min() -> None:
    with _raises(ConfigError, "x_max: invalid value 1.0; allowed: a number greater than x_min=1.0"):
        TrainConfig(x_min=1.0, x_max=1.0)
    with _raises(ConfigError, "x_max: invalid value 0.5; allowed: a number greater than x_min=1.0"):
        TrainConfig(x_min=1.0, x_max=0.5)
    cfg = TrainConfig(x_min=1, x_max=2)
    assert (cfg.x_min, cfg.x_max) == (1.0, 2.0)
    assert type(cfg.x_min) is float and type(cfg.x_max) is float


# -- initializer parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ((("minval", 0.5), ("maxval", 0.5)), "random_uniform.minval: invalid value 0.5; allowed: a number below "
                                             "maxval=0.5"),
        ((("minval", 0.6), ("maxval", 0.5)), "random_uniform.minval: invalid value 0.6; allowed: a number below "
                                             "maxval=0.5"),
        ((("minval", 0.05),), "random_uniform.minval: invalid value 0.05; allowed: a number below maxval=0.05"),
        ((("maxval", -0.05),), "random_uniform.minval: invalid value -0.05; allowed: a number below maxval=-0.05"),
    ],
)  # fmt: skip
def test_random_uniform_needs_minval_below_maxval(params: tuple[tuple[str, float], ...], message: str) -> None:
    with _raises(ConfigError, message):
        InitializerSpec("random_uniform", params)


def test_random_uniform_just_below_is_fine() -> None:
    spec = InitializerSpec("random_uniform", (("minval", 0.49), ("maxval", 0.5)))
    assert spec.kwargs() == {"maxval": 0.5, "minval": 0.49}
    assert InitializerSpec("random_uniform", (("maxval", -0.04),)).kwargs() == {"maxval": -0.04}


@pytest.mark.parametrize("name", ["random_normal", "truncated_normal"])
def test_stddev_must_be_positive(name: str) -> None:
    with _raises(ConfigError, f"{name}.stddev: invalid value 0.0; allowed: a number > 0"):
        InitializerSpec(name, (("stddev", 0),))
    assert InitializerSpec(name, (("stddev", 1e-9),)).kwargs() == {"stddev": 1e-9}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Glorot", 'initializer: invalid value \'Glorot\'; allowed: NAME or NAME(key=value, ...), e.g. '
                   '"truncated_normal(stddev=0.02)"'),
        ("random_normal(stddev=abc)", "random_normal.stddev: invalid value 'abc'; allowed: a number, as key=value"),
        ("random_normal(stddev)", "random_normal.stddev: invalid value 'stddev'; allowed: a number, as key=value"),
        ("random_normal(stddev=1=2)", "random_normal.stddev: invalid value '1=2'; allowed: a number, as key=value"),
    ],
)  # fmt: skip
def test_initializer_parse_messages(text: str, message: str) -> None:
    with _raises(ConfigError, message):
        InitializerSpec.parse(text)


# -- from_dict / replace messages ----------------------------------------------------------------------------------


def test_from_dict_messages() -> None:
    with _raises(ConfigTypeError, "config: invalid value [('epochs', 3)]; allowed: a mapping of field name to value"):
        TrainConfig.from_dict([("epochs", 3)])  # type: ignore[arg-type]
    with _raises(ConfigError, "schema: invalid value 2; allowed: 1 (this sinecheck's config schema)"):
        TrainConfig.from_dict({"schema": 2})
    with _raises(ConfigError, f"epoch: invalid value 5; allowed: fields {FIELDS}"):
        TrainConfig.from_dict({"epoch": 5})
    with _raises(ConfigTypeError, "kernel_initializer.name: invalid value None; allowed: an initializer name"):
        TrainConfig.from_dict({"kernel_initializer": {"params": {}}})
    with _raises(ConfigTypeError, "bias_initializer.name: invalid value 3; allowed: an initializer name"):
        TrainConfig.from_dict({"bias_initializer": {"name": 3}})


def test_from_dict_keeps_optimizer_params() -> None:
    cfg = TrainConfig.from_dict({"optimizer": {"name": "rmsprop", "learning_rate": 0.01, "params": {"rho": 0.5}}})
    assert cfg.optimizer == OptimizerSpec("rmsprop", 0.01, (("rho", 0.5),))
    assert TrainConfig.from_dict({"optimizer": {}}).optimizer == OptimizerSpec("adam")


def test_replace_message_lists_the_fields() -> None:
    with _raises(ConfigError, f"batchsize: invalid value 64; allowed: fields {FIELDS}"):
        TrainConfig().replace(batchsize=64)


def test_changed_fields() -> None:
    base = TrainConfig()
    assert changed_fields(base, base) == []
    assert changed_fields(base, base.replace(seed=3, epochs=5, xla=True)) == ["epochs", "seed", "xla"]


# -- describe ------------------------------------------------------------------------------------------------------


def test_describe_builtin() -> None:
    assert TrainConfig().describe() == (
        "Dense(128,relu)→1 init=glorot_uniform adam(lr=0.001) batch=32 epochs=100 shuffle=True seed=0"
    )
    cfg = TrainConfig(
        hidden_units=(16, 8),
        activation="tanh",
        kernel_initializer="truncated_normal(stddev=0.02)",
        xla=True,
        lr_scale=2.0,
        seed=None,
    )
    assert cfg.describe() == (
        "Dense(16-8,tanh)→1 init=truncated_normal(stddev=0.02) adam(lr=0.001) lr×2 xla batch=32 epochs=100 "
        "shuffle=True seed=None"
    )


def test_describe_with_model_and_data() -> None:
    plain = TrainConfig(model="m.py:build")
    assert plain.describe() == "model m.py:build batch=32 epochs=100 shuffle=True seed=0"
    full = TrainConfig(
        model="m.py:build", data="d.py:load", optimizer=OptimizerSpec("sgd"), loss="mae", xla=True, lr_scale=0.5
    )
    assert full.describe() == (
        "model m.py:build data d.py:load sgd(lr=0.01) lr×0.5 loss=mae xla batch=32 epochs=100 shuffle=True seed=0"
    )


def test_describe_with_data_only() -> None:
    cfg = TrainConfig(data="d.py:load")
    assert cfg.describe() == (
        "Dense presets' model data d.py:load adam(lr=0.001) loss=mse batch=32 epochs=100 shuffle=True seed=0"
    )


def test_spec_name_messages() -> None:
    with _raises(ConfigTypeError, "optimizer: invalid value 3; allowed: an optimizer name (got int)"):
        OptimizerSpec(3)  # type: ignore[arg-type]
    with _raises(ConfigError, "optimizer: invalid value 'adamw'; allowed: adam, sgd, rmsprop, adagrad"):
        OptimizerSpec("adamw")
    with _raises(ConfigTypeError, "initializer: invalid value 3; allowed: an initializer name (got int)"):
        InitializerSpec(3)  # type: ignore[arg-type]
    known = (
        "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, orthogonal, "
        "random_normal, truncated_normal, random_uniform, constant, zeros, ones"
    )
    with _raises(ConfigError, f"initializer: invalid value 'xavier'; allowed: {known}"):
        InitializerSpec("xavier")
    with _raises(ConfigError, f"kernel_initializer: invalid value 'xavier'; allowed: {known}"):
        TrainConfig(kernel_initializer="xavier")


# -- every field's message, word for word (the field, the bad value, what is allowed) ------------------------------

MESSAGES = [
    (
        "hidden_units",
        32,
        ConfigTypeError,
        "hidden_units: invalid value 32; allowed: a tuple of positive integers (got int)",
    ),
    (
        "hidden_units",
        (4, 2.0),
        ConfigTypeError,
        "hidden_units[1]: invalid value 2.0; allowed: an integer in [1, 65536] (got float)",
    ),
    (
        "hidden_units",
        (True,),
        ConfigTypeError,
        "hidden_units[0]: invalid value True; allowed: an integer in [1, 65536]",
    ),
    (
        "activation",
        3,
        ConfigTypeError,
        "activation: invalid value 3; allowed: an activation name (got int)",
    ),
    (
        "activation",
        "softmaxx",
        ConfigError,
        "activation: invalid value 'softmaxx'; allowed: relu, tanh, sigmoid, elu, selu, gelu, softplus, swish, "
        "leaky_relu, linear",
    ),
    (
        "kernel_initializer",
        0.02,
        ConfigTypeError,
        "kernel_initializer: invalid value 0.02; allowed: an InitializerSpec or an initializer name (got float)",
    ),
    (
        "kernel_initializer",
        "random_normal(stddev=abc)",
        ConfigError,
        "kernel_initializer.random_normal.stddev: invalid value 'abc'; allowed: a number, as key=value",
    ),
    (
        "bias_initializer",
        "Zeros",
        ConfigError,
        "bias_initializer: invalid value 'Zeros'; allowed: NAME or NAME(key=value, ...), e.g. "
        '"truncated_normal(stddev=0.02)"',
    ),
    (
        "optimizer",
        "adam",
        ConfigTypeError,
        "optimizer: invalid value 'adam'; allowed: an OptimizerSpec (got str)",
    ),
    (
        "loss",
        1,
        ConfigTypeError,
        "loss: invalid value 1; allowed: a loss name (got int)",
    ),
    (
        "loss",
        "l2",
        ConfigError,
        "loss: invalid value 'l2'; allowed: mse, mae, huber, log_cosh",
    ),
    (
        "batch_size",
        0,
        ConfigError,
        "batch_size: invalid value 0; allowed: an integer >= 1",
    ),
    (
        "batch_size",
        True,
        ConfigTypeError,
        "batch_size: invalid value True; allowed: an integer >= 1",
    ),
    (
        "batch_size",
        "32",
        ConfigTypeError,
        "batch_size: invalid value '32'; allowed: an integer >= 1 (got str)",
    ),
    (
        "epochs",
        100_001,
        ConfigError,
        "epochs: invalid value 100001; allowed: an integer in [1, 100000]",
    ),
    (
        "shuffle",
        1,
        ConfigTypeError,
        "shuffle: invalid value 1; allowed: true or false (got int)",
    ),
    (
        "seed",
        2**32,
        ConfigError,
        "seed: invalid value 4294967296; allowed: an integer in [0, 4294967295]",
    ),
    (
        "xla",
        None,
        ConfigTypeError,
        "xla: invalid value None; allowed: true or false (got NoneType)",
    ),
    (
        "n_points",
        1,
        ConfigError,
        "n_points: invalid value 1; allowed: an integer in [2, 10000000]",
    ),
    (
        "x_min",
        float("nan"),
        ConfigError,
        "x_min: invalid value nan; allowed: a finite number",
    ),
    (
        "x_min",
        "0",
        ConfigTypeError,
        "x_min: invalid value '0'; allowed: a finite number (got str)",
    ),
    (
        "x_max",
        float("inf"),
        ConfigError,
        "x_max: invalid value inf; allowed: a finite number",
    ),
    (
        "noise_std",
        -0.1,
        ConfigError,
        "noise_std: invalid value -0.1; allowed: a finite number >= 0",
    ),
    (
        "noise_seed",
        -5,
        ConfigError,
        "noise_seed: invalid value -5; allowed: an integer in [0, 4294967295]",
    ),
    (
        "model",
        "models.py",
        ConfigError,
        "model: invalid value 'models.py'; allowed: MODULE:CALLABLE or path/to/file.py:CALLABLE",
    ),
    (
        "data",
        3,
        ConfigTypeError,
        "data: invalid value 3; allowed: MODULE:CALLABLE or path/to/file.py:CALLABLE (got int)",
    ),
    (
        "lr_scale",
        0.0,
        ConfigError,
        "lr_scale: invalid value 0.0; allowed: a finite number > 0",
    ),
]


@pytest.mark.parametrize(("field", "value", "exc", "message"), MESSAGES, ids=[f"{m[0]}={m[1]!r}" for m in MESSAGES])
def test_every_field_message_word_for_word(field: str, value: object, exc: type[Exception], message: str) -> None:
    with _raises(exc, message) as info:
        TrainConfig(**{field: value})
    assert isinstance(info.value, exc) and (exc is ConfigError) == (not isinstance(info.value, TypeError))


@pytest.mark.parametrize(
    ("name", "params", "exc", "message"),
    [
        ("adam", 3, ConfigTypeError, "adam: invalid value 3; allowed: a mapping of parameter name to value"),
        ("adam", [1, 2], ConfigTypeError, "adam: invalid value [1, 2]; allowed: a mapping of parameter name to value"),
        ("adam", (("foo", 1.0),), ConfigError, "adam.foo: invalid value 1.0; allowed: parameters amsgrad, beta_1, "
                                               "beta_2, epsilon"),
        ("adam", (("amsgrad", 1),), ConfigTypeError, "adam.amsgrad: invalid value 1; allowed: true or false (got int)"),
        ("sgd", (("momentum", "0.9"),), ConfigTypeError, "sgd.momentum: invalid value '0.9'; allowed: a finite "
                                                         "number (got str)"),
    ],
)  # fmt: skip
def test_optimizer_param_messages(name: str, params: object, exc: type[Exception], message: str) -> None:
    with _raises(exc, message):
        OptimizerSpec(name, None, params)  # type: ignore[arg-type]


def test_initializer_without_parameters_message() -> None:
    with _raises(ConfigError, "glorot_uniform.stddev: invalid value 0.1; allowed: no parameters"):
        InitializerSpec("glorot_uniform", (("stddev", 0.1),))


def test_learning_rate_message_and_type() -> None:
    with _raises(ConfigError, "learning_rate: invalid value 0.0; allowed: a finite number > 0"):
        OptimizerSpec("adam", 0.0)
    spec = OptimizerSpec("sgd", 1)
    assert spec.learning_rate == 1.0 and type(spec.learning_rate) is float


def test_params_are_normalised_to_sorted_pairs() -> None:
    from_dict = OptimizerSpec("adam", None, {"epsilon": 1e-6, "beta_1": 0.8})  # type: ignore[arg-type]
    from_list = OptimizerSpec("adam", None, [("epsilon", 1e-6), ("beta_1", 0.8)])  # type: ignore[arg-type]
    assert from_dict.params == from_list.params == (("beta_1", 0.8), ("epsilon", 1e-6))
    assert from_dict == from_list and hash(from_dict) == hash(from_list)
    ints = InitializerSpec("constant", {"value": 1})  # type: ignore[arg-type]
    assert ints.params == (("value", 1.0),) and type(ints.params[0][1]) is float


@pytest.mark.parametrize(
    ("changes", "field"), [({"x_min": 0}, "x_min"), ({"x_max": 10}, "x_max"), ({"noise_std": 0}, "noise_std"),
                           ({"lr_scale": 1}, "lr_scale")],
)  # fmt: skip
def test_int_and_float_spellings_are_one_config(changes: dict[str, int], field: str) -> None:
    cfg = TrainConfig(**changes)  # type: ignore[arg-type]
    assert type(getattr(cfg, field)) is float
    assert cfg == TrainConfig() and cfg.config_id == TrainConfig().config_id
