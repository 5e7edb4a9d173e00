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
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
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
