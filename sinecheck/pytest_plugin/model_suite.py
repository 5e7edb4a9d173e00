"""The packaged model suite: what ``pytest --sinecheck-model=models.py:build`` runs on your model, with no test file
of yours.  The plugin adds this module to the session whenever a model is given (``--sinecheck-model`` or the ini key
``sinecheck_models``), beside any tests of yours; each test runs once per model, its id ending in the model's name
(``test_fresh_process_identical[build]``).  They use the fixtures your own tests can use — `sinecheck_matrix` (the
matrix, trained once per session and shared by pytest-xdist workers), `sinecheck_baseline`, `sinecheck_model` — so
they train nothing twice.  ``-m "not sinecheck_suite"`` leaves them out; ``--sinecheck-factor`` narrows the matrix
(a test whose factor is not selected is skipped and says so).
"""

from __future__ import annotations

from typing import Any

import pytest

from sinecheck.checks.bench import epoch_runner
from sinecheck.checks.matrix import Cell, Matrix
from sinecheck.core.specs import ModelSpec

pytestmark = [
    pytest.mark.sinecheck_suite,
    # Keras 3.15's tensor-to-NumPy conversion under NumPy 2 (keras/src/backend/tensorflow/core.py): Keras's own
    # warning, seven times per session in the user's summary, about nothing the user's code does.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

#: Factors with a test of their own here; `test_matrix_row` checks the rest of the row.
OWN_TESTS = ("same-process", "fresh-process", "no-seed", "injected-noise")
#: Timed rounds of one epoch of ``fit`` (a single run with ``--benchmark-disable``).
BENCH_ROUNDS = 3


def _cell(matrix: Matrix, factor: str, model: ModelSpec) -> Cell:
    """The model's cell of `factor`; a skip that says why when the factor was not selected or could not run."""
    if factor not in [f.name for f in matrix.factors]:
        pytest.skip(f"factor {factor} not selected (--sinecheck-factor)")
    cell = matrix.cell(factor, model.label)
    if cell.skipped:
        pytest.skip(f"{factor}: {cell.skipped}")
    return cell


def test_same_process_identical(sinecheck_matrix: Matrix, sinecheck_model: ModelSpec) -> None:
    """The same seed, trained twice in one process: bit for bit the same weights and predictions."""
    _cell(sinecheck_matrix, "same-process", sinecheck_model).check()


def test_fresh_process_identical(sinecheck_matrix: Matrix, sinecheck_model: ModelSpec) -> None:
    """The same seed in a second, fresh process: bit for bit the same."""
    _cell(sinecheck_matrix, "fresh-process", sinecheck_model).check()


def test_no_seed_differs(sinecheck_matrix: Matrix, sinecheck_model: ModelSpec) -> None:
    """Negative control: two runs without a seed must differ, or the comparison could not tell runs apart."""
    _cell(sinecheck_matrix, "no-seed", sinecheck_model).check()


def test_injected_noise_differs(sinecheck_matrix: Matrix, sinecheck_model: ModelSpec) -> None:
    """Negative control: an unseeded GaussianNoise on the outputs, trained twice, must differ."""
    _cell(sinecheck_matrix, "injected-noise", sinecheck_model).check()


def test_matrix_row(sinecheck_matrix: Matrix, sinecheck_model: ModelSpec) -> None:
    """The model's other factors: each expectation holds (``lr``, twice the model's own learning rate, must change
    the bits) and each measured factor has a verdict — or a stated reason (not installed, refused by the model)."""
    row = [c for c in sinecheck_matrix.cells if c.row == sinecheck_model.label and c.factor.name not in OWN_TESTS]
    for cell in row:
        print(f"{cell.factor.name} / {cell.row}: {cell.skipped or cell.short()}")
    for cell in row:
        if not cell.skipped:
            cell.check()


def test_golden_baseline(sinecheck_baseline: Any, sinecheck_model: ModelSpec) -> None:
    """The model's baseline set (seeds 0-2, 5 and 20 epochs) against its golden baseline for this environment (or the
    latest older one): ``--sinecheck-baseline=record`` stores one, ``check`` (the default) compares."""
    sinecheck_baseline.verify(sinecheck_model)


def test_fit_benchmark(request: pytest.FixtureRequest, sinecheck_model: ModelSpec) -> None:
    """One epoch of ``fit`` on the model (its default config), timed by pytest-benchmark in the group
    ``fit/<model>`` (after one untimed first call, which traces); a single run with ``--benchmark-disable``."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.skip("pytest-benchmark is not active (-p no:benchmark)")
    runner = epoch_runner("keras", sinecheck_model.config(), epochs_per_call=1)
    benchmark.group = f"fit/{sinecheck_model.label}"
    benchmark.extra_info.update({"epochs_per_round": 1, "first_call_s": runner.first_call_s})
    benchmark.pedantic(runner.call, rounds=BENCH_ROUNDS, iterations=1, warmup_rounds=0)
