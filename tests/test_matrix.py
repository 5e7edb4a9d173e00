"""The reproducibility matrix: expectations that must hold everywhere, negative controls, and findings."""

from __future__ import annotations

import json
import sys
from importlib import metadata

import pytest

from sinecheck.checks.factors import FACTORS, Expectation, factor_by_name, select_factors
from sinecheck.checks.matrix import Cell, Evidence, Matrix, matrix_rows, matrix_workers, plan_runs
from sinecheck.core.compare import Verdict
from sinecheck.errors import ConfigError
from sinecheck.isolation.forkserver import forkable

pytest.importorskip("tensorflow")

EXPECTING = [f.name for f in FACTORS if f.expect is not Expectation.MEASURED]
MEASURED_FACTORS = [f.name for f in FACTORS if f.expect is Expectation.MEASURED]


@pytest.mark.parametrize("factor", EXPECTING)
def test_expectation_holds(sinecheck_matrix: Matrix, factor: str) -> None:
    """Same seed + same environment is IDENTICAL; no seed and injected noise are NOT (negative controls:
    if they came out identical, the detector would be broken)."""
    for label, _ in sinecheck_matrix.rows:
        cell = sinecheck_matrix.cell(factor, label)
        cell.check()
        assert cell.verdict is not None


@pytest.mark.parametrize("factor", MEASURED_FACTORS)
def test_measured_factor_has_a_verdict_or_a_reason(sinecheck_matrix: Matrix, factor: str) -> None:
    for label, _ in sinecheck_matrix.rows:
        cell = sinecheck_matrix.cell(factor, label)
        if cell.skipped:
            assert "not installed" in cell.skipped and factor_by_name(factor).requires
            continue
        assert cell.error is None, cell.error
        ev = cell.evidence
        assert ev is not None
        # the verdict agrees with its own evidence
        assert (cell.verdict is Verdict.IDENTICAL) == (ev.digest_a == ev.digest_b and ev.max_abs == 0)
        if cell.verdict is Verdict.ULP:
            assert ev.max_ulp <= 16
        print(f"{factor} / {label}: {cell.short()}  ({ev.summary})")


def test_same_seed_cells_really_compared_two_runs(sinecheck_matrix: Matrix) -> None:
    """An IDENTICAL verdict must come from two real runs, not one run compared with itself: the negative
    control on the same row, made by the same machinery, differs."""
    label = sinecheck_matrix.rows[0][0]
    same = sinecheck_matrix.cell("same-process", label).evidence
    unseeded = sinecheck_matrix.cell("no-seed", label).evidence
    assert same is not None and unseeded is not None
    assert same.digest_a == same.digest_b
    assert unseeded.digest_a != unseeded.digest_b


def test_epoch_reshuffle_finding(sinecheck_matrix: Matrix) -> None:
    (finding,) = [f for f in sinecheck_matrix.findings if f.name == "epoch-reshuffle/default"]
    ev = finding.evidence
    # The probe must see unseeded runs reshuffle; if it did not, it could not tell us anything about seeds.
    assert ev["unseeded_same_every_epoch"] is False
    assert len(ev["seeded_first_indices"]) == 3 and all(len(o) == 10 for o in ev["seeded_first_indices"])
    same = all(o == ev["seeded_first_indices"][0] for o in ev["seeded_first_indices"])
    assert same == ev["seeded_same_every_epoch"]  # the flag says what the recorded orders show
    if metadata.version("keras").startswith("3.15"):  # measured (Keras 3.15, TF 2.21): seeded fit reuses one order
        assert ev["seeded_same_every_epoch"] is True
    assert ("SAME permutation" in finding.statement) == ev["seeded_same_every_epoch"]
    print(finding.statement)


def test_matrix_round_trips_through_json(sinecheck_matrix: Matrix) -> None:
    data = json.loads(json.dumps(sinecheck_matrix.to_dict()))
    back = Matrix.from_dict(data)
    assert json.loads(json.dumps(back.to_dict())) == data
    assert back.table() == sinecheck_matrix.table()
    assert [c.verdict for c in back.cells] == [c.verdict for c in sinecheck_matrix.cells]
    cell = data["cells"][0]
    for key in ("factor", "row", "verdict", "expect", "max_abs", "max_ulp", "digest_a", "digest_b"):
        assert key in cell


@pytest.mark.sinecheck_factor("fresh-process")
def test_user_style_marker(sinecheck_cell: Cell) -> None:
    sinecheck_cell.check()
    assert sinecheck_cell.verdict is Verdict.IDENTICAL


def _evidence(*, max_ulp: int = 0, max_abs: float = 0.0) -> Evidence:
    return Evidence("final/layer0/kernel", max_abs, 0.0, max_ulp, 1, 4, None, None, "a", "b", None, None, None, "", "")


def test_broken_expectation_fails_with_the_numbers() -> None:
    factor = factor_by_name("same-process")
    cell = Cell(factor, "row", Verdict.ULP, _evidence(max_ulp=3, max_abs=1e-9), report="the comparison table")
    assert cell.meets_expectation is False
    with pytest.raises(AssertionError, match="expected identical, got ulp(.|\n)*the comparison table"):
        cell.check()
    control = Cell(factor_by_name("no-seed"), "row", Verdict.IDENTICAL, _evidence())
    with pytest.raises(AssertionError, match="expected not identical, got identical"):
        control.check()
    assert (
        Cell(factor_by_name("xla"), "row", Verdict.DIVERGENT, _evidence(max_abs=1.0)).check().meets_expectation is None
    )
    assert Cell(factor, "row", error="worker crashed").short() == "error"
    with pytest.raises(AssertionError, match="no verdict: worker crashed"):
        Cell(factor, "row", error="worker crashed").check()


def test_factor_selection_and_rows() -> None:
    assert [f.name for f in select_factors(["xla", "same-process"])] == ["same-process", "xla"]
    with pytest.raises(ConfigError, match="factor.*'threads-3'.*threads-1"):
        select_factors(["threads-3"])
    labels = [label for label, _ in matrix_rows(epochs=2)]
    assert labels == ["keras-default", "tf-explicit", "batch-sweep/32", "batch-sweep/64", "batch-sweep/128", "small"]
    assert all(cfg.epochs == 2 for _, cfg in matrix_rows(epochs=2))
    assert {f.expect for f in FACTORS} == set(Expectation)


def test_each_run_is_planned_once_and_the_hash_seed_factor_shares_the_default_worker() -> None:
    """Runs that several factors share are trained once; the pythonhashseed factor's 0 side is the default worker
    (every worker hashes with seed 0): the factors that need no extra package start 8 workers, and 3 of them (the
    second fresh process, oneDNN off, hash seed 1) are new interpreters — the others fork from one server."""
    rows = matrix_rows(epochs=2)[:1]
    active = [f for f in FACTORS if not f.missing()]
    phases = plan_runs(rows, active)
    runs = [side for phase in phases for group in phase.values() for _, side, _ in group]
    assert len(runs) == len(set(runs))
    hash_seed = factor_by_name("pythonhashseed")
    assert hash_seed.a == factor_by_name("same-process").a
    workers = matrix_workers(select_factors([f.name for f in FACTORS if not f.requires]))
    assert len(workers) == 8
    assert sum(1 for env, instance in workers if not forkable(env, instance=instance, python=sys.executable)) == 3


def test_a_model_that_hangs_on_string_hashing_fails_the_fresh_process_check() -> None:
    """Negative control for the hash seed: data ordered by a set of strings.  The default workers hash with seed 0,
    the fresh-process factor's second process with Python's random seed, so the promise breaks, as it would for the
    user; the pythonhashseed factor (0 vs 1) measures the dependence; in one process the run reproduces."""
    from sinecheck.checks.matrix import run_matrix
    from sinecheck.core.config import TrainConfig

    config = TrainConfig(data="tests/user_hashing.py:vocabulary", epochs=1, n_points=64, shuffle=False)
    factors = [factor_by_name(n) for n in ("same-process", "fresh-process", "pythonhashseed")]
    matrix = run_matrix([("vocabulary", config)], factors, probe_shuffle=False, locate="none")
    verdicts = {name: matrix.cell(name, "vocabulary").verdict for name in ("same-process", "fresh-process")}
    assert verdicts == {"same-process": Verdict.IDENTICAL, "fresh-process": Verdict.DIVERGENT}, matrix.table()
    assert matrix.cell("pythonhashseed", "vocabulary").verdict is Verdict.DIVERGENT, matrix.table()
    assert [f"{c.factor.name}" for c in matrix.violations()] == ["fresh-process"]


def test_cli_matrix_writes_json_and_markdown(tmp_path, capsys) -> None:
    from sinecheck.cli import main

    out_json, out_md = tmp_path / "m.json", tmp_path / "m.md"
    status = main(
        [
            "matrix",
            "--preset",
            "keras-default",
            "--no-small",
            "--factor",
            "same-process",
            "--factor",
            "no-seed",
            "--epochs",
            "1",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "same-process" in printed and "keras-default" in printed and "expectations broken: 0" in printed
    data = json.loads(out_json.read_text())
    cells = {(c["factor"], c["row"]): c for c in data["cells"]}
    same = cells[("same-process", "keras-default")]
    assert same["verdict"] == "identical" and same["digest_a"] == same["digest_b"] and same["max_ulp"] == 0
    unseeded = cells[("no-seed", "keras-default")]
    assert unseeded["verdict"] != "identical" and unseeded["meets_expectation"] is True
    assert data["rows"]["keras-default"]["epochs"] == 1
    assert any("permutation" in f["statement"] for f in data["findings"])
    markdown = out_md.read_text()
    assert "| factor | expect | keras-default |" in markdown and "| same-process | identical | identical |" in markdown


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["matrix", "--factor", "threads-3"], "factor: invalid value 'threads-3'"),
        (["matrix", "--parallel", "0"], "--parallel: invalid value 0"),
        (["matrix", "--epochs", "0"], "epochs: invalid value 0"),
    ],
)
def test_cli_matrix_bad_arguments(argv: list[str], needle: str, capsys) -> None:
    from sinecheck.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_matrix_lists_factors(capsys) -> None:
    from sinecheck.cli import main

    assert main(["matrix", "--list-factors"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [f.name for f in FACTORS]


def test_a_broken_promise_says_where_the_runs_parted() -> None:
    """A factor that promises IDENTICAL but changes the shuffling breaks; its failure message carries the first
    divergence (replayed step by step), so the reader sees where — not only that — the runs parted."""
    from sinecheck.checks.factors import Factor, Side
    from sinecheck.checks.matrix import SMALL, run_matrix

    promise = Factor(
        "shuffle-promised",
        "shuffle on vs off, wrongly promised identical",
        Side(),
        Side(changes=(("shuffle", False),)),
        Expectation.IDENTICAL,
    )
    matrix = run_matrix([("small", SMALL.replace(epochs=1))], [promise], probe_shuffle=False)
    (cell,) = matrix.cells
    assert cell.meets_expectation is False
    with pytest.raises(AssertionError) as info:
        cell.check()
    message = str(info.value)
    assert "expected identical, got" in message
    assert "config: A: Dense(32,relu)→1" in message and "shuffle=False" in message
    assert "mismatched" in message and "digest a" in message and "tolerance:" in message
    assert "first divergence at epoch 1, batch 1 (step 1), stage: shuffle order" in message
    assert "max |Δw| grows to" in message
    named = Cell(factor_by_name("fresh-process"), "small", cell.verdict, cell.evidence, cell.report)
    back = Cell.from_dict(json.loads(json.dumps(named.to_dict())))  # survives the xdist hand-over
    assert back.first_divergence == cell.first_divergence is not None
    with pytest.raises(AssertionError, match="stage: shuffle order"):
        back.check()


class _ProbeWorker:
    """Stands in for a worker process: answers the shuffle probe with `n` sample indices per epoch (a new
    permutation each epoch without a seed)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fingerprint = {"keras_impl": "keras", "keras": "3.15.1", "tensorflow": "2.21.0"}

    def call(self, kind: object, payload: dict) -> dict:
        seeded = payload["config"].get("seed") is not None
        orders = [list(range(self.n)) if seeded or e % 2 else list(reversed(range(self.n))) for e in range(3)]
        return {"orders": orders}


class _ProbePool:
    def __init__(self, n: int) -> None:
        self.worker = _ProbeWorker(n)

    def get(self, environment: object, instance: int = 0) -> _ProbeWorker:
        return self.worker


def test_shuffle_finding_describes_what_was_probed_on_a_user_model() -> None:
    """On a user's model and data the finding names the row, the samples the probe really saw (the data's, not the
    sine default of 1000) and the batch size, and says a probe model stood in for the user's model; on a preset
    the statement is unchanged."""
    from sinecheck.checks.matrix import shuffle_findings
    from sinecheck.core.config import TrainConfig

    model = TrainConfig(model="examples/models.py:lstm_next", data="examples/models.py:sine_windows", batch_size=16)
    (finding,) = shuffle_findings(_ProbePool(64), model, factors=[])
    assert "1000 samples" not in finding.statement, finding.statement
    assert "64 samples" in finding.statement and "batch 16" in finding.statement
    assert "lstm_next+sine_windows" in finding.statement and "stood in" in finding.statement
    assert finding.evidence["samples"] == 64 and finding.evidence["batch_size"] == 16
    (preset,) = shuffle_findings(_ProbePool(64), TrainConfig(n_points=64), factors=[])
    assert preset.statement == (
        "Keras 3.15.1 on TF 2.21.0: with a seed, every epoch of fit(shuffle=True) used the SAME permutation; "
        "without a seed, a new one each epoch (seed 0, 3 epochs, 64 samples, batch 32)"
    )
