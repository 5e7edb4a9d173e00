"""A worker process's environment: the variables and thread settings that can change a run's bits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sinecheck.errors import ConfigError

#: Environment variables an Environment may set; all of them are removed from the inherited environment
#: first, so "not set" really means TensorFlow's default whatever the caller's shell had (the hash seed: see
#: `DEFAULT_HASH_SEED`).
CONTROLLED_VARS: tuple[str, ...] = (
    "TF_ENABLE_ONEDNN_OPTS",
    "KERAS_BACKEND",
    "PYTHONHASHSEED",
    "TF_DETERMINISTIC_OPS",
    "CUDA_VISIBLE_DEVICES",
    "TF_USE_LEGACY_KERAS",
    "OMP_NUM_THREADS",
    "TF_XLA_FLAGS",
)

#: ``PYTHONHASHSEED`` of every worker whose environment does not set it: one hash seed for all of them, so that a
#: factor changes only what it names (the pythonhashseed factor sets 1 against it), and the workers of TensorFlow's
#: default environment can all fork from one process.  A second instance of an environment — the fresh-process
#: factor's new process — gets Python's own random seed instead, as a user's next process does: a model whose
#: results hang on string hashing (a vocabulary read from a set) fails that check, as it fails the user.
DEFAULT_HASH_SEED = "0"


@dataclass(frozen=True)
class Environment:
    """Everything process-wide that a worker is started with.

    `env` sets variables from `CONTROLLED_VARS`; thread counts of None keep TensorFlow's defaults;
    `op_determinism` calls ``tf.config.experimental.enable_op_determinism()`` before any run; `python` runs the
    worker with another interpreter (e.g. a venv with another TensorFlow/Keras that has sinecheck installed).
    """

    name: str = "default"
    env: tuple[tuple[str, str], ...] = ()
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    op_determinism: bool = False
    python: str | None = None

    def __post_init__(self) -> None:
        items = self.env.items() if isinstance(self.env, Mapping) else self.env
        env = tuple(sorted((str(k), str(v)) for k, v in items))
        for key, _ in env:
            if key not in CONTROLLED_VARS:
                raise ConfigError(f"env: invalid variable {key!r}; allowed: {', '.join(CONTROLLED_VARS)}")
        object.__setattr__(self, "env", env)
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name}: invalid value {value!r}; allowed: None or an integer >= 0")

    def variables(self, *, instance: int = 0) -> dict[str, str]:
        """The process environment for the worker: the caller's, minus every controlled var, plus `env`; the hash
        seed `DEFAULT_HASH_SEED` unless `env` sets one (``random`` in a second `instance`)."""
        out = {k: v for k, v in os.environ.items() if k not in CONTROLLED_VARS}
        out.update(dict(self.env))
        out.setdefault("PYTHONHASHSEED", DEFAULT_HASH_SEED if instance == 0 else "random")
        out.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        out["PYTHONUNBUFFERED"] = "1"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env": dict(self.env),
            "intra_op_threads": self.intra_op_threads,
            "inter_op_threads": self.inter_op_threads,
            "op_determinism": self.op_determinism,
            "python": self.python,
        }

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.env] + ([f"python {self.python}"] if self.python else [])
        if self.intra_op_threads is not None or self.inter_op_threads is not None:
            parts.append(f"threads {self.intra_op_threads}/{self.inter_op_threads}")
        if self.op_determinism:
            parts.append("op determinism on")
        return f"{self.name} ({', '.join(parts) or 'TensorFlow defaults'})"
