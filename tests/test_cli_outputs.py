"""Golden outputs of the command line: ``--json`` files keep their content (presets) or their shape (every key and
value type, for outputs with measured numbers), so a refactoring cannot silently change what users parse.

Regenerate deliberately, after a reviewed format change:
``SINECHECK_REGEN_GOLDEN=1 pytest tests/test_cli_outputs.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sinecheck.cli import main

GOLDEN = Path(__file__).parent / "golden" / "cli"


#: Paths (keys, lists skipped) whose content Keras decides, not sinecheck: a Keras version may add an optimizer or
#: layer argument without changing sinecheck's format, so only their type is pinned.
KERAS_OWNED = (("compile", "optimizer", "config"), ("model", "layers", "config"), ("model", "topology"))


def shape(value: Any, path: tuple[str, ...] = ()) -> Any:
    """Keys and value types, recursively; a list is described by its first element."""
    if path in KERAS_OWNED:
        return type(value).__name__
    if isinstance(value, dict):
        return {key: shape(item, (*path, key)) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0], path)] if value else []
    return type(value).__name__


def conforms(obtained: Any, expected: Any) -> bool:
    """Does `obtained` have the `expected` shape?  A golden type ``"str|NoneType"`` admits either type: the
    environment decides whether, say, ``OMP_NUM_THREADS`` is set, so the fingerprint holds a string or null."""
    if isinstance(expected, dict):
        return (
            isinstance(obtained, dict)
            and obtained.keys() == expected.keys()
            and all(conforms(obtained[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list):
        return isinstance(obtained, list) and len(obtained) == len(expected) and all(map(conforms, obtained, expected))
    if isinstance(expected, str) and isinstance(obtained, str):
        return obtained in expected.split("|")
    return bool(obtained == expected)


def check_golden(name: str, obtained: Any) -> None:
    path = GOLDEN / name
    if os.environ.get("SINECHECK_REGEN_GOLDEN") and not (
        path.exists() and conforms(obtained, json.loads(path.read_text()))
    ):
        path.write_text(json.dumps(obtained, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert conforms(obtained, expected), f"{name} changed: obtained\n{json.dumps(obtained, indent=1)}\nexpected\n{path}"


def test_presets_json_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--json"]) == 0
    check_golden("presets.json", json.loads(capsys.readouterr().out))


def test_run_json_keeps_its_shape(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert main(["run", "keras-default", "--epochs", "2", "--json", str(out)]) == 0
    check_golden("run.shape.json", shape(json.loads(out.read_text())))


def test_explain_json_keeps_its_shape(tmp_path: Path) -> None:
    out = tmp_path / "explain.json"
    args = ["explain", "keras-default", "tf-explicit", "--seeds", "2", "--epochs", "2", "--out", str(tmp_path)]
    assert main([*args, "--json", str(out)]) == 0
    check_golden("explain.shape.json", shape(json.loads(out.read_text())))


def test_the_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: one changed value type is caught and named."""
    monkeypatch.delenv("SINECHECK_REGEN_GOLDEN", raising=False)
    changed = json.loads((GOLDEN / "run.shape.json").read_text())
    changed[0]["engine"] = "int"
    with pytest.raises(AssertionError, match="run.shape.json changed"):
        check_golden("run.shape.json", changed)


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "PYTHONHASHSEED", "TF_ENABLE_ONEDNN_OPTS"])
def test_an_environment_variable_may_be_set_or_not(variable: str) -> None:
    """CI machines set variables this one does not: the fingerprint's string-or-null fields admit both."""
    expected = json.loads((GOLDEN / "run.shape.json").read_text())
    key = variable.lower() if variable != "TF_ENABLE_ONEDNN_OPTS" else variable
    for value in ("str", "NoneType"):
        obtained = json.loads(json.dumps(expected).replace("|NoneType", ""))
        obtained[0]["fingerprint"][key] = value
        assert conforms(obtained, expected)
    obtained[0]["fingerprint"][key] = "int"
    assert not conforms(obtained, expected)
