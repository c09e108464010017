"""The report workflow end to end: demo workbook, budget workbook, a real ledger, the CLI, and the
dashboard rendered by LibreOffice with every chart drawn.

Regenerate the README's picture with ``python -m tests.test_report_workflow`` (needs soffice
and pdftoppm): it writes ``docs/dashboard.png`` from the demo workbook's dashboard.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import itertools
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.cli import cli
from xl_expense.io.report_sheets import (
    CHART_COL,
    CHART_WIDTH,
    read_history,
)
from xl_expense.io.sheet_model import ChartSeries, NewSheet
from xl_expense.io.sheet_xml import col_letter
from xl_expense.io.xlsx_package import add_sheets, sheet_names
from xl_expense.report_workflow import report_workbook
from xl_expense.testing import package_differences

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "workbook_templates" / "budget_template_zh.xlsx"
NOW = dt.datetime(2026, 1, 16, 9, 0, tzinfo=dt.UTC)
ZH_SHEETS = ["看板", "客户", "绩效", "对标", "评估"]
EN_SHEETS = ["Dashboard", "Customers", "Scorecards", "Benchmark", "Evaluation"]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory, demo_workbook: Path):
    """The demo workbook reported once for the module (tests must not change the files)."""
    folder = tmp_path_factory.mktemp("report")
    src = folder / "demo.xlsx"
    shutil.copy(demo_workbook, src)
    return report_workbook(src, folder / "demo_report.xlsx", now=NOW)


# --------------------------------------------------------------------------- demo workbook

def test_demo_report_adds_the_sheets_and_loses_nothing(demo_report) -> None:
    assert demo_report.sheets == ZH_SHEETS
    assert sheet_names(demo_report.output) == ["费用明细", "月度汇总", "设置", *ZH_SHEETS]
    assert package_differences(demo_report.input, demo_report.output) == []
    assert not demo_report.has_budget and not demo_report.has_revenue


def test_demo_report_analyses_the_audit_period_only(demo_report) -> None:
    data = demo_report.data
    # The demo's Settings sheet: period 2025-01-01 … 2025-12-31, as of 2026-01-15.
    assert (data.period_start, data.period_end, data.as_of) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31),
                                                                dt.date(2026, 1, 15))
    # The planted 2062 row (and anything else outside 2025) is not in the trend.
    assert list(data.trend["month"].dt.strftime("%Y-%m")) == [f"2025-{m:02d}" for m in range(1, 13)]
    ledger = demo_report.ledger.df
    in_2025 = ledger.loc[ledger["date"].dt.year == 2025, "amount"].sum()
    assert data.ratios["spend"].iloc[0] == pytest.approx(round(in_2025, 2))
    assert data.shares["amount"].sum() == pytest.approx(in_2025, abs=0.05)
    assert data.trend["amount"].sum() == pytest.approx(in_2025, abs=0.05)


def test_demo_headline_counts_every_finding(demo_report) -> None:
    headline = demo_report.data.headline.set_index("severity")
    counts = demo_report.findings["severity"].value_counts()
    for severity in ("error", "warning", "info"):
        assert headline.loc[severity, "findings"] == counts.get(severity, 0)
    assert headline.loc["total", "findings"] == len(demo_report.findings)
    assert headline.loc["total", "open"] == len(demo_report.findings)  # nobody reviewed yet


def test_dashboard_cells_read_back(demo_report) -> None:
    wb = load_workbook(demo_report.output, read_only=False)
    ws = wb["看板"]
    assert ws["A1"].value == "销售维护费看板"
    labels = {ws.cell(r, 1).value: ws.cell(r, 2) for r in range(1, 20)}
    spend = labels["费用合计"]
    assert spend.value == pytest.approx(demo_report.data.ratios["spend"].iloc[0])
    assert spend.number_format == '"¥"#,##0.00'
    assert ws.freeze_panes == "A3"
    tables = set(ws.tables)
    assert {"XE_DashHeadline", "XE_DashShares", "XE_DashTrend", "XE_DashVendors", "XE_DashCustomers",
            "XE_DashRatios"} <= tables
    shares = ws.tables["XE_DashShares"]
    first = ws[shares.ref.split(":")[0]].row
    top_category = demo_report.data.shares.iloc[0]
    assert ws.cell(first + 1, 1).value == top_category["category"]
    assert ws.cell(first + 1, 2).value == pytest.approx(top_category["amount"])
    assert ws.cell(first + 1, 3).number_format == "0.0%"


def test_rerun_in_place_keeps_history_and_reviewer_status(tmp_path: Path, demo_workbook: Path) -> None:
    """Run 1, a reviewer confirms a finding on the audit's findings sheet, run 2 in place:
    the evaluation compares both runs and the headline counts the confirmed finding."""
    src = tmp_path / "book.xlsx"
    shutil.copy(demo_workbook, src)
    first = report_workbook(src, in_place=True, now=NOW)
    assert (tmp_path / "book.xlsx.bak").exists()
    history = read_history(src)
    assert list(pd.unique(history["run"])) == ["2026-01-16T09:00:00+00:00"]
    assert set(history["finding_id"]) == set(first.findings["finding_id"])

    # What a reviewer leaves on an audit's findings sheet (审计明细): id and status columns.
    target = first.findings.loc[first.findings["severity"] == "error", "finding_id"].iloc[0]
    wb = load_workbook(src)
    notes = wb.create_sheet("审计明细")
    notes.append(["编号", "规则", "状态"])
    notes.append([target, "duplicate", "已确认"])
    wb.save(src)

    second = report_workbook(src, in_place=True, now=NOW)
    assert sheet_names(src).count("看板") == 1 and "审计明细" in sheet_names(src)  # replaced, not added twice
    trend = second.data.evaluation_trend
    assert list(trend["run"]) == ["2026-01-16T09:00:00+00:00", "2026-01-16T09:00:00+00:00 #2"]
    n = len(first.findings)
    assert list(trend["findings"]) == [n, n]
    assert list(trend["opened"]) == [n, 0] and list(trend["recurring"]) == [0, n]
    assert second.data.headline.set_index("severity").loc["error", "confirmed"] == 1
    assert set(second.data.changes["state"]) == {"recurring"}
    assert len(read_history(src)) == 2 * n


def test_english_rerun_replaces_the_chinese_sheets(tmp_path: Path, demo_report) -> None:
    out = tmp_path / "en.xlsx"
    result = report_workbook(demo_report.output, out, lang="en", now=NOW + dt.timedelta(days=1))
    assert sheet_names(out) == ["费用明细", "月度汇总", "设置", *EN_SHEETS]
    # The history written by the Chinese run is read back by the English one.
    assert list(result.data.evaluation_trend["run"]) == ["2026-01-16T09:00:00+00:00", "2026-01-17T09:00:00+00:00"]
    ws = load_workbook(out)["Dashboard"]
    assert ws["A1"].value == "Sales maintenance expenses: dashboard"
    # Everything of the original workbook is still there, byte for byte.
    assert package_differences(demo_report.input, out) == []


# --------------------------------------------------------------------------- budget workbook

@pytest.fixture
def budget_book(tmp_path: Path) -> Path:
    """The zh budget template: 差旅费 East spends 150 % of plan, South 20 %, for Jan–Mar 2027."""
    from xl_expense.io.budget_template import extend_table, write_ledger_rows

    path = tmp_path / "budget.xlsx"
    shutil.copy(TEMPLATE, path)
    wb = load_workbook(path)
    ws = wb["预算"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "差旅费" and row[1].value in ("华东销售部", "华南销售部"):
            for cell in row[2:14]:
                cell.value = 1000.0
    months = pd.to_datetime(["2027-01-15", "2027-02-15", "2027-03-15"])
    ledger = pd.DataFrame({
        "date": list(months) * 2, "person": ["张三"] * 3 + ["李四"] * 3,
        "department": ["华东销售部"] * 3 + ["华南销售部"] * 3, "customer": ["甲公司"] * 3 + ["乙公司"] * 3,
        "category": "差旅费", "description": "出差", "vendor": "携程旅行网",
        "receipt": [f"R{i}" for i in range(6)], "amount": [1500.0] * 3 + [200.0] * 3, "project": "P1",
    })
    extend_table(wb["费用明细"], "XE_Ledger", write_ledger_rows(wb["费用明细"], ledger, 2))
    wb.save(path)
    return path


def test_budget_workbook_gets_budget_blocks_and_a_balanced_proposal(budget_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    result = report_workbook(budget_book, out, now=dt.datetime(2027, 4, 1, 9, 0))
    assert result.has_budget
    assert result.sheets == ["看板", "客户", "绩效", "对标", "优化建议", "评估"]
    data = result.data
    by_cat = data.budget_by_category.set_index("group")
    assert by_cat.loc["差旅费", "actual_to_date"] == 5100.0
    by_unit = data.budget_by_department.set_index("group")
    assert by_unit.loc["华东销售部", "actual_to_date"] == 4500.0
    # Plan to date on 1 April: three months and one day of April (1,000 ÷ 30) pro rata.
    assert by_unit.loc["华东销售部", "pace"] == round(4500 / (3000 + 1000 / 30), 4) == 1.4835
    moves = data.proposal_moves
    assert list(zip(moves["from_line"], moves["to_line"])) == [("差旅费|华南销售部", "差旅费|华东销售部")]
    amount = moves["amount"].iloc[0]
    assert 0 < amount <= 0.2 * 12000 and amount % 100 == 0
    lines = data.proposal_lines
    assert lines["proposed"].sum() == pytest.approx(lines["base"].sum())
    assert package_differences(budget_book, out) == []
    ws = load_workbook(out)["优化建议"]
    commands = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)
                and c.value.startswith("xl-expense transfer")]
    assert commands == [(f'xl-expense transfer "report.xlsx" --from "差旅费|华南销售部" --to "差旅费|华东销售部" '
                         f'--amount {amount:.2f} --reason "优化建议" --in-place')]
    # 张三 is measured by East's budget: 48.35 % over plan of a 50 % tolerance leaves 0.033 points.
    people = data.scorecards_person.set_index("group")
    assert people.loc["张三", "budget_pace"] == 1.4835 and people.loc["张三", "budget_points"] == 0.033
    assert people.loc["李四", "budget_points"] == 1.0


# --------------------------------------------------------------------------- revenue

def test_revenue_sheet_feeds_customers_and_ratios(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "费用明细"
    ws.append(["日期", "报销人", "部门", "客户", "费用类别", "金额"])
    for day, person, dept, customer, cat, amount in (
            ("2025-03-05", "张三", "华东", "甲公司", "差旅费", 3000.0), ("2025-03-20", "张三", "华东", "乙公司", "招待", 500.0),
            ("2025-04-02", "李四", "华南", "乙公司", "差旅费", 1500.0)):
        ws.append([dt.datetime.fromisoformat(day), person, dept, customer, cat, amount])
    rev = wb.create_sheet("收入")
    rev.append(["维护费收入明细"])
    rev.append(["客户", "月份", "金额"])
    rev.append(["甲公司", "2025-03", "¥2,000.00"])
    rev.append(["乙公司", "2025年4月", 10000])
    settings = wb.create_sheet("设置")
    for row in (["参数", "值"], ["期间开始", "2025-01-01"], ["期间结束", "2025-12-31"], ["奖惩:金牌", "60, 3000"],
                ["奖惩:待提升", "0, -500"]):
        settings.append(row)
    wb.save(path)
    result = report_workbook(path, tmp_path / "out.xlsx", now=NOW)
    assert result.has_revenue
    view = result.data.customers.set_index("customer")
    assert view.loc["甲公司", "income"] == 2000.0 and bool(view.loc["甲公司", "cost_exceeds_income"])
    assert view.loc["乙公司", "margin"] == 8000.0 and not bool(view.loc["乙公司", "cost_exceeds_income"])
    assert result.data.ratios["expense_to_revenue"].iloc[0] == round(5000 / 12000, 4)
    # The reward table of the Settings sheet grades the scorecards.
    assert [(t.name, t.min_score, t.amount) for t in result.data.tiers] == [("金牌", 60.0, 3000.0),
                                                                            ("待提升", 0.0, -500.0)]
    assert set(result.data.scorecards_person["tier"]) <= {"金牌", "待提升"}
    ws = load_workbook(tmp_path / "out.xlsx")["客户"]
    flags = {row[0].value: row[6].value for row in ws.iter_rows(min_row=3, max_row=4)}
    assert flags == {"甲公司": "是", "乙公司": "否"}


def test_named_revenue_sheet_that_is_missing_is_an_error(tmp_path: Path, demo_workbook: Path) -> None:
    from xl_expense.errors import XlExpenseError

    with pytest.raises(XlExpenseError, match="no sheet '收入2025'"):
        report_workbook(demo_workbook, tmp_path / "x.xlsx", revenue_sheet="收入2025", now=NOW)


# --------------------------------------------------------------------------- real ledger, CSV, CLI

def _birmingham_slice(shared_data: Path, dst: Path, rows: int = 3000) -> Path:
    """The first rows of Birmingham's purchase-card CSV, decompressed into ``dst``."""
    with gzip.open(shared_data / "birmingham_pcard_2014_2018.csv.gz", "rt", encoding="utf-8", newline="") as src, \
            open(dst, "w", encoding="utf-8", newline="") as out:
        out.writelines(itertools.islice(src, rows + 1))
    return dst


def test_real_ledger_through_the_birmingham_profile(tmp_path: Path, shared_data: Path) -> None:
    src = _birmingham_slice(shared_data, tmp_path / "birmingham.csv")
    cfg = tmp_path / "gbp.toml"
    cfg.write_text('currency = "GBP"\nlang = "en"\nas_of = "2019-01-01"\n', encoding="utf-8")
    result = report_workbook(src, tmp_path / "birmingham_report.xlsx", profile="birmingham_pcard", config=cfg,
                             now=NOW)
    assert len(result.ledger.df) > 2900
    data = result.data
    # No salesperson or customer in a council's card file: those views are empty, not wrong.
    assert data.scorecards_person.empty
    assert data.ratios["customers"].iloc[0] == 0
    assert data.shares["amount"].sum() == pytest.approx(data.ratios["spend"].iloc[0], abs=0.05)
    assert len(data.benchmark_department) >= 2  # directorates
    ws = load_workbook(tmp_path / "birmingham_report.xlsx")["Dashboard"]
    labels = {ws.cell(r, 1).value: ws.cell(r, 2) for r in range(1, 20)}
    assert labels["Total spend"].number_format == "#,##0.00"  # pounds: no ¥ in the cells
    first, last = (int(cell[1:]) for cell in ws.tables["XE_DashShares"].ref.split(":"))
    assert [c.value for c in ws[first]][:4] == ["Category", "Amount (GBP)", "Share", "Count"]
    # More than ten spending codes: nine slices and one "Other (n categories)" line.
    assert last - first == 10 and ws.cell(last, 1).value.startswith("Other (")


def test_csv_input_is_written_as_xlsx(tmp_path: Path) -> None:
    src = tmp_path / "ledger.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["日期", "报销人", "部门", "客户", "供应商", "费用类别", "金额"])
        for i in range(40):
            writer.writerow([f"2025-{1 + i % 12:02d}-10", f"员工{i % 4}", f"部门{i % 2}", f"客户{i % 5}",
                             f"商户{i % 7}", ["差旅费", "招待", "通讯费"][i % 3], 100 + i])
    result = report_workbook(src, now=NOW)
    assert result.output == tmp_path / "ledger_report.xlsx"
    assert sheet_names(result.output)[1:] == ZH_SHEETS
    assert result.data.ratios["spend"].iloc[0] == sum(100 + i for i in range(40))


def test_cli_report(tmp_path: Path, demo_workbook: Path) -> None:
    src = tmp_path / "demo.xlsx"
    shutil.copy(demo_workbook, src)
    run = CliRunner().invoke(cli, ["report", str(src), "-o", str(tmp_path / "r.xlsx"), "--lang", "en"])
    assert run.exit_code == 0, run.output
    lines = run.output.splitlines()
    assert lines[0] == "demo.xlsx: 4,998 rows read / 读取行数; period / 期间 2025-01-01 – 2025-12-31"
    assert lines[1] == "spend / 费用合计: 9,266,433.24 CNY, 4,997 claims / 笔, 20 customers / 客户"
    assert lines[3] == ("sheets / 工作表: Dashboard, Customers, Scorecards, Benchmark, Evaluation "
                        "(no revenue sheet / 无收入表; no budget / 无预算)")
    assert lines[4] == f"written / 已写入: {tmp_path / 'r.xlsx'}"
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope.xlsx")])
    assert missing.exit_code == 1
    assert missing.output.strip() == f"Error: {tmp_path / 'nope.xlsx'}: file not found — check the path and the file name"


# --------------------------------------------------------------------------- LibreOffice

@needs_soffice
def test_libreoffice_opens_every_report_sheet(demo_report, tmp_path: Path) -> None:
    produced = convert(demo_report.output, CSV_ALL_SHEETS, tmp_path / "csv")
    by_sheet = {p.stem.split("-", 1)[1]: p for p in produced}
    assert set(ZH_SHEETS) <= set(by_sheet)
    rows = _csv_rows(by_sheet["看板"])
    assert rows[0][0] == "销售维护费看板"
    spend = next(r for r in rows if r and r[0] == "费用合计")[1]
    assert spend == f"{demo_report.data.ratios['spend'].iloc[0]:.2f}"  # raw values, not as shown
    history = _csv_rows(by_sheet["评估"])
    start = history.index(next(r for r in history if r[:2] == ["运行", "编号"]))  # the history Table
    ids = {r[1] for r in history[start + 1:] if r and r[0] == "2026-01-16T09:00:00+00:00"}
    assert ids == set(demo_report.findings["finding_id"])


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))


def _read_ppm(path: Path) -> np.ndarray:
    """An RGB image from pdftoppm's binary PPM (P6): no imaging library needed."""
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P6" and parts[3] == b"255"
    width, height = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4][: width * height * 3], dtype=np.uint8).reshape(height, width, 3)


def _pages(pdf: Path, dpi: int) -> list[np.ndarray]:
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), str(pdf), str(prefix)], check=True)
    files = sorted(pdf.parent.glob(prefix.name + "-*.ppm"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [_read_ppm(p) for p in files]


def _coloured(image: np.ndarray) -> np.ndarray:
    """Pixels with a clear hue: chart series. Text, grid lines, borders and white are grey."""
    rgb = image.astype(np.int16)
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 60


def _render(sheets: dict[str, NewSheet], folder: Path, dpi: int = 72) -> dict[str, list[np.ndarray]]:
    """Each sheet alone in a workbook, all converted to PDF by one LibreOffice start, as page images."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "base.xlsx"
    wb = Workbook()
    wb.active.title = "base"
    wb.save(base)
    books = []
    for name, sheet in sheets.items():
        book = folder / f"{name}.xlsx"
        add_sheets(base, book, [sheet], replace=["base"])
        books.append(book)
    pdfs = convert(books, "pdf", folder / "pdf")
    return {pdf.stem: _pages(pdf, dpi) for pdf in pdfs}


def _with_charts(sheet: NewSheet, real: set[int]) -> NewSheet:
    """The dashboard with every chart in place, but only the charts in ``real`` pointing at data.

    The others point at blank cells: LibreOffice draws their frame and title but no series.
    Every variant thus has the same drawing objects, print range and scale (the sheet prints
    one page wide), so the pixels that differ from the all-blank variant are chart ``i``'s data.
    """
    blank = f"{col_letter(CHART_COL + CHART_WIDTH + 3)}1:{col_letter(CHART_COL + CHART_WIDTH + 3)}3"
    charts = [c if i in real else dataclasses.replace(c, series=[ChartSeries(s.name, blank, blank) for s in c.series])
              for i, c in enumerate(sheet.charts)]
    return dataclasses.replace(sheet, charts=charts)


def _differences(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    blank = np.full_like(a[0], 255)
    pages = max(len(a), len(b))
    a, b = a + [blank] * (pages - len(a)), b + [blank] * (pages - len(b))
    return [np.abs(x.astype(np.int16) - y.astype(np.int16)).max(axis=2) > 40 for x, y in zip(a, b)]


EXPECTED_CHARTS = [("col", "审计发现数"), ("pie", "费用类别占比"), ("line", "月度费用"),
                   ("bar", "供应商费用（前 15）"), ("bar", "客户维护成本（前 15）")]


@needs_soffice
def test_libreoffice_draws_every_dashboard_chart(demo_report, tmp_path: Path) -> None:
    """Render the dashboard with every chart blank, with each chart's data alone and with all.

    For every chart: the pixels its data changes lie where its anchor is (right of the tables,
    in anchor order down the page) and include coloured series pixels (bars, slices, the
    line), so a chart drawn empty fails too; the full dashboard has those pixels as well.
    """
    from xl_expense.io.report_sheets import dashboard_sheet

    sheet = dashboard_sheet(demo_report.data)
    assert [(c.kind, c.title) for c in sheet.charts] == EXPECTED_CHARTS
    every = set(range(len(sheet.charts)))
    variants = {"none": _with_charts(sheet, set()), "all": _with_charts(sheet, every)}
    variants.update({f"chart{i}": _with_charts(sheet, {i}) for i in every})
    pages = _render(variants, tmp_path)
    assert len(pages["all"]) == len(pages["none"])
    widths = sheet.col_widths
    before = sum(widths.get(c, 8.43) for c in range(1, CHART_COL))
    total = before + sum(widths.get(c, 8.43) for c in range(CHART_COL, CHART_COL + CHART_WIDTH))
    positions = []
    for i, chart in enumerate(sheet.charts):
        diff = _differences(pages[f"chart{i}"], pages["none"])
        hits = [(p, np.argwhere(mask)) for p, mask in enumerate(diff) if mask.sum() > 50]
        assert hits, f"chart {chart.title!r} changed nothing on the page"
        coloured = coloured_all = 0
        for page, points in hits:  # a chart may straddle a page break
            image = pages[f"chart{i}"][page]
            (top, left), (bottom, right) = points.min(axis=0), points.max(axis=0)
            region = (slice(top, bottom + 1), slice(left, right + 1))
            coloured += int(_coloured(image[region]).sum())
            coloured_all += int(_coloured(pages["all"][page][region]).sum())
            # Horizontally: inside the anchor's columns K–R, right of the tables (0.7" margins,
            # the page one wide): from where column K starts to the right margin.
            width_px = image.shape[1]
            margin = 0.7 / 11.69 * width_px
            anchor_left = margin + (width_px - 2 * margin) * before / total
            tolerance = 0.03 * width_px
            assert anchor_left - tolerance <= left and right <= width_px - margin + tolerance, \
                (chart.title, left, right, anchor_left)
        # An empty chart (frame, title, axes) has no coloured pixels; the thinnest series here,
        # the trend line, has several hundred at this resolution.
        assert coloured > 200, f"chart {chart.title!r} is drawn without its series ({coloured} coloured px)"
        assert coloured_all > 200, f"chart {chart.title!r} missing when all charts are drawn"
        positions.append((hits[0][0], hits[0][1].min(axis=0)[0], hits[-1][0], hits[-1][1].max(axis=0)[0]))
    # Vertically: in the order of their anchor rows, none overlapping the next.
    anchors = [int("".join(ch for ch in c.anchor if ch.isdigit())) for c in sheet.charts]
    assert anchors == sorted(anchors)
    for (_, _, p1, b1), (p2, t2, _, _) in itertools.pairwise(positions):
        assert (p1, b1) < (p2, t2), "charts overlap or are out of anchor order"


# --------------------------------------------------------------------------- docs picture

def _png(image: np.ndarray) -> bytes:
    """A PNG file of an RGB image (zlib + CRC, no imaging library)."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _content_rows(image: np.ndarray) -> np.ndarray:
    ink = (image < 245).any(axis=2).any(axis=1)
    rows = np.flatnonzero(ink)
    return image[rows.min(): rows.max() + 1] if len(rows) else image[:0]


def write_dashboard_png(dst: Path, work: Path) -> Path:
    """The demo workbook's dashboard, rendered by LibreOffice, pages stacked into one picture."""
    from xl_expense.demo import write_demo_workbook
    from xl_expense.io.report_sheets import dashboard_sheet

    src = write_demo_workbook(work / "demo_ledger_2025.xlsx")
    result = report_workbook(src, work / "demo_report.xlsx", now=NOW)
    pages = _render({"dashboard": dashboard_sheet(result.data)}, work / "render", dpi=100)["dashboard"]
    parts = [_content_rows(p) for p in pages]
    gap = np.full((12, parts[0].shape[1], 3), 255, dtype=np.uint8)
    stacked = np.concatenate(list(itertools.chain.from_iterable((p, gap) for p in parts if len(p)))[:-1])
    dst.write_bytes(_png(stacked))
    return dst


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(write_dashboard_png(REPO / "docs" / "dashboard.png", Path(tmp)))


@needs_soffice
def test_libreoffice_opens_the_budget_report(budget_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    result = report_workbook(budget_book, out, now=dt.datetime(2027, 4, 1, 9, 0))
    produced = convert(out, CSV_ALL_SHEETS, tmp_path / "csv")
    by_sheet = {p.stem.split("-", 1)[1]: p for p in produced}
    assert {"看板", "优化建议", "评估"} <= set(by_sheet)
    proposals = _csv_rows(by_sheet["优化建议"])
    moved = [r for r in proposals if r[:2] == ["差旅费|华南销售部", "差旅费|华东销售部"]]
    assert len(moved) == 1 and float(moved[0][2]) == result.data.proposal_moves["amount"].iloc[0]
