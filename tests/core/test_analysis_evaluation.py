"""Periodic evaluation: opened / recurring / reopened / resolved between audit runs."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.factories import make_findings
from xl_expense.core.analysis import (
    CHANGE_COLUMNS,
    EVALUATION_TREND_COLUMNS,
    AnalysisError,
    evaluation_by,
    evaluation_trend,
    finding_changes,
)


def _run(*specs) -> pd.DataFrame:
    """Findings from (id, rule, severity, department, sheet row, amount) tuples."""
    return make_findings([{"finding_id": i, "rule": r, "severity": s, "department": d, "sheet": "S", "row": row,
                           "amount": a} for i, r, s, d, row, a in specs])


A = ("DUP-a", "duplicate", "error", "D1", 2, 100.0)
B = ("RND-b", "round_amount", "warning", "D1", 3, -50.0)
C = ("RND-c", "round_amount", "warning", "D2", 4, 200.0)
D = ("RCP-d", "missing_receipt", "warning", "D2", 4, 200.0)

R1, R2, R3 = _run(A, B), _run(B, C), _run(A, C, D)


def test_changes_against_history():
    out = finding_changes(R3, [R1, R2])
    assert list(out.columns) == list(CHANGE_COLUMNS)
    states = dict(zip(out["finding_id"], out["state"]))
    # A was in run 1, not in run 2, back in run 3; C in runs 2 and 3; D new; B gone.
    assert states == {"DUP-a": "reopened", "RND-c": "recurring", "RCP-d": "opened", "RND-b": "resolved"}
    assert out["state"].tolist() == ["opened", "recurring", "reopened", "resolved"]
    resolved = out.loc[out["state"] == "resolved"].iloc[0]
    assert (resolved["rule"], resolved["department"], resolved["amount"]) == ("round_amount", "D1", -50.0)


def test_first_run_opens_everything():
    out = finding_changes(R1)
    assert out["state"].tolist() == ["opened", "opened"]


def test_by_rule_and_department():
    out = evaluation_by(finding_changes(R3, [R1, R2]))
    table = out.set_index(["rule", "department"])
    assert table.loc[("round_amount", "D1")].tolist() == [0, 1, 0, 0, 0, 1, -1]
    assert table.loc[("round_amount", "D2")].tolist() == [1, 1, 0, 1, 0, 0, 0]
    assert table.loc[("duplicate", "D1")].tolist() == [1, 0, 0, 0, 1, 0, 1]
    assert table.loc[("missing_receipt", "D2")].tolist() == [1, 0, 1, 0, 0, 0, 1]
    by_rule = evaluation_by(finding_changes(R3, [R1, R2]), by=["rule"]).set_index("rule")
    assert by_rule.loc["round_amount", ["current", "previous", "net_change"]].tolist() == [1, 2, -1]


def test_blank_department_is_its_own_line():
    group = make_findings([{"finding_id": "BEN-x", "rule": "benford", "severity": "info", "department": None,
                            "amount": 9999.0}])
    out = evaluation_by(finding_changes(group))
    assert out["department"].tolist() == [None] and out["opened"].tolist() == [1]


def test_trend():
    out = evaluation_trend([("2025-01", R1), ("2025-02", R2), ("2025-03", R3)])
    assert list(out.columns) == list(EVALUATION_TREND_COLUMNS)
    assert out["findings"].tolist() == [2, 2, 3]
    assert out["opened"].tolist() == [2, 1, 1]
    assert out["recurring"].tolist() == [0, 1, 1]
    assert out["reopened"].tolist() == [0, 0, 1]
    assert out["resolved"].tolist() == [0, 1, 1]
    assert out["error"].tolist() == [1, 0, 1]
    # Run 3: rows 2 (100) and 4 (200, flagged by two rules, counted once).
    assert out["amount_at_risk"].tolist() == [150.0, 250.0, 300.0]


def test_duplicate_ids_count_once_and_columns_are_checked():
    out = finding_changes(_run(A, A), [_run(A)])
    assert out["state"].tolist() == ["recurring"]
    with pytest.raises(AnalysisError, match="finding_id"):
        finding_changes(pd.DataFrame({"rule": ["x"]}))


def test_empty_runs():
    empty = _run()
    assert finding_changes(empty, [empty]).empty
    assert evaluation_trend([("r", empty)])["findings"].tolist() == [0]
    assert evaluation_by(finding_changes(empty)).empty
