"""RunResult: everything a training run produced, with digests, stored as JSON + .npz (never pickle)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import atomic_write, load_tensors, save_tensors
from sinecheck.core.compare import digest, json_float
from sinecheck.core.config import TrainConfig
from sinecheck.core.enums import TextEnum
from sinecheck.core.environment import Fingerprint
from sinecheck.core.records import CompileRecord, DataRecord, ModelRecord, unused_fields

RESULT_SCHEMA = 1


def digest_tensors(tensors: Mapping[str, np.ndarray]) -> str:
    """sha256 over the names and per-tensor digests (dtype, shape, raw bytes), in the mapping's order."""
    h = hashlib.sha256()
    for name, array in tensors.items():
        h.update(f"{name}={digest(np.asarray(array))};".encode())
    return h.hexdigest()


def from_json_float(value: float | str | None) -> float | None:
    """Inverse of `json_float`."""
    return float(value) if isinstance(value, str) else value


def _number(data: Mapping[str, object], key: str) -> float | None:
    """``data[key]`` read back from `json_float` (or a plain JSON number, NaN included); TypeError on anything else."""
    value = data[key]
    if value is None or isinstance(value, str):
        return from_json_float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{key}: {value!r} is not a number")


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what}: {value!r} is not a mapping")
    return value


def _required(data: Mapping[str, object], key: str) -> float:
    value = _number(data, key)
    if value is None:
        raise TypeError(f"{key}: null; allowed: a number")
    return value


class MetricName(TextEnum):
    """The name of one of a run's `Metrics`, in the order of its JSON (``Metrics.get(MetricName.MSE_TEST)``)."""

    MSE_TRAIN = "mse_train"  # mean squared error against sin(x) on the training grid
    MAX_ERR_TRAIN = "max_err_train"  # greatest |error| there
    MSE_TEST = "mse_test"  # the same on the held-out grid (the points between training points)
    MAX_ERR_TEST = "max_err_test"
    FINAL_LOSS = "final_loss"  # the last epoch's logged loss

    @classmethod
    def errors(cls) -> tuple[MetricName, ...]:
        """The four errors against sin(x): every metric but the loss (never None)."""
        return tuple(name for name in cls if name is not cls.FINAL_LOSS)


#: (name, value) pairs in the order Keras reports them (``loss`` first).
NamedValues = tuple[tuple[str, float], ...]


def _named_values(data: object, what: str) -> NamedValues:
    if not isinstance(data, Mapping):
        raise TypeError(f"{what}: {data!r} is not a mapping of metric name to value")
    return tuple((str(k), _required(data, k)) for k in data)


@dataclass(frozen=True)
class CompiledMetrics:
    """The compiled loss and every compiled metric of the model (Keras ``evaluate`` after training), on the training
    data and on the held-out data.  Empty for the presets, whose errors are measured against sin(x)."""

    train: NamedValues = ()
    held_out: NamedValues = ()

    def __bool__(self) -> bool:
        return bool(self.train or self.held_out)

    def names(self) -> list[str]:
        """Every metric name, training split first, in Keras's order (``loss``, ``accuracy`` …)."""
        seen = [name for name, _ in self.train]
        return seen + [name for name, _ in self.held_out if name not in seen]

    def get(self, name: str, *, held_out: bool = True) -> float | None:
        """The metric called `name` on the held-out (default) or training split; None when there is none."""
        return dict(self.held_out if held_out else self.train).get(name)

    def to_json(self) -> dict[str, dict[str, float | str | None]]:
        return {
            "train": {k: json_float(v) for k, v in self.train},
            "held_out": {k: json_float(v) for k, v in self.held_out},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CompiledMetrics:
        """Inverse of `to_json`; TypeError / KeyError on a malformed value."""
        return cls(_named_values(data["train"], "compiled.train"), _named_values(data["held_out"], "compiled.held_out"))


@dataclass(frozen=True)
class Metrics:
    """A run's errors against the clean sin(x) (float64), on the training grid and the held-out grid, and its
    last logged loss (None when no epoch ran).  NaN/inf when the run diverged.  `compiled`: a user's model's own
    compiled loss and metrics after training (empty for the presets)."""

    mse_train: float
    max_err_train: float
    mse_test: float
    max_err_test: float
    final_loss: float | None
    compiled: CompiledMetrics = CompiledMetrics()

    @property
    def held_out_loss(self) -> float:
        """The number a baseline grades: the compiled loss on the held-out data where the model has one (a user's
        model), else the MSE against sin(x) on the held-out grid."""
        loss = self.compiled.get("loss")
        return self.mse_test if loss is None else loss

    @property
    def held_out_loss_name(self) -> str:
        return "loss held-out" if self.compiled.get("loss") is not None else "MSE held-out"

    def get(self, name: MetricName) -> float | None:
        """The metric called `name` (for code that picks a metric by name, e.g. from an option)."""
        value: float | None = getattr(self, MetricName(name).value)
        return value

    def items(self) -> Iterator[tuple[MetricName, float | None]]:
        """(name, value) of every metric, in JSON order."""
        return ((name, self.get(name)) for name in MetricName)

    def to_json(self) -> dict[str, Any]:
        """``{"mse_train": …, "max_err_train": …, "mse_test": …, "max_err_test": …, "final_loss": …}``, NaN/inf
        as strings (`json_float`), and ``"compiled": {"train": {…}, "held_out": {…}}`` where there are any."""
        out: dict[str, Any] = {name.value: json_float(value) for name, value in self.items()}
        if self.compiled:
            out["compiled"] = self.compiled.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Metrics:
        """Inverse of `to_json`; KeyError / TypeError / ValueError on a missing or malformed field."""
        mse_train, max_err_train, mse_test, max_err_test = (_required(data, n.value) for n in MetricName.errors())
        compiled = data.get("compiled")
        return cls(
            mse_train,
            max_err_train,
            mse_test,
            max_err_test,
            _number(data, MetricName.FINAL_LOSS.value),
            CompiledMetrics() if compiled is None else CompiledMetrics.from_json(_mapping(compiled, "compiled")),
        )


@dataclass(frozen=True)
class Timings:
    """Where a run's wall-clock time went, in seconds (``epoch_ms_median`` in milliseconds).

    ``total_s`` spans the whole run (set-up, training, final weights and predictions); ``setup_s`` seeding,
    building and compiling; ``fit_s`` the training loop; ``trace_s`` (fused engines only, else None) tracing
    the loop before it.  Engines without per-epoch times report the mean epoch as first and median.
    """

    total_s: float
    setup_s: float
    fit_s: float
    first_epoch_s: float
    epoch_ms_median: float
    trace_s: float | None = None

    def to_json(self) -> dict[str, float]:
        """The figures as plain floats, ``trace_s`` left out when None."""
        out = {"total_s": self.total_s, "setup_s": self.setup_s}
        if self.trace_s is not None:
            out["trace_s"] = self.trace_s
        out.update(fit_s=self.fit_s, first_epoch_s=self.first_epoch_s, epoch_ms_median=self.epoch_ms_median)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Timings:
        """Inverse of `to_json`; KeyError / TypeError / ValueError on a missing or malformed field."""
        return cls(
            total_s=_required(data, "total_s"),
            setup_s=_required(data, "setup_s"),
            fit_s=_required(data, "fit_s"),
            first_epoch_s=_required(data, "first_epoch_s"),
            epoch_ms_median=_required(data, "epoch_ms_median"),
            trace_s=_number(data, "trace_s") if "trace_s" in data else None,
        )


@dataclass
class RunResult:
    """The outcome of training one config with one engine.

    Weights are keyed by stable names (``layer0/kernel`` …); predictions are float32 columns on the
    training grid and on the held-out grid (a user's model: its outputs in the dtype it computes them);
    `metrics` are errors against the clean sin(x).  A run whose loss became NaN/inf is a result with
    ``diverged=True``, not an exception.

    A model with several outputs (a list or dict of them) has every output's predictions in
    `output_predictions`, keyed ``train/<output name>`` and ``test/<output name>``; `pred_train` / `pred_test`
    are then its first output's, and `tensors` names them ``pred/train/<output name>`` … instead.
    """

    config: TrainConfig
    engine: str
    initial_weights: dict[str, np.ndarray]
    final_weights: dict[str, np.ndarray]
    pred_train: np.ndarray
    pred_test: np.ndarray
    loss_history: np.ndarray
    metrics: Metrics
    diverged: bool
    diverged_epoch: int | None
    timings: Timings
    fingerprint: Fingerprint
    digests: dict[str, str] = field(default_factory=dict)
    #: How the run departed from a plain seeded `fit` (loaded initial weights, injected noise), if at all.
    options: dict[str, Any] = field(default_factory=dict)
    #: Every output's predictions when the model has several: ``{"train/<output>": …, "test/<output>": …}``.
    output_predictions: dict[str, np.ndarray] = field(default_factory=dict)
    #: What really trained: the architecture fingerprint, how the model was compiled (Keras ``fit`` runs; the other
    #: engines run their own loop) and a digest of the data.  None in results written before they were recorded.
    model_record: ModelRecord | None = None
    compile_record: CompileRecord | None = None
    data_record: DataRecord | None = None

    def __post_init__(self) -> None:
        if not self.digests:
            self.digests = {
                "initial_weights": digest_tensors(self.initial_weights),
                "final_weights": digest_tensors(self.final_weights),
                "predictions": digest_tensors(self.predictions()),
            }

    def predictions(self) -> dict[str, np.ndarray]:
        """The predictions by split (and output): ``{"train": …, "test": …}``, or `output_predictions`."""
        return dict(self.output_predictions) or {"train": self.pred_train, "test": self.pred_test}

    @property
    def epochs_run(self) -> int:
        """Epochs that completed (fewer than configured when the run diverged and stopped)."""
        return len(self.loss_history)

    def tensors(self) -> dict[str, np.ndarray]:
        """Every array of the run under one flat namespace, the input of `sinecheck.core.compare.compare`."""
        out: dict[str, np.ndarray] = {}
        out.update({f"initial/{k}": v for k, v in self.initial_weights.items()})
        out.update({f"final/{k}": v for k, v in self.final_weights.items()})
        out.update({f"pred/{k}": v for k, v in self.predictions().items()})
        out["loss"] = self.loss_history
        return out

    # -- persistence ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe metadata (arrays are left to `save`)."""
        return {
            "schema": RESULT_SCHEMA,
            "config": self.config.to_dict(),
            "config_id": self.config.config_id,
            "engine": self.engine,
            "metrics": self.metrics.to_json(),
            "diverged": self.diverged,
            "diverged_epoch": self.diverged_epoch,
            "epochs_run": self.epochs_run,
            "final_loss": json_float(float(self.loss_history[-1])) if len(self.loss_history) else None,
            "timings": self.timings.to_json(),
            "digests": self.digests,
            "fingerprint": self.fingerprint,
            "options": self.options,
            **self.records_json(),
        }

    def records_json(self) -> dict[str, Any]:
        """The JSON keys of what really trained: ``model``, ``compile``, ``data`` (those recorded), and
        ``config_unused`` — the config fields that did not decide this run (a user's model or data)."""
        out: dict[str, Any] = {}
        if self.model_record is not None:
            out["model"] = self.model_record.to_dict()
        if self.compile_record is not None:
            out["compile"] = self.compile_record.to_dict()
        if self.data_record is not None:
            out["data"] = self.data_record.to_dict()
        compiled_by = None if self.compile_record is None else self.compile_record.compiled_by
        unused = unused_fields(self.config, compiled_by)
        if unused:
            out["config_unused"] = unused
        return out

    def describe(self) -> str:
        """What ran, in one line: the config, and for a user's model how it was really compiled."""
        if self.config.model is None or self.compile_record is None:
            return self.config.describe()
        return f"{self.config.describe()}; {self.compile_record.describe()}"

    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``PATH.json`` (metadata) and ``PATH.npz`` (arrays), each atomically; return both paths."""
        stem = Path(path)
        if stem.suffix in (".json", ".npz"):
            stem = stem.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        npz_path, json_path = stem.with_suffix(".npz"), stem.with_suffix(".json")
        save_tensors(npz_path, self.tensors())
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write(json_path, text)
        return json_path, npz_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        """Read a result written by `save` (either file's path, or the common stem)."""
        stem = Path(path)
        if stem.suffix in (".json", ".npz"):
            stem = stem.with_suffix("")
        json_path = stem.with_suffix(".json")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{json_path}: not a readable sinecheck result ({exc})") from exc
        if meta.get("schema") != RESULT_SCHEMA:
            raise ValueError(
                f"{json_path}: result schema {meta.get('schema')!r}, this sinecheck reads "
                f"{RESULT_SCHEMA}; re-run the experiment to regenerate it"
            )
        try:
            metrics, timings = Metrics.from_json(meta["metrics"]), Timings.from_json(meta["timings"])
            records = (
                None if meta.get("model") is None else ModelRecord.from_dict(meta["model"]),
                None if meta.get("compile") is None else CompileRecord.from_dict(meta["compile"]),
                None if meta.get("data") is None else DataRecord.from_dict(meta["data"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{json_path}: malformed sinecheck result ({type(exc).__name__}: {exc})") from exc
        tensors = load_tensors(stem.with_suffix(".npz"))
        initial = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("initial/")}
        final = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("final/")}
        outputs = {} if "pred/train" in tensors else {k[5:]: v for k, v in tensors.items() if k.startswith("pred/")}
        pred_train, pred_test = (
            (tensors["pred/train"], tensors["pred/test"])
            if not outputs
            else (next(v for k, v in outputs.items() if k.startswith(f"{split}/")) for split in ("train", "test"))
        )
        return cls(
            config=TrainConfig.from_dict(meta["config"]),
            engine=meta["engine"],
            initial_weights=initial,
            final_weights=final,
            pred_train=pred_train,
            pred_test=pred_test,
            loss_history=tensors["loss"],
            metrics=metrics,
            diverged=meta["diverged"],
            diverged_epoch=meta["diverged_epoch"],
            timings=timings,
            fingerprint=meta["fingerprint"],
            digests=meta["digests"],
            options=meta.get("options", {}),
            output_predictions=outputs,
            model_record=records[0],
            compile_record=records[1],
            data_record=records[2],
        )


def error_metrics(
    pred_train: np.ndarray,
    pred_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    *,
    final_loss: float | None,
) -> Metrics:
    """MSE and max |error| against the clean sin(x), on the training grid and the held-out grid (float64).

    NaN where the predictions are not shaped like the targets (a classifier's class scores against its labels):
    there is no error to measure, and broadcasting one against the other would make up a number.
    """
    errors = []
    for pred, target in ((pred_train, y_train), (pred_test, y_test)):
        if pred.shape != target.shape:
            errors += [math.nan, math.nan]
            continue
        err = pred.astype(np.float64) - target.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            errors += [float(np.mean(err**2)), float(np.max(np.abs(err)))]
    mse_train, max_err_train, mse_test, max_err_test = errors
    return Metrics(mse_train, max_err_train, mse_test, max_err_test, final_loss)
