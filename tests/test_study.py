"""The error study: axes, storage and resume, executors (process pool, Dask), statistics, explain, claims."""

from __future__ import annotations

import itertools
import json
import math
import zlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from sinecheck.core.presets import get_preset
from sinecheck.errors import ConfigError
from sinecheck.study.grid import Axis, StudySpec, grid_study, split_values
from sinecheck.study.runner import StudyResult, dead_relu_fraction, run_study
from sinecheck.study.stats import bootstrap_ci, summarize, variance_decomposition

SMALL = dict(seeds=2, epochs=2, initializers=["glorot_uniform", "zeros"], batch_sizes=["32", "full"])


# -- axes and specs ----------------------------------------------------------------------------------------


def test_axis_parsing_keeps_parenthesised_values_whole() -> None:
    axis = Axis.parse("initializer=he_normal, truncated_normal(stddev=0.02, mean=0)")
    assert axis.values == ("he_normal", "truncated_normal(stddev=0.02, mean=0)")
    assert split_values("a,b(c=1,d=2),e") == ["a", "b(c=1,d=2)", "e"]
    base = get_preset("keras-default").configs[0]
    assert Axis("batch_size", ("full",)).apply(base, "full").batch_size == base.n_points
    assert Axis("stddev", ("0.1",)).apply(base, "0.1").kernel_initializer.kwargs() == {"stddev": 0.1}
    assert Axis("learning_rate", ("0.5",)).apply(base, "0.5").optimizer.learning_rate == 0.5
    assert Axis("optimizer", ("sgd",)).apply(base, "sgd").optimizer.name == "sgd"
    assert Axis("shuffle", ("false",)).apply(base, "false").shuffle is False  # any TrainConfig field


@pytest.mark.parametrize(
    ("build", "fragments"),
    [
        (lambda: Axis.parse("colour=red"), ["axis", "'colour'", "batch_size", "initializer"]),
        (lambda: Axis.parse("no-equals-sign"), ["--axis", "NAME=V1,V2"]),
        (lambda: Axis("batch_size", ("8", "8")), ["batch_size", "distinct values"]),
        (lambda: grid_study(initializers=["xavier"]), ["initializer", "'xavier'", "glorot_uniform"]),
        (lambda: grid_study(batch_sizes=["0"]), ["batch_size", "0", ">= 1"]),
        (lambda: grid_study(seeds=0), ["seeds", "one or more"]),
        (lambda: grid_study(engine="turbo"), ["engine", "'turbo'", "fused"]),
    ],
)
def test_bad_study_input_names_the_field(build, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_spec_round_trips_and_counts_runs() -> None:
    spec = grid_study(**SMALL)
    assert spec.runs == 2 * 2 * 2
    assert StudySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert len({c.key for c in spec.cells()}) == 4


# -- statistics ----------------------------------------------------------------------------------------------


def test_variance_decomposition_recovers_known_effects() -> None:
    rng = np.random.default_rng(0)
    a = np.array([0.0, 1.0, 2.0])[:, None, None]
    b = np.array([0.0, 0.5])[None, :, None]
    data = a + b + rng.normal(0, 0.01, (3, 2, 20))
    terms = variance_decomposition(data, ["a", "b"])
    assert terms is not None
    assert math.isclose(sum(t.share for t in terms.values()), 1.0, rel_tol=1e-9)
    # a's marginal means spread 0, 1, 2 (variance 2/3) against b's 0, 0.5 (variance 1/16): ~91 % vs ~9 %
    assert 0.88 < terms["a"].share < 0.93 and 0.07 < terms["b"].share < 0.10
    assert terms["a × b"].share < 0.001 and terms["a"].p < 1e-10
    assert [t.df for t in terms.values()] == [2, 1, 2, 114]  # a, b, a × b, seed (3 × 2 cells × 19)
    noise_only = variance_decomposition(rng.normal(size=(3, 2, 20)), ["a", "b"])
    assert noise_only["seed (within cells)"].share > 0.8
    assert variance_decomposition(np.full((2, 2, 3), np.nan), ["a", "b"]) is None


def test_bootstrap_interval_and_summary() -> None:
    values = np.array([0.2, 0.25, 0.3, 0.22, 0.28, 0.26])
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values)  # reproducible
    assert bootstrap_ci(np.array([0.4, 0.4, 0.4])) == pytest.approx((0.4, 0.4))  # zero width, not NaN
    s = summarize(np.array([0.1, np.nan, 0.3]))
    assert (s.n, s.diverged) == (2, 1) and math.isclose(s.mean, 0.2)


def test_dead_relu_fraction() -> None:
    x = np.linspace(0, 10, 11).reshape(-1, 1)
    kernel = np.array([[1.0, -1.0, 0.5, -2.0]])
    bias = np.array([0.0, 0.0, -100.0, 30.0])  # unit 2 never fires on [0, 10]; unit 3 fires for x < 15
    out = [np.ones((4, 1)), np.zeros(1)]
    assert dead_relu_fraction([kernel, bias, *out], x) == 0.5


# -- running, storing, resuming ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("study")
    spec = grid_study(**SMALL)
    return spec, out, run_study(spec, out)


def test_study_stores_every_run_and_resumes(small_study) -> None:
    spec, out, result = small_study
    assert len(result.records) == spec.runs and result.resumed == 0
    assert len(list((out / "runs").rglob("seed-*.json"))) == spec.runs
    stored = json.loads(next((out / "runs").rglob("seed-0.json")).read_text())
    assert list(stored) == [  # the run file's layout (as before metrics were typed)
        *("config_id", "seed", "engine", "metrics", "diverged", "diverged_epoch"),
        *("dead_relu_init", "dead_relu_final", "fit_s", "total_s", "cell"),
    ]
    assert list(stored["metrics"]) == ["mse_test", "mse_train", "max_err_test", "max_err_train", "final_loss"]
    again = run_study(spec, out)
    assert again.resumed == spec.runs
    assert again.records == result.records
    lost = next((out / "runs").rglob("seed-1.json"))
    lost.unlink()  # an interrupted run: only it is trained again, to the same bits
    partial = run_study(spec, out)
    assert partial.resumed == spec.runs - 1
    assert _untimed(partial.records) == _untimed(result.records)


def _untimed(records: dict) -> dict:
    return {key: {k: v for k, v in rec.items() if not k.endswith("_s")} for key, rec in records.items()}


def test_zeros_initializer_is_the_pathological_control(small_study) -> None:
    spec, _, result = small_study
    zeros = [c for c in spec.cells() if c.values[0] == "zeros"]
    for cell in zeros:
        assert np.all(result.values("dead_relu_init", cell) == 1.0)  # all-zero weights: no unit ever active
        curves = np.stack([result.curves[(cell.index, s)] for s in spec.seeds])
        assert np.ptp(curves, axis=1).max() < 1e-3  # a flat line, whatever the seed


def test_a_directory_of_another_study_is_refused(small_study) -> None:
    _, out, _ = small_study
    other = grid_study(**{**SMALL, "seeds": 3})
    with pytest.raises(ConfigError, match="holds another study"):
        run_study(other, out)


def test_process_pool_gives_the_same_bits(small_study, tmp_path: Path) -> None:
    spec, _, result = small_study
    pooled = run_study(spec, tmp_path, workers=2)
    assert pooled.records.keys() == result.records.keys()
    for key, record in result.records.items():
        assert pooled.records[key]["metrics"] == record["metrics"], key
        assert np.array_equal(pooled.curves[key], result.curves[key])


def test_dask_cluster_runs_the_study(small_study, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    spec, _, result = small_study
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        via_dask = run_study(spec, tmp_path, scheduler=cluster.scheduler_address)
    for key, record in result.records.items():
        assert via_dask.records[key]["metrics"] == record["metrics"], key


# -- explain and claims --------------------------------------------------------------------------------------


def test_explain_shapley_values_add_up_to_the_gap() -> None:
    pytest.importorskip("tensorflow")
    from sinecheck.study.explain import differing_factors, explain

    a, b = (
        get_preset("keras-default").configs[0].replace(epochs=2),
        get_preset("tf-explicit").configs[0].replace(epochs=2),
    )
    assert [f.name for f in differing_factors(a, b)] == ["learning_rate", "kernel_initializer"]
    e = explain(a, b, seeds=range(3), a_name="keras-default", b_name="tf-explicit")
    per_seed_sum = np.sum([x.per_seed for x in e.mse_attribution], axis=0)
    assert np.allclose(per_seed_sum, e.gap.per_seed, atol=1e-12)  # Shapley efficiency, seed by seed
    curve_sum = np.sum([x.per_seed for x in e.curve_attribution], axis=0)
    assert np.allclose(curve_sum, e.curve_gap.per_seed, atol=1e-12)
    assert "learning_rate" in e.sentence() and "seed noise" in e.sentence()
    with pytest.raises(ConfigError, match="differ in no factor"):
        explain(a, a.replace(seed=5), seeds=range(2))


def test_claims_measured_on_a_small_study(small_study) -> None:
    """The claims measured on real runs (2 epochs, 3 seeds): what the measurement itself must show.  The verdict
    rules are pinned on synthetic data in tests/test_claims.py."""
    from sinecheck.study import claims as c

    spec, _, grid = small_study
    base = spec.base
    runs = c.SeedRuns("fused")
    looks = (3,)
    explicit = get_preset("tf-explicit").configs[0].replace(epochs=base.epochs)
    consistency = c.claim_consistency(runs, base, explicit, looks=looks)
    assert consistency.evidence is not None and consistency.evidence.seeds == 3 == consistency.evidence.cap
    assert consistency.numbers["sd_ratio"] == pytest.approx(
        consistency.numbers["sd"]["tf-explicit"] / consistency.numbers["sd"]["keras-default"]
    )
    trained = runs.trained
    c.claim_lr_with_small_stddev_fits_better(runs, base, explicit, looks=looks)
    assert runs.trained == trained  # the same seeds of the same configs: reused, not trained again
    ulp = c.claim_one_ulp(runs, base, looks=looks, first_look=3)
    # a weight of a unit dead at the start stays dead when moved one ULP away from zero: nothing else changes
    assert ulp.numbers["bitwise_equal_mse"] >= ulp.numbers["perturbed_unit_dead_at_init"]
    assert 0.3 < ulp.numbers["dead_relu_init"] < 0.7  # x >= 0, zero biases: units with a negative weight
    loop_configs = get_preset("batch-sweep").with_overrides(epochs=base.epochs).configs
    loop, fresh = c.article_loop(runs, loop_configs, seed=0)
    assert loop[0] == fresh[0] and loop[1:] != fresh[1:]  # only later sizes continue training
    gradient = c.claim_larger_batches_accurate_gradient(base, batch_sizes=(8, 64, 512), checkpoints=(0, 1), looks=looks)
    for errors in gradient.numbers["relative_gradient_error"].values():
        assert list(errors.values()) == sorted(errors.values(), reverse=True)  # fewer points, worse estimate
    permutation = c.claim_reused_permutation(runs, base, looks=looks)
    if metadata.version("keras").startswith("3.15"):  # measured with Keras 3.15 + TF 2.21: seeded fit, one order
        assert permutation.numbers["distinct_orders_per_run"] == [1, 1, 1]
    family = c.judge_family([consistency, ulp, gradient, permutation, c.claim_initializer_and_batch_matter(grid)])
    text = c.render_claims(family, markdown=True)
    assert text.count("\n| ") == 5 and text.splitlines()[-1].startswith("decided: ")


def test_judge_claims_judges_what_the_results_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which claims are judged from which results, in order, each with its source; Holm over the family."""
    from types import SimpleNamespace

    from sinecheck.study import analysis
    from sinecheck.study.claims import Claim, ClaimVerdict, Direction, Evidence
    from sinecheck.study.grid import sweep_study

    def stub(name: str, p: float):  # type: ignore[no-untyped-def]
        ev = Evidence("x", 1.0, 0.5, 1.5, 0.95, p, None, Direction.GREATER, 10, 200, 5)
        return lambda *a, **k: Claim(name, name, "stub", "stub", ClaimVerdict.INCONCLUSIVE, {}, "", ev)

    trained = ("claim_consistency", "claim_lr_with_small_stddev_fits_better", "claim_stddev_drastic")
    trained += ("claim_larger_batches_accurate_gradient", "claim_article_batch_loop", "claim_one_ulp")
    trained += ("claim_implementation_factors", "claim_reused_permutation")
    for name in trained:
        monkeypatch.setattr(analysis, name, stub(name, 0.004))
    monkeypatch.setattr(
        analysis,
        "fresh_process_runs",
        lambda base: {"default-1": {"digest": "a", "mse": 0.2}, "default-2": {"digest": "a", "mse": 0.2}},
    )
    monkeypatch.setattr(
        analysis.SeedRuns,
        "result",
        lambda self, cfg, engine=None: SimpleNamespace(digests={"final_weights": "a"}, engine="fused"),
    )
    sweep = sweep_study(Axis("stddev", ("0.01", "1.0")), seeds=6, epochs=2)
    steep = _synthetic(sweep, lambda v, s: float(v[0]) + 0.001 * _noise(v, s))
    plan = SimpleNamespace(grid=GRID)
    claims = analysis.judge_claims(plan, _grid(init=1.0, batch=1.0), [steep], None)  # type: ignore[arg-type]
    assert [x.id for x in claims] == [
        "claim_consistency",
        "seeding-reproduces",
        "claim_lr_with_small_stddev_fits_better",
        "initializer-and-batch-size",
        "smaller-batches-fit-better",
        "claim_stddev_drastic",
        *trained[3:],
    ]
    stubbed = [x for x in claims if x.id.startswith("claim_")]
    assert all(x.verdict == V_SUPPORTED for x in stubbed)
    # eleven hypotheses (8 stubs, the blocked F test, the batch trend's effect and equivalence); the two grid
    # effects have smaller p, so Holm multiplies the stubs' 0.004 by 11 - 2 = 9
    assert [x.evidence.p_effect_holm for x in stubbed] == [pytest.approx(0.036)] * 8  # type: ignore[union-attr]
    seeding = claims[1]
    assert seeding.verdict == V_SUPPORTED and seeding.numbers["fused_in_process_equals_fit"] is True
    one_axis = SimpleNamespace(grid=sweep)  # not an initializer × batch grid: no grid claims
    ids = [x.id for x in analysis.judge_claims(one_axis, steep, [], None, processes=False)]  # type: ignore[arg-type]
    assert "initializer-and-batch-size" not in ids and "seeding-reproduces" not in ids and len(ids) == 7


# -- synthetic study results -----------------------------------------------------------------------------------

V_SUPPORTED, V_NOT, V_INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _synthetic(spec: StudySpec, value) -> StudyResult:  # type: ignore[no-untyped-def]
    """A StudyResult whose held-out MSE and final loss are ``value(cell values, seed)`` (no training)."""
    records, curves = {}, {}
    for cell in spec.cells():
        for seed in spec.seeds:
            v = float(value(cell.values, seed))
            records[(cell.index, seed)] = {"diverged": False, "metrics": {"mse_test": v, "final_loss": v}}
            curves[(cell.index, seed)] = np.zeros(1)
    return StudyResult(spec, records, curves)  # type: ignore[arg-type]


def _noise(*key: object) -> float:
    """A standard normal draw fixed by `key` (crc32: no hash randomisation)."""
    return float(np.random.default_rng(zlib.crc32(repr(key).encode())).normal())


GRID = grid_study(seeds=8, epochs=2, initializers=["glorot_uniform", "he_normal", "zeros"], batch_sizes=["8", "32"])
EFFECT = {"glorot_uniform": 0.0, "he_normal": 1.0, "zeros": 5.0, "8": 0.0, "32": 1.0}


def _grid(*, init: float, batch: float, noise: float = 0.01) -> StudyResult:
    rng = np.random.default_rng(7)
    table = {key: rng.normal(size=len(GRID.seeds)) for key in itertools.product(*(a.values for a in GRID.axes))}
    return _synthetic(
        GRID,
        lambda values, seed: init * EFFECT[values[0]] + batch * EFFECT[values[1]] + noise * table[values][seed],
    )
