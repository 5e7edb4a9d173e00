"""Training configurations: one frozen, validated value that decides everything about a run.

A `TrainConfig` holds every knob that changes the bits a run produces (architecture, initializers,
optimizer, loss, batching, epochs, shuffling, seed, data).  It round-trips through a plain dict / JSON
and has a short stable id (a hash of its canonical JSON), so a result, a baseline or a report row can
always name exactly what it ran.  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sinecheck.errors import ConfigError, ConfigTypeError

SCHEMA_VERSION = 1

#: Kernel/bias initializers we can build, with the parameters each accepts and their Keras defaults.
INITIALIZERS: dict[str, dict[str, float]] = {
    "glorot_uniform": {},
    "glorot_normal": {},
    "he_uniform": {},
    "he_normal": {},
    "lecun_uniform": {},
    "lecun_normal": {},
    "orthogonal": {"gain": 1.0},
    "random_normal": {"mean": 0.0, "stddev": 0.05},
    "truncated_normal": {"mean": 0.0, "stddev": 0.05},
    "random_uniform": {"minval": -0.05, "maxval": 0.05},
    "constant": {"value": 0.0},
    "zeros": {},
    "ones": {},
}

#: Optimizers we can build, with their parameters (besides learning_rate) and the Keras defaults.
OPTIMIZERS: dict[str, dict[str, float | bool]] = {
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "sgd": {"momentum": 0.0, "nesterov": False},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    "adagrad": {"initial_accumulator_value": 0.1, "epsilon": 1e-7},
}
DEFAULT_LEARNING_RATES: dict[str, float] = {"adam": 0.001, "sgd": 0.01, "rmsprop": 0.001, "adagrad": 0.001}

ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "tanh",
    "sigmoid",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "swish",
    "leaky_relu",
    "linear",
)
LOSSES: tuple[str, ...] = ("mse", "mae", "huber", "log_cosh")


#: A model or data spec: ``package.module:callable`` or ``path/to/file.py:callable`` (loaded by sinecheck.core.specs).
SPEC_FORM = "MODULE:CALLABLE or path/to/file.py:CALLABLE"
SPEC_PATTERN = re.compile(r"[^:\s][^\n]*:[A-Za-z_][A-Za-z0-9_]*")


def _fail(field_name: str, value: Any, allowed: str, exc: type[Exception] = ConfigError) -> NoReturn:
    raise exc(f"{field_name}: invalid value {value!r}; allowed: {allowed}")


def _check_type(field_name: str, value: Any, types: type | tuple[type, ...], allowed: str) -> None:
    # bool is an int subclass: True must not pass as a batch size or a learning rate.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        _fail(field_name, value, allowed, ConfigTypeError)
    if not isinstance(value, types):
        _fail(field_name, value, f"{allowed} (got {type(value).__name__})", ConfigTypeError)


def _check_int(field_name: str, value: Any, *, low: int, high: int | None = None) -> None:
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    _check_type(field_name, value, int, allowed)
    if value < low or (high is not None and value > high):
        _fail(field_name, value, allowed)


def _check_float(field_name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> None:
    allowed = "a finite number" + (" > 0" if positive else " >= 0" if nonneg else "")
    _check_type(field_name, value, (int, float), allowed)
    if not math.isfinite(value) or (positive and value <= 0) or (nonneg and value < 0):
        _fail(field_name, value, allowed)


def _freeze_params(field_name: str, params: Any, known: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Normalise a params mapping to a sorted tuple of (name, value), checking names and types."""
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, (tuple, list)):
        try:
            items = [(k, v) for k, v in params]
        except (TypeError, ValueError):
            _fail(field_name, params, "a mapping of parameter name to value", ConfigTypeError)
    else:
        _fail(field_name, params, "a mapping of parameter name to value", ConfigTypeError)
    out: dict[str, Any] = {}
    for key, value in items:
        if key not in known:
            allowed = ("parameters " + ", ".join(sorted(known))) if known else "no parameters"
            _fail(f"{field_name}.{key}", value, allowed)
        if isinstance(known[key], bool):
            _check_type(f"{field_name}.{key}", value, bool, "true or false")
        else:
            _check_float(f"{field_name}.{key}", value)
            value = float(value)
        out[key] = value
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class InitializerSpec:
    """A Keras initializer by name with explicit parameters, e.g. truncated_normal(stddev=0.02)."""

    name: str
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        _check_type("initializer", self.name, str, "an initializer name")
        if self.name not in INITIALIZERS:
            _fail("initializer", self.name, ", ".join(INITIALIZERS))
        object.__setattr__(self, "params", _freeze_params(self.name, self.params, INITIALIZERS[self.name]))
        kwargs = self.kwargs()
        if "stddev" in kwargs and kwargs["stddev"] <= 0:
            _fail(f"{self.name}.stddev", kwargs["stddev"], "a number > 0")
        if self.name == "random_uniform":
            # the defaults count: maxval=-0.1 alone leaves minval at its default -0.05, above it
            low = kwargs.get("minval", INITIALIZERS["random_uniform"]["minval"])
            high = kwargs.get("maxval", INITIALIZERS["random_uniform"]["maxval"])
            if low >= high:
                _fail(f"{self.name}.minval", low, f"a number below maxval={high:g}")

    def kwargs(self) -> dict[str, float]:
        """The explicitly set parameters, as keyword arguments for the Keras initializer."""
        return dict(self.params)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v:g}' for k, v in self.params)})"

    @classmethod
    def parse(cls, text: str) -> InitializerSpec:
        """Parse "name" or "name(key=value, ...)", the form used on the command line and in reports."""
        match = re.fullmatch(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*", text)
        if not match:
            _fail("initializer", text, 'NAME or NAME(key=value, ...), e.g. "truncated_normal(stddev=0.02)"')
        name, inner = match.group(1), match.group(2)
        params: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in (inner or "").split(","))):
            key, sep, raw = part.partition("=")
            try:
                params[key.strip()] = float(raw)
            except ValueError:
                _fail(f"{name}.{key.strip()}", raw.strip() if sep else part, "a number, as key=value")
        return cls(name, tuple(params.items()))


@dataclass(frozen=True)
class OptimizerSpec:
    """A Keras optimizer by name, its learning rate and any non-default parameters."""

    name: str = "adam"
    learning_rate: float | None = None
    params: tuple[tuple[str, float | bool], ...] = ()

    def __post_init__(self) -> None:
        _check_type("optimizer", self.name, str, "an optimizer name")
        if self.name not in OPTIMIZERS:
            _fail("optimizer", self.name, ", ".join(OPTIMIZERS))
        lr = DEFAULT_LEARNING_RATES[self.name] if self.learning_rate is None else self.learning_rate
        _check_float("learning_rate", lr, positive=True)
        object.__setattr__(self, "learning_rate", float(lr))
        object.__setattr__(self, "params", _freeze_params(self.name, self.params, OPTIMIZERS[self.name]))
        kwargs = dict(self.params)
        for key in ("beta_1", "beta_2", "rho"):
            if key in kwargs and not 0 <= kwargs[key] < 1:
                _fail(f"{self.name}.{key}", kwargs[key], "a number in [0, 1)")
        # Keras's SGD refuses momentum outside [0, 1] only when the optimizer is built, deep in a training run
        if self.name == "sgd" and "momentum" in kwargs and not 0 <= kwargs["momentum"] <= 1:
            _fail("sgd.momentum", kwargs["momentum"], "a number in [0, 1]")

    @property
    def rate(self) -> float:
        """The learning rate in effect: the one given, else the optimizer's Keras default."""
        return DEFAULT_LEARNING_RATES[self.name] if self.learning_rate is None else self.learning_rate

    def kwargs(self) -> dict[str, float | bool]:
        """Keyword arguments for the Keras optimizer class."""
        return {"learning_rate": self.rate, **dict(self.params)}

    def __str__(self) -> str:
        extra = "".join(f", {k}={v:g}" for k, v in self.params)
        return f"{self.name}(lr={self.learning_rate:g}{extra})"


def _default_kernel() -> InitializerSpec:
    return InitializerSpec("glorot_uniform")


def _default_bias() -> InitializerSpec:
    return InitializerSpec("zeros")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run of a Dense network fitted to y = sin(x).

    The network is ``Dense(u, activation)`` for each ``u`` in `hidden_units`, then ``Dense(1)``; the same
    kernel and bias initializer is used on every layer (a fresh instance per layer).  The data is
    ``x = linspace(x_min, x_max, n_points)``, ``y = sin(x) + noise_std * N(0, 1)`` (noise from `noise_seed`,
    so the data stays fixed while the training seed varies).  ``seed=None`` means no seeding at all.

    Bring your own: `model` names a factory returning a Keras model (then the architecture fields above are
    unused; an uncompiled model is compiled with `optimizer` and `loss`) and `data` a function returning
    ``(x, y)`` (then the sine fields are unused); both are ``module:callable`` or ``file.py:callable`` specs.
    On a model its factory compiled, `optimizer`, `loss`, `xla` and `lr_scale` at their defaults mean "as the
    factory compiled it", and a changed one is re-compiled into the factory's own compile arguments or refused
    (`sinecheck.keras.compiled`).
    """

    hidden_units: tuple[int, ...] = (128,)
    activation: str = "relu"
    kernel_initializer: InitializerSpec = field(default_factory=_default_kernel)
    bias_initializer: InitializerSpec = field(default_factory=_default_bias)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    loss: str = "mse"
    batch_size: int = 32
    epochs: int = 100
    shuffle: bool = True
    seed: int | None = 0
    xla: bool = False
    n_points: int = 1000
    x_min: float = 0.0
    x_max: float = 10.0
    noise_std: float = 0.0
    noise_seed: int = 0
    model: str | None = None
    data: str | None = None
    #: Multiplies the learning rate in effect: the optimizer's above, or — on a model its factory compiled — the
    #: compiled optimizer's (the matrix's ``lr`` factor: "twice the model's own", whatever that is).
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        units = self.hidden_units
        if isinstance(units, list):
            units = tuple(units)
        _check_type("hidden_units", units, tuple, "a tuple of positive integers")
        if not 1 <= len(units) <= 8:
            _fail("hidden_units", units, "1 to 8 layer widths")
        for i, u in enumerate(units):
            _check_int(f"hidden_units[{i}]", u, low=1, high=65536)
        object.__setattr__(self, "hidden_units", units)
        _check_type("activation", self.activation, str, "an activation name")
        if self.activation not in ACTIVATIONS:
            _fail("activation", self.activation, ", ".join(ACTIVATIONS))
        for name in ("kernel_initializer", "bias_initializer"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    value = InitializerSpec.parse(value)
                except ConfigError as exc:  # name the field: "kernel_initializer: invalid value 'xavier'; ..."
                    msg = str(exc)
                    msg = name + msg[len("initializer") :] if msg.startswith("initializer") else f"{name}.{msg}"
                    raise type(exc)(msg) from None
                object.__setattr__(self, name, value)
            _check_type(name, value, InitializerSpec, "an InitializerSpec or an initializer name")
        _check_type("optimizer", self.optimizer, OptimizerSpec, "an OptimizerSpec")
        _check_type("loss", self.loss, str, "a loss name")
        if self.loss not in LOSSES:
            _fail("loss", self.loss, ", ".join(LOSSES))
        _check_int("batch_size", self.batch_size, low=1)
        _check_int("epochs", self.epochs, low=1, high=100_000)
        _check_type("shuffle", self.shuffle, bool, "true or false")
        if self.seed is not None:
            _check_int("seed", self.seed, low=0, high=2**32 - 1)
        _check_type("xla", self.xla, bool, "true or false")
        _check_int("n_points", self.n_points, low=2, high=10_000_000)
        _check_float("x_min", self.x_min)
        _check_float("x_max", self.x_max)
        if self.x_max <= self.x_min:
            _fail("x_max", self.x_max, f"a number greater than x_min={self.x_min}")
        object.__setattr__(self, "x_min", float(self.x_min))
        object.__setattr__(self, "x_max", float(self.x_max))
        _check_float("noise_std", self.noise_std, nonneg=True)
        object.__setattr__(self, "noise_std", float(self.noise_std))
        _check_int("noise_seed", self.noise_seed, low=0, high=2**32 - 1)
        for name in ("model", "data"):
            value = getattr(self, name)
            if value is not None:
                _check_type(name, value, str, SPEC_FORM)
                if not SPEC_PATTERN.fullmatch(value):
                    _fail(name, value, SPEC_FORM)
        _check_float("lr_scale", self.lr_scale, positive=True)
        object.__setattr__(self, "lr_scale", float(self.lr_scale))

    # -- derived views -------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: the last, partial batch is a step of its own (as in Keras)."""
        return -(-self.n_points // self.batch_size)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed, validated like a new config."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            _fail(sorted(unknown)[0], changes[sorted(unknown)[0]], "fields " + ", ".join(field_names()))
        return dataclasses.replace(self, **changes)

    @property
    def effective_optimizer(self) -> OptimizerSpec:
        """The optimizer with `lr_scale` applied: what sinecheck builds when it compiles the model itself."""
        if self.lr_scale == 1.0:
            return self.optimizer
        return OptimizerSpec(self.optimizer.name, self.optimizer.rate * self.lr_scale, self.optimizer.params)

    @property
    def custom(self) -> bool:
        """Whether a model or data spec replaces the built-in Dense network or the sine data."""
        return self.model is not None or self.data is not None

    def describe(self) -> str:
        """One line for tables and logs, naming the knobs people compare."""
        scale = f" lr×{self.lr_scale:g}" if self.lr_scale != 1.0 else ""
        xla = " xla" if self.xla else ""
        if self.model is not None:
            # a factory may compile its own model: the optimizer and loss are named only where the config sets them
            # (the run's compile record says what really ran)
            default = TrainConfig()
            optimizer = "" if self.optimizer == default.optimizer else f" {self.optimizer}"
            loss = "" if self.loss == default.loss else f" loss={self.loss}"
            data = f" data {self.data}" if self.data else ""
            return (
                f"model {self.model}{data}{optimizer}{scale}{loss}{xla} batch={self.batch_size} "
                f"epochs={self.epochs} shuffle={self.shuffle} seed={self.seed}"
            )
        if self.custom:
            return (
                f"Dense presets' model data {self.data} {self.optimizer}{scale} loss={self.loss}{xla} "
                f"batch={self.batch_size} epochs={self.epochs} shuffle={self.shuffle} seed={self.seed}"
            )
        widths = "-".join(str(u) for u in self.hidden_units)
        return (
            f"Dense({widths},{self.activation})→1 init={self.kernel_initializer} {self.optimizer}{scale}{xla} "
            f"batch={self.batch_size} epochs={self.epochs} shuffle={self.shuffle} seed={self.seed}"
        )

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe dict; `from_dict` of it gives back an equal config."""
        return {
            "schema": SCHEMA_VERSION,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "kernel_initializer": {
                "name": self.kernel_initializer.name,
                "params": dict(self.kernel_initializer.params),
            },
            "bias_initializer": {"name": self.bias_initializer.name, "params": dict(self.bias_initializer.params)},
            "optimizer": {
                "name": self.optimizer.name,
                "learning_rate": self.optimizer.learning_rate,
                "params": dict(self.optimizer.params),
            },
            "loss": self.loss,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "xla": self.xla,
            "n_points": self.n_points,
            "x_min": self.x_min,
            "x_max": self.x_max,
            "noise_std": self.noise_std,
            "noise_seed": self.noise_seed,
            # Left out when unset, so the ids of built-in configs (and the baselines keyed by them) stay put.
            **{name: value for name in ("model", "data") if (value := getattr(self, name)) is not None},
            **({"lr_scale": self.lr_scale} if self.lr_scale != 1.0 else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a config from `to_dict` output (missing fields take their defaults; unknown ones fail)."""
        if not isinstance(data, Mapping):
            _fail("config", data, "a mapping of field name to value", ConfigTypeError)
        data = dict(data)
        schema = data.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            _fail("schema", schema, f"{SCHEMA_VERSION} (this sinecheck's config schema)")
        names = field_names()
        for key in data:
            if key not in names:
                _fail(key, data[key], "fields " + ", ".join(names))
        kwargs: dict[str, Any] = dict(data)
        if "hidden_units" in kwargs and isinstance(kwargs["hidden_units"], list):
            kwargs["hidden_units"] = tuple(kwargs["hidden_units"])
        for name in ("kernel_initializer", "bias_initializer"):
            if name in kwargs and isinstance(kwargs[name], Mapping):
                spec = dict(kwargs[name])
                initializer = spec.get("name")
                if not isinstance(initializer, str):
                    _fail(f"{name}.name", initializer, "an initializer name", ConfigTypeError)
                kwargs[name] = InitializerSpec(initializer, tuple(dict(spec.get("params") or {}).items()))
        if "optimizer" in kwargs and isinstance(kwargs["optimizer"], Mapping):
            spec = dict(kwargs["optimizer"])
            kwargs["optimizer"] = OptimizerSpec(
                spec.get("name", "adam"), spec.get("learning_rate"), tuple(dict(spec.get("params") or {}).items())
            )
        return cls(**kwargs)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the input of `config_id`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))

    @property
    def config_id(self) -> str:
        """A short stable id: the first 12 hex digits of the sha256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def field_names() -> list[str]:
    """The names of every TrainConfig field, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def changed_fields(a: TrainConfig, b: TrainConfig) -> list[str]:
    """The fields in which `b` differs from `a`, in declaration order."""
    return [name for name in field_names() if getattr(a, name) != getattr(b, name)]


# -- the three reference experiments ----------------------------------------------------------------
