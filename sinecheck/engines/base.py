"""What every engine shares at the seam: the progress callback and the refusal of configs it cannot train."""

from __future__ import annotations

from collections.abc import Callable

from sinecheck.core.config import TrainConfig
from sinecheck.errors import EngineUnsupported

#: Called after each epoch with (epochs done, epochs in total).
Progress = Callable[[int, int], None]


#: Engines that train any Keras model (a model or data spec): Keras ``fit`` itself.  The others build the
#: Dense stack of a TrainConfig on the sine grid and nothing else.
ANY_MODEL_ENGINES: tuple[str, ...] = ("keras",)


def refuse_custom(config: TrainConfig, engine: str) -> None:
    """Raise EngineUnsupported when `engine` cannot train the config's model or data spec."""
    if config.custom and engine not in ANY_MODEL_ENGINES:
        spec = " and ".join(f"{k} spec {v!r}" for k, v in (("model", config.model), ("data", config.data)) if v)
        raise EngineUnsupported(
            f"engine {engine}: cannot train the {spec} (it builds Dense stacks on the sine data only); allowed: "
            f"{', '.join(ANY_MODEL_ENGINES)} — or ask for a fallback (train(..., fallback='keras'), "
            "--fallback-engine keras)"
        )
