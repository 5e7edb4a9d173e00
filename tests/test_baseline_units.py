"""Golden baselines, unit by unit (no TensorFlow, no training): grades and strictness levels, environment keys and
CPU classes, the baseline set's names, entries' change lines, the JSON/``.npz`` files (round trip, atomic writes,
every error naming the file and the regenerate command, the digest cross-check), locks and `record`.

Entries are synthetic (`_entry`): small float32 arrays with digests made from them, so a stored file is
consistent unless a test edits it."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sinecheck.checks import baseline as bl
from sinecheck.core.config import TrainConfig
from sinecheck.core.records import CompileRecord, DataRecord, ModelRecord, TensorRecord, canonical
from sinecheck.core.result import CompiledMetrics, Metrics, digest_tensors
from sinecheck.errors import BaselineError, ConfigError

HERE = bl.EnvKey("2.21.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")
CONFIG = TrainConfig(hidden_units=(4,), n_points=40, batch_size=8, epochs=100)
FINGERPRINT = {"tensorflow": "2.21.0", "keras": "3.15.1", "isa": "avx512"}


def _entry(seed: int = 0, mse: float = 0.25, *, config: TrainConfig = CONFIG, **fields: Any) -> bl.Entry:
    """A consistent entry: its digests are those of its arrays."""
    rng = np.random.default_rng(seed)
    initial, final = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    pred = rng.standard_normal(3).astype(np.float32)
    digests = {
        "initial_weights": digest_tensors({"w": initial}),
        "final_weights": digest_tensors({"w": final}),
        "predictions": digest_tensors({"test": pred}),
    }
    arrays = {"initial/w": initial, "final/w": final, "pred/test": pred}
    metrics = Metrics(mse / 2, 0.5, mse, 0.75, mse * 3)
    return bl.Entry(config.replace(seed=seed), digests, metrics, False, arrays, **fields)


def _baseline(key: bl.EnvKey = HERE, n: int = 2) -> bl.Baseline:
    return bl.Baseline(key, {f"g/100ep/seed{s}": _entry(s) for s in range(n)}, dict(FINGERPRINT), "2026-12-03")


# -- grades, strictness, relations ---------------------------------------------------------------------------


def test_grades_are_ordered_best_first_and_compare_with_their_text() -> None:
    assert [g.value for g in bl.Grade] == ["identical", "ulp", "close", "divergent", "material", "changed", "missing"]
    assert [g.rank for g in bl.Grade] == [0, 1, 2, 3, 4, 5, 6]
    ulp, close = bl.Grade.ULP, bl.Grade.CLOSE
    assert (ulp < "close", ulp < "ulp", close < "ulp") == (True, False, False)
    assert (ulp <= "close", ulp <= "ulp", close <= "ulp") == (True, True, False)
    assert (close > "ulp", ulp > "ulp", ulp > "close") == (True, False, False)
    assert (close >= "ulp", ulp >= "ulp", ulp >= "close") == (True, True, False)
    assert max([bl.Grade.CLOSE, bl.Grade.MATERIAL, bl.Grade.ULP]) is bl.Grade.MATERIAL
    assert sorted(["missing", "ulp", "identical"], key=bl.Grade) == ["identical", "ulp", "missing"]


def test_strictness_levels_their_limits_and_a_bad_value() -> None:
    assert bl.STRICT_LEVELS == ("bitwise", "ulp", "material")
    assert [bl.Strictness(s).limit for s in bl.STRICT_LEVELS] == [bl.Grade.IDENTICAL, bl.Grade.ULP, bl.Grade.DIVERGENT]
    assert bl.Strictness.parse("ulp") is bl.Strictness.ULP
    assert bl.Strictness.parse(bl.Strictness.MATERIAL) is bl.Strictness.MATERIAL
    with pytest.raises(ConfigError) as info:
        bl.Strictness.parse("loose")
    assert str(info.value) == "strict: invalid value 'loose'; allowed: bitwise, ulp, material"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_relations_and_the_regenerate_hint() -> None:
    assert [r.value for r in bl.Relation] == ["same environment", "older version", "other machine class"]
    assert bl.regenerate_hint("tests/baselines") == (
        "regenerate it with `sinecheck baseline record --dir tests/baselines --force` "
        "(or `pytest --sinecheck-baseline=update --sinecheck-baseline-dir=tests/baselines`)"
    )


# -- environment keys ----------------------------------------------------------------------------------------


def test_env_key_from_a_fingerprint() -> None:
    fp = {
        "tensorflow": "2.21.0",
        "keras": "3.15.1",
        "tf_keras": "2.21.0",
        "keras_backend": "jax",
        "onednn": 0,
        "isa": "avx2",
        "platform": "Linux-x86_64",
    }  # no keras_impl: Keras 3
    assert bl.EnvKey.from_fingerprint(fp) == bl.EnvKey("2.21.0", "keras-3.15.1", "jax", False, "avx2", "Linux-x86_64")
    legacy = bl.EnvKey.from_fingerprint({**fp, "keras_impl": "tf_keras", "onednn": 1})
    assert legacy == bl.EnvKey("2.21.0", "tf_keras-2.21.0", "jax", True, "avx2", "Linux-x86_64")
    assert legacy.onednn is True
    assert bl.EnvKey.from_fingerprint({}) == bl.EnvKey("None", "keras-None", "None", False, "None", "None")


def test_env_key_current_probes_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []

    def probe(**kwargs: object) -> dict[str, object]:
        calls.append(kwargs)
        return {"tensorflow": "2.20.0", "keras": "3.15.1", "keras_backend": "tensorflow", "onednn": True}

    monkeypatch.setattr(bl, "probed_fingerprint", probe)
    assert bl.EnvKey.current() == bl.EnvKey("2.20.0", "keras-3.15.1", "tensorflow", True, "None", "None")
    assert calls == [{"probe_tensorflow": True}]


def test_env_key_slug() -> None:
    assert HERE.slug == "tf2.21.0-keras3.15.1-tensorflow-onednn-avx512-linux-x86_64"
    off = bl.EnvKey("2.15.1", "tf_keras-2.15.0", "tensorflow", False, "AVX2", "macOS 14 (arm64)")
    assert off.slug == "tf2.15.1-tfkeras2.15.0-tensorflow-noonednn-avx2-macos_14_arm64_"
    assert bl.EnvKey("2.21.0", "keras-3.15.1", "jax", True, "a/b", "x:y").slug == (
        "tf2.21.0-keras3.15.1-jax-onednn-a_b-x_y"
    )


def test_env_key_versions() -> None:
    assert HERE.versions == ((2, 21, 0), (3, 15, 1))
    assert bl.EnvKey("2.21.0rc1", "tf_keras-2.21.0.post4", "t", True, "i", "p").versions == ((2, 21, 0), (2, 21, 0))
    assert bl.EnvKey("2.21.0", "keras-3.0.0-beta", "t", True, "i", "p").versions == ((2, 21, 0), (3, 0, 0))
    assert bl.EnvKey("nightly", "keras-unknown", "t", True, "i", "p").versions == ((0,), (0,))
    assert bl.EnvKey("2.9", "keras-3.15.1", "t", True, "i", "p").versions < HERE.versions  # numbers, not text


def test_machine_classes() -> None:
    """The backend, oneDNN, the ISA and the platform make a machine class; the versions do not."""
    assert HERE.same_machine_class(bl.EnvKey("2.15.0", "tf_keras-2.15.0", "tensorflow", True, "avx512", "Linux-x86_64"))
    for field, value in (("backend", "jax"), ("onednn", False), ("isa", "avx2"), ("platform", "Darwin-arm64")):
        other = bl.EnvKey(**{**HERE.to_dict(), field: value})
        assert not HERE.same_machine_class(other) and not other.same_machine_class(HERE), field


def test_env_key_describe_and_to_dict() -> None:
    assert HERE.describe() == "TensorFlow 2.21.0, keras 3.15.1, tensorflow backend, oneDNN on, avx512, Linux-x86_64"
    off = bl.EnvKey("2.15.1", "tf_keras-2.15.0", "jax", False, "avx2", "Linux")
    assert off.describe() == "TensorFlow 2.15.1, tf_keras 2.15.0, jax backend, oneDNN off, avx2, Linux"
    assert HERE.to_dict() == {
        "tensorflow": "2.21.0",
        "keras": "keras-3.15.1",
        "backend": "tensorflow",
        "onednn": True,
        "isa": "avx512",
        "platform": "Linux-x86_64",
    }


# -- the baseline set ----------------------------------------------------------------------------------------


def test_the_preset_baseline_set() -> None:
    configs = bl.baseline_configs(seeds=(7,))
    assert [n for n, _ in configs] == [
        "keras-default/batch32/5ep/seed7",
        "keras-default/batch32/100ep/seed7",
        "tf-explicit/batch32/5ep/seed7",
        "tf-explicit/batch32/100ep/seed7",
        "batch-sweep/batch32/5ep/seed7",
        "batch-sweep/batch32/100ep/seed7",
        "batch-sweep/batch64/5ep/seed7",
        "batch-sweep/batch64/100ep/seed7",
        "batch-sweep/batch128/5ep/seed7",
        "batch-sweep/batch128/100ep/seed7",
    ]
    assert [(c.epochs, c.seed, c.batch_size) for _, c in configs[-2:]] == [(5, 7, 128), (100, 7, 128)]
    short = bl.baseline_configs(seeds=(0, 1), short_epochs=3, full=False)
    assert [n for n, _ in short][:3] == [
        "keras-default/batch32/3ep/seed0",
        "keras-default/batch32/3ep/seed1",
        "tf-explicit/batch32/3ep/seed0",
    ]
    assert len(short) == 10 and {c.epochs for _, c in short} == {3}
    same = bl.baseline_configs(seeds=(0,), short_epochs=100)  # the short run is the full one: once
    assert [n for n, _ in same][:2] == ["keras-default/batch32/100ep/seed0", "tf-explicit/batch32/100ep/seed0"]
    assert len(same) == 5
    default = bl.baseline_configs()
    assert len(default) == 30 and default[0][0] == "keras-default/batch32/5ep/seed0"
    assert default[5][0] == "keras-default/batch32/100ep/seed2" and default[5][1].epochs == 100


def test_a_user_models_baseline_set() -> None:
    model = SimpleNamespace(label="models.py:build", config=lambda *, epochs, seed: ("cfg", epochs, seed))
    assert bl.baseline_configs(model=model, seeds=(0, 1), short_epochs=2, model_epochs=7) == [  # type: ignore[arg-type]
        ("models.py:build/2ep/seed0", ("cfg", 2, 0)),
        ("models.py:build/2ep/seed1", ("cfg", 2, 1)),
        ("models.py:build/7ep/seed0", ("cfg", 7, 0)),
        ("models.py:build/7ep/seed1", ("cfg", 7, 1)),
    ]
    assert [n for n, _ in bl.baseline_configs(model=model)] == [  # type: ignore[arg-type]
        "models.py:build/5ep/seed0",
        "models.py:build/5ep/seed1",
        "models.py:build/5ep/seed2",
        "models.py:build/20ep/seed0",
        "models.py:build/20ep/seed1",
        "models.py:build/20ep/seed2",
    ]
    assert len(bl.baseline_configs(model=model, full=False)) == 3  # type: ignore[arg-type]
    assert len(bl.baseline_configs(model=model, short_epochs=20)) == 3  # type: ignore[arg-type]


def test_group_of() -> None:
    assert bl.group_of("batch-sweep/batch32/100ep/seed2") == "batch-sweep/batch32/100ep"
    assert bl.group_of("a/seed1/x/seed22") == "a/seed1/x"  # the last seed only
    assert bl.group_of("no-seed") == "no-seed"


# -- entries -------------------------------------------------------------------------------------------------


def test_entry_from_a_result_leaves_out_the_training_grid_predictions() -> None:
    tensors = {"initial/w": np.zeros(2), "final/w": np.ones(2), "pred/train": np.ones(5), "pred/test": np.ones(3)}
    model, compiled, data = ModelRecord("Sequential", (), ()), _compile("Adam"), DataRecord("d" * 64, ())
    result = SimpleNamespace(
        config=CONFIG,
        digests={"final_weights": "f"},
        metrics=Metrics(0.1, 0.2, 0.3, 0.4, 0.5),
        diverged=True,
        tensors=lambda: tensors,
        model_record=model,
        compile_record=compiled,
        data_record=data,
    )
    entry = bl.Entry.from_result(result)  # type: ignore[arg-type]
    assert sorted(entry.arrays) == ["final/w", "initial/w", "pred/test"]
    assert (entry.config, entry.digests, entry.metrics.mse_test, entry.diverged) == (
        CONFIG,
        {"final_weights": "f"},
        0.3,
        True,
    )
    assert (entry.model, entry.compiled, entry.data) == (model, compiled, data)
    assert entry.digests is not result.digests  # a copy


def _compile(optimizer: str, rate: float = 0.001) -> CompileRecord:
    return CompileRecord('"mse"', optimizer, canonical({"learning_rate": rate}), rate, False, 1)


def test_entry_changes_name_config_model_and_data() -> None:
    old = _entry(0)
    assert old.changes(_entry(0)) == []
    new = _entry(0, config=CONFIG.replace(batch_size=16, epochs=5))
    assert old.changes(new) == ["your config changed: batch_size 8 → 16; epochs 100 → 5"]
    spec = CONFIG.replace(model="examples/models.py:build")
    moved = CONFIG.replace(model="/elsewhere/examples/models.py:build")  # the same spec, run from elsewhere
    assert _entry(0, config=spec).changes(_entry(0, config=moved)) == []
    other = CONFIG.replace(model="examples/models.py:other")
    assert _entry(0, config=spec).changes(_entry(0, config=other)) == [
        "your config changed: model models.py:build → models.py:other"
    ]
    seq, fun = ModelRecord("Sequential", (), ()), ModelRecord("Functional", (), ())
    a = _entry(0, model=seq, compiled=_compile("Adam"))
    b = _entry(0, model=fun, compiled=_compile("SGD"))
    assert a.changes(b) == ["your model changed: model class Sequential → Functional; optimizer Adam → SGD"]
    assert a.changes(_entry(0, model=seq, compiled=_compile("Adam", 0.002))) == [
        "your model changed: Adam learning_rate 0.001 → 0.002"
    ]
    assert a.changes(_entry(0, model=fun)) == ["your model changed: model class Sequential → Functional"]
    assert a.changes(_entry(0, compiled=_compile("SGD"))) == ["your model changed: optimizer Adam → SGD"]
    assert _entry(0).changes(b) == []  # not recorded before: nothing to compare
    data_cfg = CONFIG.replace(data="/abs/d.py:load")
    d1, d2 = DataRecord("a" * 64, ()), DataRecord("b" * 64, ())
    changed = _entry(0, config=data_cfg, data=d1).changes(
        _entry(0, config=CONFIG.replace(data="d.py:load", batch_size=4), model=seq, data=d2)
    )
    assert changed == [
        "your config changed: batch_size 8 → 4",
        "your data changed: same arrays, dtypes and shapes, other values (digest aaaaaaaaaaaa → bbbbbbbbbbbb)",
    ]
    assert _entry(0, config=data_cfg, data=d1).changes(_entry(0, config=data_cfg, data=d1)) == []
    assert _entry(0, config=data_cfg).changes(_entry(0, config=data_cfg, data=d2)) == []
    assert _entry(0, config=data_cfg, data=d1).changes(_entry(0, config=data_cfg)) == []
    assert _entry(0, data=d1).changes(_entry(0, data=d2)) == []  # the sine data: the config decides
    x4, y4 = TensorRecord("x", "float32", (4,)), TensorRecord("y", "float32", (4,))
    reshaped = DataRecord("e" * 64, (TensorRecord("x", "float32", (5,)), TensorRecord("y", "float64", (4,))))
    assert _entry(0, config=data_cfg, data=DataRecord("a" * 64, (x4, y4))).changes(
        _entry(0, config=data_cfg, data=reshaped)
    ) == ["your data changed: x float32[4] → float32[5]; y float32[4] → float64[4]"]


def test_a_field_only_one_config_has_is_a_change() -> None:
    """A model spec given now (the built-in model before), or no longer given: named with the other side null."""
    spec = CONFIG.replace(model="examples/models.py:build")
    assert _entry(0).changes(_entry(0, config=spec)) == ["your config changed: model null → models.py:build"]
    assert _entry(0, config=spec).changes(_entry(0)) == ["your config changed: model models.py:build → null"]


def test_short_values_in_change_lines() -> None:
    assert bl._short("x" * 50) == "x" * 50
    assert bl._short("x" * 51) == "x" * 47 + "..."
    assert bl._short({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'
    assert bl._short(None) == "null" and bl._short(0.5) == "0.5"
    assert bl._short(list(range(30))) == json.dumps(list(range(30)))[:47] + "..."


# -- the baseline file ---------------------------------------------------------------------------------------


def test_baseline_json() -> None:
    entry = _entry(0, 0.25)
    data = bl.Baseline(HERE, {"g/seed0": entry}, {"isa": "avx512"}, "2026-12-03T13:00:00+0000").to_json()
    assert data == {
        "schema": 1,
        "kind": "sinecheck-baseline",
        "key": HERE.to_dict(),
        "fingerprint": {"isa": "avx512"},
        "created": "2026-12-03T13:00:00+0000",
        "entries": {
            "g/seed0": {
                "config": entry.config.to_dict(),
                "config_id": entry.config.config_id,
                "digests": entry.digests,
                "metrics": {
                    "mse_train": 0.125,
                    "max_err_train": 0.5,
                    "mse_test": 0.25,
                    "max_err_test": 0.75,
                    "final_loss": 0.75,
                },
                "diverged": False,
            }
        },
    }


def test_records_are_stored_once_and_named_by_digest() -> None:
    seq, adam = ModelRecord("Sequential", (), ()), _compile("Adam")
    entries = {f"m/seed{s}": _entry(s, model=seq, compiled=adam) for s in (0, 1)}
    entries["m/seed2"] = _entry(2)
    data = bl.Baseline(HERE, entries, {}, "").to_json()
    assert data["records"] == {"model": {seq.digest: seq.to_dict()}, "compile": {adam.digest: adam.to_dict()}}
    assert data["entries"]["m/seed1"]["model"] == seq.digest and data["entries"]["m/seed1"]["compile"] == adam.digest
    assert "model" not in data["entries"]["m/seed2"] and "data" not in data["entries"]["m/seed0"]
    assert "records" not in _baseline().to_json()


def test_paths() -> None:
    assert bl.subject_dir("tests/baselines") == Path("tests/baselines")
    assert bl.subject_dir("b", SimpleNamespace(slug="models-lstm")) == Path("b/models-lstm")  # type: ignore[arg-type]
    paths = bl.baseline_paths("b", HERE)
    assert paths == (Path(f"b/{HERE.slug}.json"), Path(f"b/{HERE.slug}.npz"))
    assert (paths.json, paths.npz) == paths and paths.json.name.startswith("tf2.21.0-")


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    baseline = _baseline(n=2)
    baseline.entries["g/100ep/seed1"].diverged = True
    path = bl.write_baseline(baseline, tmp_path / "new" / "dir")
    assert path == tmp_path / "new" / "dir" / f"{HERE.slug}.json"
    assert path.read_text() == json.dumps(baseline.to_json(), indent=1) + "\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{HERE.slug}.json", f"{HERE.slug}.npz"]  # no temp
    with np.load(path.parent / f"{HERE.slug}.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            f"g/100ep/seed{s}::{t}" for s in (0, 1) for t in ("final/w", "initial/w", "pred/test")
        )
    loaded = bl.load_baseline(path)
    assert (loaded.key, loaded.fingerprint, loaded.created, loaded.path) == (HERE, FINGERPRINT, "2026-12-03", path)
    assert list(loaded.entries) == ["g/100ep/seed0", "g/100ep/seed1"]
    for name, entry in baseline.entries.items():
        got = loaded.entries[name]
        assert (got.config, got.digests, got.metrics, got.diverged) == (
            entry.config,
            entry.digests,
            entry.metrics,
            entry.diverged,
        )
        assert got.arrays.keys() == entry.arrays.keys()
        assert all(np.array_equal(got.arrays[k], v) and got.arrays[k].dtype == v.dtype for k, v in entry.arrays.items())
    assert loaded.entries["g/100ep/seed1"].diverged is True and loaded.entries["g/100ep/seed0"].diverged is False
    meta = bl.load_baseline(path, with_arrays=False)
    assert all(e.arrays == {} for e in meta.entries.values()) and meta.path == path


def test_records_round_trip(tmp_path: Path) -> None:
    seq, adam, data = ModelRecord("Sequential", (), ()), _compile("Adam"), DataRecord("c" * 64, ())
    cfg = CONFIG.replace(data="d.py:load")
    baseline = bl.Baseline(HERE, {"m/seed0": _entry(0, config=cfg, model=seq, compiled=adam, data=data)}, {}, "")
    loaded = bl.load_baseline(bl.write_baseline(baseline, tmp_path)).entries["m/seed0"]
    assert (loaded.model, loaded.compiled, loaded.data) == (seq, adam, data)
    plain = bl.load_baseline(bl.write_baseline(_baseline(n=1), tmp_path / "p")).entries["g/100ep/seed0"]
    assert (plain.model, plain.compiled, plain.data) == (None, None, None)


def test_defaults_of_an_older_file(tmp_path: Path) -> None:
    path = bl.write_baseline(_baseline(n=1), tmp_path)
    data = json.loads(path.read_text())
    del data["fingerprint"], data["created"]
    path.write_text(json.dumps(data))
    loaded = bl.load_baseline(path)
    assert (loaded.fingerprint, loaded.created) == ({}, "")


def _hint(directory: Path) -> str:
    return (
        f"regenerate it with `sinecheck baseline record --dir {directory} --force` "
        f"(or `pytest --sinecheck-baseline=update --sinecheck-baseline-dir={directory}`)"
    )


def _error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(BaselineError) as info:
        bl.load_baseline(path, **kwargs)
    error = info.value  # one error, no chained traceback
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return str(error)


def test_a_baseline_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """A hand-edited file with non-ASCII text (sinecheck itself writes ASCII JSON) loads under an ASCII locale."""
    import locale
    import sys

    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode reads every file as UTF-8")
    path = bl.write_baseline(_baseline(n=1), tmp_path)
    data = json.loads(path.read_text())
    data["created"] = "3 décembre 2026"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")
        created = bl.load_baseline(path).created
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    assert created == "3 décembre 2026"


def test_a_missing_file_says_how_to_record_one(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.json"
    assert (
        _error(path)
        == f"{path}: no such baseline file; record one with `sinecheck baseline record --dir {path.parent}`"
    )


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (b"\xff\xfe\x00", "not a readable baseline (UnicodeDecodeError: "),
        (b"{broken", "not a readable baseline (JSONDecodeError: Expecting property name"),
    ],
)
def test_an_unreadable_file(tmp_path: Path, content: bytes, start: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    message = _error(path)
    assert message.startswith(f"{path}: {start}") and message.endswith(f"); {_hint(tmp_path)}")


def test_a_directory_is_not_readable(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    assert _error(tmp_path / "d.json").startswith(f"{tmp_path / 'd.json'}: not a readable baseline (IsADirectoryError")


@pytest.mark.parametrize("content", ["[1, 2]", '{"kind": "pytest-regressions"}', '"sinecheck-baseline"'])
def test_a_foreign_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    assert _error(path) == f"{path}: not a sinecheck baseline (no 'kind': 'sinecheck-baseline'); {_hint(tmp_path)}"


@pytest.mark.parametrize(("schema", "shown"), [(2, "2"), (None, "None"), ("1", "'1'")])
def test_an_unknown_schema(tmp_path: Path, schema: object, shown: str) -> None:
    path = tmp_path / "x.json"
    data = {"kind": "sinecheck-baseline"} if schema is None else {"kind": "sinecheck-baseline", "schema": schema}
    path.write_text(json.dumps(data))
    assert _error(path) == (
        f"{path}: baseline schema {shown} is not supported; allowed: 1 (this sinecheck); {_hint(tmp_path)}"
    )


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d.pop("key"), "KeyError: 'key'"),
        (
            lambda d: d["key"].update(gpu="A100"),
            "TypeError: EnvKey.__init__() got an unexpected keyword argument 'gpu'",
        ),
        (lambda d: d["entries"]["g/100ep/seed0"].pop("diverged"), "KeyError: 'diverged'"),
        (lambda d: d["entries"]["g/100ep/seed0"].pop("digests"), "KeyError: 'digests'"),
        (lambda d: d["entries"]["g/100ep/seed0"]["metrics"].pop("mse_test"), "KeyError: 'mse_test'"),
        (lambda d: d["entries"]["g/100ep/seed0"].update(model="abc"), "KeyError: 'abc'"),
        (lambda d: d["entries"]["g/100ep/seed0"].update(compile="abc"), "KeyError: 'abc'"),
        (lambda d: d["entries"]["g/100ep/seed0"].update(data="abc"), "KeyError: 'abc'"),
        (lambda d: d["entries"]["g/100ep/seed0"]["config"].update(batch_size=0), "ConfigError"),
        (lambda d: d.update(entries=[1]), "AttributeError: 'list' object has no attribute 'items'"),
        (lambda d: d.update(records=[1]), "AttributeError: 'list' object has no attribute 'get'"),
        (lambda d: d["entries"]["g/100ep/seed0"].update(digests=[1]), "TypeError: cannot convert dictionary"),
        (
            lambda d: d["entries"]["g/100ep/seed0"]["digests"].update(final_weights=5),
            "TypeError: digest 'final_weights' is not a string: 5",
        ),
    ],
)
def test_a_malformed_file(tmp_path: Path, edit: Any, error: str) -> None:
    path = bl.write_baseline(_baseline(n=1), tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    message = _error(path)
    assert message.startswith(f"{path}: malformed baseline (") and error in message
    assert message.endswith(f"); {_hint(tmp_path)}")


def test_records_of_a_file_are_read_by_kind(tmp_path: Path) -> None:
    """A model record is looked up in the model table only: a digest found in another kind's table is malformed."""
    seq = ModelRecord("Sequential", (), ())
    path = bl.write_baseline(bl.Baseline(HERE, {"m/seed0": _entry(0, model=seq)}, {}, ""), tmp_path)
    data = json.loads(path.read_text())
    data["records"] = {"compile": data["records"]["model"]}
    path.write_text(json.dumps(data))
    assert _error(path).startswith(f"{path}: malformed baseline (KeyError: ")


def test_missing_or_broken_arrays(tmp_path: Path) -> None:
    path = bl.write_baseline(_baseline(n=1), tmp_path)
    npz = tmp_path / f"{HERE.slug}.npz"
    npz.unlink()
    message = _error(path)
    assert message.startswith(f"{npz}: missing or unreadable arrays of {path.name} (FileNotFoundError: ")
    assert message.endswith(f"); {_hint(tmp_path)}")
    assert bl.load_baseline(path, with_arrays=False).entries  # metadata alone loads
    npz.write_bytes(b"PK\x03\x04 not a zip")
    assert _error(path).startswith(f"{npz}: missing or unreadable arrays of {path.name} (")
    npz.write_bytes(b"")
    assert _error(path).startswith(f"{npz}: missing or unreadable arrays of {path.name} (")


def test_arrays_of_unknown_entries_are_ignored(tmp_path: Path) -> None:
    baseline = _baseline(n=2)
    path = bl.write_baseline(baseline, tmp_path)
    data = json.loads(path.read_text())
    del data["entries"]["g/100ep/seed1"]
    path.write_text(json.dumps(data))
    loaded = bl.load_baseline(path)
    assert list(loaded.entries) == ["g/100ep/seed0"]
    assert sorted(loaded.entries["g/100ep/seed0"].arrays) == ["final/w", "initial/w", "pred/test"]


def test_a_tensor_name_with_the_separator(tmp_path: Path) -> None:
    entry = _entry(0)
    entry.arrays["final/a::b"] = entry.arrays.pop("final/w")
    entry.digests["final_weights"] = digest_tensors({"a::b": entry.arrays["final/a::b"]})
    loaded = bl.load_baseline(bl.write_baseline(bl.Baseline(HERE, {"g/seed0": entry}, {}, ""), tmp_path))
    assert sorted(loaded.entries["g/seed0"].arrays) == ["final/a::b", "initial/w", "pred/test"]


# -- the cross-check of digests and arrays -------------------------------------------------------------------


def _corrupt(tmp_path: Path, edit: Any, n: int = 3) -> tuple[Path, str]:
    path = bl.write_baseline(_baseline(n=n), tmp_path)
    data = json.loads(path.read_text())
    edit(data["entries"])
    path.write_text(json.dumps(data))
    return path, _error(path)


def test_one_edited_digest_is_named_with_both_values(tmp_path: Path) -> None:
    def edit(entries: dict[str, Any]) -> None:
        entries["g/100ep/seed1"]["digests"]["initial_weights"] = "0123456789abcdef" * 4

    path, message = _corrupt(tmp_path, edit)
    actual = _entry(1).digests["initial_weights"]
    assert message == (
        f"{path}: corrupt baseline — its JSON digests disagree with the arrays in {HERE.slug}.npz: entry "
        f"g/100ep/seed1: initial_weights digest 0123456789ab… ≠ {actual[:12]}… of its arrays; {_hint(tmp_path)}"
    )


def test_several_bad_entries_are_counted(tmp_path: Path) -> None:
    def edit(entries: dict[str, Any]) -> None:
        for name in ("g/100ep/seed0", "g/100ep/seed2"):
            entries[name]["digests"]["final_weights"] = "f" * 64
        entries["g/100ep/seed2"]["digests"]["initial_weights"] = "e" * 64

    _, message = _corrupt(tmp_path, edit)
    assert ": entry g/100ep/seed0: final_weights digest ffffffffffff… ≠ " in message
    assert "of its arrays (and 2 more); regenerate it with" in message

    def two(entries: dict[str, Any]) -> None:
        for name in ("g/100ep/seed0", "g/100ep/seed2"):
            entries[name]["digests"]["final_weights"] = "f" * 64

    _, message = _corrupt(tmp_path / "two", two)
    assert "of its arrays (and 1 more); regenerate" in message


def test_an_entry_without_arrays_is_corrupt(tmp_path: Path) -> None:
    baseline = _baseline(n=2)
    baseline.entries["g/100ep/seed1"].arrays = {}
    path = bl.write_baseline(baseline, tmp_path)
    assert _error(path) == (
        f"{path}: corrupt baseline — its JSON digests disagree with the arrays in {HERE.slug}.npz: entry "
        f"g/100ep/seed1 has no arrays in {HERE.slug}.npz; {_hint(tmp_path)}"
    )


def test_every_entry_and_every_digest_is_cross_checked(tmp_path: Path) -> None:
    """An entry without arrays does not end the check of the others; neither does a digest kind the ``.npz`` has
    no arrays for, nor compact predictions, whichever order the JSON lists the digests in."""
    baseline = _baseline(n=2)
    baseline.entries["g/100ep/seed0"].arrays = {}
    baseline.entries["g/100ep/seed1"].digests["final_weights"] = "f" * 64
    message = _error(bl.write_baseline(baseline, tmp_path))
    assert "entry g/100ep/seed0 has no arrays in" in message and "(and 1 more)" in message
    for first in ("history", "predictions"):  # listed before the edited final_weights digest
        entry = _entry(0)
        entry.digests = {first: entry.digests.get(first, "x" * 64), **entry.digests, "final_weights": "f" * 64}
        path = bl.write_baseline(bl.Baseline(HERE, {"g/seed0": entry}, {}, ""), tmp_path / first)
        assert next(iter(json.loads(path.read_text())["entries"]["g/seed0"]["digests"])) == first
        assert ": entry g/seed0: final_weights digest ffffffffffff… ≠ " in _error(path)


def test_what_the_cross_check_leaves_alone(tmp_path: Path) -> None:
    """Digest kinds without arrays (a user's extra digest) and compact predictions (no training grid) are not
    cross-checked; every other kind is."""
    baseline = _baseline(n=1)
    entry = baseline.entries["g/100ep/seed0"]
    entry.digests["history"] = "not checked"
    entry.digests["predictions"] = "covers the training grid too"
    loaded = bl.load_baseline(bl.write_baseline(baseline, tmp_path))
    assert loaded.entries["g/100ep/seed0"].digests["history"] == "not checked"
    entry.arrays["pred/training"] = np.zeros(2, np.float32)  # a name starting with "train": every prediction stored
    path = bl.write_baseline(baseline, tmp_path / "full")
    assert "predictions digest covers the t… ≠ " in _error(path)


def test_list_and_find_baselines(tmp_path: Path) -> None:
    older = bl.EnvKey(**{**HERE.to_dict(), "tensorflow": "2.20.0"})
    bl.write_baseline(_baseline(HERE, 1), tmp_path)
    bl.write_baseline(_baseline(older, 1), tmp_path)
    (tmp_path / "notes.txt").write_text("not a baseline")
    (tmp_path / "sub").mkdir()
    bl.write_baseline(_baseline(HERE, 1), tmp_path / "sub")
    assert bl.list_baselines(tmp_path) == [tmp_path / f"{older.slug}.json", tmp_path / f"{HERE.slug}.json"]
    found = bl.find_baselines(tmp_path)
    assert [b.key for b in found] == [older, HERE]
    assert all(not e.arrays for b in found for e in b.entries.values())  # metadata only
    (tmp_path / f"{HERE.slug}.npz").unlink()
    assert [b.key for b in bl.find_baselines(tmp_path)] == [older, HERE]
    assert bl.list_baselines(tmp_path / "nothing-here") == []


# -- recording -----------------------------------------------------------------------------------------------


def test_run_baseline_set_trains_every_config_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[tuple[int | None, str]] = []

    def train(cfg: TrainConfig, *, engine: str) -> str:
        trained.append((cfg.seed, engine))
        return f"result {cfg.seed}"

    monkeypatch.setattr(bl, "train", train)
    configs = [("a/seed0", CONFIG.replace(seed=0)), ("a/seed1", CONFIG.replace(seed=1))]
    seen: list[tuple[int, int, str]] = []
    out = bl.run_baseline_set(configs, progress=lambda i, n, name: seen.append((i, n, name)))
    assert out == {"a/seed0": "result 0", "a/seed1": "result 1"} and list(out) == ["a/seed0", "a/seed1"]
    assert trained == [(0, "keras"), (1, "keras")] and seen == [(1, 2, "a/seed0"), (2, 2, "a/seed1")]
    assert bl.run_baseline_set(configs[:1], engine="fused") == {"a/seed0": "result 0"}
    assert trained[-1] == (0, "fused")


def test_make_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    fp = {"tensorflow": "2.20.0", "keras": "3.15.1", "keras_backend": "tensorflow", "onednn": True, "isa": "avx2"}
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(bl, "probed_fingerprint", lambda **kw: calls.append(kw) or dict(fp))
    result = SimpleNamespace(
        config=CONFIG,
        digests={},
        metrics=Metrics(0.1, 0.2, 0.3, 0.4, 0.5),
        diverged=False,
        tensors=lambda: {"final/w": np.ones(2)},
        model_record=None,
        compile_record=None,
        data_record=None,
    )
    made = bl.make_baseline({"r/seed0": result}, HERE)  # type: ignore[dict-item]
    assert made.key == HERE and made.fingerprint == fp and list(made.entries) == ["r/seed0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", made.created)
    assert made.path is None and calls == [{"probe_tensorflow": True}]
    assert bl.make_baseline({}).key == bl.EnvKey("2.20.0", "keras-3.15.1", "tensorflow", True, "avx2", "None")


def test_lock_path_is_outside_the_directory_per_file_and_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lock = bl.lock_path(tmp_path / "a.json")
    assert lock.parent == Path(tempfile.gettempdir()) and re.fullmatch(r"sinecheck-[0-9a-f]{20}\.lock", lock.name)
    monkeypatch.chdir(tmp_path)
    assert bl.lock_path("a.json") == lock  # the same file, named relatively
    assert bl.lock_path(tmp_path / "b.json") != lock
    monkeypatch.setattr(os, "getuid", lambda: 4242, raising=False)
    assert bl.lock_path("a.json") != lock  # another user's lock of the same file
    monkeypatch.delattr(os, "getuid")
    assert re.fullmatch(r"sinecheck-[0-9a-f]{20}\.lock", bl.lock_path("a.json").name)


def test_record_never_overwrites_and_update_says_what_it_replaced(tmp_path: Path) -> None:
    old = _baseline(n=1)
    old.created = "2026-01-01"
    directory = tmp_path / "a" / "b"
    path, replaced = bl.record(old, directory)
    assert path == directory / f"{HERE.slug}.json" and replaced is None
    before = path.read_bytes()
    new = _baseline(n=2)
    with pytest.raises(BaselineError) as info:
        bl.record(new, directory)
    assert str(info.value) == (
        f"{path}: a baseline for this environment exists already; `record` never overwrites one — use "
        "`sinecheck baseline record --force` or `pytest --sinecheck-baseline=update` to replace it"
    )
    assert path.read_bytes() == before
    (directory / f"{HERE.slug}.npz").write_bytes(b"broken arrays")  # the old arrays are not read
    path2, replaced = bl.record(new, directory, update=True)
    assert path2 == path and replaced is not None and replaced.created == "2026-01-01"
    assert list(replaced.entries) == ["g/100ep/seed0"] and list(bl.load_baseline(path).entries) == [
        "g/100ep/seed0",
        "g/100ep/seed1",
    ]
    path.write_text("{corrupt")
    _, replaced = bl.record(old, directory, update=True)
    assert replaced is None and bl.load_baseline(path).created == "2026-01-01"
    assert sorted(p.name for p in directory.iterdir()) == [f"{HERE.slug}.json", f"{HERE.slug}.npz"]


def test_record_holds_the_lock_while_it_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The check for an existing file and the write happen under the file lock of that baseline."""
    from filelock import FileLock

    events: list[str] = []
    real_write = bl.write_baseline

    class Lock(FileLock):
        def __enter__(self) -> Any:
            events.append(f"lock {Path(self.lock_file).name}")
            return super().__enter__()

        def __exit__(self, *exc: object) -> None:
            events.append("unlock")
            super().__exit__(*exc)  # type: ignore[arg-type]

    def write(baseline: bl.Baseline, directory: Any) -> Path:
        events.append("write")
        return real_write(baseline, directory)

    monkeypatch.setattr(bl, "FileLock", Lock)
    monkeypatch.setattr(bl, "write_baseline", write)
    bl.record(_baseline(n=1), tmp_path)
    assert events == [f"lock {bl.lock_path(tmp_path / f'{HERE.slug}.json').name}", "write", "unlock"]


def test_metrics_with_compiled_values_round_trip(tmp_path: Path) -> None:
    entry = _entry(0)
    entry.metrics = Metrics(0.1, 0.2, float("nan"), 0.4, None, CompiledMetrics((("loss", 0.5),), (("loss", 0.6),)))
    loaded = bl.load_baseline(bl.write_baseline(bl.Baseline(HERE, {"u/seed0": entry}, {}, ""), tmp_path))
    metrics = loaded.entries["u/seed0"].metrics
    assert metrics.compiled == entry.metrics.compiled and metrics.final_loss is None
    assert np.isnan(metrics.mse_test) and metrics.held_out_loss == 0.6
