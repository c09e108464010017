"""The Python API mirrors the command line: the same names and options, DataFrames in and out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import xl_expense
from xl_expense.cli import cli
from xl_expense.schema import ALL_COLUMNS, FINDING_COLUMNS


def _two_sheet_book(path: Path) -> Path:
    """A summary sheet first, the ledger on '三月' with headers the aliases do not know."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表由销售助理整理"])
    ws = wb.create_sheet("三月")
    ws.append(["发生日", "经手人", "商家", "实报金额", "类别"])
    ws.append([dt.datetime(2026, 3, 2), "张三", "全聚德", 1280.0, "客户招待"])
    ws.append([dt.datetime(2026, 3, 2), "张三", "全聚德", 1280.0, "客户招待"])
    ws.append([dt.datetime(2026, 3, 3), "李四", "滴滴出行", 56.0, "差旅费"])
    wb.save(path)
    return path


def test_read_ledger_returns_the_canonical_frame(demo_workbook: Path) -> None:
    df = xl_expense.read_ledger(demo_workbook)
    assert list(df.columns) == list(ALL_COLUMNS)
    assert len(df) == 4998 and df["row"].min() == 4  # header in row 3 under a merged title
    assert df.loc[df["description"] == "备件寄送", "amount"].tolist() == [1234.5]  # was '¥1,234.50'
    assert pd.Timestamp("2025-04-15") in set(df.loc[df["description"] == "备件寄送", "date"])


def test_run_audit_on_a_dataframe() -> None:
    df = pd.DataFrame({
        "date": pd.to_datetime(["2026-03-02", "2026-03-02"]), "amount": [1280.0, 1280.0],
        "person": ["张三", "张三"], "vendor": ["全聚德", "全聚德"], "category": ["客户招待"] * 2,
        "sheet": ["S", "S"], "row": [2, 3],
    })
    findings = xl_expense.run_audit(df, xl_expense.Settings(as_of=dt.date(2026, 12, 31)))
    assert list(findings.columns) == list(FINDING_COLUMNS)
    assert findings.loc[findings["rule"] == "duplicate", "row"].tolist() == [3]


def test_sheet_and_map_options_reach_an_unusual_ledger(tmp_path: Path) -> None:
    book = _two_sheet_book(tmp_path / "march.xlsx")
    result = xl_expense.audit_workbook(
        book, sheet="三月", mapping={"date": "发生日", "person": "经手人", "vendor": "商家", "amount": "实报金额"},
        lang="en")
    assert result.ledger.sheet == "三月" and len(result.ledger.df) == 3
    assert "duplicate" in set(result.findings["rule"])
    cli_result = CliRunner().invoke(cli, ["audit", str(book), "-o", str(tmp_path / "cli.xlsx"), "--sheet", "三月",
                                          "--map", "date=发生日", "--map", "amount=实报金额",
                                          "--map", "person=经手人", "--map", "vendor=商家"])
    assert cli_result.exit_code == 0, cli_result.output
    bad = CliRunner().invoke(cli, ["audit", str(book), "--sheet", "三月", "--map", "amount=金额合计"])
    assert bad.exit_code == 1 and "金额合计" in bad.output and "实报金额" in bad.output


def test_map_option_must_be_key_equals_header(tmp_path: Path) -> None:
    book = _two_sheet_book(tmp_path / "march.xlsx")
    result = CliRunner().invoke(cli, ["audit", str(book), "--map", "amount"])
    assert result.exit_code == 2 and "canonical=header" in result.output


def test_run_record_names_version_hash_and_settings(demo_workbook: Path, tmp_path: Path) -> None:
    import hashlib

    result = xl_expense.audit_workbook(demo_workbook, tmp_path / "out.xlsx")
    record = result.run_record
    assert record["tool_version"] == f"xl-expense {xl_expense.__version__}"
    assert record["input_sha256"] == hashlib.sha256(demo_workbook.read_bytes()).hexdigest()
    assert record["settings"]["approval_limit"] == 5000 and record["settings_source"] == "sheet"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        xl_expense.no_such_function  # noqa: B018


def test_findings_sheet_also_records_version_hash_and_settings(demo_workbook: Path, tmp_path: Path) -> None:
    """Every audit sheet carries the run record, not only the summary."""
    import python_calamine

    result = xl_expense.audit_workbook(demo_workbook, tmp_path / "out.xlsx")
    book = python_calamine.CalamineWorkbook.from_path(str(result.output))
    for name in ("审计摘要", "审计明细"):
        cells = [str(v) for row in book.get_sheet_by_name(name).to_python() for v in row]
        assert result.run_record["input_sha256"] in cells, name
        assert f"xl-expense {xl_expense.__version__}" in cells, name
        assert "approval_limit" in cells or any("approval_limit=5000" in c for c in cells), name


def test_every_public_name_resolves() -> None:
    """The lazily imported API: a typo in the lazy table would only show when a user calls it."""
    import xl_expense

    for name in xl_expense.__all__:
        assert getattr(xl_expense, name) is not None, name
    assert xl_expense.classify_workbook.__module__ == "xl_expense.classify_workflow"
