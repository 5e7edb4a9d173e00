"""The plugin's fixtures. Each returns a real type; where a fixture hands out a callable it is a small class
(`SinecheckTrain`, `SinecheckIsolated`) with a typed ``__call__``. TensorFlow is imported only when one trains."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from sinecheck.checks.factors import factor_by_name, select_factors
from sinecheck.checks.matrix import SMALL, Cell, Matrix, matrix_rows, run_matrix
from sinecheck.core.compare import Tolerance
from sinecheck.core.config import TrainConfig
from sinecheck.core.environment import Fingerprint
from sinecheck.core.result import RunResult
from sinecheck.core.specs import ModelSpec
from sinecheck.engines.common import reset_keras_state
from sinecheck.engines.registry import train
from sinecheck.isolation.environment import Environment
from sinecheck.isolation.pool import DEFAULT_TIMEOUT_S, RunError, WorkerPool
from sinecheck.keras.runtime import probed_fingerprint
from sinecheck.pytest_plugin import xdist
from sinecheck.pytest_plugin.baseline import BaselineSession
from sinecheck.pytest_plugin.packaged import POOL_KEY, close_pool
from sinecheck.pytest_plugin.settings import Settings, get_settings
from sinecheck.pytest_plugin.summary import SessionRecord, get_record


class SinecheckTrain:
    """What `sinecheck_train` gives a test: ``train(config, engine="keras") -> RunResult``, in this process."""

    def __init__(self, record: SessionRecord) -> None:
        self._record = record

    def __call__(self, config: TrainConfig, *, engine: str = "keras") -> RunResult:
        """Train `config` from scratch with `engine` (see `sinecheck.engines.registry.ENGINES`)."""
        result = train(config, engine=engine)
        self._record.add_run(result)
        return result


class SinecheckIsolated:
    """What `sinecheck_isolated` gives a test: ``run(config, environment=None, *, instance=0) -> RunResult |
    RunError``, trained in a worker process of that environment (default: TensorFlow's defaults)."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def __call__(
        self,
        config: TrainConfig,
        environment: Environment | None = None,
        *,
        instance: int = 0,
        initial_weights: Mapping[str, np.ndarray] | None = None,
        unseeded_noise: float = 0.0,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> RunResult | RunError:
        worker = self.pool.get(environment or Environment(), instance)
        return worker.train(config, initial_weights=initial_weights, unseeded_noise=unseeded_noise, timeout=timeout)


@pytest.fixture(scope="session")
def sinecheck_settings(pytestconfig: pytest.Config) -> Settings:
    """Everything ``--sinecheck-…`` options and ``sinecheck_…`` ini keys decided for this session."""
    return get_settings(pytestconfig)


@pytest.fixture(scope="session")
def sinecheck_seed(sinecheck_settings: Settings) -> int:
    """The base training seed of this test session (``--sinecheck-seed``)."""
    return sinecheck_settings.seed


@pytest.fixture(scope="session")
def sinecheck_epochs(sinecheck_settings: Settings) -> int:
    """Epochs for the suite's short runs (``--sinecheck-epochs``)."""
    return sinecheck_settings.epochs


@pytest.fixture(scope="session")
def sinecheck_tolerance(sinecheck_settings: Settings) -> Tolerance:
    """The comparison tolerance of this session (``--sinecheck-max-ulp``)."""
    return sinecheck_settings.tolerance


@pytest.fixture(scope="session")
def sinecheck_models(sinecheck_settings: Settings) -> list[ModelSpec]:
    """The user's models from ``--sinecheck-model`` / ``--sinecheck-data`` (else the ini keys)."""
    return list(sinecheck_settings.models)


@pytest.fixture(scope="session")
def sinecheck_fingerprint() -> Fingerprint:
    """The environment this session trains in (versions, backend, oneDNN, CPU, threads, op determinism)."""
    return probed_fingerprint(probe_tensorflow=True)


@pytest.fixture
def sinecheck_train(pytestconfig: pytest.Config) -> Iterator[SinecheckTrain]:
    """``sinecheck_train(config, engine="keras")``, with clean Keras state before each run and after the test."""
    yield SinecheckTrain(get_record(pytestconfig))
    reset_keras_state()


@pytest.fixture(scope="session")
def sinecheck_pool(pytestconfig: pytest.Config) -> Iterator[WorkerPool]:
    """One worker process per environment, closed at the end of the session (the pool started at configure time
    when models were given, see `sinecheck.pytest_plugin.packaged.prestart_pool`)."""
    if pytestconfig.stash.get(POOL_KEY, None) is not None:
        try:
            yield pytestconfig.stash[POOL_KEY]
        finally:
            close_pool(pytestconfig)
        return
    with WorkerPool() as pool:
        yield pool


@pytest.fixture(scope="session")
def sinecheck_isolated(sinecheck_pool: WorkerPool) -> SinecheckIsolated:
    """``sinecheck_isolated(config, environment=None, *, instance=0)``: train in a worker process of that
    environment (a `sinecheck.isolation.environment.Environment`) → RunResult, or RunError."""
    return SinecheckIsolated(sinecheck_pool)


@pytest.fixture(scope="session")
def sinecheck_matrix(pytestconfig: pytest.Config, sinecheck_settings: Settings, sinecheck_pool: WorkerPool) -> Matrix:
    """The reproducibility matrix of this session (rows from ``--sinecheck-preset`` and ``--sinecheck-model``, plus
    the small row unless only models were asked for; factors from ``--sinecheck-factor``), computed once and shared
    by pytest-xdist workers."""
    settings = sinecheck_settings
    rows = matrix_rows(
        list(settings.presets), small=not settings.only_models, epochs=settings.epochs, models=list(settings.models)
    )
    factors = select_factors(list(settings.factors))
    identity = [[label, cfg.config_id] for label, cfg in rows] + [f.name for f in factors] + [repr(settings.tolerance)]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
    matrix = xdist.computed_once(
        pytestconfig,
        f"matrix-{key}",
        lambda: run_matrix(rows, factors, pool=sinecheck_pool, tolerance=settings.tolerance),
        dump=Matrix.to_dict,
        load=Matrix.from_dict,
    )
    get_record(pytestconfig).add_cells(matrix.cells, key=key)
    return matrix


@pytest.fixture
def sinecheck_cell(request: pytest.FixtureRequest, sinecheck_settings: Settings, sinecheck_pool: WorkerPool) -> Cell:
    """The `Cell` for the test's ``@pytest.mark.sinecheck_factor(name, config=...)``: both sides run in worker
    processes; ``.check()`` fails the test when the factor's expectation is broken.  Without a config it runs on
    the small Dense(32) config — or, when only models were asked for, on each model (the test is parametrized)."""
    marker = request.node.get_closest_marker("sinecheck_factor")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: sinecheck_cell needs @pytest.mark.sinecheck_factor(NAME)")
    factor = factor_by_name(marker.args[0])
    model: ModelSpec | None = getattr(request, "param", None)  # see pytest_generate_tests
    default = SMALL if model is None else model.config()
    config: TrainConfig = marker.kwargs.get("config") or default.replace(epochs=sinecheck_settings.epochs)
    label: str = marker.kwargs.get("label") or row_label(config)
    matrix = run_matrix(
        [(label, config)], [factor], pool=sinecheck_pool, tolerance=sinecheck_settings.tolerance, probe_shuffle=False
    )
    (cell,) = matrix.cells
    if cell.skipped:
        pytest.skip(f"{factor.name}: {cell.skipped}")
    get_record(request.config).add_cells([cell])
    return cell


@pytest.fixture(scope="session")
def sinecheck_baseline(pytestconfig: pytest.Config, sinecheck_settings: Settings) -> BaselineSession:
    """Golden baselines of this environment: ``sinecheck_baseline.verify()`` checks (or records / updates, per
    ``--sinecheck-baseline``) the reference configs' ``fit`` results against ``--sinecheck-baseline-dir``."""
    return BaselineSession(sinecheck_settings, get_record(pytestconfig).baseline_lines)


def row_label(config: TrainConfig) -> str:
    """How a marker's config is named in the summary table and failure messages: a model spec by the model's name
    (``lstm_sine``, ``lstm_next+sine_windows`` with data), any other config by its id."""
    return config.config_id if config.model is None else ModelSpec(config.model, config.data).label
