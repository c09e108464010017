"""Reading real-looking ledgers: where the table is, what each row becomes, row numbers."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ledger_fixtures import CN_HEADER, EN_HEADER, chinese_ledger, replace_member, write_rows
from xl_expense.errors import LedgerNotFound, SettingsError, UnreadableWorkbook, UnsafeWorkbook, XlExpenseError
from xl_expense.io.ledger_reader import (
    ColumnRef,
    is_vertical_sum,
    load_ledger,
    read_ledger,
    sum_formula_rows,
)
from xl_expense.schema import ALL_COLUMNS


def _accounted(ledger, first: int, last: int) -> None:
    """Every data row below the header is in exactly one bucket: nothing vanishes."""
    seen = (ledger.df["row"].tolist() + ledger.rejected["row"].tolist() + ledger.totals_rows)
    assert len(seen) == len(set(seen))
    assert len(seen) + ledger.blank_rows == last - first + 1
    assert all(first <= r <= last for r in seen)


# ---------------------------------------------------------------------- the typical sheet

def test_chinese_ledger_header_under_merged_title(tmp_path: Path):
    ledger = load_ledger(chinese_ledger(tmp_path / "cn.xlsx"))
    assert (ledger.sheet, ledger.header_row, ledger.table_name) == ("费用明细", 4, None)
    assert {k: (v.header, v.letter) for k, v in ledger.columns.items()} == {
        "date": ("日期", "A"), "vendor": ("支出对象", "B"), "description": ("摘要", "C"),
        "amount": ("金额", "D"), "category": ("费用类别", "E")}
    df = ledger.df
    assert list(df.columns) == list(ALL_COLUMNS)
    assert df["row"].tolist() == [5, 6, 7, 8, 9, 14]
    assert df["amount"].tolist() == [1234.5, 88.0, 1200.0, -120.0, 35.5, 300.0]
    assert df["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-09"]
    assert df["vendor"].tolist() == ["海底捞", "滴滴出行", "中国移动", "京东", "全家", "如家"]
    assert df["description"].iloc[3] == "礼品 退货"  # double space folded
    assert df["person"].isna().all() and df["person"].iloc[0] is None
    assert (df["sheet"] == "费用明细").all()
    assert ledger.rejected.to_dict("records") == [
        {"sheet": "费用明细", "row": 11, "reason": "金额无法识别 / amount not a number: 'abc'"},
        {"sheet": "费用明细", "row": 12, "reason": "日期无法识别 / date unreadable: '三月七号'"},
        {"sheet": "费用明细", "row": 13, "reason": "金额为空 / amount missing"},
    ]
    assert ledger.totals_rows == [15, 16]
    assert ledger.blank_rows == 1
    _accounted(ledger, 5, 16)


def test_dtypes_follow_the_schema(tmp_path: Path):
    df = read_ledger(chinese_ledger(tmp_path / "cn.xlsx"))
    assert df["date"].dtype == "datetime64[ns]"
    assert df["amount"].dtype == np.float64
    assert df["row"].dtype == np.int64
    for column in ("category", "description", "vendor", "receipt", "sheet"):
        assert df[column].dtype == object


def test_english_headers_and_ids_as_text(tmp_path: Path):
    rows = [EN_HEADER + ["Receipt No"],
            [dt.datetime(2026, 1, 5), "Uber", "Client visit", 23.5, "Travel", "Alice", 12345],
            [dt.datetime(2026, 1, 6), "Hilton", "Hotel", "$1,200.00", "Lodging", "Bob", 98765.0]]
    ledger = load_ledger(write_rows(tmp_path / "en.xlsx", rows, sheet="Expenses"))
    df = ledger.df
    assert ledger.header_row == 1 and df["row"].tolist() == [2, 3]
    assert df["person"].tolist() == ["Alice", "Bob"]
    assert df["receipt"].tolist() == ["12345", "98765"]
    assert df["amount"].tolist() == [23.5, 1200.0]
    assert ledger.columns["receipt"] == ColumnRef("Receipt No", 6)


def test_excel_table_is_preferred_and_rows_are_excel_rows(tmp_path: Path):
    rows = [["报销人", "日期", "金额", "摘要"],
            ["张三", dt.date(2026, 2, 1), 100, "餐费"],
            ["李四", dt.date(2026, 2, 2), 200, "打车"]]
    path = write_rows(tmp_path / "t.xlsx", rows, sheet="明细", start="B3", table="费用表",
                      other_sheets={"说明": [["本表记录二月费用"], ["日期", "金额"]]})
    ledger = load_ledger(path)
    assert (ledger.table_name, ledger.sheet, ledger.header_row) == ("费用表", "明细", 3)
    assert ledger.df["row"].tolist() == [4, 5]
    assert ledger.df["person"].tolist() == ["张三", "李四"]
    assert ledger.columns["amount"] == ColumnRef("金额", 3)  # column D
    assert ledger.columns["amount"].letter == "D"


def test_sheet_starting_at_c5(tmp_path: Path):
    rows = [CN_HEADER, ["2026-03-01", "全家", "早餐", 12, "餐费"], [None] * 5,
            ["2026-03-02", "罗森", "午餐", 30, "餐费"]]
    ledger = load_ledger(write_rows(tmp_path / "c5.xlsx", rows, start="C5"))
    assert ledger.header_row == 5
    assert ledger.df["row"].tolist() == [6, 8]
    assert ledger.columns["date"].letter == "C" and ledger.columns["category"].letter == "G"
    assert ledger.blank_rows == 1


@pytest.mark.libreoffice
def test_xls_and_ods_starting_at_c5(tmp_path: Path):
    from libreoffice import convert  # skips the test when soffice is absent

    rows = [["费用明细"], [None], CN_HEADER, ["2026-03-01", "全家", "早餐", 12, "餐费"],
            ["2026-03-02", "罗森", "午餐", "（30）", "餐费"]]
    src = write_rows(tmp_path / "src.xlsx", rows, start="C5")
    for target in ("xls", "ods"):
        (out,) = convert(src, target, tmp_path / target)
        ledger = load_ledger(out)
        assert ledger.header_row == 7, target
        assert ledger.df["row"].tolist() == [8, 9], target
        assert ledger.df["amount"].tolist() == [12.0, -30.0], target
        assert ledger.columns["amount"].letter == "F", target


# ----------------------------------------------------------------------- amounts and dates

def test_every_amount_format_through_a_workbook(tmp_path: Path):
    amounts = [("¥1,234.50", 1234.5), ("1,234.50元", 1234.5), ("￥88", 88.0), ("$5", 5.0),
               ("£2.50", 2.5), ("１２０．５０", 120.5), ("(120.00)", -120.0), ("（120.00）", -120.0),
               ("-7", -7.0), (42, 42.0), (3.25, 3.25)]
    rows = [["日期", "金额"]] + [["2026-03-01", text] for text, _ in amounts]
    df = read_ledger(write_rows(tmp_path / "amounts.xlsx", rows))
    assert df["amount"].tolist() == [value for _, value in amounts]


@pytest.mark.parametrize("dayfirst, expected", [(False, "2026-05-03"), (True, "2026-03-05")])
def test_every_date_format_through_a_workbook(tmp_path: Path, dayfirst, expected):
    dates = [dt.date(2026, 3, 5), dt.datetime(2026, 3, 5, 9, 0), 46086, "2026/3/5", "2026-03-05",
             "2026.3.5", "2026年3月5日", "20260305", "5/3/2026"]
    rows = [["日期", "金额"]] + [[value, 1] for value in dates]
    df = read_ledger(write_rows(tmp_path / "dates.xlsx", rows), dayfirst=dayfirst)
    assert df["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-03-05"] * 8 + [expected]


def test_missing_date_is_kept_as_nat_but_unreadable_date_is_rejected(tmp_path: Path):
    rows = [["日期", "金额", "摘要"], [None, 5, "无日期"], ["昨天", 6, "坏日期"], ["abc", "x", "都坏"]]
    ledger = load_ledger(write_rows(tmp_path / "d.xlsx", rows))
    assert ledger.df["row"].tolist() == [2] and pd.isna(ledger.df["date"].iloc[0])
    assert ledger.rejected["reason"].tolist() == [
        "日期无法识别 / date unreadable: '昨天'",
        "金额无法识别 / amount not a number: 'x'; 日期无法识别 / date unreadable: 'abc'"]


# ------------------------------------------------------------------------------- totals

def test_totals_by_label_and_by_sum_formula(tmp_path: Path):
    rows = [["日期", "摘要", "金额"],
            ["2026-03-01", "餐费", 10],
            ["2026-03-02", "Total UK Ltd 加油", 20],   # a vendor, not a totals row
            [None, None, "=SUM(C2:C3)"],             # unlabeled subtotal: only the formula says so
            [None, "本月合计", 30],                    # loose label, no date
            ["2026-03-03", "合计", 30],                # exact label even with a date
            ["2026-03-04", "Total", "=SUM(C2:C6)"]]
    ledger = load_ledger(write_rows(tmp_path / "totals.xlsx", rows))
    assert ledger.df["row"].tolist() == [2, 3]
    assert ledger.totals_rows == [4, 5, 6, 7]
    assert ledger.rejected.empty


def test_vertical_sum_detection():
    assert is_vertical_sum(b"SUM(D2:D11)")
    assert is_vertical_sum(b"sum($D$2:$D$11)*1")
    assert is_vertical_sum(b"SUBTOTAL(9,D5:D20)")
    assert is_vertical_sum(b"SUM(D:D)")
    assert not is_vertical_sum(b"SUM(E5:G5)")     # an amount made of its parts on one row
    assert not is_vertical_sum(b"D2*1.06")
    assert not is_vertical_sum(b"SUMPRODUCT(D2:D4,E2:E4)")


def test_sum_formula_rows_reads_shared_formulas_and_prefixed_tags(tmp_path: Path):
    sheet = (b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
             b'<x:row r="9"><x:c r="C9"><x:f t="shared" ref="C9:D9" si="0">SUM(C2:C8)</x:f><x:v>5</x:v></x:c>'
             b'<x:c r="D9"><x:f t="shared" si="0"/><x:v>7</x:v></x:c></x:row>'
             b'<x:row r="10"><x:c r="D10"><x:f>SUM(A10:C10)</x:f><x:v>1</x:v></x:c></x:row>'
             b'</x:sheetData></x:worksheet>')
    path = tmp_path / "f.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    assert sum_formula_rows(path, "xl/worksheets/sheet1.xml", 3) == {9}   # column D
    assert sum_formula_rows(path, "xl/worksheets/sheet1.xml", 2) == {9}   # column C
    assert sum_formula_rows(path, "xl/worksheets/sheet1.xml", 0) == set()


# ------------------------------------------------------------------- blank and bad rows

def test_blank_rows_are_skipped_silently(tmp_path: Path):
    rows = [["日期", "金额"], ["2026-03-01", 1], [None, None], ["  ", "　"], ["2026-03-02", 2], [None, None]]
    ledger = load_ledger(write_rows(tmp_path / "b.xlsx", rows))
    assert ledger.df["row"].tolist() == [2, 5]
    assert ledger.rejected.empty and ledger.totals_rows == []
    assert ledger.blank_rows == 2  # row 6 is past the last used row; rows 3 and 4 are blank


# ------------------------------------------------------------------------------- --map

def test_map_overrides_and_renames_the_amount(tmp_path: Path):
    rows = [["日期", "金额", "实报金额", "经手"], ["2026-03-01", 100, 90, "王五"]]
    path = write_rows(tmp_path / "m.xlsx", rows)
    assert read_ledger(path)["amount"].tolist() == [100.0]
    ledger = load_ledger(path, mapping={"amount": "实报金额", "person": "经手"})
    assert ledger.df["amount"].tolist() == [90.0]
    assert ledger.df["person"].tolist() == ["王五"]
    assert ledger.columns["amount"] == ColumnRef("实报金额", 2)


def test_map_finds_a_table_with_unknown_headers(tmp_path: Path):
    rows = [["Buchungstag", "Betrag", "Zweck"], ["05.03.2026", "12,00", "Taxi"], ["06.03.2026", "7", "Bus"]]
    path = write_rows(tmp_path / "de.xlsx", rows)
    with pytest.raises(LedgerNotFound):
        load_ledger(path)
    ledger = load_ledger(path, mapping={"date": "Buchungstag", "amount": "Betrag"}, dayfirst=True)
    assert ledger.df["amount"].tolist() == [7.0]
    assert ledger.rejected["reason"].tolist() == ["金额无法识别 / amount not a number: '12,00'"]
    assert ledger.df["date"].iloc[0] == pd.Timestamp("2026-03-06")


def test_map_errors_name_the_headers(tmp_path: Path):
    path = write_rows(tmp_path / "m.xlsx", [["日期", "金额", "摘要"], ["2026-03-01", 1, "x"]])
    with pytest.raises(LedgerNotFound) as info:
        load_ledger(path, mapping={"amount": "实付金额"})
    message = str(info.value)
    assert "--map amount=实付金额: no column headed '实付金额'" in message
    assert "row 1 of sheet '费用明细'" in message
    assert "use one of the headers there: '日期', '金额', '摘要'" in message
    assert message.startswith(str(path))
    with pytest.raises(SettingsError, match="unknown column name.*: amout — use one of: date, amount"):
        load_ledger(path, mapping={"amout": "金额"})


# ----------------------------------------------------------------- sheets and not found

def test_best_sheet_is_chosen_and_sheet_restricts(tmp_path: Path):
    other = {"封面": [["2026年销售维护费"]], "汇总": [["部门", "金额"], ["华东", 100]]}
    path = write_rows(tmp_path / "s.xlsx", [["日期", "报销人", "金额", "费用类别"], ["2026-03-01", "张三", 5, "餐费"]],
                      sheet="明细", other_sheets=other)
    assert load_ledger(path).sheet == "明细"
    assert load_ledger(path, sheet="汇总").df["department"].tolist() == ["华东"]
    with pytest.raises(LedgerNotFound, match="no sheet named '没有'.*use one of: 封面, 汇总, 明细"):
        load_ledger(path, sheet="没有")


def test_audit_output_sheets_are_not_taken_for_the_ledger(tmp_path: Path):
    """The findings sheet has dates, amounts and people in an Excel Table; a re-run on an
    audited workbook must still read the ledger."""
    findings = [["编号", "日期", "报销人", "金额", "规则"], ["DUP-1", "2026-03-01", "张三", 999, "duplicate"]]
    path = write_rows(tmp_path / "audited.xlsx", findings, sheet="审计明细", table="XE_Findings",
                      other_sheets={"明细": [["日期", "金额"], ["2026-03-01", 5]]})
    ledger = load_ledger(path)
    assert (ledger.sheet, ledger.table_name, ledger.df["amount"].tolist()) == ("明细", None, [5.0])
    assert load_ledger(path, sheet="审计明细").table_name == "XE_Findings"


def test_no_table_found_says_how_to_fix(tmp_path: Path):
    path = write_rows(tmp_path / "n.xlsx", [["hello", "world"], [1, 2]], sheet="Sheet1")
    with pytest.raises(LedgerNotFound) as info:
        load_ledger(path)
    assert str(info.value) == (
        f"{path}: no expense table found in sheets 'Sheet1' (no header row with a date or amount "
        "column in the first 30 rows) — name the sheet with --sheet and the columns with "
        "--map date=… amount=…")


def test_unsafe_and_unreadable_files(tmp_path: Path):
    good = chinese_ledger(tmp_path / "cn.xlsx")
    bomb = replace_member(good, tmp_path / "bomb.xlsx", "xl/sharedStrings.xml",
                          b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><sst/>')
    with pytest.raises(UnsafeWorkbook):
        load_ledger(bomb)
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(UnreadableWorkbook, match="truncated"):
        load_ledger(cut)


# ------------------------------------------------------------------------------- csv

def test_csv_in_gbk_with_preamble(tmp_path: Path):
    text = ("华东区费用导出\n导出时间:2026-04-01\n\n"
            "日期,支出对象,摘要,金额,费用类别\n"
            "2026-03-01,海底捞,宴请,\"￥1,234.50\",业务招待费\n"
            "2026/3/2,滴滴,打车,(20),交通费\n"
            ",,,,\n"
            "合计,,,\"1,214.50\",\n")
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gbk"))
    ledger = load_ledger(path)
    assert ledger.header_row == 4
    assert ledger.df["amount"].tolist() == [1234.5, -20.0]
    assert ledger.df["vendor"].tolist() == ["海底捞", "滴滴"]
    assert ledger.df["row"].tolist() == [5, 6]
    assert ledger.totals_rows == [8] and ledger.blank_rows == 1


def test_csv_utf8_bom_tab_padded_fields(tmp_path: Path):
    text = "交易时间,交易对方,金额(元),日期\n2026-03-01 10:00:00\t,\"全家\t\",¥12.50\t,2026-03-01\t\n"
    path = tmp_path / "bom.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    ledger = load_ledger(path)
    assert ledger.df["vendor"].tolist() == ["全家"]
    assert ledger.df["amount"].tolist() == [12.5]
    assert ledger.df["date"].tolist() == [pd.Timestamp("2026-03-01")]


def test_progress_is_reported(tmp_path: Path, monkeypatch):
    from xl_expense.io import ledger_reader

    monkeypatch.setattr(ledger_reader, "CHUNK_ROWS", 2)
    rows = [["日期", "金额"]] + [["2026-03-01", i] for i in range(5)]
    calls = []
    ledger = load_ledger(write_rows(tmp_path / "p.xlsx", rows), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert ledger.df["amount"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ledger.df["row"].tolist() == [2, 3, 4, 5, 6]


# ------------------------------------------------------------------------ real files

def test_real_birmingham_xls(shared_data: Path):
    path = shared_data / "messy/birmingham_raw/purchasecardtransactionsapril2014.xls"
    ledger = load_ledger(path)
    assert (ledger.sheet, ledger.header_row) == ("APR 2014", 1)
    assert len(ledger.df) == 2690 and ledger.rejected.empty and ledger.totals_rows == []
    first = ledger.df.iloc[0]
    assert (first["date"], first["amount"], first["vendor"], first["row"]) == (
        pd.Timestamp("2014-04-29"), 52.32, "shell kings 587", 2)
    assert ledger.df["amount"].sum() == pytest.approx(526760.25)


def test_real_chinese_bank_export(shared_data: Path):
    ledger = load_ledger(shared_data / "messy/chinese_exports/citic_credit_example-citic-records.xls")
    assert ledger.header_row == 2 and len(ledger.df) == 13
    assert ledger.df["date"].notna().all()


@pytest.mark.corpus
def test_every_corpus_file_reads_or_fails_clearly(corpus_dir: Path):
    """No traceback on any real workbook: a ledger, or an XlExpenseError with a fix."""
    read = 0
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.suffix.lower() == ".csv":
            continue
        try:
            ledger = load_ledger(path)
            read += 1
            assert list(ledger.df.columns) == list(ALL_COLUMNS)
        except XlExpenseError as exc:
            assert exc.fix and str(exc).startswith(str(path))
    assert read >= 15
