"""Peer benchmark: ranks, the reference department and gaps, by hand."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tests.factories import make_budget, make_findings
from xl_expense.core.analysis import (
    BENCHMARK_COLUMNS,
    GAP_COLUMNS,
    METRICS,
    benchmark,
    benchmark_gaps,
)
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.budget_monitor import monitor_budget


@pytest.fixture
def ledger() -> pd.DataFrame:
    """D1: 3 × 100 to C1–C3 (region North); D2: 2 × 200 to C1; D3: 150 to C4 (region South)."""
    rows = [{"date": "2025-01-10", "amount": 100.0, "department": "D1", "customer": c, "region": "North",
             "category": "X"} for c in ("C1", "C2", "C3")]
    rows += [{"date": "2025-01-10", "amount": 200.0, "department": "D2", "customer": "C1", "region": "North",
              "category": "X"}] * 2
    rows += [{"date": "2025-01-10", "amount": 150.0, "department": "D3", "customer": "C4", "region": "South",
              "category": "X"}]
    return example_ledger(rows)


@pytest.fixture
def findings() -> pd.DataFrame:
    frame = make_findings([
        {"finding_id": "1", "rule": "round_amount", "severity": "warning", "department": "D1", "sheet": "Sheet1",
         "row": 2},
        {"finding_id": "2", "rule": "round_amount", "severity": "warning", "department": "D3", "sheet": "Sheet1",
         "row": 7},
    ])
    frame["status"] = [None, "已解释"]
    return frame


def test_department_benchmark(ledger, findings):
    out = benchmark(ledger, findings)
    assert list(out.columns) == list(BENCHMARK_COLUMNS)
    table = out.set_index("group")
    assert table["cost_per_customer"].to_dict() == {"D1": 100.0, "D3": 150.0, "D2": 400.0}
    assert table["cost_per_claim"].to_dict() == {"D1": 100.0, "D3": 150.0, "D2": 200.0}
    # D1's open finding over 3 rows; D3's finding is explained and does not count.
    assert table["findings_per_100_claims"].to_dict() == {"D1": 33.3333, "D3": 0.0, "D2": 0.0}
    assert table["rank_cost_per_customer"].tolist() == [1, 2, 3]
    assert table["rank_findings_per_100_claims"].tolist() == [3, 1, 1]
    assert table["rank_expense_to_revenue"].isna().all()
    # Mean ranks: D1 (1+1+3)/3, D3 (2+2+1)/3 tie at 1.6667 → the lower cost per customer wins.
    assert table["mean_rank"].tolist() == [1.6667, 1.6667, 2.3333]
    assert out["group"].tolist() == ["D1", "D3", "D2"]
    assert table["is_reference"].tolist() == [True, False, False]
    assert table["gap_cost_per_customer"].tolist() == [0.0, 50.0, 300.0]
    assert table["gap_findings_per_100_claims"].tolist() == [0.0, -33.3333, -33.3333]


def test_gaps_long_form(ledger, findings):
    gaps = benchmark_gaps(benchmark(ledger, findings))
    assert list(gaps.columns) == list(GAP_COLUMNS)
    assert len(gaps) == 3 * len(METRICS)
    d2 = gaps.loc[(gaps["group"] == "D2") & (gaps["metric"] == "cost_per_customer")].iloc[0]
    assert (d2["reference"], d2["value"], d2["reference_value"], d2["gap"], d2["gap_pct"]) == \
        ("D1", 400.0, 100.0, 300.0, 3.0)


def test_region_benchmark_maps_findings_through_their_rows(ledger, findings):
    findings["status"] = None
    table = benchmark(ledger, findings, by="region").set_index("group")
    # Row 2 is D1's first expense (North), row 7 is D3's (South).
    assert table["claims"].to_dict() == {"North": 5, "South": 1}
    assert table["findings_per_100_claims"].to_dict() == {"North": 20.0, "South": 100.0}
    assert table["budget_pace"].isna().all()  # budgets are by department


def test_budget_pace_and_revenue(ledger):
    budget = make_budget({("X", "D1"): [600.0] + [0.0] * 11, ("X", "D2"): [200.0] + [0.0] * 11})
    alerts = monitor_budget(budget, ledger, as_of=dt.date(2025, 1, 31), year=2025)
    revenue = pd.DataFrame({"customer": ["C1", "C4"], "date": ["2025-01-01"] * 2, "amount": [3000.0, 300.0],
                            "department": ["D1", "D3"]})
    table = benchmark(ledger, None, revenue, alerts).set_index("group")
    assert table["budget_pace"].to_dict()["D1"] == 0.5
    assert table["budget_pace"].to_dict()["D2"] == 2.0
    assert math.isnan(table.loc["D3", "budget_pace"])  # D3 has no budget line and no plan
    assert table["expense_to_revenue"].to_dict()["D1"] == 0.1
    assert table["expense_to_revenue"].to_dict()["D3"] == 0.5
    assert math.isnan(table.loc["D2", "expense_to_revenue"])  # spend, no income: undefined


def test_single_department_is_its_own_reference():
    ledger = example_ledger([{"date": "2025-01-01", "amount": 10.0, "department": "Only", "customer": "C"}])
    out = benchmark(ledger)
    assert out["group"].tolist() == ["Only"] and out["is_reference"].tolist() == [True]
    assert out["gap_cost_per_customer"].tolist() == [0.0]


def test_empty_ledger():
    out = benchmark(example_ledger([]))
    assert out.empty and list(out.columns) == list(BENCHMARK_COLUMNS)
    assert benchmark_gaps(out).empty
