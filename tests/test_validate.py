"""A model spec is validated once, before anything trains (`sinecheck.keras.validate.validate_model_spec`): every way
a spec goes wrong is one line naming the spec and the problem — the same words in the pytest plugin (a usage error,
tests/test_packaged_suite.py) and on the command line (exit status 2) — and validating leaves no state behind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sinecheck.cli import main
from sinecheck.core.config import TrainConfig
from sinecheck.core.specs import ModelSpec
from sinecheck.errors import SpecError

pytest.importorskip("tensorflow")

from sinecheck.engines.registry import train
from sinecheck.keras.validate import validate_model_spec

BROKEN = Path(__file__).with_name("user_broken.py")


def spec(model: str, data: str | None = None) -> ModelSpec:
    return ModelSpec(f"{BROKEN}:{model}", f"{BROKEN}:{data}" if data else None)


def one_line(spec: ModelSpec) -> str:
    """The SpecError `validate_model_spec` raises for `spec`: one line."""
    with pytest.raises(SpecError) as caught:
        validate_model_spec(spec)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@pytest.mark.parametrize(
    ("model", "data"), [("tiny", None), ("features", "numbers"), ("sparse_classifier", "class_ids")]
)
def test_a_usable_spec_passes(model: str, data: str | None) -> None:
    validate_model_spec(spec(model, data))


CASES = {
    "wrong input shape": (
        "three_inputs_wide",
        None,
        "the model's input shape (None, 3) does not fit the data: x has shape (1000, 1) (samples first)",
    ),
    "dict data, wrong key": (
        "features",
        "keyed_wrong",
        "the model's input is 'features' but x has keys ['feats']; allowed: a dict keyed by the model's input name",
    ),
    "dict data into a Sequential": ("tiny", "keyed_wrong", "x is a dict (keys ['feats']) but a Sequential model"),
    "factory raises": ("raises", None, "the factory raised RuntimeError: no GPU found (this factory needs CUDA)"),
    "sparse loss, one-hot labels": (
        "sparse_classifier",
        "one_hot",
        "loss sparse_categorical_crossentropy takes class ids, but the labels y have shape (64, 3) (float32) for "
        "outputs of shape (None, 3); allowed: class ids of shape (None,), or one-hot labels with loss "
        "categorical_crossentropy",
    ),
    "categorical loss, class ids": (
        "categorical_classifier",
        "class_ids",
        "loss categorical_crossentropy takes one-hot labels of the output's shape (None, 3), but the labels y have "
        "shape (64,) (int64); allowed: one-hot labels (keras.utils.to_categorical), or class ids with loss "
        "sparse_categorical_crossentropy",
    ),
    "strings into a numeric model": ("tiny", "words", "x holds strings (<U3) but the model's input takes float32"),
    "a loss only running finds wrong": (
        "custom_loss",
        "numbers",
        "the compiled loss <lambda> on the first 2 samples of the data raised",
    ),
}


@pytest.mark.parametrize(("model", "data", "needle"), list(CASES.values()), ids=list(CASES))
def test_a_broken_spec_is_one_line_naming_it(model: str, data: str | None, needle: str) -> None:
    text = one_line(spec(model, data))
    assert text.startswith(f"model spec '{BROKEN}:{model}': "), text
    assert needle in text, text


def test_a_data_function_that_raises_names_the_data_spec() -> None:
    text = one_line(spec("tiny", "raising_data"))
    assert text == f"data spec '{BROKEN}:raising_data': the function raised FileNotFoundError: data/train.csv"


def test_validation_leaves_no_state_behind() -> None:
    """A run right after a validation is bit for bit the run without one (Keras's session cleared, the global random
    states as they were), and the Python random state is untouched."""
    config = TrainConfig(model=f"{BROKEN}:tiny", epochs=2, n_points=64)
    before = train(config)
    random.seed(5)
    state = random.getstate()
    validate_model_spec(spec("tiny"))
    one_line(spec("custom_loss", "numbers"))  # a failed validation too
    assert random.getstate() == state
    assert train(config).digests == before.digests


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--model", f"{BROKEN}:raises"],
        ["matrix", "--model", f"{BROKEN}:raises"],
        ["baseline", "record", "--model", f"{BROKEN}:raises", "--dir", "{tmp}"],
        ["bench", "--model", f"{BROKEN}:raises"],
        ["diverge", "--model", f"{BROKEN}:raises", "--factor", "onednn-off"],
    ],
    ids=lambda argv: argv[0],
)
def test_the_commands_say_the_same_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every command that takes --model validates it before anything trains: exit status 2 and the plugin's words."""
    status = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out, err = capsys.readouterr()
    assert status == 2, out + err
    assert err == f"sinecheck {argv[0]}: error: {one_line(spec('raises'))}\n"
