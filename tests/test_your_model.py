"""Bring your own model: the plugin's options (specs, the ini key, usage errors), the CLI (run, matrix, baseline, bench,
diverge) and the engines on a user's Keras model given as a spec — here the example LSTM of ``examples/models.py``.
The packaged suite that ``--sinecheck-model`` adds is tested in tests/test_packaged_suite.py, spec validation in
tests/test_validate.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sinecheck.cli import main
from sinecheck.core.config import OptimizerSpec, TrainConfig
from sinecheck.engines.registry import train
from sinecheck.errors import EngineUnsupported

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models.py"
LSTM = f"{EXAMPLES}:lstm_sine"


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def test_without_a_model_the_model_tests_skip_and_say_how(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_model(sinecheck_model):\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_subprocess("-rs")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*no model spec given (--sinecheck-model=SPEC)*", "*1 skipped*"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sinecheck-model=nosuchpkg.models:f"], "module 'nosuchpkg' not found"),
        ([f"--sinecheck-model={EXAMPLES}:nothere"], "'nothere' not found"),
        (["--sinecheck-model=no_colon"], "MODULE:CALLABLE"),
        ([f"--sinecheck-model={LSTM}", "--sinecheck-data=a:b", "--sinecheck-data=c:d"], "2 given for 1 model"),
        (["--sinecheck-data=a:b"], "without a model spec"),
    ],
)
def test_bad_specs_are_usage_errors(pytester: pytest.Pytester, args: list[str], needle: str) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = _output(result)
    assert needle in text and "Traceback" not in text
    (line,) = [line for line in text.splitlines() if needle in line]
    assert "--sinecheck-model/--sinecheck-data" in line


def test_specs_from_the_ini_file(pytester: pytest.Pytester) -> None:
    """Models from the ini key are the session's models: each parametrizes a test of the user's that takes
    ``sinecheck_model`` and the packaged suite (collected only here: both models are validated at configure time)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs tensorflow")
    pytester.makeini(f"[pytest]\nsinecheck_models = {LSTM} {EXAMPLES}:dense_sine\n")
    pytester.makepyfile("def test_ids(sinecheck_model, sinecheck_models):\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, _output(result)
    result.stdout.fnmatch_lines_random(
        [
            "*test_ids?lstm_sine?",
            "*test_ids?dense_sine?",
            "sinecheck/pytest_plugin/model_suite.py::test_same_process_identical?lstm_sine?",
            "sinecheck/pytest_plugin/model_suite.py::test_same_process_identical?dense_sine?",
            "16 tests collected*",
        ]
    )


# -- the engines ---------------------------------------------------------------------------------------------


def test_engines_refuse_a_spec_unless_a_fallback_is_asked_for() -> None:
    pytest.importorskip("tensorflow")
    config = TrainConfig(model=LSTM, epochs=1, n_points=64)
    for engine in ("fused", "fused-xla", "numpy", "numpy-float64"):
        with pytest.raises(EngineUnsupported, match=f"engine {engine}: cannot train the model spec .*allowed: keras"):
            train(config, engine=engine)
    result = train(config, engine="fused", fallback="keras")
    assert result.engine == "keras" and result.options["fallback_from"] == "fused"
    assert list(result.final_weights) == [
        "layer1.lstm/kernel",
        "layer1.lstm/recurrent_kernel",
        "layer1.lstm/bias",
        "layer2.dense/kernel",
        "layer2.dense/bias",
    ]
    again = train(config)
    assert again.digests == result.digests  # same seed, same process: bit for bit, on the user's model too


def test_data_spec_with_held_out_arrays_and_a_compiled_factory(tmp_path: Path) -> None:
    """A data spec feeds fit and the metrics (its held-out pair scores the held-out MSE); a factory that compiles
    its own model keeps its optimizer and loss."""
    pytest.importorskip("tensorflow")
    windows = train(TrainConfig(model=f"{EXAMPLES}:lstm_next", data=f"{EXAMPLES}:sine_windows", epochs=1))
    assert windows.pred_test.shape == (1000, 1) and windows.metrics.mse_test != windows.metrics.mse_train
    user = tmp_path / "compiled.py"
    user.write_text(
        "import keras\n\ndef model():\n    m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4),"
        " keras.layers.Dense(1)])\n    m.compile(optimizer=keras.optimizers.SGD(0.05), loss='mae')\n"
        "    return m\n"
    )
    result = train(TrainConfig(model=f"{user}:model", epochs=1, n_points=64))
    assert result.options == {"compiled_by_factory": True}
    assert not result.diverged


# -- the command line ----------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> tuple[str, str]:
    """``sinecheck ARGV`` in this process, which must exit with `status`: (stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == status, out + err
    return out, err


def test_cli_run_and_bench_on_your_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    out, _ = run_cli(capsys, "run", "--model", LSTM, "--epochs", "1", "--json", str(tmp_path / "r.json"))
    assert "model lstm_sine" in out and f"model {LSTM}" in out
    assert json.loads((tmp_path / "r.json").read_text())[0]["config"]["model"] == LSTM
    _, err = run_cli(capsys, "run", "--model", LSTM, "--epochs", "1", "--engine", "fused", status=2)
    assert "engine fused: cannot train the model spec" in err and len(err.strip().splitlines()) == 1
    out, _ = run_cli(capsys, "run", "--model", LSTM, "--epochs", "1", "--engine", "fused", "--fallback-engine", "keras")
    assert "trained with keras (--fallback-engine)" in out
    out, _ = run_cli(capsys, "bench", "--model", LSTM, "--rounds", "1", "--epochs-per-call", "1", "--no-backends")
    lines = [line for line in out.splitlines() if line.startswith("lstm_sine")]
    assert len(lines) == 4 and sum("refused: engine" in line for line in lines) == 3  # fit timed, 3 refused


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "keras-default", "--model", LSTM], "given with --model"),
        (["run"], "PRESET: missing"),
        (["run", "--model", LSTM, "--initializer", "he_normal"], "--initializer: not with --model"),
        (["run", "--model", f"{EXAMPLES}:nothere"], "'nothere' not found"),
        (["matrix", "--model", "nosuchpkg.m:f"], "module 'nosuchpkg' not found"),
        (["baseline", "check", "--model", "x"], "MODULE:CALLABLE"),
        (["diverge"], "A: missing"),
        (["diverge", "keras-default", "--env-b", "FOO=1"], "--env-b: invalid value 'FOO=1'"),
        (["diverge", "keras-default", "--factor", "xla", "--env-b", "TF_ENABLE_ONEDNN_OPTS=0"], "the factor alone"),
        (["diverge", "keras-default", "--python-b", "/no/such/python"], "--python-b: invalid value"),
    ],
)
def test_cli_bad_model_arguments(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, err = run_cli(capsys, *argv, status=2)
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_baseline_record_check_and_list_per_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Each model's baselines live in their own subdirectory; record, check (bitwise in the same environment)
    and list work on it, and the presets' directory is left alone."""
    pytest.importorskip("tensorflow")
    model = ["--model", LSTM, "--dir", str(tmp_path), "--short-only"]
    out, _ = run_cli(capsys, "baseline", "check", *model, status=1)
    assert f"record one with `sinecheck baseline record --dir {tmp_path} --model {LSTM}`" in out
    run_cli(capsys, "baseline", "record", *model)
    assert list(tmp_path.glob("*.json")) == [] and len(list((tmp_path / "models-lstm_sine").glob("*.json"))) == 1
    out, _ = run_cli(capsys, "baseline", "check", *model)
    assert "lstm_sine/5ep/seed2  identical" in out and "3 identical" in out
    out, _ = run_cli(capsys, "baseline", "list", "--model", LSTM, "--dir", str(tmp_path))
    assert "3 entries" in out
    # and the committed baseline of the example: bit for bit where this environment recorded it, else a record hint
    committed = ["--model", LSTM, "--dir", str(ROOT / "tests" / "baselines"), "--short-only"]
    if main(["baseline", "check", *committed]) != 0:
        out, err = capsys.readouterr()
        assert "no baseline for this environment" in out, out + err


def test_cli_diverge_two_configs_and_a_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`sinecheck diverge A B` names the first step and stage; with --model and --factor on the user's model."""
    pytest.importorskip("tensorflow")
    a = TrainConfig(hidden_units=(8,), n_points=64, batch_size=16)
    (tmp_path / "a.json").write_text(a.to_json())
    (tmp_path / "b.json").write_text(a.replace(optimizer=OptimizerSpec("adam", 0.002)).to_json())
    configs = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    out, _ = run_cli(capsys, "diverge", *configs, "--epochs", "1", "--json", str(tmp_path / "d.json"))
    assert "the configs differ in: optimizer" in out
    assert "first divergence at epoch 1, batch 1 (step 1), stage: weight update" in out
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["stage"] == "weight update" and data["b"]["environment"]["name"] == "b"
    out, _ = run_cli(
        capsys, "diverge", "--model", LSTM, "--factor", "shuffle-off", "--epochs", "1", "--out", str(tmp_path)
    )
    assert "lstm_sine" in out and "stage: shuffle order" in out and (tmp_path / "diverge.png").is_file()


def test_cli_matrix_on_your_model_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    factors = ["--factor", "same-process", "--factor", "shuffle-off"]
    out, _ = run_cli(
        capsys,
        "matrix",
        "--model",
        LSTM,
        *factors,
        "--epochs",
        "1",
        "--locate",
        "all",
        "--json",
        str(tmp_path / "m.json"),
    )
    assert "lstm_sine" in out and "small" not in out.split("finding")[0]
    assert "the data and batch size of lstm_sine; a pass-through probe model stood in" in out.split("finding")[1]
    assert "shuffle-off / lstm_sine: first divergence at epoch 1, batch 1 (step 1), stage: shuffle order" in out
    data = json.loads((tmp_path / "m.json").read_text())
    assert list(data["rows"]) == ["lstm_sine"] and data["rows"]["lstm_sine"]["model"] == LSTM


# -- only what was asked for, named as the user knows it -----------------------------------------------------

TINY_MODEL = """
def tiny():
    import keras

    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(2), keras.layers.Dense(1)])
"""

MARKED = """
import pytest

from sinecheck.core.config import TrainConfig

CONFIG = TrainConfig(model="user_models.py:tiny", epochs=1, n_points=64)


@pytest.mark.sinecheck_factor("same-process", config=CONFIG)
def test_marked(sinecheck_cell):
    assert sinecheck_cell.row == "tiny"
    sinecheck_cell.check()


@pytest.mark.sinecheck_factor("same-process", config=CONFIG.replace(seed=1))
def test_marked_other_seed(sinecheck_cell):
    sinecheck_cell.check()
"""


def test_marker_rows_are_named_after_the_model(pytester: pytest.Pytester) -> None:
    """``@pytest.mark.sinecheck_factor(..., config=TrainConfig(model=...))``: the cell's row (in failure messages
    and the terminal summary) is the model's name, not a config id; two configs of one model stay two rows."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs tensorflow")
    pytester.makepyfile(user_models=TINY_MODEL, test_marked=MARKED)
    result = pytester.runpytest_subprocess()
    text = _output(result)
    assert result.ret == pytest.ExitCode.OK, text
    header = next(line for line in result.stdout.lines if line.strip().startswith("factor"))
    assert header.split()[2:] == ["tiny", "tiny#2"], header
