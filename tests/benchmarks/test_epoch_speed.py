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

import pytest

from sinecheck.checks.bench import epoch_runner
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
    benchmark.pedantic(lambda: epoch_runner(engine, BASE, epochs_per_call=1), rounds=2, iterations=1)


def _only_when_measuring(benchmark, heavy: bool) -> None:  # type: ignore[no-untyped-def]
    """The biggest Keras cases (~20 s each) run when benchmarks are measured; with ``--benchmark-disable`` (the
    default suite) the smaller cases already run every line once."""
    if heavy and benchmark.disabled:
        pytest.skip("the largest Keras case runs only when measuring (--benchmark-enable)")


@pytest.mark.parametrize("epochs", [1, 10, 100])
@pytest.mark.parametrize("engine", ["keras", "fused", "fused-xla"])
def test_scaling_epochs(benchmark, engine: str, epochs: int) -> None:
    """A whole training call of 1, 10 and 100 epochs: per-call overhead against per-epoch cost."""
    _only_when_measuring(benchmark, engine == "keras" and epochs == 100)
    runner = epoch_runner(engine, BASE, epochs_per_call=epochs)
    benchmark.group = f"scale-epochs/{epochs}"
    benchmark.extra_info.update({"engine": engine, "epochs_per_round": epochs})
    benchmark.pedantic(runner.call, rounds=2 if engine == "keras" else 5, iterations=1)


@pytest.mark.parametrize("n_points", [1_000, 10_000, 100_000])
@pytest.mark.parametrize("engine", ENGINES)
def test_scaling_points(benchmark, engine: str, n_points: int) -> None:
    """Dataset size: steps per epoch grow with it, so per-step overhead dominates every engine."""
    _only_when_measuring(benchmark, engine == "keras" and n_points == 100_000)
    config = BASE.replace(n_points=n_points)
    runner = epoch_runner(engine, config, epochs_per_call=1)
    benchmark.group = f"scale-points/{n_points}"
    benchmark.extra_info.update({"engine": engine, "epochs_per_round": 1})
    benchmark.pedantic(runner.call, rounds=1 if engine == "keras" and n_points > 10_000 else 3, iterations=1)


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
        benchmark.pedantic(lambda: worker.call("bench_fit", payload, timeout=900), rounds=3, iterations=1)
