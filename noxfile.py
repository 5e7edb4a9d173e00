"""The TensorFlow/Keras upgrade workflow, for real: one venv per environment, baselines recorded in each,
the newest checked, and the drift between consecutive environments printed.

    nox -s upgrade -- tf=2.20.0,keras=3.15.1 tf=2.21.0,keras=3.15.1
    nox -s upgrade -- tf=2.15.1,keras=2.15.0 tf=2.21.0,keras=3.15.1

Each environment is ``tf=VERSION,keras=VERSION`` (add ``tf_keras=VERSION,legacy=1`` to train with tf_keras, i.e.
``TF_USE_LEGACY_KERAS=1``).  Environments are listed oldest first.  Settings (environment variables):
``SINECHECK_BASELINE_DIR`` (default tests/baselines), ``SINECHECK_STRICT`` (bitwise | ulp | material, default
material), ``SINECHECK_SHORT=1`` (only the 5-epoch runs: a quick look).  Venvs live in ``.nox/sinecheck-envs/``
and are reused when their package list is unchanged; this project is installed into each with ``--no-deps``
(its own requirement says TensorFlow >= 2.16, which the TF 2.15 / Keras 2 environment must not get).

Mutation testing (mutmut 3.8.1, configured in ``[tool.mutmut]`` of pyproject.toml):

    nox -s mutation                                   # compare.py, config.py and baseline.py
    nox -s mutation -- sinecheck/core/compare.py      # one file (or several), e.g. while writing tests

mutmut copies the project into ``mutants/`` (git-ignored; removed first, so every run starts fresh) and runs the
fast unit tests selected in ``[tool.mutmut]`` against every mutant, one at a time (``SINECHECK_MUTMUT_CHILDREN``,
default 1: the machine is shared).  The session prints, per file: mutants, killed (timeouts count as killed),
survived ("no tests" counts as survived), equivalent and the score killed / (mutants - equivalent), then lists the
surviving ids (``mutmut show ID`` prints one).  Equivalent mutants — no observable behaviour change — are listed in
``tests/mutation/equivalent*.txt``, one per line: the mutant id, whitespace, a one-line reason.  The session fails
if a file scores below 90 %, if a listed id no longer exists (ids shift when a function changes: re-check the
list) or if a listed mutant was killed (then it was not equivalent).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nox

from sinecheck.checks.baseline import Grade, Strictness

nox.options.sessions = ["upgrade"]
ROOT = Path(__file__).resolve().parent
ENVS = ROOT / ".nox" / "sinecheck-envs"
#: What sinecheck needs besides TensorFlow and Keras (installed alongside, so pip keeps TF's numpy pin).
RUNTIME = ["matplotlib", "scipy", "pytest", "hypothesis", "pytest-benchmark", "filelock"]


def _parse(spec: str) -> dict[str, str]:
    fields = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    if "tf" not in fields or "keras" not in fields:
        raise SystemExit(f"environment {spec!r}: expected tf=VERSION,keras=VERSION[,tf_keras=VERSION,legacy=1]")
    return fields


def _requirements(fields: dict[str, str]) -> list[str]:
    reqs = [f"tensorflow-cpu=={fields['tf']}", f"keras=={fields['keras']}"]
    if "tf_keras" in fields:
        reqs.append(f"tf-keras=={fields['tf_keras']}")
    return reqs + RUNTIME


def _venv(session: nox.Session, fields: dict[str, str]) -> dict[str, str]:
    """Create (or reuse) the venv of one environment; return the env vars that activate it."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(f"{k}{v}" for k, v in sorted(fields.items())))
    path = ENVS / name
    marker = path / "sinecheck-requirements.json"
    reqs = _requirements(fields)
    python = path / "bin" / "python"
    if not (marker.exists() and json.loads(marker.read_text()) == reqs):
        session.run(sys.executable, "-m", "venv", "--clear", str(path), external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", *reqs, external=True)
        marker.write_text(json.dumps(reqs))
    session.run(str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT), external=True)
    env = {
        "VIRTUAL_ENV": str(path),
        "PATH": f"{path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SINECHECK_BIN": str(path / "bin"),
    }
    if fields.get("legacy") == "1":
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def _tool(env: dict[str, str], name: str) -> str:
    """A program of the environment's venv, by full path (nox resolves bare names on its own PATH)."""
    return str(Path(env["SINECHECK_BIN"]) / name)


def _slug(session: nox.Session, env: dict[str, str]) -> str:
    code = "from sinecheck.checks.baseline import EnvKey; print(EnvKey.current().slug)"
    out = session.run(_tool(env, "python"), "-c", code, env=env, external=True, silent=True)
    return str(out).strip().splitlines()[-1]


@nox.session(python=False)
def upgrade(session: nox.Session) -> None:
    """Record a baseline in every environment (oldest first), check the newest, print the drift per step."""
    specs = [_parse(s) for s in session.posargs]
    if len(specs) < 2:
        session.error(
            "give at least two environments, oldest first: nox -s upgrade -- tf=2.20.0,keras=3.15.1 "
            "tf=2.21.0,keras=3.15.1"
        )
    directory = os.environ.get("SINECHECK_BASELINE_DIR", str(ROOT / "tests" / "baselines"))
    strict = os.environ.get("SINECHECK_STRICT", "material")
    short = ["--short-only"] if os.environ.get("SINECHECK_SHORT") == "1" else []
    slugs, envs = [], []
    for fields in specs:
        env = _venv(session, fields)
        slug = _slug(session, env)
        if (Path(directory) / f"{slug}.json").exists():
            session.log(f"{slug}: baseline exists, reused (`sinecheck baseline record --force` replaces it)")
        else:
            session.run(
                _tool(env, "sinecheck"), "baseline", "record", "--dir", directory, *short, env=env, external=True
            )
        slugs.append(slug)
        envs.append(env)
    session.log(f"checking the newest environment ({slugs[-1]}) against the stored baselines")
    session.run(
        _tool(envs[-1], "sinecheck"),
        "baseline",
        "check",
        "--dir",
        directory,
        "--strict",
        strict,
        *short,
        env=envs[-1],
        external=True,
        success_codes=[0, 1],
    )
    limit = Strictness.parse(strict).limit
    failed = []
    for old, new in itertools.pairwise(slugs):
        session.log(f"drift {old} → {new}")
        report = Path(directory) / "drift" / f"{old}--{new}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        session.run(
            _tool(envs[-1], "sinecheck"),
            "baseline",
            "diff",
            old,
            new,
            "--dir",
            directory,
            "--strict",
            strict,
            "--json",
            str(report),
            env=envs[-1],
            external=True,
            success_codes=[0, 1],
        )
        grades = [d["grade"] for d in json.loads(report.read_text())["drifts"]]
        if any(Grade(g) > limit for g in grades):
            failed.append(f"{old} → {new}")
    if failed:
        session.error(f"drift beyond --strict {strict} in: {'; '.join(failed)} (tables above)")


@nox.session(python=False)
def envs(session: nox.Session) -> None:
    """Only create (or refresh) the venvs of the given environments, e.g. ahead of a slow `upgrade`."""
    for spec in session.posargs:
        env = _venv(session, _parse(spec))
        session.log(f"{spec}: {_slug(session, env)}")


# -- mutation testing ------------------------------------------------------------------------------------------------

#: The files `nox -s mutation` mutates (and pyproject's [tool.mutmut] only_mutate lists), and the score each must reach.
MUTATED = ("sinecheck/core/compare.py", "sinecheck/core/config.py", "sinecheck/checks/baseline.py")
MIN_SCORE = 90.0
MUTANTS = ROOT / "mutants"
EQUIVALENT_GLOB = "tests/mutation/equivalent*.txt"
#: mutmut 3.8.1 exit codes (mutmut.stats.status_by_exit_code): killed, timed out (SIGXCPU / SIGKILL), survived,
#: no covering test.  Anything else (not checked, suspicious, skipped) means the run is incomplete.
KILLED_CODES = {1, 3}
TIMEOUT_CODES = {36, -24, 24, 152, 255, -9, -11}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}


@dataclass(frozen=True)
class MutationScore:
    """One file's mutation result: ``score = killed / (mutants - equivalent)`` in percent."""

    path: str
    mutants: int
    killed: int
    survived: int
    equivalent: int

    @property
    def score(self) -> float:
        """Killed share of the non-equivalent mutants, in percent (100 when every mutant is equivalent)."""
        scored = self.mutants - self.equivalent
        return 100.0 * self.killed / scored if scored else 100.0


def _module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _mutation_targets(args: list[str]) -> list[str]:
    """The files to mutate: all of MUTATED, or the ones named on the command line (path or dotted module)."""
    if not args:
        return list(MUTATED)
    by_name = {p: p for p in MUTATED} | {_module_of(p): p for p in MUTATED} | {Path(p).name: p for p in MUTATED}
    unknown = [a for a in args if a not in by_name]
    if unknown:
        raise SystemExit(f"nox -s mutation: unknown file(s) {', '.join(unknown)}; choose from {', '.join(MUTATED)}")
    return [by_name[a] for a in args]


def read_equivalents(paths: list[Path]) -> dict[str, str]:
    """Mutant id -> reason from the equivalent-mutant lists (blank lines and ``#`` comments skipped)."""
    out: dict[str, str] = {}
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            mutant, _, reason = text.partition(" ")
            if not reason.strip():
                raise SystemExit(f"{path}:{number}: {mutant} has no reason (format: MUTANT_ID  one-line reason)")
            if mutant in out:
                raise SystemExit(f"{path}:{number}: {mutant} is listed twice")
            out[mutant] = reason.strip()
    return out


def score_file(path: str, exit_codes: dict[str, int | None], equivalent: set[str]) -> tuple[MutationScore, list[str]]:
    """Score one file from mutmut's exit code per mutant id; also return the non-equivalent survivors."""
    killed, survivors, unchecked = 0, [], []
    for mutant, code in exit_codes.items():
        if mutant in equivalent:
            continue
        if code in KILLED_CODES or code in TIMEOUT_CODES:
            killed += 1
        elif code in SURVIVED_CODES or code in NO_TESTS_CODES:
            survivors.append(mutant)
        else:
            unchecked.append(f"{mutant} (exit code {code})")
    if unchecked:
        raise SystemExit(f"{path}: {len(unchecked)} mutants were not run to a verdict: {', '.join(unchecked[:5])}")
    listed = len(equivalent & set(exit_codes))
    return MutationScore(path, len(exit_codes), killed, len(survivors), listed), sorted(survivors)


def _score_table(scores: list[MutationScore]) -> str:
    rows = [("file", "mutants", "killed", "survived", "equivalent", "score")]
    rows += [(s.path, str(s.mutants), str(s.killed), str(s.survived), str(s.equivalent), f"{s.score:.1f} %")
             for s in scores]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


@nox.session(python=False)
def mutation(session: nox.Session) -> None:
    """Mutation score per file (mutmut 3.8.1): `nox -s mutation [-- FILE ...]`; fails below 90 % (see top)."""
    files = _mutation_targets(session.posargs)
    equivalents = read_equivalents(sorted(ROOT.glob(EQUIVALENT_GLOB)))
    if MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    children = os.environ.get("SINECHECK_MUTMUT_CHILDREN", "1")
    # Naming the mutants (a glob per module) makes mutmut run exactly those, every time.
    globs = [f"{_module_of(p)}.*" for p in files]
    session.run("mutmut", "run", "--max-children", children, *globs, external=True)
    scores, failures = [], []
    for path in files:
        meta = MUTANTS / f"{path}.meta"
        if not meta.exists():
            session.error(f"mutmut wrote no results for {path} ({meta} is missing)")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        module = _module_of(path) + "."
        listed = {m for m in equivalents if m.startswith(module)}
        gone = sorted(listed - set(codes))
        if gone:
            failures.append(f"{path}: listed as equivalent but no such mutant: {', '.join(gone)}")
        killed = sorted(m for m in listed & set(codes) if codes[m] in KILLED_CODES)
        if killed:
            failures.append(
                f"{path}: listed as equivalent but killed by a test (so not equivalent): {', '.join(killed)}"
            )
        score, survivors = score_file(path, codes, listed)
        scores.append(score)
        if survivors:
            session.log(f"{path}: {len(survivors)} survivors (`mutmut show ID`):\n  " + "\n  ".join(survivors))
        if score.score < MIN_SCORE:
            failures.append(f"{path}: mutation score {score.score:.1f} % < {MIN_SCORE:.0f} %")
    print(_score_table(scores))
    if failures:
        session.error("; ".join(failures))
