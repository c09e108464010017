"""The Excel worksheet functions (udfs/xl_expense_udfs.py), called as plain Python.

Off Windows ``@xw.func`` and ``@xw.arg`` are pass-throughs, so each ``XE_`` function is
called here with what xlwings hands it: a scalar for one cell, a flat list for a single
column, a list of row lists (header first) for a table, ``None`` for an empty cell. The last
tests go through xlwings' own Office.js conversion layer in a separate process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

UDFS = Path(__file__).resolve().parents[1] / "udfs"
# As Excel imports it: the folder on PYTHONPATH, the module named in "UDF Modules".
sys.path.insert(0, str(UDFS))

import xl_expense_udfs as udfs

from tests.factories import make_budget
from xl_expense.core.audit import run_audit
from xl_expense.core.audit.anomaly import _outlier_sample, anomaly_scores
from xl_expense.core.audit.registry import example_ledger, prepare_ledger
from xl_expense.core.budget_monitor import monitor_budget
from xl_expense.core.settings import Settings

XE_NAMES = ["XE_ANOMALY_SCORE", "XE_AUDIT_FLAGS", "XE_BENFORD", "XE_BUDGET_STATUS", "XE_CATEGORY",
            "XE_CLASSIFY", "XE_DUPLICATES", "XE_FORECAST"]


@pytest.fixture(autouse=True)
def _empty_model_cache():
    udfs.clear_model_cache()
    yield
    udfs.clear_model_cache()


def grid(records: list[dict], header: list[str]) -> list[list]:
    """Rows as xlwings passes a range: header row, then one list per row (None = empty cell)."""
    return [header] + [[r.get(h) for h in header] for r in records]


# --------------------------------------------------------------------------- the module

def test_every_function_is_registered_callable_and_documented():
    names = sorted(n for n in dir(udfs) if n.startswith("XE_"))
    assert names == XE_NAMES
    for name in names:
        func = getattr(udfs, name)
        assert callable(func) and func.__name__ == name  # xw.func and the error wrapper keep it a function
        doc = func.__doc__
        # Excel's wizard shows 255 characters: the whole description must fit, in both languages.
        assert len(doc) <= 255, (name, len(doc))
        assert any("\u4e00" <= ch <= "\u9fff" for ch in doc) and any(ch.isascii() and ch.isalpha() for ch in doc)


# --------------------------------------------------------------------------- XE_CATEGORY

@pytest.mark.parametrize("description, vendor, expected", [
    ("北京出差住宿", None, "差旅费"),            # synonym 出差
    ("样品寄送", "顺丰快递", "物流费"),           # vendor holds the keyword 快递
    ("Courier to customer site", None, "物流费"),  # English synonym, case folded
    ("办公快递费", None, "物流费"),               # 快递费 (3) beats 办公 (2): the longest keyword wins
    ("快递办公用品", None, "办公费"),             # 办公用品 (4) beats 快递 (2)
    ("往返南京机票", None, ""),                 # no taxonomy word: blank, not a guess
    (None, None, ""),
])
def test_category_without_training_uses_taxonomy_keywords(description, vendor, expected):
    assert udfs.XE_CATEGORY(description, vendor) == expected


def test_category_spills_a_column_for_a_column():
    assert udfs.XE_CATEGORY(["培训", "话费充值", "x"]) == [["培训费"], ["通讯费"], [""]]


def test_category_with_user_rules_applies_them_first():
    rules = [["关键词", "类别"], ["机票", "差旅费"], ["培训", "客户招待"]]
    assert udfs.XE_CATEGORY(["往返南京机票", "产品培训"], None, None, None, rules) == [["差旅费"], ["客户招待"]]


def test_category_rejects_vendor_of_another_size():
    assert udfs.XE_CATEGORY(["a", "b", "c"], ["v1", "v2"]) == (
        "#XE! vendor 与摘要大小不同 / vendor and description differ in size — "
        "选择同样行数的区域 / select ranges with the same number of cells")


# --------------------------------------------------------------------------- XE_CLASSIFY

def labelled_table() -> list[list]:
    """Twelve labelled rows in three clear kinds, three to predict, a blank and a 合计 row."""
    kinds = {"差旅费": ("出差高铁票", "12306铁路", 500.0), "通讯费": ("手机话费", "中国移动", 200.0),
             "客户招待": ("招待客户晚餐", "海底捞", 800.0)}
    records = []
    for category, (desc, vendor, amount) in kinds.items():
        for i in range(4):
            records.append({"摘要": f"{desc}{i}", "供应商": vendor, "金额": amount + i, "费用类别": category})
    records += [{"摘要": "出差高铁票9", "供应商": "12306铁路", "金额": 510.0},
                {"摘要": "手机话费9", "供应商": "中国移动", "金额": 199.0},
                {"摘要": "招待客户晚餐9", "供应商": "海底捞", "金额": "八百"},  # unreadable amount: still classified
                {},
                {"摘要": "合计", "金额": 9999.0}]
    return grid(records, ["摘要", "供应商", "金额", "费用类别"])


def test_classify_keeps_labels_and_predicts_the_rest_line_by_line():
    out = udfs.XE_CLASSIFY(labelled_table())
    assert out[0] == ["类别", "置信度"]
    assert len(out) == 18  # header + 17 lines: the spill lines up with the range
    assert out[1] == ["差旅费", 1.0] and out[12] == ["客户招待", 1.0]
    assert [line[0] for line in out[13:16]] == ["差旅费", "通讯费", "客户招待"]
    assert all(0.34 < line[1] < 1.0 for line in out[13:16])  # a probability, not a certainty
    assert out[16] == ["", ""] and out[17] == ["", ""]  # blank row, 合计 row


def test_classify_speaks_english_for_english_headers():
    table = labelled_table()
    table[0] = ["Description", "Vendor", "Amount", "Category"]
    assert udfs.XE_CLASSIFY(table)[0] == ["category", "confidence"]


def test_classify_reuses_the_trained_model_until_a_label_changes(monkeypatch):
    calls = []
    real = udfs.train_on_labels
    monkeypatch.setattr(udfs, "train_on_labels", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    table = labelled_table()
    first = udfs.XE_CLASSIFY(table)
    assert udfs.XE_CLASSIFY(table) == first and len(calls) == 1  # recalculation: no retraining
    table[14][0] = "手机话费充值"  # an unlabelled row edited: still the same training set
    udfs.XE_CLASSIFY(table)
    assert len(calls) == 1
    # XE_CATEGORY trained on the same table shares the cached model.
    assert udfs.XE_CATEGORY(["出差高铁票7", None], ["12306铁路", None], [505, None], table) == [["差旅费"], [""]]
    assert len(calls) == 1
    table[1][3] = "通讯费"  # a label corrected: the model must learn again
    udfs.XE_CLASSIFY(table)
    assert len(calls) == 2


def test_classify_errors_are_short_texts():
    assert udfs.XE_CLASSIFY([["摘要", "金额"], ["x", 1]]) == (
        "#XE! 费用类别列缺失 / category column missing — "
        "选中含表头的整个区域，表头写 费用类别 或 category / select the table with its header row")
    assert udfs.XE_CLASSIFY("摘要") == (
        "#XE! 区域没有数据行 / the range has no data rows — "
        "选中表头和数据行 / select the header row and the rows below it")
    few = [["摘要", "费用类别"], ["a", "差旅费"], ["b", "差旅费"], ["c", None]]
    assert udfs.XE_CLASSIFY(few).startswith("#XE! only 1 category has at least 2 labelled rows")


def test_unexpected_failures_are_short_texts_too(monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(udfs, "label_rows", boom)
    assert udfs.XE_CLASSIFY(labelled_table()) == "#XE! 内部错误 / internal error (ValueError): boom"


# --------------------------------------------------------------------------- reading a table

def test_table_reading_uses_core_parsers_and_keeps_every_line():
    table = [["日期", "金额（元）", "报销人"],
             ["2025年3月5日", "¥1,234.50", "张三"],
             [45722, "（120.00）", "李四"],           # Excel serial, accounting negative
             ["2025-03-07", "abc", "王五"],
             [None, None, None],
             ["合计", 1114.5, None],
             [None, None, None]]                    # a generous selection: trailing blanks are dropped
    data = udfs.read_table(table, ("amount",))
    assert data.lang == "zh" and data.n_lines == 5
    assert data.ledger["amount"].tolist() == [1234.5, -120.0]
    assert data.ledger["date"].tolist() == [pd.Timestamp("2025-03-05"), pd.Timestamp("2025-03-06")]
    assert data.ledger["row"].tolist() == [2, 3]  # range rows, header = 1
    assert data.line.tolist() == [0, 1]
    assert data.notes == ["", "", "金额无法识别 / amount not a number: 'abc'", "", ""]


# --------------------------------------------------------------------------- audit functions

def outlier_table() -> list[list]:
    return grid(_outlier_sample(), ["date", "person", "category", "vendor", "amount"])


def test_anomaly_score_matches_core_and_tops_the_planted_claim():
    table = outlier_table()
    out = udfs.XE_ANOMALY_SCORE(table)
    assert out[0] == ["anomaly score"] and len(out) == len(table)
    scores = [line[0] for line in out[1:]]
    assert scores.index(max(scores)) == len(scores) - 1  # the ¥10,000 phone bill
    expected = anomaly_scores(prepare_ledger(example_ledger(_outlier_sample())), Settings(lang="en"))["score"]
    assert scores == expected.round(4).tolist()


def test_anomaly_score_needs_fifty_rows():
    assert udfs.XE_ANOMALY_SCORE(outlier_table()[:11]) == (
        "#XE! 至少需要 50 行正数金额 / needs at least 50 rows with a positive amount — 现有 10 行 / found 10")


def duplicate_table() -> list[list]:
    a = {"日期": "2025-03-03", "报销人": "张三", "供应商": "海底捞", "金额": 880.0, "费用类别": "客户招待"}
    return grid([a, {**a, "金额": 120.0}, a, {**a, "日期": "2025-03-05"}, {**a, "金额": -50.0}],
                ["日期", "报销人", "供应商", "金额", "费用类别"])


def test_audit_flags_lists_rule_ids_per_row_as_the_audit_finds_them():
    settings = [["参数", "值"], ["基准日", "2025-12-31"]]
    out = udfs.XE_AUDIT_FLAGS(duplicate_table(), settings)
    assert out == [["审计规则"], [""], [""], ["duplicate"], ["near_duplicate"], ["negative_amount"]]
    # Same answer as the audit itself on that ledger.
    ledger = udfs.read_table(duplicate_table(), ("amount",)).ledger
    findings = run_audit(ledger, Settings(as_of=dt.date(2025, 12, 31)))
    assert sorted(findings.loc[findings["row"].notna(), "rule"]) == ["duplicate", "near_duplicate", "negative_amount"]


def test_audit_flags_settings_range_changes_the_thresholds():
    # Limit 1,000: the same-day claims to one vendor (880 + 120 + 880) now look split.
    settings = [["基准日", "2025-12-31"], ["审批限额", 1000], ["停用规则", "duplicate,near_duplicate"]]
    out = udfs.XE_AUDIT_FLAGS(duplicate_table(), settings)
    assert out[1:] == [["split_transaction"]] * 4 + [["negative_amount"]]
    assert udfs.XE_AUDIT_FLAGS(duplicate_table(), [["停用规则", "nope"]]).startswith(
        "#XE! disabled_rules names unknown rule(s): nope")


def test_duplicates_names_the_earlier_row():
    out = udfs.XE_DUPLICATES(duplicate_table())
    assert out[:3] == [["重复检查"], [""], [""]]
    assert out[3] == ["重复报销: 与 本表 第 2 行 的日期、报销人、商户、金额完全相同（2025-03-03 张三 海底捞 ¥880.00）"]
    assert out[4] == ["疑似重复: 与 本表 第 2 行（2025-03-03）的报销人、商户、金额 ¥880.00 相同，仅相隔 2 天"]
    assert out[5] == [""]


def test_duplicates_need_a_date_column():
    assert udfs.XE_DUPLICATES([["金额"], [1]]).startswith("#XE! 日期列缺失 / date column missing")


# --------------------------------------------------------------------------- budget and forecast

@pytest.mark.parametrize("actual, expected", [(799.0, "正常"), (800.0, "预警"), (1000.0, "预警"),
                                              (1000.01, "超支"), (None, "")])
def test_budget_status_thresholds(actual, expected):
    assert udfs.XE_BUDGET_STATUS(actual, 1000) == expected


def test_budget_status_columns_options_and_errors():
    assert udfs.XE_BUDGET_STATUS([100, 950, 1200], [1000, 1000, 1000], 0.9, 1.1, "en") == [
        ["OK"], ["Warning"], ["Over budget"]]
    assert udfs.XE_BUDGET_STATUS("¥1,200", "1,000") == "超支"
    assert udfs.XE_BUDGET_STATUS(1, 1, 0.9, 0.5).startswith("#XE! warn_pct 0.9 must be above 0 and at most stop_pct 0.5")
    assert udfs.XE_BUDGET_STATUS(1, 1, None, None, "fr") == (
        "#XE! lang 应为 zh 或 en / lang must be zh or en: 'fr' — 输入 zh 或 en / type zh or en")


def test_forecast_is_the_alerts_sheets_run_rate():
    dates = ["2025-01-10", "2025-02-20", dt.datetime(2025, 3, 31), None, "2024-12-31"]
    amounts = [1000, "¥2,000", 650, 999, 5000]  # the last two: no date, and before the period
    # 3,650 spent in the 90 days to 31 March → 3,650 / 90 × 365.
    assert udfs.XE_FORECAST(dates, amounts, "2025-12-31") == 14802.78
    budget = make_budget({("差旅费", "销售部"): 1000.0})
    ledger = pd.DataFrame({"date": pd.to_datetime(dates[:3]), "amount": [1000.0, 2000.0, 650.0],
                           "category": "差旅费", "department": "销售部"})
    alerts = monitor_budget(budget, ledger, as_of=dt.date(2025, 3, 31), year=2025)
    assert alerts.loc[0, "forecast_run_rate"] == 14802.78


def test_forecast_to_a_quarter_and_its_errors():
    # Q1 from 1 January: 3,000 in the 31 days to 31 January → 3,000 / 31 × 90.
    assert udfs.XE_FORECAST(["2025-01-05", "2025-01-31"], [1000, 2000], "2025-03-31") == 8709.68
    # From 1 March: only the March amount counts, 500 in 10 days → × 31.
    assert udfs.XE_FORECAST(["2025-02-05", "2025-03-10"], [1000, 500], "2025-03-31", "2025-03-01") == 1550.0
    assert udfs.XE_FORECAST(["2025-01-05"], [1, 2], "2025-12-31").startswith("#XE! 日期与金额大小不同")
    assert udfs.XE_FORECAST(["2025-01-05"], [1], "明年").startswith("#XE! period_end 不是日期 / period_end is not a date")


# --------------------------------------------------------------------------- Benford

def test_benford_spills_the_digit_table_with_mad_and_conformity():
    amounts = ["金额"] + [10.0] * 3 + [25.0] * 2 + [300.0] + [5.0]  # a header, and 5.0 is under 10: not tested
    out = udfs.XE_BENFORD(amounts, "en")
    assert out[0] == ["first digit", "count", "actual", "expected"]
    assert out[1] == [1, 3, 0.5, 0.301]
    assert out[2] == [2, 2, 0.3333, 0.1761]
    assert out[3] == [3, 1, 0.1667, 0.1249]
    assert out[9] == [9, 0, 0.0, 0.0458]
    assert out[10] == ["MAD", 0.0884, "", ""]  # mean |actual − expected| over digits 1–9
    assert out[11] == ["conformity", "Nonconforming (under 500 amounts: indicative only)", "", ""]
    assert out[12] == ["amounts tested", 6, "", ""]
    assert udfs.XE_BENFORD([1, 2]) == "#XE! 没有 ≥10 的金额 / no amounts of 10 or more — 选择金额列 / select the amount column"


# --------------------------------------------------------------------------- through xlwings

_THROUGH_XLWINGS = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import xlwings as xw
from xlwings import server
import xl_expense_udfs as module

def call(name, *args):
    data = {"func_name": name, "args": list(args), "version": xw.__version__, "client": "Office.js",
            "runtime": "1.4", "culture_info_name": "en-US", "date_format": "yyyy-mm-dd"}
    return asyncio.run(server.custom_functions_call(data, module))

meta = server.custom_functions_meta(module)
table = [["日期", "报销人", "供应商", "金额"], [45719, "张三", "海底捞", 880], [45719, "张三", "海底捞", 880]]
print(json.dumps({
    "meta": {f["name"]: [f["description"], [p["name"] for p in f["parameters"]]] for f in meta["functions"]},
    "category": call("XE_CATEGORY", [["北京出差住宿"], ["顺丰快递"]], None, None, None, None),
    "duplicates": call("XE_DUPLICATES", table, None),
    "forecast": call("XE_FORECAST", [[45658], [45688]], [[100], [200]], [["2025-12-31"]], None),
}, ensure_ascii=False))
"""


@pytest.mark.xlwings_license
def test_functions_through_xlwings_conversion_layer():
    """xlwings' server runtime converts 2-D ranges, serial dates and empty optionals as Excel sends them.

    xlwings' server runtime is a licensed engine: this test runs only where
    ``XLWINGS_LICENSE_KEY`` is set (CI sets the noncommercial key); the product itself (the
    classic add-in) needs none.
    """
    env = {**os.environ, "XLWINGS_ON_SERVER": "true"}
    done = subprocess.run([sys.executable, "-c", _THROUGH_XLWINGS, str(UDFS)], env=env, capture_output=True, check=False,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(result["meta"]) == XE_NAMES
    for name, (description, params) in result["meta"].items():
        assert description == getattr(udfs, name).__doc__
    assert result["meta"]["XE_CATEGORY"][1] == ["description", "vendor", "amount", "training", "rules"]
    assert result["category"] == [["差旅费"], ["物流费"]]
    assert result["duplicates"][2][0].startswith("重复报销: 与 本表 第 2 行")
    assert result["forecast"] == [[3532.26]]  # 300 in the 31 days to 31 January, × 365
