"""Seeding helpers and the environment fingerprint that says where a result was produced.

`fingerprint()` only imports TensorFlow when asked to (``probe_tensorflow=True``) or when it is already
imported, so the pytest header and `sinecheck env --light` stay fast.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import numpy as np

#: CPU flags that decide which oneDNN / Eigen kernels run, and so the rounding of a result.
ISA_FLAGS: tuple[str, ...] = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2",
)


@contextlib.contextmanager
def private_initializer_seeds(seed: int) -> Iterator[None]:
    """Within this context, Keras 3 draws the seeds of unseeded initializers from a private ``random.Random(seed)``.

    Keras 3 takes them from Python's process-global `random` (``random.randint`` in ``make_default_seed``), so
    any other thread that uses `random` between seeding and building — a Dask worker's background threads do —
    silently changes a seeded model's initial weights (measured: a study cell trained on a Dask worker came out
    MSE 0.586 instead of 1.346).  A private generator seeded like the global one just was gives the numbers an
    undisturbed process would draw.  A no-op where Keras does not draw seeds this way (Keras 2).
    """
    try:
        from keras.src.random import seed_generator
    except ImportError:
        yield
        return
    if uses_legacy_keras() or not hasattr(seed_generator, "python_random"):
        yield
        return
    shared = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = shared


def seed_everything(seed: int, *, keep_kernel_cache: bool = False) -> None:
    """Seed Python's `random`, NumPy's global RNG, TensorFlow and Keras's global seed generator.

    Uses `keras.utils.set_random_seed`, which also drops Keras's global `SeedGenerator` so initializers
    and dropout draw from the new seed.  Call it *after* `keras.backend.clear_session()`.

    ``keep_kernel_cache=True`` (Keras 3 on TensorFlow) does the same but sets TensorFlow's global seed
    without ``tf.random.set_seed``'s flush of the eager kernel cache, which costs an already compiled
    training loop ~0.25 s of re-instantiation on its next call.  The flush exists to re-seed stateful random
    kernels already instantiated; only use it when the cached kernels draw no random numbers (the fused
    engine's loop) — new random ops, like ``fit``'s shuffle, still take the new seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: invalid value {seed!r}; allowed: an integer in [0, 2**32 - 1]")
    random.seed(seed)
    np.random.seed(seed)
    keep_kernel_cache = keep_kernel_cache and not uses_legacy_keras() and keras_backend() == "tensorflow"
    if keep_kernel_cache:
        try:
            from keras.src.backend.common import global_state
            from keras.src.random import seed_generator
            from keras.src.utils import rng_utils
            from tensorflow.python.eager import context
        except ImportError:  # Keras 2: seed the ordinary way below
            keep_kernel_cache = False
    if keep_kernel_cache:
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)  # keras.utils.set_random_seed,
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)  # minus the flush
        tf_context = context.context()
        tf_context._seed = seed
        tf_context._rng = random.Random(seed)
        return
    from sinecheck.models import keras_module

    keras_module().utils.set_random_seed(seed)


def unseed_everything() -> None:
    """Undo earlier seeding, as if this process had never been seeded: what ``seed=None`` must mean.

    Re-seeds Python's and NumPy's RNGs from OS entropy and clears TensorFlow's global seed (which
    ``clear_session`` keeps), so an unseeded run after a seeded one in the same process is not secretly
    determined by the old seed.  Call it after `keras.backend.clear_session()`.
    """
    random.seed()
    np.random.seed()
    if "tensorflow" in sys.modules or keras_backend() == "tensorflow" or uses_legacy_keras():
        import tensorflow as tf

        tf.random.set_seed(None)
    if keras_backend() == "torch" and "torch" in sys.modules:
        sys.modules["torch"].seed()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_info() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
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
        import json

        with open(path, encoding="utf-8") as fh:
            return str(json.load(fh).get("backend", "tensorflow"))
    except (OSError, ValueError):
        return "tensorflow"


def fingerprint(*, probe_tensorflow: bool = False) -> dict[str, Any]:
    """Facts about this process and machine that can change the bits a training run produces.

    Versions come from package metadata (no import).  Thread settings and the op-determinism state need
    TensorFlow: they are read when TF is already imported or `probe_tensorflow` is set, else reported None.
    """
    model, flags = _cpu_info()
    info: dict[str, Any] = {
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
        "intra_op_threads": None,
        "inter_op_threads": None,
        "op_determinism": None,
    }
    if probe_tensorflow or "tensorflow" in sys.modules:
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config

        info["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        is_enabled = getattr(tf_config, "is_op_determinism_enabled", None)
        info["op_determinism"] = bool(is_enabled()) if is_enabled else None
    return info


def format_fingerprint(info: dict[str, Any]) -> str:
    """One line for the pytest header and logs."""
    threads = "default" if not info.get("intra_op_threads") else (
        f"{info['intra_op_threads']}/{info['inter_op_threads']}")
    det = {True: "on", False: "off", None: "not checked"}[info.get("op_determinism")]
    keras = (f"tf_keras {info['tf_keras']}" if info.get("keras_impl") == "tf_keras"
             else f"keras {info['keras']}")
    return (f"tensorflow {info['tensorflow']}, {keras} ({info['keras_backend']} backend), "
            f"numpy {info['numpy']}, python {info['python']}; oneDNN {'on' if info['onednn'] else 'off'}; "
            f"cpu {info['cpu']} [{info['isa']}], {info['cpu_count']} cores; threads intra/inter {threads}; "
            f"op determinism {det}")
