"""`xl-expense classify` end to end: columns in the ledger, the report sheet, the model file, re-runs."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd
import pytest
import python_calamine
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.table import Table

from tests.factories import assert_same_ledger
from xl_expense.classify_workflow import classified_ledger, classify_workbook
from xl_expense.cli import cli
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.testing import package_differences
from xl_expense.workflows import audit_workbook

HEADER = ["日期", "支出对象", "摘要", "金额", "费用类别"]
HOSTILE = '=HYPERLINK("http://evil","x")'


def _rows() -> list[list]:
    """Taxi, dinner and courier rows; most labelled, some empty (to predict)."""
    day = dt.date(2026, 3, 2)
    rows = []
    for i in range(8):
        rows.append([day + dt.timedelta(days=i), "滴滴出行", f"出租车 客户现场 {i}", 60 + i, "差旅费"])
        rows.append([day + dt.timedelta(days=i), "海底捞", f"客户晚宴 {i}", 2800 + i * 100, "客户招待"])
        rows.append([day + dt.timedelta(days=i), "顺丰速运", f"备件快递 {i}", 30 + i, "物流费"])
    rows[0][4] = "差旅"  # a synonym typed by a person: kept as typed in the cell
    rows += [
        [dt.date(2026, 3, 20), "滴滴出行", "出租车 去机场", 88, None],
        [dt.date(2026, 3, 21), "海底捞", "客户答谢晚宴", 3600, None],
        [dt.date(2026, 3, 22), "顺丰速运", "备件寄送", 45, None],
        [dt.date(2026, 3, 23), "未知商户", HOSTILE, 10, None],
    ]
    return rows


def plain_ledger(path: Path, *, table: bool = False, rules: list[list] | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "费用明细"
    ws.append(["2026年3月 费用明细"])  # a title row above the header
    ws.append(HEADER)
    for row in _rows():
        ws.append(row)
        if row[2] == HOSTILE:  # typed as text, as a ledger export holds it (openpyxl would make a formula)
            ws.cell(ws.max_row, 3).data_type = "s"
    if table:
        ws.add_table(Table(displayName="Expenses", ref=f"A2:E{ws.max_row}"))
    other = wb.create_sheet("备注")
    other["A1"] = "keep me"
    if rules:
        sheet = wb.create_sheet("分类规则")
        sheet.append(["字段", "关键词", "最小金额", "最大金额", "类别", "优先级"])
        for rule in rules:
            sheet.append(rule)
    wb.save(path)
    return path


def sheet_rows(path: Path, sheet: str) -> list[list]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    finally:
        book.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_classify_fills_empty_categories_and_never_touches_a_persons(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx")
    before = digest(src)
    out = tmp_path / "out.xlsx"
    result = classify_workbook(src, out, predictions_csv=tmp_path / "pred.csv", lang="zh")
    assert digest(src) == before  # the input is never modified
    rows = sheet_rows(out, "费用明细")
    header = rows[1]
    assert header[:5] == HEADER and header[5:10] == ["分类置信度", "分类来源", "匹配规则", "分类建议", "需复核"]
    by_row = {i + 1: r for i, r in enumerate(rows)}
    assert by_row[3][4] == "差旅"  # manual, as typed (not normalised in the cell)
    assert by_row[3][6] == "manual" and by_row[3][5] == 1.0
    assert [by_row[r][4] for r in (27, 28, 29)] == ["差旅费", "客户招待", "物流费"]
    assert all(by_row[r][6] == "model" for r in (27, 28, 29, 30))
    assert by_row[30][2] == HOSTILE  # ledger text stays text
    assert result.counts == {"manual": 24, "rule": 0, "model": 4, "unclassified": 0,
                             "review": int(result.classification.table["review"].sum())}
    # The report sheet and the rest of the workbook
    report = sheet_rows(out, "分类报告")
    assert report[0][0] == "费用分类报告"
    labels = {r[0]: r[1] for r in report if r and r[0]}
    assert labels["人工"] == 24 and labels["模型"] == 4 and labels["模型状态"] == "本次训练"
    assert 0.0 <= labels["交叉验证准确率（用户标签）"] <= 1.0
    assert sheet_rows(out, "备注")[0][0] == "keep me"
    assert package_differences(src, out) == ["xl/worksheets/sheet1.xml: bytes differ"]
    # Predictions CSV: one row per expense row, Excel row numbers, formula-safe text
    with open(tmp_path / "pred.csv", encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert list(records[0])[:5] == ["sheet", "row", "category", "confidence", "source"]
    assert [int(r["row"]) for r in records] == list(range(3, 31))
    assert records[0]["category"] == "差旅费" and records[0]["source"] == "manual"


def test_rerun_reuses_the_model_and_a_correction_becomes_manual(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx")
    first = classify_workbook(src, tmp_path / "one.xlsx")
    assert first.model_path == tmp_path / "one.xe-model" and first.model_path.is_file()
    # Same labels → the stored model is reused, and its guesses stay guesses (not labels).
    again = classify_workbook(tmp_path / "one.xlsx", tmp_path / "two.xlsx", model_file=first.model_path)
    assert again.classification.model_reused and again.classification.training is None
    assert again.counts["manual"] == 24 and again.counts["model"] == 4
    # A person corrects the model's guess in row 28 → manual; the model retrains on it.
    wb = load_workbook(tmp_path / "two.xlsx")
    wb["费用明细"]["E28"] = "市场活动"
    wb.save(tmp_path / "edited.xlsx")
    third = classify_workbook(tmp_path / "edited.xlsx", tmp_path / "three.xlsx", model_file=first.model_path)
    assert not third.classification.model_reused and third.classification.training is not None
    assert third.counts["manual"] == 25
    rows = sheet_rows(tmp_path / "three.xlsx", "费用明细")
    assert rows[27][4] == "市场活动" and rows[27][6] == "manual"
    assert rows[1].count("分类来源") == 1  # columns reused, not added again


def test_rules_sheet_wins_over_the_model(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx", rules=[["摘要", "机场", None, None, "差旅费", 1],
                                                      ["供应商", "未知商户", None, None, "其他", 2]])
    result = classify_workbook(src, tmp_path / "out.xlsx", lang="en")
    rows = sheet_rows(tmp_path / "out.xlsx", "费用明细")
    assert rows[1][5:10] == ["Confidence", "Classified by", "Match rule", "Suggestion", "Needs review"]
    assert rows[26][4] == "差旅费" and rows[26][6] == "rule" and rows[26][7]
    assert rows[29][4] == "其他" and rows[29][6] == "rule"
    assert result.counts["rule"] == 2 and result.counts["model"] == 2
    assert sheet_rows(tmp_path / "out.xlsx", "Classification")[0][0] == "Expense classification"


def test_a_table_ledger_grows_by_the_new_columns(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx", table=True)
    classify_workbook(src, tmp_path / "out.xlsx")
    table = load_workbook(tmp_path / "out.xlsx")["费用明细"].tables["Expenses"]
    assert table.ref == "A2:J30"
    assert [c.name for c in table.tableColumns][5:] == ["分类置信度", "分类来源", "匹配规则", "分类建议", "需复核"]


def test_classified_categories_feed_the_audit_policy_limits(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx")
    classify_workbook(src, tmp_path / "out.xlsx")
    config = tmp_path / "audit.toml"
    config.write_text('[audit]\npolicy_limits = { "客户招待" = 3000 }\n', encoding="utf-8")
    audit = audit_workbook(tmp_path / "out.xlsx", tmp_path / "audited.xlsx", config=config)
    flagged = audit.findings[audit.findings["rule"] == "over_policy_limit"]["row"].astype(int).tolist()
    # 3,600 in row 28 had no category before classification; the model's 客户招待 lets the limit apply.
    assert 28 in flagged


def test_csv_input_gets_an_xlsx_with_the_columns(tmp_path: Path) -> None:
    src = tmp_path / "ledger.csv"
    frame = pd.DataFrame(_rows(), columns=HEADER)
    frame.to_csv(src, index=False, encoding="utf-8")
    result = classify_workbook(src)
    assert result.output == tmp_path / "ledger_classified.xlsx"
    rows = sheet_rows(result.output, "ledger")
    assert rows[0][5:7] == ["分类置信度", "分类来源"] and rows[25][6] == "model"


def test_tampered_model_is_refused_with_one_line_and_retrain_replaces_it(tmp_path: Path) -> None:
    src = plain_ledger(tmp_path / "book.xlsx")
    model = tmp_path / "m.xe-model"
    classify_workbook(src, tmp_path / "one.xlsx", model_file=model)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    runner = CliRunner()
    res = runner.invoke(cli, ["classify", str(src), "-o", str(tmp_path / "two.xlsx"), "--model", str(model)])
    assert res.exit_code == 1
    line = res.stderr.strip()
    assert line.startswith("Error: ") and "\n" not in line and "--retrain" in line and "Traceback" not in res.output
    res = runner.invoke(cli, ["classify", str(src), "-o", str(tmp_path / "two.xlsx"), "--model", str(model),
                              "--retrain", "--min-confidence", "0.5"])
    assert res.exit_code == 0, res.output
    assert "cross-validated accuracy" in res.output


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_min_confidence_out_of_range_is_a_usage_error(tmp_path: Path, value: str) -> None:
    src = plain_ledger(tmp_path / "book.xlsx")
    res = CliRunner().invoke(cli, ["classify", str(src), "--min-confidence", value])
    assert res.exit_code == 2


@pytest.mark.parametrize("table", [False, True])
def test_classified_ledger_is_what_the_output_reads_back(tmp_path: Path, table: bool) -> None:
    """A batch audits the classified ledger without re-reading the file: it must be the same ledger."""
    book = plain_ledger(tmp_path / "ledger.xlsx", table=table)
    first = classify_workbook(book, tmp_path / "once.xlsx")
    # Run twice: the second run reads our own columns back (earlier suggestions, a correction).
    second = classify_workbook(first.output, tmp_path / "twice.xlsx")
    for result in (first, second):
        fast = classified_ledger(result)
        assert fast is not None
        assert_same_ledger(fast, load_ledger(result.output))
    # The synonym a person typed stays as typed; predicted rows carry the category written.
    assert fast.df["category"].iloc[0] == "差旅"
    assert list(fast.df["category"].iloc[-4:-1]) == ["差旅费", "客户招待", "物流费"]


def test_classified_ledger_is_none_without_a_category_column(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["日期", "摘要", "金额"])
    ws.append([dt.date(2026, 3, 2), "出租车", 60])
    wb.save(tmp_path / "bare.xlsx")
    result = classify_workbook(tmp_path / "bare.xlsx", tmp_path / "out.xlsx")
    assert classified_ledger(result) is None
