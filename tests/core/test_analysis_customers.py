"""Customer view: cost by category, income, margin, ratio, trend and the upkeep flag."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from xl_expense.core.analysis import (
    CUSTOMER_COLUMNS,
    AnalysisError,
    customer_costs_by_category,
    customer_monthly,
    customer_view,
)
from xl_expense.core.audit.registry import example_ledger


@pytest.fixture
def ledger() -> pd.DataFrame:
    """C1 costs 400 (Jan travel 100, Jun parts 300), C2 costs 50 in Jun, 20 has no customer."""
    return example_ledger([
        {"date": "2025-01-03", "amount": 100.0, "category": "差旅费", "customer": "C1"},
        {"date": "2025-06-03", "amount": 300.0, "category": "备件", "customer": " C1 "},
        {"date": "2025-05-03", "amount": 50.0, "category": "差旅费", "customer": "C2"},
        {"date": "2025-06-10", "amount": 20.0, "category": "差旅费", "customer": None},
    ])


@pytest.fixture
def revenue() -> pd.DataFrame:
    return pd.DataFrame({"customer": ["C1", "C1", "C3"], "date": ["2025-01-01", "2025-06-01", "2025-02-01"],
                         "amount": [500.0, 500.0, 80.0]})


def test_customer_view_with_revenue(ledger, revenue):
    out = customer_view(ledger, revenue)
    assert list(out.columns) == list(CUSTOMER_COLUMNS)
    # Highest cost first, revenue-only customer C3 with cost 0, the no-customer line last.
    assert out["customer"].tolist() == ["C1", "C2", "C3", None]
    c1, c2, c3, blank = (out.iloc[i] for i in range(4))
    assert (c1["cost"], c1["income"], c1["margin"], c1["cost_to_income"]) == (400.0, 1000.0, 600.0, 0.4)
    assert not c1["cost_exceeds_income"]
    assert (c2["income"], c2["margin"], bool(c2["cost_exceeds_income"])) == (0.0, -50.0, True)
    assert math.isnan(c2["cost_to_income"])
    assert (c3["cost"], c3["claims"], c3["income"], c3["margin"]) == (0.0, 0, 80.0, 80.0)
    assert not c3["cost_exceeds_income"]
    assert pd.isna(blank["cost_exceeds_income"]) and math.isnan(blank["income"])
    assert (c1["top_category"], c2["top_category"]) == ("备件", "差旅费")


def test_customer_view_without_revenue_has_no_flag(ledger):
    out = customer_view(ledger)
    assert out["income"].isna().all() and out["cost_exceeds_income"].isna().all()
    assert out["cost"].sum() == 470.0  # adds up to the ledger total


def test_customer_trend_windows(ledger):
    # Last month Jun 2025: recent = Apr–Jun, prior = Jan–Mar.
    out = customer_view(ledger, trend_months=3).set_index("customer")
    assert out.loc["C1", ["cost_recent", "cost_prior", "trend_pct"]].tolist() == [300.0, 100.0, 2.0]
    assert out.loc["C2", ["cost_recent", "cost_prior"]].tolist() == [50.0, 0.0]
    assert math.isnan(out.loc["C2", "trend_pct"])
    # Anchored on May: recent Mar–May holds only C2's 50; C1's June cost is after the window.
    may = customer_view(ledger, as_of=dt.date(2025, 5, 31)).set_index("customer")
    assert may.loc["C1", ["cost_recent", "cost_prior"]].tolist() == [0.0, 100.0]
    with pytest.raises(AnalysisError):
        customer_view(ledger, trend_months=0)


def test_costs_by_category(ledger):
    out = customer_costs_by_category(ledger)
    assert out[["customer", "category", "amount", "share_of_customer"]].values.tolist() == [
        ["C1", "备件", 300.0, 0.75], ["C1", "差旅费", 100.0, 0.25], ["C2", "差旅费", 50.0, 1.0],
        [None, "差旅费", 20.0, 1.0]]


def test_customer_monthly(ledger, revenue):
    out = customer_monthly(ledger, revenue)
    c1 = out.loc[out["customer"] == "C1"]
    assert c1["month"].dt.month.tolist() == [1, 6]
    assert c1[["cost", "income"]].values.tolist() == [[100.0, 500.0], [300.0, 500.0]]
    assert out.loc[out["customer"] == "C3", ["cost", "income"]].values.tolist() == [[0.0, 80.0]]
    assert customer_monthly(ledger)["income"].isna().all()


def test_customer_view_empty_ledger():
    out = customer_view(example_ledger([]))
    assert out.empty and list(out.columns) == list(CUSTOMER_COLUMNS)
