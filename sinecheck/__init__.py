"""sinecheck: which differences between runs of a small Keras sine model are real?

The pipeline is ``TrainConfig → train → RunResult → compare``.  Importing this package does not import
TensorFlow; training does.
"""

from sinecheck.core.compare import Comparison, Tolerance, Verdict, compare
from sinecheck.core.config import InitializerSpec, OptimizerSpec, TrainConfig
from sinecheck.core.environment import Fingerprint
from sinecheck.core.presets import PRESETS, Preset, get_preset
from sinecheck.core.result import MetricName, Metrics, RunResult, Timings
from sinecheck.engines.registry import train
from sinecheck.keras.fit_spec import FitSpec
from sinecheck.keras.runtime import probed_fingerprint as fingerprint
from sinecheck.keras.seeding import seed_everything

__all__ = [
    "PRESETS",
    "Comparison",
    "Fingerprint",
    "FitSpec",
    "InitializerSpec",
    "MetricName",
    "Metrics",
    "OptimizerSpec",
    "Preset",
    "RunResult",
    "Timings",
    "Tolerance",
    "TrainConfig",
    "Verdict",
    "compare",
    "fingerprint",
    "get_preset",
    "seed_everything",
    "train",
]
__version__ = "0.1.0"
