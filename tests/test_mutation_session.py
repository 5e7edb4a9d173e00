"""`nox -s mutation`'s own rules: the score formula, how mutmut's exit codes count, the equivalent-mutant lists'
format, and that the session and pyproject's [tool.mutmut] name the same files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("nox")


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sinecheck_noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_score_counts_timeouts_as_killed_and_no_tests_as_survived(noxfile: ModuleType) -> None:
    codes = {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 36, "m.x_f__mutmut_3": 0, "m.x_f__mutmut_4": 33,
             "m.x_f__mutmut_5": 0, "m.x_f__mutmut_6": 3, "m.x_f__mutmut_7": -24}  # fmt: skip
    score, survivors = noxfile.score_file("m.py", codes, {"m.x_f__mutmut_5"})
    assert (score.mutants, score.killed, score.survived, score.equivalent) == (7, 4, 2, 1)
    assert score.score == pytest.approx(100 * 4 / 6)
    assert survivors == ["m.x_f__mutmut_3", "m.x_f__mutmut_4"]


def test_unchecked_mutants_fail_the_score(noxfile: ModuleType) -> None:
    with pytest.raises(
        SystemExit, match=r"m\.py: 1 mutants were not run to a verdict: m\.x_f__mutmut_2 \(exit code None\)"
    ):
        noxfile.score_file("m.py", {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": None}, set())


def test_all_equivalent_scores_full(noxfile: ModuleType) -> None:
    score, _ = noxfile.score_file("m.py", {"m.x_f__mutmut_1": 0}, {"m.x_f__mutmut_1"})
    assert score.score == 100.0


def test_equivalent_list_format(noxfile: ModuleType, tmp_path: Path) -> None:
    good = tmp_path / "equivalent.txt"
    good.write_text("# comment\n\nm.x_f__mutmut_1  astype(None) is float64\n", encoding="utf-8")
    assert noxfile.read_equivalents([good]) == {"m.x_f__mutmut_1": "astype(None) is float64"}
    bare = tmp_path / "equivalent-bare.txt"
    bare.write_text("m.x_f__mutmut_2\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="equivalent-bare.txt:1: m.x_f__mutmut_2 has no reason"):
        noxfile.read_equivalents([bare])
    with pytest.raises(SystemExit, match="is listed twice"):
        noxfile.read_equivalents([good, good])


def test_targets_from_the_command_line(noxfile: ModuleType) -> None:
    assert noxfile._mutation_targets([]) == list(noxfile.MUTATED)
    assert noxfile._mutation_targets(["compare.py", "sinecheck.core.config"]) == [
        "sinecheck/core/compare.py",
        "sinecheck/core/config.py",
    ]
    with pytest.raises(SystemExit, match="unknown file"):
        noxfile._mutation_targets(["sinecheck/core/data.py"])


def test_session_and_pyproject_mutate_the_same_files(noxfile: ModuleType) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    assert sorted(config["only_mutate"]) == sorted(noxfile.MUTATED)


def test_committed_equivalent_lists_name_mutated_modules(noxfile: ModuleType) -> None:
    lists = sorted(ROOT.glob(noxfile.EQUIVALENT_GLOB))
    assert lists, "tests/mutation/equivalent.txt is missing"
    modules = tuple(noxfile._module_of(p) + ".x" for p in noxfile.MUTATED)
    for mutant in noxfile.read_equivalents(lists):
        assert mutant.startswith(modules), mutant
        assert "__mutmut_" in mutant, mutant
