"""Amounts, dates, totals rows and header detection as people really type them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.normalize import (
    clean_text,
    find_header,
    is_total_row,
    on_uniques,
    parse_amounts,
    parse_dates,
    score_header_row,
)


def _obj(values) -> pd.Series:
    return pd.Series(values, dtype=object)


# ------------------------------------------------------------------------------- amounts

@pytest.mark.parametrize("text, expected", [
    (12.5, 12.5),
    (3, 3.0),
    ("¥1,234.50", 1234.5),
    ("1,234.50元", 1234.5),
    ("￥88", 88.0),
    ("$1,000", 1000.0),
    ("£3.50", 3.5),
    ("€7", 7.0),
    ("RMB 80", 80.0),
    ("CNY80.5", 80.5),
    ("人民币100元", 100.0),
    ("１２３４．５０", 1234.5),          # full-width digits and point
    ("１，２３４．５０", 1234.5),         # full-width comma
    ("(120.00)", -120.0),              # accounting negative
    ("（120.00）", -120.0),             # full-width parentheses
    ("(¥1,200.00)", -1200.0),
    ("-5", -5.0),
    ("5-", -5.0),                      # trailing minus from old systems
    ("¥-5", -5.0),
    ("−3", -3.0),                      # U+2212 minus sign
    (" 7 ", 7.0),
    ("1 234", 1234.0),                 # space as thousands separator
    ("+8", 8.0),
    (".5", 0.5),
])
def test_parse_amounts_accepts_what_people_type(text, expected):
    amounts, reasons = parse_amounts(_obj([text]))
    assert amounts.dtype == np.float64
    assert amounts.iloc[0] == pytest.approx(expected)
    assert pd.isna(reasons.iloc[0])


@pytest.mark.parametrize("text", ["abc", "12,5", "1,23,4", "(-5)", "1.2.3", "--5", "五十"])
def test_parse_amounts_reports_unreadable_text(text):
    amounts, reasons = parse_amounts(_obj([text]))
    assert np.isnan(amounts.iloc[0])
    assert reasons.iloc[0] == f"金额无法识别 / amount not a number: '{text}'"


def test_parse_amounts_empty_is_nan_without_reason_and_dates_are_errors():
    amounts, reasons = parse_amounts(_obj(["", None, "   ", dt.date(2026, 1, 1), True]))
    assert amounts.isna().all()
    assert reasons.isna().tolist() == [True, True, True, False, False]


def test_parse_amounts_fast_path_keeps_numbers_and_index():
    amounts, reasons = parse_amounts(pd.Series([1, 2, 3], index=[10, 11, 12]))
    assert amounts.tolist() == [1.0, 2.0, 3.0]
    assert amounts.index.tolist() == [10, 11, 12]
    assert reasons.isna().all()


def test_parse_amounts_repeated_text_is_parsed_once_per_value():
    values = _obj(["¥1,234.50", "(5)", "x"] * 1000)
    amounts, reasons = parse_amounts(values)
    assert amounts.iloc[:3].tolist()[:2] == [1234.5, -5.0]
    assert amounts.iloc[3:6].tolist()[:2] == [1234.5, -5.0]
    assert reasons.notna().sum() == 1000


# --------------------------------------------------------------------------------- dates

@pytest.mark.parametrize("value, expected", [
    (dt.date(2026, 3, 5), "2026-03-05"),
    (dt.datetime(2026, 3, 5, 10, 30), "2026-03-05 10:30:00"),
    (pd.Timestamp("2026-03-05"), "2026-03-05"),
    (46086, "2026-03-05"),             # Excel serial (1900 date system)
    (46086.5, "2026-03-05 12:00:00"),  # serial with a time of day
    ("46086", "2026-03-05"),           # serial stored as text
    ("2026/3/5", "2026-03-05"),
    ("2026-03-05", "2026-03-05"),
    ("2026.3.5", "2026-03-05"),
    ("2026年3月5日", "2026-03-05"),
    ("2026 年 3 月 5 日", "2026-03-05"),
    ("２０２６年３月５日", "2026-03-05"),  # full width
    ("20260305", "2026-03-05"),
    (20260305, "2026-03-05"),
    ("3/5/2026", "2026-03-05"),        # month first by default
    ("25/3/2026", "2026-03-25"),       # only one reading is a date
    ("2026-03-05 12:01:02", "2026-03-05 12:01:02"),
    ("05-MAR-2026", "2026-03-05"),
    ("5 March 2026", "2026-03-05"),
    ("Mar 5, 2026", "2026-03-05"),
    ("01-APR-14", "2014-04-01"),
])
def test_parse_dates_accepts_what_people_type(value, expected):
    dates, reasons = parse_dates(_obj([value]))
    assert dates.dtype == "datetime64[ns]"
    assert dates.iloc[0] == pd.Timestamp(expected)
    assert pd.isna(reasons.iloc[0])


def test_parse_dates_dayfirst():
    dates, _ = parse_dates(_obj(["5/3/2026", "25/3/2026", "3/25/2026"]), dayfirst=True)
    assert dates.tolist() == [pd.Timestamp("2026-03-05"), pd.Timestamp("2026-03-25"),
                              pd.Timestamp("2026-03-25")]
    dates, _ = parse_dates(_obj(["5/3/2026"]), dayfirst=False)
    assert dates.iloc[0] == pd.Timestamp("2026-05-03")


@pytest.mark.parametrize("value", ["abc", "2026-02-30", "三月七号", 12, 99999, "13/13/2026",
                                   dt.time(10, 0), "0026/3/5"])
def test_parse_dates_reports_unreadable(value):
    dates, reasons = parse_dates(_obj([value]))
    assert pd.isna(dates.iloc[0])
    assert reasons.iloc[0].startswith("日期无法识别 / date unreadable: '")


def test_parse_dates_empty_is_nat_without_reason():
    dates, reasons = parse_dates(_obj(["", None, "  "]))
    assert dates.isna().all() and reasons.isna().all()


def test_parse_dates_datetime_column_passes_through():
    col = pd.Series(pd.to_datetime(["2026-01-01", None]))
    dates, reasons = parse_dates(col)
    assert dates.iloc[0] == pd.Timestamp("2026-01-01") and pd.isna(dates.iloc[1])
    assert reasons.isna().all()


# -------------------------------------------------------------------------------- totals

def _totals(cells, date_missing=True):
    labels = pd.DataFrame({0: _obj(cells)})
    return is_total_row(labels, pd.Series([date_missing] * len(cells))).tolist()


@pytest.mark.parametrize("label", ["合计", "合 计", "合　计", "小计：", "总计", "Total", "TOTAL:",
                                   "Grand Total", "Subtotal", "共计", "Sum"])
def test_exact_total_labels_flag_even_with_a_date(label):
    assert _totals([label], date_missing=False) == [True]


@pytest.mark.parametrize("label", ["合计金额", "本月合计", "三月份小计", "Total for March", "合计(元)",
                                   "Total: Q1"])
def test_loose_total_labels_flag_rows_without_a_date(label):
    assert _totals([label], date_missing=True) == [True]
    assert _totals([label], date_missing=False) == [False]


@pytest.mark.parametrize("label", ["Total UK Ltd", "TotalEnergies", "Summer party", "年会 total 预算说明",
                                   "小计算器一台与客户拜访途中购买的办公用品", "the total cost of lunch"])
def test_descriptions_and_vendor_names_are_not_totals(label):
    assert _totals([label], date_missing=False) == [False]


def test_totals_from_sum_formula_and_non_text_cells():
    labels = pd.DataFrame({0: _obj([1.0, "x", None]), 1: _obj([None, 3.0, "合计"])})
    flagged = is_total_row(labels, pd.Series([False, False, False]),
                           sum_formula=pd.Series([True, False, False]))
    assert flagged.tolist() == [True, False, True]


# -------------------------------------------------------------------------------- header

def test_score_header_row_chinese_and_english():
    score, mapping = score_header_row(["日期", "支出对象", "摘要", "金额", "费用类别"])
    assert mapping == {"date": 0, "vendor": 1, "description": 2, "amount": 3, "category": 4}
    assert score > 0
    _, mapping = score_header_row(["Date", "Merchant", "Purpose", "Amount", "Expense Type", "Employee"])
    assert mapping == {"date": 0, "vendor": 1, "description": 2, "amount": 3, "category": 4, "person": 5}


def test_score_header_row_contains_match_and_exact_wins():
    _, mapping = score_header_row(["报销金额(元)", "发生日期", "报销人姓名"])
    assert mapping == {"amount": 0, "date": 1, "person": 2}
    # An exact '金额' beats the contains match '实际报销金额说明' for the same canonical column.
    _, mapping = score_header_row(["日期", "实际报销金额说明", "金额"])
    assert mapping["amount"] == 2


@pytest.mark.parametrize("row", [["华东区销售维护费明细"], ["日期"], ["金额", 12.5],
                                 ["备注", "说明"], []])
def test_score_header_row_rejects_non_headers(row):
    assert score_header_row(row) == (0.0, {})


def test_find_header_skips_title_rows_and_notes():
    rows = [["2026年3月 销售维护费", "", ""], ["", "", ""], ["单位：元", "", ""],
            ["日期", "金额", "摘要"], [dt.date(2026, 3, 1), 5.0, "x"]]
    match = find_header(rows)
    assert (match.row, match.n_rows, match.mapping) == (3, 1, {"date": 0, "amount": 1, "description": 2})


def test_find_header_two_row_group_header():
    rows = [["基本信息", "", "费用", ""], ["报销人", "部门", "日期", "金额"], ["张三", "销售一部", "2026-03-01", "5"]]
    match = find_header(rows)
    assert match.row == 0 and match.n_rows == 2
    assert match.mapping == {"person": 0, "department": 1, "date": 2, "amount": 3}
    assert match.labels == ["基本信息/报销人", "基本信息/部门", "费用/日期", "费用/金额"]


def test_find_header_banner_above_header_is_not_a_group_header():
    rows = [["------ 微信支付账单明细列表 ------", "", ""], ["交易时间", "交易对方", "金额(元)"]]
    match = find_header(rows)
    assert match.row == 1 and match.n_rows == 1


def test_find_header_user_alias_and_nothing_found():
    assert find_header([["a", "b"], [1, 2]]) is None
    match = find_header([["Buchungstag", "Betrag"]], extra_aliases={"Betrag": "amount", "Buchungstag": "date"})
    assert match.mapping == {"date": 0, "amount": 1}


# ---------------------------------------------------------------------------------- text

def test_clean_text_ids_whitespace_and_empty():
    out = clean_text(_obj([12345.0, " 海底捞\u3000 火锅 ", "", None, 1.5, dt.date(2026, 3, 5), True, 7]))
    assert out.tolist() == ["12345", "海底捞 火锅", None, None, "1.5", "2026-03-05", "TRUE", "7"]
    assert out.dtype == object


def test_on_uniques_matches_direct_application():
    values = _obj(["a ", None, "b", "a "] * 10)
    direct = values.str.strip()
    assert on_uniques(values, lambda s: s.str.strip()).tolist()[:4] == ["a", None, "b", "a"]
    assert direct.iloc[0] == "a"


def test_find_header_group_label_over_debit_credit():
    rows = [["日期", "摘要", "金额", ""], ["", "", "借方", "贷方"], ["2026-03-01", "餐费", "88", ""]]
    match = find_header(rows)
    assert (match.row, match.n_rows) == (0, 2)
    assert match.mapping == {"date": 0, "description": 1, "amount": 2}
    assert match.labels == ["日期", "摘要", "金额/借方", "金额/贷方"]


def test_clean_text_keeps_none_on_the_factorised_path():
    """Many repeats take the distinct-values path; empty must still be None, not NaN."""
    out = clean_text(_obj(["张三 ", "", "张三", "  "] * 50))
    assert out.iloc[:4].tolist() == ["张三", None, "张三", None]
    assert out.iloc[1] is None
