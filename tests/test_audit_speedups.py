"""The audit workflow's speed-ups change nothing but the time it takes.

* the IsolationForest is fitted in a worker process (and fitted here when that fails);
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


def _audit(src: Path, out: Path, monkeypatch, worker: bool):
    monkeypatch.setenv(workflows.FOREST_WORKER_ENV, "1" if worker else "0")
    return workflows.audit_workbook(src, out, now=NOW)


def _spy_answers(monkeypatch) -> list:
    """Record what each worker answered (None = fell back to fitting here)."""
    answers = []
    original = workflows._ForestWorker._answer

    def spy(self, *args):
        answer = original(self, *args)
        answers.append(answer)
        return answer

    monkeypatch.setattr(workflows._ForestWorker, "_answer", spy)
    return answers


def test_forest_worker_gives_the_same_findings(demo_workbook: Path, tmp_path: Path, monkeypatch):
    assert demo_workbook.stat().st_size >= workflows.FOREST_WORKER_MIN_BYTES  # the demo does use a worker
    here = _audit(demo_workbook, tmp_path / "here.xlsx", monkeypatch, worker=False)
    answers = _spy_answers(monkeypatch)
    there = _audit(demo_workbook, tmp_path / "there.xlsx", monkeypatch, worker=True)
    assert len(answers) == 1 and answers[0] is not None, "the worker did not answer"
    assert (there.findings["rule"] == "isolation_forest").sum() > 0
    pd.testing.assert_frame_equal(there.findings, here.findings)


def test_a_failing_worker_falls_back_to_fitting_here(demo_workbook: Path, tmp_path: Path, monkeypatch):
    here = _audit(demo_workbook, tmp_path / "here.xlsx", monkeypatch, worker=False)
    monkeypatch.setattr(workflows, "_FOREST_WORKER_CODE", "import sys; sys.exit(3)")
    answers = _spy_answers(monkeypatch)
    crashed = _audit(demo_workbook, tmp_path / "crashed.xlsx", monkeypatch, worker=True)
    assert answers == [None]
    pd.testing.assert_frame_equal(crashed.findings, here.findings)


def test_no_interpreter_means_no_worker(demo_workbook: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(workflows.sys, "executable", str(tmp_path / "no-such-python"))
    assert workflows._ForestWorker.start(str(tmp_path)) is None
    result = _audit(demo_workbook, tmp_path / "out.xlsx", monkeypatch, worker=True)
    assert (result.findings["rule"] == "isolation_forest").sum() > 0


def test_small_workbooks_and_a_disabled_forest_use_no_worker(demo_workbook: Path, tmp_path: Path, monkeypatch):
    from xl_expense.core.settings import Settings

    monkeypatch.setenv(workflows.FOREST_WORKER_ENV, "1")
    assert workflows._ForestWorker.wanted(demo_workbook, Settings())
    assert not workflows._ForestWorker.wanted(demo_workbook, Settings(disabled_rules=("isolation_forest",)))
    small = tmp_path / "small.csv"
    small.write_text("日期,金额\n2026-03-01,10\n", encoding="utf-8")
    assert not workflows._ForestWorker.wanted(small, Settings())
    monkeypatch.setenv(workflows.FOREST_WORKER_ENV, "0")
    assert not workflows._ForestWorker.wanted(demo_workbook, Settings())


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
