"""Ways to train a TrainConfig.  `keras` (Keras ``fit``) is the reference every other engine must match."""

from sinecheck.engines.registry import ENGINES, train

__all__ = ["ENGINES", "train"]
