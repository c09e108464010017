"""Scorecards: every component and the score worked out by hand (see each comment)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tests.factories import make_budget, make_findings
from xl_expense.core.analysis import (
    SCORECARD_COLUMNS,
    ScoreConfig,
    Tier,
    scorecards,
    tiers_from_mapping,
)
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.budget_monitor import monitor_budget
from xl_expense.errors import SettingsError

CONFIG = ScoreConfig(findings_tolerance=1.5, receipts_tolerance=1.0)


def _rows(person, dept, customers, amount, date="2025-01-10"):
    return [{"date": date, "amount": amount, "category": "X", "person": person, "department": dept, "customer": c}
            for c in customers]


@pytest.fixture
def ledger() -> pd.DataFrame:
    """P1 (D1): 5 × 120 to C1/C2; P2 (D1): 2 × 300 to C1; P3 (D2): 100 to C3."""
    return example_ledger(_rows("P1", "D1", ["C1", "C2", "C1", "C2", "C1"], 120.0)
                          + _rows("P2", "D1", ["C1", "C1"], 300.0) + _rows("P3", "D2", ["C3"], 100.0))


@pytest.fixture
def findings() -> pd.DataFrame:
    frame = make_findings([
        {"finding_id": "1", "rule": "round_amount", "severity": "warning", "person": "P1", "department": "D1"},
        {"finding_id": "2", "rule": "round_amount", "severity": "warning", "person": "P1", "department": "D1"},
        {"finding_id": "3", "rule": "duplicate", "severity": "error", "person": "P1", "department": "D1"},
        {"finding_id": "4", "rule": "missing_receipt", "severity": "warning", "person": "P2", "department": "D1"},
        {"finding_id": "5", "rule": "missing_receipt", "severity": "warning", "person": "P2", "department": "D1"},
        {"finding_id": "6", "rule": "isolation_forest", "severity": "info", "person": "P3", "department": "D2"},
        {"finding_id": "7", "rule": "budget_overrun", "severity": "error", "person": None, "department": "D1"},
    ])
    frame["status"] = ["Confirmed", "待复核", "误报", None, "已解释", "open", None]
    return frame


@pytest.fixture
def alerts(ledger) -> pd.DataFrame:
    """January plans: D1 1,000 (spent 1,200 → pace 1.2), D2 200 (spent 100 → pace 0.5)."""
    budget = make_budget({("X", "D1"): [1000.0] + [0.0] * 11, ("X", "D2"): [200.0] + [0.0] * 11})
    return monitor_budget(budget, ledger, as_of=dt.date(2025, 1, 31), year=2025)


@pytest.fixture
def previous() -> pd.DataFrame:
    """Last period: P1 cost 800 for C1/C2 (400 per customer), P3 50 for C3."""
    return example_ledger(_rows("P1", "D1", ["C1", "C2"], 400.0, "2024-01-10")
                          + _rows("P3", "D2", ["C3"], 50.0, "2024-01-10"))


def test_person_scorecards(ledger, findings, alerts, previous):
    out = scorecards(ledger, findings, alerts=alerts, previous=previous, config=CONFIG)
    assert list(out.columns) == list(SCORECARD_COLUMNS)
    assert out["group"].tolist() == ["P3", "P1", "P2"]
    assert out["rank"].tolist() == [1, 2, 3]
    card = out.set_index("group")

    p1 = card.loc["P1"]
    assert (p1["department"], p1["spend"], p1["claims"], p1["customers"], p1["cost_per_customer"]) == \
        ("D1", 600.0, 5, 2, 300.0)
    # Budget of D1: 1,200 / 1,000 = 1.2 → 1 − 0.2 / 0.5 = 0.6.
    assert (p1["budget_pace"], p1["budget_points"]) == (1.2, 0.6)
    # Peers in D1: 300 and 600 per customer, median 450; P1 is under it → full points.
    assert (p1["peer_group_size"], p1["peer_median_cost_per_customer"], p1["peer_index"], p1["peer_spend_points"]) == \
        (2, 450.0, 0.6667, 1.0)
    # Confirmed warning 1 × 1 + open warning 1 × 0.5 + dismissed error 0 = 1.5 over 5 rows = 0.3;
    # 1 − 0.3 / 1.5 = 0.8.
    assert (p1["findings_error"], p1["findings_warning"], p1["findings_confirmed"], p1["findings_open"],
            p1["findings_explained"]) == (1, 2, 1, 1, 1)
    assert (p1["weighted_findings"], p1["findings_rate"], p1["findings_points"]) == (1.5, 0.3, 0.8)
    assert (p1["missing_receipts"], p1["receipts_points"]) == (0, 1.0)
    # 400 → 300 per customer: 25 % cheaper, 100 × 2 customers saved; 0.5 + 0.25 / 1.0 = 0.75.
    assert (p1["previous_cost_per_customer"], p1["savings"], p1["savings_pct"], p1["savings_points"]) == \
        (400.0, 200.0, 0.25, 0.75)
    # (25·0.6 + 25·1 + 25·0.8 + 15·1 + 10·0.75) / 100 = 82.5 → 良好, no reward.
    assert (p1["weights_used"], p1["score"], p1["tier"], p1["reward"]) == (100.0, 82.5, "良好", 0.0)

    p2 = card.loc["P2"]
    # 600 per customer against a median of 450: index 4/3 → 1 − 1/3.
    assert (p2["peer_index"], p2["peer_spend_points"]) == (1.3333, 0.6667)
    # One open missing receipt (the explained one does not count) in 2 rows: rate 0.5 → 0.5.
    assert (p2["missing_receipts"], p2["receipts_rate"], p2["receipts_points"]) == (1, 0.5, 0.5)
    assert (p2["findings_warning"], p2["findings_points"]) == (0, 1.0)  # receipts are not counted twice
    assert math.isnan(p2["savings_points"])
    # No previous period: savings is not measured and its weight leaves the denominator.
    # (25·0.6 + 25·0.6667 + 25·1 + 15·0.5) / 90 = 71.297… → 71.3.
    assert (p2["weights_used"], p2["score"], p2["tier"]) == (90.0, 71.3, "良好")

    p3 = card.loc["P3"]
    assert (p3["budget_pace"], p3["budget_points"], p3["peer_group_size"], p3["peer_index"]) == (0.5, 1.0, 1, 1.0)
    assert (p3["findings_info"], p3["findings_open"], p3["findings_points"]) == (1, 1, 1.0)  # info weighs 0
    # 50 → 100 per customer: 100 % dearer → 0 points.
    assert (p3["savings_pct"], p3["savings_points"]) == (-1.0, 0.0)
    assert (p3["score"], p3["tier"], p3["reward"]) == (90.0, "优秀", 2000.0)


def test_score_recomputes_from_visible_columns(ledger, findings, alerts, previous):
    out = scorecards(ledger, findings, alerts=alerts, previous=previous, config=CONFIG)
    weights = CONFIG.weights
    for row in out.itertuples(index=False):
        points = {c: getattr(row, f"{c}_points") for c in weights}
        used = sum(w for c, w in weights.items() if not math.isnan(points[c]))
        total = sum(w * points[c] for c, w in weights.items() if not math.isnan(points[c]))
        assert row.weights_used == used
        assert row.score == round(100 * total / used, 1)


def test_department_scorecards(ledger, findings, alerts):
    card = scorecards(ledger, findings, level="department", alerts=alerts, config=CONFIG).set_index("group")
    assert card.loc["D1", ["spend", "claims", "customers", "cost_per_customer"]].tolist() == [1200.0, 7, 2, 600.0]
    # Departments are each other's peers: median of 600 and 100 is 350.
    assert card.loc["D1", ["peer_median_cost_per_customer", "peer_index", "peer_spend_points"]].tolist() == \
        [350.0, 1.7143, 0.2857]
    # budget_overrun has its own component (budget) and is not a finding here.
    assert card.loc["D1", ["findings_error", "findings_warning", "weighted_findings"]].tolist() == [1, 2, 1.5]
    assert card.loc["D1", "missing_receipts"] == 1
    assert card.loc["D2", "peer_spend_points"] == 1.0


def test_without_audit_or_budget_components_are_not_measured(ledger):
    out = scorecards(ledger, None).set_index("group")
    for col in ("budget_points", "findings_points", "receipts_points", "savings_points", "findings_error"):
        assert out[col].isna().all(), col
    # Only the peer component is measured: P2 scores 66.7 (0.6667), P1 and P3 100.
    assert out["weights_used"].tolist() == [25.0, 25.0, 25.0]
    assert out.loc["P2", ["score", "tier", "reward"]].tolist() == [66.7, "需改进", -1000.0]


def test_audit_with_no_findings_gives_full_points(ledger):
    empty = make_findings([{"finding_id": "x", "rule": "duplicate", "severity": "error", "person": "nobody"}])
    out = scorecards(ledger, empty)
    assert out["findings_points"].tolist() == [1.0, 1.0, 1.0]


def test_custom_tiers_from_settings_dict(ledger, findings, alerts, previous):
    config = ScoreConfig(findings_tolerance=1.5, receipts_tolerance=1.0,
                         tiers={"A": {"min_score": 80, "amount": 500}, "B": (0, -100)})
    out = scorecards(ledger, findings, alerts=alerts, previous=previous, config=config, lang="en").set_index("group")
    assert out.loc["P1", ["tier", "reward"]].tolist() == ["A", 500.0]
    assert out.loc["P2", ["tier", "reward"]].tolist() == ["B", -100.0]


def test_english_default_tiers_and_tiers_without_floor(ledger):
    out = scorecards(ledger, None, lang="en").set_index("group")
    assert out.loc["P2", "tier"] == "Needs improvement"
    high_only = ScoreConfig(tiers=[Tier("Top", 90.0, 100.0)])
    out = scorecards(ledger, None, config=high_only).set_index("group")
    assert out.loc["P2", "tier"] is None and out.loc["P2", "reward"] == 0.0


@pytest.mark.parametrize("tiers", [{}, {"A": (50, 1), "B": (50, 2)}, {"A": (150, 1)}, {"A": "lots"}])
def test_bad_tier_tables(tiers):
    with pytest.raises(SettingsError):
        tiers_from_mapping(tiers)


def test_bad_weights():
    with pytest.raises(SettingsError, match="unknown score component"):
        ScoreConfig(weights={"charm": 1.0})
    with pytest.raises(SettingsError):
        ScoreConfig(weights={"budget": 0.0})


def test_no_customers_leaves_peer_unmeasured():
    ledger = example_ledger(_rows("P1", "D1", [None], 100.0) + _rows("P2", "D1", [None], 50.0))
    out = scorecards(ledger, None)
    assert out["cost_per_customer"].isna().all() and out["peer_spend_points"].isna().all()
    assert out["score"].isna().all() and out["tier"].isna().all()


def test_zero_spend_and_blank_person():
    ledger = example_ledger(_rows("P1", "D1", ["C1"], 0.0) + _rows(None, "D1", ["C2"], 70.0))
    out = scorecards(ledger, None)
    assert out["group"].tolist() == ["P1"]  # a blank person is not scored
    assert out["cost_per_customer"].tolist() == [0.0]
    assert out["score"].tolist() == [100.0]
