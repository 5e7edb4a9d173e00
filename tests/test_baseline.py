"""Golden baselines: keys, storage (atomic, locked, never silently overwritten), corrupt files, drift grading,
strictness, the CLI and the pytest integration."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from sinecheck.checks import baseline as bl
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import digest_tensors

pytest_plugins = ["pytester"]

TINY = TrainConfig(hidden_units=(4,), n_points=40, batch_size=8, epochs=2)
KEY = bl.EnvKey("2.21.0", "keras-3.15.1", "tensorflow", True, "avx512", "Linux-x86_64")


@pytest.fixture(scope="module")
def tiny_baseline() -> bl.Baseline:
    pytest.importorskip("tensorflow")
    configs = [(f"tiny/b8/2ep/seed{s}", TINY.replace(seed=s)) for s in (0, 1, 2)]
    return bl.make_baseline(bl.run_baseline_set(configs), KEY)


def _with_key(baseline: bl.Baseline, **changes: object) -> bl.Baseline:
    key = bl.EnvKey(**{**KEY.to_dict(), **changes})
    entries = {
        n: bl.Entry(e.config, dict(e.digests), e.metrics, e.diverged, {k: v.copy() for k, v in e.arrays.items()})
        for n, e in baseline.entries.items()
    }
    return bl.Baseline(key, entries, baseline.fingerprint, baseline.created)


def _redigest(entry: bl.Entry) -> None:
    """Make an entry whose arrays a test edited consistent again (a stored file's digests must match its arrays)."""
    for kind, prefix in (("initial_weights", "initial/"), ("final_weights", "final/")):
        entry.digests[kind] = digest_tensors(
            {k[len(prefix) :]: v for k, v in entry.arrays.items() if k.startswith(prefix)}
        )


# -- keys and the baseline set -------------------------------------------------------------------------------


def test_env_key_slug_versions_and_machine_class() -> None:
    assert KEY.slug == "tf2.21.0-keras3.15.1-tensorflow-onednn-avx512-linux-x86_64"
    legacy = bl.EnvKey.from_fingerprint(
        {
            "tensorflow": "2.21.0",
            "keras": "3.15.1",
            "tf_keras": "2.21.0",
            "keras_impl": "tf_keras",
            "keras_backend": "tensorflow",
            "onednn": True,
            "isa": "avx512",
            "platform": "Linux-x86_64",
        }
    )
    assert legacy.keras == "tf_keras-2.21.0" and "tfkeras2.21.0" in legacy.slug
    assert bl.EnvKey("2.15.1", "keras-2.15.0", "tensorflow", True, "avx512", "Linux-x86_64").versions < KEY.versions
    assert not KEY.same_machine_class(bl.EnvKey(**{**KEY.to_dict(), "isa": "avx2"}))


def test_baseline_set_covers_every_preset_config_short_and_full() -> None:
    names = [n for n, _ in bl.baseline_configs()]
    assert len(names) == 5 * 3 * 2 and len(set(names)) == len(names)
    assert "keras-default/batch32/5ep/seed0" in names and "batch-sweep/batch128/100ep/seed2" in names
    assert len(bl.baseline_configs(full=False)) == 15


# -- storage -------------------------------------------------------------------------------------------------


def test_record_load_round_trip_and_never_overwrite(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    path, replaced = bl.record(tiny_baseline, tmp_path)
    assert replaced is None and path.name == f"{KEY.slug}.json"
    loaded = bl.load_baseline(path)
    assert loaded.key == KEY and loaded.entries.keys() == tiny_baseline.entries.keys()
    for name, entry in tiny_baseline.entries.items():
        assert loaded.entries[name].digests == entry.digests
        for tensor, array in entry.arrays.items():
            assert np.array_equal(loaded.entries[name].arrays[tensor], array)
    before = path.read_bytes()
    with pytest.raises(bl.BaselineError, match="never overwrites one.*--force"):
        bl.record(tiny_baseline, tmp_path)
    assert path.read_bytes() == before
    _, replaced = bl.record(tiny_baseline, tmp_path, update=True)
    assert replaced is not None and replaced.created == tiny_baseline.created


def test_concurrent_records_leave_one_valid_file(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            bl.record(tiny_baseline, tmp_path)
            outcomes.append("recorded")
        except bl.BaselineError:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["recorded", "refused", "refused", "refused"]
    assert bl.load_baseline(bl.baseline_paths(tmp_path, KEY)[0]).entries.keys() == tiny_baseline.entries.keys()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (lambda p: p.write_text(p.read_text()[:200]), ["not a readable baseline", "JSONDecodeError", "--force"]),
        (lambda p: p.write_text('{"hello": 1}'), ["not a sinecheck baseline", "regenerate"]),
        (
            lambda p: p.write_text(p.read_text().replace('"schema": 1', '"schema": 99')),
            ["schema 99 is not supported", "allowed: 1"],
        ),
        (lambda p: p.with_suffix(".npz").write_bytes(b"PK\x03\x04 truncated"), [".npz", "unreadable arrays"]),
        (lambda p: p.with_suffix(".npz").unlink(), [".npz", "missing or unreadable"]),
    ],
)
def test_damaged_files_are_clear_errors(tiny_baseline: bl.Baseline, tmp_path: Path, damage, fragments) -> None:
    path, _ = bl.record(tiny_baseline, tmp_path)
    damage(path)
    with pytest.raises(bl.BaselineError) as info:
        bl.load_baseline(path)
    message = str(info.value)
    assert path.name in message or path.with_suffix(".npz").name in message
    for fragment in fragments:
        assert fragment in message
    with pytest.raises(bl.BaselineError):  # and `record` still refuses to replace it without update
        bl.record(tiny_baseline, tmp_path)


def test_baselines_load_without_pickle(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    path, _ = bl.record(tiny_baseline, tmp_path)
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


# -- checking ------------------------------------------------------------------------------------------------


def test_same_environment_must_be_bitwise(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    bl.record(tiny_baseline, tmp_path)
    (result,) = bl.check(tiny_baseline.entries, KEY, tmp_path)
    assert result.relation == "same environment" and result.worst == "identical"
    assert bl.failures([result], "material") == []
    edited = _with_key(tiny_baseline)
    name = "tiny/b8/2ep/seed1"
    edited.entries[name].arrays["final/layer1/bias"] += np.float32(1e-7)
    (result,) = bl.check(edited.entries, KEY, tmp_path)
    (_failed, bad) = bl.failures([result], "material")[0]
    assert [d.name for d in bad] == [name]  # even "material" strictness: the same environment must match
    assert name in result.table() and {d.name: d.grade for d in result.drifts}[name] != "identical"


def test_older_version_is_graded_by_strictness(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    bl.record(_with_key(tiny_baseline, tensorflow="2.20.0"), tmp_path)
    newer = _with_key(tiny_baseline)
    newer.entries["tiny/b8/2ep/seed0"].arrays["final/layer0/kernel"] *= np.float32(1 + 2e-7)  # a few ULP
    (result,) = bl.check(newer.entries, KEY, tmp_path)
    assert result.relation == "older version"
    grades = {d.name: d.grade for d in result.drifts}
    assert grades["tiny/b8/2ep/seed0"] == "ulp" and grades["tiny/b8/2ep/seed1"] == "identical"
    assert bl.failures([result], "bitwise") and not bl.failures([result], "ulp")
    moved = _with_key(tiny_baseline)
    entry = moved.entries["tiny/b8/2ep/seed2"]
    entry.arrays["pred/test"] = entry.arrays["pred/test"] + np.float32(0.5)
    band = bl.noise_bands(tiny_baseline)["tiny/b8/2ep"]
    entry.metrics = dataclasses.replace(entry.metrics, mse_test=entry.metrics.mse_test + 3 * band)  # beyond the spread
    (result,) = bl.check(moved.entries, KEY, tmp_path)
    assert {d.name: d.grade for d in result.drifts}["tiny/b8/2ep/seed2"] == "material"
    assert bl.failures([result], "material")


def test_other_machine_class_is_reported_not_failed(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    other = _with_key(tiny_baseline, isa="avx2")
    other.entries["tiny/b8/2ep/seed0"].arrays["final/layer0/kernel"] += np.float32(1e-3)
    _redigest(other.entries["tiny/b8/2ep/seed0"])
    bl.record(other, tmp_path)
    (result,) = bl.check(tiny_baseline.entries, KEY, tmp_path)
    assert result.relation == "other machine class" and "may legitimately differ" in result.summary()
    assert bl.failures([result], "bitwise") == []
    with pytest.raises(ValueError, match="strict: invalid value 'loose'"):
        bl.failures([result], "loose")


def test_record_leaves_no_lock_file_in_the_baseline_directory(tiny_baseline: bl.Baseline, tmp_path: Path) -> None:
    """The lock that serialises concurrent writers lives outside the baseline directory: nothing but the baseline
    files is left there to be committed by accident (and no .gitignore entry is needed)."""
    bl.record(tiny_baseline, tmp_path / "models-tiny")
    bl.record(tiny_baseline, tmp_path / "models-tiny", update=True)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["models-tiny", f"models-tiny/{KEY.slug}.json", f"models-tiny/{KEY.slug}.npz"]


# -- CLI -----------------------------------------------------------------------------------------------------


def test_cli_diff_and_list(tiny_baseline: bl.Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sinecheck.cli import main

    old_path, _ = bl.record(_with_key(tiny_baseline, tensorflow="2.20.0"), tmp_path)
    new = _with_key(tiny_baseline)
    new.entries["tiny/b8/2ep/seed0"].arrays["final/layer0/kernel"] *= np.float32(1 + 2e-7)
    _redigest(new.entries["tiny/b8/2ep/seed0"])
    new_path, _ = bl.record(new, tmp_path)
    assert main(["baseline", "list", "--dir", str(tmp_path)]) == 0
    assert "TensorFlow 2.20.0" in capsys.readouterr().out
    json_path = tmp_path / "diff.json"
    assert (
        main(
            [
                "baseline",
                "diff",
                str(old_path),
                new_path.stem,
                "--dir",
                str(tmp_path),
                "--strict",
                "bitwise",
                "--json",
                str(json_path),
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "tiny/b8/2ep/seed0" in out and "ulp" in out
    assert out.strip().splitlines()[-1] == "FAILED: 1 ulp beyond --strict=bitwise"  # names the grade that failed
    assert json.loads(json_path.read_text())["relation"] == "older version"
    assert main(["baseline", "diff", str(old_path), str(new_path), "--strict", "ulp"]) == 0
    old_path.write_text("{broken")
    assert main(["baseline", "diff", str(old_path), str(new_path)]) == 2
    err = capsys.readouterr().err
    assert old_path.name in err and "regenerate" in err and len(err.strip().splitlines()) == 1


def test_cli_list_without_model_shows_the_model_subdirectories(
    tiny_baseline: bl.Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`baseline list` without --model lists the presets' baselines and, grouped under each model's subdirectory,
    the models' (it used to say "no baselines" when only model subdirectories held any)."""
    from sinecheck.cli import main

    bl.record(tiny_baseline, tmp_path / "models-lstm_sine")
    bl.record(_with_key(tiny_baseline, tensorflow="2.20.0"), tmp_path / "models-conv_next")
    (tmp_path / "drift").mkdir()  # other JSON in a subdirectory (a saved drift report) is not a baseline
    (tmp_path / "drift" / "old--new.json").write_text('{"relation": "older version"}')
    assert main(["baseline", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no baselines" not in out and "drift" not in out
    assert out.index("models-conv_next") < out.index("TensorFlow 2.20.0") < out.index("models-lstm_sine")
    assert out.count(f"{KEY.slug}.json") == 1 and out.count("3 entries") == 2
    (tmp_path / "empty").mkdir()
    assert main(["baseline", "list", "--dir", str(tmp_path / "empty")]) == 0
    assert "no baselines in" in capsys.readouterr().out


# -- pytest integration --------------------------------------------------------------------------------------

CONFTEST = """
import sinecheck.checks.baseline as bl
from sinecheck.core.config import TrainConfig
from sinecheck.core.result import digest_tensors
tiny = TrainConfig(hidden_units=(4,), n_points=40, batch_size=8, epochs=2)
bl.baseline_configs = lambda **kw: [(f"tiny/seed{s}", tiny.replace(seed=s)) for s in (0, 1)]
"""
TEST = "def test_baselines(sinecheck_baseline):\n    sinecheck_baseline.verify()\n"


def test_pytest_record_check_update_and_a_failing_edit(pytester: pytest.Pytester) -> None:
    pytest.importorskip("tensorflow")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_bl=TEST)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*no baseline for this environment*record one with: pytest "
            "--sinecheck-baseline=record --sinecheck-baseline-dir=*"
        ]
    )
    result = pytester.runpytest_subprocess("--sinecheck-baseline=record")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*recorded a new baseline for TensorFlow*"])
    (path,) = (pytester.path / "tests" / "baselines").glob("*.json")
    assert not list(path.parent.glob("*.lock"))  # nothing to commit but the baseline's own files
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    data = json.loads(path.read_text())
    data["entries"]["tiny/seed1"]["metrics"]["mse_test"] += 1.0  # edit one number
    path.write_text(json.dumps(data))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAILED: 1 divergent where the same environment must be bitwise identical",  # not "FAILED (material)"
            "*tiny/seed1*",
            "*recorded metric mse_test differ*",
            "*--sinecheck-baseline=update*",
        ]
    )
    result = pytester.runpytest_subprocess("--sinecheck-baseline=update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*replaced the baseline recorded*"])
    assert pytester.runpytest_subprocess().ret == 0
    path.write_text("{corrupt")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{path.name}*not a readable baseline*regenerate*"])


def test_bad_baseline_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--sinecheck-strict=loose")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makeini("[pytest]\nsinecheck_baseline = sometimes\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini sinecheck_baseline: invalid value 'sometimes'; allowed: check, record*"])


def test_cli_record_refuses_an_existing_environment_before_training(
    tiny_baseline: bl.Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sinecheck.cli import main

    here = _with_key(tiny_baseline)
    here.key = bl.EnvKey.current()
    bl.record(here, tmp_path)
    assert main(["baseline", "record", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "exists for this environment" in err and "--force" in err and len(err.strip().splitlines()) == 1
