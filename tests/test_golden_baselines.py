"""This environment against the golden baselines checked in under tests/baselines (the plugin's
``--sinecheck-baseline`` / ``--sinecheck-baseline-dir`` / ``--sinecheck-strict`` decide what happens).

On the machine type the baseline was recorded on (see README) this trains the reference configs with ``fit``
and requires them bit for bit; after a TensorFlow/Keras upgrade it grades the drift against the most recent
older baseline; where no baseline fits (another CPU class), it is skipped with the command that records one.
"""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")


def test_this_environment_matches_its_golden_baselines(sinecheck_baseline) -> None:
    sinecheck_baseline.verify()


def test_your_model_matches_its_golden_baselines(sinecheck_baseline, sinecheck_model) -> None:
    """With ``--sinecheck-model=SPEC`` (e.g. ``examples/models.py:lstm_sine``): that model's baseline set (seeds
    0-2, 5 and 20 epochs) against its own baselines under ``<baseline dir>/<model slug>/``."""
    sinecheck_baseline.verify(sinecheck_model)
