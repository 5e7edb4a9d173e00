"""The JSON that sinecheck writes, pinned: `run --json`, a comparison (`Comparison.to_dict`, `TensorDiff.to_dict`)
and the baseline files and reports (`record`, `check`, `diff --json`).  Every key set is exact and every value
typed, so renaming, dropping or adding a key fails here — then update the schema and say so in the changelog.

Hand-written schemas (no jsonschema dependency): a dict schema is ``{key: schema}`` (exact keys), ``[schema]`` a
list of items matching it, a type or tuple of types an ``isinstance`` check, `FREE` a JSON object of any keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sinecheck.core.config import TrainConfig

pytest.importorskip("tensorflow")

FREE = object()  # a JSON object whose keys are not ours (Keras layer configs, optimizer params)
NONE = type(None)
FLOAT = (float, str)  # json_float: finite values as floats, "nan"/"inf"/"-inf" as strings
OPT_FLOAT = (float, str, NONE)
INDEX = [int]

CONFIG = {
    "schema": int,
    "hidden_units": [int],
    "activation": str,
    "loss": str,
    "kernel_initializer": {"name": str, "params": FREE},
    "bias_initializer": {"name": str, "params": FREE},
    "optimizer": {"name": str, "learning_rate": float, "params": FREE},
    "batch_size": int,
    "epochs": int,
    "n_points": int,
    "x_min": float,
    "x_max": float,
    "noise_std": float,
    "noise_seed": int,
    "seed": (int, NONE),
    "shuffle": bool,
    "xla": bool,
}
METRICS = {name: OPT_FLOAT for name in ("mse_train", "max_err_train", "mse_test", "max_err_test", "final_loss")}
DIGESTS = {"initial_weights": str, "final_weights": str, "predictions": str}
FINGERPRINT = {
    "TF_ENABLE_ONEDNN_OPTS": (str, NONE),
    "cpu": str,
    "cpu_count": (int, NONE),
    "inter_op_threads": int,
    "intra_op_threads": int,
    "isa": str,
    "isa_flags": [str],
    "keras": str,
    "keras_backend": str,
    "keras_impl": str,
    "numpy": str,
    "omp_num_threads": (str, NONE),
    "onednn": bool,
    "op_determinism": bool,
    "platform": str,
    "python": str,
    "pythonhashseed": (str, NONE),
    "tensorflow": str,
    "tf_keras": (str, NONE),
}
DATA = {"arrays": [{"dtype": str, "name": str, "shape": [int]}], "digest": str, "undigested": [str]}
MODEL = {
    "class": str,
    "digest": str,
    "layers": [{"class": str, "config": FREE}],
    "parameters": int,
    "topology": (FREE, NONE),
    "weights": [{"dtype": str, "name": str, "shape": [int]}],
}
RUN = {
    "schema": int,
    "config": CONFIG,
    "config_id": str,
    "engine": str,
    "metrics": METRICS,
    "diverged": bool,
    "diverged_epoch": (int, NONE),
    "epochs_run": int,
    "final_loss": OPT_FLOAT,
    "timings": {k: OPT_FLOAT for k in ("setup_s", "trace_s", "fit_s", "first_epoch_s", "epoch_ms_median", "total_s")},
    "digests": DIGESTS,
    "fingerprint": FINGERPRINT,
    "options": FREE,
    "data": DATA,
    "model": MODEL,
}
TENSOR_DIFF = {
    "name": str,
    "verdict": str,
    "shape_a": INDEX,
    "shape_b": INDEX,
    "dtype_a": str,
    "dtype_b": str,
    "size": int,
    "mismatched": int,
    "mismatched_fraction": FLOAT,
    "max_abs": FLOAT,
    "max_abs_index": (INDEX, NONE),
    "max_rel": FLOAT,
    "max_rel_index": (INDEX, NONE),
    "max_ulp": int,
    "digest_a": str,
    "digest_b": str,
    "note": str,
    "value_a": OPT_FLOAT,
    "value_b": OPT_FLOAT,
}
COMPARISON = {
    "verdict": str,
    "identical": bool,
    "summary": str,
    "tolerance": {"atol": float, "rtol": float, "max_ulp": int},
    "tensors": [TENSOR_DIFF],
}
ENV_KEY = {"backend": str, "isa": str, "keras": str, "onednn": bool, "platform": str, "tensorflow": str}
ENTRY = {
    "config": CONFIG,
    "config_id": str,
    "data": str,
    "digests": DIGESTS,
    "diverged": bool,
    "metrics": METRICS,
    "model": str,
}
BASELINE = {
    "schema": int,
    "kind": str,
    "created": str,
    "key": ENV_KEY,
    "fingerprint": FINGERPRINT,
    "entries": {"tiny": ENTRY},
    "records": {"data": FREE, "model": FREE},
}
DRIFT = {
    "name": str,
    "grade": str,
    "detail": str,
    "delta_mse": OPT_FLOAT,
    "max_abs_w": OPT_FLOAT,
    "max_ulp_w": (int, NONE),
    "noise_band": OPT_FLOAT,
}
CHECK_RESULT = {"against": ENV_KEY, "drifts": [DRIFT], "file": str, "relation": str, "worst": str}
CHECK_REPORT = {"key": ENV_KEY, "strict": str, "checks": [CHECK_RESULT]}


def conforms(value: Any, schema: Any, where: str = "$") -> None:
    """Raise AssertionError naming the first place where `value` departs from `schema`."""
    if schema is FREE:
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
    elif isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(schema), (
            f"{where}: keys differ: missing {sorted(set(schema) - set(value))}, "
            f"unexpected {sorted(set(value) - set(schema))}"
        )
        for key, sub in schema.items():
            conforms(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            conforms(item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, tuple) and any(s is FREE or isinstance(s, (dict, list)) for s in schema):
        errors = []
        for option in schema:
            try:
                conforms(value, option, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(" / ".join(errors))
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))  # JSON true is no number
        assert ok, f"{where}: expected {schema}, got {value!r}"


TINY = TrainConfig(hidden_units=(4,), n_points=16, batch_size=8, epochs=1)


@pytest.fixture(scope="module")
def two_runs():  # type: ignore[no-untyped-def]
    from sinecheck.engines.registry import train

    return train(TINY, engine="fused"), train(TINY.replace(seed=1), engine="fused")


def test_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sinecheck.cli import main

    out = tmp_path / "run.json"
    assert main(["run", "keras-default", "--epochs", "1", "--engine", "fused", "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(data, list) and len(data) == 1
    conforms(data[0], RUN)
    assert data[0]["engine"] == "fused" and data[0]["epochs_run"] == 1


def test_comparison_json(two_runs) -> None:  # type: ignore[no-untyped-def]
    from sinecheck.core.compare import compare

    data = json.loads(json.dumps(compare(*two_runs).to_dict()))
    conforms(data, COMPARISON)
    assert data["identical"] is False and data["tensors"]


def test_baseline_record_json(two_runs) -> None:  # type: ignore[no-untyped-def]
    from sinecheck.checks import baseline as bl

    data = json.loads(json.dumps(bl.make_baseline({"tiny": two_runs[0]}, bl.EnvKey.current()).to_json()))
    conforms(data, BASELINE)


def test_baseline_check_and_diff_json(two_runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from sinecheck.checks import baseline as bl
    from sinecheck.cli import baseline as cli_baseline
    from sinecheck.cli import main

    key = bl.EnvKey.current()
    old, new = (bl.make_baseline({"tiny": r}, key) for r in two_runs)
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_path, new_path = bl.write_baseline(old, old_dir), bl.write_baseline(new, new_dir)
    diff_json = tmp_path / "diff.json"
    main(["baseline", "diff", str(old_path), str(new_path), "--json", str(diff_json)])
    conforms(json.loads(diff_json.read_text(encoding="utf-8")), CHECK_RESULT)
    check_json = tmp_path / "check.json"
    references = bl.load_references(key, old_dir)
    cli_baseline._check(new, references, key, strict="material", json_path=str(check_json))
    report = json.loads(check_json.read_text(encoding="utf-8"))
    conforms(report, CHECK_REPORT)
    assert report["checks"] and report["strict"] == "material"


def test_a_renamed_key_fails_the_schema() -> None:
    """The schema check can fail: a renamed, a missing, an extra key and a wrong type are each caught."""
    good = {"name": "w", "grade": "identical", "detail": "", "delta_mse": None, "max_abs_w": 0.0, "max_ulp_w": 0}
    good["noise_band"] = None
    conforms(good, DRIFT)
    renamed = {("grade_" if k == "grade" else k): v for k, v in good.items()}
    for bad, message in [
        (renamed, r"missing \['grade'\], unexpected \['grade_'\]"),
        ({k: v for k, v in good.items() if k != "detail"}, r"missing \['detail'\]"),
        ({**good, "extra": 1}, r"unexpected \['extra'\]"),
        ({**good, "max_ulp_w": "0"}, r"\$\.max_ulp_w: expected"),
        ({**good, "max_ulp_w": True}, r"\$\.max_ulp_w: expected"),
    ]:
        with pytest.raises(AssertionError, match=message):
            conforms(bad, DRIFT)
