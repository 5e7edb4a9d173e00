"""`diverge --factor onednn-off` on every model of examples/zoo.py: no traceback, every step replayed bit for bit on
both sides, and a layer named wherever the runs part; each trace is bit for bit the run `train` makes.  About
2 minutes for the 8 models, so it runs only when asked: ``SINECHECK_DIVERGE_ZOO=1 pytest tests/test_diverge_zoo.py``
(the default suite covers each model class with tiny models in tests/test_diverge_layers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from zoo_support import MODELS, zoo_spec

pytestmark = pytest.mark.skipif(
    not os.environ.get("SINECHECK_DIVERGE_ZOO"), reason="the zoo's diverge check runs with SINECHECK_DIVERGE_ZOO=1"
)


@pytest.mark.parametrize("name", MODELS)
def test_diverge_names_a_layer_on_every_zoo_model(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import json

    from sinecheck.cli import main

    spec = zoo_spec(name)
    out = tmp_path / "d.json"
    argv = ["diverge", "--model", spec.model, "--data", str(spec.data), "--factor", "onednn-off", "--json", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    for side in ("a", "b"):
        replay = record[side]["replay"]
        assert replay["exact"] == replay["steps"] > 0, replay
    assert record["stage"] == "identical" or record["layer"] is not None, record["summary"]


@pytest.mark.parametrize("name", MODELS)
def test_the_trace_of_every_zoo_model_is_the_run_train_makes(name: str) -> None:
    from sinecheck.checks.trace import Replay, trace_fit
    from sinecheck.engines.registry import train

    config = zoo_spec(name).config(epochs=2)
    trace = trace_fit(config)
    final = train(config).final_weights
    assert (trace.replay == Replay.EXACT).all(), trace.replay_note
    assert np.array_equal(trace.weights[-1], np.concatenate([w.ravel().astype(np.float32) for w in final.values()]))
