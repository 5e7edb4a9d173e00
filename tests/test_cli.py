"""The ``sinecheck`` command: presets, env, run, report, and its one-line argument errors.

Most checks call `sinecheck.cli.main` in this process; real subprocesses are used only for the entry points,
for cross-process reproducibility, and for "fails before TensorFlow is imported".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from sinecheck import cli
from sinecheck.core.config import INITIALIZERS, OptimizerSpec, TrainConfig
from sinecheck.core.presets import PRESETS, get_preset

PRESET_NAMES = ("keras-default", "tf-explicit", "batch-sweep")
HEX64 = re.compile(r"[0-9a-f]{64}")
BASE_1_EPOCH = get_preset("keras-default").configs[0].replace(epochs=1)


@pytest.fixture(autouse=True)
def _quiet_tensorflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI does os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ...); keep that from leaking out of a test.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``sinecheck ARGV`` in this process: (exit status, stdout, stderr); argparse's SystemExit counts too."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str, *fragments: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def parse_table(out: str) -> list[dict[str, str]]:
    """The rows of the `sinecheck run` table, keyed by column header (columns are split on 2+ spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run ") and "config id" in line)
    header = re.split(r"\s{2,}", lines[start].strip())
    assert set(lines[start + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def console_script() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "sinecheck"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("sinecheck")
    if found is None:
        pytest.skip("the sinecheck console script is not installed")
    return found


def run_process(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env, check=False, **kwargs)


def run_python_json(code: str) -> Any:
    """Run `code` in a fresh interpreter, which must succeed; the JSON its last line of stdout prints."""
    proc = run_process(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- entry points --------------------------------------------------------------------------------------


def test_console_script_and_module_entry_points() -> None:
    script = run_process(console_script(), "presets")
    module = run_process(sys.executable, "-m", "sinecheck.cli", "presets")
    for proc in (script, module):
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        for name in PRESET_NAMES:
            assert name in proc.stdout
    assert script.stdout == module.stdout
    helped = run_process(sys.executable, "-m", "sinecheck.cli", "--help")
    assert helped.returncode == 0
    for command in ("presets", "env", "run", "report"):
        assert command in helped.stdout


def test_help_lists_every_command_without_importing_the_command_modules() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from sinecheck.cli import COMMANDS, main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    status = main(['--help'])\n"
        "loaded = [info.module for info in COMMANDS.values() if info.module in sys.modules]\n"
        "print(json.dumps({'status': status, 'help': out.getvalue(), 'loaded': loaded}))\n"
    )
    report = run_python_json(code)
    assert report["status"] == 0 and report["loaded"] == []
    for name, info in cli.COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(info.summary[:30])}", report["help"], re.MULTILINE), name


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_module_declares_and_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = cli.load_command(name)
    assert callable(command.add_arguments) and callable(command.run)
    status, out, err = run_main(capsys, name, "--help")
    assert status == 0 and err == ""
    assert out.startswith(f"usage: sinecheck {name} ")


def test_closed_stdout_pipe_is_not_reported_as_an_error() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before sinecheck writes anything (like `| head` after 1 line)
    try:
        proc = subprocess.run(
            [console_script(), "presets", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 1


# -- presets -------------------------------------------------------------------------------------------


def test_presets_lists_names_and_config_ids(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(capsys, "presets")
    assert status == 0 and err == ""
    for name in PRESET_NAMES:
        assert re.search(rf"^{re.escape(name)}\s", out, re.MULTILINE), name
        for cfg in PRESETS[name].configs:
            assert cfg.config_id in out
    assert re.search(r"config ids: batch 32: \w{12}, batch 64: \w{12}, batch 128: \w{12}", out)


def test_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "presets", "--json")
    assert status == 0
    data = json.loads(out)
    assert list(data) == list(PRESET_NAMES)
    assert [c["batch_size"] for c in data["batch-sweep"]] == [32, 64, 128]
    assert [c["hidden_units"] for c in data["batch-sweep"]] == [[32]] * 3
    assert len(data["keras-default"]) == len(data["tf-explicit"]) == 1
    assert data["keras-default"][0]["epochs"] == 100
    assert data["keras-default"][0]["kernel_initializer"]["name"] == "glorot_uniform"
    assert data["tf-explicit"][0]["kernel_initializer"] == {"name": "truncated_normal", "params": {"stddev": 0.02}}
    assert data["tf-explicit"][0]["optimizer"]["learning_rate"] == 0.01
    for name, configs in data.items():  # the JSON is the full config: it rebuilds the same config ids
        assert [TrainConfig.from_dict(c).config_id for c in configs] == [c.config_id for c in PRESETS[name].configs]


# -- env -----------------------------------------------------------------------------------------------


def test_env_text(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "env")
    assert status == 0
    assert re.search(rf"^tensorflow\s+{re.escape(metadata.version('tensorflow'))}$", out, re.MULTILINE)
    assert re.search(r"^keras_backend\s+\w+$", out, re.MULTILINE)
    assert re.search(r"^op_determinism\s+(True|False)$", out, re.MULTILINE)
    assert out.rstrip().splitlines()[-1].startswith(f"tensorflow {metadata.version('tensorflow')}, keras ")


def test_env_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "env", "--json")
    assert status == 0
    info = json.loads(out)
    assert {"tensorflow", "keras", "keras_backend", "onednn", "cpu", "isa", "op_determinism"} <= set(info)
    assert info["tensorflow"] == metadata.version("tensorflow")
    assert info["keras"] == metadata.version("keras")
    assert isinstance(info["keras_backend"], str) and info["keras_backend"]
    assert isinstance(info["onednn"], bool)
    assert info["isa"] in {"avx512", "avx2", "avx", "sse", "arm", "other"}
    assert isinstance(info["op_determinism"], bool)  # env probes TensorFlow, so this is known, not None


# -- run -----------------------------------------------------------------------------------------------


def test_run_one_epoch_table_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "out.json"  # missing parents are created
    status, out, err = run_main(capsys, "run", "keras-default", "--epochs", "1", "--json", str(path))
    assert status == 0, err
    assert f"[1/1] keras-default batch 32 ({BASE_1_EPOCH.config_id})" in err  # progress goes to stderr
    (row,) = parse_table(out)
    assert row["run"] == "keras-default batch 32"
    assert row["config id"] == BASE_1_EPOCH.config_id
    assert "epochs=1 shuffle=True seed=0" in out
    assert f"wrote {path}" in out

    payload = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(payload, list) and len(payload) == 1
    result = payload[0]
    assert result["config"] == BASE_1_EPOCH.to_dict()
    assert result["config_id"] == BASE_1_EPOCH.config_id
    assert result["epochs_run"] == 1 and result["diverged"] is False
    digests = result["digests"]
    assert set(digests) == {"initial_weights", "final_weights", "predictions"}
    assert all(HEX64.fullmatch(d) for d in digests.values())
    assert digests["initial_weights"] != digests["final_weights"]
    assert row["initial weights"] == digests["initial_weights"][:16]
    assert row["final weights"] == digests["final_weights"][:16]
    assert row["predictions"] == digests["predictions"][:16]
    assert row["MSE train"] == format(result["metrics"]["mse_train"], ".5f")
    assert row["MSE held-out"] == format(result["metrics"]["mse_test"], ".5f")
    assert row["max|err|"] == format(result["metrics"]["max_err_test"], ".4f")
    assert 0 < float(row["MSE held-out"]) < 10
    assert float(row["fit s"]) > 0 and float(row["ms/epoch"]) > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seed", "none"], BASE_1_EPOCH.replace(seed=None)),
        (
            ["--initializer", "truncated_normal(stddev=0.02)"],
            BASE_1_EPOCH.replace(kernel_initializer="truncated_normal(stddev=0.02)"),
        ),
        (["--lr", "0.01"], BASE_1_EPOCH.replace(optimizer=OptimizerSpec("adam", 0.01))),
        (["--no-shuffle"], BASE_1_EPOCH.replace(shuffle=False)),
    ],
    ids=["seed-none", "initializer", "lr", "no-shuffle"],
)
def test_run_overrides_reach_the_trained_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: TrainConfig
) -> None:
    assert expected.config_id != BASE_1_EPOCH.config_id
    path = tmp_path / "out.json"
    status, out, err = run_main(capsys, "run", "keras-default", "--epochs", "1", *args, "--json", str(path))
    assert status == 0, err
    (row,) = parse_table(out)
    assert row["config id"] == expected.config_id
    assert expected.describe() in out
    (result,) = json.loads(path.read_text(encoding="utf-8"))
    assert result["config"] == expected.to_dict()
    assert result["epochs_run"] == 1


def test_run_batch_sweep_trains_three_fresh_models(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(capsys, "run", "batch-sweep", "--epochs", "1")
    assert status == 0, err
    rows = parse_table(out)
    assert [r["run"] for r in rows] == ["batch-sweep batch 32", "batch-sweep batch 64", "batch-sweep batch 128"]
    assert [r["config id"] for r in rows] == [c.replace(epochs=1).config_id for c in PRESETS["batch-sweep"].configs]
    assert len({r["initial weights"] for r in rows}) == 1  # same seed, fresh model: identical starts
    assert len({r["final weights"] for r in rows}) == 3  # different batch sizes train differently
    assert [line for line in err.splitlines() if line.startswith("[")][-1].startswith("[3/3] batch-sweep batch 128")


def test_run_is_reproducible_across_processes(tmp_path: Path) -> None:
    """The Done-when check: two separate processes print the same final-weight digest."""
    finals, full = [], []
    for i in range(2):
        path = tmp_path / f"run{i}.json"
        proc = run_process(console_script(), "run", "keras-default", "--epochs", "2", "--json", str(path))
        assert proc.returncode == 0, proc.stderr
        (row,) = parse_table(proc.stdout)
        assert re.fullmatch(r"[0-9a-f]{16}", row["final weights"])
        finals.append(row["final weights"])
        full.append(json.loads(path.read_text(encoding="utf-8"))[0]["digests"])
    assert finals[0] == finals[1]
    assert full[0] == full[1]
    assert full[0]["final_weights"].startswith(finals[0])


# -- argument errors -----------------------------------------------------------------------------------

ERROR_CASES = [
    (["run", "nope"], ["sinecheck run: error:", "preset", "'nope'", *PRESET_NAMES]),
    (["run", "keras-default", "--batch-size", "0"], ["sinecheck run: error:", "batch_size", "0", ">= 1"]),
    (["run", "keras-default", "--epochs", "0"], ["sinecheck run: error:", "epochs", "0", "[1, 100000]"]),
    (["run", "keras-default", "--epochs", "x"], ["sinecheck run: error:", "--epochs", "'x'", "int"]),
    (
        ["run", "keras-default", "--initializer", "xavier"],
        ["sinecheck run: error:", "initializer", "'xavier'", *INITIALIZERS],
    ),
    (
        ["run", "keras-default", "--initializer", "truncated_normal(stddev=-1)"],
        ["sinecheck run: error:", "truncated_normal.stddev", "-1", "> 0"],
    ),
    (["run", "keras-default", "--lr", "0"], ["sinecheck run: error:", "learning_rate", "0", "> 0"]),
    (["run", "keras-default", "--lr", "nan"], ["sinecheck run: error:", "learning_rate", "nan", "finite"]),
    (["run", "keras-default", "--seed", "-1"], ["sinecheck run: error:", "seed", "-1", "[0, 4294967295]"]),
    (["run", "keras-default", "--seed", "abc"], ["sinecheck run: error:", "--seed", "'abc'", "'none'"]),
    (["bogus"], ["sinecheck: error:", "'bogus'", "presets", "env", "run", "report"]),
    ([], ["sinecheck: error:", "required", "COMMAND"]),
    (["report", "--seeds", "0"], ["sinecheck report: error:", "--seeds", "0", ">= 1"]),
    (["report", "--study-seeds", "1"], ["sinecheck report: error:", "--study-seeds", "1", ">= 2"]),
    (["study", "--seeds", "1"], ["sinecheck study: error:", "--seeds", "1", ">= 2"]),
    (["study", "--axis", "colour=red"], ["sinecheck study: error:", "axis", "'colour'", "initializer"]),
    (["study", "--initializers", "xavier"], ["sinecheck study: error:", "initializer", "'xavier'"]),
    (["study", "--batch-sizes", "0"], ["sinecheck study: error:", "batch_size", "0", ">= 1"]),
    (["study", "--workers", "0"], ["sinecheck study: error:", "--workers", "0", ">= 1"]),
    (["study", "--engine", "turbo"], ["sinecheck study: error:", "engine", "'turbo'", "fused"]),
    (["explain", "keras-default", "nothere"], ["sinecheck explain: error:", "B", "'nothere'", "tf-explicit"]),
    (["explain", "keras-default", "tf-explicit", "--seeds", "1"], ["sinecheck explain: error:", "--seeds", ">= 2"]),
    (["bench", "--rounds", "0"], ["sinecheck bench: error:", "--rounds", "0", ">= 1"]),
    (["diverge", "keras-default", "--factor", "bogus"], ["sinecheck diverge: error:", "'bogus'", "onednn-off"]),
    (["diverge", "keras-default", "tf-explicit", "--factor", "xla"], ["sinecheck diverge: error:", "factor alone"]),
    (["run", "--model", "nosuchpkg.models:f"], ["sinecheck run: error:", "model spec", "'nosuchpkg' not found"]),
    (["report", "--epochs", "0"], ["sinecheck report: error:", "epochs", "0", "[1, 100000]"]),
]


@pytest.mark.parametrize(("argv", "fragments"), ERROR_CASES, ids=[" ".join(a) or "<none>" for a, _ in ERROR_CASES])
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    status, out, err = run_main(capsys, *argv)
    assert status == 2
    assert out == ""
    assert_one_line_error(err, *fragments)


def test_bad_arguments_fail_before_tensorflow_is_imported() -> None:
    code = (
        "import json, sys\n"
        "from sinecheck.cli import main\n"
        f"cases = {json.dumps([argv for argv, _ in ERROR_CASES])}\n"
        "codes = []\n"
        "for argv in cases:\n"
        "    try:\n"
        "        codes.append(main(argv))\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print(json.dumps({'codes': codes, 'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))\n"
    )
    report = run_python_json(code)
    assert report == {"codes": [2] * len(ERROR_CASES), "tf": False, "keras": False}


def test_console_script_batch_size_zero_is_one_line() -> None:
    proc = run_process(console_script(), "run", "keras-default", "--batch-size", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr, "batch_size", "0", "allowed")


def test_json_path_that_cannot_be_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    target = blocker / "sub" / "out.json"
    status, out, err = run_main(capsys, "run", "keras-default", "--epochs", "1", "--json", str(target))
    assert status != 0
    assert out == ""  # it failed up front: no training, no table
    assert_one_line_error(err, "--json", str(target))
    assert not target.exists()


def test_json_path_that_is_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run_main(capsys, "run", "keras-default", "--epochs", "1", "--json", str(tmp_path))
    assert status != 0
    assert out == ""
    assert_one_line_error(err, "--json", str(tmp_path), "directory")


def test_report_out_that_cannot_be_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    status, out, err = run_main(capsys, "report", "--out", str(blocker / "rep"), "--seeds", "1", "--epochs", "1")
    assert status != 0
    assert out == ""
    assert_one_line_error(err, "--out", str(blocker / "rep"))


# -- report --------------------------------------------------------------------------------------------


def test_report_writes_markdown_json_and_plots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "nested" / "report"
    status, out, err = run_main(capsys, "report", "--out", str(out_dir), "--seeds", "1", "--epochs", "1", "--no-study")
    assert status == 0, err
    assert f"wrote {out_dir / 'report.md'}" in out
    assert len([line for line in out.splitlines() if "held-out MSE per seed" in line]) == 5
    for name in ("waves.png", "loss.png"):
        data = (out_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    for name in PRESET_NAMES:
        assert name in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0].startswith("| preset | run |")
    assert set(table[1].replace("|", "")) == {"-"}
    assert [line.split("|")[1].strip() for line in table[2:]] == [
        "keras-default",
        "tf-explicit",
        "batch-sweep",
        "batch-sweep",
        "batch-sweep",
    ]
    assert "waves.png" in md and "loss.png" in md
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert len(report["rows"]) == 5
    assert all(row["epochs"] == 1 and row["seeds"] == [0] for row in report["rows"])
    assert [row["batch_size"] for row in report["rows"] if row["preset"] == "batch-sweep"] == [32, 64, 128]


# -- study, explain, bench -------------------------------------------------------------------------------


def test_study_writes_tables_figures_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir, json_path = tmp_path / "study", tmp_path / "s.json"
    study_args = (
        "study",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--initializers",
        "he_normal,truncated_normal(stddev=0.02)",
        "--batch-sizes",
        "32,full",
        "--no-sweeps",
        "--no-claims",
        "--workers",
        "1",
        "--out",
        str(out_dir),
    )
    status, out, err = run_main(capsys, *study_args, "--json", str(json_path))
    assert status == 0, err
    assert "| initializer | batch_size | held-out MSE mean [95 % CI]" in out
    assert "keras-default vs tf-explicit: 2 differing factor(s)" in out
    for name in ("study_heatmap.png", "study_curves.png", "study_spread.png", "explain.png"):
        assert (out_dir / name).read_bytes().startswith(b"\x89PNG")
    report = json.loads(json_path.read_text())
    assert len(report["grid"]["cells"]) == 4 and report["explanation"]["factors"][0]["name"] == "learning_rate"
    assert "## initializer × batch size" in (out_dir / "study.md").read_text()
    status, out, _ = run_main(capsys, *study_args)
    assert status == 0 and "grid runs reused" in (out_dir / "study.md").read_text()  # resumed, nothing retrained


def test_explain_prints_the_attribution(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run_main(
        capsys,
        "explain",
        "keras-default",
        "tf-explicit",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--json",
        str(tmp_path / "e.json"),
        "--out",
        str(tmp_path),
    )
    assert status == 0, err
    assert "learning_rate" in out and "kernel_initializer" in out and "seed noise" in out
    assert json.loads((tmp_path / "e.json").read_text())["seeds"] == [0, 1]
    assert (tmp_path / "explain.png").exists()


def test_bench_quick_prints_ratios_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run_main(
        capsys, "bench", "--quick", "--rounds", "1", "--epochs-per-call", "1", "--json", str(tmp_path / "b.json")
    )
    assert status == 0, err
    for engine in ("keras", "fused", "fused-xla", "numpy"):
        assert f"keras-default            {engine}" in out
    report = json.loads((tmp_path / "b.json").read_text())
    ratios = report["rows"][0]["ratio_vs_keras"]
    assert ratios["keras"] == 1.0 and all(r > 0 for r in ratios.values())
    assert report["fingerprint"]["tensorflow"]


def test_tensorflow_start_up_lines_are_kept_off_stderr() -> None:
    """TF 2.21 prints absl start-up lines ("I0000 … oneDNN custom operations", cuInit) before it reads
    TF_CPP_MIN_LOG_LEVEL; `start_tensorflow_quietly` keeps them off stderr, and the runtime can still be configured
    afterwards (threads, op determinism). The control: the same import without it (skipped where TF prints nothing)."""
    pytest.importorskip("tensorflow")
    quiet = (
        "from sinecheck.keras.runtime import start_tensorflow_quietly\n"
        "start_tensorflow_quietly()\n"
        "import tensorflow as tf\n"
        "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
        "tf.config.experimental.enable_op_determinism()\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    plain = "import tensorflow as tf\ntf.config.list_physical_devices()\nprint(1)\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = [subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, env=env) for c in (quiet, plain)]
    assert [d.returncode for d in done] == [0, 0] and done[0].stdout.strip() == "1", done[0].stderr
    assert done[0].stderr == ""
    if not done[1].stderr:
        pytest.skip("this TensorFlow prints nothing at start-up: nothing to hide (the quiet side passed)")
    assert "I0000" in done[1].stderr or "cuInit" in done[1].stderr
