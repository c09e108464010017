"""The per-file fixed costs of convert and classify, cut without changing a single result.

A batch converts and classifies thousands of thousand-row workbooks, so what each file costs
regardless of its size matters: opening the workbook (calamine parses the shared strings on
every open), parsing each sheet (a whole sheet on every ``get_sheet_by_name``), and the many
small pandas calls of the parsers. These tests pin down that

* a workbook is opened once and each sheet parsed once for profile detection and the spine's
  reader (``read_detected`` + ``load_ledger`` share the book and the parsed sheets), and
  classify opens its input once for settings, categories/rules and ledger;
* the faster paths give exactly what the plain ones gave: known answers written out here,
  and the old pandas formulations kept in the tests as references.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import unicodedata
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from xl_expense import classify_workflow
from xl_expense.convert import _date_style, convert_file, read_any
from xl_expense.core import classify_ledger as cl
from xl_expense.core import normalize
from xl_expense.errors import UnreadableWorkbook
from xl_expense.io import classify_config, ledger_reader
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.profiles import open_book, read_detected, read_with_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from make_ledger import write_big_ledger


def _fxiaoke(path: Path) -> Path:
    """A Fxiaoke expense export (the fxiaoke_expense profile reads it), with a notes sheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "费用"
    sheet.append(["费用明细导出 2025-04"])
    sheet.append(["费用编号", "发生日期", "费用类型", "费用金额", "报销人", "所属部门", "客户名称", "商机名称",
                  "费用说明", "生命状态"])
    sheet.append(["FY-001", "2025-04-01", "业务招待费", 1200, "王芳", "华东销售部", "上海某某科技", "二期项目",
                  "客户晚宴", "正常"])
    sheet.append(["FY-002", "2025/04/02", "差旅费", "¥356.50", "王芳", "华东销售部", "上海某某科技", None,
                  "高铁", "正常"])
    sheet.append([None, None, None, 1556.5, None, None, None, None, "合计", None])
    book.create_sheet("备注")["A1"] = "导出说明"
    book.save(path)
    return path


@pytest.fixture()
def big(tmp_path: Path) -> Path:
    """A generated 200-row ledger: title row, Chinese header, a 合计 row at the end."""
    return write_big_ledger(tmp_path / "big.xlsx", 200, seed=3)


# ---------------------------------------------------------------------------------------------
# one open, one parse per sheet
# ---------------------------------------------------------------------------------------------

def test_detection_and_the_reader_share_the_book_and_parse_each_sheet_once(big, monkeypatch):
    parses = []
    real = ledger_reader._get_sheet
    monkeypatch.setattr(ledger_reader, "_get_sheet", lambda book, name: parses.append(name) or real(book, name))
    book = open_book(big)
    try:
        sheets: dict = {}
        assert read_detected(big, book=book, sheets=sheets) is None  # a hand-kept ledger: no profile
        assert list(sheets) == ["费用明细"]  # detection parsed the sheet ...
        shared = load_ledger(big, book=book, sheets=sheets)
    finally:
        book.close()
    assert parses == []  # ... and the reader did not parse it again
    alone = load_ledger(big)
    assert parses == ["费用明细"]
    pd.testing.assert_frame_equal(shared.df, alone.df, check_exact=True)
    assert (shared.totals_rows, shared.header_row, shared.data_rows) == (alone.totals_rows, alone.header_row,
                                                                          alone.data_rows) == ([203], 2, (3, 203))
    assert len(shared.df) == 200


def test_read_any_gives_what_detection_then_reading_gave(big, tmp_path):
    pd.testing.assert_frame_equal(read_any(big).df, load_ledger(big).df, check_exact=True)
    export = _fxiaoke(tmp_path / "fxiaoke.xlsx")
    ours, theirs = read_any(export), read_with_profile(export, "fxiaoke_expense")
    assert ours.profile == "fxiaoke_expense"
    pd.testing.assert_frame_equal(ours.df, theirs.df, check_exact=True)
    pd.testing.assert_frame_equal(ours.excluded, theirs.excluded, check_exact=True)
    assert ours.df["amount"].tolist() == [1200.0, 356.5] and ours.totals_rows == [5]


def test_read_detected_keeps_every_parsed_worksheet_for_the_next_reader(tmp_path):
    export = _fxiaoke(tmp_path / "fxiaoke.xlsx")
    book = open_book(export)
    try:
        sheets: dict = {}
        ledger = read_detected(export, book=book, sheets=sheets)
    finally:
        book.close()
    assert ledger is not None and ledger.profile == "fxiaoke_expense"
    assert sorted(sheets) == ["备注", "费用"]


def test_a_text_file_has_no_book_and_reads_as_before(tmp_path):
    path = tmp_path / "zoho.csv"
    path.write_text("Expense Date,Merchant Name,Category Name,Expense Amount,Report Name\n"
                    "2025-04-01,Hotel,Travel,1280.00,April\n", encoding="utf-8")
    assert open_book(path) is None


def test_a_damaged_workbook_gives_the_detection_error_with_the_path(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"not a zip at all" * 8)
    with pytest.raises(UnreadableWorkbook) as info:
        read_any(path)
    assert info.value.path == str(path)


def test_convert_carries_the_settings_sheet_from_the_shared_book(big, tmp_path):
    book = openpyxl.load_workbook(big)
    settings = book.create_sheet("设置")
    settings.append(["设置项", "值"])
    settings.append(["lang", "en"])
    book.save(big)
    result = convert_file(big, tmp_path / "out")
    names = openpyxl.load_workbook(result.output, read_only=True).sheetnames
    assert names == ["费用明细", "未导入行", "导入信息", "设置"]
    assert result.counts == {"rows": 200, "rejected": 0, "excluded": 0, "totals": 1}


def test_classify_opens_its_input_once_for_settings_rules_and_ledger(big, tmp_path, monkeypatch):
    opened, books = [], []
    real_open = ledger_reader.open_workbook  # what shared_workbook opens with
    monkeypatch.setattr(ledger_reader, "open_workbook", lambda path: opened.append(path) or real_open(path))
    real_rows = classify_config.named_sheets_rows
    monkeypatch.setattr(classify_config, "named_sheets_rows",
                        lambda path, wanted, book=None: books.append(book) or real_rows(path, wanted, book))
    result = classify_workflow.classify_workbook(big, tmp_path / "c.xlsx")
    assert opened == [big] and len(books) == 1 and books[0] is not None
    assert result.counts["manual"] == 200


# ---------------------------------------------------------------------------------------------
# the parsers: fast paths, same answers
# ---------------------------------------------------------------------------------------------

def _old_tidy(values: list[str]) -> list[str | None]:
    """The pandas formulation the plain-Python one replaced."""
    text = pd.Series(values, dtype=object).str.replace(normalize._WS, " ", regex=True).str.strip()
    return [None if v == "" else v for v in text.tolist()]


TRICKY = ["  a \t b  ", "\u3000客户\u3000晚宴\u3000", "x\u00a0y", "zero\u200bwidth", "\u200b", " ", "",
          "合 计", "Total：", "ΑΣ Σ", "İ", "①②", "a\x00b", "\x1c\x1dz\x1e\x1f", "line\nbreak\r\n"]


def test_tidy_text_is_what_the_pandas_methods_gave():
    assert normalize._tidy(pd.Series(TRICKY, dtype=object)).tolist() == _old_tidy(TRICKY)
    assert normalize._tidy(pd.Series(["  a \t b  ", "zero\u200bwidth", " "], dtype=object)).tolist() == [
        "a b", "zero width", None]


def test_marker_search_over_a_whole_column_matches_the_value_by_value_one():
    values = [*TRICKY, "华东区三月份费用合计", "年会 total 预算", "x" * 61 + "合计", "ＳＵＢＴＯＴＡＬ", "小\u3000计"]
    expected = [normalize._mentions_marker(v) for v in values]
    assert normalize._marker_mentions(values).tolist() == expected
    assert [v for v, hit in zip(values, expected) if hit] == ["合 计", "Total：", "华东区三月份费用合计", "年会 total 预算",
                                                             "ＳＵＢＴＯＴＡＬ", "小\u3000计"]


def test_a_totals_label_in_a_date_column_is_unreadable_without_the_patterns():
    values = pd.Series([dt.date(2025, 3, 5), "合计", "2025/3/6", "三月七号", None], dtype=object)
    dates, reasons = normalize.parse_dates(values)
    assert dates.tolist()[:3] == [pd.Timestamp("2025-03-05"), pd.NaT, pd.Timestamp("2025-03-06")]
    assert reasons.tolist() == [None, "日期无法识别 / date unreadable: '合计'", None,
                                "日期无法识别 / date unreadable: '三月七号'", None]


def test_reasons_quote_and_shorten_the_cell():
    amounts, reasons = normalize.parse_amounts(pd.Series(["abc", 5.0, "x" * 45, True], dtype=object))
    assert np.isnan(amounts[0]) and amounts[1] == 5.0
    assert reasons.tolist() == ["金额无法识别 / amount not a number: 'abc'", None,
                                "金额无法识别 / amount not a number: '" + "x" * 39 + "…'",
                                "金额无法识别 / amount not a number: 'True'"]


def test_clean_text_of_a_mixed_column():
    values = pd.Series([12345678.0, 1.5, "  R-1  ", None, dt.date(2025, 1, 2), True, 7, np.float64(2.25),
                        float("inf"), ""], dtype=object)
    assert normalize.clean_text(values).tolist() == ["12345678", "1.5", "R-1", None, "2025-01-02", "TRUE", "7",
                                                     "2.25", "inf", None]


def test_date_style():
    assert _date_style(pd.Series(pd.to_datetime(["2025-01-01", None]))) == "date"
    assert _date_style(pd.Series(pd.to_datetime(["1950-01-01 12:00", "2025-01-01 00:00"]))) == "datetime"
    assert _date_style(pd.Series([], dtype="datetime64[ns]")) == "date"
    assert _date_style(pd.Series(["2025-01-01 08:00"], dtype=object)) == "datetime"


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------

def _ledger() -> pd.DataFrame:
    return pd.DataFrame({
        "description": pd.Series(["出租车 客户现场", " 晚宴\t", None, "x"], dtype=object),
        "vendor": pd.Series(["滴滴出行", "海底捞", "顺丰", None], dtype=object),
        "customer": pd.Series([None, "ACME", "ACME", "B"], dtype=object),
        "amount": [60.5, 2800.0, np.nan, 1e20],
        "category": pd.Series(["差旅", "客户招待", None, "神秘"], dtype=object),
    })


def test_label_rows_known_answer_with_nan_for_empty_cells():
    table, unknown = cl.label_rows(_ledger())
    assert unknown == {"神秘": 1}
    assert table["category"].tolist()[:2] == ["差旅费", "客户招待"] and table["category"].tolist()[3] == "神秘"
    # Empty cells are NaN (float), as the table has always held them.
    assert [type(v) for v in table["source"]] == [str, str, float, str]
    assert table["rule"].isna().all() and table["rule"].dtype == object
    assert table["confidence"].tolist()[:2] == [1.0, 1.0] and table["review"].tolist() == [False] * 4


def test_training_fingerprint_is_unchanged():
    table, _ = cl.label_rows(_ledger())
    # The digest the pandas formulation gave for this very ledger (a stored model stays valid).
    assert cl.training_fingerprint(_ledger(), table) == "38c5f6e4c4386124ca9ca88c19c9f2664644ed3878c1b46e632fb4a5060f8db4"
    text = ["" if pd.isna(v) else str(v).strip() for v in _ledger()["description"].iloc[[0, 1, 3]]]
    assert text == ["出租车 客户现场", "晚宴", "x"]
    assert hashlib.sha256(b"x").hexdigest() != cl.training_fingerprint(_ledger(), table)


def test_classification_counts_known_answer_and_the_crosstab_reference():
    table, _ = cl.label_rows(_ledger())
    counts = cl.classification_counts(table)
    assert counts.to_dict("index") == {"": {"manual": 0, "rule": 0, "model": 0, "total": 1},
                                      "客户招待": {"manual": 1, "rule": 0, "model": 0, "total": 1},
                                      "差旅费": {"manual": 1, "rule": 0, "model": 0, "total": 1},
                                      "神秘": {"manual": 1, "rule": 0, "model": 0, "total": 1}}
    reference = cl._crosstab_counts(cl._blank_missing(table["category"]), cl._blank_missing(table["source"]))
    pd.testing.assert_frame_equal(counts, reference, check_exact=True)
    assert counts.index.dtype == reference.index.dtype and counts.columns.dtype == reference.columns.dtype
    mixed = pd.DataFrame({"category": pd.Series(["b", "a", "b", None, "a", "b"], dtype=object),
                          "source": pd.Series(["model", "rule", "manual", None, "rule", "model"], dtype=object)})
    counts = cl.classification_counts(mixed)
    assert counts.index.tolist() == ["b", "a", ""]
    assert counts.to_numpy().tolist() == [[1, 0, 2, 3], [0, 2, 0, 2], [0, 0, 0, 1]]
    pd.testing.assert_frame_equal(counts, cl._crosstab_counts(cl._blank_missing(mixed["category"]),
                                                              cl._blank_missing(mixed["source"])))


def test_no_fingerprint_when_there_is_no_model_to_check_or_store(big, tmp_path, monkeypatch):
    calls = []
    real = classify_workflow.training_fingerprint
    monkeypatch.setattr(classify_workflow, "training_fingerprint", lambda *a: calls.append(1) or real(*a))
    result = classify_workflow.classify_workbook(big, tmp_path / "c.xlsx")  # every row labelled: no model
    assert calls == [] and result.model_path is None


def test_unicode_facts_the_fast_paths_rely_on():
    # ''.join(split()) and the regex drop the same characters; NUL survives NFKC and lower().
    for code in (0x20, 0x3000, 0xA0, 0x1C, 0x85, 0x2028, 0x200B):
        ch = chr(code)
        assert (normalize._LABEL_SPACES.fullmatch(ch) is not None) == ch.isspace()
    assert unicodedata.normalize("NFKC", "a\x00\u0301b").lower() == "a\x00\u0301b"


def test_alias_contains_scan_known_answers():
    known = normalize._match_known_alias.__wrapped__  # uncached
    assert known("报销金额(元)") == ("amount", False)
    assert known("prototype") == (None, False)  # 'type' only as a whole word
    assert known("expense type x") == ("category", False)
    assert known("客户2531有限公司") == ("customer", False)
    assert known("金额") == ("amount", True)
    assert known("x" * 41 + "金额") == (None, False)
