"""One declaration of the options the ``sinecheck`` command and the pytest plugin share (pytest-benchmark style).

Each ``add_*_option(addoption, *, prefix="", **attrs)`` declares one option through `addoption`, which is either
``argparse.ArgumentParser.add_argument`` (the CLI, ``prefix=""``: ``--seed``) or a pytest option group's
``addoption`` (the plugin, ``prefix="sinecheck-"``: ``--sinecheck-seed``); both take the same arguments.
`attrs` override anything declared here (``help``, ``default``, ``type``, ...).

The value parsers raise ``argparse.ArgumentTypeError`` naming the bad value and what is allowed: argparse prints it
as one usage line, pytest as a usage error. The plugin also runs them on ini values.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, Protocol

from sinecheck.checks.baseline import STRICT_LEVELS, Strictness
from sinecheck.checks.factors import FACTOR_NAMES
from sinecheck.core.presets import PRESETS
from sinecheck.engines.base import EngineName

__all__ = [
    "MAX_SEED",
    "AddOption",
    "add_engine_option",
    "add_epochs_option",
    "add_factor_option",
    "add_fallback_engine_option",
    "add_max_ulp_option",
    "add_model_options",
    "add_preset_option",
    "add_seed_option",
    "add_strict_option",
    "non_negative_int",
    "parse_engine",
    "parse_factor",
    "parse_optional_seed",
    "parse_preset",
    "parse_seed",
    "parse_strictness",
    "positive_int",
]

#: The greatest training seed (``TrainConfig.seed`` is an unsigned 32-bit integer).
MAX_SEED = 2**32 - 1


class AddOption(Protocol):
    """``argparse.ArgumentParser.add_argument`` or pytest's ``OptionGroup.addoption``."""

    def __call__(self, *names: str, **attrs: Any) -> object: ...


# --- value parsers -------------------------------------------------------------------------------------------


def _invalid(text: str, allowed: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: {allowed}")


def _int_in_range(text: str, low: int, high: int | None = None, *, also: str = "") -> int:
    allowed = (f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]") + also
    try:
        value = int(text)
    except ValueError:
        raise _invalid(text, allowed) from None
    if value < low or (high is not None and value > high):
        raise _invalid(text, allowed)
    return value


def _one_of(text: str, allowed: Iterable[str]) -> str:
    names = tuple(allowed)
    if text not in names:
        raise _invalid(text, ", ".join(names))
    return text


def parse_seed(text: str) -> int:
    """A training seed: an integer in [0, 2**32 - 1]."""
    return _int_in_range(text, 0, MAX_SEED)


def parse_optional_seed(text: str) -> int | None:
    """A training seed, or ``none`` (any case) for an unseeded run."""
    if text.lower() == "none":
        return None
    return _int_in_range(text, 0, MAX_SEED, also=" or 'none'")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_in_range(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_in_range(text, 0)


def parse_preset(text: str) -> str:
    """A preset name (`sinecheck.core.presets.PRESETS`)."""
    return _one_of(text, PRESETS)


def parse_factor(text: str) -> str:
    """A matrix factor name (`sinecheck.checks.factors.FACTOR_NAMES`)."""
    return _one_of(text, FACTOR_NAMES)


def parse_strictness(text: str) -> Strictness:
    """A baseline strictness level (`sinecheck.checks.baseline.Strictness`)."""
    return Strictness(_one_of(text, STRICT_LEVELS))


def parse_engine(text: str) -> str:
    """A training engine name (`sinecheck.engines.base.EngineName`)."""
    return _one_of(text, (name.value for name in EngineName))


# --- option declarations -------------------------------------------------------------------------------------


def _add(addoption: AddOption, name: str, attrs: dict[str, Any], *, default: Any = None, **declared: Any) -> None:
    """Declare option `name` as `declared` (``default`` None unless given), each overridden by the caller's `attrs`."""
    addoption(name, **{"default": default, **declared, **attrs})


def _add_repeatable(
    addoption: AddOption, name: str, attrs: dict[str, Any], *, repeatable: bool, help: str, **declared: Any
) -> None:
    """`_add` an option that appends every value given when `repeatable` (its help then says so), else stores one."""
    again = " (repeatable)" if repeatable else ""
    _add(addoption, name, attrs, action="append" if repeatable else "store", help=help + again, **declared)


def add_seed_option(addoption: AddOption, *, prefix: str = "", optional: bool = False, **attrs: Any) -> None:
    """``--{prefix}seed N``; with `optional` also ``none`` (an unseeded run, the CLI's ``--seed``)."""
    _add(
        addoption,
        f"--{prefix}seed",
        attrs,
        type=parse_optional_seed if optional else parse_seed,
        metavar="N",
        help="training seed" + (", or 'none' for unseeded" if optional else f" (0 to {MAX_SEED})"),
    )


def add_epochs_option(addoption: AddOption, *, prefix: str = "", **attrs: Any) -> None:
    """``--{prefix}epochs N`` (N >= 1)."""
    _add(addoption, f"--{prefix}epochs", attrs, type=positive_int, metavar="N", help="epochs per run")


def add_max_ulp_option(addoption: AddOption, *, prefix: str = "", **attrs: Any) -> None:
    """``--{prefix}max-ulp K`` (K >= 0): the ULP distance still graded ULP-level rather than CLOSE."""
    _add(
        addoption,
        f"--{prefix}max-ulp",
        attrs,
        type=non_negative_int,
        metavar="K",
        help="ULP distance still counted as ULP-level rather than CLOSE (default 16)",
    )


def add_strict_option(addoption: AddOption, *, prefix: str = "", **attrs: Any) -> None:
    """``--{prefix}strict LEVEL``: what fails against a baseline (bitwise, ulp or material)."""
    _add(
        addoption,
        f"--{prefix}strict",
        attrs,
        type=parse_strictness,
        metavar="{" + ",".join(STRICT_LEVELS) + "}",
        help="what fails: any bit (bitwise), worse than ULP (ulp), or a material change of the error (material)",
    )


def add_preset_option(addoption: AddOption, *, prefix: str = "", repeatable: bool = True, **attrs: Any) -> None:
    """``--{prefix}preset NAME`` (repeatable unless told otherwise)."""
    _add_repeatable(
        addoption,
        f"--{prefix}preset",
        attrs,
        repeatable=repeatable,
        type=parse_preset,
        metavar="PRESET",
        help=f"one of: {', '.join(PRESETS)}",
    )


def add_factor_option(addoption: AddOption, *, prefix: str = "", repeatable: bool = True, **attrs: Any) -> None:
    """``--{prefix}factor NAME``: a matrix factor (repeatable unless told otherwise)."""
    _add_repeatable(
        addoption,
        f"--{prefix}factor",
        attrs,
        repeatable=repeatable,
        type=parse_factor,
        metavar="FACTOR",
        help="a matrix factor (`sinecheck matrix --list-factors` lists them)",
    )


_ENGINES_HELP = (
    "keras (Keras fit, the reference); fused (the same training in one TF graph, bitwise equal to fit); "
    "fused-xla (that graph under XLA, equal within rounding); numpy or numpy-float64 (an independent NumPy "
    "implementation)"
)


def add_engine_option(addoption: AddOption, *, prefix: str = "", default: str = "keras", **attrs: Any) -> None:
    """``--{prefix}engine NAME``: the training engine (default `default`)."""
    _add(addoption, f"--{prefix}engine", attrs, type=parse_engine, default=default, metavar="NAME", help=_ENGINES_HELP)


def add_fallback_engine_option(addoption: AddOption, *, prefix: str = "", **attrs: Any) -> None:
    """``--{prefix}fallback-engine NAME``: the engine that trains a model spec the chosen engine cannot."""
    _add(
        addoption,
        f"--{prefix}fallback-engine",
        attrs,
        type=parse_engine,
        metavar="NAME",
        help=f"when --{prefix}engine cannot train a --{prefix}model (fused and numpy build Dense stacks only), "
        "train with this engine instead (e.g. keras) rather than refusing",
    )


def add_model_options(
    addoption: AddOption,
    *,
    prefix: str = "",
    repeatable: bool = True,
    what: str = "train this model",
    model_attrs: dict[str, Any] | None = None,
    data_attrs: dict[str, Any] | None = None,
) -> None:
    """``--{prefix}model SPEC`` and ``--{prefix}data SPEC``: a user's model factory and its data; `what` says what
    the command or plugin does with the model. Both append when `repeatable`, else store one value."""
    _add_repeatable(
        addoption,
        f"--{prefix}model",
        model_attrs or {},
        repeatable=repeatable,
        metavar="SPEC",
        help=f"package.module:factory or path/to/file.py:factory returning a Keras model: {what}",
    )
    _add(
        addoption,
        f"--{prefix}data",
        data_attrs or {},
        action="append" if repeatable else "store",
        metavar="SPEC",
        help=f"with --{prefix}model: a function returning (x, y) [, x_held_out, y_held_out] (default: the sine "
        "data)" + ("; one for every model, or one per model" if repeatable else ""),
    )
