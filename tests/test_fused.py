"""The fast engines against Keras fit: fused bit for bit, fused-xla and NumPy within measured rounding; each
refuses what it cannot match."""

from __future__ import annotations

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from sinecheck.core.compare import Tolerance, Verdict, compare
from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.presets import get_preset

pytest.importorskip("tensorflow")
from sinecheck.engines.fused import EngineUnsupported, check_supported
from sinecheck.engines.registry import train

CASES = [("keras-default", 0), ("tf-explicit", 0), ("batch-sweep", 1)]


@pytest.mark.parametrize("shuffle", [False, True], ids=["no-shuffle", "shuffle"])
@pytest.mark.parametrize(("preset", "index"), CASES, ids=[c[0] for c in CASES])
def test_fused_equals_fit_bitwise(preset: str, index: int, shuffle: bool, sinecheck_epochs: int) -> None:
    cfg = get_preset(preset).configs[index].replace(epochs=sinecheck_epochs, shuffle=shuffle)
    reference, fused = train(cfg, engine="keras"), train(cfg, engine="fused")
    result = compare(reference, fused)
    assert result.identical, result.report()  # weights, predictions and the logged loss of every epoch
    assert fused.engine == "fused"


@pytest.mark.parametrize("n_points", [64, 400], ids=["2-steps", "mid-block"])
def test_fused_stops_like_terminate_on_nan(n_points: int) -> None:
    """The run diverges within an unrolled block: the engine replays it and stops at the very batch."""
    cfg = TrainConfig(hidden_units=(8,), n_points=n_points, epochs=4, optimizer=OptimizerSpec("sgd", 1e6))
    reference, fused = train(cfg, engine="keras"), train(cfg, engine="fused")
    assert reference.diverged and fused.diverged
    assert fused.diverged_epoch == reference.diverged_epoch
    assert compare(reference, fused).identical, compare(reference, fused).report()


def test_fused_reuses_its_program_across_seeds_and_rates() -> None:
    """One traced loop serves every run of a graph shape; values (seed, rate, data) do not leak between runs."""
    base = get_preset("tf-explicit").configs[0].replace(epochs=2)
    runs = [base.replace(seed=1), base.replace(seed=2, optimizer=OptimizerSpec("adam", 0.002)), base.replace(seed=1)]
    from sinecheck.engines.fused import GraphKey, fused_program

    fused = [train(runs[0], engine="fused")]
    program = fused_program(GraphKey.of(base, jit_compile=False))
    traces = program.run.experimental_get_tracing_count()
    assert traces >= 1
    fused += [train(cfg, engine="fused") for cfg in runs[1:]]
    assert fused_program(GraphKey.of(runs[1], jit_compile=False)) is program  # one program for every run
    assert program.run.experimental_get_tracing_count() == traces  # never re-traced (its timing: benchmarks)
    for cfg, result in zip(runs[:2], fused, strict=False):
        assert compare(train(cfg, engine="keras"), result).identical
    assert compare(fused[0], fused[2]).identical


OPTIMIZERS = st.sampled_from(
    [
        OptimizerSpec("adam"),
        OptimizerSpec("adam", 0.02, (("amsgrad", True),)),
        OptimizerSpec("sgd", 0.05),
        OptimizerSpec("sgd", 0.01, (("momentum", 0.9),)),
        OptimizerSpec("sgd", 0.01, (("momentum", 0.5), ("nesterov", True))),
        OptimizerSpec("rmsprop", 0.01),
        OptimizerSpec("rmsprop", 0.005, (("momentum", 0.9), ("centered", True))),
        OptimizerSpec("adagrad", 0.05),
    ]
)


@settings(max_examples=5)  # optimizers: every variant in test_fused_optimizers.py (20 epochs, bitwise)
@given(
    hidden=st.lists(st.integers(1, 24), min_size=1, max_size=2),
    n_points=st.integers(8, 160),
    batch_size=st.integers(1, 64),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    optimizer=OPTIMIZERS,
    init=st.sampled_from(["glorot_uniform", "he_normal", "truncated_normal(stddev=0.02)"]),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "gelu"]),
    loss=st.sampled_from(["mse", "mae", "huber", "log_cosh"]),
)
def test_fused_equals_fit_on_random_configs(
    hidden: list[int],
    n_points: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    optimizer: OptimizerSpec,
    init: str,
    activation: str,
    loss: str,
) -> None:
    cfg = TrainConfig(
        hidden_units=tuple(hidden),
        n_points=n_points,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        optimizer=optimizer,
        epochs=2,
        activation=activation,
        loss=loss,
        kernel_initializer=InitializerSpec.parse(init),
    )
    note(cfg.to_json())
    result = compare(train(cfg, engine="keras"), train(cfg, engine="fused"))
    assert result.identical, result.report()


def test_fused_refuses_what_it_cannot_match(monkeypatch: pytest.MonkeyPatch) -> None:
    base = TrainConfig(epochs=1)
    with pytest.raises(EngineUnsupported, match="xla=True; allowed: xla=False"):
        train(base.replace(xla=True), engine="fused")
    with pytest.raises(EngineUnsupported, match="unseeded_noise"):
        train(base, engine="fused", unseeded_noise=0.1)
    monkeypatch.setattr("sinecheck.engines.fused.TESTED_KERAS", ("9.99",))
    with pytest.raises(EngineUnsupported, match="has not been shown to match fit.*9.99.x"):
        check_supported(base)
    monkeypatch.setenv("SINECHECK_FUSED_ALLOW_UNTESTED", "1")
    check_supported(base)
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    with pytest.raises(EngineUnsupported, match="tf_keras"):
        check_supported(base)


@pytest.mark.parametrize("engine", ["fused-xla", "numpy", "numpy-float64"])
@pytest.mark.parametrize("preset", ["keras-default", "tf-explicit"])
def test_rounding_engines_agree_with_fit(engine: str, preset: str, sinecheck_epochs: int) -> None:
    """XLA and NumPy sum in other orders, so they are not bitwise equal to fit — but never materially apart:
    every tensor within 1e-4 absolute and the held-out MSE within 1e-4 (measured after 100 epochs: weights
    within ~1e-6 for fused-xla and NumPy float32, ~1e-2 for float64 on tf-explicit; README)."""
    cfg = get_preset(preset).configs[0].replace(epochs=sinecheck_epochs)
    reference, other = train(cfg, engine="keras"), train(cfg, engine=engine)
    result = compare(reference, other, tolerance=Tolerance(max_ulp=16, rtol=0.0, atol=1e-4))
    assert result.verdict in (Verdict.ULP, Verdict.CLOSE), result.report()
    assert other.engine == engine
    assert abs(other.metrics.mse_test - reference.metrics.mse_test) < 1e-4


def test_numpy_engine_refuses_what_it_does_not_implement() -> None:
    with pytest.raises(EngineUnsupported, match="engine numpy: activation 'gelu'; allowed: relu, tanh"):
        train(TrainConfig(epochs=1, activation="gelu"), engine="numpy")
    with pytest.raises(EngineUnsupported, match="engine numpy-float64: loss 'huber'; allowed: mse, mae"):
        train(TrainConfig(epochs=1, loss="huber"), engine="numpy-float64")


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="engine: invalid value 'turbo'; allowed: keras, fused, fused-xla, numpy"):
        train(TrainConfig(epochs=1), engine="turbo")


def test_cli_runs_the_fused_engine(capsys: pytest.CaptureFixture[str]) -> None:
    from sinecheck.cli import main

    assert main(["run", "keras-default", "--epochs", "1", "--engine", "fused"]) == 0
    fused_out = capsys.readouterr().out
    assert main(["run", "keras-default", "--epochs", "1"]) == 0
    keras_out = capsys.readouterr().out
    digest_columns = slice(3, 7)  # after "keras-default batch 32": config id, initial, final, prediction digests
    assert fused_out.splitlines()[2].split()[digest_columns] == keras_out.splitlines()[2].split()[digest_columns]
    assert main(["run", "keras-default", "--engine", "turbo"]) == 2
    err = capsys.readouterr().err
    assert "--engine: invalid value 'turbo'; allowed: keras, fused, fused-xla" in err
    assert len(err.strip().splitlines()) == 1


def test_given_orders_are_validated_and_recorded() -> None:
    """An experiment on the sample order itself (the reused-permutation claim) passes its own orders."""
    import numpy as np

    from sinecheck.engines.fused import train_fused
    from sinecheck.errors import ConfigError

    cfg = TrainConfig(hidden_units=(4,), n_points=16, batch_size=4, epochs=2)
    with pytest.raises(ConfigError, match=r"orders: invalid value of shape \(1, 16\); allowed: 2 permutations"):
        train_fused(cfg, orders=np.zeros((1, 16)))
    with pytest.raises(ConfigError, match="permutations of range"):
        train_fused(cfg, orders=np.zeros((2, 16)))
    reversed_orders = np.tile(np.arange(16)[::-1], (2, 1))
    result = train_fused(cfg, orders=reversed_orders)
    assert result.options["sample_order"] == "given"
    assert not compare(result, train(cfg.replace(shuffle=False), engine="fused")).identical
