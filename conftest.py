"""Repository-level test setup: hypothesis profiles and a quiet TensorFlow.  The plugin does the rest."""

import os

from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Training time varies run to run, so no per-example deadline; "ci" explores more, "dev" stays quick.
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile(
    "ci", max_examples=60, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("SINECHECK_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
