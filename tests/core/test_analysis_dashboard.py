"""Dashboard computations on small ledgers with answers worked out by hand."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tests.factories import make_budget, make_findings
from xl_expense.core.analysis import (
    HEADLINE_COLUMNS,
    RATIO_COLUMNS,
    SHARE_COLUMNS,
    TREND_COLUMNS,
    AnalysisError,
    audit_headline,
    budget_vs_actual,
    category_shares,
    efficiency_ratios,
    monthly_trend,
    pareto_count,
    pareto_summary,
    pareto_table,
    period_rows,
)
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.budget_monitor import monitor_budget


@pytest.fixture
def ledger() -> pd.DataFrame:
    """Six expenses: 差旅费 600 (3 rows, one a −100 refund), 招待 300, no category 100."""
    return example_ledger([
        {"date": "2025-01-05", "amount": 400.0, "category": "差旅费", "vendor": "V1", "customer": "C1",
         "department": "D1", "region": "R1", "person": "P1"},
        {"date": "2025-01-20", "amount": 300.0, "category": "差旅费", "vendor": "V1", "customer": "C2",
         "department": "D1", "region": "R1", "person": "P2"},
        {"date": "2025-02-03", "amount": -100.0, "category": "差旅费", "vendor": "V1", "customer": "C1",
         "department": "D1", "region": "R1", "person": "P1"},
        {"date": "2025-03-10", "amount": 300.0, "category": "招待", "vendor": "V2", "customer": "C3",
         "department": "D2", "region": "R2", "person": "P3"},
        {"date": "2026-01-10", "amount": 60.0, "category": None, "vendor": "V3", "customer": None,
         "department": "D2", "region": "R2", "person": "P3"},
        {"date": "2026-03-10", "amount": 40.0, "category": None, "vendor": None, "customer": "C3",
         "department": "D2", "region": "R2", "person": "P3"},
    ])


def test_category_shares(ledger):
    out = category_shares(ledger)
    assert list(out.columns) == list(SHARE_COLUMNS)
    # Net total 1000: 差旅费 600 (refund stays in its category), 招待 300, blank 100 listed last.
    assert out["category"].tolist() == ["差旅费", "招待", None]
    assert out["amount"].tolist() == [600.0, 300.0, 100.0]
    assert out["share"].tolist() == [0.6, 0.3, 0.1]
    assert out["count"].tolist() == [3, 1, 2]


def test_category_shares_zero_spend_has_no_share():
    out = category_shares(example_ledger([{"date": "2025-01-01", "amount": 50.0, "category": "A"},
                                          {"date": "2025-01-02", "amount": -50.0, "category": "B"}]))
    assert out["amount"].tolist() == [50.0, -50.0]
    assert out["share"].isna().all()


def test_pareto_table_and_count(ledger):
    out = pareto_table(ledger, "vendor")
    # V1 600, V2 300, V3 60 (blank vendor's 40 left out); total 960.
    assert out["key"].tolist() == ["V1", "V2", "V3"]
    assert out["share"].tolist() == [0.625, 0.3125, 0.0625]
    assert out["cum_share"].tolist() == [0.625, 0.9375, 1.0]
    # 62.5 % after V1 is short of 80 %, V2 crosses it: two vendors make 80 % of spend.
    assert out["in_core"].tolist() == [True, True, False]
    assert pareto_count(out) == 2


def test_pareto_exact_threshold_does_not_take_one_more():
    ledger = example_ledger([{"date": "2025-01-01", "amount": a, "vendor": v}
                             for v, a in (("A", 80.0), ("B", 10.0), ("C", 10.0))])
    assert pareto_count(pareto_table(ledger, "vendor")) == 1


def test_pareto_drops_non_positive_keys_and_rejects_bad_threshold():
    ledger = example_ledger([{"date": "2025-01-01", "amount": 100.0, "vendor": "A"},
                             {"date": "2025-01-01", "amount": -30.0, "vendor": "B"}])
    assert pareto_table(ledger, "vendor")["key"].tolist() == ["A"]
    with pytest.raises(AnalysisError, match="threshold"):
        pareto_table(ledger, "vendor", threshold=80)


def test_pareto_summary(ledger):
    out = pareto_summary(ledger).set_index("by")
    assert out.loc["vendor", ["keys", "core_keys"]].tolist() == [3, 2]
    assert out.loc["vendor", "core_keys_share"] == 0.6667
    assert out.loc["vendor", "core_amount_share"] == 0.9375
    # Customers: C1 300, C2 300, C3 340 → C3 (0.3617), then C1/C2 by name: C1 reaches 0.6809, C2 1.0.
    assert out.loc["customer", ["keys", "core_keys"]].tolist() == [3, 3]


def test_monthly_trend_mom_and_yoy(ledger):
    out = monthly_trend(ledger)
    assert list(out.columns) == list(TREND_COLUMNS)
    assert len(out) == 15  # Jan 2025 … Mar 2026, empty months included
    first = out.set_index("month")
    jan, feb, mar = (first.loc[pd.Timestamp(f"2025-0{m}-01")] for m in (1, 2, 3))
    assert (jan["amount"], jan["count"]) == (700.0, 2)
    assert math.isnan(jan["mom_change"])
    assert (feb["amount"], feb["mom_change"], feb["mom_pct"]) == (-100.0, -800.0, -1.1429)
    assert (mar["amount"], mar["mom_change"], mar["mom_pct"]) == (300.0, 400.0, -4.0)
    jan26 = first.loc[pd.Timestamp("2026-01-01")]
    assert (jan26["yoy_change"], jan26["yoy_pct"]) == (-640.0, -0.9143)
    mar26 = first.loc[pd.Timestamp("2026-03-01")]
    assert (mar26["yoy_change"], mar26["yoy_pct"]) == (-260.0, -0.8667)
    assert first["revenue"].isna().all()


def test_monthly_trend_with_revenue_and_period(ledger):
    revenue = pd.DataFrame({"customer": ["C1", "C3"], "date": ["2025-01-15", "2025-03-01"], "amount": [1400.0, 0.0]})
    out = monthly_trend(ledger, revenue, start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31))
    assert out["month"].dt.month.tolist() == [1, 2, 3]
    assert out["revenue"].tolist() == [1400.0, 0.0, 0.0]
    assert out["expense_to_revenue"].iloc[0] == 0.5
    assert out["expense_to_revenue"].iloc[1:].isna().all()  # no income: ratio undefined, not infinite


def test_monthly_trend_empty_ledger():
    out = monthly_trend(example_ledger([]))
    assert out.empty and list(out.columns) == list(TREND_COLUMNS)


def test_period_rows_keeps_the_whole_end_day():
    ledger = example_ledger([{"date": "2025-12-31 14:00", "amount": 1.0}, {"date": "2062-03-05 00:00", "amount": 2.0},
                             {"date": None, "amount": 3.0}])
    assert period_rows(ledger, end=dt.date(2025, 12, 31))["amount"].tolist() == [1.0]
    assert len(period_rows(ledger)) == 3


def test_efficiency_ratios_whole_ledger(ledger):
    out = efficiency_ratios(ledger)
    assert list(out.columns) == list(RATIO_COLUMNS)
    row = out.iloc[0]
    assert (row["level"], row["group"], row["spend"], row["claims"], row["customers"]) == ("all", None, 1000.0, 6, 3)
    assert (row["cost_per_customer"], row["cost_per_claim"]) == (333.33, 166.67)
    assert math.isnan(row["cost_per_activity"]) and math.isnan(row["expense_to_revenue"])


def test_efficiency_ratios_by_department_with_visits_and_revenue(ledger):
    ledger["visits"] = [1, 1, 0, 2, 1, 1]
    revenue = pd.DataFrame({"customer": ["C1", "C3"], "date": ["2025-01-01", "2025-03-01"],
                            "amount": [1200.0, 800.0], "department": ["D1", "D2"]})
    out = efficiency_ratios(ledger, revenue, by="department").set_index("group")
    assert out.loc["D1", ["spend", "claims", "customers", "activities"]].tolist() == [600.0, 3, 2, 2.0]
    assert out.loc["D1", ["cost_per_customer", "cost_per_activity", "expense_to_revenue"]].tolist() == [300.0, 300.0, 0.5]
    assert out.loc["D2", ["spend", "customers", "activities", "expense_to_revenue"]].tolist() == [400.0, 1, 4.0, 0.5]


def test_efficiency_ratios_ticket_ids_count_distinct(ledger):
    ledger["ticket_id"] = ["T1", "T1", "T2", None, "T3", "T3"]
    out = efficiency_ratios(ledger)
    assert out["activities"].iloc[0] == 3.0
    assert out["cost_per_activity"].iloc[0] == 333.33


def test_efficiency_ratios_revenue_without_split_column_is_unknown(ledger):
    revenue = pd.DataFrame({"customer": ["C1"], "date": ["2025-01-01"], "amount": [100.0]})
    out = efficiency_ratios(ledger, revenue, by="department")
    assert out["revenue"].isna().all()
    assert efficiency_ratios(ledger, revenue)["expense_to_revenue"].iloc[0] == 10.0


def test_revenue_amount_must_be_a_number(ledger):
    revenue = pd.DataFrame({"customer": ["C1"], "date": ["2025-01-01"], "amount": ["lots"]})
    with pytest.raises(AnalysisError, match="not a number"):
        efficiency_ratios(ledger, revenue)


def test_budget_vs_actual_by_category_and_unit():
    budget = make_budget({("差旅费", "A"): 100.0, ("招待", "A"): 50.0, ("差旅费", "B"): 100.0})
    ledger = example_ledger([
        {"date": "2025-01-03", "amount": 150.0, "category": "差旅费", "department": "A"},
        {"date": "2025-02-03", "amount": 30.0, "category": "招待", "department": "A"},
        {"date": "2025-02-03", "amount": 70.0, "category": "办公", "department": "B"},
    ])
    alerts = monitor_budget(budget, ledger, as_of=dt.date(2025, 2, 28), year=2025)
    by_cat = budget_vs_actual(alerts, "category").set_index("group")
    # 差旅费: plan 2×1200, to date 2×200 (Jan+Feb), spent 150 → pace 0.375.
    assert by_cat.loc["差旅费", ["planned_year", "planned_to_date", "actual_to_date", "variance", "pace"]].tolist() == \
        [2400.0, 400.0, 150.0, -250.0, 0.375]
    assert by_cat.loc["办公", ["planned_year", "unbudgeted_actual", "lines_over"]].tolist() == [0.0, 70.0, 1]
    assert math.isnan(by_cat.loc["办公", "pace"])
    by_unit = budget_vs_actual(alerts, "department").set_index("group")
    assert by_unit.loc["A", ["planned_to_date", "actual_to_date", "pace"]].tolist() == [300.0, 180.0, 0.6]
    assert by_unit.loc["B", ["actual_to_date", "unbudgeted_actual"]].tolist() == [70.0, 70.0]
    by_line = budget_vs_actual(alerts, "line")
    assert "(unbudgeted) 办公|B" in by_line["group"].tolist()
    with pytest.raises(AnalysisError):
        budget_vs_actual(alerts, "person")


def test_audit_headline_counts_statuses_and_rows_once():
    ledger = example_ledger([{"date": "2025-01-01", "amount": 100.0}] * 3)
    findings = make_findings([
        {"finding_id": "a", "rule": "duplicate", "severity": "error", "sheet": "Sheet1", "row": 2, "amount": 100.0,
         "status": "已确认"},
        {"finding_id": "b", "rule": "round_amount", "severity": "warning", "sheet": "Sheet1", "row": 2,
         "amount": 100.0, "status": "Explained"},
        {"finding_id": "c", "rule": "round_amount", "severity": "warning", "sheet": "Sheet1", "row": 3,
         "amount": -50.0},
    ])
    findings["status"] = ["已确认", "Explained", None]
    out = audit_headline(findings, ledger).set_index("severity")
    assert list(out.reset_index().columns) == list(HEADLINE_COLUMNS)
    assert out.loc["error"].tolist() == [1, 1, 100.0, 0, 0, 1]
    assert out.loc["warning"].tolist() == [2, 2, 150.0, 1, 1, 0]
    assert out.loc["info"].tolist() == [0, 0, 0.0, 0, 0, 0]
    # Row 2 is flagged twice but counted once in the total.
    assert out.loc["total"].tolist() == [3, 2, 150.0, 1, 1, 1]
