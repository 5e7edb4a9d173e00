"""The pytest plugin (registered through the ``pytest11`` entry point ``sinecheck``): thin hooks only.

- `settings`: one frozen `Settings`, resolved and validated in ``pytest_configure``;
- `fixtures`: the fixtures (imported here so pytest registers them with the plugin);
- `baseline`: what the ``sinecheck_baseline`` fixture does;
- `xdist`: sharing between pytest-xdist workers and the controller; `summary`: the terminal summary;
- `packaged`: with models given, their specs validated at configure time and the packaged suite (`model_suite`)
  added to the session's collection.

Importing it never imports TensorFlow, so ``pytest --help`` stays fast; the fixtures train lazily.  Only a session
with models imports it at configure time (to validate them).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from sinecheck import options
from sinecheck.core.environment import format_fingerprint
from sinecheck.keras.runtime import probed_fingerprint
from sinecheck.pytest_plugin import packaged, xdist
from sinecheck.pytest_plugin.baseline import BaselineSession
from sinecheck.pytest_plugin.fixtures import (
    SinecheckIsolated,
    SinecheckTrain,
    sinecheck_baseline,
    sinecheck_cell,
    sinecheck_epochs,
    sinecheck_fingerprint,
    sinecheck_isolated,
    sinecheck_matrix,
    sinecheck_models,
    sinecheck_pool,
    sinecheck_seed,
    sinecheck_settings,
    sinecheck_tolerance,
    sinecheck_train,
)
from sinecheck.pytest_plugin.settings import BaselineMode, Settings, add_ini_keys, get_settings, parse_baseline_mode
from sinecheck.pytest_plugin.summary import get_record, write_summary

if TYPE_CHECKING:  # pluggy >= 1.1 names it Result
    from pluggy import Result

__all__ = [
    "BaselineMode",
    "BaselineSession",
    "Settings",
    "SinecheckIsolated",
    "SinecheckTrain",
    "sinecheck_baseline",
    "sinecheck_cell",
    "sinecheck_epochs",
    "sinecheck_fingerprint",
    "sinecheck_isolated",
    "sinecheck_matrix",
    "sinecheck_models",
    "sinecheck_pool",
    "sinecheck_seed",
    "sinecheck_settings",
    "sinecheck_tolerance",
    "sinecheck_train",
]

_PREFIX = "sinecheck-"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sinecheck", "sinecheck: reproducibility of Keras sine-model training")
    add = group.addoption
    options.add_seed_option(
        add, prefix=_PREFIX, help="base training seed for the suite's runs (default: ini sinecheck_seed or 0)"
    )
    options.add_epochs_option(
        add, prefix=_PREFIX, help="epochs of the short runs the suite trains (default: ini sinecheck_epochs or 3)"
    )
    options.add_max_ulp_option(add, prefix=_PREFIX)
    options.add_preset_option(
        add,
        prefix=_PREFIX,
        metavar="NAME",
        help="add this preset's configs as rows of the reproducibility matrix (repeatable; "
        "default: only the small Dense(32) row, or with --sinecheck-model only the models' rows)",
    )
    options.add_factor_option(
        add,
        prefix=_PREFIX,
        metavar="NAME",
        help="run only these matrix factors (repeatable; default all; `sinecheck matrix --list-factors` lists them)",
    )
    add(
        "--sinecheck-baseline",
        type=parse_baseline_mode,
        default=None,
        metavar="{" + ",".join(m.value for m in BaselineMode) + "}",
        help="golden baselines: check this environment against them (default), record one for a new "
        "environment, update (overwrite) this environment's, or off",
    )
    add(
        "--sinecheck-baseline-dir",
        default=None,
        metavar="PATH",
        help="where baselines live (default: ini sinecheck_baseline_dir or tests/baselines)",
    )
    options.add_strict_option(
        add,
        prefix=_PREFIX,
        help="what fails against an older TF/Keras baseline: any bit (bitwise), worse than ULP (ulp), "
        "or only a material change of the error (material, default); the same environment "
        "must always match bit for bit",
    )
    options.add_model_options(
        add,
        prefix=_PREFIX,
        what="validate it before anything trains and add the packaged model suite to the session (same-process and "
        "fresh-process identical, negative controls differ, its matrix row, golden baseline, a fit benchmark), "
        "with or without test files of yours; -m 'not sinecheck_suite' leaves the suite out",
    )
    add_ini_keys(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sinecheck_factor(name, config=None): run this reproducibility factor (see `sinecheck matrix "
        "--list-factors`) on `config` (default: the small Dense(32) config; with --sinecheck-model and no "
        "--sinecheck-preset, each model) for the `sinecheck_cell` fixture",
    )
    config.addinivalue_line(
        "markers",
        f"{packaged.MARKER}: a test of the packaged model suite, added with --sinecheck-model "
        f"(deselect with -m 'not {packaged.MARKER}')",
    )
    packaged.prestart_pool(config)  # the matrix workers' imports overlap the checks below
    try:
        settings = get_settings(config)  # resolve and validate every setting up front: a bad value is a usage error
        packaged.validate_models(config, settings)  # each model built once on its data: a bad spec is a usage error
    except BaseException:
        packaged.close_pool(config)
        raise
    xdist.register(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    packaged.close_pool(config)  # a prestarted pool the session never used


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Result[pytest.CollectReport], None]:
    """With models given, the session collects the packaged model suite beside the user's tests."""
    outcome = yield
    if isinstance(collector, pytest.Session) and get_settings(collector.config).models:
        report = outcome.get_result()
        if report.passed:
            packaged.add_suite(collector, report)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize tests that take ``sinecheck_model`` with each model spec (a skip when none is given), and
    ``sinecheck_cell`` tests whose marker has no config with each model when only models were asked for."""
    settings = get_settings(metafunc.config)
    if "sinecheck_model" in metafunc.fixturenames:
        params = [pytest.param(s, id=s.label) for s in settings.models] or [
            pytest.param(
                None, id="no-model", marks=pytest.mark.skip(reason="no model spec given (--sinecheck-model=SPEC)")
            )
        ]
        metafunc.parametrize("sinecheck_model", params, scope="session")
    marker = metafunc.definition.get_closest_marker("sinecheck_factor")
    models = settings.models if settings.only_models else ()
    if models and "sinecheck_cell" in metafunc.fixturenames and marker is not None and not marker.kwargs.get("config"):
        # the user asked for their models only: a marker without a config runs on each of them
        metafunc.parametrize("sinecheck_cell", models, ids=[m.label for m in models], indirect=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = get_settings(config)
    return [
        f"sinecheck: {format_fingerprint(probed_fingerprint())}",
        f"sinecheck: base seed {settings.seed}, short runs {settings.epochs} epochs "
        "(--sinecheck-seed / --sinecheck-epochs)",
    ]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if xdist.is_worker(session.config):
        xdist.send_record(session.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not xdist.is_worker(config):  # the controller prints the whole session's summary, workers none
        write_summary(terminalreporter, get_record(config))
