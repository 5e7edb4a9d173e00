"""The three reference experiments, as named presets of TrainConfigs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """A named reference experiment: one config, or several that must each start from a fresh model."""

    name: str
    summary: str
    configs: tuple[TrainConfig, ...]
    labels: tuple[str, ...]

    def with_overrides(self, **changes: Any) -> Preset:
        """The preset with fields overridden on every config; configs that become equal are merged."""
        changes = {k: v for k, v in changes.items() if v is not None}
        configs: list[TrainConfig] = []
        labels: list[str] = []
        for cfg, label in zip(self.configs, self.labels, strict=True):
            new = cfg.replace(**changes)
            if new not in configs:
                configs.append(new)
                labels.append(label if new.batch_size == cfg.batch_size else f"batch {new.batch_size}")
        return Preset(self.name, self.summary, tuple(configs), tuple(labels))


BATCH_SWEEP_SIZES: tuple[int, ...] = (32, 64, 128)


def _build_presets() -> dict[str, Preset]:
    keras_default = TrainConfig()
    explicit = TrainConfig(
        kernel_initializer=InitializerSpec("truncated_normal", (("stddev", 0.02),)),
        optimizer=OptimizerSpec("adam", 0.01),
    )
    sweep = tuple(
        TrainConfig(hidden_units=(32,), optimizer=OptimizerSpec("adam", 0.01), batch_size=b) for b in BATCH_SWEEP_SIZES
    )
    return {
        "keras-default": Preset(
            "keras-default",
            "Keras defaults: Dense(128, relu) → Dense(1), glorot_uniform, Adam() (lr 0.001), batch 32, 100 epochs",
            (keras_default,),
            ("batch 32",),
        ),
        "tf-explicit": Preset(
            "tf-explicit",
            "explicit control: TruncatedNormal(stddev=0.02) kernels on both layers, Adam(learning_rate=0.01)",
            (explicit,),
            ("batch 32",),
        ),
        "batch-sweep": Preset(
            "batch-sweep",
            "Dense(32, relu) → Dense(1), Adam(learning_rate=0.01), batch 32 / 64 / 128, a fresh model each",
            sweep,
            tuple(f"batch {b}" for b in BATCH_SWEEP_SIZES),
        ),
    }


PRESETS: dict[str, Preset] = _build_presets()


def get_preset(name: str) -> Preset:
    """The named reference experiment; an unknown name is a ConfigError listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"preset: invalid value {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]
