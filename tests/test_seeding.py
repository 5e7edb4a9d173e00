"""seed_everything and the environment fingerprint."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from sinecheck.core.environment import fingerprint, format_fingerprint, isa_class, onednn_enabled
from sinecheck.keras.seeding import seed_everything


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True, None])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)  # type: ignore[arg-type]


def test_seed_everything_seeds_python_numpy_and_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    seed_everything(3)
    first = (random.random(), np.random.rand(), float(tf.random.uniform(())))
    seed_everything(3)
    assert (random.random(), np.random.rand(), float(tf.random.uniform(()))) == first
    seed_everything(4)
    assert random.random() != first[0]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["sse4_2", "avx", "avx2", "avx512f"], "avx512"),
        (["sse4_2", "avx", "avx2", "fma"], "avx2"),
        (["sse4_2", "avx"], "avx"),
        (["sse4_2"], "sse"),
    ],
)
def test_isa_class(flags: list[str], expected: str) -> None:
    assert isa_class(flags) == expected


@pytest.mark.parametrize(("value", "expected"), [("0", False), ("1", True), ("false", False), ("TRUE", True)])
def test_onednn_flag_from_env(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", value)
    assert onednn_enabled() is expected


def test_fingerprint_fields() -> None:
    info = fingerprint()
    for key in (
        "python",
        "numpy",
        "tensorflow",
        "keras",
        "keras_backend",
        "onednn",
        "cpu",
        "isa",
        "isa_flags",
        "intra_op_threads",
        "inter_op_threads",
        "op_determinism",
        "platform",
    ):
        assert key in info
    assert info["numpy"] == np.__version__
    line = format_fingerprint(info)
    assert f"tensorflow {info['tensorflow']}" in line and "oneDNN" in line


def test_fingerprint_does_not_import_tensorflow() -> None:
    code = (
        "import sys, sinecheck.core.environment as s; s.fingerprint(); "
        "import sinecheck.pytest_plugin, sinecheck.cli; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_fingerprint_probe_reads_thread_and_determinism_state() -> None:
    code = (
        "import tensorflow as tf, json; tf.config.threading.set_intra_op_parallelism_threads(1); "
        "tf.config.threading.set_inter_op_parallelism_threads(2); "
        "tf.config.experimental.enable_op_determinism(); "
        "from sinecheck import fingerprint; print(json.dumps(fingerprint(probe_tensorflow=True)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert (info["intra_op_threads"], info["inter_op_threads"], info["op_determinism"]) == (1, 2, True)


def test_initializer_seeds_are_immune_to_other_users_of_python_random() -> None:
    """Keras 3 draws initializer seeds from Python's global `random`; a draw by anyone else in between (another
    thread: a Dask worker's) changes a seeded model — unless built under `private_initializer_seeds`."""
    pytest.importorskip("tensorflow")
    import random

    from sinecheck.core.config import TrainConfig
    from sinecheck.keras.models import build_model
    from sinecheck.keras.seeding import private_initializer_seeds, seed_everything

    cfg = TrainConfig(hidden_units=(4,), epochs=1)

    def build(disturb: bool, guarded: bool) -> list:
        seed_everything(3)
        if disturb:
            random.random()  # what another thread may do at any moment
        if guarded:
            with private_initializer_seeds(3):
                return build_model(cfg).get_weights()
        return build_model(cfg).get_weights()

    undisturbed = build(False, False)
    assert all((a == b).all() for a, b in zip(build(True, True), undisturbed, strict=True))
    assert not all((a == b).all() for a, b in zip(build(True, False), undisturbed, strict=True))  # the hazard
