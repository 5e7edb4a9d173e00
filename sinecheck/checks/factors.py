"""Environment factors of the determinism matrix: the two sides each factor compares and what is expected of them."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from sinecheck.core.config import TrainConfig
from sinecheck.core.enums import TextEnum
from sinecheck.core.records import CompileSetting
from sinecheck.errors import ConfigError
from sinecheck.isolation.environment import Environment


class Expectation(TextEnum):
    """What a factor promises on any machine: its two sides bitwise IDENTICAL, NOT_IDENTICAL (a negative
    control), or nothing (MEASURED: the verdict is reported, not judged)."""

    IDENTICAL = "identical"
    NOT_IDENTICAL = "not identical"
    MEASURED = "measured"


BASE = Environment("default")

#: TrainConfig fields a side changes from the row's base config: (field name, new value) pairs.
ConfigChanges = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: where and how a run of the row's base config is made."""

    environment: Environment = BASE
    changes: ConfigChanges = ()
    instance: int = 0  # 1 = a second, fresh process of the same environment
    repeat: int = 0  # 1 = the same run made again in the same process
    unseeded_noise: float = 0.0
    initial_from: Side | None = None  # start from the initial weights of this side's run

    def config(self, base: TrainConfig) -> TrainConfig:
        return base.replace(**dict(self.changes)) if self.changes else base


@dataclass(frozen=True)
class Factor:
    """A question about reproducibility, answered by comparing side `a` with side `b` on every row."""

    name: str
    question: str
    a: Side
    b: Side
    expect: Expectation = Expectation.MEASURED
    requires: tuple[str, ...] = ()  # importable modules the factor needs
    epoch_sensitive: bool = True  # whether the verdict's grade can change with the number of epochs
    #: The compile setting side `b` changes: read back from both compiled models, it must differ, or the cell is an
    #: error (a change that never reached the model would compare a run with itself and say "identical").
    reaches: CompileSetting | None = None

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


_NO_SHUFFLE = (("shuffle", False),)


_BASE_NO_SHUFFLE = Side(changes=_NO_SHUFFLE)


def _threads(n: int) -> Factor:
    """`n` intra- and inter-op threads vs TensorFlow's default."""
    environment = Environment(f"threads-{n}", intra_op_threads=n, inter_op_threads=n)
    return Factor(f"threads-{n}", f"intra/inter-op threads {n} vs TensorFlow's default", Side(), Side(environment))


def _backend(backend: str, label: str) -> Factor:
    """Keras 3 on `backend` (`label` in the question) vs TensorFlow, from the same initial weights (each backend
    draws its own with the same seed), shuffle off; needs the `backend` module."""
    environment = Environment(f"backend-{backend}", (("KERAS_BACKEND", backend),))
    return Factor(
        f"backend-{backend}",
        f"Keras 3 on {label} vs TensorFlow, same initial weights, no shuffle",
        _BASE_NO_SHUFFLE,
        Side(environment, _NO_SHUFFLE, initial_from=_BASE_NO_SHUFFLE),
        requires=(backend,),
    )


FACTORS: tuple[Factor, ...] = (
    Factor(
        "same-process",
        "same seed, same process, trained twice",
        Side(),
        Side(repeat=1),
        Expectation.IDENTICAL,
        epoch_sensitive=False,
    ),
    Factor(
        "fresh-process",
        "same seed, a second fresh process",
        Side(),
        Side(instance=1),
        Expectation.IDENTICAL,
        epoch_sensitive=False,
    ),
    Factor(
        "no-seed",
        "no seed at all, trained twice (negative control)",
        Side(changes=(("seed", None),)),
        Side(changes=(("seed", None),), repeat=1),
        Expectation.NOT_IDENTICAL,
        epoch_sensitive=False,
    ),
    Factor(
        "injected-noise",
        "an unseeded GaussianNoise layer, trained twice (negative control)",
        Side(unseeded_noise=0.01),
        Side(unseeded_noise=0.01, repeat=1),
        Expectation.NOT_IDENTICAL,
        epoch_sensitive=False,
    ),
    Factor(
        "op-determinism",
        "enable_op_determinism() on vs off",
        Side(),
        Side(Environment("op-determinism", op_determinism=True)),
    ),
    _threads(1),
    _threads(2),
    _threads(8),
    Factor(
        "onednn-off",
        "TF_ENABLE_ONEDNN_OPTS=0 vs the default (on for x86)",
        Side(),
        Side(Environment("onednn-off", (("TF_ENABLE_ONEDNN_OPTS", "0"),))),
    ),
    Factor(
        "pythonhashseed",
        "PYTHONHASHSEED=0 vs PYTHONHASHSEED=1",
        Side(),  # every worker's hash seed is 0 unless its environment sets one (`DEFAULT_HASH_SEED`)
        Side(Environment("pythonhashseed-1", (("PYTHONHASHSEED", "1"),))),
    ),
    Factor("shuffle-off", "fit(shuffle=False) vs shuffle=True, same seed", Side(), _BASE_NO_SHUFFLE),
    Factor(
        "xla",
        "jit_compile=True vs False (the model's own compile, re-compiled with XLA)",
        Side(),
        Side(changes=(("xla", True),)),
        reaches=CompileSetting.JIT_COMPILE,
    ),
    Factor(
        "lr",
        "twice the model's own learning rate (a positive control: the change must reach the model)",
        Side(),
        Side(changes=(("lr_scale", 2.0),)),
        Expectation.NOT_IDENTICAL,
        epoch_sensitive=False,
        reaches=CompileSetting.LEARNING_RATE,
    ),
    Factor(
        "tf-keras",
        "Keras 2 (tf_keras) vs Keras 3, same seed",
        Side(),
        Side(Environment("tf-keras", (("TF_USE_LEGACY_KERAS", "1"),))),
        requires=("tf_keras",),
    ),
    _backend("jax", "JAX"),
    _backend("torch", "torch"),
)


FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)


def select_factors(names: Sequence[str] | None) -> list[Factor]:
    """The named factors in matrix order (all when `names` is empty); unknown names are a ConfigError."""
    if not names:
        return list(FACTORS)
    unknown = [n for n in names if n not in FACTOR_NAMES]
    if unknown:
        raise ConfigError(f"factor: invalid value {unknown[0]!r}; allowed: {', '.join(FACTOR_NAMES)}")
    return [f for f in FACTORS if f.name in names]


def factor_by_name(name: str) -> Factor:
    """The factor called `name` (a ConfigError listing the known ones otherwise)."""
    return select_factors([name])[0]
