"""The packaged model suite: ``pytest --sinecheck-model=SPEC`` in a project with no test file runs the model's
promises (sinecheck/pytest_plugin/model_suite.py), beside the user's own tests when there are some, also under
pytest-xdist; without a model nothing is added; a spec that cannot be used is one usage error before anything trains.

(TensorFlow is only looked for here, not imported: pytester drops the modules a test imported, and TensorFlow cannot
be imported twice in one process.)"""

from __future__ import annotations

import importlib.util

import pytest

from sinecheck.checks.factors import FACTOR_NAMES

pytest_plugins = ["pytester"]

needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")

MODELS = """
import numpy as np


def tiny():
    import keras

    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(2), keras.layers.Dense(1)])


def classifier():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def data():
    x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    return x, np.sin(x)


def one_hot():
    return np.zeros((32, 4), "float32"), np.eye(3, dtype="float32")[np.arange(32) % 3]
"""

#: The user's own tests, beside the packaged ones: the session matrix has the model's row only (no small Dense row),
#: and a ``sinecheck_factor`` marker without a config runs on the model.
OWN_TESTS = """
import pytest


def test_rows(sinecheck_matrix, sinecheck_models):
    assert [label for label, _ in sinecheck_matrix.rows] == [m.label for m in sinecheck_models]


@pytest.mark.sinecheck_factor("same-process")
def test_marker_without_config(sinecheck_cell):
    assert sinecheck_cell.row == "tiny+data" and "model" in sinecheck_cell.evidence.config
"""

SUITE = "sinecheck/pytest_plugin/model_suite.py"
PACKAGED = [
    "test_same_process_identical",
    "test_fresh_process_identical",
    "test_no_seed_differs",
    "test_injected_noise_differs",
    "test_matrix_row",
    "test_golden_baseline",
    "test_fit_benchmark",
]


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


@pytest.fixture
def outside_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's session is not an xdist worker of ours: pytest-benchmark turns itself off (no table) when it finds
    the ``PYTEST_XDIST_WORKER`` variables this suite's own workers set, which the subprocess would inherit."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@needs_tensorflow
@pytest.mark.usefixtures("outside_xdist")
def test_no_test_file_runs_the_models_promises_then_its_baseline(pytester: pytest.Pytester) -> None:
    """The done-criterion of the packaged suite: a models.py and one ``pytest --sinecheck-model=…`` line, no test file,
    run every packaged test on the model with the default factors, and they pass (the baseline recorded) — here under
    pytest-xdist (the controller validates the spec, each worker collects the suite once).  Then, beside the user's
    own tests and narrowed to one factor, the baseline check passes against the recorded baseline."""
    pytester.makepyfile(user_models=MODELS)
    model = [
        "--sinecheck-model=user_models.py:tiny",
        "--sinecheck-data=user_models.py:data",
        "--sinecheck-epochs=1",
        "-p",
        "no:cacheprovider",
    ]
    recorded = pytester.runpytest_subprocess(*model, "--sinecheck-baseline=record", "-n", "2", "-v")
    text = _output(recorded)
    assert recorded.ret == pytest.ExitCode.OK, text
    recorded.assert_outcomes(passed=len(PACKAGED))
    recorded.stdout.fnmatch_lines_random([f"*PASSED {SUITE}::{name}[[]tiny+data[]]*" for name in PACKAGED])
    assert "recorded a new baseline of model tiny+data" in text
    lines = text.split("reproducibility (factor")[1].splitlines()[1:]
    table = lines[: next(i for i, line in enumerate(lines) if not line.startswith("  "))]
    assert table[0].split() == ["factor", "expect", "tiny+data"]  # the model's row only (no small Dense row)
    assert [line.split()[0] for line in table[1:]] == list(FACTOR_NAMES)  # the default: every factor
    assert not any("!" in line for line in table)

    pytester.makepyfile(test_own=OWN_TESTS)
    checked = pytester.runpytest_subprocess(*model, "--sinecheck-factor=same-process", "-rs")
    text = _output(checked)
    assert checked.ret == pytest.ExitCode.OK, text
    checked.assert_outcomes(passed=len(PACKAGED) - 3 + 2, skipped=3)  # 3 factors not selected; 2 tests of the user
    assert "factor fresh-process not selected (--sinecheck-factor)" in text
    assert "model tiny+data: vs TensorFlow" in text and "6 identical" in text
    assert "benchmark 'fit/tiny+data'" in text  # pytest-benchmark's group, named after the model


def test_without_a_model_nothing_is_added(pytester: pytest.Pytester) -> None:
    """No model: no packaged test is collected (here: no test at all, exit status 5)."""
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, _output(result)
    assert "model_suite" not in _output(result)


@needs_tensorflow
def test_a_broken_spec_is_one_usage_error_before_anything_runs(pytester: pytest.Pytester) -> None:
    """One-hot labels with a sparse loss: one usage error naming the spec and the problem, in the CLI's words,
    instead of a failure in every test that uses the model."""
    pytester.makepyfile(user_models=MODELS)
    result = pytester.runpytest_subprocess(
        "--sinecheck-model=user_models.py:classifier", "--sinecheck-data=user_models.py:one_hot"
    )
    text = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "Traceback" not in text and "model_suite" not in text
    (line,) = [line for line in text.splitlines() if "sparse_categorical_crossentropy" in line]
    assert line == (
        "ERROR: --sinecheck-model/--sinecheck-data: model spec 'user_models.py:classifier': loss "
        "sparse_categorical_crossentropy takes class ids, but the labels y have shape (32, 3) (float32) for outputs of "
        "shape (None, 3); allowed: class ids of shape (None,), or one-hot labels with loss categorical_crossentropy"
    )
