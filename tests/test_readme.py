"""README.md's set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S)
    return [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_gives_the_two_setup_commands() -> None:
    commands = _bash_commands()
    assert 'pip install -e ".[dev]" && sinecheck report' in commands
    assert any(c.startswith('pip install -e ".[dev]" && pytest') for c in commands)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(c for c in _bash_commands() if c.startswith("pip install") and "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install, _, run = test_command.partition(" && ")
    assert install in ci
    assert re.search(rf"^{re.escape(run)}\b", ci, re.M), f"{run!r} is not a command line of .ci/run"
    assert "exit code 5" in ci or '"$status" -eq 5' in ci
