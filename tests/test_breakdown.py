"""`sinecheck bench --breakdown`: every part measured, counted as the matrix's plan pays it, and summed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sinecheck.checks.breakdown import Breakdown, Part, measure_breakdown
from sinecheck.checks.factors import factor_by_name
from sinecheck.checks.matrix import SMALL
from sinecheck.cli import main


def test_render_sums_each_part_times_its_count() -> None:
    parts = (Part("a", 2.0, 3), Part("b", 0.5), Part("c", 0.25, 4))
    breakdown = Breakdown("row", SMALL, parts, workers_new=2, workers_forked=1, runs=4)
    text = breakdown.render()
    assert "2 new interpreters" in text and "1 forked workers" in text and "4 runs" in text
    last = text.splitlines()[-1]
    assert last.startswith("sum over a matrix") and last.endswith("7.0")  # 2×3 + 0.25×4; b has no count
    assert [p["name"] for p in breakdown.to_dict()["parts"]] == ["a", "b", "c"]  # type: ignore[index]


@pytest.mark.timeout(300)
def test_breakdown_counts_follow_the_matrix_plan() -> None:
    """Three factors: the default worker (forked), its second instance and threads-1 (forked), so two new
    interpreters (one is the fork server), two forked workers, and 4 runs (base, repeat, instance 1, threads-1)."""
    factors = [factor_by_name(n) for n in ("same-process", "fresh-process", "threads-1")]
    breakdown = measure_breakdown("small", SMALL.replace(epochs=2), factors=factors)
    assert (breakdown.workers_new, breakdown.workers_forked, breakdown.runs) == (2, 2, 4)
    by_name = {p.name: p for p in breakdown.parts}
    assert by_name["new interpreter: start, TensorFlow import, ready"].per_matrix == 2
    assert by_name["forked worker: fork and ready"].per_matrix == 2
    assert by_name["first run of a worker: trace/compile (1st epoch less a steady one)"].per_matrix == 3
    assert by_name["each further run of a worker: training epochs"].per_matrix == 1
    assert by_name["comparison of two runs"].per_matrix == 3
    assert all(p.seconds >= 0 for p in breakdown.parts)
    # a fork is cheaper than a new interpreter's start: the reason the fork server exists
    assert (
        by_name["forked worker: fork and ready"].seconds
        < by_name["new interpreter: start, TensorFlow import, ready"].seconds
    )


@pytest.mark.timeout(300)
def test_bench_breakdown_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "breakdown.json"
    assert main(["bench", "--breakdown", "--epochs", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keras-default: 1 epochs, batch 32" in text and "sum over a matrix" in text
    data = json.loads(out.read_text())
    (only,) = data["breakdowns"]
    assert only["label"] == "keras-default" and only["config"]["epochs"] == 1
    assert {"new_interpreters", "forked_workers", "runs"} <= set(only["matrix"])
    assert data["fingerprint"]["tensorflow"]


def test_epochs_without_breakdown_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--epochs", "3"]) == 2
    assert "--epochs: invalid value 3; allowed: only with --breakdown" in capsys.readouterr().err
