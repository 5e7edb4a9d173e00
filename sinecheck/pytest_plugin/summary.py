"""What a session measured (runs, matrix cells, baseline lines) and the terminal summary that reports it.

Plain data that round-trips through JSON: under pytest-xdist each worker hands its record to the controller
(see `sinecheck.pytest_plugin.xdist`), which prints one summary for the whole session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from sinecheck.checks.matrix import Cell
from sinecheck.core.result import RunResult

__all__ = ["RECORD_KEY", "CellGroup", "SessionRecord", "TerminalWriter", "get_record", "write_summary"]


@dataclass
class CellGroup:
    """Cells measured together: a whole matrix (`key` identifies it, so workers that share one count it once)
    or one `sinecheck_cell` (no key)."""

    cells: list[Cell]
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "cells": [c.to_dict() for c in self.cells]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellGroup:
        return cls([Cell.from_dict(c) for c in data["cells"]], data["key"])


@dataclass
class SessionRecord:
    """The session's trainings, cells and baseline lines, in the order they happened."""

    runs: int = 0
    epochs: int = 0
    seconds: float = 0.0
    diverged: int = 0
    groups: list[CellGroup] = field(default_factory=list)
    baseline_lines: list[str] = field(default_factory=list)

    def add_run(self, result: RunResult) -> None:
        self.runs += 1
        self.epochs += result.epochs_run
        self.seconds += result.timings.total_s
        self.diverged += bool(result.diverged)

    def add_cells(self, cells: Sequence[Cell], *, key: str | None = None) -> None:
        """Add `cells`; a matrix already added under the same `key` is not added again."""
        if key is None or all(g.key != key for g in self.groups):
            self.groups.append(CellGroup(list(cells), key))

    @property
    def cells(self) -> list[Cell]:
        return [c for g in self.groups for c in g.cells]

    def merge(self, other: SessionRecord) -> None:
        """Add another process's record (a pytest-xdist worker's) to this one."""
        self.runs += other.runs
        self.epochs += other.epochs
        self.seconds += other.seconds
        self.diverged += other.diverged
        for group in other.groups:
            self.add_cells(group.cells, key=group.key)
        self.baseline_lines += other.baseline_lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "diverged": self.diverged,
            "groups": [g.to_dict() for g in self.groups],
            "baseline_lines": list(self.baseline_lines),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            runs=data["runs"],
            epochs=data["epochs"],
            seconds=data["seconds"],
            diverged=data["diverged"],
            groups=[CellGroup.from_dict(g) for g in data["groups"]],
            baseline_lines=list(data["baseline_lines"]),
        )


RECORD_KEY = pytest.StashKey[SessionRecord]()


def get_record(config: pytest.Config) -> SessionRecord:
    """This process's record (created on first use)."""
    record = config.stash.get(RECORD_KEY, None)
    if record is None:
        record = config.stash[RECORD_KEY] = SessionRecord()
    return record


class TerminalWriter(Protocol):
    """The part of pytest's ``TerminalReporter`` the summary uses."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str | bytes, **markup: bool) -> None: ...


def write_summary(writer: TerminalWriter, record: SessionRecord) -> None:
    """The ``sinecheck baselines`` section (lines of baseline tests), then the ``sinecheck`` section (runs
    trained in-process and the factor × row table of every cell); nothing when the session measured nothing."""
    if record.baseline_lines:
        writer.write_sep("-", "sinecheck baselines")
        for line in record.baseline_lines:
            writer.write_line(line)
    cells = record.cells
    if not record.runs and not cells:
        return
    writer.write_sep("-", "sinecheck")
    if record.runs:
        writer.write_line(
            f"trained {record.runs} runs ({record.epochs} epochs) in {record.seconds:.1f} s; {record.diverged} diverged"
        )
    if cells:
        writer.write_line("reproducibility (factor × row → verdict; '!' marks a broken expectation):")
        for line in cell_table(cells):
            writer.write_line("  " + line)


def cell_table(cells: Sequence[Cell]) -> list[str]:
    """Factor × row → short verdict (``!`` where the factor's expectation is broken), as aligned lines.  A cell
    whose factor and row are already taken (two marker tests of one model, say) goes to a row ``ROW#2`` (``#3``…)
    rather than hiding the first."""
    text: dict[tuple[str, str], str] = {}
    for c in cells:
        row, n = c.row, 1
        while (c.factor.name, row) in text:
            n += 1
            row = f"{c.row}#{n}"
        text[(c.factor.name, row)] = c.short() + ("!" if c.meets_expectation is False else "")
    rows = list(dict.fromkeys(row for _, row in text))
    factors = list(dict.fromkeys(c.factor.name for c in cells))
    expect = {c.factor.name: str(c.factor.expect) for c in cells}
    table = [["factor", "expect", *rows]]
    table += [[f, expect[f], *(text.get((f, r), "") for r in rows)] for f in factors]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
