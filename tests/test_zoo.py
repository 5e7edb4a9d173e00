"""The model zoo of ``examples/zoo.py``: every model builds and trains with plain Keras on its data (sinecheck's
checks of the zoo: test_zoo_matrix.py and test_zoo_baselines.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from zoo_support import zoo

MAX_TRAINING_SAMPLES = 256


def _parts(built: Any) -> tuple[Any, list[Any], dict[str, Any]]:
    """(model, callbacks, fit keyword arguments) of what a factory returned: a model or a FitSpec."""
    if hasattr(built, "fit_kwargs"):
        return built.model, list(built.callbacks), dict(built.fit_kwargs)
    return built, [], {}


def _samples(data: Any) -> int:
    """The number of training samples: of the first array (or dict value), or counted through a dataset."""
    if hasattr(data, "element_spec"):
        return sum(len(np.asarray(y)) for _, y in data)
    first = next(iter(data.values())) if isinstance(data, dict) else data
    return len(first)


def test_the_zoo_lists_every_model_and_its_data() -> None:
    public = {n for n, f in vars(zoo).items() if n[0].islower() and getattr(f, "__module__", None) == zoo.__name__}
    assert len(zoo.MODELS) >= 8
    assert public == {*zoo.MODELS, *(f"{m}_data" for m in zoo.MODELS)}


@pytest.mark.parametrize("name", zoo.MODELS)
def test_builds_and_trains_with_plain_keras(name: str) -> None:
    """One epoch of ``fit`` (with the factory's callbacks and fit arguments), then ``evaluate`` on the held-out
    data: finite losses and metrics; small data; the global dtype policy untouched (mixed precision stays local)."""
    pytest.importorskip("tensorflow")
    from sinecheck.keras.runtime import keras_module

    keras = keras_module()
    model, callbacks, fit_kwargs = _parts(getattr(zoo, name)())
    assert isinstance(model, keras.Model)
    assert model.optimizer is not None, "every zoo factory compiles its model as its example does"
    assert keras.mixed_precision.global_policy().name == "float32"
    data = getattr(zoo, f"{name}_data")()
    if len(data) == 2:  # (train, held-out) datasets: the pipeline batches
        train_data, held_out = data
        history = model.fit(train_data, epochs=1, shuffle=False, verbose=0, callbacks=callbacks, **fit_kwargs)
        scores = model.evaluate(held_out, verbose=0, return_dict=True)
    else:
        x, y, x_held, y_held = data
        history = model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=callbacks, **fit_kwargs)
        scores = model.evaluate(x_held, y_held, verbose=0, return_dict=True)
        train_data = x
    assert 0 < _samples(train_data) <= MAX_TRAINING_SAMPLES
    values = [v for values in history.history.values() for v in values] + list(scores.values())
    assert values and all(math.isfinite(float(v)) for v in values), (history.history, scores)
    if fit_kwargs.get("validation_split"):
        assert "val_loss" in history.history  # what its callbacks monitor


def test_hashed_ids_need_int64() -> None:
    """The ids are int64 above 2**24 that float32 cannot hold: a cast would change them (and their hash bins)."""
    x, _, x_held, _ = zoo.hashed_ids_data()
    for ids in (*x.values(), *x_held.values()):
        assert ids.dtype == np.int64 and ids.min() > 2**24
        assert (ids.astype(np.float32).astype(np.int64) != ids).mean() > 0.5
