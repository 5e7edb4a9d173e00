"""Training-loop speed: every engine against Keras ``fit``, per group, measured in the same run.

Run for real with ``pytest tests/benchmarks --benchmark-enable`` (the project's addopts disable timing, so a
plain ``pytest`` runs each benchmark once, as an ordinary test — that is how CI runs them).  Every round is a
call that trains `EPOCHS` more epochs of an already built model, so per-call set-up (fit's data adapter and
callbacks, ~25 ms here; the fused loop's ~0.6 ms) is spread as in a real run: divide a round by `EPOCHS` for
ms/epoch (recorded in ``extra_info``).  pytest-benchmark's table shows each engine's ratio to the fastest of
its group; ``sinecheck bench`` prints the ratio to ``fit`` directly.  One-time costs (tracing, XLA
compilation, fit's first call) are their own group, ``first-call``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sinecheck.checks.bench import EpochRunner, epoch_runner
from sinecheck.core.config import TrainConfig
from sinecheck.core.presets import get_preset

pytest.importorskip("tensorflow")

EPOCHS = 5
ENGINES = ["keras", "fused", "fused-xla", "numpy"]
CASES = {
    "keras-default": get_preset("keras-default").configs[0],
    "tf-explicit": get_preset("tf-explicit").configs[0],
    "batch-sweep-32": get_preset("batch-sweep").configs[0],
    "batch-sweep-64": get_preset("batch-sweep").configs[1],
    "batch-sweep-128": get_preset("batch-sweep").configs[2],
}
BASE = CASES["keras-default"]

#: fit's logged losses per (config id, epochs): the reference every benchmark's first call is checked against.
_FIT_LOSSES: dict[tuple[str, int], np.ndarray] = {}
_FUSED_LOSSES: dict[tuple[str, int], np.ndarray] = {}  # the stand-in where fit is too slow for the default suite


def _reference(config: TrainConfig, epochs: int, *, via_fused: bool = False) -> np.ndarray:
    """fit's per-epoch losses for `config` trained `epochs` epochs (cached; the keras benchmarks fill it).

    With `via_fused`, the fused engine stands in for fit (it is bitwise equal, tests/test_fused*.py): for cases
    too big for fit in the default suite."""
    key = (config.config_id, epochs)
    if key in _FIT_LOSSES:
        return _FIT_LOSSES[key]
    cache, engine = (_FUSED_LOSSES, "fused") if via_fused else (_FIT_LOSSES, "keras")
    if key not in cache:
        cache[key] = epoch_runner(engine, config, epochs_per_call=epochs).first_losses
    return cache[key]


def _check_result(runner: EpochRunner, config: TrainConfig, *, via_fused: bool = False) -> None:
    """What was timed trained and agrees with fit: finite losses, changing over a multi-epoch call, bitwise
    equal to fit's for fused, within rounding (rtol 1e-4) for fused-xla and NumPy."""
    losses = runner.first_losses
    assert losses.shape == (runner.epochs,) and np.isfinite(losses).all(), losses
    if runner.epochs > 1:  # the weights moved (the loss is not monotone on every case: width 1024 rises first)
        assert np.ptp(losses) > 1e-5 * losses[0], f"{runner.engine} did not train: losses {losses}"
    if runner.engine == "keras":
        _FIT_LOSSES.setdefault((config.config_id, runner.epochs), losses)
        return
    if runner.engine == "fused" and via_fused:
        _FUSED_LOSSES.setdefault((config.config_id, runner.epochs), losses)  # it is the stand-in: nothing to compare
        return
    reference = _reference(config, runner.epochs, via_fused=via_fused)
    if runner.engine == "fused":
        np.testing.assert_array_equal(losses, reference, err_msg="fused differs from fit")
    else:
        np.testing.assert_allclose(losses, reference, rtol=1e-4, err_msg=f"{runner.engine} is not close to fit")


def _bench_epochs(benchmark, engine: str, config: TrainConfig, group: str, *, rounds: int) -> None:
    runner = epoch_runner(engine, config, epochs_per_call=EPOCHS)
    benchmark.group = group
    benchmark.extra_info.update(
        {
            "engine": engine,
            "epochs_per_round": EPOCHS,
            "config_id": config.config_id,
            "first_call_s": runner.first_call_s,
        }
    )
    benchmark.pedantic(runner.call, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.stats is not None:  # timing enabled: record the per-epoch figure beside the per-round one
        benchmark.extra_info["ms_per_epoch_median"] = 1000 * benchmark.stats.stats.median / EPOCHS
    _check_result(runner, config)


def _rounds(engine: str) -> int:
    return 3 if engine == "keras" else 10


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("engine", ENGINES)
def test_epoch(benchmark, engine: str, case: str) -> None:
    """Steady-state epochs of each preset and batch size."""
    _bench_epochs(benchmark, engine, CASES[case], f"epoch/{case}", rounds=_rounds(engine))


@pytest.mark.parametrize("engine", ENGINES)
def test_first_call(benchmark, engine: str) -> None:
    """The one-time cost before the first epoch: fit's first call, tracing, XLA compilation."""
    benchmark.group = "first-call/keras-default"
    benchmark.extra_info.update({"engine": engine, "includes_epochs": 1})
    runner = benchmark.pedantic(lambda: epoch_runner(engine, BASE, epochs_per_call=1), rounds=2, iterations=1)
    _check_result(runner, BASE)


def _only_when_measuring(benchmark, heavy: bool) -> None:  # type: ignore[no-untyped-def]
    """The biggest Keras cases (~20 s each) run when benchmarks are measured; with ``--benchmark-disable`` (the
    default suite) the smaller cases already run every line once."""
    if heavy and benchmark.disabled:
        pytest.skip("the largest Keras case runs only when measuring (--benchmark-enable)")


@pytest.mark.parametrize("epochs", [1, 10, 100])
@pytest.mark.parametrize("engine", ["keras", "fused", "fused-xla"])
def test_scaling_epochs(benchmark, engine: str, epochs: int) -> None:
    """A whole training call of 1, 10 and 100 epochs: per-call overhead against per-epoch cost."""
    heavy = epochs == 100
    _only_when_measuring(benchmark, engine == "keras" and heavy)
    runner = epoch_runner(engine, BASE, epochs_per_call=epochs)
    benchmark.group = f"scale-epochs/{epochs}"
    benchmark.extra_info.update({"engine": engine, "epochs_per_round": epochs})
    benchmark.pedantic(runner.call, rounds=2 if engine == "keras" else 5, iterations=1)
    _check_result(runner, BASE, via_fused=heavy and benchmark.disabled)


@pytest.mark.parametrize("n_points", [1_000, 10_000, 100_000])
@pytest.mark.parametrize("engine", ENGINES)
def test_scaling_points(benchmark, engine: str, n_points: int) -> None:
    """Dataset size: steps per epoch grow with it, so per-step overhead dominates every engine."""
    heavy = n_points == 100_000
    _only_when_measuring(benchmark, engine == "keras" and heavy)
    config = BASE.replace(n_points=n_points)
    runner = epoch_runner(engine, config, epochs_per_call=1)
    benchmark.group = f"scale-points/{n_points}"
    benchmark.extra_info.update({"engine": engine, "epochs_per_round": 1})
    benchmark.pedantic(runner.call, rounds=1 if engine == "keras" and n_points > 10_000 else 3, iterations=1)
    _check_result(runner, config, via_fused=heavy and benchmark.disabled)


@pytest.mark.parametrize("units", [32, 128, 512, 1024])
@pytest.mark.parametrize("engine", ENGINES)
def test_scaling_width(benchmark, engine: str, units: int) -> None:
    """Hidden width: the arithmetic grows, the per-step overhead does not."""
    _bench_epochs(
        benchmark, engine, BASE.replace(hidden_units=(units,)), f"scale-width/{units}", rounds=_rounds(engine)
    )


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_fit_per_backend(benchmark, backend: str) -> None:
    """Keras ``fit`` on each Keras 3 backend, in its own process (the backend is process-wide).

    The timed call is a request to that process to train `EPOCHS` epochs (IPC adds well under 1 ms).
    """
    if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[backends]')")
    from sinecheck.isolation.environment import Environment
    from sinecheck.isolation.pool import Worker

    with Worker(Environment(name=backend, env={"KERAS_BACKEND": backend})) as worker:
        payload = {"config": BASE.to_dict(), "epochs_per_call": EPOCHS, "rounds": 1}
        worker.call("bench_fit", payload, timeout=900)  # the worker's first call builds and traces
        benchmark.group = "fit-per-backend/keras-default"
        benchmark.extra_info.update({"backend": backend, "epochs_per_round": EPOCHS})
        reply = benchmark.pedantic(lambda: worker.call("bench_fit", payload, timeout=900), rounds=3, iterations=1)
    losses = np.asarray(reply["first_losses"])  # each backend draws its own initial weights: no bitwise check
    assert losses.shape == (EPOCHS,) and np.isfinite(losses).all() and losses[-1] < losses[0], losses
    assert reply["first_call_s"] > 0 and len(reply["epoch_ms"]) == 1 and reply["epoch_ms"][0] > 0, reply


def test_fused_rerun_skips_tracing(benchmark) -> None:  # type: ignore[no-untyped-def]
    """A second fused run of the same graph shape (another seed and rate) re-uses the traced program: its
    one-time cost is a warm-up call, far below the first run's tracing (moved here from tests/test_fused.py:
    a timing claim belongs with the timings)."""
    from sinecheck.core.compare import compare
    from sinecheck.core.config import OptimizerSpec
    from sinecheck.engines.fused import GraphKey, fused_program
    from sinecheck.engines.registry import train

    base = BASE.replace(epochs=2, hidden_units=(7,), n_points=64)  # a graph shape no other test traces
    fused_program.cache_clear()
    first = train(base.replace(seed=1), engine="fused")
    rerun_config = base.replace(seed=2, optimizer=OptimizerSpec("adam", 0.002))
    benchmark.group = "first-call/fused-rerun"
    benchmark.extra_info.update({"first_trace_s": first.timings.trace_s})
    rerun = benchmark.pedantic(lambda: train(rerun_config, engine="fused"), rounds=3, iterations=1)
    program = fused_program(GraphKey.of(base, jit_compile=False))
    assert program.run.experimental_get_tracing_count() == 1
    assert compare(train(rerun_config, engine="keras"), rerun).identical
    if not benchmark.disabled:  # the timing claim, only when timing is what runs
        assert rerun.timings.trace_s < first.timings.trace_s / 5, (rerun.timings.trace_s, first.timings.trace_s)
