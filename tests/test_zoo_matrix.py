"""Every zoo model through a short matrix (issue 14): the same seed reproduces across fresh processes; the
compile factors (xla, lr) reach each factory-compiled model — read back from both sides — or are refused with the
reason, never "identical because nothing happened"."""

from __future__ import annotations

import importlib.util

import pytest
from zoo_support import MODELS, zoo_spec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")

EPOCHS = 1  # what changes bits shows from the first epoch; the suite stays under 10 minutes


@pytest.fixture(scope="module")
def zoo_matrix():  # type: ignore[no-untyped-def]
    from sinecheck.checks.factors import factor_by_name
    from sinecheck.checks.matrix import run_matrix

    rows = [(name, zoo_spec(name).config(epochs=EPOCHS)) for name in MODELS]
    factors = [factor_by_name(n) for n in ("fresh-process", "xla", "lr")]  # same process: test_zoo_baselines
    return run_matrix(rows, factors, parallel=1, probe_shuffle=False, locate="none")


@pytest.mark.parametrize("name", MODELS)
def test_the_same_seed_reproduces(zoo_matrix, name: str) -> None:  # type: ignore[no-untyped-def]
    zoo_matrix.cell("fresh-process", name).check()  # raises with the comparison table if the runs differ


@pytest.mark.parametrize("name", MODELS)
def test_compile_factors_reach_the_model_or_are_refused(zoo_matrix, name: str) -> None:  # type: ignore[no-untyped-def]
    for factor in ("xla", "lr"):
        cell = zoo_matrix.cell(factor, name)
        assert cell.error is None, f"{factor} / {name}: {cell.error}"
        if cell.short() == "refused":
            assert cell.skipped is not None and "allowed" in cell.skipped, cell.skipped
            continue
        assert cell.evidence is not None and cell.evidence.reached, f"{factor} / {name}: no read-back change"
        expected = {"xla": "jit_compile False → True", "lr": "learning_rate"}[factor]
        assert expected in cell.evidence.reached, cell.evidence.reached
