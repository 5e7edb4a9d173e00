"""Shared by the zoo's check tests: the zoo's specs, loaded once by file path (as a user's ``models.py:NAME``)."""

from __future__ import annotations

from pathlib import Path

from sinecheck.core.specs import ModelSpec

ZOO = Path(__file__).resolve().parents[1] / "examples" / "zoo.py"
MODELS = (
    "mnist_convnet",
    "timeseries_classifier",
    "weather_forecaster",
    "text_transformer",
    "ticket_router",
    "recommender",
    "hashed_ids",
    "mixed_precision_mlp",
)


def zoo_spec(name: str, path: Path = ZOO) -> ModelSpec:
    """The spec of zoo model `name` with its data function, as ``--sinecheck-model`` / ``--sinecheck-data`` give it."""
    return ModelSpec(f"{path}:{name}", f"{path}:{name}_data")
