"""Data as users have it (issue 14, defects 3, 6 and 7): arrays kept exactly as given, several inputs and outputs,
dicts, tf.data and PyDataset pipelines, `sinecheck.FitSpec` (callbacks, fit arguments), sample and class weights,
subclassed models — each trained by `train`, twice with the same digests, or refused with a one-line error.

The models and data are in ``tests/user_forms.py`` (tiny: 128 samples, a few units, 2–3 epochs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinecheck.core.config import TrainConfig
from sinecheck.core.result import digest_tensors
from sinecheck.errors import ConfigError, EngineUnsupported, SpecError

pytest.importorskip("tensorflow")

from sinecheck.cli import main
from sinecheck.core.data import make_data
from sinecheck.engines.registry import train

FORMS = Path(__file__).resolve().parent / "user_forms.py"
FIT_SPECS = FORMS.with_name("user_fit_specs.py")


def spec(name: str) -> str:
    return f"{FIT_SPECS if name.startswith('with_') else FORMS}:{name}"


def config(model: str, data: str | None = None, **changes: object) -> TrainConfig:
    fields: dict[str, object] = {"epochs": 2, "n_points": 64, "batch_size": 16, **changes}
    return TrainConfig(model=spec(model), data=spec(data) if data else None, **fields)  # type: ignore[arg-type]


def one_line_error(error: type[Exception], fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(error) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def twice(cfg: TrainConfig) -> object:
    """Train `cfg` twice in this process: the digests must be equal (and initial weights must exist)."""
    first, second = train(cfg), train(cfg)
    assert first.digests == second.digests
    assert first.initial_weights and first.digests["initial_weights"] != digest_tensors({})
    return first


# -- defect 3: every array exactly as given ------------------------------------------------------------------


def test_int64_ids_reach_the_model_unchanged() -> None:
    """Issue 14 defect 3: ids above 2**24 were cast to float32 (1979350788 became 1979350784)."""
    data = make_data(config("id_passthrough", "ids"))
    assert data.x_train.dtype == np.int64 and int(data.x_train[0, 0]) == 1979350788
    result = train(config("id_passthrough", "ids"))
    assert float(result.pred_train[0, 0]) == 788  # the model saw the exact id


def test_arrays_keep_their_dtype_and_shape() -> None:
    data = make_data(config("classifier", "classes"))
    assert data.y_train.dtype == np.int64 and data.y_train.shape == (128,)  # not reshaped, not cast
    assert data.x_train.dtype == np.float32


def test_hashed_int64_ids_reproduce() -> None:
    result = twice(config("hashed_ids", "ids"))
    assert result.options["compiled_by_factory"] is True


# -- defect 6: subclassed models -----------------------------------------------------------------------------


def test_subclassed_model_records_its_initial_weights() -> None:
    """Issue 14 defect 6: the initial weights of a subclassed model were hashed before they existed."""
    result = twice(config("subclassed"))
    assert list(result.initial_weights) == list(result.final_weights)
    assert len(result.initial_weights) == 4
    assert any((result.initial_weights[k] != result.final_weights[k]).any() for k in result.final_weights)


def test_a_model_without_weights_after_a_call_is_a_one_line_error() -> None:
    text = one_line_error(SpecError, train, config("lazy"))
    assert "lazy" in text and "weights" in text


# -- defect 7: several inputs and outputs, dicts ----------------------------------------------------------------


def test_two_inputs_two_outputs_with_dict_losses_and_loss_weights() -> None:
    """Issue 14 defect 7: two inputs ended in a NumPy "inhomogeneous shape" error."""
    result = twice(config("two_in_two_out", "two_in_two_out_data"))
    tensors = result.tensors()
    assert tensors["pred/train/score"].shape == (128, 1) and tensors["pred/train/kind"].shape == (128, 3)
    assert tensors["pred/test/score"].shape == (32, 1) and tensors["pred/test/kind"].shape == (32, 3)
    assert "pred/train" not in tensors  # every output under its own name, none twice
    np.testing.assert_array_equal(result.pred_train, tensors["pred/train/score"])  # the first output


def test_dict_inputs_and_tuple_targets() -> None:
    result = train(config("two_in_two_out", "dict_inputs_data"))
    assert {"pred/train/score", "pred/train/kind"} <= set(result.tensors())
    assert not result.diverged


def test_several_outputs_are_compared_and_saved(tmp_path: Path) -> None:
    from sinecheck.core.compare import compare
    from sinecheck.core.result import RunResult

    result = train(config("two_in_two_out", "two_in_two_out_data"))
    json_path, _ = result.save(tmp_path / "run")
    loaded = RunResult.load(json_path)
    assert loaded.digests == result.digests and set(loaded.tensors()) == set(result.tensors())
    np.testing.assert_array_equal(loaded.pred_train, result.pred_train)
    assert compare(result, loaded).identical


# -- defect 7: pipelines ---------------------------------------------------------------------------------------


def test_tf_data_window_pipeline() -> None:
    result = twice(config("window_model", "windows", batch_size=32))
    assert result.pred_train.shape == (128, 1)
    assert "pipeline" in result.options["data"] and "batch_size" in result.options["data"]


def test_tf_data_with_a_held_out_pipeline() -> None:
    result = train(config("window_model", "windows_with_held_out"))
    assert result.pred_train.shape == (128, 1) and result.pred_test.shape == (32, 1)
    assert result.metrics.mse_test != result.metrics.mse_train


def test_a_pipeline_that_never_ends_is_a_one_line_error() -> None:
    text = one_line_error(SpecError, train, config("window_model", "windows_forever"))
    assert "windows_forever" in text and "tf.data.Dataset never ends" in text and "allowed" in text


def test_py_dataset() -> None:
    result = twice(config("window_model", "py_windows"))
    assert result.pred_train.shape == (128, 1)


# -- defect 7: FitSpec (callbacks, fit arguments), sample and class weights -----------------------------------


def test_fit_spec_callbacks_early_stopping_and_reduce_lr() -> None:
    result = twice(config("with_callbacks", epochs=5))
    assert result.epochs_run == 2  # EarlyStopping (patience 1, val_loss never improves by 1e9) stopped it
    assert result.options["fit_spec"] == {
        "callbacks": ["EarlyStopping", "ReduceLROnPlateau"],
        "fit_kwargs": ["validation_split"],
    }


def test_fit_spec_validation_data_reaches_fit() -> None:
    assert train(config("with_validation_data", epochs=5)).epochs_run == 2


def test_fit_spec_refuses_the_arguments_sinecheck_owns() -> None:
    text = one_line_error(SpecError, train, config("with_epochs"))
    assert "epochs" in text and "with_epochs" in text and "allowed" in text


def test_fit_spec_checks_its_fields() -> None:
    import sinecheck

    model = object()
    assert "callbacks" in one_line_error(ConfigError, sinecheck.FitSpec, model, callbacks=3)
    assert "'shuffle'" in one_line_error(ConfigError, sinecheck.FitSpec, model, fit_kwargs={"shuffle": False})
    assert "FitSpec.callbacks" in one_line_error(ConfigError, sinecheck.FitSpec, model, fit_kwargs={"callbacks": []})


def test_sample_weight_from_the_data() -> None:
    """(x, y, sample_weight): all-zero weights make every gradient zero, so training changes nothing."""
    zero = train(config("small_dense", "weighted"))
    assert all((zero.initial_weights[k] == zero.final_weights[k]).all() for k in zero.final_weights)
    twice(config("small_dense", "weighted_half"))


def test_class_weight_through_fit_spec() -> None:
    zero = train(config("with_class_weight", "classes"))
    assert all((zero.initial_weights[k] == zero.final_weights[k]).all() for k in zero.final_weights)
    twice(config("with_some_class_weight", "classes"))


def test_labels_that_do_not_fit_the_loss_are_a_one_line_error() -> None:
    """Issue 14 defect 7: one-hot labels with a sparse loss ended in a 24-line traceback."""
    text = one_line_error(SpecError, train, config("classifier", "one_hot_classes"))
    assert "sparse_categorical_crossentropy" in text and "(128, 3)" in text
    text = one_line_error(SpecError, train, config("categorical_classifier", "classes"))
    assert "categorical_crossentropy" in text and "(128,)" in text and "int64" in text


# -- refusals ------------------------------------------------------------------------------------------------


def test_engines_refuse_a_pipeline_and_diverge_replays_it(capsys: pytest.CaptureFixture[str]) -> None:
    """The fused engine refuses a tf.data pipeline in one line; `diverge` (which used to refuse it) replays it step
    by step: the same model twice is identical, every step replayed bit for bit."""
    cfg = config("window_model", "windows")
    assert "allowed: keras" in one_line_error(EngineUnsupported, train, cfg, engine="fused")
    code = main(["diverge", "--model", spec("window_model"), "--data", spec("windows"), "--epochs", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("identical: every step") == 1 and "steps bit for bit; B" in out, out


def test_inputs_that_do_not_fit_the_model_are_a_one_line_error() -> None:
    text = one_line_error(SpecError, train, config("two_in_two_out", "ids"))
    assert "2 inputs ['numbers', 'tokens'] but x is one array" in text
    text = one_line_error(SpecError, train, config("two_in_two_out", "wrong_keys_data"))
    assert "inputs are ['numbers', 'tokens'] but x has keys ['numbers', 'words']" in text


def test_the_injected_noise_control_wraps_any_model() -> None:
    """The matrix's negative control (GaussianNoise on every output, seeded from the OS) on a subclassed model and
    on two inputs / two outputs: the same initial weights as the plain run, other final weights."""
    for cfg in (config("subclassed"), config("two_in_two_out", "two_in_two_out_data")):
        plain, noisy = train(cfg), train(cfg, unseeded_noise=0.01)
        assert plain.digests["initial_weights"] == noisy.digests["initial_weights"]
        assert plain.digests["final_weights"] != noisy.digests["final_weights"]


def test_cli_run_says_what_the_specs_changed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", spec("with_callbacks"), "--epochs", "5"]) == 0
    out = capsys.readouterr().out
    assert "FitSpec: callbacks EarlyStopping, ReduceLROnPlateau; fit arguments validation_split (epochs run: 2)" in out
    assert main(["run", "--model", spec("window_model"), "--data", spec("py_windows"), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "data: PyDataset: the pipeline decides batching and shuffling (the config's batch_size and shuffle" in out
