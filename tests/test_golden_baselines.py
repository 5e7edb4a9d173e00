"""This environment against the golden baselines checked in under tests/baselines (the plugin's
``--sinecheck-baseline`` / ``--sinecheck-baseline-dir`` / ``--sinecheck-strict`` decide what happens).

On the machine type the baseline was recorded on (see README) this trains the reference configs with ``fit``
and requires them bit for bit; after a TensorFlow/Keras upgrade it grades the drift against the most recent
older baseline; where no baseline fits (another CPU class), it is skipped with the command that records one.  A model
given with ``--sinecheck-model`` is checked by the packaged suite (``test_golden_baseline[model]``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")


def test_this_environment_matches_its_golden_baselines(sinecheck_baseline) -> None:
    sinecheck_baseline.verify()
