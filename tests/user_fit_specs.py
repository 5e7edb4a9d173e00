"""Models returned with their fit arguments as a `sinecheck.FitSpec` (tests/test_user_data.py): callbacks,
validation data, class weights, and a FitSpec that asks for an argument sinecheck owns."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

import sinecheck

if str(Path(__file__).parent) not in sys.path:  # loaded by file path (a spec): its neighbour too
    sys.path.insert(0, str(Path(__file__).parent))
from user_forms import classifier, small_dense


def with_callbacks() -> sinecheck.FitSpec:
    """EarlyStopping (patience 1 on val_loss) and ReduceLROnPlateau, validation on the last 25 %."""
    return sinecheck.FitSpec(
        small_dense(),
        callbacks=(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0, min_delta=1e9),
        ),
        fit_kwargs={"validation_split": 0.25},
    )


def with_validation_data() -> sinecheck.FitSpec:
    """Stops after 2 epochs only if fit gets the validation data (val_loss never improves by 1e9)."""
    x = np.linspace(0, 1, 16, dtype=np.float32)[:, None]
    return sinecheck.FitSpec(
        small_dense(),
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9)],
        fit_kwargs={"validation_data": (x, np.sin(x))},
    )


def with_epochs() -> sinecheck.FitSpec:
    return sinecheck.FitSpec(small_dense(), fit_kwargs={"epochs": 3})


def with_class_weight() -> sinecheck.FitSpec:
    """class_weight zero for every class: no sample counts, so training changes nothing."""
    return sinecheck.FitSpec(classifier(), fit_kwargs={"class_weight": {0: 0.0, 1: 0.0, 2: 0.0}})


def with_some_class_weight() -> sinecheck.FitSpec:
    return sinecheck.FitSpec(classifier(), fit_kwargs={"class_weight": {0: 1.0, 1: 0.5, 2: 2.0}})
