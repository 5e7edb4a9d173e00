"""Every zoo model through ``sinecheck.train`` twice (the same digests) and a golden baseline (issue 14): recorded,
then checked in the same environment (bitwise identical, with the model's compiled loss and metrics stored); an
edited zoo model — its optimizer or a layer — is reported as "your model changed" with the difference, and the
check exits non-zero."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from zoo_support import MODELS, ZOO, zoo_spec

from sinecheck.checks import baseline as bl
from sinecheck.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")


@pytest.mark.parametrize("name", MODELS)
def test_record_then_check_is_identical(name: str, tmp_path: Path) -> None:
    spec = zoo_spec(name)
    configs = bl.baseline_configs(seeds=(0,), short_epochs=2, full=False, model=spec)
    key = bl.EnvKey.current()
    directory = bl.subject_dir(tmp_path, spec)
    first, second = bl.run_baseline_set(configs), bl.run_baseline_set(configs)
    assert [r.digests for r in first.values()] == [r.digests for r in second.values()], "trained twice: same digests"
    bl.record(bl.make_baseline(first, key), directory)
    (result,) = bl.check(bl.make_baseline(second, key).entries, key, directory)
    assert [d.grade for d in result.drifts] == [bl.Grade.IDENTICAL], result.table()
    assert not result.failed(bl.Strictness.BITWISE)
    stored = bl.load_baseline(bl.list_baselines(directory)[0])
    (entry,) = stored.entries.values()
    assert entry.metrics.compiled is not None and entry.metrics.compiled.held_out, "the compiled metrics are stored"


EDITS = (  # (what is edited, replaced by, what the check must say first)
    ('optimizer="adam"', "optimizer=keras.optimizers.Adam(0.002)", "0.001 → 0.002"),  # the optimizer
    ("layers.Dropout(0.5)", "layers.Dropout(0.4)", "0.5 → 0.4"),  # a layer
)


def test_an_edited_zoo_model_is_reported_as_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "zoo.py"
    source = ZOO.read_text()
    models.write_text(source)
    spec = zoo_spec("mnist_convnet", models)
    args = ["baseline", "check", "--model", spec.model, "--data", str(spec.data), "--dir", str(tmp_path / "b")]
    assert main(["baseline", "record", *args[2:], "--short-only"]) == 0
    for old, new, said in EDITS:
        assert old in source
        models.write_text(source.replace(old, new))
        capsys.readouterr()
        assert main([*args, "--short-only"]) == 1
        out = capsys.readouterr().out
        first = out.strip().splitlines()[0]
        assert first.startswith("your model changed since the baseline was recorded") and said in first, out
