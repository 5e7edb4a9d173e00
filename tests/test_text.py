"""sinecheck._text: the one table renderer (plain and Markdown) and the number formatter."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

import sinecheck._text
from sinecheck._text import format_number, markdown_table, text_table


def test_text_table_aligns_columns_and_strips_trailing_space() -> None:
    table = text_table(["run", "MSE", "note"], [["a", "0.5", ""], ["longer name", "nan", "x"]])
    assert table.splitlines() == [
        "run          MSE  note",
        "-----------  ---  ----",
        "a            0.5",
        "longer name  nan  x",
    ]


def test_markdown_table() -> None:
    assert markdown_table(["factor", "verdict"], [["xla", "ulp 3"]]) == (
        "| factor | verdict |\n|---|---|\n| xla | ulp 3 |"
    )


@pytest.mark.parametrize("render", [text_table, markdown_table])
def test_a_row_of_the_wrong_width_is_refused(render: Callable[[Sequence[str], Iterable[Sequence[str]]], str]) -> None:
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        render(["a", "b"], [["only one"]])


@pytest.mark.parametrize(
    ("value", "spec", "missing", "expected"),
    [
        (0.123456, ".5f", "nan", "0.12346"),
        (None, ".5f", "nan", "nan"),
        (float("nan"), ".4f", "nan", "nan"),
        (None, ".2e", "—", "—"),
        (-1.5e-7, "+.2e", "—", "-1.50e-07"),
    ],
)
def test_format_number(value: float | None, spec: str, missing: str, expected: str) -> None:
    assert format_number(value, spec, missing=missing) == expected


def test_text_is_a_leaf_module() -> None:
    """_text sits below core in the layers: it imports nothing from sinecheck."""
    tree = ast.parse(Path(sinecheck._text.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith("sinecheck")]
