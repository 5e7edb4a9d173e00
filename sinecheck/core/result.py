"""RunResult: everything a training run produced, with digests, stored as JSON + .npz (never pickle)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinecheck._io import atomic_write, load_tensors, save_tensors
from sinecheck.core.compare import digest, json_float
from sinecheck.core.config import TrainConfig

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


@dataclass
class RunResult:
    """The outcome of training one config with one engine.

    Weights are keyed by stable names (``layer0/kernel`` …); predictions are float32 columns on the
    training grid and on the held-out grid; `metrics` are errors against the clean sin(x).  A run whose
    loss became NaN/inf is a result with ``diverged=True``, not an exception.
    """

    config: TrainConfig
    engine: str
    initial_weights: dict[str, np.ndarray]
    final_weights: dict[str, np.ndarray]
    pred_train: np.ndarray
    pred_test: np.ndarray
    loss_history: np.ndarray
    metrics: dict[str, float | None]
    diverged: bool
    diverged_epoch: int | None
    timings: dict[str, float]
    fingerprint: dict[str, Any]
    digests: dict[str, str] = field(default_factory=dict)
    #: How the run departed from a plain seeded `fit` (loaded initial weights, injected noise), if at all.
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.digests:
            self.digests = {
                "initial_weights": digest_tensors(self.initial_weights),
                "final_weights": digest_tensors(self.final_weights),
                "predictions": digest_tensors({"train": self.pred_train, "test": self.pred_test}),
            }

    @property
    def epochs_run(self) -> int:
        """Epochs that completed (fewer than configured when the run diverged and stopped)."""
        return len(self.loss_history)

    def tensors(self) -> dict[str, np.ndarray]:
        """Every array of the run under one flat namespace, the input of `sinecheck.core.compare.compare`."""
        out: dict[str, np.ndarray] = {}
        out.update({f"initial/{k}": v for k, v in self.initial_weights.items()})
        out.update({f"final/{k}": v for k, v in self.final_weights.items()})
        out["pred/train"] = self.pred_train
        out["pred/test"] = self.pred_test
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
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "diverged": self.diverged,
            "diverged_epoch": self.diverged_epoch,
            "epochs_run": self.epochs_run,
            "final_loss": json_float(float(self.loss_history[-1])) if len(self.loss_history) else None,
            "timings": self.timings,
            "digests": self.digests,
            "fingerprint": self.fingerprint,
            "options": self.options,
        }

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
        tensors = load_tensors(stem.with_suffix(".npz"))
        initial = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("initial/")}
        final = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("final/")}
        return cls(
            config=TrainConfig.from_dict(meta["config"]),
            engine=meta["engine"],
            initial_weights=initial,
            final_weights=final,
            pred_train=tensors["pred/train"],
            pred_test=tensors["pred/test"],
            loss_history=tensors["loss"],
            metrics={k: from_json_float(v) for k, v in meta["metrics"].items()},
            diverged=meta["diverged"],
            diverged_epoch=meta["diverged_epoch"],
            timings=meta["timings"],
            fingerprint=meta["fingerprint"],
            digests=meta["digests"],
            options=meta.get("options", {}),
        )


def error_metrics(
    pred_train: np.ndarray, pred_test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray
) -> dict[str, float | None]:
    """MSE and max |error| against the clean sin(x), on the training grid and the held-out grid (float64)."""
    out: dict[str, float | None] = {}
    for split, pred, target in (("train", pred_train, y_train), ("test", pred_test, y_test)):
        err = pred.astype(np.float64) - target.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            out[f"mse_{split}"] = float(np.mean(err**2))
            out[f"max_err_{split}"] = float(np.max(np.abs(err)))
    return out
