"""What several commands share: the one-line-error parser, progress on stderr, output paths, configs from text."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from sinecheck import options
from sinecheck._io import atomic_write
from sinecheck.core.config import TrainConfig
from sinecheck.core.presets import PRESETS, get_preset
from sinecheck.core.specs import ModelSpec, load_specs, pair_specs
from sinecheck.errors import ConfigError
from sinecheck.keras.runtime import start_tensorflow_quietly
from sinecheck.keras.validate import validate_model_spec

#: What ``json.dumps`` accepts: the ``to_dict()`` payloads the commands write.
JSONValue = dict[str, object] | list[object]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``sinecheck run: error: ... (see sinecheck run --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Progress:
    """Progress on stderr: a live line on a terminal, one line per step otherwise.

    Use it as a context manager (the live line is cleared at the end) and hand its bound methods to the library:
    `step` (index, total, label), `advance` (label: the next of `total` steps), `epoch` (done, total: appended to the
    live line) and `stage` (the study's stage, done, total, elapsed, ETA).
    """

    def __init__(self, total: int = 0) -> None:
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.total = total
        self.done = 0
        self.label = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.finish()

    def step(self, index: int, total: int, label: str) -> None:
        self.done = index
        self.label = f"[{index}/{total}] {label}"
        elapsed = time.perf_counter() - self.start
        if self.tty:
            self.stream.write(f"\r\033[K{self.label}  ({elapsed:.0f} s)")
        else:
            self.stream.write(f"{self.label}  ({elapsed:.0f} s elapsed)\n")
        self.stream.flush()

    def advance(self, label: str) -> None:
        self.step(self.done + 1, self.total, label)

    def epoch(self, done: int, total: int) -> None:
        if self.tty and (done % 5 == 0 or done == total):
            self.stream.write(f"\r\033[K{self.label}: epoch {done}/{total}")
            self.stream.flush()

    def stage(self, stage: str, done: int, total: int, elapsed: float, eta: float | None) -> None:
        if not total:  # a stage that counts nothing (yet)
            self.step(0, 0, stage)
            return
        eta_text = f", ETA {eta:.0f} s" if eta is not None else ""
        self.step(done, total, f"{stage}{eta_text}")

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter off stderr (unless the user asked for it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start_tensorflow_quietly()  # the lines TF prints before it reads that variable


def prepare_output(option: str, path: str | Path | None, *, is_dir: bool) -> None:
    """Create the directory `path` (or its parent) now, so a bad output path fails before any training.

    Nothing to do when the option was not given (`path` is None or empty).
    """
    if not path:
        return
    path = Path(path)
    if not is_dir and path.is_dir():
        raise ConfigError(f"{option}: invalid value {str(path)!r}; allowed: a file path (this is a directory)")
    try:
        (path if is_dir else path.parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{option}: cannot write to {str(path)!r} ({reason}); allowed: a writable path") from None


def prepare_outputs(args: argparse.Namespace) -> None:
    """`prepare_output` for each output option the command has and was given: --out (a directory), --json and
    --markdown (files)."""
    for name, is_dir in (("out", True), ("json", False), ("markdown", False)):
        prepare_output(f"--{name}", getattr(args, name, None), is_dir=is_dir)


def write_json(path: str | Path, payload: JSONValue) -> Path:
    """`payload` as indented JSON (one trailing newline), written atomically."""
    return atomic_write(path, json.dumps(payload, indent=2) + "\n")


def int_at_least(minimum: int, text: str) -> int:
    """`text` as an integer >= `minimum`, or the argparse error naming the value and the bound."""
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: an integer >= {minimum}")
    return value


def int_at_least_two(text: str) -> int:
    """An integer >= 2 (seeds for a spread: one seed has no variance)."""
    return int_at_least(2, text)


def add_workers_option(parser: argparse.ArgumentParser, *, help: str) -> None:
    """``--workers N`` (N >= 1, default 2): processes the study's cells run in."""
    parser.add_argument("--workers", type=options.positive_int, default=2, metavar="N", help=help)


def model_specs(args: argparse.Namespace) -> list[ModelSpec]:
    """The --model/--data options as checked ModelSpecs (each callable imported: a bad spec fails up front)."""
    models = _as_list(args.model)
    data = _as_list(args.data)
    return load_specs(models, data, before_import=quiet_tensorflow)  # a model file imports Keras: quiet it first


def paired_specs(args: argparse.Namespace) -> list[ModelSpec]:
    """The --model/--data options paired, without importing them: for a command that checks its models in a worker
    (`sinecheck.isolation.pool.validate_isolated`, whose import of the spec fails with the same one line)."""
    return pair_specs(_as_list(args.model), _as_list(args.data))


def validate_specs(models: Iterable[ModelSpec]) -> None:
    """Build each model once on its data and check that they fit, before anything trains: the pytest plugin's checks,
    in the same words (`sinecheck.keras.validate.validate_model_spec`; a one-line SpecError).  Imports TensorFlow."""
    models = list(models)
    if not models:
        return
    quiet_tensorflow()
    for spec in models:
        validate_model_spec(spec)


def validate_configs(*configs: TrainConfig) -> None:
    """`validate_specs` on the model specs of `configs` (each distinct model and data once; none for the presets)."""
    specs = dict.fromkeys(ModelSpec(c.model, c.data) for c in configs if c.model is not None)
    validate_specs(specs)


def single_model(args: argparse.Namespace) -> ModelSpec | None:
    """The one --model of a command that takes at most one (None without --model)."""
    models = model_specs(args)
    return models[0] if models else None


def _as_list(value: list[str] | str | None) -> list[str]:
    if isinstance(value, list):
        return value
    return [value] if value else []


def load_side(text: str, option: str) -> tuple[str, TrainConfig]:
    """A preset name (its first config) or a TrainConfig JSON file, as (name, config)."""
    if text in PRESETS:
        return text, get_preset(text).configs[0]
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        try:
            return path.stem, TrainConfig.from_json(path.read_text())
        except OSError as exc:
            raise ConfigError(
                f"{option}: cannot read {text!r} ({exc.strerror}); allowed: a preset name or a TrainConfig JSON file"
            ) from None
    raise ConfigError(f"{option}: invalid value {text!r}; allowed: {', '.join(PRESETS)} or a TrainConfig JSON file")
