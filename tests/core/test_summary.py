"""summarize_findings: counts and amounts with known answers (a row flagged twice counts once)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.audit.summary import summarize_findings
from tests.factories import make_findings




@pytest.fixture
def ledger() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(["2026-01-05", "2026-03-31", None, "2026-02-10"]),
        "amount": [100.0, 4900.0, -50.0, 1200.0],
        "person": ["张三", "李四", "张三", None],
        "department": ["华东", "华北", "华东", None],
        "sheet": ["费用明细"] * 4,
        "row": [2, 3, 4, 5],
    })


@pytest.fixture
def findings() -> pd.DataFrame:
    return make_findings([
        # row 3 flagged by two rules: one row, 4900 at risk once
        {"finding_id": "F1", "rule": "below_threshold", "severity": "warning", "sheet": "费用明细", "row": 3,
         "person": "李四", "department": "华北", "amount": 4900.0},
        {"finding_id": "F2", "rule": "round_amount", "severity": "info", "sheet": "费用明细", "row": 3,
         "person": "李四", "department": "华北", "amount": 4900.0},
        {"finding_id": "F3", "rule": "duplicate", "severity": "error", "sheet": "费用明细", "row": 2,
         "person": "张三", "department": "华东", "amount": 100.0},
        {"finding_id": "F4", "rule": "negative_amount", "severity": "info", "sheet": "费用明细", "row": 4,
         "person": "张三", "department": "华东", "amount": -50.0},
        {"finding_id": "F5", "rule": "missing_field", "severity": "warning", "sheet": "费用明细", "row": 5,
         "person": None, "department": None, "amount": 1200.0},
        # a group finding: counts, but adds no rows and no amount
        {"finding_id": "F6", "rule": "benford", "severity": "warning", "sheet": None, "row": None,
         "person": "张三", "department": None, "amount": 99999.0},
    ])


def test_totals(findings, ledger):
    totals = summarize_findings(findings, ledger)["totals"].iloc[0]
    assert totals["rows"] == 4
    assert totals["amount"] == pytest.approx(6150.0)
    assert totals["date_min"] == pd.Timestamp("2026-01-05")
    assert totals["date_max"] == pd.Timestamp("2026-03-31")
    assert totals["findings"] == 6
    assert totals["group_findings"] == 1
    assert totals["flagged_rows"] == 4
    # |100| + |4900| + |-50| + |1200|, row 3 once
    assert totals["amount_at_risk"] == pytest.approx(6250.0)


def test_by_rule_orders_by_severity_and_counts(findings, ledger):
    by_rule = summarize_findings(findings, ledger)["by_rule"]
    assert list(by_rule.columns) == ["rule", "severity", "findings", "rows", "amount"]
    assert by_rule["rule"].tolist() == ["duplicate", "below_threshold", "benford", "missing_field",
                                        "negative_amount", "round_amount"]
    benford = by_rule.set_index("rule").loc["benford"]
    assert (benford["findings"], benford["rows"], benford["amount"]) == (1, 0, 0.0)
    below = by_rule.set_index("rule").loc["below_threshold"]
    assert (below["severity"], below["findings"], below["rows"], below["amount"]) == ("warning", 1, 1, 4900.0)


def test_by_rule_reports_most_severe_level():
    findings = make_findings([
        {"finding_id": "A", "rule": "split_transaction", "severity": "warning", "sheet": "S", "row": 2, "amount": 10.0},
        {"finding_id": "B", "rule": "split_transaction", "severity": "error", "sheet": "S", "row": 3, "amount": 20.0},
        # the same rule flagging the same row twice (two pairs) still counts the row once
        {"finding_id": "C", "rule": "split_transaction", "severity": "warning", "sheet": "S", "row": 3, "amount": 20.0},
    ])
    by_rule = summarize_findings(findings, pd.DataFrame({"amount": [10.0, 20.0]}))["by_rule"]
    assert by_rule.to_dict("records") == [
        {"rule": "split_transaction", "severity": "error", "findings": 3, "rows": 2, "amount": 30.0}]


def test_by_severity_has_every_level(findings, ledger):
    by_sev = summarize_findings(findings, ledger)["by_severity"]
    assert by_sev.to_dict("records") == [
        {"severity": "error", "findings": 1, "rows": 1, "amount": 100.0},
        {"severity": "warning", "findings": 3, "rows": 2, "amount": 6100.0},
        {"severity": "info", "findings": 2, "rows": 2, "amount": 4950.0},
    ]


def test_by_person_does_not_double_count(findings, ledger):
    by_person = summarize_findings(findings, ledger)["by_person"]
    records = {(None if pd.isna(r["person"]) else r["person"]): (r["findings"], r["rows"], r["amount"])
               for r in by_person.to_dict("records")}
    assert records == {"李四": (2, 1, 4900.0), "张三": (3, 2, 150.0), None: (1, 1, 1200.0)}
    # sorted by amount at risk
    assert by_person["amount"].tolist() == [4900.0, 1200.0, 150.0]


def test_by_department(findings, ledger):
    by_dept = summarize_findings(findings, ledger)["by_department"]
    records = {(None if pd.isna(r["department"]) else r["department"]): (r["findings"], r["rows"], r["amount"])
               for r in by_dept.to_dict("records")}
    # the benford group finding has no department: it joins the blank group without rows
    assert records == {"华北": (2, 1, 4900.0), "华东": (2, 2, 150.0), None: (2, 1, 1200.0)}


def test_same_row_number_on_two_sheets_is_two_rows():
    findings = make_findings([
        {"finding_id": "A", "rule": "duplicate", "severity": "error", "sheet": "一月", "row": 2, "amount": 10.0},
        {"finding_id": "B", "rule": "duplicate", "severity": "error", "sheet": "二月", "row": 2, "amount": 20.0},
    ])
    totals = summarize_findings(findings, pd.DataFrame({"amount": [10.0, 20.0]}))["totals"].iloc[0]
    assert (totals["flagged_rows"], totals["amount_at_risk"]) == (2, 30.0)


def test_no_findings(ledger):
    out = summarize_findings(make_findings([]), ledger)
    assert out["by_rule"].empty and out["by_person"].empty and out["by_department"].empty
    assert out["by_severity"]["findings"].tolist() == [0, 0, 0]
    totals = out["totals"].iloc[0]
    assert (totals["findings"], totals["flagged_rows"], totals["amount_at_risk"]) == (0, 0, 0.0)


def test_large_input_totals_add_up():
    """50k findings over 1M rows: per-severity counts add up to the total (timings: benchmarks/)."""
    rng = np.random.default_rng(0)
    n = 50_000
    findings = make_findings([])
    findings = pd.DataFrame({
        "finding_id": [f"F{i}" for i in range(n)],
        "rule": rng.choice(["duplicate", "round_amount", "benford"], n),
        "severity": rng.choice(["error", "warning", "info"], n),
        "sheet": "S", "row": pd.array(rng.integers(2, 1_000_000, n), dtype="Int64"),
        "date": pd.NaT, "person": rng.choice([f"p{i}" for i in range(300)], n),
        "department": rng.choice(["a", "b", None], n), "vendor": None, "category": None,
        "amount": rng.normal(1000, 300, n), "score": 0.5, "message": "m",
    })
    ledger = pd.DataFrame({"amount": np.ones(1_000_000), "date": pd.Timestamp("2026-01-01")})
    out = summarize_findings(findings, ledger)
    assert int(out["by_severity"]["findings"].sum()) == n == int(out["totals"].iloc[0]["findings"])
