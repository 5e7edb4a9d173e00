"""What a run really trained: the model (architecture fingerprint), how it was compiled, and the data it saw.

A user's factory may compile its own model; then its loss, optimizer, metrics and ``jit_compile`` — not the
config's defaults — are the truth, and they are what a run records, shows and a baseline compares.  The records are
plain frozen data (read from Keras by `sinecheck.keras.compiled`), round-trip through JSON, and say in words how
two of them differ (``Adam learning_rate 0.001 → 0.002``).

Keras configs are normalised before they are stored, so the same model reads the same in Keras 2 and 3 and in
every session: layer, model and optimizer *names* (session counters such as ``dense_3``) are dropped, a serialised
object ``{"module", "class_name", "config", "registered_name"}`` becomes ``{"class", "config"}``, a dtype policy
becomes its name, and floats keep 7 significant digits (a float32 learning rate reads ``0.001``).  Two records are
compared key by key on the keys *both* have: a newer Keras adding an argument with its default is not a change.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinecheck.core.compare import digest
from sinecheck.core.config import DEFAULT_LEARNING_RATES, TrainConfig
from sinecheck.core.enums import TextEnum

#: A JSON value (what `normalize` returns and the records store as canonical JSON text).
Json = Any

#: Keys of a Keras config that name an object, not what it computes (session counters, module paths).
_DROPPED_KEYS = frozenset({"name", "module", "registered_name", "build_config", "compile_config", "shared_object_id"})
#: Serialised dtype policies: their name is all that matters ("float32", "mixed_float16").
_POLICIES = frozenset({"DTypePolicy", "FloatDTypePolicy", "Policy", "QuantizedDTypePolicy"})
#: How many significant digits a float keeps (float32 values read the same whichever Keras stored them).
_DIGITS = 7
#: Differences listed per record before "… and N more".
_MAX_LINES = 8


def canonical(value: Json) -> str:
    """Compact JSON with sorted keys: the stored and hashed form of a normalised value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def normalize(value: Any, *, key: str = "") -> Json:
    """A Keras config (or any nested value) as JSON that reads the same in Keras 2 and 3 and in every session."""
    if isinstance(value, Mapping):
        if "class_name" in value and "config" in value:
            config = value["config"]
            if value["class_name"] in _POLICIES and isinstance(config, Mapping) and "name" in config:
                return str(config["name"])
            return {"class": str(value["class_name"]), "config": normalize(config)}
        return {str(k): normalize(v, key=str(k)) for k, v in value.items() if k not in _DROPPED_KEYS}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return float(f"{number:.{_DIGITS}g}") if math.isfinite(number) else str(number)
    if isinstance(value, np.ndarray):
        return normalize(value.tolist())
    if value is None or isinstance(value, str):
        if key == "reduction" and value == "auto":  # Keras 2's "auto" is Keras 3's default
            return "sum_over_batch_size"
        return value
    name = getattr(value, "__name__", None)  # a function (a loss or metric given as a callable)
    return str(name) if isinstance(name, str) else type(value).__name__


def _short(value: Json) -> str:
    text = value if isinstance(value, str) else canonical(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_changes(old: Json, new: Json, path: str = "") -> list[str]:
    """``"path old → new"`` for every value that differs, on the keys both mappings have (recursively)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(old.keys() & new.keys()):
            out += json_changes(old[k], new[k], f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += json_changes(a, b, f"{path}[{i}]")
        return out
    if old == new:
        return []
    return [f"{path} {_short(old)} → {_short(new)}".strip()]


def _capped(lines: Sequence[str]) -> list[str]:
    if len(lines) <= _MAX_LINES:
        return list(lines)
    return [*lines[: _MAX_LINES - 1], f"… and {len(lines) - _MAX_LINES + 1} more"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the model -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorRecord:
    """One named array: a model's weight (``layer1.dense/kernel``) or a data array (``x_train``, ``x_train.ids``),
    with its dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def kind(self) -> str:
        """Its dtype and shape, ``float32[8, 16]``."""
        return f"{self.dtype}{list(self.shape)}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorRecord:
        return cls(str(data["name"]), str(data["dtype"]), tuple(int(n) for n in data["shape"]))


def _kind_changes(old: Sequence[TensorRecord], new: Sequence[TensorRecord], prefix: str = "") -> list[str]:
    """``name float32[16] → float32[32]`` for every array added, removed or of another dtype or shape (in order)."""
    old_by_name = {t.name: t for t in old}
    new_by_name = {t.name: t for t in new}
    out = []
    for name in [*old_by_name, *(n for n in new_by_name if n not in old_by_name)]:
        a, b = old_by_name.get(name), new_by_name.get(name)
        if a is None or b is None or a.kind != b.kind:
            out.append(f"{prefix}{name} {'absent' if a is None else a.kind} → {'absent' if b is None else b.kind}")
    return out


@dataclass(frozen=True)
class LayerRecord:
    """One layer: its class and its normalised config (canonical JSON; ``{}`` when the layer has none)."""

    cls: str
    config: str


@dataclass(frozen=True)
class ModelRecord:
    """The architecture fingerprint of a built model: its class, every layer's class and config, how the layers
    connect (functional models; ``""`` otherwise), and every weight's name, shape and dtype."""

    model_class: str
    layers: tuple[LayerRecord, ...]
    weights: tuple[TensorRecord, ...]
    topology: str = ""

    @property
    def parameters(self) -> int:
        """The number of weight values (trainable or not)."""
        return sum(int(np.prod(w.shape)) for w in self.weights)

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON: equal exactly when the records are."""
        return _sha(canonical(self.to_json()))

    def describe(self) -> str:
        """One line: ``Sequential: Dense, Dropout, Dense; 3 weights, 1,219 values; fingerprint 1a2b3c4d5e6f``."""
        classes = ", ".join(layer.cls for layer in self.layers) or "no layers"
        return (
            f"{self.model_class}: {classes}; {len(self.weights)} weights, {self.parameters:,} values; "
            f"fingerprint {self.digest[:12]}"
        )

    def changes(self, new: ModelRecord) -> list[str]:
        """What differs from `self` (the old record) in `new`, one line each (empty when nothing user-visible did)."""
        out: list[str] = []
        if self.model_class != new.model_class:
            out.append(f"model class {self.model_class} → {new.model_class}")
        if len(self.layers) != len(new.layers):
            old_classes = ", ".join(layer.cls for layer in self.layers)
            new_classes = ", ".join(layer.cls for layer in new.layers)
            out.append(f"{len(self.layers)} layers → {len(new.layers)}: [{old_classes}] → [{new_classes}]")
        else:
            for i, (a, b) in enumerate(zip(self.layers, new.layers, strict=True)):
                if a.cls != b.cls:
                    out.append(f"layer{i} {a.cls} → {b.cls}")
                    continue
                out += [f"layer{i} {a.cls} {line}" for line in json_changes(json.loads(a.config), json.loads(b.config))]
            if self.topology and new.topology and self.topology != new.topology:
                out.append("the layers are connected differently (functional graph)")
        out += _kind_changes(self.weights, new.weights, "weight ")
        return _capped(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.model_class,
            "layers": [{"class": layer.cls, "config": json.loads(layer.config)} for layer in self.layers],
            "topology": json.loads(self.topology) if self.topology else None,
            "weights": [w.to_dict() for w in self.weights],
        }

    def to_dict(self) -> dict[str, Any]:
        """`to_json` plus the digest and parameter count (what result and baseline files hold)."""
        return {**self.to_json(), "digest": self.digest, "parameters": self.parameters}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRecord:
        """Inverse of `to_dict` / `to_json` (the derived keys are recomputed); KeyError / TypeError on bad input."""
        topology = data.get("topology")
        return cls(
            model_class=str(data["class"]),
            layers=tuple(LayerRecord(str(la["class"]), canonical(la["config"])) for la in data["layers"]),
            weights=tuple(TensorRecord.from_dict(w) for w in data["weights"]),
            topology="" if topology is None else canonical(topology),
        )


# -- the compile settings ------------------------------------------------------------------------------------


class Compiler(TextEnum):
    """Who compiled the model a run trained."""

    FACTORY = "factory"  # the user's factory: its own loss, optimizer and metrics are the truth
    SINECHECK = "sinecheck"  # sinecheck, from the config's optimizer and loss


class CompileSetting(TextEnum):
    """A compile setting a matrix factor changes, read back from the compiled model to verify the change arrived."""

    JIT_COMPILE = "jit_compile"
    LEARNING_RATE = "learning_rate"

    def of(self, record: CompileRecord) -> bool | float | None:
        return record.jit_compile if self is CompileSetting.JIT_COMPILE else record.learning_rate


@dataclass(frozen=True)
class CompileRecord:
    """How the model was compiled, read back from it after compiling: the loss(es), loss weights and metrics as the
    compile call gave them (normalised, canonical JSON), the optimizer's class and full config, its learning rate
    (None for a schedule), ``jit_compile`` (resolved: ``"auto"`` reads as what it means here),
    ``steps_per_execution``, and who compiled it."""

    loss: str
    optimizer: str  # the class, e.g. "Adam" ("LossScaleOptimizer(Adam)" under mixed precision)
    optimizer_config: str
    learning_rate: float | None
    jit_compile: bool
    steps_per_execution: int
    metrics: str = "null"
    loss_weights: str = "null"
    weighted_metrics: str = "null"
    compiled_by: Compiler = Compiler.SINECHECK

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON (who compiled it aside)."""
        data = self.to_json()
        del data["compiled_by"]
        return _sha(canonical(data))

    def metric_names(self) -> list[str]:
        """The compiled metrics as short names (``accuracy``; ``out_a: accuracy`` for one output of several)."""
        return _names(json.loads(self.metrics)) + _names(json.loads(self.weighted_metrics))

    def describe(self) -> str:
        """``loss sparse_categorical_crossentropy, Adam(learning_rate=0.001), metrics accuracy, jit_compile False,
        steps_per_execution 1 (compiled by the factory)``."""
        rate = "a schedule" if self.learning_rate is None else f"{self.learning_rate:g}"
        parts = [
            f"loss {', '.join(_names(json.loads(self.loss))) or '—'}",
            f"{self.optimizer}(learning_rate={rate})",
            f"metrics {', '.join(self.metric_names()) or '—'}",
            f"jit_compile {self.jit_compile}",
            f"steps_per_execution {self.steps_per_execution}",
        ]
        if self.loss_weights != "null":
            parts.insert(1, f"loss_weights {_short(json.loads(self.loss_weights))}")
        by = "the factory" if self.compiled_by is Compiler.FACTORY else "sinecheck"
        return f"{', '.join(parts)} (compiled by {by})"

    def changes(self, new: CompileRecord) -> list[str]:
        """What differs from `self` (the old record) in `new`, one line each, e.g. ``Adam learning_rate 0.001 →
        0.002``."""
        out: list[str] = []
        if self.optimizer != new.optimizer:
            out.append(f"optimizer {self.optimizer} → {new.optimizer}")
        else:
            old_cfg, new_cfg = json.loads(self.optimizer_config), json.loads(new.optimizer_config)
            out += [f"{self.optimizer} {line}" for line in json_changes(old_cfg, new_cfg)]
        for name in ("loss", "loss_weights", "metrics", "weighted_metrics"):
            old, new_value = json.loads(getattr(self, name)), json.loads(getattr(new, name))
            if old != new_value:
                out += [f"{name} {line}" for line in _whole(old, new_value)]
        if self.jit_compile != new.jit_compile:
            out.append(f"jit_compile {self.jit_compile} → {new.jit_compile}")
        if self.steps_per_execution != new.steps_per_execution:
            out.append(f"steps_per_execution {self.steps_per_execution} → {new.steps_per_execution}")
        return _capped(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "loss": json.loads(self.loss),
            "loss_weights": json.loads(self.loss_weights),
            "metrics": json.loads(self.metrics),
            "weighted_metrics": json.loads(self.weighted_metrics),
            "optimizer": {
                "class": self.optimizer,
                "learning_rate": self.learning_rate,
                "config": json.loads(self.optimizer_config),
            },
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
            "compiled_by": self.compiled_by.value,
        }

    def to_dict(self) -> dict[str, Any]:
        """`to_json` plus the digest (what result and baseline files hold)."""
        return {**self.to_json(), "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompileRecord:
        """Inverse of `to_dict` / `to_json`; KeyError / TypeError / ValueError on bad input."""
        optimizer = data["optimizer"]
        rate = optimizer["learning_rate"]
        return cls(
            loss=canonical(data["loss"]),
            optimizer=str(optimizer["class"]),
            optimizer_config=canonical(optimizer["config"]),
            learning_rate=None if rate is None else float(rate),
            jit_compile=bool(data["jit_compile"]),
            steps_per_execution=int(data["steps_per_execution"]),
            metrics=canonical(data.get("metrics")),
            loss_weights=canonical(data.get("loss_weights")),
            weighted_metrics=canonical(data.get("weighted_metrics")),
            compiled_by=Compiler(data.get("compiled_by", Compiler.SINECHECK.value)),
        )


def _names(value: Json) -> list[str]:
    """Short names of a loss or metrics argument: strings as given, objects by class, per output ``out: name``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [n for v in value for n in _names(v)]
    if isinstance(value, dict):
        if "class" in value and "config" in value:
            return [str(value["class"])]
        return [f"{k}: {n}" for k, v in value.items() for n in _names(v)]
    return [canonical(value)]


def _whole(old: Json, new: Json) -> list[str]:
    """A loss or metrics change: key by key for mappings of outputs, else the whole value."""
    if isinstance(old, dict) and isinstance(new, dict) and not ({"class", "config"} <= old.keys()):
        lines = json_changes(old, new)
        added = sorted(new.keys() - old.keys())
        removed = sorted(old.keys() - new.keys())
        lines += [f"{k}: absent → {_short(new[k])}" for k in added] + [
            f"{k}: {_short(old[k])} → absent" for k in removed
        ]
        return lines
    return [f"{', '.join(_names(old)) or '—'} → {', '.join(_names(new)) or '—'}"]


# -- the data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataRecord:
    """A digest of the data a run trained and was scored on (every array's name, dtype, shape and bytes), and
    what could not be digested (a ``tf.data`` pipeline is named, not read)."""

    digest: str
    arrays: tuple[TensorRecord, ...]
    undigested: tuple[str, ...] = ()

    def describe(self) -> str:
        shown = ", ".join(f"{a.name} {a.kind}" for a in self.arrays)
        extra = f"; not digested: {', '.join(self.undigested)}" if self.undigested else ""
        return f"{shown or 'no arrays'}{extra}; digest {self.digest[:12]}"

    def changes(self, new: DataRecord) -> list[str]:
        """What differs from `self` (the old record) in `new`: shapes and dtypes per array, else the values."""
        if self.digest == new.digest:
            return []
        out = _kind_changes(self.arrays, new.arrays)
        if not out:
            out.append(f"same arrays, dtypes and shapes, other values (digest {self.digest[:12]} → {new.digest[:12]})")
        return _capped(out)

    def to_dict(self) -> dict[str, Any]:
        arrays = [a.to_dict() for a in self.arrays]
        return {"digest": self.digest, "arrays": arrays, "undigested": list(self.undigested)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataRecord:
        return cls(
            digest=str(data["digest"]),
            arrays=tuple(TensorRecord.from_dict(a) for a in data["arrays"]),
            undigested=tuple(str(u) for u in data.get("undigested", ())),
        )


def _leaves(value: Any, name: str) -> Iterable[tuple[str, Any]]:
    """(dotted name, leaf) of a nested data value: arrays, tuples / lists, mappings and dataclasses walked."""
    if isinstance(value, np.ndarray) or value is None or isinstance(value, (int, float, str, bool)):
        yield name, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _leaves(getattr(value, f.name), f"{name}.{f.name}" if name else f.name)
    elif isinstance(value, Mapping):
        for k in value:
            yield from _leaves(value[k], f"{name}.{k}" if name else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{name}[{i}]")
    else:
        yield name, value


def data_record(data: Any) -> DataRecord:
    """The `DataRecord` of a data value: NumPy arrays (any dtype) are digested with their names, dtypes and shapes;
    anything else that holds data (a ``tf.data.Dataset``, a ``PyDataset``) is named in ``undigested``."""
    h = hashlib.sha256()
    arrays: list[TensorRecord] = []
    undigested: list[str] = []
    for name, leaf in _leaves(data, ""):
        if leaf is None:
            continue
        if isinstance(leaf, np.ndarray):
            try:
                piece = digest(leaf)
            except TypeError:  # object arrays (Python strings): their values, not their bytes
                piece = _sha(repr(leaf.tolist()))
            arrays.append(TensorRecord(name, str(leaf.dtype), tuple(int(n) for n in leaf.shape)))
        elif isinstance(leaf, (int, float, str, bool)):
            piece = _sha(repr(leaf))
        else:
            undigested.append(f"{name} ({type(leaf).__name__})")
            continue
        h.update(f"{name}={piece};".encode())
    return DataRecord(h.hexdigest(), tuple(arrays), tuple(undigested))


# -- what a config changes on a compiled model ---------------------------------------------------------------


def default_rate(config: TrainConfig) -> bool:
    """Whether the config's learning rate is its optimizer's default (which, on a model its factory compiled, means
    the factory's own)."""
    return config.optimizer.rate == DEFAULT_LEARNING_RATES[config.optimizer.name]


def unused_fields(config: TrainConfig, compiled_by: Compiler | None) -> list[str]:
    """The config's fields that did not decide the run: the built-in architecture with a model spec, the sine grid
    with a data spec, and — on a model its factory compiled — the optimizer, loss and xla left at their defaults
    (the factory's own settings ran)."""
    out: list[str] = []
    if config.model is not None:
        out += ["hidden_units", "activation", "kernel_initializer", "bias_initializer"]
        if compiled_by is Compiler.FACTORY:
            default = TrainConfig()
            if config.optimizer.name == default.optimizer.name and not config.optimizer.params and default_rate(config):
                out.append("optimizer")
            if config.loss == default.loss:
                out.append("loss")
            if not config.xla:
                out.append("xla")
    if config.data is not None:
        out += ["n_points", "x_min", "x_max", "noise_std", "noise_seed"]
    return out
