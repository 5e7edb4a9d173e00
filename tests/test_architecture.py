"""The package's shape: no import cycles, and imports inside functions only for the slow or optional libraries.

The layers themselves (and "core never imports TensorFlow") are import-linter contracts in pyproject.toml.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import grimp
import pytest

import sinecheck
from sinecheck.cli import COMMANDS

PACKAGE_DIR = Path(sinecheck.__file__).parent

#: Imported inside functions only: slow to import (pytest --help and `import sinecheck` stay fast) or optional.
LAZY_PACKAGES = frozenset(
    {"tensorflow", "keras", "tf_keras", "jax", "torch", "matplotlib", "scipy", "dask", "distributed"}
)
#: The CLI's command modules, imported when their command runs (a lazy command table, as in pip).
LAZY_COMMANDS = frozenset(info.module for info in COMMANDS.values())
#: Any other import that must stay inside a function: {(file relative to the package, module): why}.
LAZY_EXCEPTIONS: dict[tuple[str, str], str] = {}


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of modules that import one another in a circle (Tarjan's strongly connected components);
    a module importing itself is a cycle too.  Imports inside functions count: they are cycles all the same."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            start = stack.index(module)
            component, stack[start:] = stack[start:], []
            if len(component) > 1 or graph.direct_import_exists(importer=module, imported=module):
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(cycles)


def describe_cycle(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """The imports that close `cycle`, one ``importer -> imported (lines)`` each."""
    edges = []
    for importer in cycle:
        for imported in cycle:
            if graph.direct_import_exists(importer=importer, imported=imported):
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = sorted({detail["line_number"] for detail in details})
                edges.append(f"  {importer} -> {imported} (line {', '.join(map(str, lines))})")
    return f"cycle among {', '.join(cycle)}:\n" + "\n".join(edges)


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("sinecheck", cache_dir=None)
    cycles = import_cycles(graph)
    assert not cycles, "\n".join(describe_cycle(graph, cycle) for cycle in cycles)


def test_the_cycle_check_finds_a_planted_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "sinecheck_cycle_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from sinecheck_cycle_probe import second\n")
    (package / "second.py").write_text("def later():\n    from sinecheck_cycle_probe import first\n")  # hidden
    (package / "selfish.py").write_text("def itself():\n    from sinecheck_cycle_probe import selfish\n")
    (package / "user.py").write_text("import sinecheck_cycle_probe.first\n")  # imports the cycle, not part of it
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("sinecheck_cycle_probe", cache_dir=None)
    cycles = import_cycles(graph)
    assert cycles == [
        ["sinecheck_cycle_probe.first", "sinecheck_cycle_probe.second"],
        ["sinecheck_cycle_probe.selfish"],
    ]
    assert "sinecheck_cycle_probe.second -> sinecheck_cycle_probe.first (line 2)" in describe_cycle(graph, cycles[0])


class Import(NamedTuple):
    line: int
    statement: str
    modules: tuple[str, ...]  # ``from a import b`` as ``a.b``: b may be a module
    in_function: bool


class _ImportFinder(ast.NodeVisitor):
    """Every import statement and whether it runs inside a function; ``if TYPE_CHECKING:`` blocks never run."""

    def __init__(self) -> None:
        self.found: list[Import] = []
        self.depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self._add(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        self._add(node, [module + ("" if module.endswith(".") else ".") + alias.name for alias in node.names])

    def _add(self, node: ast.Import | ast.ImportFrom, modules: list[str]) -> None:
        self.found.append(Import(node.lineno, ast.unparse(node), tuple(modules), self.depth > 0))


def _within(module: str, names: Iterable[str]) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in names)


def import_violations(source: str, name: str) -> list[str]:
    """Imports of `source` (the file `name`, relative to the package) that break the rule: a function imports
    anything but the lazy packages, or the module itself (at import time) imports one of them."""
    finder = _ImportFinder()
    finder.visit(ast.parse(source))
    in_functions = LAZY_PACKAGES | LAZY_COMMANDS | {module for file, module in LAZY_EXCEPTIONS if file == name}
    problems = []
    for found in finder.found:
        if found.in_function and not all(_within(module, in_functions) for module in found.modules):
            problems.append(f"{name}:{found.line}: `{found.statement}` inside a function (move it to the top)")
        elif not found.in_function and any(_within(module, LAZY_PACKAGES) for module in found.modules):
            problems.append(f"{name}:{found.line}: `{found.statement}` at module level (import it where used)")
    return problems


def test_imports_inside_functions_only_for_lazy_packages() -> None:
    problems = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        problems += import_violations(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE_DIR).as_posix())
    assert not problems, "\n".join(problems)


def test_the_import_check_finds_misplaced_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "import scipy.stats\n"  # 3: a lazy package at module level
        "if TYPE_CHECKING:\n"
        "    from matplotlib.figure import Figure\n"  # type checkers only: fine
        "def f():\n"
        "    import tensorflow as tf\n"
        "    from keras.src import random\n"
        "    from sinecheck.core import data\n"  # 9
        "    async def g():\n"
        "        import os, dask\n"  # 11: os
        "    from . import sibling\n"  # 12
        "class C:\n"
        "    from sinecheck import errors\n"  # runs with the class body, at import: fine
        "    def method(self):\n"
        "        from sinecheck.cli import run\n"  # a command of the lazy table: fine
    )
    assert import_violations(source, "m.py") == [
        "m.py:3: `import scipy.stats` at module level (import it where used)",
        "m.py:9: `from sinecheck.core import data` inside a function (move it to the top)",
        "m.py:11: `import os, dask` inside a function (move it to the top)",
        "m.py:12: `from . import sibling` inside a function (move it to the top)",
    ]
