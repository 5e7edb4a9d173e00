"""Bring-your-own-model specs: every bad spec is a one-line error that says what went wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinecheck.spec import SpecError, build_from_spec, check_fits, data_from_spec, load_callable

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models.py"

BAD = '''
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
'''


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
    model = build_from_spec(f"{EXAMPLES}:lstm_sine")
    x, y = data_from_spec(f"{EXAMPLES}:sine_windows")
    assert x.shape == (1000, 8, 1) and y.shape == (1000, 1)
    check_fits(model, x, spec="lstm")
    flat = np.zeros((10, 1), np.float32)
    assert "input shape (None, 8, 1) does not fit the data" in _message(check_fits, model, flat, spec="lstm")


def test_data_spec_checks_the_arrays(bad_file: Path) -> None:
    assert "expected a pair (x, y)" in _message(data_from_spec, f"{bad_file}:not_a_pair")
    assert "same number (> 0) of samples" in _message(data_from_spec, f"{bad_file}:ragged")
    assert "raised ValueError" in _message(data_from_spec, f"{bad_file}:boom")
