"""The error study: how prediction error varies across any factors of a TrainConfig, over many seeds.

A study is a full-factorial grid of axes (initializer × batch size by default; any `TrainConfig` factor can be
an axis) with the same seeds in every cell, so cells are compared seed for seed and the design stays
balanced for the variance decomposition.  Each run records its errors against the clean sin(x), its final
loss, whether it diverged and the fraction of dead ReLU units at the start and the end (a unit that is never
active on the data cannot help the fit).  Runs are independent, so the study runs on any
`concurrent.futures.Executor` — a process pool by default, a Dask cluster when given a scheduler — one task
per cell; each finished cell is stored at once (JSON per run + ``.npy`` predictions), so an interrupted study
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig, field_names
from sinecheck.core.presets import get_preset
from sinecheck.core.result import MetricName
from sinecheck.engines.base import parse_engine
from sinecheck.errors import ConfigError

STUDY_SCHEMA = 1

#: The initializers of the default study grid; ``zeros`` is the pathological control (no symmetry breaking).
DEFAULT_INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "random_normal(stddev=0.05)",
    "truncated_normal(stddev=0.02)",
    "random_uniform",
    "zeros",
)
#: Batch sizes of the default grid; "full" is the whole training set in one batch.
DEFAULT_BATCH_SIZES: tuple[str, ...] = ("8", "32", "64", "128", "full")
#: Values of the one-axis sweeps of the default study (not defaults of a config: see `core.config` for those).
STDDEV_SWEEP: tuple[str, ...] = ("0.002", "0.005", "0.02", "0.05", "0.1", "0.2", "0.5")
LEARNING_RATE_SWEEP: tuple[str, ...] = ("0.0003", "0.001", "0.003", "0.01", "0.03", "0.1")
OPTIMIZER_SWEEP: tuple[str, ...] = ("adam", "sgd", "rmsprop")
#: The metrics a study records per run, in the order of its run files.
METRICS: tuple[MetricName, ...] = (
    MetricName.MSE_TEST,
    MetricName.MSE_TRAIN,
    MetricName.MAX_ERR_TEST,
    MetricName.MAX_ERR_TRAIN,
    MetricName.FINAL_LOSS,
)


# -- axes ----------------------------------------------------------------------------------------------------


def _set_initializer(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(kernel_initializer=InitializerSpec.parse(text))


def _set_bias_initializer(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(bias_initializer=InitializerSpec.parse(text))


def _set_batch_size(config: TrainConfig, text: str) -> TrainConfig:
    if text == "full":
        return config.replace(batch_size=config.n_points)
    return config.replace(batch_size=_int("batch_size", text))


def _set_learning_rate(config: TrainConfig, text: str) -> TrainConfig:
    opt = config.optimizer
    return config.replace(optimizer=OptimizerSpec(opt.name, _float("learning_rate", text), opt.params))


def _set_optimizer(config: TrainConfig, text: str) -> TrainConfig:
    """Another optimizer at the same learning rate (its own defaults otherwise), so only the rule changes."""
    return config.replace(optimizer=OptimizerSpec(text.strip(), config.optimizer.learning_rate))


def _set_stddev(config: TrainConfig, text: str) -> TrainConfig:
    """The kernel initializer's stddev; a kernel initializer without one becomes truncated_normal."""
    spec = config.kernel_initializer
    name = spec.name if spec.name in ("truncated_normal", "random_normal") else "truncated_normal"
    params = {**(spec.kwargs() if name == spec.name else {}), "stddev": _float("stddev", text)}
    return config.replace(kernel_initializer=InitializerSpec(name, tuple(params.items())))


def _set_units(config: TrainConfig, text: str) -> TrainConfig:
    return config.replace(hidden_units=tuple(_int("units", u) for u in text.split("-")))


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}: invalid value {text!r}; allowed: an integer") from None


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}: invalid value {text!r}; allowed: a number") from None


#: Axes with their own spelling; any other TrainConfig field is an axis too (its value parsed from JSON).
NAMED_AXES: dict[str, Callable[[TrainConfig, str], TrainConfig]] = {
    "initializer": _set_initializer,
    "bias_initializer": _set_bias_initializer,
    "batch_size": _set_batch_size,
    "learning_rate": _set_learning_rate,
    "optimizer": _set_optimizer,
    "stddev": _set_stddev,
    "units": _set_units,
}


def _set_field(name: str) -> Callable[[TrainConfig, str], TrainConfig]:
    def apply(config: TrainConfig, text: str) -> TrainConfig:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        return config.replace(**{name: value})

    return apply


@dataclass(frozen=True)
class Axis:
    """One factor of the grid: a name (``initializer``, ``batch_size``, ``learning_rate``, ``stddev``,
    ``optimizer``, ``units`` or any TrainConfig field) and its values as text, the way a user types them."""

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        allowed = sorted(set(NAMED_AXES) | set(field_names()) - {"seed", "schema"})
        if self.name not in allowed:
            raise ConfigError(f"axis: invalid value {self.name!r}; allowed: {', '.join(allowed)}")
        values = tuple(str(v).strip() for v in self.values)
        if not values or any(not v for v in values):
            raise ConfigError(f"{self.name}: invalid values {list(self.values)!r}; allowed: one or more values")
        if len(set(values)) != len(values):
            raise ConfigError(f"{self.name}: invalid values {list(values)!r}; allowed: distinct values")
        object.__setattr__(self, "values", values)

    def apply(self, config: TrainConfig, value: str) -> TrainConfig:
        """`config` with this axis set to `value` (validated: a bad value names the axis and what is allowed)."""
        return NAMED_AXES.get(self.name, _set_field(self.name))(config, value)

    @classmethod
    def parse(cls, text: str) -> Axis:
        """``name=v1,v2,...`` (values with parentheses, like ``truncated_normal(stddev=0.02)``, stay whole)."""
        name, sep, rest = text.partition("=")
        if not sep:
            raise ConfigError(f"--axis: invalid value {text!r}; allowed: NAME=V1,V2,... e.g. learning_rate=0.001,0.01")
        return cls(name.strip(), tuple(split_values(rest)))


def split_values(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a, b(x=1, y=2)`` → ``["a", "b(x=1, y=2)"]``."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current.strip())
    return out


# -- spec ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    """One point of the grid: its axis values and the config they make (seed left to the study)."""

    index: int
    values: tuple[str, ...]
    config: TrainConfig

    @property
    def key(self) -> str:
        """A filesystem-safe, stable name for the cell's stored runs."""
        return f"c{self.index:03d}-{self.config.replace(seed=0).config_id}"


@dataclass(frozen=True)
class StudySpec:
    """What a study runs: a base config, its axes (full factorial), the seeds of every cell, the engine."""

    name: str
    base: TrainConfig
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    engine: str = "fused"

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: invalid value {list(self.seeds)!r}; allowed: one or more distinct seeds")
        parse_engine(self.engine)
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ConfigError(f"axes: invalid value {names!r}; allowed: each axis once")
        self.cells()  # every value must make a valid config: fail now, not halfway through

    def cells(self) -> list[GridCell]:
        out = []
        for i, values in enumerate(itertools.product(*(a.values for a in self.axes))):
            config = self.base
            for axis, value in zip(self.axes, values, strict=True):
                config = axis.apply(config, value)
            out.append(GridCell(i, tuple(values), config))
        return out

    @property
    def runs(self) -> int:
        return math.prod(len(a.values) for a in self.axes) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": STUDY_SCHEMA,
            "name": self.name,
            "base": self.base.to_dict(),
            "axes": [{"name": a.name, "values": list(a.values)} for a in self.axes],
            "seeds": list(self.seeds),
            "engine": self.engine,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        if data.get("schema") != STUDY_SCHEMA:
            raise ConfigError(f"study schema: invalid value {data.get('schema')!r}; allowed: {STUDY_SCHEMA}")
        return cls(
            data["name"],
            TrainConfig.from_dict(data["base"]),
            tuple(Axis(a["name"], tuple(a["values"])) for a in data["axes"]),
            tuple(data["seeds"]),
            data.get("engine", "fused"),
        )

    @property
    def spec_id(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def grid_study(
    *,
    preset: str = "keras-default",
    seeds: int = 10,
    epochs: int | None = None,
    initializers: Sequence[str] = DEFAULT_INITIALIZERS,
    batch_sizes: Sequence[str] = DEFAULT_BATCH_SIZES,
    engine: str = "fused",
) -> StudySpec:
    """The main grid: kernel initializer × batch size × seeds on a preset's first config."""
    base = base_config(preset, epochs)
    return StudySpec(
        "initializer × batch size",
        base,
        (Axis("initializer", tuple(initializers)), Axis("batch_size", tuple(batch_sizes))),
        tuple(range(seeds)),
        engine,
    )


def sweep_study(
    axis: Axis, *, preset: str = "tf-explicit", seeds: int = 10, epochs: int | None = None, engine: str = "fused"
) -> StudySpec:
    """A one-axis sweep (stddev, learning rate, optimizer, ...) on a preset's first config."""
    return StudySpec(f"{axis.name} sweep", base_config(preset, epochs), (axis,), tuple(range(seeds)), engine)


def base_config(preset: str, epochs: int | None = None) -> TrainConfig:
    """A preset's first config, with `epochs` when given: the base of a study or of one side of `explain`."""
    base = get_preset(preset).configs[0]
    return base if epochs is None else base.replace(epochs=epochs)


def format_value(value: str) -> str:
    """Axis values as shown in tables (full initializer specs are long)."""
    return value.replace("(stddev=", "(").replace("random_normal", "rand_normal")
