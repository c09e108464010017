"""Every rule against its registry examples, plus edge cases the examples do not show."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from xl_expense import schema
from xl_expense.core.audit import RULES, run_audit
from xl_expense.core.audit.registry import example_ledger, get_rules
from xl_expense.core.settings import Settings
from xl_expense.errors import SettingsError
from xl_expense.schema import ALL_COLUMNS

EXAMPLES = [pytest.param(rule, example, id=f"{rule.id}-{i}")
            for rule in RULES.values() for i, example in enumerate(rule.examples)]

AS_OF = Settings(as_of=pd.Timestamp("2026-12-31").date())

RULE_IDS = ("duplicate", "near_duplicate", "split_transaction", "below_threshold", "round_amount",
            "weekend_holiday", "future_date", "out_of_period", "missing_receipt", "over_policy_limit",
            "missing_field", "negative_amount", "benford", "isolation_forest")


def test_every_contract_rule_id_is_registered():
    assert set(RULES) == set(RULE_IDS)


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_rule_is_documented_with_examples_of_both_outcomes(rule):
    assert rule.doc_en and rule.doc_zh and rule.title_en and rule.title_zh
    assert rule.severity in schema.SEVERITIES
    assert {e.flags for e in rule.examples} == {True, False}


@pytest.mark.parametrize("rule,example", EXAMPLES)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_rule_examples(rule, example, lang):
    settings = dataclasses.replace(example.make_settings(), lang=lang)
    ledger = example.ledger()
    hits = rule.func(ledger, settings)
    assert (len(hits) > 0) is example.flags, example.note
    if example.expect_rows is not None:
        assert sorted(hits.index) == list(example.expect_rows)
    if len(hits):
        assert hits["score"].between(0, 1).all()
        assert hits["message"].map(lambda m: isinstance(m, str) and len(m) >= 4).all()
        if "group_key" not in hits.columns:
            assert set(hits.index) <= set(ledger.index)


def _hits(rule_id, rows, **settings):
    return RULES[rule_id].func(example_ledger(rows), dataclasses.replace(AS_OF, **settings))


SPLIT = {"person": "王五", "vendor": "京东"}


def test_split_message_has_the_concrete_numbers_in_both_languages():
    rows = [{**SPLIT, "date": "2026-05-11", "amount": 4900.0}, {**SPLIT, "date": "2026-05-13", "amount": 4900.0}]
    zh = _hits("split_transaction", rows)
    assert zh["message"].iloc[0] == ("同一报销人 王五 在 3 天内向同一商户 京东 报销 2 笔共 ¥9,800.00，每笔均不超过审批限额 "
                                     "¥5,000.00，其中最大一笔 ¥4,900.00 达限额的 98%")
    assert list(zh["severity"]) == ["error", "error"]
    en = _hits("split_transaction", rows, lang="en")
    assert en["message"].iloc[0] == ("Person 王五 claimed 2 items from vendor 京东 within 3 day(s), ¥9,800.00 in total, "
                                     "each within the approval limit ¥5,000.00; the largest, ¥4,900.00, is 98% of the limit")


def test_split_without_a_near_limit_item_is_a_warning():
    rows = [{**SPLIT, "date": "2026-05-11", "amount": 3000.0}, {**SPLIT, "date": "2026-05-12", "amount": 2500.0}]
    hits = _hits("split_transaction", rows)
    assert list(hits["severity"]) == ["warning", "warning"]
    assert hits["score"].iloc[0] < 0.9


def test_split_window_edges():
    base = {**SPLIT, "date": "2026-05-11", "amount": 3000.0}
    assert len(_hits("split_transaction", [base, {**base, "date": "2026-05-13"}])) == 2  # day 3: in
    assert _hits("split_transaction", [base, {**base, "date": "2026-05-14"}]).empty  # day 4: out
    assert len(_hits("split_transaction", [base, {**base, "date": "2026-05-14"}], split_window_days=4)) == 2
    assert _hits("split_transaction", [base, {**base, "date": "2026-05-12"}], split_window_days=1).empty


def test_split_ignores_items_above_the_limit_and_other_vendors():
    rows = [{**SPLIT, "date": "2026-05-11", "amount": 3000.0},
            {**SPLIT, "date": "2026-05-11", "amount": 9000.0},  # approved on its own
            {**SPLIT, "vendor": "天猫", "date": "2026-05-11", "amount": 3000.0}]
    assert _hits("split_transaction", rows).empty


def test_split_sliding_window_flags_only_the_items_in_a_qualifying_window():
    rows = [{**SPLIT, "date": f"2026-05-{d:02d}", "amount": a}
            for d, a in ((1, 1000.0), (5, 3000.0), (6, 2500.0), (10, 1000.0))]
    assert sorted(_hits("split_transaction", rows).index) == [1, 2]


def test_duplicate_by_receipt_number_across_sheets():
    rows = [{"date": "2026-03-03", "person": "张三", "amount": 500.0, "receipt": "04400012", "sheet": "一月"},
            {"date": "2026-04-03", "person": "李四", "amount": 700.0, "receipt": " 04400012", "sheet": "二月"}]
    hits = _hits("duplicate", rows)
    assert list(hits.index) == [1]
    assert hits["message"].iloc[0] == "发票号  04400012 已在 一月 第 2 行 报销过"


def test_duplicate_needs_a_person_or_vendor():
    row = {"date": "2026-03-03", "amount": 50.0}
    assert _hits("duplicate", [row, row]).empty
    assert list(_hits("duplicate", [{**row, "vendor": "滴滴"}] * 3).index) == [1, 2]


def test_near_duplicate_message_and_window_setting():
    rows = [{"date": "2026-03-03", "person": "张三", "vendor": "海底捞", "amount": 880.0},
            {"date": "2026-03-09", "person": "张三", "vendor": "海底捞", "amount": 880.0}]
    assert _hits("near_duplicate", rows).empty
    hits = _hits("near_duplicate", rows, near_duplicate_days=7, lang="en")
    assert hits["message"].iloc[0] == "Same person, vendor and amount (¥880.00) as Sheet1 row 2 on 2026-03-03, 6 day(s) earlier"


def test_below_threshold_repeated_by_one_person_is_a_warning():
    rows = [{"date": "2026-03-0" + str(d), "person": "赵六", "amount": 4900.0 + d} for d in range(1, 4)]
    hits = _hits("below_threshold", rows)
    assert list(hits["severity"]) == ["warning"] * 3
    assert hits["message"].iloc[0] == "金额 ¥4,901.00 仅比审批限额 ¥5,000.00 低 2.0%；该报销人共有 3 笔此类金额"


def test_round_amount_respects_the_multiple():
    rows = [{"amount": 1500.0}, {"amount": 2000.0}]
    assert list(_hits("round_amount", rows).index) == [1]
    assert list(_hits("round_amount", rows, round_multiple=500.0).index) == [0, 1]


def test_missing_field_lists_every_missing_column():
    hits = _hits("missing_field", [{"date": "2026-03-03", "amount": 1.0}])
    assert hits["message"].iloc[0] == "缺少：报销人、费用类别"
    hits = _hits("missing_field", [{"date": "2026-03-03", "amount": 1.0}], lang="en")
    assert hits["message"].iloc[0] == "Missing: person, category"


def test_missing_field_rejects_unknown_columns():
    with pytest.raises(SettingsError, match="required_fields"):
        _hits("missing_field", [{"amount": 1.0}], required_fields=("person", "nmae"))


def test_future_date_defaults_to_today():
    far = (pd.Timestamp.today() + pd.Timedelta(days=400)).strftime("%Y-%m-%d")
    hits = RULES["future_date"].func(example_ledger([{"date": far, "amount": 1.0}]), Settings())
    assert len(hits) == 1


def test_weekend_holiday_messages():
    hits = _hits("weekend_holiday", [{"date": "2026-10-01", "amount": 1.0}, {"date": "2026-03-07", "amount": 1.0}],
                 lang="en")
    assert list(hits["message"]) == ["2026-10-01 (Thursday) is a public holiday: National Day",
                                      "2026-03-07 is a Saturday, not an adjusted working day"]


def test_weekend_holiday_skips_refunds():
    assert _hits("weekend_holiday", [{"date": "2026-03-07", "amount": -10.0}]).empty


def test_disabled_rules():
    ids = [r.id for r in get_rules(dataclasses.replace(AS_OF, disabled_rules=("benford", "round_amount")))]
    assert "benford" not in ids and "round_amount" not in ids and "duplicate" in ids
    with pytest.raises(SettingsError, match="bneford"):
        get_rules(dataclasses.replace(AS_OF, disabled_rules=("bneford",)))


def _ledger_without(column: str, n: int = 30) -> pd.DataFrame:
    """n claims of ¥1,500 on which ``column`` is empty everywhere (an export that left it out)."""
    rows = [{"date": f"2026-03-{1 + i % 28:02d}", "person": f"p{i % 3}", "vendor": f"v{i}", "category": "差旅费",
             "amount": 1500.0 + i, "receipt": f"R{i}"} for i in range(n)]
    for r in rows:
        r[column] = None
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    for col in ALL_COLUMNS:
        if col not in df:
            df[col] = None
    df["sheet"], df["row"] = "S", range(2, n + 2)
    return df[list(ALL_COLUMNS)]


def test_a_column_missing_from_the_export_is_one_finding_not_one_per_row() -> None:
    findings = run_audit(_ledger_without("person"), Settings(lang="en", as_of=dt.date(2026, 12, 31)))
    missing = findings[findings["rule"] == "missing_field"]
    assert len(missing) == 1 and missing["row"].isna().all()
    assert "'person' is empty on all 30 rows" in missing["message"].iloc[0]

    findings = run_audit(_ledger_without("receipt"), Settings(lang="zh", as_of=dt.date(2026, 12, 31)))
    receipts = findings[findings["rule"] == "missing_receipt"]
    assert len(receipts) == 1 and "30 笔" in receipts["message"].iloc[0]


def test_partly_missing_and_absent_columns_together() -> None:
    df = _ledger_without("person")
    df.loc[[3, 7], "category"] = None
    findings = run_audit(df, Settings(lang="en", as_of=dt.date(2026, 12, 31)))
    missing = findings[findings["rule"] == "missing_field"]
    assert sorted(missing["row"].dropna().tolist()) == [5, 9]
    assert (missing["row"].isna()).sum() == 1
    assert set(missing.loc[missing["row"].notna(), "message"]) == {"Missing: category"}
    # Row hits mixed with the column finding keep the rule's severity (they once came out empty).
    assert set(missing["severity"]) == {"warning"}
