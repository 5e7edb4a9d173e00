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

#: The files that take a minute or more (measured with ``--durations``), heaviest first.  Collected first, they are
#: the first files ``--dist loadfile`` hands out, so the two workers finish together (longest jobs first) instead of
#: one worker starting the zoo's checks when the other is nearly done.
HEAVY_FIRST = (
    "test_golden_baselines.py",
    "test_packaged_suite.py",
    "test_zoo_matrix.py",
    "test_your_model.py",
    "test_zoo_baselines.py",
    "test_baseline.py",
    "test_matrix.py",
    "test_compiled_model.py",
    "test_properties.py",
)


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """Heavy files first; a stable sort keeps every file's tests together and in their order."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
