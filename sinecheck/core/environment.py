"""Seeding helpers and the environment fingerprint that says where a result was produced.

This module never imports TensorFlow (an import-linter contract says so): the TensorFlow-side facts (threads,
op determinism) come in as a `TensorflowState`, read by `sinecheck.keras.runtime.probed_fingerprint`, so the pytest
header and `sinecheck env --light` stay fast.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import TypedDict

import numpy as np

#: CPU flags that decide which oneDNN / Eigen kernels run, and so the rounding of a result.
ISA_FLAGS: tuple[str, ...] = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
)


class Fingerprint(TypedDict, total=False):
    """What `fingerprint` reports, key by key, in the order of its JSON.  `fingerprint` fills every key; one read
    back from a file of an older sinecheck (or a hand-made one) may lack some, so readers use ``.get``."""

    python: str
    platform: str  # "Linux-x86_64"
    numpy: str
    tensorflow: str | None  # None: not installed (versions come from package metadata, never an import)
    keras: str | None
    tf_keras: str | None
    keras_impl: str  # "keras" or "tf_keras" (TF_USE_LEGACY_KERAS)
    keras_backend: str
    onednn: bool
    TF_ENABLE_ONEDNN_OPTS: str | None
    cpu: str
    cpu_count: int | None
    isa: str  # see `isa_class`
    isa_flags: list[str]
    omp_num_threads: str | None
    pythonhashseed: str | None
    intra_op_threads: int | None  # None: TensorFlow not probed
    inter_op_threads: int | None
    op_determinism: bool | None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_info() -> tuple[str, list[str]]:
    model: str = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and model in ("", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    return model, flags


def isa_class(flags: list[str]) -> str:
    """A coarse CPU instruction-set class (oneDNN picks kernels by it): avx512 / avx2 / avx / sse / arm / other."""
    present = set(flags)
    if "avx512f" in present:
        return "avx512"
    if "avx2" in present:
        return "avx2"
    if "avx" in present:
        return "avx"
    if "sse4_2" in present:
        return "sse"
    if "asimd" in present or platform.machine() in ("aarch64", "arm64"):
        return "arm"
    return "other"


def onednn_enabled() -> bool:
    """Whether TF uses oneDNN: `TF_ENABLE_ONEDNN_OPTS` if set, else TF's default (on for x86-64 Linux/Windows)."""
    raw = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if raw is not None:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return platform.machine().lower() in ("x86_64", "amd64")


def uses_legacy_keras() -> bool:
    """Whether this process trains with Keras 2 (``tf_keras``): ``TF_USE_LEGACY_KERAS`` is set to 1/true."""
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")


def keras_backend() -> str:
    """The Keras backend that `import keras` selects (env var, then ~/.keras/keras.json), without importing it."""
    if uses_legacy_keras():
        return "tensorflow"
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        config = getattr(keras, "config", None)  # Keras 3; Keras 2 (tf.keras of TF <= 2.15) has backend.backend()
        return str(config.backend() if config is not None else keras.backend.backend())
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    path = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return str(json.load(fh).get("backend", "tensorflow"))
    except (OSError, ValueError):
        return "tensorflow"


@dataclass(frozen=True)
class TensorflowState:
    """TensorFlow's process-wide settings that change bits: its thread pools and op determinism."""

    intra_op_threads: int
    inter_op_threads: int
    op_determinism: bool | None  # None: this TensorFlow cannot say


def fingerprint(*, tensorflow: TensorflowState | None = None) -> Fingerprint:
    """Facts about this process and machine that can change the bits a training run produces.

    Versions come from package metadata (no import).  The thread settings and the op-determinism state are
    TensorFlow's: given as `tensorflow` (see `sinecheck.keras.runtime.probed_fingerprint`), else reported None.
    """
    model, flags = _cpu_info()
    info: Fingerprint = {
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "numpy": np.__version__,
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "keras": _version("keras"),
        "tf_keras": _version("tf-keras"),
        "keras_impl": "tf_keras" if uses_legacy_keras() else "keras",
        "keras_backend": keras_backend(),
        "onednn": onednn_enabled(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "isa": isa_class(flags),
        "isa_flags": [f for f in ISA_FLAGS if f in flags],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "intra_op_threads": None if tensorflow is None else tensorflow.intra_op_threads,
        "inter_op_threads": None if tensorflow is None else tensorflow.inter_op_threads,
        "op_determinism": None if tensorflow is None else tensorflow.op_determinism,
    }
    return info


def format_fingerprint(info: Fingerprint) -> str:
    """One line for the pytest header and logs."""
    threads = (
        "default" if not info.get("intra_op_threads") else (f"{info['intra_op_threads']}/{info['inter_op_threads']}")
    )
    det = {True: "on", False: "off", None: "not checked"}[info.get("op_determinism")]
    keras = f"tf_keras {info['tf_keras']}" if info.get("keras_impl") == "tf_keras" else f"keras {info['keras']}"
    return (
        f"tensorflow {info['tensorflow']}, {keras} ({info['keras_backend']} backend), "
        f"numpy {info['numpy']}, python {info['python']}; oneDNN {'on' if info['onednn'] else 'off'}; "
        f"cpu {info['cpu']} [{info['isa']}], {info['cpu_count']} cores; threads intra/inter {threads}; "
        f"op determinism {det}"
    )
