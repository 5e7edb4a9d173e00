"""The Keras engine: results, reproducibility in one process, negative controls, divergence, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from sinecheck.core.compare import Verdict, compare
from sinecheck.core.config import OptimizerSpec, TrainConfig
from sinecheck.core.presets import get_preset
from sinecheck.core.result import RunResult

pytest.importorskip("tensorflow")

SMALL = TrainConfig(hidden_units=(16,), n_points=200, batch_size=32)


@pytest.fixture(scope="module")
def default_pair(sinecheck_epochs: int) -> tuple[RunResult, RunResult]:
    """keras-default trained twice in this process with the same seed (short runs)."""
    from sinecheck.engines.registry import train

    cfg = get_preset("keras-default").configs[0].replace(epochs=sinecheck_epochs)
    return train(cfg), train(cfg)


def test_result_contents(default_pair: tuple[RunResult, RunResult], sinecheck_epochs: int) -> None:
    r = default_pair[0]
    assert r.engine == "keras"
    assert list(r.initial_weights) == ["layer0/kernel", "layer0/bias", "layer1/kernel", "layer1/bias"]
    assert r.initial_weights["layer0/kernel"].shape == (1, 128)
    assert r.final_weights["layer1/kernel"].shape == (128, 1)
    assert all(w.dtype == np.float32 for w in r.final_weights.values())
    assert r.pred_train.shape == (1000, 1) and r.pred_test.shape == (2997, 1)
    assert r.loss_history.shape == (sinecheck_epochs,) and r.epochs_run == sinecheck_epochs
    assert not r.diverged and r.diverged_epoch is None
    assert np.all(r.initial_weights["layer0/bias"] == 0)  # zeros bias initializer
    assert not np.array_equal(r.initial_weights["layer0/kernel"], r.final_weights["layer0/kernel"])  # it trained
    for name, value in r.metrics.items():
        assert value is not None and np.isfinite(value), name
    assert r.metrics.max_err_test**2 >= r.metrics.mse_test
    assert set(r.digests) == {"initial_weights", "final_weights", "predictions"}
    assert all(len(d) == 64 for d in r.digests.values())
    assert r.timings.fit_s > 0 and r.timings.epoch_ms_median > 0 and r.timings.trace_s is None
    assert r.fingerprint["tensorflow"] and r.fingerprint["op_determinism"] is not None


def test_metrics_match_an_independent_computation(default_pair: tuple[RunResult, RunResult]) -> None:
    r = default_pair[0]
    x = np.linspace(0, 10, 1000)
    expected = np.mean((r.pred_train[:, 0].astype(np.float64) - np.sin(x)) ** 2)
    assert r.metrics.mse_train == pytest.approx(expected, rel=1e-12)


def test_loss_history_is_the_training_mse(default_pair: tuple[RunResult, RunResult]) -> None:
    r = default_pair[0]
    # The last epoch's logged loss is the mean over its batches while weights moved; it must be near the
    # final-weights MSE on the same (noise-free) targets, not equal.
    assert r.metrics.final_loss == pytest.approx(r.metrics.mse_train, rel=0.2)


def test_same_seed_same_process_is_identical(default_pair: tuple[RunResult, RunResult]) -> None:
    a, b = default_pair
    result = compare(a, b)
    assert result.verdict is Verdict.IDENTICAL, result.report()
    assert a.digests == b.digests


def test_different_seeds_are_not_identical(sinecheck_train, sinecheck_epochs: int) -> None:
    """Negative control: if two seeds gave the same bits, seeding (or the detector) would be broken."""
    a = sinecheck_train(SMALL.replace(epochs=sinecheck_epochs, seed=0))
    b = sinecheck_train(SMALL.replace(epochs=sinecheck_epochs, seed=1))
    result = compare(a, b)
    assert result.verdict is Verdict.DIVERGENT, result.report()
    assert a.digests["initial_weights"] != b.digests["initial_weights"]


def test_unseeded_runs_differ(sinecheck_train) -> None:
    """Negative control: seed=None leaves the initial weights to chance."""
    a = sinecheck_train(SMALL.replace(epochs=1, seed=None))
    b = sinecheck_train(SMALL.replace(epochs=1, seed=None))
    assert compare(a, b, names=["initial/layer0/kernel"]).verdict is Verdict.DIVERGENT


def test_unshuffled_seeded_run_reproduces(sinecheck_train) -> None:
    cfg = SMALL.replace(epochs=2, shuffle=False, seed=7)
    assert compare(sinecheck_train(cfg), sinecheck_train(cfg)).identical


def test_seed_is_the_only_source_of_initial_weights(sinecheck_train) -> None:
    """Changing only training knobs (lr, batch size) keeps the seeded initial weights bit for bit."""
    a = sinecheck_train(SMALL.replace(epochs=1))
    b = sinecheck_train(SMALL.replace(epochs=1, batch_size=64, optimizer=OptimizerSpec("adam", 0.01)))
    assert a.digests["initial_weights"] == b.digests["initial_weights"]
    assert a.digests["final_weights"] != b.digests["final_weights"]


def test_truncated_normal_initial_weights_have_the_configured_spread(sinecheck_train) -> None:
    r = sinecheck_train(get_preset("tf-explicit").configs[0].replace(epochs=1))
    kernel = r.initial_weights["layer1/kernel"]  # the output layer gets the same initializer
    assert np.abs(kernel).max() <= 2 * 0.02 + 1e-7  # truncated at two standard deviations
    assert 0.6 * 0.02 < kernel.std() < 1.1 * 0.02


def test_diverging_run_is_a_result_not_a_crash(sinecheck_train) -> None:
    cfg = SMALL.replace(epochs=5, optimizer=OptimizerSpec("sgd", 1e6))
    r = sinecheck_train(cfg)
    assert r.diverged
    assert r.diverged_epoch is not None and 1 <= r.diverged_epoch <= 5
    assert r.epochs_run == r.diverged_epoch  # TerminateOnNaN stopped it there
    assert not np.isfinite(r.loss_history[-1])
    assert r.to_dict()["final_loss"] in ("nan", "inf")


def test_save_load_round_trip(default_pair: tuple[RunResult, RunResult], tmp_path) -> None:
    r = default_pair[0]
    json_path, npz_path = r.save(tmp_path / "run")
    assert json_path.exists() and npz_path.exists()
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind
    back = RunResult.load(json_path)
    assert back.config == r.config and back.digests == r.digests
    assert compare(back, r).identical
    assert back.metrics == r.metrics and back.timings == r.timings and back.diverged == r.diverged


def test_load_rejects_foreign_schema(default_pair: tuple[RunResult, RunResult], tmp_path) -> None:
    json_path, _ = default_pair[0].save(tmp_path / "run")
    json_path.write_text(json_path.read_text().replace('"schema": 1', '"schema": 7'))
    with pytest.raises(ValueError, match="schema 7.*regenerate"):
        RunResult.load(json_path)


def test_digest_detects_a_single_flipped_bit(default_pair: tuple[RunResult, RunResult]) -> None:
    from sinecheck.core.result import digest_tensors

    weights = {k: v.copy() for k, v in default_pair[0].final_weights.items()}
    assert digest_tensors(weights) == default_pair[0].digests["final_weights"]
    flat = weights["layer0/kernel"].view(np.uint32).reshape(-1)
    flat[5] ^= 1  # one bit of one weight
    assert digest_tensors(weights) != default_pair[0].digests["final_weights"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["keras-default"])  # every preset at 100 epochs: test_golden_baselines.py
def test_full_length_reference_run_reproduces_in_process(sinecheck_train, preset: str) -> None:
    """The whole 100-epoch reference run, twice: bitwise identical, and it really learned something."""
    cfg = get_preset(preset).configs[0]
    a, b = sinecheck_train(cfg), sinecheck_train(cfg)
    assert compare(a, b).identical, compare(a, b).report()
    assert a.epochs_run == 100 and not a.diverged
    assert a.loss_history[-1] < a.loss_history[0]
