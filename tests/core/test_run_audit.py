"""run_audit as a whole: columns, order, determinism, stable ids, languages, preview."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from xl_expense import schema
from xl_expense.core.audit import RULES, empty_findings, run_audit, threshold_preview
from xl_expense.core.audit.ids import occurrences
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.settings import Settings

SETTINGS = Settings(as_of=pd.Timestamp("2026-12-31").date(), policy_limits={"客户招待": 3000.0})


def _ledger():
    rows = [
        {"date": "2026-03-03", "person": "张三", "department": "华东", "vendor": "海底捞", "category": "客户招待",
         "amount": 880.0, "receipt": "A1"},
        {"date": "2026-03-03", "person": "张三", "department": "华东", "vendor": "海底捞", "category": "客户招待",
         "amount": 880.0, "receipt": "A2"},
        {"date": "2026-03-07", "person": "李四", "department": "华南", "vendor": "京东", "category": "办公用品",
         "amount": 4900.0, "receipt": "B1"},
        {"date": "2026-03-09", "person": "李四", "department": "华南", "vendor": "京东", "category": "办公用品",
         "amount": 1200.0},
        {"date": "2027-02-01", "person": None, "vendor": "国航", "category": "差旅费", "amount": 3000.0,
         "receipt": "C1"},
        {"date": "2026-04-01", "person": "王五", "vendor": "礼品店", "category": "客户招待", "amount": 3500.0,
         "receipt": "D1"},
        {"date": "2026-04-02", "person": "王五", "vendor": "退款", "category": "客户招待", "amount": -200.0},
    ]
    return example_ledger(rows)


def test_findings_shape_and_content():
    findings = run_audit(_ledger(), SETTINGS)
    assert tuple(findings.columns) == schema.FINDING_COLUMNS
    assert findings["row"].dtype == "Int64"
    got = set(zip(findings["rule"], findings["row"]))
    assert {("duplicate", 3), ("split_transaction", 4), ("split_transaction", 5), ("below_threshold", 4),
            ("weekend_holiday", 4), ("missing_receipt", 5), ("future_date", 6), ("missing_field", 6),
            ("round_amount", 6), ("over_policy_limit", 7), ("negative_amount", 8)} <= got
    dup = findings[findings["rule"] == "duplicate"].iloc[0]
    assert (dup["sheet"], dup["person"], dup["department"], dup["vendor"], dup["category"], dup["amount"]) == \
        ("Sheet1", "张三", "华东", "海底捞", "客户招待", 880.0)
    assert dup["date"] == pd.Timestamp("2026-03-03")
    assert dup["finding_id"].startswith("DUP-") and len(dup["finding_id"]) == 14


def test_sorted_by_severity_rule_sheet_row():
    findings = run_audit(_ledger(), SETTINGS)
    severity = findings["severity"].map({"error": 0, "warning": 1, "info": 2})
    assert severity.is_monotonic_increasing
    rule_rank = findings["rule"].map({r: i for i, r in enumerate(RULES)})
    for _, group in findings.groupby(severity):
        ranks = rule_rank[group.index]
        assert ranks.is_monotonic_increasing


def test_same_input_same_findings():
    first = run_audit(_ledger(), SETTINGS)
    second = run_audit(_ledger(), SETTINGS)
    pd.testing.assert_frame_equal(first, second)
    assert findings_ids_unique(first)


def findings_ids_unique(findings):
    return findings["finding_id"].is_unique


def test_ids_survive_rows_inserted_above():
    ledger = _ledger()
    before = run_audit(ledger, SETTINGS)
    inserted = {c: None for c in schema.ALL_COLUMNS}
    inserted.update({"date": pd.Timestamp("2026-03-04"), "amount": 12.5, "person": "新人", "category": "交通费",
                     "sheet": "Sheet1", "row": 2})
    shifted = ledger.assign(row=ledger["row"] + 1)
    after = run_audit(pd.concat([pd.DataFrame([inserted]), shifted], ignore_index=True), SETTINGS)
    old = before.set_index("finding_id")[["rule", "row"]]
    new = after.set_index("finding_id")[["rule", "row"]]
    common = old.index.intersection(new.index)
    assert len(common) == len(old)  # every old finding keeps its id…
    assert (new.loc[common, "row"] == old.loc[common, "row"] + 1).all()  # …at its new row


def test_identical_rows_get_distinct_ids():
    row = {"date": "2026-03-03", "person": "张三", "vendor": "滴滴", "amount": 56.0}
    ledger = example_ledger([row, row, row])
    assert occurrences(ledger).tolist() == [0, 1, 2]
    findings = run_audit(ledger, SETTINGS)
    dups = findings[findings["rule"] == "duplicate"]
    assert dups["row"].tolist() == [3, 4] and dups["finding_id"].is_unique


def test_group_findings_have_no_sheet_or_row():
    amounts = np.round(np.random.default_rng(0).uniform(100, 999, 800), 2)
    ledger = example_ledger([{"date": "2026-03-03", "person": "李四", "amount": float(a)} for a in amounts])
    findings = run_audit(ledger, dataclasses.replace(SETTINGS, disabled_rules=("isolation_forest",)))
    benford = findings[findings["rule"] == "benford"]
    assert len(benford) == 2
    assert benford["row"].isna().all() and benford["sheet"].isna().all()
    assert benford["amount"].iloc[0] == pytest.approx(amounts.sum())
    assert benford["finding_id"].str.startswith("BEN-").all()
    again = run_audit(ledger.iloc[::-1], dataclasses.replace(SETTINGS, disabled_rules=("isolation_forest",)))
    assert sorted(again[again["rule"] == "benford"]["finding_id"]) == sorted(benford["finding_id"])


@pytest.mark.parametrize("lang,word", [("zh", "审批限额"), ("en", "approval limit")])
def test_messages_follow_the_language(lang, word):
    findings = run_audit(_ledger(), dataclasses.replace(SETTINGS, lang=lang))
    split = findings[findings["rule"] == "split_transaction"]["message"].iloc[0]
    assert word in split


def test_ids_do_not_depend_on_language():
    zh = run_audit(_ledger(), SETTINGS)
    en = run_audit(_ledger(), dataclasses.replace(SETTINGS, lang="en"))
    assert zh["finding_id"].tolist() == en["finding_id"].tolist()


def test_empty_ledger_and_index_is_ignored():
    empty = run_audit(_ledger().iloc[0:0], SETTINGS)
    assert empty.empty and tuple(empty.columns) == schema.FINDING_COLUMNS
    pd.testing.assert_frame_equal(empty, empty_findings())
    reindexed = _ledger().set_axis(range(100, 107))
    pd.testing.assert_frame_equal(run_audit(reindexed, SETTINGS), run_audit(_ledger(), SETTINGS))


def test_timings_per_rule():
    timings = {}
    run_audit(_ledger(), SETTINGS, timings=timings)
    assert list(timings) == list(RULES)


def test_threshold_preview():
    preview = threshold_preview(_ledger(), SETTINGS)
    assert preview.columns.tolist() == ["rule", "setting", "value", "flagged", "current"]
    current = preview[preview["current"]]
    assert (current.groupby(["rule", "setting"]).size() == 1).all()
    split = preview[(preview["rule"] == "split_transaction") & (preview["setting"] == "approval_limit")]
    assert split["value"].tolist() == [2500.0, 5000.0, 7500.0, 10000.0]
    assert split["flagged"].tolist() == [0, 2, 0, 0]  # at 2,500 the 4,900 item is above the limit itself
    receipt = preview[preview["rule"] == "missing_receipt"].set_index("value")["flagged"]
    assert receipt.to_dict() == {500.0: 1, 1000.0: 1, 2000.0: 0, 5000.0: 0}
    findings = run_audit(_ledger(), SETTINGS)
    counted = findings.groupby("rule")["row"].nunique()
    for line in current.itertuples():
        if line.rule != "isolation_forest":
            assert line.flagged == counted.get(line.rule, 0), line.rule


def test_preview_skips_disabled_rules():
    preview = threshold_preview(_ledger(), dataclasses.replace(SETTINGS, disabled_rules=("round_amount",)))
    assert "round_amount" not in set(preview["rule"])


@pytest.mark.parametrize("parallel_scoring", [False, True], ids=["forest scored alone", "blocks shared"])
def test_the_anomaly_rule_in_a_second_thread_gives_the_same_findings(monkeypatch, demo_workbook,
                                                                     parallel_scoring) -> None:
    """Big ledgers run isolation_forest beside the other rules (and this thread scores blocks
    of it once its own rules are done); the findings must not change."""
    import xl_expense.core.audit as audit
    from xl_expense.core.audit import anomaly
    from xl_expense.io.ledger_reader import load_ledger

    if parallel_scoring:
        monkeypatch.setattr(anomaly, "PARALLEL_MIN_ROWS", 0)
        monkeypatch.setattr(anomaly, "_SCORE_BLOCK", 64)

    frame = load_ledger(demo_workbook).df
    settings = Settings(as_of=pd.Timestamp("2026-01-31").date())
    monkeypatch.setattr(audit, "ASIDE_MIN_ROWS", 10**9)
    inline_timings: dict[str, float] = {}
    inline = run_audit(frame, settings, timings=inline_timings)
    monkeypatch.setattr(audit, "ASIDE_MIN_ROWS", 0)
    aside_timings: dict[str, float] = {}
    aside = run_audit(frame, settings, timings=aside_timings)
    assert (inline["rule"] == "isolation_forest").sum() > 0
    pd.testing.assert_frame_equal(inline, aside)
    assert list(aside_timings) == list(inline_timings)  # every rule timed, in registry order


@pytest.mark.parametrize("aside_min_rows", [10**9, 0], ids=["forest inline", "forest in a second thread"])
def test_audit_and_preview_share_groundwork_and_equal_the_separate_calls(demo_workbook, monkeypatch,
                                                                         aside_min_rows) -> None:
    """With the forest aside, the preview is computed while it runs: still the same tables."""
    from xl_expense.core import audit
    from xl_expense.core.audit import audit_and_preview
    from xl_expense.io.ledger_reader import load_ledger

    monkeypatch.setattr(audit, "ASIDE_MIN_ROWS", aside_min_rows)
    frame = load_ledger(demo_workbook).df
    settings = Settings(as_of=pd.Timestamp("2026-01-31").date(), approval_limit=3000)
    findings, preview = audit_and_preview(frame, settings)
    pd.testing.assert_frame_equal(findings, run_audit(frame, settings))
    pd.testing.assert_frame_equal(preview, threshold_preview(frame, settings))
    assert preview["flagged"].sum() > 0 and len(findings) > 0
    assert (findings["rule"] == "isolation_forest").any()


def test_audit_and_preview_of_an_empty_ledger() -> None:
    from xl_expense.core.audit import audit_and_preview

    empty = _ledger().iloc[:0]
    findings, preview = audit_and_preview(empty, SETTINGS)
    assert findings.empty
    pd.testing.assert_frame_equal(preview, threshold_preview(empty, SETTINGS))
