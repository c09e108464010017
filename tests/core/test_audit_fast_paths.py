"""The audit's fast paths give exactly what the plain computation gives.

Speed-ups that skip work (preview counts from the rules' conditions, receipts recognised
without folding, the forest scored elsewhere, text columns factorised once) are only
acceptable if the answers are the same; each test here compares the two ways.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.audit import RULES
from xl_expense.core.audit.anomaly import (
    forest_scores,
)
from xl_expense.core.audit.preview import _counter, _no_receipt, threshold_preview
from xl_expense.core.audit.registry import (
    example_ledger,
    prepare_ledger,
    receipt_numbers,
)
from xl_expense.core.normalize import clean_text, is_total_row, total_label_rows
from xl_expense.core.settings import Settings


def _random_ledger(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Amounts clustered at round values and near the limit, receipts typed every which way."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(7.0, 1.2, n), 2)
    planted = rng.random(n) < 0.15
    amount[planted] = rng.choice([1000.0, 2000.0, 4990.0, 5000.0, 4800.0, 500.0, -300.0], planted.sum())
    near = rng.random(n) < 0.05
    amount[near] = rng.uniform(2300, 5100, near.sum()).round(2)
    receipts = np.array(["INV20260001", "无", "N/A", "-", "", None, "inv-0001", "12345", "1234", "null", "FP 889 001",
                         "０", "ABCDE", "abcd"], dtype=object)
    rows = []
    for i in range(n):
        rows.append({
            "date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "person": f"员工{i % 23}", "vendor": f"商户{i % 17}", "category": ("差旅费", "客户招待", "通讯费")[i % 3],
            "card": None if i % 4 else f"6222-{i % 5}",
            "amount": float(amount[i]),
            "receipt": receipts[rng.integers(len(receipts))] if i % 3 else f"R{i:06d}",
        })
    return prepare_ledger(example_ledger(rows))


SETTINGS = Settings(as_of=pd.Timestamp("2026-12-31").date())


@pytest.mark.parametrize("rule_id,setting,values", [
    ("below_threshold", "approval_limit", (2500.0, 5000.0, 7500.0)),
    ("below_threshold", "below_threshold_pct", (0.02, 0.05, 0.10)),
    ("round_amount", "round_multiple", (100.0, 500.0, 1000.0, 0.0)),
    ("round_amount", "round_min", (0.0, 1000.0, 3000.0)),
    ("missing_receipt", "receipt_threshold", (500.0, 1000.0, 5000.0)),
    ("split_transaction", "approval_limit", (2500.0, 5000.0)),
    ("split_transaction", "split_window_days", (1, 3, 5)),
])
def test_preview_counts_equal_the_rules_own(rule_id, setting, values):
    ledger = _random_ledger()
    count = _counter(ledger, rule_id)
    for value in values:
        settings = dataclasses.replace(SETTINGS, **{setting: value})
        assert count(settings) == RULES[rule_id].func(ledger, settings).index.nunique(), (setting, value)


def test_preview_of_the_random_ledger_is_not_trivial():
    preview = threshold_preview(_random_ledger(), SETTINGS).set_index(["rule", "setting", "value"])["flagged"]
    assert preview.loc[("below_threshold", "approval_limit", 5000.0)] > 0
    assert preview.loc[("round_amount", "round_multiple", 1000.0)] > 0
    assert preview.loc[("missing_receipt", "receipt_threshold", 1000.0)] > 0


def test_receipts_recognised_without_folding_match_the_folded_ones():
    receipt = pd.Series(["INV20260001", "无", "N/A", "-", "", None, "inv-0001", "12345", "1234", "NULL", "null ",
                         "FP 889 001", "０", "ABCDE", "ab-cd-e", 12345.0, float("nan"), "ＮＯＮＥ", "Straße1"],
                        dtype=object)
    assert _no_receipt(receipt).tolist() == receipt_numbers(receipt).isna().tolist()


def test_forest_scores_on_a_large_matrix_screen_and_stay_deterministic(monkeypatch):
    from xl_expense.core.audit import anomaly

    monkeypatch.setattr(anomaly, "SCREEN_ABOVE", 500)
    monkeypatch.setattr(anomaly, "SCREEN_MIN", 100)
    X = np.random.default_rng(0).normal(size=(2000, len(anomaly.FEATURES)))
    first, again = forest_scores(X, 5, 0.01), forest_scores(X, 5, 0.01)
    np.testing.assert_array_equal(first, again)
    assert np.isfinite(first).sum() == 100  # only the screened candidates are scored


def test_factorised_text_cleaning_equals_the_plain_one():
    cells = np.array(["张三 ", "", "张三", "  ", None, " 海底捞\u3000 火锅 ", float("nan"), "李四"] * 30, dtype=object)
    plain = clean_text(pd.Series(cells, dtype=object))
    fast = clean_text(pd.Series(cells, dtype=object), pd.factorize(cells, use_na_sentinel=True))
    assert fast.tolist() == plain.tolist()
    assert fast.iloc[:8].tolist() == ["张三", None, "张三", None, None, "海底捞 火锅", None, "李四"]


def test_total_labels_with_and_without_factorisations():
    columns = [np.array(["2026-03-01", "合计", None, "本月合计", "2026-03-02"], dtype=object),
               np.array([10.0, 30.0, 5.0, 40.0, 1.0], dtype=object),         # numbers only: skipped
               np.array(["餐费", "", "小计", "Total UK Ltd", "Total"], dtype=object)]
    date_missing = np.array([False, True, True, True, False])
    expected = [False, True, True, True, True]
    assert total_label_rows(columns, date_missing).tolist() == expected
    factorized = {i: pd.factorize(c, use_na_sentinel=True) for i, c in enumerate(columns)}
    assert total_label_rows(columns, date_missing, factorized).tolist() == expected
    labels = pd.DataFrame(dict(enumerate(columns)))
    assert is_total_row(labels, pd.Series(date_missing)).tolist() == expected


@pytest.mark.parametrize("values", [
    ["INV001", "inv001", "Inv001", "12345", "0000123"],                        # all plain: one joined upper()
    ["INV001", "", "na", "NONE", "null", "00", "0", None, "000", "nonex"],     # plain placeholders
    ["A-1", "a1", "无", 5.0, "ｉｎｖ１", "ß1", "x\nNA", None, "N/A", "nil"],       # mixed: folded one by one
    [], [None, None], [""],
])
def test_receipt_fast_path_folds_like_one_value_at_a_time(values):
    from xl_expense.core.audit.registry import _fold_receipt

    receipt = pd.Series(values, dtype=object)
    assert receipt_numbers(receipt).tolist() == [_fold_receipt(v) for v in values]
    if all(v is None or isinstance(v, str) for v in values):
        as_str = pd.Series(values, dtype="str")  # pandas' own string dtype, as the reader may give it
        assert receipt_numbers(as_str).tolist() == [_fold_receipt(v) for v in values]


def test_empty_findings_are_a_fresh_copy_each_time():
    from xl_expense.core.audit import empty_findings

    first = empty_findings()
    first["extra"] = 1
    second = empty_findings()
    assert "extra" not in second.columns and second.empty
    assert str(second["row"].dtype) == "Int64" and str(second["date"].dtype) == "datetime64[ns]"
