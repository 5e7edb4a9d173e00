"""The Keras this process trains with (Keras 3 or tf_keras), imported lazily, and small runtime helpers."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from sinecheck.core.environment import Fingerprint, TensorflowState, fingerprint, uses_legacy_keras


def keras_module() -> Any:
    """The Keras package the factories build with, imported lazily (importing sinecheck stays cheap).

    Keras 3 by default; Keras 2 (the ``tf_keras`` package) when ``TF_USE_LEGACY_KERAS=1`` is set, the same
    switch that makes ``tf.keras`` mean Keras 2 in TensorFlow >= 2.16.
    """
    if uses_legacy_keras():
        import tf_keras

        return tf_keras
    import keras

    return keras


def is_compiled(model: Any) -> bool:
    """Whether the factory compiled its model (Keras 3 and tf_keras say so; else: it has an optimizer)."""
    for attribute in ("compiled", "_is_compiled"):  # Keras 3, tf_keras
        compiled = getattr(model, attribute, None)
        if isinstance(compiled, bool):
            return compiled
    return getattr(model, "optimizer", None) is not None


def to_numpy(tensor: Any) -> Any:
    """A backend tensor (TF, JAX, torch, even one that requires grad) as a NumPy array."""
    keras = keras_module()
    if hasattr(keras, "ops"):
        return keras.ops.convert_to_numpy(tensor)
    return tensor.numpy()


def tensorflow_state() -> TensorflowState:
    """TensorFlow's thread pools and op-determinism switch in this process (imports TensorFlow)."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    is_enabled = getattr(tf_config, "is_op_determinism_enabled", None)
    return TensorflowState(
        intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        op_determinism=bool(is_enabled()) if is_enabled else None,
    )


def probed_fingerprint(*, probe_tensorflow: bool = False) -> Fingerprint:
    """`sinecheck.core.environment.fingerprint` with TensorFlow's thread and op-determinism state, read when TF is
    already imported or `probe_tensorflow` is set (importing it takes seconds), else reported None."""
    probe = probe_tensorflow or "tensorflow" in sys.modules
    return fingerprint(tensorflow=tensorflow_state() if probe else None)


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices with its C++ start-up lines (absl's "I0000 … oneDNN custom operations",
    "could not find cuda drivers", "failed call to cuInit") kept off stderr: TF 2.21 prints them before it reads
    ``TF_CPP_MIN_LOG_LEVEL``.  They are shown if the import fails.  Listing devices does not start TensorFlow's
    runtime, so thread counts and op determinism can still be set afterwards.  Nothing is hidden when TensorFlow is
    already imported or the user asked for its logs (``TF_CPP_MIN_LOG_LEVEL`` 0 or 1)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") in ("0", "1"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
