"""Reviewer notes: read Status/Comment back from an earlier output, in either language."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from xl_expense.errors import UnreadableWorkbook
from xl_expense.io.audit_sheets import build_findings_sheet, findings_column
from xl_expense.io.reviewer_notes import (
    normalize_status,
    notes_from_rows,
    our_sheet_names,
    read_reviewer_notes,
    status_options,
)
from xl_expense.schema import FINDING_COLUMNS


def write_book(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def test_our_sheet_names():
    assert our_sheet_names() == {"审计摘要", "审计明细", "Audit Summary", "Audit Findings"}


@pytest.mark.parametrize(("value", "lang", "expected"), [
    ("已确认", "en", "Confirmed"), ("Confirmed", "zh", "已确认"), ("explained", "zh", "已解释"),
    (" Open ", "zh", "待复核"), (None, "en", "Open"), ("", "zh", "待复核"), (float("nan"), "zh", "待复核"),
    ("问过财务", "en", "问过财务"),
])
def test_normalize_status(value, lang, expected):
    assert normalize_status(value, lang) == expected


def test_status_options():
    assert status_options("zh") == ["待复核", "已解释", "已确认"]


def test_reads_notes_by_header_in_other_columns_order(tmp_path):
    path = write_book(tmp_path / "out.xlsx", {
        "费用明细": [["日期", "金额"], ["2026-01-01", 1]],
        "Audit Findings": [
            ["Comment", "Rule", "Finding ID", "Status"],
            ["checked with Li", "duplicate", "dup-1", "Confirmed"],
            [None, "round_amount", "rnd-2", "Open"],
            [12, "x", "n-3", None],
            ["orphan comment with no id", None, None, "Explained"],
        ],
    })
    notes = read_reviewer_notes(path)
    assert notes.to_dict("records") == [
        {"finding_id": "dup-1", "status": "Confirmed", "comment": "checked with Li"},
        {"finding_id": "rnd-2", "status": "Open", "comment": None},
        {"finding_id": "n-3", "status": None, "comment": "12"},
    ]


def test_no_findings_sheet_gives_empty_notes(tmp_path):
    path = write_book(tmp_path / "plain.xlsx", {"Sheet": [["a"]]})
    notes = read_reviewer_notes(path)
    assert notes.empty and list(notes.columns) == ["finding_id", "status", "comment"]


def test_sheet_without_id_column_gives_empty_notes():
    assert notes_from_rows([["状态", "备注"], ["已确认", "x"]]).empty
    assert notes_from_rows([]).empty


def test_corrupt_file_is_a_user_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnreadableWorkbook):
        read_reviewer_notes(path)


def _findings() -> pd.DataFrame:
    df = pd.DataFrame({
        "finding_id": ["dup-1", "rnd-2"], "rule": ["duplicate", "round_amount"], "severity": ["error", "info"],
        "sheet": ["费用明细", "费用明细"], "row": pd.array([2, 3], dtype="Int64"),
        "date": pd.to_datetime(["2026-01-05", "2026-01-06"]), "person": ["张三", "李四"],
        "department": ["华东", "华北"], "vendor": ["=cmd|' /C calc'!A0", "海底捞"], "category": ["礼品", "餐费"],
        "amount": [100.0, 3000.0], "score": [1.0, 0.4], "message": ["重复", "整数金额"],
    })
    return df[list(FINDING_COLUMNS)]


def _simulate_reviewer(path: Path, copy: Path, sheet_name: str, status: str, comment: str) -> None:
    """A reviewer picks a status and types a comment on the first finding, then saves a copy."""
    book = openpyxl.load_workbook(path)
    ws = book[sheet_name]
    ws[f"{findings_column('status')}2"] = status
    ws[f"{findings_column('comment')}2"] = comment
    book.save(copy)


def test_round_trip_through_package_writer(tmp_path):
    """Write the findings sheet into a workbook, review it, read the notes back, rebuild in English."""
    try:
        from xl_expense.io.xlsx_package import add_sheets
    except ImportError as exc:
        pytest.skip(f"xl_expense.io.xlsx_package.add_sheets not available yet: {exc}")

    src = write_book(tmp_path / "ledger.xlsx", {"费用明细": [["日期", "金额"], ["2026-01-05", 100], ["2026-01-06", 3000]]})
    findings = _findings()
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="费用明细", columns={"amount": "B"},
                                 rule_titles={"duplicate": "重复报销"})
    out = tmp_path / "ledger_audited.xlsx"
    add_sheets(src, out, [sheet], replace=our_sheet_names())
    reviewed = tmp_path / "reviewed.xlsx"
    _simulate_reviewer(out, reviewed, "审计明细", "已确认", "已追回")

    notes = read_reviewer_notes(reviewed)
    assert notes.to_dict("records") == [
        {"finding_id": "dup-1", "status": "已确认", "comment": "已追回"},
        {"finding_id": "rnd-2", "status": "待复核", "comment": None},
    ]
    # the untrusted vendor text came back as text, not as a formula
    book = openpyxl.load_workbook(out)
    vendor = book["审计明细"]["J2"]
    assert vendor.data_type == "s" and vendor.value == "=cmd|' /C calc'!A0"

    # re-run in English: the note survives and is translated
    again = build_findings_sheet(findings, lang="en", ledger_sheet="费用明细", columns={"amount": "B"},
                                 rule_titles={}, notes=notes)
    out2 = tmp_path / "ledger_audited_2.xlsx"
    add_sheets(reviewed, out2, [again], replace=our_sheet_names())
    rerun = read_reviewer_notes(out2)
    assert rerun.to_dict("records")[0] == {"finding_id": "dup-1", "status": "Confirmed", "comment": "已追回"}
