"""Seeding helpers: seed (or unseed) Python, NumPy, TensorFlow and Keras as one act, and keep Keras's
initializer seeds private to a build."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator

import numpy as np

from sinecheck.core.environment import keras_backend, uses_legacy_keras
from sinecheck.keras.runtime import keras_module


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
