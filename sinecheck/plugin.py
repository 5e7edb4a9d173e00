"""The pytest plugin (registered through the ``pytest11`` entry point): options, header, fixtures, summary.

Importing it never imports TensorFlow, so ``pytest --help`` stays fast; the fixtures train lazily.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sinecheck.compare import Tolerance
from sinecheck.config import TrainConfig
from sinecheck.result import RunResult
from sinecheck.seeding import fingerprint, format_fingerprint

_RUNS_KEY = pytest.StashKey[list[RunResult]]()


_MAX_SEED = 2**32 - 1  # TrainConfig.seed's range


def _int_in_range(text: str, low: int, high: int | None = None) -> int:
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {allowed}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {allowed}")
    return value


def _seed(text: str) -> int:
    return _int_in_range(text, 0, _MAX_SEED)


def _non_negative_int(text: str) -> int:
    return _int_in_range(text, 0)


def _positive_int(text: str) -> int:
    return _int_in_range(text, 1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sinecheck", "sinecheck: reproducibility of Keras sine-model training")
    group.addoption("--sinecheck-seed", type=_seed, default=None, metavar="N",
                    help="base training seed for the suite's runs (default: ini sinecheck_seed or 0)")
    group.addoption("--sinecheck-epochs", type=_positive_int, default=None, metavar="N",
                    help="epochs of the short runs the suite trains (default: ini sinecheck_epochs or 3)")
    group.addoption("--sinecheck-max-ulp", type=_non_negative_int, default=None, metavar="K",
                    help="ULP distance still counted as ULP-level rather than CLOSE (default 16)")
    parser.addini("sinecheck_seed", "base training seed for the suite's runs", default="0")
    parser.addini("sinecheck_epochs", "epochs of the short runs the suite trains", default="3")


def _setting(config: pytest.Config, name: str, parse: Callable[[str], int]) -> int:
    value = config.getoption(f"sinecheck_{name}")
    if value is not None:
        return int(value)
    raw = str(config.getini(f"sinecheck_{name}"))
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini sinecheck_{name}: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUNS_KEY] = []
    # Validate ini values up front: a bad value is a usage error, not a failure deep inside a fixture.
    _setting(config, "seed", _seed)
    _setting(config, "epochs", _positive_int)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = _setting(config, "seed", _seed)
    epochs = _setting(config, "epochs", _positive_int)
    return [f"sinecheck: {format_fingerprint(fingerprint())}",
            f"sinecheck: base seed {seed}, short runs {epochs} epochs (--sinecheck-seed / --sinecheck-epochs)"]


@pytest.fixture(scope="session")
def sinecheck_seed(pytestconfig: pytest.Config) -> int:
    """The base training seed of this test session (``--sinecheck-seed``)."""
    return _setting(pytestconfig, "seed", _seed)


@pytest.fixture(scope="session")
def sinecheck_epochs(pytestconfig: pytest.Config) -> int:
    """Epochs for the suite's short runs (``--sinecheck-epochs``)."""
    return _setting(pytestconfig, "epochs", _positive_int)


@pytest.fixture(scope="session")
def sinecheck_tolerance(pytestconfig: pytest.Config) -> Tolerance:
    """The comparison tolerance of this session (``--sinecheck-max-ulp``)."""
    max_ulp = pytestconfig.getoption("sinecheck_max_ulp")
    return Tolerance() if max_ulp is None else Tolerance(max_ulp=max_ulp)


@pytest.fixture(scope="session")
def sinecheck_fingerprint() -> dict[str, Any]:
    """The environment this session trains in (versions, backend, oneDNN, CPU, threads, op determinism)."""
    return fingerprint(probe_tensorflow=True)


@pytest.fixture
def sinecheck_train(pytestconfig: pytest.Config) -> Iterator[Callable[..., RunResult]]:
    """``train(config, engine="keras")`` with clean Keras state before each run and after the test."""
    from sinecheck.engines import train
    from sinecheck.engines.keras_fit import reset_keras_state

    runs = pytestconfig.stash[_RUNS_KEY]

    def _train(config: TrainConfig, *, engine: str = "keras") -> RunResult:
        result = train(config, engine=engine)
        runs.append(result)
        return result

    yield _train
    reset_keras_state()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(_RUNS_KEY, [])
    if not runs:
        return
    total = sum(r.timings["total_s"] for r in runs)
    diverged = sum(r.diverged for r in runs)
    epochs = sum(r.epochs_run for r in runs)
    terminalreporter.write_sep("-", "sinecheck")
    terminalreporter.write_line(
        f"trained {len(runs)} runs ({epochs} epochs) in {total:.1f} s; {diverged} diverged")
