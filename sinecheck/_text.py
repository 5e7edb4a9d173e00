"""Text formatting shared by every interface: numbers and plain / Markdown tables.

A leaf module: it imports nothing from sinecheck, so any layer may use it.  Tables are built from rows of strings
(format the numbers first, with `format_number`), so the same rows serve the terminal and a Markdown report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["format_number", "markdown_table", "text_table"]


def format_number(value: float | None, spec: str, *, missing: str = "nan") -> str:
    """`value` in the format `spec` (e.g. ``".5f"``, ``"+.2e"``); `missing` for None or NaN."""
    if value is None or math.isnan(value):
        return missing
    return format(value, spec)


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, gap: int = 2) -> str:
    """An aligned plain-text table: the header, a rule of dashes, the rows; left-aligned columns `gap` spaces apart,
    no trailing spaces."""
    table = [list(header), *(list(row) for row in rows)]
    _check_widths(table)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    sep = " " * gap
    lines = [sep.join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, sep.join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table: ``| a | b |``, then ``|---|---|``, then one line per row."""
    table = [list(header), *(list(row) for row in rows)]
    _check_widths(table)
    lines = ["| " + " | ".join(row) + " |" for row in table]
    lines.insert(1, "|" + "---|" * len(header))
    return "\n".join(lines)


def _check_widths(table: Sequence[Sequence[str]]) -> None:
    for row in table[1:]:
        if len(row) != len(table[0]):
            raise ValueError(f"a row has {len(row)} cells, the header {len(table[0])}: {list(row)!r}")
