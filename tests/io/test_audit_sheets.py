"""The findings and summary sheet descriptions: table, dropdown, links, notes merge, summary numbers."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.io.audit_sheets import (
    FINDINGS_TABLE,
    build_audit_sheets,
    build_findings_sheet,
    build_summary_sheet,
    column_letter,
    find_orphan_notes,
    findings_column,
    sheet_reference,
)
from xl_expense.io.reviewer_notes import our_sheet_names
from xl_expense.io.sheet_model import NewSheet
from tests.factories import make_findings
from xl_expense.schema import FINDING_COLUMNS

RULE_TITLES = {"duplicate": "重复报销", "round_amount": "整数金额", "benford": "本福特"}




def cells(sheet: NewSheet) -> dict[tuple[int, int], object]:
    """Every written value by (row, col), as a writer would place it."""
    out = {}
    for block in sheet.blocks:
        for r, values in enumerate(block.values):
            for c, value in enumerate(values):
                out[(block.row + r, block.col + c)] = value
    return out


def row_values(sheet: NewSheet, row: int) -> list:
    grid = cells(sheet)
    width = max(c for (_, c) in grid)
    return [grid.get((row, c)) for c in range(1, width + 1)]


def find_row(sheet: NewSheet, text: str) -> int:
    """The row whose column A holds ``text`` (block titles, labels)."""
    rows = [r for (r, c), v in cells(sheet).items() if c == 1 and v == text]
    assert rows, f"{text!r} not found in {sheet.name}"
    return rows[0]


@pytest.fixture
def findings() -> pd.DataFrame:
    return make_findings([
        {"finding_id": "dup-0001", "rule": "duplicate", "severity": "error", "sheet": "费用明细", "row": 15,
         "date": pd.Timestamp("2026-03-05"), "person": "张三", "department": "华东", "vendor": "海底捞",
         "category": "客户招待", "amount": 1280.0, "score": 1.0, "message": "与第 9 行重复"},
        {"finding_id": "rnd-0002", "rule": "round_amount", "severity": "info", "sheet": "费用明细", "row": 22,
         "date": pd.Timestamp("2026-03-09"), "person": "李四", "department": "华北", "vendor": "=HYPERLINK(\"x\")",
         "category": "礼品", "amount": 3000.0, "score": 0.4, "message": "整数金额"},
        {"finding_id": "bfd-0003", "rule": "benford", "severity": "warning", "sheet": None, "row": None,
         "date": None, "person": "王五", "department": None, "vendor": None,
         "category": None, "amount": 45000.0, "score": 0.7, "message": "首位数字分布不符合"},
    ])


def test_findings_sheet_layout_zh(findings):
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="费用明细", columns={"amount": "D", "date": "A"},
                                 rule_titles=RULE_TITLES)
    assert sheet.name == "审计明细"
    assert sheet.freeze == "A2"
    header = row_values(sheet, 1)
    assert header == ["编号", "严重程度", "规则", "规则名称", "工作表", "行号", "日期", "报销人", "部门", "供应商",
                      "费用类别", "金额", "强度", "说明", "定位", "状态", "备注"]
    (table,) = sheet.tables
    assert (table.name, table.ref) == (FINDINGS_TABLE, "A1:Q4")
    first = dict(zip(header, row_values(sheet, 2)))
    assert first["编号"] == "dup-0001"
    assert first["严重程度"] == "错误"
    assert first["规则名称"] == "重复报销"
    assert first["行号"] == 15
    assert first["日期"] == dt.datetime(2026, 3, 5)
    assert first["金额"] == 1280.0
    assert first["定位"] == "→ D15"
    assert first["状态"] == "待复核"
    assert first["备注"] is None
    # ledger text is passed through unchanged (the writer keeps it a string)
    assert row_values(sheet, 3)[header.index("供应商")] == "=HYPERLINK(\"x\")"
    group = dict(zip(header, row_values(sheet, 4)))
    assert group["行号"] is None and group["定位"] is None and group["严重程度"] == "警告"
    assert group["规则名称"] == "本福特"


def test_findings_sheet_styles_and_widths(findings):
    sheet = build_findings_sheet(findings, lang="en", ledger_sheet="L", columns={}, rule_titles={})
    body = sheet.blocks[1]
    header = row_values(sheet, 1)
    assert body.styles[header.index("Amount")] == "money"
    assert body.styles[header.index("Date")] == "date"
    assert body.styles[header.index("Score")] == "score"
    assert body.styles[header.index("Go to")] == "link"
    assert sheet.blocks[0].row_style == "header"
    assert set(sheet.col_widths) == set(range(1, 18))


def test_hyperlinks_point_to_amount_cell(findings):
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="费用明细", columns={"amount": "D"},
                                 rule_titles=RULE_TITLES)
    link_col = findings_column("link")
    assert link_col == "O"
    assert [(h.cell, h.location) for h in sheet.hyperlinks] == [
        ("O2", "'费用明细'!D15"), ("O3", "'费用明细'!D22")]


def test_hyperlinks_without_amount_column_go_to_column_a():
    findings = make_findings([{"finding_id": "x", "rule": "duplicate", "severity": "error", "sheet": None,
                               "row": 7, "amount": 1.0}])
    sheet = build_findings_sheet(findings, lang="en", ledger_sheet="O'Brien's costs", columns={"date": "B"},
                                 rule_titles={})
    (link,) = sheet.hyperlinks
    assert (link.cell, link.location) == ("O2", "'O''Brien''s costs'!A7")
    assert row_values(sheet, 2)[findings_column_index("link")] == "→ A7"
    # the sheet of a row-level finding falls back to the ledger sheet
    assert row_values(sheet, 2)[findings_column_index("sheet")] == "O'Brien's costs"


def findings_column_index(key: str) -> int:
    letter = findings_column(key)
    return [column_letter(i) for i in range(1, 30)].index(letter)


def test_status_dropdown_covers_status_column(findings):
    sheet = build_findings_sheet(findings, lang="en", ledger_sheet="L", columns={}, rule_titles={})
    (validation,) = sheet.validations
    assert findings_column("status") == "P"
    assert validation.sqref == "P2:P1048576"
    assert list(validation.options) == ["Open", "Explained", "Confirmed"]
    assert row_values(sheet, 1)[15] == "Status" and row_values(sheet, 1)[16] == "Comment"


def test_severity_colours(findings):
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="L", columns={}, rule_titles={})
    assert [(c.sqref, c.formula, c.highlight) for c in sheet.cond_formats] == [
        ("B2:B4", '$B2="错误"', "error"), ("B2:B4", '$B2="警告"', "warning"), ("B2:B4", '$B2="提示"', "info")]


def test_no_findings_still_makes_a_table():
    sheet = build_findings_sheet(make_findings([]), lang="zh", ledger_sheet="L", columns={}, rule_titles={})
    # Excel requires a data row under a Table's header: one blank row
    assert sheet.tables[0].ref == "A1:Q2"
    assert sheet.hyperlinks == []
    assert len(sheet.blocks[1].values) == 0


def test_notes_kept_mapped_and_orphaned(findings):
    notes = pd.DataFrame({
        "finding_id": ["dup-0001", "rnd-0002", "gone-1", "gone-2", "gone-3"],
        "status": ["已确认", "Explained", "已解释", "待复核", "Open"],
        "comment": ["退款已追回", None, "客户已付", "请核对", None],
    })
    sheet = build_findings_sheet(findings, lang="en", ledger_sheet="L", columns={}, rule_titles={}, notes=notes)
    header = row_values(sheet, 1)
    status, comment = header.index("Status"), header.index("Comment")
    assert [row_values(sheet, r)[status] for r in (2, 3, 4)] == ["Confirmed", "Explained", "Open"]
    assert [row_values(sheet, r)[comment] for r in (2, 3, 4)] == ["退款已追回", None, None]

    orphans = find_orphan_notes(findings, notes, "zh")
    # gone-3 is an untouched note (Open, no comment): nothing to keep
    assert orphans.to_dict("records") == [
        {"finding_id": "gone-1", "status": "已解释", "comment": "客户已付"},
        {"finding_id": "gone-2", "status": "待复核", "comment": "请核对"},
    ]


def test_unknown_status_text_is_kept(findings):
    notes = pd.DataFrame({"finding_id": ["dup-0001"], "status": ["问过财务"], "comment": [None]})
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="L", columns={}, rule_titles={}, notes=notes)
    assert row_values(sheet, 2)[findings_column_index("status")] == "问过财务"


def test_sheet_reference_quotes():
    assert sheet_reference("费用明细") == "'费用明细'"
    assert sheet_reference("it's") == "'it''s'"
    assert [column_letter(i) for i in (1, 26, 27, 52, 703)] == ["A", "Z", "AA", "AZ", "AAA"]


# ----------------------------------------------------------------------------- summary

def make_summary() -> dict[str, pd.DataFrame]:
    """What summarize_findings returns for a small run (written out to keep io tests core-free)."""
    return {
        "by_rule": pd.DataFrame({"rule": ["duplicate", "benford", "round_amount"],
                                 "severity": ["error", "warning", "info"],
                                 "findings": [4, 1, 7], "rows": [4, 0, 7], "amount": [5120.0, 0.0, 21000.0]}),
        "by_severity": pd.DataFrame({"severity": ["error", "warning", "info"], "findings": [4, 1, 7],
                                     "rows": [4, 0, 7], "amount": [5120.0, 0.0, 21000.0]}),
        "by_department": pd.DataFrame({"department": ["华东", None], "findings": [10, 2], "rows": [9, 2],
                                       "amount": [24000.0, 2120.0]}),
        "by_person": pd.DataFrame({"person": [f"p{i:02d}" for i in range(60)], "findings": [1] * 60,
                                   "rows": [1] * 60, "amount": [float(100 - i) for i in range(60)]}),
        "totals": pd.DataFrame({"rows": [5000], "amount": [1234567.5],
                                "date_min": [pd.Timestamp("2026-01-01")], "date_max": [pd.Timestamp("2026-12-31")],
                                "findings": [12], "group_findings": [1], "flagged_rows": [10],
                                "amount_at_risk": [26120.0]}),
    }


def make_benford():
    expected = [0.301, 0.176, 0.125, 0.097, 0.079, 0.067, 0.058, 0.051, 0.046]
    digits = pd.DataFrame({"digit": range(1, 10), "count": [300, 180, 120, 100, 80, 70, 60, 50, 40],
                           "actual": [c / 1000 for c in [300, 180, 120, 100, 80, 70, 60, 50, 40]],
                           "expected": expected})
    groups = pd.DataFrame({"group": [None, "张三", "李四"], "n": [1000, 620, 80], "mad": [0.004, 0.018, 0.03],
                           "conformity": ["close", "nonconforming", None], "judged": [True, True, False]})
    return SimpleNamespace(digits=digits, groups=groups)


@pytest.fixture
def summary_sheet() -> NewSheet:
    rejected = pd.DataFrame({"sheet": ["费用明细"] * 3, "row": [40, 41, 77],
                             "reason": ["金额无法识别: 'abc'", "日期无法识别", "金额为空"]})
    preview = pd.DataFrame({"rule": ["below_threshold", "below_threshold"], "setting": ["approval_limit"] * 2,
                            "value": [3000.0, 5000.0], "flagged": [41, 3], "current": [False, True]})
    orphans = pd.DataFrame({"finding_id": ["gone-1"], "status": ["已解释"], "comment": ["客户已付"]})
    run_record = {"tool_version": "0.1.0", "input_file": "ledger.xlsx", "input_sha256": "ab" * 32,
                  "time": dt.datetime(2026, 4, 1, 9, 30),
                  "settings": {"approval_limit": 5000.0, "policy_limits": {"客户招待": 3000.0},
                               "required_fields": ["date", "amount"], "period_start": None}}
    return build_summary_sheet(make_summary(), lang="zh", benford=make_benford(), preview=preview,
                               rejected=rejected, totals_rows=[120, 240], run_record=run_record,
                               orphan_notes=orphans, rule_titles=RULE_TITLES)


def test_summary_headline(summary_sheet):
    assert summary_sheet.name == "审计摘要"
    grid = cells(summary_sheet)
    value = lambda label: grid[(find_row(summary_sheet, label), 2)]  # noqa: E731
    assert value("读取行数") == 5000
    assert value("金额合计") == 1234567.5
    assert value("日期范围") == "2026-01-01 ~ 2026-12-31"
    assert value("发现合计") == 12
    assert (value("发现：错误"), value("发现：警告"), value("发现：提示")) == (4, 1, 7)
    assert value("被标记的行") == 10
    assert value("涉及金额（按行去重）") == 26120.0
    assert value("无法读取的行") == 3
    assert value("识别出的合计行") == 2


def test_summary_block_titles_are_styled(summary_sheet):
    titles = [b.values[0][0] for b in summary_sheet.blocks if b.row_style == "title"]
    assert titles == ["销售维护费审计摘要", "概览", "按规则", "按部门", "按报销人（前 50）", "本福特首位数字检验",
                      "本福特：按组 MAD 与符合度", "阈值预览：换一个设置会标记多少行",
                      "上次的复核备注：本次未再发现的问题", "运行记录", "无法读取的行", "合计行（不计入费用）"]
    # blocks never overlap
    seen = set()
    for key in [(b.row + r, b.col + c) for b in summary_sheet.blocks
                for r, vals in enumerate(b.values) for c, _ in enumerate(vals)]:
        assert key not in seen
        seen.add(key)


def test_summary_by_rule_and_people(summary_sheet):
    row = find_row(summary_sheet, "按规则")
    assert row_values(summary_sheet, row + 1)[:6] == ["规则名称", "规则", "严重程度", "发现数", "涉及行数", "涉及金额"]
    assert row_values(summary_sheet, row + 2)[:6] == ["重复报销", "duplicate", "错误", 4, 4, 5120.0]
    assert row_values(summary_sheet, row + 4)[:6] == ["整数金额", "round_amount", "提示", 7, 7, 21000.0]
    dept = find_row(summary_sheet, "按部门")
    assert row_values(summary_sheet, dept + 3)[:4] == ["（未填）", 2, 2, 2120.0]
    person = find_row(summary_sheet, "按报销人（前 50）")
    assert row_values(summary_sheet, person + 2)[:4] == ["p00", 1, 1, 100.0]
    assert row_values(summary_sheet, person + 51)[:4] == ["p49", 1, 1, 51.0]
    assert cells(summary_sheet).get((person + 52, 1)) is None  # top 50 only


def test_summary_benford_table_and_chart(summary_sheet):
    row = find_row(summary_sheet, "本福特首位数字检验")
    assert row_values(summary_sheet, row + 1)[:4] == ["首位数字", "个数", "实际占比", "本福特期望"]
    assert row_values(summary_sheet, row + 2)[:4] == [1, 300, 0.3, 0.301]
    (chart,) = summary_sheet.charts
    first, last = row + 2, row + 10
    assert chart.kind == "col" and chart.anchor == f"H{row}"
    assert [(s.name, s.values_ref, s.categories_ref) for s in chart.series] == [
        ("实际占比", f"C{first}:C{last}", f"A{first}:A{last}"),
        ("本福特期望", f"D{first}:D{last}", f"A{first}:A{last}")]
    groups = find_row(summary_sheet, "本福特：按组 MAD 与符合度")
    assert row_values(summary_sheet, groups + 2)[:5] == ["全部", 1000, 0.004, "高度符合", "是"]
    assert row_values(summary_sheet, groups + 3)[:5] == ["张三", 620, 0.018, "不符合", "是"]
    assert row_values(summary_sheet, groups + 4)[:5] == ["李四", 80, 0.03, "样本不足，未判定", "否"]


def test_summary_rejected_preview_orphans_run_record(summary_sheet):
    rej = find_row(summary_sheet, "无法读取的行")
    rej = max(r for (r, c), v in cells(summary_sheet).items() if c == 1 and v == "无法读取的行")  # the block title
    assert row_values(summary_sheet, rej + 1)[:3] == ["工作表", "行号", "原因"]
    assert [row_values(summary_sheet, rej + i)[:3] for i in (2, 3, 4)] == [
        ["费用明细", 40, "金额无法识别: 'abc'"], ["费用明细", 41, "日期无法识别"], ["费用明细", 77, "金额为空"]]
    totals = find_row(summary_sheet, "合计行（不计入费用）")
    assert [row_values(summary_sheet, totals + i)[0] for i in (2, 3)] == [120, 240]
    preview = find_row(summary_sheet, "阈值预览：换一个设置会标记多少行")
    assert row_values(summary_sheet, preview + 1)[:5] == ["规则", "设置项", "取值", "将标记行数", "当前"]
    assert row_values(summary_sheet, preview + 2)[:5] == ["below_threshold", "approval_limit", 3000.0, 41, None]
    assert row_values(summary_sheet, preview + 3)[:5] == ["below_threshold", "approval_limit", 5000.0, 3, "← 当前设置"]
    orphans = find_row(summary_sheet, "上次的复核备注：本次未再发现的问题")
    assert row_values(summary_sheet, orphans + 2)[:4] == ["gone-1", "已解释", "客户已付", "本次未再发现"]
    run = find_row(summary_sheet, "运行记录")
    grid = cells(summary_sheet)
    assert grid[(run + 1, 1)] == "工具版本" and grid[(run + 1, 2)] == "0.1.0"
    assert grid[(find_row(summary_sheet, "输入文件 SHA-256"), 2)] == "ab" * 32
    assert grid[(find_row(summary_sheet, "运行时间"), 2)] == dt.datetime(2026, 4, 1, 9, 30)
    assert grid[(find_row(summary_sheet, "approval_limit"), 2)] == 5000.0
    assert grid[(find_row(summary_sheet, "policy_limits"), 2)] == "客户招待=3000.0"
    assert grid[(find_row(summary_sheet, "required_fields"), 2)] == "date, amount"
    assert grid[(find_row(summary_sheet, "period_start"), 2)] == ""


def test_summary_in_english_without_optional_parts():
    sheet = build_summary_sheet(make_summary(), lang="en", benford=None, preview=None,
                                rejected=pd.DataFrame(columns=["sheet", "row", "reason"]), totals_rows=[],
                                run_record={"tool_version": "0.1.0"}, orphan_notes=None)
    assert sheet.name == "Audit Summary"
    titles = [b.values[0][0] for b in sheet.blocks if b.row_style == "title"]
    assert "Benford first-digit test" not in titles and sheet.charts == []
    rej = max(r for (r, c), v in cells(sheet).items() if c == 1 and v == "Unreadable rows")
    assert row_values(sheet, rej + 2)[0] == "(none)"
    by_rule = find_row(sheet, "By rule")
    assert row_values(sheet, by_rule + 2)[:3] == ["duplicate", "duplicate", "Error"]


def test_build_audit_sheets_orders_and_orphans(findings):
    notes = pd.DataFrame({"finding_id": ["gone-1"], "status": ["Confirmed"], "comment": ["ok"]})
    summary, findings_sheet = build_audit_sheets(
        findings, make_summary(), lang="zh", ledger_sheet="费用明细", columns={"amount": "D"},
        rule_titles=RULE_TITLES, notes=notes, run_record={"tool_version": "0.1.0"})
    assert (summary.name, findings_sheet.name) == ("审计摘要", "审计明细")
    orphans = find_row(summary, "上次的复核备注：本次未再发现的问题")
    assert row_values(summary, orphans + 2)[:4] == ["gone-1", "已确认", "ok", "本次未再发现"]


def test_findings_sheet_at_scale():
    """50k findings: every one gets its link (timings live in benchmarks/, not here)."""
    n = 50_000
    findings = pd.DataFrame({
        "finding_id": [f"F{i}" for i in range(n)], "rule": "round_amount", "severity": "info",
        "sheet": "S", "row": pd.array(range(2, n + 2), dtype="Int64"),
        "date": pd.Timestamp("2026-01-01"), "person": "p", "department": "d", "vendor": "v",
        "category": "c", "amount": 1000.0, "score": 0.5, "message": "m",
    })
    sheet = build_findings_sheet(findings, lang="zh", ledger_sheet="S", columns={"amount": "D"}, rule_titles={})
    assert len(sheet.hyperlinks) == n
    assert sheet.hyperlinks[-1].location.endswith(f"!D{n + 1}")


def _real_modules():
    """The rules engine, the reader and the package writer, as one namespace."""
    from xl_expense.core.audit import benford_analysis, run_audit, threshold_preview
    from xl_expense.core.audit.registry import RULES
    from xl_expense.core.audit.summary import summarize_findings
    from xl_expense.core.settings import Settings
    from xl_expense.io.ledger_reader import load_ledger
    from xl_expense.io.xlsx_package import add_sheets

    return SimpleNamespace(benford_analysis=benford_analysis, run_audit=run_audit,
                           threshold_preview=threshold_preview, RULES=RULES,
                           summarize_findings=summarize_findings, Settings=Settings,
                           load_ledger=load_ledger, add_sheets=add_sheets)


def _write_ledger(path):
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "费用明细"
    ws.append(["销售维护费明细 2026"])
    ws.append(["日期", "报销人", "部门", "供应商", "费用类别", "摘要", "金额", "发票号"])
    rows = [
        (dt.datetime(2026, 3, 2), "张三", "华东", "海底捞", "客户招待", "客户晚餐", 1280.0, "INV001"),
        (dt.datetime(2026, 3, 2), "张三", "华东", "海底捞", "客户招待", "客户晚餐", 1280.0, "INV001"),
        (dt.datetime(2026, 3, 7), "李四", "华北", "京东", "礼品", '=HYPERLINK("http://evil","点击")', 4900.0, None),
        (dt.datetime(2026, 3, 9), "王五", "华南", "滴滴", "交通费", "打车", -35.5, "INV003"),
    ]
    for r in rows:
        ws.append(list(r))
        # openpyxl would store text starting with "=" as a formula; a typed ledger holds text
        ws.cell(ws.max_row, 6).data_type = "s"
    ws.append([None, None, None, None, None, "合计", "=SUM(G3:G6)", None])
    book.save(path)


def _audit_with_real_modules(tmp_path, lang="zh"):
    m = _real_modules()
    src = tmp_path / "ledger.xlsx"
    _write_ledger(src)
    ledger = m.load_ledger(src)
    settings = m.Settings(lang=lang, as_of=dt.date(2026, 12, 31))
    findings = m.run_audit(ledger.df, settings)
    assert len(findings), "the planted duplicate should be found"
    sheets = build_audit_sheets(
        findings, m.summarize_findings(findings, ledger.df), lang=lang, ledger_sheet=ledger.sheet,
        columns={k: ref.letter for k, ref in ledger.columns.items()},
        rule_titles={rid: r.title(lang) for rid, r in m.RULES.items()},
        benford=m.benford_analysis(ledger.df, settings), preview=m.threshold_preview(ledger.df, settings),
        rejected=ledger.rejected, totals_rows=ledger.totals_rows,
        run_record={"tool_version": "test", "input_file": src.name, "settings": settings.to_dict()})
    out = tmp_path / "ledger_audited.xlsx"
    m.add_sheets(src, out, sheets, replace=our_sheet_names())
    return out, findings


def test_real_pipeline_round_trip(tmp_path):
    """Reader → rules → summary → these sheets → package writer → calamine reads them back."""
    out, _ = _audit_with_real_modules(tmp_path)
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(out))
    assert book.sheet_names == ["费用明细", "审计摘要", "审计明细"]
    rows = book.get_sheet_by_name("审计明细").to_python()
    header = rows[0]
    assert header[:3] == ["编号", "严重程度", "规则"]
    dup = [r for r in rows[1:] if r[header.index("规则")] == "duplicate"]
    assert dup and all(r[header.index("定位")] == f"→ G{int(r[header.index('行号')])}" for r in dup)
    summary_text = {str(c) for r in book.get_sheet_by_name("审计摘要").to_python() for c in r}
    assert {"按规则", "本福特首位数字检验", "运行记录", "duplicate", "重复报销"} <= summary_text
    book.close()


def test_our_sheet_names_are_what_we_write():
    """The workflow replaces sheets by these names; they must match what the builders produce."""
    for lang in ("zh", "en"):
        empty = build_findings_sheet(pd.DataFrame({c: [] for c in FINDING_COLUMNS}), lang=lang, ledger_sheet="L",
                                     columns={}, rule_titles={})
        summary = build_summary_sheet(make_summary(), lang=lang, rejected=None, totals_rows=[], run_record={})
        assert {empty.name, summary.name} <= our_sheet_names()


def test_build_audit_sheets_takes_ledger_and_settings(findings):
    """The workflow may pass the reader's Ledger and the Settings instead of their parts."""
    ledger = SimpleNamespace(sheet="费用明细", columns={"amount": SimpleNamespace(letter="G")},
                             rejected=pd.DataFrame({"sheet": ["费用明细"], "row": [9], "reason": ["金额为空"]}),
                             totals_rows=[30])
    summary, sheet = build_audit_sheets(findings, make_summary(), ledger=ledger,
                                        settings=SimpleNamespace(lang="en"), rule_titles={})
    assert (summary.name, sheet.name) == ("Audit Summary", "Audit Findings")
    assert sheet.hyperlinks[0].location == "'费用明细'!G15"
    rej = max(r for (r, c), v in cells(summary).items() if c == 1 and v == "Unreadable rows")
    assert row_values(summary, rej + 2)[:3] == ["费用明细", 9, "金额为空"]
    totals = find_row(summary, "Totals rows (not counted as expenses)")
    assert row_values(summary, totals + 2)[0] == 30


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_reads_the_findings_back(tmp_path):
    """LibreOffice opens the audited workbook; the findings sheet holds our ids and plain text."""
    out, findings = _audit_with_real_modules(tmp_path, lang="en")
    produced = convert(out, CSV_ALL_SHEETS, tmp_path / "lo")
    by_name = {p.stem.split("-", 1)[1]: p for p in produced}
    assert {"Audit Summary", "Audit Findings"} <= set(by_name)
    import csv

    with open(by_name["Audit Findings"], encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["Finding ID", "Severity", "Rule"]
    assert [r[0] for r in rows[1:]] == findings["finding_id"].tolist()
    assert {r[15] for r in rows[1:]} == {"Open"}
