"""The model as the user compiled it is the truth (issue 14, defects 1, 2, 4, 5): a factory-compiled classifier's
real loss, optimizer and metrics are recorded and shown; ``--lr`` and ``xla`` reach it (re-compiled with the
factory's own arguments) or are refused; the matrix's compile factors verify their change arrived; a baseline
knows when the model itself changed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sinecheck.cli import main
from sinecheck.core.config import OptimizerSpec, TrainConfig

pytest_plugins = ["pytester"]

needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")

FACTORY = """
import numpy as np
import keras


def classifier():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def scheduled():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    rate = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="sparse_categorical_crossentropy")
    return model


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    return x[:192], y[:192], x[192:], y[192:]
"""


@pytest.fixture
def user(tmp_path: Path) -> Path:
    path = tmp_path / "user_models.py"
    path.write_text(FACTORY)
    return path


def _config(user: Path, factory: str = "classifier", **changes: object) -> TrainConfig:
    return TrainConfig(model=f"{user}:{factory}", data=f"{user}:data", epochs=3, batch_size=32, **changes)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    """``sinecheck ARGV`` in this process, which must exit with `status`: its stdout (its stderr for status 2)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == status, out + err
    return err if status == 2 else out


@needs_tensorflow
def test_defect1_lr_reaches_a_model_its_factory_compiled(user: Path) -> None:
    """``--lr`` on a factory-compiled model re-compiles it with the factory's loss and metrics and the new rate: the
    bits change and the optimizer reads back the rate (on main the digest stayed that of the factory's rate)."""
    from sinecheck.engines.registry import train

    own = train(_config(user))
    faster = train(_config(user, optimizer=OptimizerSpec("adam", 0.05)))
    assert faster.digests["final_weights"] != own.digests["final_weights"]
    assert faster.digests["initial_weights"] == own.digests["initial_weights"]
    assert faster.compile_record is not None and own.compile_record is not None
    assert faster.compile_record.learning_rate == pytest.approx(0.05)
    assert own.compile_record.learning_rate == pytest.approx(0.001)
    # only the rate changed: the factory's loss, metrics and optimizer class stay
    assert own.compile_record.changes(faster.compile_record) == ["Adam learning_rate 0.001 → 0.05"]
    assert faster.compile_record.metric_names() == ["accuracy"]
    doubled = train(_config(user, lr_scale=2.0))
    assert doubled.compile_record is not None and doubled.compile_record.learning_rate == pytest.approx(0.002)


@needs_tensorflow
def test_defect2_xla_reaches_a_model_its_factory_compiled(user: Path) -> None:
    """``xla`` on a factory-compiled model compiles its train step with XLA (on main ``jit_compile`` was only set
    when sinecheck compiled, so the run was bitwise the factory's)."""
    from sinecheck.engines.registry import train

    plain = train(_config(user))
    xla = train(_config(user, xla=True))
    assert xla.digests["final_weights"] != plain.digests["final_weights"]  # XLA's kernels round differently
    assert xla.compile_record is not None and xla.compile_record.jit_compile is True
    assert plain.compile_record is not None and plain.compile_record.jit_compile is False
    assert plain.compile_record.changes(xla.compile_record) == ["jit_compile False → True"]


@needs_tensorflow
def test_refusals_are_one_line_errors(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What cannot be applied to a compiled model is refused before training, never printed and ignored."""
    from sinecheck.engines.registry import train
    from sinecheck.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^loss: invalid value 'mae' .*sparse_categorical_crossentropy"):
        train(_config(user, loss="mae"))
    with pytest.raises(ConfigError, match=r"^optimizer: invalid value 'sgd' .*compiled it with Adam"):
        train(_config(user, optimizer=OptimizerSpec("sgd", 0.05)))
    with pytest.raises(ConfigError, match=r"^learning_rate: invalid value 0.05 .*ExponentialDecay"):
        train(_config(user, "scheduled", optimizer=OptimizerSpec("adam", 0.05)))
    err = run_cli(capsys, "run", "--model", f"{user}:scheduled", "--data", f"{user}:data", "--lr", "0.05", status=2)
    (line,) = [line for line in err.splitlines() if "error" in line]  # (besides the progress line)
    assert line.startswith("sinecheck run: error: learning_rate: invalid value 0.05") and "ExponentialDecay" in line
    assert "Traceback" not in err


@needs_tensorflow
def test_defect4_run_shows_the_compiled_loss_optimizer_and_metrics(
    user: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run table and JSON say what really trained: sparse categorical cross-entropy, Adam(0.05) after --lr,
    accuracy on the training and held-out data — not ``loss: mse``, ``hidden_units [128]`` (main's record)."""
    out_json = tmp_path / "run.json"
    spec = ["--model", f"{user}:classifier", "--data", f"{user}:data", "--epochs", "2", "--lr", "0.05"]
    out = run_cli(capsys, "run", *spec, "--json", str(out_json))
    (result,) = json.loads(out_json.read_text())
    compiled = result["compile"]
    assert compiled["loss"] == "sparse_categorical_crossentropy"
    assert compiled["metrics"] == ["accuracy"]
    assert compiled["optimizer"]["class"] == "Adam" and compiled["optimizer"]["learning_rate"] == pytest.approx(0.05)
    assert compiled["optimizer"]["config"]["learning_rate"] == pytest.approx(0.05)
    assert compiled["compiled_by"] == "factory" and compiled["jit_compile"] is False
    assert set(result["metrics"]["compiled"]["held_out"]) == {"loss", "accuracy"}
    assert set(result["metrics"]["compiled"]["train"]) == {"loss", "accuracy"}
    assert {"hidden_units", "n_points", "loss"} <= set(result["config_unused"])
    model = result["model"]
    assert [layer["class"] for layer in model["layers"]] == ["Dense", "Dense"]
    assert model["parameters"] == 8 * 16 + 16 + 16 * 3 + 3 and len(model["digest"]) == 64
    assert result["data"]["arrays"][0] == {"name": "x_train", "dtype": "float32", "shape": [192, 8]}
    # the printout: the compiled settings and metrics, not the config's defaults
    assert "loss sparse_categorical_crossentropy, Adam(learning_rate=0.05), metrics accuracy" in out
    assert "loss train / held-out  accuracy train / held-out" in out and "loss=mse" not in out


@needs_tensorflow
def test_defect5_baseline_check_says_the_model_changed(
    user: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Record a baseline, edit the factory's optimizer (Adam() → Adam(0.002)), check: "your model changed" with the
    diff, not graded as environment drift, exit status 1 (main graded it as drift)."""
    spec = ["--model", f"{user}:classifier", "--data", f"{user}:data", "--dir", str(tmp_path / "b"), "--short-only"]
    run_cli(capsys, "baseline", "record", *spec)
    out = run_cli(capsys, "baseline", "check", *spec)
    assert "3 identical" in out and "changed" not in out
    user.write_text(FACTORY.replace("keras.optimizers.Adam()", "keras.optimizers.Adam(0.002)"))
    out = run_cli(capsys, "baseline", "check", *spec, status=1)
    first = out.strip().splitlines()[0]
    assert first.startswith("your model changed since the baseline was recorded: Adam learning_rate 0.001 → 0.002")
    rows = [line.split() for line in out.splitlines() if line.startswith("classifier+data/5ep/seed")]
    assert [row[1] for row in rows] == ["changed"] * 3  # not graded: no ulp / divergent / material verdict
    assert "3 changed" in out and "FAILED (changed since recorded" in out
    stored = json.loads(next((tmp_path / "b").rglob("*.json")).read_text())
    entry = next(iter(stored["entries"].values()))
    assert {"model", "compile", "data"} <= set(entry) and "compiled" in entry["metrics"]


@needs_tensorflow
def test_matrix_compile_factors_change_a_compiled_model_or_say_why(user: Path) -> None:
    """The xla and lr factors on a factory-compiled model: each shows a change that reached the model (read back),
    never "identical because nothing happened"; where the change cannot be made, the cell is an error saying so."""
    from sinecheck.checks.factors import factor_by_name
    from sinecheck.checks.matrix import run_matrix

    rows = [
        ("classifier", _config(user).replace(epochs=2)),
        ("scheduled", _config(user, "scheduled").replace(epochs=2)),
    ]
    factors = [factor_by_name("xla"), factor_by_name("lr")]
    matrix = run_matrix(rows, factors, parallel=1, probe_shuffle=False, locate="none")
    for name in ("xla", "lr"):
        cell = matrix.cell(name, "classifier")
        assert cell.error is None, cell.error
        assert cell.verdict is not None and cell.short() != "identical", cell.short()
        assert cell.evidence is not None and cell.evidence.reached
    assert "jit_compile False → True" in matrix.cell("xla", "classifier").evidence.reached
    assert "learning_rate 0.001 → 0.002" in matrix.cell("lr", "classifier").evidence.reached
    refused = matrix.cell("lr", "scheduled")
    assert refused.error is None and refused.short() == "refused"  # a stated refusal, not a failure
    assert refused.skipped is not None and "ExponentialDecay" in refused.skipped


@needs_tensorflow
def test_defect5_under_the_pytest_plugin(user: Path, pytester: pytest.Pytester) -> None:
    """The plugin's baseline check (the packaged suite's, with no test file) fails on an edited model and says what
    changed, first."""
    args = [f"--sinecheck-model={user}:classifier", f"--sinecheck-data={user}:data", "-p", "no:randomly"]
    args += ["-k", "test_golden_baseline"]  # the packaged suite's baseline test alone
    args.append(f"--sinecheck-baseline-dir={pytester.path / 'baselines'}")
    recorded = pytester.runpytest_subprocess(*args, "--sinecheck-baseline=record")
    assert recorded.ret == pytest.ExitCode.OK, recorded.stdout.str()
    user.write_text(FACTORY.replace("keras.optimizers.Adam()", "keras.optimizers.Adam(0.002)"))
    checked = pytester.runpytest_subprocess(*args)
    assert checked.ret == pytest.ExitCode.TESTS_FAILED
    checked.stdout.fnmatch_lines(
        [
            "*your model changed since the baseline was recorded: Adam learning_rate 0.001 → 0.002 (6 entries*",
            "*6 entries changed since the baseline was recorded*",
        ]
    )


@needs_tensorflow
def test_compiled_metrics_off_skips_evaluate_and_changes_no_bit(user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``train(compiled_metrics=False)`` (what the matrix asks its workers for: a cell compares weights and
    predictions only) calls no ``evaluate`` and leaves the compiled metrics out; every digest is the same as a
    run that evaluates."""
    import sinecheck.engines.common as common
    from sinecheck.engines.registry import train

    calls: list[str] = []
    real = common.evaluate_compiled
    monkeypatch.setattr(common, "evaluate_compiled", lambda *a, **k: calls.append("evaluate") or real(*a, **k))
    full = train(_config(user))
    assert calls == ["evaluate"] and set(full.metrics.compiled.names()) == {"loss", "accuracy"}
    lean = train(_config(user), compiled_metrics=False)
    assert calls == ["evaluate"], "compiled_metrics=False must not call evaluate"
    assert not lean.metrics.compiled
    assert lean.digests == full.digests
    without = {k: v for k, v in full.metrics.to_json().items() if k != "compiled"}
    assert lean.metrics.to_json() == without  # NaN/inf as strings, so equal when both are NaN
