"""The audit workflow's speed-ups change nothing but the time it takes.

* the workbook is opened once for settings, ledger, reviewer notes and budget;
* scikit-learn and openpyxl are not imported just to start an audit.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from xl_expense import workflows
from xl_expense.io.budget_book import read_budget_book
from xl_expense.io.ledger_reader import load_ledger, open_workbook
from xl_expense.io.reviewer_notes import read_reviewer_notes
from xl_expense.io.settings_io import load_settings

NOW = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)


def test_starting_an_audit_imports_neither_sklearn_nor_openpyxl():
    code = ("import sys, xl_expense.cli, xl_expense.workflows; "
            "print(sorted(m for m in ('sklearn', 'scipy.stats', 'openpyxl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readers_share_one_open_workbook(demo_workbook: Path, tmp_path: Path):
    audited = tmp_path / "audited.xlsx"
    workflows.audit_workbook(demo_workbook, audited, now=NOW)
    book = open_workbook(audited)
    try:
        shared = load_ledger(audited, book=book)
        assert read_reviewer_notes(audited, book=book).equals(read_reviewer_notes(audited))
        assert load_settings(audited, book=book) == load_settings(audited)
        assert read_budget_book(audited, book=book) is None
        assert book.sheet_names  # still open: the readers leave a shared book to its owner
    finally:
        book.close()
    alone = load_ledger(audited)
    pd.testing.assert_frame_equal(shared.df, alone.df)
    assert (shared.totals_rows, shared.header_row) == (alone.totals_rows, alone.header_row)


def test_budget_book_through_a_shared_book(tmp_path: Path):
    template = Path(__file__).resolve().parents[1] / "workbook_templates" / "budget_template_zh.xlsx"
    if not template.exists():
        pytest.skip("no budget template in this checkout")
    book_path = tmp_path / "budget.xlsx"
    shutil.copy(template, book_path)
    book = open_workbook(book_path)
    try:
        shared = read_budget_book(book_path, book=book)
    finally:
        book.close()
    alone = read_budget_book(book_path)
    assert shared is not None and (shared.year, shared.budget_by, shared.rows) == (alone.year, alone.budget_by, alone.rows)
    pd.testing.assert_frame_equal(shared.budget, alone.budget)


def test_csv_has_no_shared_book(tmp_path: Path):
    path = tmp_path / "l.csv"
    path.write_text("日期,金额\n2026-03-01,10\n", encoding="utf-8")
    assert open_workbook(path) is None
