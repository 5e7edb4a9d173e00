"""TrainConfig validation, serialisation, ids and the reference presets (no TensorFlow needed)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinecheck.core.config import (
    ACTIVATIONS,
    INITIALIZERS,
    LOSSES,
    OPTIMIZERS,
    InitializerSpec,
    OptimizerSpec,
    TrainConfig,
    field_names,
)
from sinecheck.core.presets import PRESETS, get_preset
from sinecheck.errors import ConfigError

# (field, bad value, text the message must contain besides the field name)
BAD_VALUES = [
    ("hidden_units", (), "1 to 8"),
    ("hidden_units", (0,), "[1, 65536]"),
    ("hidden_units", (32, -1), "[1, 65536]"),
    ("hidden_units", 32, "tuple"),
    ("hidden_units", (32.0,), "integer"),
    ("hidden_units", (True,), "integer"),
    ("activation", "softmaxx", "relu"),
    ("activation", 3, "activation name"),
    ("loss", "cross_entropy", "mse"),
    ("batch_size", 0, ">= 1"),
    ("batch_size", -3, ">= 1"),
    ("batch_size", 2.5, "integer"),
    ("batch_size", True, "integer"),
    ("batch_size", "32", "integer"),
    ("epochs", 0, "[1, 100000]"),
    ("epochs", 100_001, "[1, 100000]"),
    ("shuffle", 1, "true or false"),
    ("shuffle", "yes", "true or false"),
    ("seed", -1, "[0, 4294967295]"),
    ("seed", 2**32, "[0, 4294967295]"),
    ("seed", 1.0, "integer"),
    ("xla", None, "true or false"),
    ("n_points", 1, "[2, 10000000]"),
    ("x_min", math.nan, "finite"),
    ("x_min", "0", "number"),
    ("x_max", math.inf, "finite"),
    ("x_max", -1.0, "greater than x_min"),
    ("noise_std", -0.1, ">= 0"),
    ("noise_seed", -5, "[0, 4294967295]"),
    ("model", "examples/models.py", "MODULE:CALLABLE"),
    ("model", 3, "MODULE:CALLABLE"),
    ("data", "mod:not valid", "path/to/file.py:CALLABLE"),
    ("lr_scale", 0.0, "> 0"),
    ("lr_scale", math.inf, "finite"),
    ("kernel_initializer", 0.02, "InitializerSpec"),
    ("kernel_initializer", "xavier", "glorot_uniform"),
    ("optimizer", "adam", "OptimizerSpec"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_bad_value_names_field_value_and_allowed(field: str, value: object, allowed: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert field in message
    shown = [value, *value] if isinstance(value, tuple) else [value]  # a bad element may be named alone
    assert any(repr(v) in message for v in shown)
    assert allowed in message
    assert isinstance(info.value, ConfigError)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        TrainConfig(batch_size="32")
    with pytest.raises(TypeError):
        TrainConfig(shuffle=1)


def test_every_field_has_a_bad_value_case() -> None:
    covered = {f for f, _, _ in BAD_VALUES} | {"bias_initializer"}
    assert set(field_names()) <= covered, set(field_names()) - covered


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 1),
        ("batch_size", 5000),
        ("epochs", 1),
        ("n_points", 2),
        ("seed", 0),
        ("seed", 2**32 - 1),
        ("seed", None),
        ("noise_std", 0.0),
        ("x_min", -1e6),
        ("hidden_units", (1, 1, 1)),
        ("hidden_units", [16, 8]),
    ],
)
def test_edge_values_accepted(field: str, value: object) -> None:
    cfg = TrainConfig(**{field: value})
    assert getattr(cfg, field) == (tuple(value) if isinstance(value, list) else value)


def test_batch_larger_than_data_is_one_full_batch() -> None:
    assert TrainConfig(batch_size=5000).steps_per_epoch == 1
    assert TrainConfig(batch_size=32).steps_per_epoch == 32  # 31 full batches + a tail of 8


def test_unknown_initializer_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        InitializerSpec("xavier_uniform")
    for name in INITIALIZERS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("spec", "params", "needle"),
    [
        ("glorot_uniform", {"stddev": 0.1}, "no parameters"),
        ("truncated_normal", {"std": 0.1}, "stddev"),
        ("truncated_normal", {"stddev": 0.0}, "> 0"),
        ("random_normal", {"stddev": -1.0}, "> 0"),
        ("random_uniform", {"minval": 1.0, "maxval": 0.5}, "below maxval"),
        ("constant", {"value": math.nan}, "finite"),
    ],
)
def test_bad_initializer_params(spec: str, params: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        InitializerSpec(spec, tuple(params.items()))
    assert needle in str(info.value)
    assert spec in str(info.value)


def test_unknown_optimizer_and_bad_optimizer_params() -> None:
    with pytest.raises(ConfigError, match="optimizer.*'adamw'.*adam, sgd"):
        OptimizerSpec("adamw")
    with pytest.raises(ConfigError, match="learning_rate.*0.*> 0"):
        OptimizerSpec("adam", 0.0)
    with pytest.raises(ConfigError, match="learning_rate.*nan"):
        OptimizerSpec("adam", math.nan)
    with pytest.raises(ConfigError, match=r"adam.beta_1.*1.0.*\[0, 1\)"):
        OptimizerSpec("adam", None, (("beta_1", 1.0),))
    with pytest.raises(ConfigError, match="adam.amsgrad.*true or false"):
        OptimizerSpec("adam", None, (("amsgrad", 1),))
    with pytest.raises(ConfigError, match="sgd.beta_1"):
        OptimizerSpec("sgd", None, (("beta_1", 0.9),))


def test_optimizer_default_learning_rates() -> None:
    assert OptimizerSpec().learning_rate == 0.001
    assert OptimizerSpec("sgd").learning_rate == 0.01
    assert OptimizerSpec("adam", 0.01).kwargs() == {"learning_rate": 0.01}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("he_normal", InitializerSpec("he_normal")),
        ("truncated_normal(stddev=0.02)", InitializerSpec("truncated_normal", (("stddev", 0.02),))),
        (
            " random_uniform( minval=-0.1, maxval=0.1 ) ",
            InitializerSpec("random_uniform", (("maxval", 0.1), ("minval", -0.1))),
        ),
    ],
)
def test_initializer_parse(text: str, expected: InitializerSpec) -> None:
    assert InitializerSpec.parse(text) == expected
    assert InitializerSpec.parse(str(expected)) == expected


@pytest.mark.parametrize("text", ["truncated_normal(stddev=abc)", "he normal", "Glorot", "truncated_normal(stddev)"])
def test_initializer_parse_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        InitializerSpec.parse(text)


def test_string_initializer_is_parsed_on_construction() -> None:
    cfg = TrainConfig(kernel_initializer="truncated_normal(stddev=0.02)")
    assert cfg.kernel_initializer == InitializerSpec("truncated_normal", (("stddev", 0.02),))


def test_replace_validates_and_rejects_unknown_fields() -> None:
    cfg = TrainConfig()
    assert cfg.replace(batch_size=64).batch_size == 64
    with pytest.raises(ConfigError, match="batch_size"):
        cfg.replace(batch_size=0)
    with pytest.raises(ConfigError, match="batchsize.*fields"):
        cfg.replace(batchsize=64)


def test_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(AttributeError):
        cfg.epochs = 5  # type: ignore[misc]


def test_from_dict_errors() -> None:
    with pytest.raises(ConfigError, match="learning_rat.*fields"):
        TrainConfig.from_dict({"learning_rat": 0.1})
    with pytest.raises(ConfigError, match="schema.*99"):
        TrainConfig.from_dict({"schema": 99})
    with pytest.raises(TypeError):
        TrainConfig.from_dict([("epochs", 3)])  # type: ignore[arg-type]
    assert TrainConfig.from_dict({"epochs": 3}) == TrainConfig(epochs=3)


# -- round trips and ids ------------------------------------------------------------------------------


def _initializers() -> st.SearchStrategy[InitializerSpec]:
    def with_params(name: str) -> st.SearchStrategy[InitializerSpec]:
        known = INITIALIZERS[name]
        if name in ("random_normal", "truncated_normal"):
            return st.builds(lambda s: InitializerSpec(name, (("stddev", s),)), st.floats(1e-4, 2.0, allow_nan=False))
        if name == "constant":
            return st.builds(lambda v: InitializerSpec(name, (("value", v),)), st.floats(-3, 3, allow_nan=False))
        assert name == "random_uniform" or not known or name == "orthogonal"
        return st.just(InitializerSpec(name))

    return st.sampled_from(sorted(INITIALIZERS)).flatmap(with_params)


configs = st.builds(
    TrainConfig,
    hidden_units=st.lists(st.integers(1, 512), min_size=1, max_size=3).map(tuple),
    activation=st.sampled_from(ACTIVATIONS),
    kernel_initializer=_initializers(),
    bias_initializer=_initializers(),
    optimizer=st.builds(
        OptimizerSpec, st.sampled_from(sorted(OPTIMIZERS)), st.one_of(st.none(), st.floats(1e-5, 1.0, allow_nan=False))
    ),
    loss=st.sampled_from(LOSSES),
    batch_size=st.integers(1, 4096),
    epochs=st.integers(1, 1000),
    shuffle=st.booleans(),
    seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    xla=st.booleans(),
    n_points=st.integers(2, 100_000),
    x_min=st.floats(-100, 0, allow_nan=False),
    x_max=st.floats(0.5, 100, allow_nan=False),
    noise_std=st.floats(0, 1, allow_nan=False),
    noise_seed=st.integers(0, 2**32 - 1),
)


@given(configs)
def test_dict_and_json_round_trip(cfg: TrainConfig) -> None:
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_json(cfg.to_json()).config_id == cfg.config_id
    json.loads(cfg.to_json())  # plain JSON, no NaN or objects


@given(configs, configs)
def test_id_equal_iff_config_equal(a: TrainConfig, b: TrainConfig) -> None:
    assert (a.config_id == b.config_id) == (a == b)


def test_id_is_stable_across_processes_and_versions() -> None:
    # Pinned on purpose: ids name baselines and report rows; a change here must be a deliberate schema bump.
    assert TrainConfig().config_id == "4cf6b39bb0c8"
    assert len(TrainConfig().config_id) == 12


def test_id_changes_with_every_field() -> None:
    base = TrainConfig()
    changed = {
        "hidden_units": (64,),
        "activation": "tanh",
        "kernel_initializer": InitializerSpec("he_normal"),
        "bias_initializer": InitializerSpec("ones"),
        "optimizer": OptimizerSpec("sgd"),
        "loss": "mae",
        "batch_size": 64,
        "epochs": 5,
        "shuffle": False,
        "seed": 1,
        "xla": True,
        "n_points": 500,
        "x_min": -1.0,
        "x_max": 12.0,
        "noise_std": 0.1,
        "noise_seed": 3,
        "model": "m:f",
        "data": "d:g",
        "lr_scale": 2.0,
    }
    assert set(changed) == set(field_names())
    ids = {base.replace(**{k: v}).config_id for k, v in changed.items()}
    assert len(ids) == len(changed) and base.config_id not in ids


# -- presets: the three reference experiments ----------------------------------------------------------


def test_keras_default_preset() -> None:
    (cfg,) = get_preset("keras-default").configs
    assert cfg.hidden_units == (128,) and cfg.activation == "relu"
    assert cfg.kernel_initializer == InitializerSpec("glorot_uniform")
    assert cfg.bias_initializer == InitializerSpec("zeros")
    assert cfg.optimizer == OptimizerSpec("adam") and cfg.optimizer.learning_rate == 0.001
    assert not cfg.optimizer.params  # Adam() defaults
    assert (cfg.loss, cfg.epochs, cfg.batch_size, cfg.shuffle) == ("mse", 100, 32, True)
    assert (cfg.x_min, cfg.x_max, cfg.n_points, cfg.noise_std) == (0.0, 10.0, 1000, 0.0)


def test_tf_explicit_preset() -> None:
    (cfg,) = get_preset("tf-explicit").configs
    assert cfg.kernel_initializer == InitializerSpec("truncated_normal", (("stddev", 0.02),))
    assert cfg.optimizer == OptimizerSpec("adam", 0.01)
    assert (
        cfg.replace(kernel_initializer=InitializerSpec("glorot_uniform"), optimizer=OptimizerSpec("adam"))
        == get_preset("keras-default").configs[0]
    )


def test_batch_sweep_preset() -> None:
    preset = get_preset("batch-sweep")
    assert [c.batch_size for c in preset.configs] == [32, 64, 128]
    for cfg in preset.configs:
        assert cfg.hidden_units == (32,)
        assert cfg.kernel_initializer == InitializerSpec("glorot_uniform")
        assert cfg.optimizer == OptimizerSpec("adam", 0.01)
        assert cfg.epochs == 100 and cfg.seed == 0
    assert len({c.config_id for c in preset.configs}) == 3


def test_unknown_preset_lists_known() -> None:
    with pytest.raises(ConfigError, match="keras-default, tf-explicit, batch-sweep"):
        get_preset("keras")


def test_preset_overrides_merge_equal_configs() -> None:
    merged = get_preset("batch-sweep").with_overrides(batch_size=16, epochs=None)
    assert [c.batch_size for c in merged.configs] == [16] and merged.labels == ("batch 16",)
    assert set(PRESETS) == {"keras-default", "tf-explicit", "batch-sweep"}


def test_spec_fields_round_trip_and_leave_builtin_ids_alone() -> None:
    """A model/data spec is part of the config (and its id); built-in configs serialise exactly as before."""
    plain = TrainConfig()
    assert "model" not in plain.to_dict() and "data" not in plain.to_dict()
    custom = TrainConfig(model="examples/models.py:lstm_sine", data="pkg.data:windows")
    assert custom.custom and not plain.custom
    assert TrainConfig.from_json(custom.to_json()) == custom
    assert custom.config_id != plain.config_id
    assert "model examples/models.py:lstm_sine data pkg.data:windows" in custom.describe()


def test_lr_scale_round_trips_and_leaves_other_ids_alone() -> None:
    """``lr_scale`` (the matrix's lr factor: twice the model's own rate) is serialised only where it is set."""
    plain = TrainConfig()
    assert "lr_scale" not in plain.to_dict()
    doubled = plain.replace(lr_scale=2)
    assert doubled.lr_scale == 2.0 and doubled.to_dict()["lr_scale"] == 2.0
    assert TrainConfig.from_json(doubled.to_json()) == doubled and doubled.config_id != plain.config_id
    assert doubled.effective_optimizer.rate == 2 * plain.optimizer.rate and "lr×2" in doubled.describe()
    spec = TrainConfig(model="m:f")
    assert "adam" not in spec.describe() and "loss=" not in spec.describe()  # the factory may compile its own
    assert "adam(lr=0.05)" in spec.replace(optimizer=OptimizerSpec("adam", 0.05)).describe()
