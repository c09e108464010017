"""The audit of a budget workbook also reports budget overruns (rule id ``budget_overrun``)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook

from xl_expense.io.budget_book import read_budget_book
from xl_expense.io.budget_template import extend_table, write_ledger_rows
from xl_expense.workflows import audit_workbook

TEMPLATE = Path(__file__).resolve().parents[1] / "workbook_templates" / "budget_template_zh.xlsx"


def _budget_workbook(tmp_path: Path, amounts: list[float], control: str = "Stop") -> Path:
    """The zh template with 售后服务|华东销售部 planned at 1,000 a month and the given spend."""
    book = tmp_path / "budget.xlsx"
    shutil.copy(TEMPLATE, book)
    wb = load_workbook(book)
    for col in range(3, 15):
        wb["预算"].cell(2, col).value = 1000.0
    controls = wb["设置"]
    for row in controls.iter_rows():
        for cell in row:
            if cell.value == "售后服务" and cell.column > 1:
                controls.cell(cell.row, cell.column + 1).value = control
    ledger = pd.DataFrame({
        "date": pd.to_datetime([f"2027-{1 + i:02d}-10" for i in range(len(amounts))]),
        "person": "张三", "department": "华东销售部", "customer": "甲公司", "category": "售后服务",
        "description": "上门维修", "vendor": "本地服务商", "receipt": [f"R{i}" for i in range(len(amounts))],
        "amount": amounts, "project": "P1",
    })
    last = write_ledger_rows(wb["费用明细"], ledger, 2)
    extend_table(wb["费用明细"], "XE_Ledger", last)
    wb.save(book)
    return book


def test_budget_book_is_read_from_the_template(tmp_path: Path) -> None:
    info = read_budget_book(_budget_workbook(tmp_path, [100.0]))
    assert (info.year, info.budget_by) == (2027, "department")
    line = info.budget[(info.budget["category"] == "售后服务") & (info.budget["unit"] == "华东销售部")]
    assert float(line[[f"m{i}" for i in range(1, 13)]].sum(axis=1).iloc[0]) == 12000.0
    assert info.policy.annual_action["售后服务"] == "Stop"


def test_stop_category_overrun_is_an_error_finding(tmp_path: Path) -> None:
    book = _budget_workbook(tmp_path, [6000.0, 5000.0, 4000.0])
    result = audit_workbook(book, tmp_path / "out.xlsx", now=dt.datetime(2027, 3, 31))
    over = result.findings[result.findings["rule"] == "budget_overrun"]
    annual = over[over["message"].str.contains("年度")]
    assert annual["severity"].tolist() == ["error"] and annual["amount"].tolist() == [3000.0]
    assert result.findings["severity"].map({"error": 0, "warning": 1, "info": 2}).is_monotonic_increasing


def test_warn_category_overrun_is_a_warning_and_within_budget_is_silent(tmp_path: Path) -> None:
    warn = audit_workbook(_budget_workbook(tmp_path, [6000.0, 5000.0, 4000.0], control="Warn"),
                          tmp_path / "w.xlsx", now=dt.datetime(2027, 3, 31))
    annual = warn.findings[(warn.findings["rule"] == "budget_overrun") & warn.findings["message"].str.contains("年度")]
    assert annual["severity"].tolist() == ["warning"]
    (tmp_path / "ok").mkdir()
    fine = audit_workbook(_budget_workbook(tmp_path / "ok", [500.0, 500.0]), tmp_path / "ok.xlsx",
                          now=dt.datetime(2027, 3, 31))
    assert "budget_overrun" not in set(fine.findings["rule"])
