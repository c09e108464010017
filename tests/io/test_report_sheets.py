"""The report's sheet descriptions, charts and readers, on small inputs with known answers."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from defusedxml.ElementTree import fromstring
from openpyxl import Workbook, load_workbook

from xl_expense.core.settings import Settings
from xl_expense.io.chart_xml import C_NS, chart_xml
from xl_expense.io.report_sheets import (
    CHART_COL,
    HISTORY_TABLE,
    _top_categories,
    _Words,
    build_report_sheets,
    dashboard_sheet,
    read_history,
    read_revenue_sheet,
    report_sheet_names,
    tiers_from_settings_rows,
)
from xl_expense.io.sheet_model import ChartSeries, ChartSpec
from xl_expense.io.sheet_xml import parse_cell, parse_range
from xl_expense.io.xlsx_package import add_sheets
from xl_expense.report_workflow import report_data
from xl_expense.schema import FINDING_COLUMNS

C = f"{{{C_NS}}}"
RUN1, RUN2 = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"


def small_ledger() -> pd.DataFrame:
    """Twelve categories over two months, two departments, three vendors and customers."""
    rows = []
    for i in range(12):
        rows.append({"date": pd.Timestamp(2025, 1 + i % 2, 10), "amount": 1000.0 - 50 * i, "category": f"类{i:02d}",
                     "description": "维护", "person": ["张三", "李四"][i % 2], "department": ["华东", "华南"][i % 2],
                     "customer": ["甲", "乙", "丙"][i % 3], "vendor": ["V1", "V2", "V3"][i % 3], "receipt": f"R{i}",
                     "project": None, "region": None, "card": None, "sheet": "明细", "row": i + 2})
    return pd.DataFrame(rows).astype({"date": "datetime64[ns]"})


def findings_for(ids: list[str]) -> pd.DataFrame:
    rows = [{"finding_id": fid, "rule": "duplicate", "severity": "error", "sheet": "明细", "row": 2 + n,
             "date": pd.Timestamp(2025, 1, 10), "person": "张三", "department": "华东", "vendor": "V1",
             "category": "类00", "amount": 1000.0, "score": 1.0, "message": "重复"} for n, fid in enumerate(ids)]
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    return frame.assign(status=None)


def make_data(lang: str = "zh", currency: str = "CNY", history: pd.DataFrame | None = None, run: str = RUN1,
              findings: pd.DataFrame | None = None):
    settings = Settings(lang=lang, currency=currency, period_start=dt.date(2025, 1, 1),
                        period_end=dt.date(2025, 12, 31))
    return report_data(small_ledger(), findings if findings is not None else findings_for(["D-1", "D-2"]),
                       settings, as_of=dt.date(2026, 1, 15), run=run, history=history)


# --------------------------------------------------------------------------- labels and formats

def test_sheet_names_in_both_languages() -> None:
    assert report_sheet_names() == {"看板", "客户", "绩效", "对标", "优化建议", "评估", "Dashboard", "Customers",
                                    "Scorecards", "Benchmark", "Proposals", "Evaluation"}


def test_money_is_yuan_in_cny_and_labelled_otherwise() -> None:
    zh = _Words("zh", "CNY")
    assert zh.style("amount") == "yuan" and zh.label("amount") == "金额"
    gbp = _Words("en", "GBP")
    assert gbp.style("amount") == "money" and gbp.label("amount") == "Amount (GBP)"
    assert gbp.style("share") == "percent" and gbp.label("share") == "Share"  # ratios carry no currency


def test_twelve_categories_become_nine_and_other() -> None:
    data = make_data()
    top = _top_categories(data.shares, _Words("zh"))
    assert len(top) == 10
    assert list(top["category"].iloc[:9]) == [f"类{i:02d}" for i in range(9)]
    other = top.iloc[-1]
    assert other["category"] == "其他（3 类）"
    assert other["amount"] == 550.0 + 500.0 + 450.0 and other["count"] == 3
    assert top["amount"].sum() == data.shares["amount"].sum()


# --------------------------------------------------------------------------- dashboard layout

def test_dashboard_tables_charts_and_print_setup() -> None:
    sheet = dashboard_sheet(make_data())
    assert sheet.name == "看板" and sheet.freeze == "A3" and sheet.fit_width and sheet.landscape
    tables = {t.name: t.ref for t in sheet.tables}
    assert list(tables) == ["XE_DashHeadline", "XE_DashShares", "XE_DashTrend", "XE_DashVendors",
                            "XE_DashCustomers", "XE_DashRatios"]
    assert [(c.kind, c.title) for c in sheet.charts] == [
        ("col", "审计发现数"), ("pie", "费用类别占比"), ("line", "月度费用"), ("bar", "供应商费用（前 15）"),
        ("bar", "客户维护成本（前 15）")]
    # Each chart sits right of the tables, beside its Table, and draws that Table's data rows.
    for chart, table in zip(sheet.charts, ["XE_DashHeadline", "XE_DashShares", "XE_DashTrend", "XE_DashVendors",
                                           "XE_DashCustomers"]):
        r1, _, r2, _ = parse_range(tables[table])
        row, col = parse_cell(chart.anchor)
        assert col == CHART_COL and row == r1 - 1  # the block title's row
        values = parse_range(chart.series[0].values_ref)
        assert values[0] == r1 + 1 and values[2] in (r2, r2 - 1)  # the headline chart leaves out the total
    shares = parse_range(tables["XE_DashShares"])
    assert shares[2] - shares[0] == 10  # header + nine categories + other
    # Charts do not overlap each other.
    rows = [parse_cell(c.anchor)[0] for c in sheet.charts]
    assert all(b - a >= c.height for a, b, c in zip(rows, rows[1:], sheet.charts))


def test_dashboard_kpis_and_pareto_text() -> None:
    sheet = dashboard_sheet(make_data())
    pairs = {b.values[0][0]: (b.values[0][1], b.styles[1]) for b in sheet.blocks
             if len(b.values) == 1 and len(b.values[0]) == 2 and b.styles and b.styles[0] == "label"}
    assert pairs["费用合计"] == (sum(1000.0 - 50 * i for i in range(12)), "yuan")
    assert pairs["报销笔数"] == (12, "int")
    assert pairs["客户数"] == (3, "int")
    assert pairs["单客户成本"] == (round(8700.0 / 3, 2), "yuan")
    assert pairs["审计发现"] == (2, "int")
    # V1 (rows 0, 3, 6, 9) = 3,100, V2 = 2,900, V3 = 2,700 of 8,700: the top two reach only 69 %.
    assert pairs["构成 80% 支出的供应商"] == ("3 / 3 家（100%）", "text")


def test_english_dashboard() -> None:
    sheet = dashboard_sheet(make_data(lang="en", currency="GBP"))
    assert sheet.name == "Dashboard"
    header_blocks = [b for b in sheet.blocks if b.row_style == "header"]
    assert header_blocks[1].values[0] == ["Category", "Amount (GBP)", "Share", "Count"]


def test_report_sheets_write_and_read_back(tmp_path: Path) -> None:
    base = tmp_path / "base.xlsx"
    wb = Workbook()
    wb.active.title = "明细"
    wb.save(base)
    out = tmp_path / "out.xlsx"
    add_sheets(base, out, build_report_sheets(make_data()))
    book = load_workbook(out)
    assert book.sheetnames == ["明细", "看板", "客户", "绩效", "对标", "评估"]
    ws = book["客户"]
    assert ws.freeze_panes == "B4"  # title, the no-revenue note, header
    with zipfile.ZipFile(out) as zf:
        dashboard = zf.read("xl/worksheets/sheet2.xml").decode("utf-8")
    assert '<pageSetUpPr fitToPage="1"/>' in dashboard
    assert '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>' in dashboard


# --------------------------------------------------------------------------- charts

def test_pie_chart_shows_percentages_of_one_series() -> None:
    spec = ChartSpec("pie", "占比", [ChartSeries("金额", "B2:B5", "A2:A5"), ChartSeries("笔数", "C2:C5", "A2:A5")],
                     "K1")
    root = fromstring(chart_xml("看板", spec))
    pie = root.find(f"{C}chart/{C}plotArea/{C}pieChart")
    assert pie.find(f"{C}varyColors").get("val") == "1"
    series = pie.findall(f"{C}ser")
    assert len(series) == 1
    assert series[0].find(f"{C}val/{C}numRef/{C}f").text == "'看板'!$B$2:$B$5"
    assert series[0].find(f"{C}dLbls/{C}showPercent").get("val") == "1"
    assert root.find(f"{C}chart/{C}plotArea/{C}catAx") is None


def test_horizontal_bars_put_rank_one_on_top() -> None:
    bar = fromstring(chart_xml("看板", ChartSpec("bar", "t", [ChartSeries("n", "B2:B5", "A2:A5")], "K1")))
    area = bar.find(f"{C}chart/{C}plotArea")
    assert area.find(f"{C}catAx/{C}scaling/{C}orientation").get("val") == "maxMin"
    assert area.find(f"{C}valAx/{C}crosses").get("val") == "max"
    col = fromstring(chart_xml("看板", ChartSpec("col", "t", [ChartSeries("n", "B2:B5", "A2:A5")], "K1")))
    assert col.find(f"{C}chart/{C}plotArea/{C}catAx/{C}scaling/{C}orientation").get("val") == "minMax"


# --------------------------------------------------------------------------- readers

def test_revenue_sheet_is_found_below_a_title(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    wb = Workbook()
    wb.active.title = "明细"
    ws = wb.create_sheet("Revenue")
    ws.append(["Maintenance income 2025"])
    ws.append([])
    ws.append(["Client", "Month", "Fee", "Dept"])
    ws.append(["甲", "2025-03", "¥2,000.00", "华东"])
    ws.append([])
    ws.append([" 乙 ", dt.datetime(2025, 4, 15), 1500, None])
    ws.append(["丙", "2025年5月", "(100.00)", "华南"])
    wb.save(path)
    revenue = read_revenue_sheet(path)
    assert list(revenue.columns) == ["customer", "date", "amount", "department"]
    assert list(revenue["customer"]) == ["甲", "乙", "丙"]
    assert list(revenue["date"]) == [pd.Timestamp(2025, 3, 1), pd.Timestamp(2025, 4, 15), pd.Timestamp(2025, 5, 1)]
    assert list(revenue["amount"]) == [2000.0, 1500.0, -100.0]
    assert list(revenue["department"]) == ["华东", None, "华南"]
    assert read_revenue_sheet(path, sheet="明细") is None  # no customer/amount header there


def test_tiers_from_settings_rows() -> None:
    rows = [["参数", "值"], ["审批限额", 5000], ["奖惩:优秀", "85, 2000"], ["奖惩：需改进", "0，-1000"],
            ["tier:Good", 70, 500], ["Tier: Bronze", 50]]
    assert tiers_from_settings_rows(rows) == {"优秀": (85.0, 2000.0), "需改进": (0.0, -1000.0),
                                              "Good": (70.0, 500.0), "Bronze": (50.0, 0.0)}
    assert tiers_from_settings_rows(None) == {}


def test_history_round_trip_keeps_every_run(tmp_path: Path) -> None:
    first = make_data(findings=findings_for(["D-1", "D-2"]))
    base = tmp_path / "base.xlsx"
    wb = Workbook()
    wb.active.title = "明细"
    wb.save(base)
    out1 = tmp_path / "run1.xlsx"
    add_sheets(base, out1, build_report_sheets(first))
    history = read_history(out1)
    assert list(history["run"]) == [RUN1, RUN1] and list(history["finding_id"]) == ["D-1", "D-2"]

    second = make_data(findings=findings_for([]), history=history, run=RUN2)  # everything fixed
    out2 = tmp_path / "run2.xlsx"
    add_sheets(out1, out2, build_report_sheets(second), replace=report_sheet_names())
    assert list(second.evaluation_trend["resolved"]) == [0, 2]
    assert list(second.changes["state"]) == ["resolved", "resolved"]
    again = read_history(out2)
    assert list(again["run"]) == [RUN1, RUN1, RUN2]
    assert again["finding_id"].iloc[-1] is None  # a run without findings is still a run
    third = make_data(findings=findings_for(["D-2"]), history=again, run="r3")
    assert list(third.evaluation_trend["run"]) == [RUN1, RUN2, "r3"]
    assert list(third.changes["state"]) == ["reopened"]
    with zipfile.ZipFile(out2) as zf:
        assert any(HISTORY_TABLE in zf.read(n).decode("utf-8") for n in zf.namelist() if n.startswith("xl/tables/"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_proposals_sheet_only_with_a_budget(lang: str) -> None:
    names = [s.name for s in build_report_sheets(make_data(lang=lang))]
    assert names == (["看板", "客户", "绩效", "对标", "评估"] if lang == "zh"
                     else ["Dashboard", "Customers", "Scorecards", "Benchmark", "Evaluation"])
