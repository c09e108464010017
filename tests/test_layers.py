"""The core stays pure: no workbook, UI or CLI library is imported anywhere under xl_expense/core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "xl_expense" / "core"
FORBIDDEN = {"openpyxl", "python_calamine", "xlwings", "click", "rich", "zipfile", "defusedxml", "xl_expense.io",
             "xl_expense.cli", "xl_expense.workflows"}
FORBIDDEN_CALLS = {"open", "print"}


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    assert len(CORE_FILES) >= 5, "the layer test must look at real modules"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = {name for name in _imports(tree) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}: core must stay free of IO/UI libraries"
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS}
    assert not calls, f"{path.name} calls {sorted(calls)}: core neither reads files nor prints"


def test_layer_check_catches_a_violation(tmp_path: Path) -> None:
    """The check itself can fail: an IO import is seen."""
    tree = ast.parse("import openpyxl\nfrom xl_expense.io.ledger_reader import load_ledger\n")
    assert {"openpyxl", "xl_expense.io.ledger_reader"} <= _imports(tree)
