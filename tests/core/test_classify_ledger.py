"""Classifying a whole ledger: manual beats rules beats the model; our own guesses are re-done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.classify_ledger import (
    classification_counts,
    classify_ledger,
    label_rows,
    person_decided,
    training_fingerprint,
)
from xl_expense.core.classify_rules import Rule


def _ledger(n_each: int = 6) -> pd.DataFrame:
    """Taxi rows (差旅费) and dinner rows (客户招待), labelled, plus unlabelled ones of each."""
    rows = []
    for i in range(n_each):
        rows.append({"description": f"出租车 机场 {i}", "vendor": "滴滴出行", "amount": 80.0 + i, "category": "差旅费"})
        rows.append({"description": f"客户晚宴 {i}", "vendor": "海底捞", "amount": 900.0 + i, "category": "客户招待"})
    rows += [
        {"description": "出租车 去客户", "vendor": "滴滴出行", "amount": 95.0, "category": None},
        {"description": "项目交流晚宴", "vendor": "海底捞", "amount": 1200.0, "category": ""},
        {"description": "顺丰快递 备件", "vendor": "顺丰速运", "amount": 60.0, "category": None},
    ]
    return pd.DataFrame(rows)


def test_manual_rule_model_order_and_sources():
    ledger = _ledger()
    # A rule for the courier row, and one that would contradict a person's label: it must lose.
    rules = (Rule(pattern="快递", category="物流费", name="courier"),
             Rule(pattern="晚宴 0", category="其他", name="would-overwrite-manual"))
    result = classify_ledger(ledger, rules=rules, cv=False)
    table = result.table
    assert table.loc[0, "source"] == "manual" and table.loc[0, "category"] == "差旅费"
    assert table.loc[1, "source"] == "manual" and table.loc[1, "category"] == "客户招待"  # rule lost to a person
    assert table.loc[14, ["category", "source", "rule"]].tolist() == ["物流费", "rule", "courier"]
    assert table.loc[14, "confidence"] == 1.0
    assert table.loc[12, ["category", "source"]].tolist() == ["差旅费", "model"]
    assert table.loc[13, ["category", "source"]].tolist() == ["客户招待", "model"]
    assert 0.0 < table.loc[12, "confidence"] < 1.0
    assert table.loc[12, "suggested"] == "差旅费" and pd.isna(table.loc[0, "suggested"])
    # The one rule row is a category with a single example: too few to learn, and reported so.
    assert result.training.n_labelled == 12 and result.training.skipped == {"物流费": 1}


def test_synonyms_of_manual_categories_are_normalised_and_unknown_ones_reported():
    ledger = pd.DataFrame({"description": ["a", "b", "c"], "category": ["差旅", "Travel", "差旅废"]})
    table, unknown = label_rows(ledger)
    assert table["category"].tolist() == ["差旅费", "差旅费", "差旅废"]
    assert unknown == {"差旅废": 1}


def test_review_flag_follows_min_confidence():
    ledger = _ledger()
    low = classify_ledger(ledger, min_confidence=0.0, cv=False).table
    high = classify_ledger(ledger, min_confidence=1.0, cv=False).table
    model_rows = low["source"].eq("model")
    assert model_rows.sum() == 3
    assert not low["review"].any()
    assert high.loc[model_rows, "review"].all() and not high.loc[~model_rows, "review"].any()


def test_own_earlier_guesses_are_reclassified_but_corrections_are_manual():
    ledger = _ledger()
    ledger.loc[12, "category"] = "差旅费"   # our earlier guess, unchanged
    ledger.loc[13, "category"] = "市场活动"  # our earlier guess was 客户招待; a person corrected it
    prior_source = pd.Series(None, index=ledger.index, dtype=object)
    prior_suggested = pd.Series(None, index=ledger.index, dtype=object)
    prior_source[[12, 13]] = "model"
    prior_suggested[[12, 13]] = ["差旅费", "客户招待"]
    decided = person_decided(ledger["category"], prior_source, prior_suggested)
    assert decided.tolist() == [True] * 12 + [False, True, False]
    table = classify_ledger(ledger, prior_source=prior_source, prior_suggested=prior_suggested, cv=False).table
    assert table.loc[13, ["category", "source"]].tolist() == ["市场活动", "manual"]
    assert table.loc[12, "source"] == "model"


def test_no_labels_leaves_rows_for_review_with_a_note():
    ledger = pd.DataFrame({"description": ["出租车", "晚宴"], "amount": [10.0, 20.0], "category": [None, None]})
    result = classify_ledger(ledger, cv=False)
    assert result.training is None
    assert result.table["source"].isna().all() and result.table["review"].all()
    assert "labelled rows" in result.note


def test_fingerprint_changes_with_labels_and_text_only():
    ledger = _ledger()
    table, _ = label_rows(ledger)
    first = training_fingerprint(ledger, table)
    assert training_fingerprint(ledger.copy(), table.copy()) == first
    unlabelled_edit = ledger.copy()
    unlabelled_edit.loc[12, "description"] = "changed"  # not a training row
    assert training_fingerprint(unlabelled_edit, label_rows(unlabelled_edit)[0]) == first
    relabelled = ledger.copy()
    relabelled.loc[0, "category"] = "客户招待"
    assert training_fingerprint(relabelled, label_rows(relabelled)[0]) != first


def test_counts_per_category_and_source():
    table = pd.DataFrame({"category": ["差旅费", "差旅费", "物流费", None],
                          "source": ["manual", "model", "rule", None],
                          "confidence": [1.0, 0.7, 1.0, np.nan], "review": [False, False, False, True]})
    counts = classification_counts(table)
    assert counts.loc["差旅费"].tolist() == [1, 0, 1, 2]
    assert counts.loc["物流费"].tolist() == [0, 1, 0, 1]
    assert counts.loc[""].tolist() == [0, 0, 0, 1]


def test_min_confidence_is_checked():
    with pytest.raises(ValueError, match="min_confidence"):
        classify_ledger(_ledger(), min_confidence=1.5)
