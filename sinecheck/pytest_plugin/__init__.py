"""The pytest plugin (registered through the ``pytest11`` entry point): options, header, fixtures, summary.

Importing it never imports TensorFlow, so ``pytest --help`` stays fast; the fixtures train lazily.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sinecheck import options
from sinecheck._io import atomic_write
from sinecheck.core.compare import Tolerance
from sinecheck.core.config import TrainConfig
from sinecheck.core.environment import fingerprint, format_fingerprint
from sinecheck.core.result import RunResult

_RUNS_KEY = pytest.StashKey[list[RunResult]]()
_CELLS_KEY = pytest.StashKey[list[Any]]()
_BASELINE_KEY = pytest.StashKey[list[str]]()
_MODELS_KEY = pytest.StashKey[list[Any]]()
_MATRIX_FILE = "sinecheck-matrix-{key}.json"
_BASELINE_FILE = "sinecheck-baseline-lines-{worker}.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sinecheck", "sinecheck: reproducibility of Keras sine-model training")
    prefix = "sinecheck-"
    options.add_seed_option(
        group.addoption,
        prefix=prefix,
        help="base training seed for the suite's runs (default: ini sinecheck_seed or 0)",
    )
    options.add_epochs_option(
        group.addoption,
        prefix=prefix,
        help="epochs of the short runs the suite trains (default: ini sinecheck_epochs or 3)",
    )
    options.add_max_ulp_option(group.addoption, prefix=prefix)
    options.add_preset_option(
        group.addoption,
        prefix=prefix,
        metavar="NAME",
        help="add this preset's configs as rows of the reproducibility matrix (repeatable; "
        "default: only the small Dense(32) row)",
    )
    options.add_factor_option(
        group.addoption,
        prefix=prefix,
        metavar="NAME",
        help="run only these matrix factors (repeatable; default all; `sinecheck matrix --list-factors` lists them)",
    )
    group.addoption(
        "--sinecheck-baseline",
        choices=("check", "record", "update", "off"),
        default=None,
        help="golden baselines: check this environment against them (default), record one for a new "
        "environment, update (overwrite) this environment's, or off",
    )
    group.addoption(
        "--sinecheck-baseline-dir",
        default=None,
        metavar="PATH",
        help="where baselines live (default: ini sinecheck_baseline_dir or tests/baselines)",
    )
    options.add_strict_option(
        group.addoption,
        prefix=prefix,
        help="what fails against an older TF/Keras baseline: any bit (bitwise), worse than ULP (ulp), "
        "or only a material change of the error (material, default); the same environment "
        "must always match bit for bit",
    )
    options.add_model_options(group.addoption, prefix=prefix, what="also run the matrix and a baseline check on it")
    parser.addini(
        "sinecheck_models", "model specs to run the suite on (like --sinecheck-model)", type="args", default=[]
    )
    parser.addini("sinecheck_data", "data specs for sinecheck_models (like --sinecheck-data)", type="args", default=[])
    parser.addini("sinecheck_baseline", "baseline mode: check, record, update or off", default="check")
    parser.addini("sinecheck_baseline_dir", "directory of the golden baselines", default="tests/baselines")
    parser.addini("sinecheck_strict", "baseline strictness: bitwise, ulp or material", default="material")
    parser.addini("sinecheck_seed", "base training seed for the suite's runs", default="0")
    parser.addini("sinecheck_epochs", "epochs of the short runs the suite trains", default="3")
    parser.addini("sinecheck_presets", "presets whose configs become matrix rows", type="args", default=[])
    parser.addini("sinecheck_factors", "matrix factors to run (default all)", type="args", default=[])


def _names(config: pytest.Config, option: str, ini: str, parse: Callable[[str], str]) -> list[str]:
    given = config.getoption(option)
    if given:
        return list(given)
    try:
        return [parse(v) for v in config.getini(ini)]
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini {ini}: {exc}") from None


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
    config.stash[_CELLS_KEY] = []
    config.addinivalue_line(
        "markers",
        "sinecheck_factor(name, config=None): run this reproducibility factor (see `sinecheck matrix "
        "--list-factors`) on `config` (default: the small Dense(32) config) for the `sinecheck_cell` fixture",
    )
    # Validate ini values up front: a bad value is a usage error, not a failure deep inside a fixture.
    _setting(config, "seed", options.parse_seed)
    _setting(config, "epochs", options.positive_int)
    _names(config, "sinecheck_preset", "sinecheck_presets", options.parse_preset)
    _names(config, "sinecheck_factor", "sinecheck_factors", options.parse_factor)
    _baseline_settings(config)
    config.stash[_BASELINE_KEY] = []
    config.stash[_MODELS_KEY] = _model_specs(config)


def _model_specs(config: pytest.Config) -> list[Any]:
    """The ``--sinecheck-model`` / ``--sinecheck-data`` specs (else the ini keys), paired and imported up front:
    a spec that does not name a callable is a usage error before anything trains."""
    models = config.getoption("sinecheck_model") or list(config.getini("sinecheck_models"))
    data = config.getoption("sinecheck_data") or list(config.getini("sinecheck_data"))
    if not models and not data:
        return []
    from sinecheck.core.specs import load_specs

    try:
        return load_specs(models, data)
    except ValueError as exc:  # SpecError and the config's ConfigError are ValueErrors
        raise pytest.UsageError(f"--sinecheck-model/--sinecheck-data: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize tests that take ``sinecheck_model`` with each model spec (a skip when none is given)."""
    if "sinecheck_model" in metafunc.fixturenames:
        specs = metafunc.config.stash[_MODELS_KEY]
        params = [pytest.param(s, id=s.label) for s in specs] or [
            pytest.param(
                None, id="no-model", marks=pytest.mark.skip(reason="no model spec given (--sinecheck-model=SPEC)")
            )
        ]
        metafunc.parametrize("sinecheck_model", params, scope="session")


def _baseline_settings(config: pytest.Config) -> tuple[str, Path, str]:
    """(mode, directory, strictness) from the options, else the ini keys; bad ini values are usage errors."""
    mode = config.getoption("sinecheck_baseline") or str(config.getini("sinecheck_baseline"))
    strict = config.getoption("sinecheck_strict") or str(config.getini("sinecheck_strict"))
    for name, value, allowed in (
        ("sinecheck_baseline", mode, ("check", "record", "update", "off")),
        ("sinecheck_strict", strict, ("bitwise", "ulp", "material")),
    ):
        if value not in allowed:
            raise pytest.UsageError(f"ini {name}: invalid value {value!r}; allowed: {', '.join(allowed)}")
    directory = Path(config.getoption("sinecheck_baseline_dir") or str(config.getini("sinecheck_baseline_dir")))
    if not directory.is_absolute():
        directory = config.rootpath / directory
    return mode, directory, strict


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = _setting(config, "seed", options.parse_seed)
    epochs = _setting(config, "epochs", options.positive_int)
    return [
        f"sinecheck: {format_fingerprint(fingerprint())}",
        f"sinecheck: base seed {seed}, short runs {epochs} epochs (--sinecheck-seed / --sinecheck-epochs)",
    ]


@pytest.fixture(scope="session")
def sinecheck_seed(pytestconfig: pytest.Config) -> int:
    """The base training seed of this test session (``--sinecheck-seed``)."""
    return _setting(pytestconfig, "seed", options.parse_seed)


@pytest.fixture(scope="session")
def sinecheck_epochs(pytestconfig: pytest.Config) -> int:
    """Epochs for the suite's short runs (``--sinecheck-epochs``)."""
    return _setting(pytestconfig, "epochs", options.positive_int)


@pytest.fixture(scope="session")
def sinecheck_tolerance(pytestconfig: pytest.Config) -> Tolerance:
    """The comparison tolerance of this session (``--sinecheck-max-ulp``)."""
    max_ulp = pytestconfig.getoption("sinecheck_max_ulp")
    return Tolerance() if max_ulp is None else Tolerance(max_ulp=max_ulp)


@pytest.fixture(scope="session")
def sinecheck_models(pytestconfig: pytest.Config) -> list[Any]:
    """The user's models (`sinecheck.core.specs.ModelSpec`) from ``--sinecheck-model`` / ``--sinecheck-data``."""
    return list(pytestconfig.stash[_MODELS_KEY])


@pytest.fixture(scope="session")
def sinecheck_fingerprint() -> dict[str, Any]:
    """The environment this session trains in (versions, backend, oneDNN, CPU, threads, op determinism)."""
    return fingerprint(probe_tensorflow=True)


@pytest.fixture
def sinecheck_train(pytestconfig: pytest.Config) -> Iterator[Callable[..., RunResult]]:
    """``train(config, engine="keras")`` with clean Keras state before each run and after the test."""
    from sinecheck.engines.common import reset_keras_state
    from sinecheck.engines.registry import train

    runs = pytestconfig.stash[_RUNS_KEY]

    def _train(config: TrainConfig, *, engine: str = "keras") -> RunResult:
        result = train(config, engine=engine)
        runs.append(result)
        return result

    yield _train
    reset_keras_state()


@pytest.fixture(scope="session")
def sinecheck_pool() -> Iterator[Any]:
    """A `sinecheck.isolation.pool.WorkerPool`: one worker process per environment, closed at the end of the session."""
    from sinecheck.isolation.pool import WorkerPool

    with WorkerPool() as pool:
        yield pool


@pytest.fixture(scope="session")
def sinecheck_isolated(sinecheck_pool: Any) -> Callable[..., Any]:
    """``run(config, environment=None, *, instance=0, **options)``: train in a worker process of that
    environment (an `isolate.Environment`; default TensorFlow's defaults) → RunResult, or RunError."""
    from sinecheck.isolation.environment import Environment

    def _run(config: TrainConfig, environment: Any = None, *, instance: int = 0, **options: Any) -> Any:
        return sinecheck_pool.get(environment or Environment(), instance).train(config, **options)

    return _run


def _shared_dir(config: pytest.Config) -> Path:
    """A directory every pytest-xdist worker of this session shares (the plain basetemp without xdist)."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if hasattr(config, "workerinput") else base


@pytest.fixture(scope="session")
def sinecheck_matrix(
    pytestconfig: pytest.Config, sinecheck_pool: Any, sinecheck_epochs: int, sinecheck_tolerance: Tolerance
) -> Any:
    """The reproducibility matrix of this session (rows from ``--sinecheck-preset`` plus the small row,
    factors from ``--sinecheck-factor``), computed once and shared by pytest-xdist workers."""
    from filelock import FileLock

    from sinecheck.checks.factors import select_factors
    from sinecheck.checks.matrix import Matrix, matrix_rows, run_matrix

    rows = matrix_rows(
        _names(pytestconfig, "sinecheck_preset", "sinecheck_presets", options.parse_preset),
        epochs=sinecheck_epochs,
        models=pytestconfig.stash[_MODELS_KEY],
    )
    factors = select_factors(_names(pytestconfig, "sinecheck_factor", "sinecheck_factors", options.parse_factor))
    key = hashlib.sha256(
        json.dumps(
            [[label, cfg.config_id] for label, cfg in rows] + [f.name for f in factors] + [repr(sinecheck_tolerance)]
        ).encode()
    ).hexdigest()[:12]
    path = _shared_dir(pytestconfig) / _MATRIX_FILE.format(key=key)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            matrix = Matrix.from_dict(json.loads(path.read_text(encoding="utf-8")))
        else:
            matrix = run_matrix(rows, factors, pool=sinecheck_pool, tolerance=sinecheck_tolerance)
            atomic_write(path, json.dumps(matrix.to_dict()))
    pytestconfig.stash[_CELLS_KEY].extend(matrix.cells)
    return matrix


@pytest.fixture
def sinecheck_cell(
    request: pytest.FixtureRequest, sinecheck_pool: Any, sinecheck_epochs: int, sinecheck_tolerance: Tolerance
) -> Any:
    """The `matrix.Cell` for the test's ``@pytest.mark.sinecheck_factor(name, config=...)``: both sides run in
    worker processes; ``.check()`` fails the test when the factor's expectation is broken."""
    from sinecheck.checks.factors import factor_by_name
    from sinecheck.checks.matrix import SMALL, run_matrix

    marker = request.node.get_closest_marker("sinecheck_factor")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: sinecheck_cell needs @pytest.mark.sinecheck_factor(NAME)")
    factor = factor_by_name(marker.args[0])
    config = marker.kwargs.get("config") or SMALL.replace(epochs=sinecheck_epochs)
    label = marker.kwargs.get("label", config.config_id)
    matrix = run_matrix(
        [(label, config)], [factor], pool=sinecheck_pool, tolerance=sinecheck_tolerance, probe_shuffle=False
    )
    (cell,) = matrix.cells
    if cell.skipped:
        pytest.skip(f"{factor.name}: {cell.skipped}")
    request.config.stash[_CELLS_KEY].append(cell)
    return cell


class BaselineSession:
    """What `sinecheck_baseline` gives a test: this environment's baseline runs and `verify()`, which records,
    updates or checks according to ``--sinecheck-baseline`` and fails with the drift table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.mode, self.directory, self.strict = _baseline_settings(config)
        self.lines: list[str] = config.stash[_BASELINE_KEY]

    def _share(self) -> None:
        """Under pytest-xdist, hand this worker's summary lines to the controller (which prints the summary)."""
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        if worker is not None:
            atomic_write(_shared_dir(self.config) / _BASELINE_FILE.format(worker=worker), json.dumps(self.lines))

    def _command(self, mode: str, model: Any = None) -> str:
        spec = (
            ""
            if model is None
            else f" --sinecheck-model={model.model}" + (f" --sinecheck-data={model.data}" if model.data else "")
        )
        return f"pytest --sinecheck-baseline={mode} --sinecheck-baseline-dir={self.directory}{spec}"

    def verify(self, model: Any = None) -> None:
        """Record / update / check, per the mode, the presets' baseline set — or with `model` (a
        `sinecheck.core.specs.ModelSpec`, e.g. the ``sinecheck_model`` fixture) that model's, in its own subdirectory.
        A missing baseline is a skip that says how to record one."""
        from sinecheck.checks import baseline as bl

        if self.mode == "off":
            pytest.skip("baselines off (--sinecheck-baseline=off)")
        key = bl.EnvKey.current()
        directory = bl.subject_dir(self.directory, model)
        what = "" if model is None else f" of model {model.label}"
        if self.mode == "check":
            try:
                references = bl.select_references(key, directory)
            except bl.BaselineError as exc:
                pytest.fail(str(exc), pytrace=False)
            if not references:
                pytest.skip(
                    f"no baseline{what} for this environment ({key.describe()}) or an older version in "
                    f"{directory}; record one with: {self._command('record', model)}"
                )
        results = bl.run_baseline_set(bl.baseline_configs(model=model))
        current = bl.make_baseline(results, key)
        if self.mode in ("record", "update"):
            try:
                path, replaced = bl.record(current, directory, update=self.mode == "update")
            except bl.BaselineError as exc:
                pytest.skip(str(exc))
            done = f"replaced the baseline recorded {replaced.created}" if replaced else "recorded a new baseline"
            self.lines.append(f"{done}{what} for {key.describe()}: {path}")
            self._share()
            return
        checks = bl.check(current.entries, key, directory)
        self.lines += [("" if model is None else f"model {model.label}: ") + c.summary() for c in checks]
        self._share()
        failed = bl.failures(checks, self.strict)
        if failed:
            text = [f"this environment: {key.describe()}; strictness {self.strict}{what}"]
            for result, bad in failed:
                text += [
                    "",
                    result.summary(),
                    result.table(),
                    f"{len(bad)} entr{'y' if len(bad) == 1 else 'ies'} beyond what "
                    + (
                        "a reproducible environment allows (bitwise)"
                        if result.relation == "same environment"
                        else f"--sinecheck-strict={self.strict} allows"
                    )
                    + f": {', '.join(d.name for d in bad)}",
                ]
            text += ["", f"if the change is intended: {self._command('update', model)}"]
            pytest.fail("\n".join(text), pytrace=False)


@pytest.fixture(scope="session")
def sinecheck_baseline(pytestconfig: pytest.Config) -> BaselineSession:
    """Golden baselines of this environment: ``sinecheck_baseline.verify()`` checks (or records / updates, per
    ``--sinecheck-baseline``) the reference configs' ``fit`` results against ``--sinecheck-baseline-dir``."""
    return BaselineSession(pytestconfig)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    baseline_lines = list(config.stash.get(_BASELINE_KEY, []))
    if not baseline_lines and not hasattr(config, "workerinput"):  # xdist controller: the workers' lines
        for path in sorted(_shared_dir(config).glob(_BASELINE_FILE.format(worker="*"))):
            baseline_lines += json.loads(path.read_text(encoding="utf-8"))
    if baseline_lines:
        terminalreporter.write_sep("-", "sinecheck baselines")
        for line in baseline_lines:
            terminalreporter.write_line(line)
    runs = config.stash.get(_RUNS_KEY, [])
    cells = list(config.stash.get(_CELLS_KEY, []))
    if not cells and not hasattr(config, "workerinput"):  # xdist controller: read what the workers shared
        from sinecheck.checks.matrix import Matrix

        for path in sorted(_shared_dir(config).glob(_MATRIX_FILE.format(key="*"))):
            cells += Matrix.from_dict(json.loads(path.read_text(encoding="utf-8"))).cells
    if not runs and not cells:
        return
    terminalreporter.write_sep("-", "sinecheck")
    if runs:
        total = sum(r.timings["total_s"] for r in runs)
        diverged = sum(r.diverged for r in runs)
        epochs = sum(r.epochs_run for r in runs)
        terminalreporter.write_line(f"trained {len(runs)} runs ({epochs} epochs) in {total:.1f} s; {diverged} diverged")
    if cells:
        terminalreporter.write_line("reproducibility (factor × row → verdict; '!' marks a broken expectation):")
        for line in _cell_table(cells):
            terminalreporter.write_line("  " + line)


def _cell_table(cells: list[Any]) -> list[str]:
    rows = list(dict.fromkeys(c.row for c in cells))
    factors = list(dict.fromkeys(c.factor.name for c in cells))
    expect = {c.factor.name: c.factor.expect for c in cells}
    text = {(c.factor.name, c.row): c.short() + ("!" if c.meets_expectation is False else "") for c in cells}
    table = [["factor", "expect", *rows]]
    table += [[f, expect[f], *(text.get((f, r), "") for r in rows)] for f in factors]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
