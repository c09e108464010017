"""Budget workflows end to end on the committed template: fill, monitor, transfer (and the CLI)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from tests.libreoffice import convert, needs_soffice
from xl_expense.budget_workflows import fill_budget_workbook, monitor_workbook, transfer_workbook
from xl_expense.cli import cli
from xl_expense.core.budget import MONTHS, BudgetError, line_key, year_total
from xl_expense.io.budget_book import read_budget_book
from xl_expense.io.budget_template import extend_table, write_ledger_rows
from xl_expense.testing import package_differences

TEMPLATE = Path(__file__).resolve().parents[1] / "workbook_templates" / "budget_template_zh.xlsx"
NOW = dt.datetime(2027, 4, 1, 9, 0)
EAST, SOUTH = "差旅费|华东销售部", "差旅费|华南销售部"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """The zh template with 差旅费 East/South at 1,000 a month and East's Q1 travel spend in the ledger."""
    path = tmp_path / "budget.xlsx"
    shutil.copy(TEMPLATE, path)
    wb = load_workbook(path)
    ws = wb["预算"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "差旅费" and row[1].value in ("华东销售部", "华南销售部"):
            for cell in row[2:14]:
                cell.value = 1000.0
    ledger = pd.DataFrame({
        "date": pd.to_datetime(["2027-01-15", "2027-02-15", "2027-03-15"]), "person": "张三",
        "department": "华东销售部", "customer": "甲公司", "category": "差旅费", "description": "出差",
        "vendor": "携程旅行网", "receipt": ["R1", "R2", "R3"], "amount": [1500.0, 1400.0, 1300.0], "project": "P1",
    })
    extend_table(wb["费用明细"], "XE_Ledger", write_ledger_rows(wb["费用明细"], ledger, 2))
    wb.save(path)
    return path


def _line(path: Path, key: str) -> list[float]:
    budget = read_budget_book(path).budget
    return budget.loc[line_key(budget) == key, list(MONTHS)].iloc[0].tolist()


def test_monitor_writes_alerts_sorted_by_urgency(book: Path, tmp_path: Path) -> None:
    before = sha(book)
    result = monitor_workbook(book, tmp_path / "m.xlsx", as_of=dt.date(2027, 3, 31))
    assert sha(book) == before
    top = result.table.iloc[0]
    assert top["line"] == EAST and top["actual_to_date"] == 4200.0 and top["planned_to_date"] == 3000.0
    out = read_budget_book(tmp_path / "m.xlsx")
    assert out is not None and len(out.budget) == 50
    assert package_differences(book, tmp_path / "m.xlsx") == []
    import python_calamine

    names = python_calamine.CalamineWorkbook.from_path(str(tmp_path / "m.xlsx")).sheet_names
    assert names[-1] == "预警"


def test_transfer_moves_budget_logs_it_and_replays(book: Path, tmp_path: Path) -> None:
    first = tmp_path / "t1.xlsx"
    result = transfer_workbook(book, first, from_line=SOUTH, to_line=EAST, amount=900.0, month=4,
                               reason="华东出差多", approver="李经理", now=NOW)
    assert len(result.table) == 1
    assert _line(first, EAST)[3] == 1900.0 and _line(first, SOUTH)[3] == 100.0
    total_before = float(year_total(read_budget_book(book).budget).sum())
    assert float(year_total(read_budget_book(first).budget).sum()) == total_before
    # A second transfer appends to the log; the log replays on the original budget.
    second = tmp_path / "t2.xlsx"
    transfer_workbook(first, second, from_line=SOUTH, to_line=EAST, amount=600.0, month=5, reason="追加",
                      now=NOW)
    import python_calamine

    wb = python_calamine.CalamineWorkbook.from_path(str(second), load_tables=True)
    log = wb.get_table_by_name("XE_Adjustments").to_python()
    original = wb.get_table_by_name("XE_OriginalBudget").to_python()
    assert [r[3] for r in log] == [900.0, 600.0]
    east_original = next(r for r in original if r[0] == "差旅费" and r[1] == "华东销售部")
    assert east_original[2:14] == [1000.0] * 12


@pytest.mark.parametrize("kwargs, message", [
    ({"from_line": SOUTH, "to_line": EAST, "amount": 20000.0}, "available"),
    ({"from_line": SOUTH, "to_line": EAST, "amount": 1500.0, "month": 4}, "negative"),
    ({"from_line": "差旅费|火星部", "to_line": EAST, "amount": 10.0}, "火星部"),
    ({"from_line": SOUTH, "to_line": EAST}, "--amount"),
])
def test_transfer_refusals_write_nothing(book: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    out = tmp_path / "out.xlsx"
    with pytest.raises(BudgetError, match=message):
        transfer_workbook(book, out, reason="r", now=NOW, as_of=dt.date(2027, 3, 31), **kwargs)
    assert not out.exists()


def test_dry_run_changes_nothing(book: Path, tmp_path: Path) -> None:
    before = sha(book)
    result = transfer_workbook(book, from_line=SOUTH, to_line=EAST, amount=300.0, month=6, dry_run=True, now=NOW)
    assert result.output is None and sha(book) == before and len(result.table)
    assert not list(tmp_path.glob("*_adjusted.xlsx"))


def test_carry_forward_keeps_each_line_total(book: Path, tmp_path: Path) -> None:
    out = tmp_path / "cf.xlsx"
    transfer_workbook(book, out, carry_forward_unused=True, as_of=dt.date(2027, 4, 1), now=NOW)
    south = _line(out, SOUTH)
    assert south[:3] == [0.0, 0.0, 0.0] and sum(south) == 12000.0


def test_fill_budget_from_history_keeps_totals(tmp_path: Path, demo_workbook: Path) -> None:
    out = tmp_path / "filled.xlsx"
    result = fill_budget_workbook(TEMPLATE, demo_workbook, out, growth=0.1, round_to=100)
    filled = read_budget_book(out).budget
    basis = result.table
    assert float(year_total(filled).sum()) == pytest.approx(float(basis["budget_total"].sum()), abs=0.001)
    assert all(float(v) % 100 == 0 for v in filled[list(MONTHS)].to_numpy().ravel())
    from xl_expense.io.ledger_reader import read_ledger

    ledger = read_ledger(demo_workbook)
    in_year = ledger[ledger["date"].dt.year == 2025]
    assert float(year_total(filled).sum()) == round(float(in_year["amount"].sum()) * 1.1 / 100) * 100
    # Only the Budget sheet's own part changed (plus the sheet-listing parts the writer may touch).
    changed = package_differences(TEMPLATE, out)
    assert len(changed) == 1 and "worksheets/sheet" in changed[0], changed


@needs_soffice
def test_libreoffice_recalculates_filled_budget(tmp_path: Path, demo_workbook: Path) -> None:
    out = tmp_path / "filled.xlsx"
    fill_budget_workbook(TEMPLATE, demo_workbook, out, growth=0.0)
    filled = read_budget_book(out).budget.set_index(line_key(read_budget_book(out).budget))
    recalculated = convert(out, "xlsx", tmp_path / "lo")[0]
    wb = load_workbook(recalculated, data_only=True)
    actuals = wb["执行"]
    header = [c.value for c in actuals[1]]
    col = header.index("全年预算")
    checked = 0
    for row in actuals.iter_rows(min_row=2, values_only=True):
        if row[0]:
            key = f"{row[0]}|{row[1]}"
            assert row[col] == pytest.approx(float(filled.loc[key, list(MONTHS)].sum()), abs=0.005), key
            checked += 1
    assert checked == 50


def test_cli_transfer_and_monitor(book: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["transfer", str(book), "--from", SOUTH, "--to", EAST, "--amount", "500",
                                 "--month", "7", "--reason", "test", "-o", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(cli, ["transfer", str(book), "--from", SOUTH, "--to", EAST, "--amount", "99999",
                              "--as-of", "2027-03-31", "-o", str(tmp_path / "b.xlsx")])
    assert bad.exit_code == 1 and bad.output.startswith("Error: ") and "Traceback" not in bad.output
    mon = runner.invoke(cli, ["monitor", str(book), "--as-of", "2027-03-31", "-o", str(tmp_path / "m.xlsx")])
    assert mon.exit_code == 0, mon.output
    assert "差旅费|华东销售部" in mon.output


def _unit_table(path: Path, header: list[str], rows: list[list]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(header)
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


DEPARTMENTS = ("华东销售部", "华南销售部", "华北销售部", "西南销售部", "大客户部")


def test_fill_by_targets_and_given_ratio(tmp_path: Path, demo_workbook: Path) -> None:
    before = sha(TEMPLATE)
    targets = _unit_table(tmp_path / "targets.xlsx", ["部门", "目标收入"],
                          [[d, 1_000_000.0 * (i + 1)] for i, d in enumerate(DEPARTMENTS)])
    out = tmp_path / "filled.xlsx"
    result = fill_budget_workbook(TEMPLATE, demo_workbook, out, targets=targets, expense_ratio=0.03)
    assert sha(TEMPLATE) == before
    filled = read_budget_book(out).budget
    per_unit = filled.assign(total=year_total(filled)).groupby("unit")["total"].sum()
    for i, department in enumerate(DEPARTMENTS):
        assert per_unit[department] == pytest.approx(30_000.0 * (i + 1), abs=0.001), department
    assert set(result.table["method"]) <= {"target×ratio", "category fallback"}


def test_fill_ratio_from_history_revenue_via_cli(tmp_path: Path, demo_workbook: Path) -> None:
    from xl_expense.io.ledger_reader import read_ledger

    ledger = read_ledger(demo_workbook)
    spend = ledger[ledger["date"].dt.year == 2025].groupby("department")["amount"].sum()
    revenue = _unit_table(tmp_path / "rev.xlsx", ["部门", "收入"], [[d, float(spend[d]) * 50] for d in DEPARTMENTS])
    targets = _unit_table(tmp_path / "targets.xlsx", ["department", "revenue"], [[d, 2_000_000.0] for d in DEPARTMENTS])
    out = tmp_path / "filled.xlsx"
    result = CliRunner().invoke(cli, ["fill-budget", str(TEMPLATE), "--history", str(demo_workbook), "--targets",
                                      str(targets), "--revenue", str(revenue), "-o", str(out)])
    assert result.exit_code == 0, result.output
    filled = read_budget_book(out).budget
    per_unit = filled.assign(total=year_total(filled)).groupby("unit")["total"].sum()
    assert per_unit["华东销售部"] == pytest.approx(2_000_000.0 / 50, abs=100)  # ratio 2 %, rounded to 100s


def test_fill_reports_a_bad_targets_file(tmp_path: Path, demo_workbook: Path) -> None:
    targets = _unit_table(tmp_path / "t.xlsx", ["部门", "备注"], [["华东销售部", "x"]])
    result = CliRunner().invoke(cli, ["fill-budget", str(TEMPLATE), "--history", str(demo_workbook),
                                      "--targets", str(targets), "-o", str(tmp_path / "o.xlsx")])
    assert result.exit_code == 1 and "目标收入" in result.output and not (tmp_path / "o.xlsx").exists()


def test_budget_api_mirrors_the_commands() -> None:
    import xl_expense

    for name in ("fill_budget_workbook", "monitor_workbook", "transfer_workbook", "make_budget_template"):
        assert callable(getattr(xl_expense, name)) and name in xl_expense.__all__


@needs_soffice
def test_in_place_transfer_and_monitor_outputs_open_in_libreoffice(book: Path, tmp_path: Path) -> None:
    from tests.libreoffice import CSV_ALL_SHEETS

    transfer_workbook(book, from_line=SOUTH, to_line=EAST, amount=250.0, month=8, reason="in place",
                      now=NOW, in_place=True)
    assert _line(book, EAST)[7] == 1250.0
    assert _line(book.with_name("budget.xlsx.bak"), EAST)[7] == 1000.0
    monitor_workbook(book, as_of=dt.date(2027, 3, 31), in_place=True)
    produced = convert(book, CSV_ALL_SHEETS, tmp_path / "csv")
    sheets = {p.stem.split("-", 1)[1] for p in produced}
    assert {"预算", "执行", "调整记录", "原始预算", "预警"} <= sheets
    log = next(p for p in produced if p.stem.endswith("-调整记录")).read_text(encoding="utf-8")
    assert "in place" in log
