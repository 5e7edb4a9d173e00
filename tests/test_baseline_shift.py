"""Golden baselines (issue 16): a consistent shift of every seed is material even inside the seed band (paired
per-seed differences), the failure heading names the grades that failed, a baseline whose JSON digests disagree
with its arrays is corrupt, and a machine whose CPU class has no baseline skips with the record command.

No training here: entries are built in memory, or the committed baselines are read; the environment's
fingerprint is faked by replacing the probe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sinecheck.checks import baseline as bl
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import Metrics, digest_tensors
from sinecheck.pytest_plugin.baseline import BaselineSession
from sinecheck.pytest_plugin.settings import BaselineMode

COMMITTED = Path(__file__).parent / "baselines"
HERE = bl.EnvKey("2.21.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")
OLDER = bl.EnvKey("2.20.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")
CONFIG = TrainConfig(hidden_units=(4,), n_points=40, batch_size=8, epochs=100)


def _entry(seed: int, mse: float, *, run: int = 0) -> bl.Entry:
    """One synthetic 100-epoch entry: its weights drawn from (seed, run) — another `run` is a divergent one."""
    rng = np.random.default_rng([seed, 99])
    initial = {"w": rng.standard_normal(8).astype(np.float32)}
    final = {"w": np.random.default_rng([seed, run]).standard_normal(8).astype(np.float32)}
    pred = np.random.default_rng([seed, run, 1]).standard_normal(5).astype(np.float32)
    arrays = {"initial/w": initial["w"], "final/w": final["w"], "pred/test": pred}
    digests = {
        "initial_weights": digest_tensors(initial),
        "final_weights": digest_tensors(final),
        "predictions": digest_tensors({"test": pred}),
    }
    return bl.Entry(CONFIG.replace(seed=seed), digests, Metrics(mse, 1.0, mse, 1.0, mse), False, arrays)


OLD_MSE = (0.20, 0.30, 0.40)  # std 0.1 over the seeds: band 2 × 0.1 = 0.2, shift margin 0.5 × band = 0.1


def _check(old: tuple[float, ...], new: list[float]) -> bl.CheckResult:
    """Synthetic baseline entries of one group (seed i has held-out MSE ``old[i]``) against divergent reruns."""
    names = [f"g/100ep/seed{s}" for s in range(len(old))]
    baseline = bl.Baseline(OLDER, {n: _entry(s, m) for s, (n, m) in enumerate(zip(names, old, strict=True))}, {}, "")
    current = {n: _entry(s, m, run=1) for s, (n, m) in enumerate(zip(names, new, strict=True))}
    return bl.check_against(current, baseline, bl.Relation.OLDER_VERSION)


def _grade(old: tuple[float, ...], new: list[float]) -> dict[str, str]:
    return {d.name.rsplit("/", 1)[1]: d.grade.value for d in _check(old, new).drifts}


def _shifted(old: tuple[float, ...], shifts: tuple[float, ...]) -> list[float]:
    return [m + d for m, d in zip(old, shifts, strict=True)]


def test_a_consistent_shift_inside_the_band_is_material() -> None:
    """Divergent weights, every seed's held-out MSE up by 0.15 — inside the band of 0.2, so each entry alone is
    "divergent" (what passed before) — but all three moved the same way by more than one seed std (0.1)."""
    assert bl.noise_bands(bl.Baseline(OLDER, {f"g/seed{s}": _entry(s, m) for s, m in enumerate(OLD_MSE)}, {}, "")) == {
        "g": pytest.approx(0.2)
    }
    grades = _grade(OLD_MSE, [m + 0.15 for m in OLD_MSE])
    assert set(grades.values()) == {"material"}
    down = _grade(OLD_MSE, [m - 0.15 for m in OLD_MSE])  # either direction
    assert set(down.values()) == {"material"}


@pytest.mark.parametrize(
    ("shifts", "expected"),
    [
        ((+0.100001, +0.15, +0.12), "material"),  # the smallest shift just beyond the margin (0.1)
        ((+0.099999, +0.15, +0.12), "divergent"),  # just inside it: one seed barely moved
        ((+0.15, -0.15, +0.15), "divergent"),  # mixed signs: what re-drawing chaotic runs looks like
        ((+0.05, +0.05, +0.05), "divergent"),  # the same way but small (half a seed std)
    ],
)
def test_the_shift_boundary(shifts: tuple[float, ...], expected: str) -> None:
    result = _check(OLD_MSE, _shifted(OLD_MSE, shifts))
    assert {d.grade.value for d in result.drifts} == {expected}
    assert bool(bl.failures([result], "material")) is (expected == "material")


def test_one_seed_beyond_the_band_is_material_alone() -> None:
    grades = _grade(OLD_MSE, [OLD_MSE[0] + 0.25, OLD_MSE[1] - 0.01, OLD_MSE[2] + 0.01])
    assert grades == {"seed0": "material", "seed1": "divergent", "seed2": "divergent"}


def test_with_six_seeds_a_paired_test_catches_a_shift_that_spares_no_seed_the_margin() -> None:
    """Six seeds: each moved the same way but by less than one seed std — the exact sign-flip test (p = 2/64)
    and a mean shift beyond 10 % of the mean error decide; one seed the other way, p = 4/64 > 0.05: not."""
    old = OLD_MSE * 2
    assert bl.sign_flip_p([1.0, 2.0, 3.0]) == 0.25  # 3 seeds can never reach 0.05: the consistency rule does
    assert bl.sign_flip_p([0.05, 0.03, 0.06, 0.04, 0.05, 0.02]) == pytest.approx(2 / 64)
    assert set(_grade(old, _shifted(old, (0.05, 0.03, 0.06, 0.04, 0.05, 0.02))).values()) == {"material"}
    mixed = (0.06, 0.05, 0.06, -0.01, 0.05, 0.02)
    assert bl.sign_flip_p(mixed) == pytest.approx(4 / 64)
    assert set(_grade(old, _shifted(old, mixed)).values()) == {"divergent"}


def test_the_heading_names_the_grades_that_failed() -> None:
    baseline = bl.Baseline(OLDER, {}, {}, "")
    drifts = [
        bl.Drift("a", bl.Grade.MATERIAL, 0.1, 9, 0.3, 0.2),
        bl.Drift("b", bl.Grade.CLOSE, 1e-6, 200, 0.0, 0.2),
        bl.Drift("c", bl.Grade.CLOSE, 1e-6, 300, 0.0, 0.2),
        bl.Drift("d", bl.Grade.ULP, 1e-8, 3, 0.0, 0.2),
        bl.Drift("e", bl.Grade.IDENTICAL, 0.0, 0, 0.0, 0.2),
    ]
    result = bl.CheckResult(baseline, bl.Relation.OLDER_VERSION, drifts)
    ((_, bad),) = bl.failures([result], "ulp")
    assert result.heading(bad, "ulp", option="--sinecheck-strict") == (
        "FAILED: 1 material, 2 close beyond --sinecheck-strict=ulp"
    )
    session = BaselineSession(
        SimpleNamespace(baseline=BaselineMode.CHECK, baseline_dir=Path("b"), strict=bl.Strictness.ULP),  # type: ignore[arg-type]
        [],
    )
    text = session._failure(bl.failures([result], "ulp"), HERE, "", None)
    assert text.splitlines()[0] == "FAILED: 1 material, 2 close beyond --sinecheck-strict=ulp"
    same = bl.CheckResult(baseline, bl.Relation.SAME_ENVIRONMENT, drifts[1:])
    ((_, bad),) = bl.failures([same], "material")
    assert same.heading(bad, "material") == (
        "FAILED: 2 close, 1 ulp where the same environment must be bitwise identical"
    )


# -- the committed baselines, read (not trained) -------------------------------------------------------------


def _fingerprint(isa: str) -> dict[str, Any]:
    return {
        "tensorflow": HERE.tensorflow,
        "keras": "3.15.1",
        "keras_impl": "keras",
        "keras_backend": "tensorflow",
        "onednn": True,
        "isa": isa,
        "platform": HERE.platform,
    }


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although nothing could be checked")

    monkeypatch.setattr(bl, "run_baseline_set", refuse)


def test_another_cpu_class_skips_with_the_record_command(
    monkeypatch: pytest.MonkeyPatch, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same TF/Keras on an avx2 machine: the committed avx512 baselines are of another class — the golden test is
    skipped with the command that records this machine's baseline (it used to train 30 configs to a vacuous
    pass), and the CLI says the same without training."""
    from sinecheck.cli import main

    monkeypatch.setattr(bl, "probed_fingerprint", lambda **kw: _fingerprint("avx2"))
    lines: list[str] = []
    session = BaselineSession(
        SimpleNamespace(baseline=BaselineMode.CHECK, baseline_dir=COMMITTED, strict=bl.Strictness.MATERIAL),  # type: ignore[arg-type]
        lines,
    )
    with pytest.raises(pytest.skip.Exception) as info:
        session.verify()
    message = str(info.value)
    assert "avx2" in message and "another CPU class" in message and HERE.slug in message
    assert f"record one with: pytest --sinecheck-baseline=record --sinecheck-baseline-dir={COMMITTED}" in message
    assert lines == [message]
    assert main(["baseline", "check", "--dir", str(COMMITTED)]) == 1
    out = capsys.readouterr().out
    assert "another CPU class" in out and "sinecheck baseline record --dir" in out


def _corrupt_copy(tmp_path: Path) -> Path:
    """This environment's committed baseline copied to `tmp_path`, one digest of its JSON edited."""
    for suffix in (".json", ".npz"):
        shutil.copy(COMMITTED / f"{HERE.slug}{suffix}", tmp_path / f"{HERE.slug}{suffix}")
    path = tmp_path / f"{HERE.slug}.json"
    data = json.loads(path.read_text())
    digests = data["entries"]["batch-sweep/batch64/100ep/seed1"]["digests"]
    digests["final_weights"] = digests["final_weights"][:-4] + "0000"
    path.write_text(json.dumps(data, indent=1))
    return path


def test_a_digest_that_disagrees_with_the_arrays_is_a_corrupt_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from sinecheck.cli import main

    assert bl.load_baseline(COMMITTED / f"{HERE.slug}.json").entries  # the committed file is consistent
    path = _corrupt_copy(tmp_path)
    with pytest.raises(bl.BaselineError) as info:
        bl.load_baseline(path)
    message = str(info.value)
    assert str(path) in message and "corrupt baseline" in message and "batch-sweep/batch64/100ep/seed1" in message
    assert "final_weights" in message and "--force" in message and "--sinecheck-baseline=update" in message
    assert "\n" not in message
    monkeypatch.setattr(bl, "probed_fingerprint", lambda **kw: _fingerprint("avx512"))
    assert main(["baseline", "check", "--dir", str(tmp_path)]) == 2  # before anything trains
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and path.name in err and "regenerate" in err
    session = BaselineSession(
        SimpleNamespace(baseline=BaselineMode.CHECK, baseline_dir=tmp_path, strict=bl.Strictness.MATERIAL),  # type: ignore[arg-type]
        [],
    )
    with pytest.raises(pytest.fail.Exception, match="corrupt baseline") as failed:
        session.verify()
    assert failed.value.__context__ is None  # raised outside the except block: pytest shows the message once


def test_a_predictions_digest_is_cross_checked_where_every_prediction_is_stored(tmp_path: Path) -> None:
    """Compact preset entries store only the held-out predictions, so their predictions digest (which covers the
    training grid too) is checked at grading; an entry that stores every prediction array (a model with several
    outputs: ``pred/train/<output>``) is cross-checked on load like the weights."""
    entry = _entry(0, 0.2)
    train = np.arange(3, dtype=np.float32)
    test = entry.arrays.pop("pred/test")
    entry.arrays.update({"pred/train/out": train, "pred/test/out": test})
    entry.digests["predictions"] = digest_tensors({"train/out": train, "test/out": test})
    path, _ = bl.record(bl.Baseline(HERE, {"g/100ep/seed0": entry}, {}, ""), tmp_path)
    assert bl.load_baseline(path).entries["g/100ep/seed0"].digests == entry.digests
    data = json.loads(path.read_text())
    data["entries"]["g/100ep/seed0"]["digests"]["predictions"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(bl.BaselineError, match=r"corrupt baseline .* predictions digest 000000000000"):
        bl.load_baseline(path)
    assert bl.load_baseline(path, with_arrays=False).entries  # metadata alone cannot be cross-checked
