"""The fused engine: Keras fit's training in one graph, bit for bit — and it refuses what it cannot match."""

from __future__ import annotations

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from sinecheck.compare import compare
from sinecheck.config import InitializerSpec, OptimizerSpec, TrainConfig, get_preset

pytest.importorskip("tensorflow")
from sinecheck.engines import train
from sinecheck.engines.fused import EngineUnsupported, check_supported

CASES = [("keras-default", 0), ("tf-explicit", 0), ("batch-sweep", 1)]


@pytest.mark.parametrize("shuffle", [False, True], ids=["no-shuffle", "shuffle"])
@pytest.mark.parametrize(("preset", "index"), CASES, ids=[c[0] for c in CASES])
def test_fused_equals_fit_bitwise(preset: str, index: int, shuffle: bool, sinecheck_epochs: int) -> None:
    cfg = get_preset(preset).configs[index].replace(epochs=sinecheck_epochs, shuffle=shuffle)
    reference, fused = train(cfg, engine="keras"), train(cfg, engine="fused")
    result = compare(reference, fused)
    assert result.identical, result.report()  # weights, predictions and the logged loss of every epoch
    assert fused.engine == "fused"


def test_fused_stops_like_terminate_on_nan() -> None:
    cfg = TrainConfig(hidden_units=(8,), n_points=64, epochs=4, optimizer=OptimizerSpec("sgd", 1e6))
    reference, fused = train(cfg, engine="keras"), train(cfg, engine="fused")
    assert reference.diverged and fused.diverged
    assert fused.diverged_epoch == reference.diverged_epoch
    assert compare(reference, fused).identical, compare(reference, fused).report()


@settings(max_examples=5)
@given(hidden=st.lists(st.integers(1, 16), min_size=1, max_size=2), n_points=st.integers(8, 96),
       batch_size=st.integers(1, 64), shuffle=st.booleans(), seed=st.integers(0, 2**32 - 1),
       optimizer=st.sampled_from(["adam", "sgd", "rmsprop"]), lr=st.sampled_from([1e-3, 1e-2, 5e-2]),
       init=st.sampled_from(["glorot_uniform", "he_normal", "truncated_normal(stddev=0.02)"]),
       activation=st.sampled_from(["relu", "tanh"]))
def test_fused_equals_fit_on_random_configs(hidden: list[int], n_points: int, batch_size: int, shuffle: bool,
                                            seed: int, optimizer: str, lr: float, init: str, activation: str) -> None:
    cfg = TrainConfig(hidden_units=tuple(hidden), n_points=n_points, batch_size=batch_size, shuffle=shuffle,
                      seed=seed, optimizer=OptimizerSpec(optimizer, lr), epochs=2, activation=activation,
                      kernel_initializer=InitializerSpec.parse(init))
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


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="engine: invalid value 'turbo'; allowed: keras, fused"):
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
    assert "--engine: invalid value 'turbo'; allowed: keras, fused" in err and len(err.strip().splitlines()) == 1
