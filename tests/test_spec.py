"""Bring-your-own-model specs: every bad spec is a one-line error that says what went wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinecheck.core.specs import data_from_spec, load_callable
from sinecheck.errors import SpecError
from sinecheck.keras.user_model import build_from_spec, check_fits

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models.py"

BAD = """
import numpy as np
NOT_CALLABLE = 3
def boom():
    raise ValueError("no weights today")
def not_a_model():
    return {"layers": 2}
def not_a_pair():
    return np.zeros(3)
def ragged():
    return np.zeros((5, 1)), np.zeros((4, 1))
def five():
    return np.zeros((5, 1)), np.zeros((5, 1)), np.zeros((5, 1)), np.zeros((5, 1)), np.zeros((5, 1))
def weights_short():
    return np.zeros((5, 1)), np.zeros((5, 1)), np.zeros(4)
def held_out_shape():
    return np.zeros((5, 1)), np.zeros((5, 1)), np.zeros((3, 2)), np.zeros((3, 1))
def strings():
    return np.array(["a", "b"]), np.array(["c", "d"])
def nested():
    return (np.zeros((5, 1)), {"a": np.zeros((5, 1))}), np.zeros(5)
"""


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad_models.py"
    path.write_text(BAD)
    return path


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_spec_errors_name_the_spec_and_the_reason(bad_file: Path) -> None:
    assert "expected MODULE:CALLABLE" in _message(load_callable, "no_colon_here")
    assert "module 'nosuchpkg' not found" in _message(load_callable, "nosuchpkg.models:f")
    assert "file 'missing/models.py' not found" in _message(load_callable, "missing/models.py:f")
    text = _message(load_callable, f"{bad_file}:nothere")
    assert "'nothere' not found" in text and "boom" in text  # lists what is there
    assert "is not callable (it is a int)" in _message(load_callable, f"{bad_file}:NOT_CALLABLE")
    assert "data spec" in _message(load_callable, "x", kind="data")


def test_model_spec_checks_what_the_factory_does(bad_file: Path) -> None:
    pytest.importorskip("tensorflow")
    assert "the factory raised ValueError: no weights today" in _message(build_from_spec, f"{bad_file}:boom")
    assert "returned a dict, not a Keras model" in _message(build_from_spec, f"{bad_file}:not_a_model")
    model = build_from_spec(f"{EXAMPLES}:lstm_next")
    x, y, x_held, y_held = data_from_spec(f"{EXAMPLES}:sine_windows")
    assert x.shape == x_held.shape == (1000, 8, 1) and y.shape == y_held.shape == (1000, 1)
    assert not np.isin(x_held, x).all()
    check_fits(model, x, spec="lstm")
    flat = np.zeros((10, 1), np.float32)
    assert "input shape (None, 8, 1) does not fit the data" in _message(check_fits, model, flat, spec="lstm")
    check_fits(build_from_spec(f"{EXAMPLES}:lstm_sine"), flat, spec="lstm_sine")


def test_data_spec_checks_the_arrays(bad_file: Path) -> None:
    assert "expected a pair (x, y)" in _message(data_from_spec, f"{bad_file}:not_a_pair")
    assert "same number (> 0) of samples" in _message(data_from_spec, f"{bad_file}:ragged")
    assert "raised ValueError" in _message(data_from_spec, f"{bad_file}:boom")
    assert "returned a 5-tuple" in _message(data_from_spec, f"{bad_file}:five")
    assert "sample_weight (4,); expected the same number" in _message(data_from_spec, f"{bad_file}:weights_short")
    assert "x_held_out has shape (3, 2) but x (5, 1)" in _message(data_from_spec, f"{bad_file}:held_out_shape")
    assert "y is <U1; expected numbers" in _message(data_from_spec, f"{bad_file}:strings")  # (x may be strings)
    assert "x[1] is a dict; allowed: an array" in _message(data_from_spec, f"{bad_file}:nested")


def test_module_specs_import_from_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    """`sinecheck` is a console script: the current directory is not on sys.path unless the loader puts it there."""
    import sys

    (tmp_path / "user_pkg_for_spec_test.py").write_text("def make():\n    return 42\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_callable("user_pkg_for_spec_test:make")() == 42


def test_spec_labels_and_slugs() -> None:
    from sinecheck.core.specs import spec_label, spec_slug

    assert spec_label("examples/models.py:lstm_sine") == "lstm_sine"
    assert spec_slug("examples/models.py:lstm_sine") == "models-lstm_sine"
    assert spec_slug("/elsewhere/examples/models.py:lstm_sine") == "models-lstm_sine"
    assert spec_slug("pkg.mod:f", "./data.py:g") == "pkg-mod-f+data-data-g"
    assert spec_slug(None) == "sine"
