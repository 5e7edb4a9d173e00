"""The pytest plugin (loaded through the ``pytest11`` entry point): header, options, ini, fixtures, summary.

Sessions that could import TensorFlow run in a subprocess: pytester's in-process runs drop the modules they
imported afterwards, and TensorFlow cannot be imported a second time in one process.
"""

from __future__ import annotations

from importlib import metadata

import pytest

pytest_plugins = ["pytester"]

TRIVIAL_TEST = "def test_ok():\n    pass\n"


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def test_header_and_no_duplicate_registration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TRIVIAL_TEST)
    result = pytester.runpytest_subprocess("--sinecheck-seed=5", "--sinecheck-epochs=2")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"sinecheck: tensorflow {metadata.version('tensorflow')}, keras {metadata.version('keras')} (* backend)*",
            "sinecheck: base seed 5, short runs 2 epochs (--sinecheck-seed / --sinecheck-epochs)",
        ]
    )
    text = _output(result)
    assert "already registered" not in text
    assert "trained" not in text  # no runs, no summary section
    assert len([line for line in text.splitlines() if line.startswith("sinecheck: tensorflow")]) == 1


def test_header_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TRIVIAL_TEST)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["sinecheck: base seed 0, short runs 3 epochs *"])


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        ("--sinecheck-seed=-1", ["--sinecheck-seed", "'-1'", "[0, 4294967295]"]),
        ("--sinecheck-seed=4294967296", ["--sinecheck-seed", "'4294967296'", "[0, 4294967295]"]),
        ("--sinecheck-epochs=0", ["--sinecheck-epochs", "'0'", ">= 1"]),
        ("--sinecheck-epochs=abc", ["--sinecheck-epochs", "'abc'", ">= 1"]),
        ("--sinecheck-max-ulp=-3", ["--sinecheck-max-ulp", "'-3'", ">= 0"]),
    ],
)
def test_bad_option_is_a_usage_error(pytester: pytest.Pytester, option: str, fragments: list[str]) -> None:
    pytester.makepyfile(TRIVIAL_TEST)
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = _output(result)
    assert "Traceback" not in text
    (line,) = [line for line in text.splitlines() if fragments[0] in line and "error" in line]
    for fragment in fragments:
        assert fragment in line


@pytest.mark.parametrize(
    ("ini", "fragments"),
    [
        ("sinecheck_epochs = 0", ["ini sinecheck_epochs", "'0'", ">= 1"]),
        ("sinecheck_epochs = three", ["ini sinecheck_epochs", "'three'", ">= 1"]),
        ("sinecheck_seed = -2", ["ini sinecheck_seed", "'-2'", "[0, 4294967295]"]),
    ],
)
def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, ini: str, fragments: list[str]) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(TRIVIAL_TEST)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = _output(result)
    assert "Traceback" not in text
    (line,) = [line for line in text.splitlines() if fragments[0] in line]
    for fragment in fragments:
        assert fragment in line


def test_help_lists_the_options_and_ini_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "sinecheck: reproducibility of Keras sine-model training:",
            "*--sinecheck-seed=N*",
            "*--sinecheck-epochs=N*",
            "*--sinecheck-max-ulp=K*",
        ]
    )
    result.stdout.fnmatch_lines(["*sinecheck_seed (string):*", "*sinecheck_epochs (string):*"])


_RECORD_IMPORTS = """
import pathlib
import sys


def pytest_unconfigure(config):
    seen = [name for name in ("sinecheck.pytest_plugin", "tensorflow", "keras") if name in sys.modules]
    pathlib.Path(__file__).with_name("imported.txt").write_text(" ".join(seen))
"""


@pytest.mark.parametrize("args", [["--help"], ["-q"]], ids=["help", "plain-run"])
def test_plugin_does_not_import_tensorflow(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makeconftest(_RECORD_IMPORTS)
    pytester.makepyfile(TRIVIAL_TEST)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.OK
    assert (pytester.path / "imported.txt").read_text().split() == ["sinecheck.pytest_plugin"]


_FIXTURE_TESTS = """
import sinecheck.pytest_plugin
from sinecheck.core.compare import Tolerance
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import RunResult


def test_settings(sinecheck_seed, sinecheck_epochs, sinecheck_tolerance):
    assert sinecheck_seed == 7
    assert sinecheck_epochs == 2  # from the ini file
    assert sinecheck_tolerance == Tolerance(max_ulp=3)


def test_train(sinecheck_train, sinecheck_seed):
    config = TrainConfig(hidden_units=(4,), n_points=50, epochs=1, seed=sinecheck_seed)
    result = sinecheck_train(config)
    assert isinstance(result, RunResult)
    assert result.config == config and result.engine == "keras"
    assert result.epochs_run == 1 and not result.diverged
    assert result.final_weights["layer0/kernel"].shape == (1, 4)
    assert result.pred_train.shape == (50, 1)
    assert result.metrics.mse_test >= 0  # not NaN


def test_registered_once(pytestconfig):
    manager = pytestconfig.pluginmanager
    assert [p for p in manager.get_plugins() if p is sinecheck.pytest_plugin] == [sinecheck.pytest_plugin]
    assert manager.get_plugin("sinecheck") is sinecheck.pytest_plugin
"""


def test_fixtures_train_and_summary(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsinecheck_epochs = 2\n")
    pytester.makepyfile(test_fixtures=_FIXTURE_TESTS)
    result = pytester.runpytest_subprocess("--sinecheck-seed=7", "--sinecheck-max-ulp=3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "sinecheck: base seed 7, short runs 2 epochs *",
            "*- sinecheck -*",
            "trained 1 runs (1 epochs) in * s; 0 diverged",
        ]
    )
    assert "already registered" not in _output(result)


def test_default_tolerance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from sinecheck.core.compare import Tolerance\n\n"
        "def test_tolerance(sinecheck_tolerance, sinecheck_seed, sinecheck_epochs):\n"
        "    assert sinecheck_tolerance == Tolerance()\n"
        "    assert (sinecheck_seed, sinecheck_epochs) == (0, 3)\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


_XDIST_TESTS = """
import pytest

from sinecheck.pytest_plugin import xdist


def _compute():
    import os, pathlib
    pathlib.Path(os.environ["SINECHECK_TEST_COUNT"]).joinpath(str(os.getpid())).touch()
    return {"answer": 42}


@pytest.mark.parametrize("n", range(4))
def test_shared(pytestconfig, sinecheck_baseline, n):
    value = xdist.computed_once(pytestconfig, "answer", _compute, dump=dict, load=dict)
    assert value == {"answer": 42}
    sinecheck_baseline.lines.append(f"line {n}")
"""


def test_xdist_workers_share_through_workerinput_and_workeroutput(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers compute a shared value once (the controller's directory comes through ``workerinput``) and hand
    their summary lines to the controller (through ``workeroutput``), which prints them."""
    pytest.importorskip("xdist")
    counts = pytester.mkdir("counts")
    monkeypatch.setenv("SINECHECK_TEST_COUNT", str(counts))
    pytester.makepyfile(test_shared=_XDIST_TESTS)
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    assert len(list(counts.iterdir())) == 1  # computed in one worker, read by the other
    result.stdout.fnmatch_lines(["*- sinecheck baselines -*"])
    assert sorted(line for line in result.stdout.lines if line.startswith("line ")) == [f"line {n}" for n in range(4)]


def test_a_missing_model_baseline_is_a_skip_that_the_summary_explains(tmp_path) -> None:
    """Under ``check`` with no baseline recorded yet: a skip naming the exact record command, and the same line in the
    session summary (pytest shows no skip reasons unless asked with -rs)."""
    from sinecheck.checks.baseline import Strictness
    from sinecheck.core.compare import Tolerance
    from sinecheck.core.specs import ModelSpec
    from sinecheck.pytest_plugin import BaselineMode, BaselineSession, Settings

    settings = Settings(0, 1, Tolerance(), (), (), BaselineMode.CHECK, tmp_path, Strictness.MATERIAL, ())
    lines: list[str] = []
    with pytest.raises(pytest.skip.Exception) as skipped:
        BaselineSession(settings, lines).verify(ModelSpec("models.py:build", "models.py:data"))
    command = (
        f"record one with: pytest --sinecheck-baseline=record --sinecheck-baseline-dir={tmp_path} "
        "--sinecheck-model=models.py:build --sinecheck-data=models.py:data"
    )
    assert str(skipped.value.msg).endswith(command) and lines == [skipped.value.msg]
