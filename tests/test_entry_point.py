"""The entry point starts reading an audit's workbook before the command line is imported."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest

from xl_expense.__main__ import AUDIT_VALUE_OPTIONS, audit_input
from xl_expense.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("argv", "expected"), [
    (["audit", "in.xlsx"], "in.xlsx"),
    (["audit", "-o", "out.xlsx", "in.xlsx"], "in.xlsx"),
    (["audit", "--output=out.xlsx", "in.xlsx"], "in.xlsx"),
    (["audit", "--map", "amount=金额", "--dayfirst", "--lang", "en", "in.xlsx", "--in-place"], "in.xlsx"),
    (["audit", "--", "-odd name.xlsx"], "-odd name.xlsx"),
    (["audit", "--help"], None),
    (["audit"], None),
    (["classify", "in.xlsx"], None),
    ([], None),
])
def test_the_audit_input_is_found_on_the_command_line(argv: list[str], expected: str | None) -> None:
    assert audit_input(argv) == expected


def test_the_value_options_are_the_audit_commands_own() -> None:
    """An option added to `audit` that takes a value must be listed, or its value would be
    taken for the input."""
    command = cli.commands["audit"]
    takes_value = {opt for p in command.params if isinstance(p, click.Option) and not p.is_flag
                   for opt in (*p.opts, *p.secondary_opts)}
    assert takes_value == AUDIT_VALUE_OPTIONS


def test_the_console_script_goes_through_the_early_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["xl-expense"] == "xl_expense.__main__:main"


_SPY = """
import sys
from xl_expense.io import prefetch
real = prefetch.prefetch_workbook
def spy(path):
    print("prefetch", path == sys.argv[2], "xl_expense.cli" in sys.modules, "click" in sys.modules,
          "pandas" in sys.modules, flush=True)
    return real(path)
prefetch.prefetch_workbook = spy
from xl_expense import __main__ as entry
sys.argv = ["xl-expense", "audit", sys.argv[1], "-o", sys.argv[2]]
entry.main()
"""


def test_the_prefetch_starts_before_the_command_line_is_imported(demo_workbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    proc = subprocess.run([sys.executable, "-c", _SPY, str(demo_workbook), str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    # The early call: the input, before the command line, click and pandas are imported.
    assert first == "prefetch True False False False"
    assert out.is_file()


def test_the_audit_does_not_import_the_report_writer() -> None:
    """The audit's imports run beside the workbook parse; the report writer (the biggest
    module) is not among them, only the names of its sheets, which the reader skips."""
    code = "import sys, xl_expense.workflows; print('xl_expense.io.report_sheets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
