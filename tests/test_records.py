"""The records of what really trained — model, compile settings, data — alone: normalised alike in Keras 2 and 3,
differences in words, and a baseline grading a changed model CHANGED at every strictness (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np

from sinecheck.checks import baseline as bl
from sinecheck.core.compare import Tolerance
from sinecheck.core.config import TrainConfig
from sinecheck.core.records import (
    Compiler,
    CompileRecord,
    DataRecord,
    LayerRecord,
    ModelRecord,
    TensorRecord,
    canonical,
    data_record,
    json_changes,
    normalize,
)
from sinecheck.core.result import Metrics


def _compile_record(rate: float, **changes: object) -> CompileRecord:
    optimizer = {"learning_rate": rate, "beta_1": 0.9, "epsilon": 1e-7}
    fields: dict[str, object] = {
        "loss": canonical("sparse_categorical_crossentropy"),
        "optimizer": "Adam",
        "optimizer_config": canonical(optimizer),
        "learning_rate": rate,
        "jit_compile": False,
        "steps_per_execution": 1,
        "metrics": canonical(["accuracy"]),
        "compiled_by": Compiler.FACTORY,
    }
    fields.update(changes)
    return CompileRecord(**fields)  # type: ignore[arg-type]


def _model_record(units: int = 16) -> ModelRecord:
    dense = {"units": units, "activation": "relu", "kernel_initializer": {"class": "GlorotUniform", "config": {}}}
    return ModelRecord(
        "Sequential",
        (LayerRecord("Dense", canonical(dense)),),
        (
            TensorRecord("layer0.dense/kernel", "float32", (8, units)),
            TensorRecord("layer0.dense/bias", "float32", (units,)),
        ),
    )


def test_keras_2_and_3_configs_of_one_model_read_the_same() -> None:
    """Names (session counters), module paths, dtype policies, float32 rounding and Keras 2's "auto" reduction are
    normalised away; keys only one Keras version has are not compared."""
    keras3 = {
        "name": "dense_7",
        "dtype": {
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": {"name": "float32"},
            "registered_name": None,
        },
        "units": 8,
        "kernel_initializer": {
            "module": "keras.initializers",
            "class_name": "GlorotUniform",
            "config": {"seed": None, "input_axes": None},
            "registered_name": None,
        },
        "quantization_config": None,
        "learning_rate": 0.0010000000474974513,
        "reduction": "sum_over_batch_size",
    }
    keras2 = {
        "name": "dense",
        "dtype": "float32",
        "units": 8,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "learning_rate": 0.001,
        "reduction": "auto",
    }
    assert json_changes(normalize(keras2), normalize(keras3)) == []
    edited = dict(keras3, units=12)
    assert json_changes(normalize(keras2), normalize(edited)) == ["units 8 → 12"]


def test_record_differences_read_as_sentences() -> None:
    old, new = _compile_record(0.001), _compile_record(0.002)
    assert old.changes(new) == ["Adam learning_rate 0.001 → 0.002"]
    assert old.changes(_compile_record(0.001, jit_compile=True)) == ["jit_compile False → True"]
    assert old.changes(_compile_record(0.001, loss=canonical("categorical_crossentropy"))) == [
        "loss sparse_categorical_crossentropy → categorical_crossentropy"
    ]
    assert old.changes(_compile_record(0.001, optimizer="SGD")) == ["optimizer Adam → SGD"]
    assert _model_record().changes(_model_record(32)) == [
        "layer0 Dense units 16 → 32",
        "weight layer0.dense/kernel float32[8, 16] → float32[8, 32]",
        "weight layer0.dense/bias float32[16] → float32[32]",
    ]
    for record in (old, _model_record()):
        assert type(record).from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert "Adam(learning_rate=0.001), metrics accuracy" in old.describe()


def test_data_records_digest_any_dtype_and_name_what_they_cannot_read() -> None:
    ids = np.array([[1979350788], [7]], dtype=np.int64)
    record = data_record({"x": (ids, np.zeros((2, 3), np.float32)), "y": np.array([0, 1]), "pipeline": object()})
    assert [(a.name, a.dtype, a.shape) for a in record.arrays] == [
        ("x[0]", "int64", (2, 1)),
        ("x[1]", "float32", (2, 3)),
        ("y", "int64", (2,)),
    ]
    assert record.undigested == ("pipeline (object)",)
    changed = data_record({"x": (ids.astype(np.float32), np.zeros((2, 3), np.float32)), "y": np.array([0, 1])})
    assert record.changes(changed)[0] == "x[0] int64[2, 1] → float32[2, 1]"
    assert DataRecord.from_dict(record.to_dict()) == record


def test_a_changed_model_fails_a_baseline_check_at_every_strictness() -> None:
    """CHANGED is not environment drift: it is named first, not graded by the arrays, and fails whatever the
    strictness (the pytest plugin fails on `failures` as the command line does)."""
    metrics = Metrics(0.1, 0.2, 0.1, 0.2, 0.5)
    config = TrainConfig(model="m.py:f", epochs=5)
    stored = bl.Entry(
        config, {"final_weights": "a"}, metrics, False, model=_model_record(), compiled=_compile_record(0.001)
    )
    current = bl.Entry(
        config, {"final_weights": "b"}, metrics, False, model=_model_record(), compiled=_compile_record(0.002)
    )
    drift = bl.grade("f/5ep/seed0", current, stored, None, Tolerance())
    assert drift.grade is bl.Grade.CHANGED and drift.detail == "your model changed: Adam learning_rate 0.001 → 0.002"
    baseline = bl.Baseline(bl.EnvKey("2.21.0", "keras-3.15.1", "tensorflow", True, "avx512", "linux"), {}, {}, "")
    result = bl.CheckResult(baseline, bl.Relation.OLDER_VERSION, [drift])
    assert result.summary().splitlines()[0] == (
        "your model changed since the baseline was recorded: Adam learning_rate 0.001 → 0.002 (1 entry: f/5ep/seed0)"
    )
    for strict in bl.STRICT_LEVELS:
        assert bl.failures([result], strict)[0].drifts == [drift]
    assert bl.grade("f/5ep/seed0", stored, stored, None, Tolerance()).grade is not bl.Grade.CHANGED
    # a baseline recorded before the records existed: nothing to compare, graded as before
    legacy = bl.Entry(config, {"final_weights": "a"}, metrics, False)
    assert legacy.changes(current) == []
