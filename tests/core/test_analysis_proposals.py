"""Budget reallocation LP: total kept, every bound respected, money moves from idle to overrun lines."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.factories import make_budget
from xl_expense.core.analysis import (
    LINE_COLUMNS,
    MOVE_COLUMNS,
    AnalysisError,
    ProposalLimits,
    propose_reallocation,
)
from xl_expense.core.audit.registry import example_ledger

AS_OF = dt.date(2025, 6, 30)  # five closed months (Jan–May), June still open


@pytest.fixture
def budget() -> pd.DataFrame:
    """Four lines of 1,000 a month (12,000 a year)."""
    return make_budget({("差旅费", "A"): 1000.0, ("招待", "A"): 1000.0, ("差旅费", "B"): 1000.0, ("办公", "B"): 1000.0})


@pytest.fixture
def ledger() -> pd.DataFrame:
    """Monthly spend Jan–Jun: 差旅费|A 1,500 (150 %), 招待|A 300 (30 %), 差旅费|B 1,000, 办公|B 500 (50 %)."""
    rows = []
    for month in range(1, 7):
        for category, unit, amount in (("差旅费", "A", 1500.0), ("招待", "A", 300.0), ("差旅费", "B", 1000.0),
                                       ("办公", "B", 500.0)):
            rows.append({"date": f"2025-{month:02d}-10", "amount": amount, "category": category, "department": unit})
    return example_ledger(rows)


def _check_invariants(proposal, limits: ProposalLimits) -> None:
    lines = proposal.lines.set_index("line")
    assert lines["proposed"].sum() == pytest.approx(lines["base"].sum(), abs=0.005)
    assert (lines["change"] >= lines["min_change"] - 0.005).all()
    assert (lines["change"] <= lines["max_change"] + 0.005).all()
    for move in proposal.moves.itertuples(index=False):
        assert lines.loc[move.from_line, "role"] == "donor" and lines.loc[move.to_line, "role"] == "receiver"
        assert move.amount >= limits.min_move and move.amount % limits.step == 0


def test_moves_from_idle_to_overrunning_lines(budget, ledger):
    limits = ProposalLimits()
    proposal = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF)
    assert list(proposal.moves.columns) == list(MOVE_COLUMNS)
    assert list(proposal.lines.columns) == list(LINE_COLUMNS)
    lines = proposal.lines.set_index("line")
    assert lines["role"].to_dict() == {"差旅费|A": "receiver", "招待|A": "donor", "差旅费|B": None, "办公|B": "donor"}
    # 差旅费|A heads for 18,000 of 12,000: it may gain min(30 %, 50 %) × 12,000 = 3,600.
    # 招待|A heads for 3,600: may give min(20 %, 70 %) × 12,000 = 2,400; 办公|B likewise 2,400.
    assert lines["max_change"].to_dict()["差旅费|A"] == 3600.0
    assert lines.loc[["招待|A", "办公|B"], "min_change"].tolist() == [-2400.0, -2400.0]
    # The same-unit donor gives first, the other donor the rest.
    assert proposal.moves[["from_line", "to_line", "amount"]].values.tolist() == [
        ["招待|A", "差旅费|A", 2400.0], ["办公|B", "差旅费|A", 1200.0]]
    assert lines["proposed"].to_dict() == {"差旅费|A": 15600.0, "招待|A": 9600.0, "差旅费|B": 12000.0,
                                           "办公|B": 10800.0}
    _check_invariants(proposal, limits)


def test_explanations_in_both_languages(budget, ledger):
    zh = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF).moves["explanation"].iloc[0]
    en = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF, lang="en").moves["explanation"].iloc[0]
    assert zh == ("建议从「招待|A」调出 2,400.00 至「差旅费|A」：前者截至 2025-06-30 仅用计划进度的 30%，"
                  "5 个已结束月份中有 5 个低于 80%，预计全年结余 8,400.00；后者已达计划进度的 150%，预计全年超支 6,000.00。")
    assert en.startswith("Move 2,400.00 from 招待|A to 差旅费|A: by 2025-06-30 the first has used 30% of its plan")


@pytest.mark.parametrize("limits", [
    ProposalLimits(min_move=1500.0),
    ProposalLimits(step=1000.0),
    ProposalLimits(line_bounds={"招待|A": (-1000.0, 0.0), "差旅费|A": (0.0, 10000.0)}),
    ProposalLimits(max_cut_pct=0.05, max_raise_pct=1.0),
])
def test_bounds_hold_for_any_limits(budget, ledger, limits):
    proposal = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF, limits=limits)
    _check_invariants(proposal, limits)
    assert len(proposal.moves) >= 1


def test_limits_change_the_amounts(budget, ledger):
    dropped = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF, limits=ProposalLimits(min_move=1500.0))
    assert dropped.moves["amount"].tolist() == [2400.0]  # the 1,200 move is below the minimum
    stepped = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF, limits=ProposalLimits(step=1000.0))
    assert stepped.moves["amount"].tolist() == [2000.0, 1000.0]  # rounded down, never up
    bounded = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF,
                                   limits=ProposalLimits(line_bounds={"招待|A": (-1000.0, 0.0)}))
    assert bounded.moves[["from_line", "amount"]].values.tolist() == [["办公|B", 2400.0], ["招待|A", 1000.0]]


def test_next_budget_is_the_base(budget, ledger):
    next_budget = budget.copy()
    next_budget.loc[:, [f"m{i}" for i in range(1, 13)]] = 2000.0  # 24,000 a line next year
    proposal = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF, next_budget=next_budget)
    lines = proposal.lines.set_index("line")
    assert lines["base"].tolist() == [24000.0] * 4
    assert lines.loc["差旅费|A", "change"] == 7200.0  # 30 % of 24,000
    assert lines["proposed"].sum() == 96000.0


def test_one_quiet_month_is_not_persistent(budget):
    # 招待|A spends 900 of 1,000 a month except 100 in May: (5 × 900 + 100) / 6,000 = 0.7667 of
    # plan, but under 80 % in only 1 of 5 closed months: no donor. The unused B lines are.
    rows = [{"date": f"2025-{m:02d}-10", "amount": 100.0 if m == 5 else 900.0, "category": "招待",
             "department": "A"} for m in range(1, 7)]
    rows += [{"date": f"2025-{m:02d}-10", "amount": 2000.0, "category": "差旅费", "department": "A"}
             for m in range(1, 7)]
    proposal = propose_reallocation(budget, example_ledger(rows), year=2025, as_of=AS_OF)
    lines = proposal.lines.set_index("line")
    assert lines.loc["招待|A", ["pace", "closed_months", "months_under"]].tolist() == [0.7667, 5, 1]
    assert lines.loc["招待|A", "role"] is None
    assert lines.loc[["差旅费|B", "办公|B"], "role"].tolist() == ["donor", "donor"]
    assert "招待|A" not in set(proposal.moves["from_line"])
    _check_invariants(proposal, ProposalLimits())


def test_no_overrun_no_moves_and_total_kept(budget):
    ledger = example_ledger([{"date": "2025-03-01", "amount": 10.0, "category": "招待", "department": "A"}])
    proposal = propose_reallocation(budget, ledger, year=2025, as_of=AS_OF)
    assert proposal.moves.empty and list(proposal.moves.columns) == list(MOVE_COLUMNS)
    assert (proposal.lines["change"] == 0).all()


def test_invalid_limits():
    with pytest.raises(AnalysisError):
        ProposalLimits(max_cut_pct=1.5)
    with pytest.raises(AnalysisError, match="min ≤ 0 ≤ max"):
        ProposalLimits(line_bounds={"a|b": (100.0, 200.0)})
