"""The plugin's settings: resolved once in ``pytest_configure`` from the options, else the ini keys, and kept in
``config.stash``. A bad value is a usage error naming the option or ini key, the value and what is allowed."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from sinecheck import options
from sinecheck.checks.baseline import Strictness
from sinecheck.core.compare import Tolerance
from sinecheck.core.enums import TextEnum
from sinecheck.core.specs import ModelSpec, load_specs
from sinecheck.keras.runtime import start_tensorflow_quietly

__all__ = ["SETTINGS_KEY", "BaselineMode", "Settings", "add_ini_keys", "get_settings", "parse_baseline_mode"]

_T = TypeVar("_T")


class BaselineMode(TextEnum):
    """What ``--sinecheck-baseline`` asks of the `sinecheck_baseline` fixture."""

    CHECK = "check"  # compare this environment with its (or an older environment's) baseline
    RECORD = "record"  # store a baseline for a new environment (never overwrites)
    UPDATE = "update"  # store this environment's baseline, replacing an existing one
    OFF = "off"  # skip baseline tests


BASELINE_MODES: tuple[str, ...] = tuple(m.value for m in BaselineMode)


def parse_baseline_mode(text: str) -> BaselineMode:
    """A `BaselineMode` by name; else ``argparse.ArgumentTypeError`` naming the value and what is allowed."""
    try:
        return BaselineMode(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: {', '.join(BASELINE_MODES)}") from None


def add_ini_keys(parser: pytest.Parser) -> None:
    """The ini keys (each the default of its ``--sinecheck-…`` option)."""
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


@dataclass(frozen=True)
class Settings:
    """Everything the plugin's options and ini keys decide, resolved once per session."""

    seed: int
    epochs: int
    tolerance: Tolerance
    presets: tuple[str, ...]
    factors: tuple[str, ...]  # empty: every factor
    baseline: BaselineMode
    baseline_dir: Path  # absolute
    strict: Strictness
    models: tuple[ModelSpec, ...]

    @property
    def only_models(self) -> bool:
        """Models given and no presets: the user asked for their models only, so the matrix has their rows and
        no small Dense(32) row, and a ``sinecheck_factor`` marker without a config runs on each model."""
        return bool(self.models) and not self.presets

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Resolve and validate every setting: options first, else ini keys (a bad ini value → UsageError)."""
        max_ulp: int | None = config.getoption("sinecheck_max_ulp")
        directory = Path(_value(config, "baseline_dir", "sinecheck_baseline_dir", str))
        return cls(
            seed=_value(config, "seed", "sinecheck_seed", options.parse_seed),
            epochs=_value(config, "epochs", "sinecheck_epochs", options.positive_int),
            tolerance=Tolerance() if max_ulp is None else Tolerance(max_ulp=max_ulp),
            presets=_names(config, "preset", "sinecheck_presets", options.parse_preset),
            factors=_names(config, "factor", "sinecheck_factors", options.parse_factor),
            baseline=_value(config, "baseline", "sinecheck_baseline", parse_baseline_mode),
            baseline_dir=directory if directory.is_absolute() else config.rootpath / directory,
            strict=_value(config, "strict", "sinecheck_strict", options.parse_strictness),
            models=_model_specs(config),
        )


SETTINGS_KEY = pytest.StashKey[Settings]()


def get_settings(config: pytest.Config) -> Settings:
    """This session's settings (resolved on first use, normally in ``pytest_configure``)."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        settings = config.stash[SETTINGS_KEY] = Settings.from_config(config)
    return settings


def _parse_ini(ini: str, text: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini {ini}: {exc}") from None


def _value(config: pytest.Config, option: str, ini: str, parse: Callable[[str], _T]) -> _T:
    """``--sinecheck-<option>`` (already parsed by its option type), else the ini key parsed with `parse`."""
    given: _T | None = config.getoption(f"sinecheck_{option}")
    if given is not None:
        return given
    return _parse_ini(ini, str(config.getini(ini)), parse)


def _names(config: pytest.Config, option: str, ini: str, parse: Callable[[str], str]) -> tuple[str, ...]:
    given: Sequence[str] | None = config.getoption(f"sinecheck_{option}")
    if given:
        return tuple(given)
    return tuple(_parse_ini(ini, text, parse) for text in config.getini(ini))


def _model_specs(config: pytest.Config) -> tuple[ModelSpec, ...]:
    """The ``--sinecheck-model`` / ``--sinecheck-data`` specs (else the ini keys), paired and imported up front:
    a spec that does not name a callable is a usage error before anything trains."""
    models: list[str] = config.getoption("sinecheck_model") or list(config.getini("sinecheck_models"))
    data: list[str] = config.getoption("sinecheck_data") or list(config.getini("sinecheck_data"))
    if not models and not data:
        return ()
    try:
        return tuple(load_specs(models, data, before_import=_quiet_tensorflow))
    except ValueError as exc:  # SpecError and the config's ConfigError are ValueErrors
        raise pytest.UsageError(f"--sinecheck-model/--sinecheck-data: {exc}") from None


def _quiet_tensorflow() -> None:
    """Before a model file imports Keras: TensorFlow started with its C++ start-up lines kept off stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start_tensorflow_quietly()
