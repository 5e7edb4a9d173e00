"""The ``sinecheck`` command: presets, env, run, matrix, bench, study, explain, diverge, baseline, report.

Each command is a module of this package with ``add_arguments(parser)`` and ``run(args) -> int``; `COMMANDS` names
them.  Bad arguments exit with status 2 and one line on stderr, never a traceback.

To add a command: write ``sinecheck/cli/NAME.py`` with those two functions and add one line to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple, Protocol, cast

from sinecheck.cli._common import Parser
from sinecheck.errors import ConfigError

__all__ = ["COMMANDS", "main"]


class CommandInfo(NamedTuple):
    """Where a command lives and the line `sinecheck --help` shows for it."""

    module: str
    summary: str


class Command(Protocol):
    """What a command module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


#: Every command, in the order `sinecheck --help` lists them.  The module is imported only when its command runs
#: or its own ``--help`` is built (a deliberate lazy import, as in pip's command table): the summaries are here so
#: that ``sinecheck --help`` needs none of them.
COMMANDS: dict[str, CommandInfo] = {
    "presets": CommandInfo("sinecheck.cli.presets", "list the reference experiments"),
    "env": CommandInfo(
        "sinecheck.cli.env", "print the environment fingerprint (versions, backend, oneDNN, CPU, threads)"
    ),
    "run": CommandInfo("sinecheck.cli.run", "train a preset (or your --model) and print its digests, error and time"),
    "bench": CommandInfo("sinecheck.cli.bench", "per-epoch time of every engine vs Keras fit, measured in one run"),
    "matrix": CommandInfo(
        "sinecheck.cli.matrix", "which factors change the bits: factor × preset → verdict, in isolated processes"
    ),
    "study": CommandInfo(
        "sinecheck.cli.study", "error study: initializers × batch sizes × seeds, sweeps, explanation, claims"
    ),
    "explain": CommandInfo(
        "sinecheck.cli.explain", "why two configs predict different waves: Shapley attribution over seeds"
    ),
    "diverge": CommandInfo(
        "sinecheck.cli.diverge", "where two runs part: first (epoch, batch) and stage, step by step"
    ),
    "baseline": CommandInfo("sinecheck.cli.baseline", "golden baselines per environment: record, check, list, diff"),
    "report": CommandInfo(
        "sinecheck.cli.report", "the reference experiments and the error study, as Markdown with plots"
    ),
}


def load_command(name: str) -> Command:
    """The module of command `name`, imported now."""
    return cast(Command, importlib.import_module(COMMANDS[name].module))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only `command`'s own options are declared (importing its module)."""
    parser = Parser(prog="sinecheck", description="Which differences between runs of a Keras sine model are real?")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, info in COMMANDS.items():
        p = sub.add_parser(name, help=info.summary)
        if name == command:
            load_command(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status (usage errors and ``--help`` too: it never
    raises SystemExit)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), None)  # the top level has no valued options
    try:
        args = build_parser(command).parse_args(arguments)
    except SystemExit as exc:  # a usage error (status 2, one line on stderr) or --help (0): already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status = load_command(args.command).run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not as "Exception ignored" at interpreter exit
        return status
    except ConfigError as exc:
        sys.stderr.write(f"sinecheck {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `sinecheck presets --json | head`: the reader left, not an error to report
        _silence_stdout()
        return 1
    except OSError as exc:
        sys.stderr.write(f"sinecheck {args.command}: error: {exc}\n")
        return 1


def _silence_stdout() -> None:
    """Send what is still buffered for stdout to /dev/null, so the flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
