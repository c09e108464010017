"""The background prefetch: the reader takes the parsed sheets, and nothing changes but the time."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.factories import assert_same_ledger
from xl_expense.cli import cli
from xl_expense.demo import write_demo_workbook
from xl_expense.errors import UnsafeWorkbook
from xl_expense.io import ledger_reader
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.prefetch import (
    discard_prefetched,
    prefetch_workbook,
    take_prefetched,
)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write_demo_workbook(tmp_path / "demo.xlsx", rows=300)


@pytest.fixture(autouse=True)
def _no_leftovers():
    yield
    discard_prefetched()


def test_prefetch_parses_the_ledger_sheet_and_skips_the_audit_sheets(demo: Path) -> None:
    assert prefetch_workbook(demo)
    fetched = take_prefetched(demo)
    assert fetched is not None
    assert "费用明细" in fetched.sheets and "设置" not in fetched.sheets
    assert take_prefetched(demo) is None  # taken once


def test_the_reader_takes_the_prefetch_and_reads_the_same_ledger(demo: Path, monkeypatch) -> None:
    plain = load_ledger(demo)
    taken: list[str] = []
    original = ledger_reader._get_sheet

    def spy(book, name):
        parsed = ledger_reader._parsed_sheets.get(id(book))
        taken.append(name if parsed and name in parsed[1] else f"parsed now: {name}")
        return original(book, name)

    monkeypatch.setattr(ledger_reader, "_get_sheet", spy)
    prefetch_workbook(demo)
    fetched = load_ledger(demo)
    assert_same_ledger(fetched, plain)
    assert "费用明细" in taken and not any(t.startswith("parsed now") for t in taken)
    assert ledger_reader._parsed_sheets == {}  # nothing kept after the read


def test_a_file_changed_after_the_prefetch_is_read_afresh(demo: Path) -> None:
    prefetch_workbook(demo)
    stat = demo.stat()
    os.utime(demo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert take_prefetched(demo) is None


def test_a_bomb_is_not_parsed_in_the_background_and_the_reader_refuses_it(tmp_path: Path) -> None:
    bomb = tmp_path / "ratio.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))
    assert prefetch_workbook(bomb)
    with pytest.raises(UnsafeWorkbook, match="expands"):
        load_ledger(bomb)


def test_csv_is_not_prefetched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("日期,金额\n2026-03-05,12\n", encoding="utf-8")
    assert not prefetch_workbook(path)


def test_audit_command_gives_the_same_findings_with_the_prefetch(demo: Path, tmp_path: Path, monkeypatch) -> None:
    """The CLI prefetches; the findings CSV equals the one of a run without it."""
    runner = CliRunner()
    with_prefetch = tmp_path / "with.csv"
    result = runner.invoke(cli, ["audit", str(demo), "-o", str(tmp_path / "a.xlsx"), "--findings-csv", str(with_prefetch)])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr("xl_expense.io.prefetch.prefetch_workbook", lambda path: False)
    without = tmp_path / "without.csv"
    result = runner.invoke(cli, ["audit", str(demo), "-o", str(tmp_path / "b.xlsx"), "--findings-csv", str(without)])
    assert result.exit_code == 0, result.output
    assert with_prefetch.read_bytes() == without.read_bytes()


# ------------------------------------------------ formulas scanned while the parse runs

def _ledger_with_a_sum_row(path: Path, total_formula: str = "=SUM(B2:B4)") -> Path:
    """Three expenses, an unlabelled subtotal whose amount is a SUM (row 5), one more expense.

    (openpyxl writes no cached value: calamine sees the subtotal row only with data below it.)"""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "明细"
    sheet.append(["日期", "金额", "报销人"])
    for day, amount in ((3, 120.0), (4, 80.5), (5, 300.0)):
        sheet.append([f"2026-03-0{day}", amount, "张三"])
    sheet.append([None, total_formula, None])
    sheet.append(["2026-03-09", 45.0, "李四"])
    book.save(path)
    return path


def test_formulas_scanned_while_the_parse_runs_are_what_the_reader_uses(tmp_path: Path) -> None:
    path = _ledger_with_a_sum_row(tmp_path / "sum.xlsx")
    plain = load_ledger(path)
    assert plain.totals_rows == [5]
    ledger_reader.prescan_sum_formulas(path, busy=lambda: True)
    scans = ledger_reader._prescanned[ledger_reader.file_key(path)]
    assert scans == {"xl/worksheets/sheet1.xml": {b"B": {5}}}
    prescanned = load_ledger(path)
    assert scans == {}  # taken by the reader, not scanned again
    assert_same_ledger(prescanned, plain)


def test_the_prescan_gives_up_when_the_parse_is_done(tmp_path: Path) -> None:
    path = _ledger_with_a_sum_row(tmp_path / "sum.xlsx")
    ledger_reader.prescan_sum_formulas(path, busy=lambda: False)
    assert ledger_reader._prescanned[ledger_reader.file_key(path)] == {}
    assert load_ledger(path).totals_rows == [5]  # scanned beside the rows, as before


def test_a_prescan_of_a_file_changed_since_is_not_used(tmp_path: Path) -> None:
    path = _ledger_with_a_sum_row(tmp_path / "sum.xlsx")
    ledger_reader.prescan_sum_formulas(path, busy=lambda: True)
    _ledger_with_a_sum_row(path, total_formula="=B2+B3+B4")  # same size class, new content
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ledger_reader.sum_formula_rows(path, "xl/worksheets/sheet1.xml", 1) == set()


def test_the_audit_hashes_and_scans_the_file_while_the_parse_runs(tmp_path: Path, monkeypatch) -> None:
    """While calamine parses, the audit computes the input's SHA-256 and prescans formulas;
    the run record and the totals rows are those of an audit that did not."""
    import hashlib

    from xl_expense import workflows

    path = _ledger_with_a_sum_row(tmp_path / "sum.xlsx")
    baseline = workflows.audit_workbook(path, tmp_path / "a.xlsx")
    scanned: list[Path] = []
    monkeypatch.setattr(workflows, "prefetch_running", lambda p: True)
    monkeypatch.setattr(workflows, "prescan_sum_formulas",
                        lambda p, busy: (scanned.append(p), ledger_reader.prescan_sum_formulas(p, busy)))
    result = workflows.audit_workbook(path, tmp_path / "b.xlsx")
    assert scanned == [path]
    assert result.run_record["input_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.run_record["input_sha256"] == baseline.run_record["input_sha256"]
    assert result.ledger.totals_rows == baseline.ledger.totals_rows == [5]
    assert result.findings.drop(columns="finding_id").equals(baseline.findings.drop(columns="finding_id"))
