"""sinecheck: which differences between runs of a small Keras sine model are real?

The pipeline is ``TrainConfig → train → RunResult → compare``.  Importing this package does not import
TensorFlow; training does.
"""

from sinecheck.compare import Comparison, Tolerance, Verdict, compare
from sinecheck.config import PRESETS, InitializerSpec, OptimizerSpec, Preset, TrainConfig, get_preset
from sinecheck.engines import train
from sinecheck.result import RunResult
from sinecheck.seeding import fingerprint, seed_everything

__all__ = [
    "PRESETS", "Comparison", "InitializerSpec", "OptimizerSpec", "Preset", "RunResult", "Tolerance",
    "TrainConfig", "Verdict", "compare", "fingerprint", "get_preset", "seed_everything", "train",
]
__version__ = "0.1.0"
