"""The model as the user compiled it is the truth: read back its compile settings and architecture, apply a config's
change by re-compiling with the user's own compile arguments (or refuse it), and verify that the change arrived.

A factory may compile its own model.  Then a config field at its default means "as the factory compiled it"; a
field the config changes — the learning rate (``--lr``, ``lr_scale``), the optimizer's parameters, ``xla`` — is
applied by compiling again with the factory's own loss(es), loss weights, metrics and optimizer class and config,
only that field changed.  What cannot be applied (another loss or optimizer class, a rate on a schedule) is a
one-line `ConfigError`; what Keras silently drops (``jit_compile=True`` on a model XLA cannot compile) is caught by
reading the setting back.  Nothing is ever printed and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinecheck.core.config import TrainConfig
from sinecheck.core.data import TrainingData, UserData
from sinecheck.core.records import (
    Compiler,
    CompileRecord,
    LayerRecord,
    ModelRecord,
    TensorRecord,
    canonical,
    default_rate,
    normalize,
)
from sinecheck.core.result import CompiledMetrics
from sinecheck.errors import ConfigError
from sinecheck.keras.models import model_weight_names
from sinecheck.keras.runtime import to_numpy

#: A Keras object (model, optimizer, layer): Keras is imported lazily and not typed here.
KerasObject = Any

#: The arguments of ``Model.compile`` sinecheck passes back when it re-compiles a factory's model.
_COMPILE_ARGUMENTS = (
    "optimizer",
    "loss",
    "loss_weights",
    "metrics",
    "weighted_metrics",
    "run_eagerly",
    "steps_per_execution",
    "jit_compile",
)


@dataclass(frozen=True)
class Changes:
    """What a config changes on a model its factory compiled (everything else stays as the factory compiled it)."""

    learning_rate: float | None = None  # an absolute rate (a non-default rate in the config's optimizer)
    lr_scale: float = 1.0
    optimizer_class: str | None = None  # the config names another optimizer than the default (adam)
    params: tuple[tuple[str, float | bool], ...] = ()
    jit_compile: bool = False  # config.xla: compile the train step with XLA
    loss: str | None = None  # another loss than the default (refused: the factory's loss is the truth)

    @classmethod
    def of(cls, config: TrainConfig) -> Changes:
        optimizer, default = config.optimizer, TrainConfig()
        return cls(
            learning_rate=None if default_rate(config) else optimizer.rate,
            lr_scale=config.lr_scale,
            optimizer_class=None if optimizer.name == default.optimizer.name else optimizer.name,
            params=optimizer.params,
            jit_compile=config.xla,
            loss=None if config.loss == default.loss else config.loss,
        )

    @property
    def optimizer(self) -> bool:
        """Whether the optimizer must be rebuilt (its class checked, its rate or parameters changed)."""
        return (
            self.learning_rate is not None
            or self.lr_scale != 1.0
            or self.optimizer_class is not None
            or bool(self.params)
        )

    def __bool__(self) -> bool:
        return self.optimizer or self.jit_compile or self.loss is not None


# -- reading -------------------------------------------------------------------------------------------------


def compile_arguments(model: KerasObject) -> dict[str, Any] | None:
    """The arguments the model was compiled with, as given (Keras 3 and tf_keras keep them), or None."""
    stored = getattr(model, "_compile_config", None)
    config = getattr(stored, "config", None)
    if not isinstance(config, Mapping):
        return None
    return {k: config[k] for k in _COMPILE_ARGUMENTS if k in config}


def _serialized(value: Any) -> Any:
    """A loss / metric / optimizer argument as ``{"class_name", "config"}`` data (strings and functions by name)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _serialized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialized(v) for v in value]
    get_config = getattr(value, "get_config", None)
    if callable(get_config) and not isinstance(value, type):
        try:
            return {"class_name": type(value).__name__, "config": get_config()}
        except Exception:  # a custom object without a config: its class names it
            return {"class_name": type(value).__name__, "config": {}}
    return value  # a function: `normalize` names it


def _optimizer_name(optimizer: KerasObject) -> str:
    inner = getattr(optimizer, "inner_optimizer", None)
    name = type(optimizer).__name__
    return f"{name}({type(inner).__name__})" if inner is not None else name


def _rate_entry(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The (innermost) optimizer config that holds ``learning_rate`` (a loss-scale wrapper holds its inner one's)."""
    if "learning_rate" in config:
        return config
    inner = config.get("inner_optimizer")
    if isinstance(inner, Mapping):
        return _rate_entry(inner.get("config", inner))
    return None


def _float(value: Any) -> float:
    """A Python or NumPy number, or a backend scalar tensor, as a float."""
    if isinstance(value, (int, float, np.number, np.ndarray)):
        return float(value)
    return float(np.asarray(to_numpy(value)))


def learning_rate(optimizer: KerasObject) -> float | None:
    """The optimizer's learning rate (None when a schedule decides it)."""
    entry = _rate_entry(optimizer.get_config())
    if entry is None or isinstance(entry["learning_rate"], Mapping):
        return None
    return _float(optimizer.learning_rate)


def _jit_compile(model: KerasObject) -> bool:
    return bool(getattr(model, "jit_compile", False))


def _steps_per_execution(model: KerasObject) -> int:
    value = getattr(model, "steps_per_execution", None)
    if value is None:
        value = getattr(model, "_steps_per_execution", None)  # tf_keras keeps it in a variable
    return 1 if value is None else int(_float(value))


def read_compile(model: KerasObject, compiled_by: Compiler) -> CompileRecord:
    """The `CompileRecord` of a compiled model, read back from it."""
    arguments = compile_arguments(model) or {"loss": getattr(model, "loss", None)}
    optimizer = model.optimizer
    return CompileRecord(
        loss=canonical(normalize(_serialized(arguments.get("loss")))),
        optimizer=_optimizer_name(optimizer),
        optimizer_config=canonical(normalize(optimizer.get_config())),
        learning_rate=learning_rate(optimizer),
        jit_compile=_jit_compile(model),
        steps_per_execution=_steps_per_execution(model),
        metrics=canonical(normalize(_serialized(arguments.get("metrics")))),
        loss_weights=canonical(normalize(_serialized(arguments.get("loss_weights")))),
        weighted_metrics=canonical(normalize(_serialized(arguments.get("weighted_metrics")))),
        compiled_by=compiled_by,
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _topology(model: KerasObject, positions: Mapping[str, str]) -> str:
    """How a functional model's layers connect, by position (``layer3`` takes ``layer1``, ``layer2``), in a form
    Keras 2 and 3 share; ``""`` for a Sequential or subclassed model."""
    try:
        config = model.get_config()
    except Exception:  # a subclassed model without get_config
        return ""
    entries = config.get("layers") if isinstance(config, Mapping) else None
    if not isinstance(entries, list) or not any(isinstance(e, Mapping) and e.get("inbound_nodes") for e in entries):
        return ""
    graph = []
    for entry in entries:
        name = entry.get("name") or entry.get("config", {}).get("name")
        inbound = [positions[s] for s in _strings(entry.get("inbound_nodes")) if s in positions]
        graph.append([positions.get(str(name), "?"), inbound])
    ends = {
        k: [positions[s] for s in _strings(config.get(k)) if s in positions] for k in ("input_layers", "output_layers")
    }
    return canonical({"layers": graph, **ends})


def _layer_config(layer: KerasObject) -> Any:
    try:
        return layer.get_config()
    except Exception:  # a custom layer without get_config: its class and weights still name it
        return {}


def read_model(model: KerasObject) -> ModelRecord:
    """The architecture fingerprint of a built model (the user's, inside sinecheck's injected-noise wrapper)."""
    inner: KerasObject = getattr(model, "sinecheck_inner", model)
    layers = list(inner.layers)
    positions = {str(layer.name): f"layer{i}" for i, layer in enumerate(layers)}
    return ModelRecord(
        model_class=type(inner).__name__,
        layers=tuple(LayerRecord(type(la).__name__, canonical(normalize(_layer_config(la)))) for la in layers),
        weights=tuple(
            TensorRecord(name, str(getattr(w.dtype, "name", w.dtype)), tuple(int(n) for n in w.shape))
            for name, w in zip(model_weight_names(inner), inner.weights, strict=True)
        ),
        topology=_topology(inner, positions),
    )


# -- applying a config's changes -----------------------------------------------------------------------------


def _with_rate(config: dict[str, Any], rate: float) -> dict[str, Any]:
    """A copy of an optimizer config with its (innermost) learning rate replaced."""
    if "learning_rate" in config:
        return {**config, "learning_rate": rate}
    inner = dict(config["inner_optimizer"])
    if isinstance(inner.get("config"), Mapping):
        inner["config"] = _with_rate(dict(inner["config"]), rate)
    else:
        inner = _with_rate(inner, rate)
    return {**config, "inner_optimizer": inner}


def _new_optimizer(optimizer: KerasObject, changes: Changes, spec: str) -> KerasObject:
    """A fresh optimizer of the factory's class and config, with only the config's changes."""
    cls = type(optimizer)
    config = dict(optimizer.get_config())
    entry = _rate_entry(config)
    name = cls.__name__
    if changes.optimizer_class is not None and changes.optimizer_class.lower() != name.lower():
        raise ConfigError(
            f"optimizer: invalid value {changes.optimizer_class!r} for model {spec}, whose factory compiled it with "
            f"{name}; allowed: {name.lower()} or the default (keep the factory's optimizer) — sinecheck changes only "
            "the rate and parameters of the factory's optimizer"
        )
    for key, value in changes.params:
        if key not in config:
            raise ConfigError(
                f"optimizer.{key}: invalid value {value!r} for model {spec}: its {name} has no such parameter; "
                f"allowed: {', '.join(sorted(k for k in config if k != 'name'))}"
            )
        config[key] = value
    if changes.learning_rate is not None or changes.lr_scale != 1.0:
        current = None if entry is None else entry["learning_rate"]
        if current is None or isinstance(current, Mapping):
            schedule = current.get("class_name", "a schedule") if isinstance(current, Mapping) else "nowhere"
            asked = "lr_scale" if changes.learning_rate is None else "learning_rate"
            value = changes.lr_scale if changes.learning_rate is None else changes.learning_rate
            raise ConfigError(
                f"{asked}: invalid value {value:g} for model {spec}: its {name} takes the learning rate from "
                f"{schedule}; allowed: the default (keep the factory's schedule) — change the rate in the factory"
            )
        rate = (_float(current) if changes.learning_rate is None else changes.learning_rate) * changes.lr_scale
        config = _with_rate(config, float(rate))
    return cls.from_config(config)


def apply_changes(model: KerasObject, config: TrainConfig) -> KerasObject:
    """The factory-compiled `model` with the config's changes: re-compiled with the factory's own compile arguments
    plus those changes, or unchanged when the config changes nothing.  A change that cannot be applied is a
    one-line ConfigError."""
    changes = Changes.of(config)
    if not changes:
        return model
    spec = str(config.model)
    if changes.loss is not None:
        loss = ", ".join(str(v) for v in _strings(normalize(_serialized(getattr(model, "loss", None)))))
        raise ConfigError(
            f"loss: invalid value {changes.loss!r} for model {spec}, whose factory compiled it with loss "
            f"{loss or '?'}; allowed: the default (keep the factory's loss) — compile the model with the loss you want"
        )
    arguments = compile_arguments(model)
    if arguments is None:
        raise ConfigError(
            f"model: {spec} was compiled by its factory, but this Keras keeps no compile arguments to re-compile it "
            "with a changed learning rate or jit_compile; allowed: the config's defaults for this model"
        )
    optimizer = arguments.get("optimizer")
    if optimizer is None or isinstance(optimizer, str):
        optimizer = model.optimizer
    if changes.optimizer:
        arguments["optimizer"] = _new_optimizer(optimizer, changes, spec)
    if changes.jit_compile:
        arguments["jit_compile"] = True
    model.compile(**arguments)
    return model


def _same_rate(a: float, b: float) -> bool:
    return bool(np.float32(a) == np.float32(b)) or math.isclose(a, b, rel_tol=1e-6)


def verify(record: CompileRecord, config: TrainConfig, *, expected_rate: float | None) -> None:
    """Raise a one-line ConfigError when a setting the config asks for did not reach the compiled model."""
    what = f"model {config.model}" if config.model is not None else "the model"
    if config.xla and not record.jit_compile:
        raise ConfigError(
            f"xla: True did not reach {what}: Keras reads back jit_compile=False (it does not compile this model "
            "with XLA, e.g. a layer XLA cannot run or run_eagerly); allowed: xla=False for this model"
        )
    if expected_rate is not None and (
        record.learning_rate is None or not _same_rate(record.learning_rate, expected_rate)
    ):
        raise ConfigError(
            f"learning_rate: {expected_rate:g} did not reach {what}: its {record.optimizer} reads back "
            f"{'a schedule' if record.learning_rate is None else format(record.learning_rate, 'g')}; allowed: a float "
            "learning rate the optimizer keeps"
        )


def settle(model: KerasObject, config: TrainConfig, *, compiled_by: Compiler) -> tuple[KerasObject, CompileRecord]:
    """The model to train and its `CompileRecord`: a factory-compiled model gets the config's changes
    (`apply_changes`); every setting the config asks for is read back and verified (`verify`)."""
    expected: float | None = None
    if compiled_by is Compiler.FACTORY:
        before = learning_rate(model.optimizer) if Changes.of(config).optimizer else None
        model = apply_changes(model, config)
        if not default_rate(config):
            expected = config.optimizer.rate * config.lr_scale
        elif config.lr_scale != 1.0 and before is not None:
            expected = before * config.lr_scale
    else:
        expected = config.effective_optimizer.rate
    record = read_compile(model, compiled_by)
    verify(record, config, expected_rate=expected)
    return model, record


# -- the compiled loss and metrics after training ------------------------------------------------------------


def evaluate_compiled(model: KerasObject, data: TrainingData, *, batch_size: int | None) -> CompiledMetrics:
    """The compiled loss and every compiled metric (Keras ``evaluate``) on the training and the held-out data: a
    pipeline yields its own targets and batches; training arrays are weighted by the data's sample weights, as in
    training."""
    pipeline = isinstance(data, UserData) and data.form.pipeline
    weights = data.sample_weight if isinstance(data, UserData) else None
    splits = []
    for x, y, sample_weight in (
        (data.x_train, data.y_train, weights),
        (data.x_test, data.y_test, weights if pipeline is False and not getattr(data, "held_out", True) else None),
    ):
        if pipeline:
            values = model.evaluate(x, verbose=0, return_dict=True)
        else:
            values = model.evaluate(
                x, y, sample_weight=sample_weight, batch_size=batch_size, verbose=0, return_dict=True
            )
        named = [(str(k), _float(v)) for k, v in values.items()]
        splits.append(tuple(sorted(named, key=lambda kv: kv[0] != "loss")))  # the loss first, then Keras's order
    return CompiledMetrics(train=splits[0], held_out=splits[1])
