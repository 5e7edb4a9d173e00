"""The batch sweep trains every batch size on a fresh model — and the check for that can fail."""

from __future__ import annotations

import numpy as np
import pytest

from sinecheck.core.compare import compare
from sinecheck.core.presets import get_preset
from sinecheck.core.result import Metrics, RunResult, Timings
from sinecheck.study.reference import check_fresh_starts, run_reference

pytest.importorskip("tensorflow")


def test_reference_sweep_uses_fresh_models(sinecheck_epochs: int) -> None:
    runs = [e.runs[0] for e in run_reference(presets=["batch-sweep"], seeds=[0], epochs=sinecheck_epochs)]
    assert [r.config.batch_size for r in runs] == [32, 64, 128]
    assert check_fresh_starts(runs) == []
    assert len({r.digests["initial_weights"] for r in runs}) == 1  # same seed → same fresh start
    assert len({r.digests["final_weights"] for r in runs}) == 3  # batch size changed the training


def test_each_sweep_member_equals_a_standalone_run(sinecheck_train) -> None:
    """Batch 128 inside the sweep equals batch 128 trained alone: nothing leaks from earlier members."""
    preset = get_preset("batch-sweep").with_overrides(epochs=1)
    in_sweep = [e.runs[0] for e in run_reference(presets=["batch-sweep"], seeds=[0], epochs=1)][-1]
    alone = sinecheck_train(preset.configs[-1])
    assert compare(in_sweep, alone).identical, compare(in_sweep, alone).report()


def _naive_sweep(epochs: int) -> list[RunResult]:
    """The classic mistake: one model, re-compiled and fitted again for each batch size."""
    from sinecheck.core.data import make_data
    from sinecheck.engines.common import reset_keras_state
    from sinecheck.keras.models import build_model, compile_model, weight_names
    from sinecheck.keras.seeding import seed_everything

    configs = get_preset("batch-sweep").with_overrides(epochs=epochs).configs
    reset_keras_state()
    seed_everything(0)
    model = build_model(configs[0])
    data = make_data(configs[0])
    runs = []
    for cfg in configs:
        compile_model(model, cfg)
        before = dict(zip(weight_names(cfg), map(np.array, model.get_weights()), strict=True))
        model.fit(data.x_train, data.y_train, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0)
        after = dict(zip(weight_names(cfg), map(np.array, model.get_weights()), strict=True))
        pred = np.asarray(model(data.x_train), dtype=np.float32)
        runs.append(
            RunResult(
                config=cfg,
                engine="naive",
                initial_weights=before,
                final_weights=after,
                pred_train=pred,
                pred_test=pred,
                loss_history=np.zeros(1, np.float32),
                metrics=Metrics(0.0, 0.0, 0.0, 0.0, None),
                diverged=False,
                diverged_epoch=None,
                timings=Timings(total_s=0.0, setup_s=0.0, fit_s=0.0, first_epoch_s=0.0, epoch_ms_median=0.0),
                fingerprint={},
            )
        )
    return runs


def test_naive_sweep_is_caught() -> None:
    """Negative control: the check must flag a sweep that keeps training one model."""
    problems = check_fresh_starts(_naive_sweep(epochs=1))
    assert any("batch 64 started from the final weights of batch 32" in p for p in problems), problems
    assert any("batch 128 started from the final weights of batch 64" in p for p in problems), problems
    assert any("other initial weights" in p for p in problems), problems
