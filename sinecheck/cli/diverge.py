"""``sinecheck diverge``: where two runs part — the first (epoch, batch) and stage, step by step."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from sinecheck import options
from sinecheck._io import atomic_write
from sinecheck.checks.diverge import Divergence, TracedPair, diverge_factor, diverge_pair, replay_record, replay_summary
from sinecheck.checks.factors import Factor, factor_by_name
from sinecheck.cli._common import (
    load_side,
    prepare_outputs,
    quiet_tensorflow,
    single_model,
    validate_configs,
    write_json,
)
from sinecheck.core.config import TrainConfig, changed_fields
from sinecheck.core.presets import PRESETS
from sinecheck.errors import ConfigError
from sinecheck.isolation.environment import CONTROLLED_VARS, Environment
from sinecheck.study.figures import plot_growth

#: Epochs per run when --epochs is not given: the first divergence shows within a few steps.
DEFAULT_EPOCHS = 5


@dataclass(frozen=True)
class Pair:
    """The two sides to compare: configs and names, the environments of their processes, or a factor that makes
    both sides out of A."""

    a_name: str
    a: TrainConfig
    b_name: str
    b: TrainConfig
    env_a: Environment
    env_b: Environment
    factor: Factor | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument(
        "a",
        metavar="A",
        nargs="?",
        help=f"a preset ({', '.join(PRESETS)}: its first config) or a TrainConfig JSON file (or give --model)",
    )
    p.add_argument("b", metavar="B", nargs="?", help="the other side, the same way (default: A again)")
    options.add_factor_option(
        p.add_argument,
        repeatable=False,
        metavar="NAME",
        help="compare the two sides of this matrix factor on A (e.g. onednn-off, xla, tf-keras, "
        "shuffle-off; `sinecheck matrix --list-factors`) instead of A with B",
    )
    for side in ("a", "b"):
        p.add_argument(
            f"--env-{side}",
            action="append",
            default=[],
            metavar="VAR=VALUE",
            help=f"an environment variable for side {side.upper()}'s process (repeatable), e.g. "
            "TF_ENABLE_ONEDNN_OPTS=0",
        )
        p.add_argument(
            f"--python-{side}",
            metavar="PATH",
            help=f"run side {side.upper()} with this interpreter (a venv with other TF/Keras versions "
            "and sinecheck installed, e.g. one of .nox/)",
        )
    options.add_model_options(p.add_argument, what="A is this model (its default config)", repeatable=False)
    options.add_epochs_option(p.add_argument, help=f"epochs per run (default {DEFAULT_EPOCHS})")
    p.add_argument("--out", default=None, metavar="DIR", help="also write diverge.png (max |Δw| per step) there")
    p.add_argument("--json", metavar="PATH", help="write the divergence and the per-step growth as JSON")


def run(args: argparse.Namespace) -> int:
    pair = _pair(args)
    prepare_outputs(args)
    quiet_tensorflow()
    validate_configs(pair.a, pair.b)  # each model built once on its data: a bad spec is one line, up front
    traced = _trace(pair)
    divergence, elapsed = traced.divergence, traced.elapsed_s
    print(divergence.describe())
    growth_line = _growth_line(divergence)
    if growth_line:
        print(growth_line)
    print(replay_summary(traced.a, traced.b))
    print(f"({len(divergence.growth)} steps traced in two worker processes, {elapsed:.0f} s)")
    if args.out:
        title = f"{pair.a_name}: {pair.factor.name}" if pair.factor else f"{pair.a_name} vs {pair.b_name}"
        print(f"wrote {atomic_write(Path(args.out) / 'diverge.png', plot_growth(divergence, title=title))}")
    if args.json:
        write_json(args.json, _payload(pair, traced))
        print(f"wrote {args.json}")
    return 0


def _pair(args: argparse.Namespace) -> Pair:
    """A (a preset, a JSON file or --model) and B (the same ways, or A again), or A and a --factor; the epochs
    apply to both sides."""
    model = single_model(args)
    if model is not None and args.a is not None and args.b is not None:
        raise ConfigError("--model: given with A and B; allowed: --model [B], or A [B]")
    if model is not None:
        a_name, a = model.label, model.config()
        b_text = args.a or args.b
    elif args.a is None:
        raise ConfigError("A: missing; allowed: a preset name, a TrainConfig JSON file, or --model SPEC")
    else:
        (a_name, a), b_text = load_side(args.a, "A"), args.b
    a = a.replace(epochs=args.epochs or DEFAULT_EPOCHS)
    env_a = _side_environment("a", args.env_a, args.python_a)
    env_b = _side_environment("b", args.env_b, args.python_b)
    if args.factor is not None:
        factor = factor_by_name(args.factor)
        if b_text is not None or env_a.env or env_b.env or env_a.python or env_b.python:
            raise ConfigError(
                "--factor: given with B or --env-*/--python-*; allowed: the factor alone (it defines both sides)"
            )
        if factor.missing():
            raise ConfigError(
                f"--factor: {factor.name} needs {', '.join(factor.missing())}, which is not installed; allowed: a "
                "factor whose modules are installed (`sinecheck matrix --list-factors`)"
            )
        return Pair(a_name, a, a_name, a, env_a, env_b, factor)
    if b_text is None:
        return Pair(a_name, a, a_name, a, env_a, env_b)
    b_name, b = load_side(b_text, "B")
    return Pair(a_name, a, b_name, b.replace(epochs=a.epochs), env_a, env_b)


def _side_environment(side: str, assignments: list[str], python: str | None) -> Environment:
    """The process environment of one side from its --env-SIDE VAR=VALUE options and --python-SIDE."""
    env = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or name not in CONTROLLED_VARS:
            raise ConfigError(
                f"--env-{side}: invalid value {text!r}; allowed: VAR=VALUE with VAR one of {', '.join(CONTROLLED_VARS)}"
            )
        env[name] = value
    if python is not None and not Path(python).is_file():
        raise ConfigError(f"--python-{side}: invalid value {python!r}; allowed: the path of a Python interpreter")
    return Environment(side, tuple(env.items()), python=python)


def _trace(pair: Pair) -> TracedPair:
    """Trace both sides (each in a worker process) and say what was compared."""
    if pair.factor is not None:
        traced = diverge_factor(pair.a, pair.factor.name)
        print(f"{pair.a_name} ({pair.a.describe()}), factor {pair.factor.name}: {pair.factor.question}")
        return traced
    traced = diverge_pair(pair.a, pair.b, env_a=pair.env_a, env_b=pair.env_b)
    print(f"A: {pair.a_name} ({pair.a.describe()}) in {pair.env_a.describe()}")
    print(f"B: {pair.b_name} ({pair.b.describe()}) in {pair.env_b.describe()}, a second fresh process")
    differ = changed_fields(pair.a, pair.b)
    if differ:
        print(f"the configs differ in: {', '.join(differ)}")
    return traced


def _growth_line(divergence: Divergence) -> str:
    """max |Δw| after steps 1, 2, 10, 100, 1000 and the last (those that exist); empty without steps."""
    growth = divergence.growth
    if not len(growth):
        return ""
    marks = [k for k in (0, 1, 9, 99, 999) if k < len(growth)] + [len(growth) - 1]
    return "max |Δw| after step " + ", ".join(f"{k + 1}: {growth[k]:.3g}" for k in dict.fromkeys(marks))


def _payload(pair: Pair, traced: TracedPair) -> dict[str, object]:
    a: dict[str, object] = {"name": pair.a_name, "config": pair.a.to_dict(), "replay": replay_record(traced.a)}
    b: dict[str, object] = {"name": pair.b_name, "config": pair.b.to_dict(), "replay": replay_record(traced.b)}
    if pair.factor is None:
        a["environment"], b["environment"] = pair.env_a.to_dict(), pair.env_b.to_dict()
    factor = None if pair.factor is None else pair.factor.name
    return {"a": a, "b": b, "factor": factor, **traced.divergence.to_dict()}
