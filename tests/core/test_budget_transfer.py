"""Budget transfers: refusals, balance, log replay, carry-forward and dry runs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from tests.factories import make_budget
from xl_expense.core.budget import MONTHS, BudgetError
from xl_expense.core.budget_transfer import (
    LOG_COLUMNS,
    Transfer,
    apply_transfer,
    apply_transfers,
    carry_forward,
    log_frame,
    preview_transfer,
    replay,
    split_cents,
    spread_transfer,
)

TIME = dt.datetime(2026, 3, 15, 9, 30)



@pytest.fixture
def budget() -> pd.DataFrame:
    return make_budget({("差旅费", "销售一部"): 1200.0, ("招待费", "销售一部"): 100.0, ("礼品", "销售二部"): 0.0})


def actuals_of(budget: pd.DataFrame, spent: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Budget-shaped spend: {"category|unit": {month: amount}}."""
    out = budget.copy()
    out[list(MONTHS)] = 0.0
    for line, months in spent.items():
        category, unit = line.split("|")
        for month, amount in months.items():
            out.loc[(out["category"] == category) & (out["unit"] == unit), f"m{month}"] = amount
    return out


def move(amount, from_line="差旅费|销售一部", to_line="招待费|销售一部", from_month=4, to_month=None) -> Transfer:
    return Transfer(from_line=from_line, to_line=to_line, amount=amount, from_month=from_month, to_month=to_month,
                    reason="客户活动增加", approver="王经理", time=TIME)


def grand_total(budget: pd.DataFrame) -> float:
    return round(float(budget[list(MONTHS)].to_numpy().sum()), 2)


def test_transfer_moves_the_amount_and_logs_before_and_after(budget):
    new, row = apply_transfer(budget, move(300.0))
    assert new.loc[0, "m4"] == 900.0
    assert new.loc[1, "m4"] == 400.0
    assert row == {
        "time": TIME, "from_line": "差旅费|销售一部", "to_line": "招待费|销售一部", "amount": 300.0,
        "from_month": 4, "to_month": 4, "reason": "客户活动增加", "approver": "王经理",
        "from_before": 14400.0, "from_after": 14100.0, "to_before": 1200.0, "to_after": 1500.0,
    }
    assert grand_total(new) == grand_total(budget) == 15600.0
    assert budget.loc[0, "m4"] == 1200.0  # the input is not changed


def test_line_keys_tolerate_spaces_around_the_bar(budget):
    new, row = apply_transfer(budget, move(10.0, from_line=" 差旅费 | 销售一部"))
    assert row["from_line"] == "差旅费|销售一部"
    assert new.loc[0, "m4"] == 1190.0


def test_transfer_between_months(budget):
    new, row = apply_transfer(budget, move(50.0, to_line="招待费|销售一部", from_month=1, to_month=12))
    assert (new.loc[1, "m12"], new.loc[0, "m1"]) == (150.0, 1150.0)
    assert (row["from_month"], row["to_month"]) == (1, 12)


@pytest.mark.parametrize(("transfer", "message"), [
    (move(100.0, from_line="差旅费|销售三部"),
     "Unknown budget line '差旅费|销售三部' — write it as category|unit, one of: 差旅费|销售一部, 招待费|销售一部, 礼品|销售二部"),
    (move(100.0, to_line="nonsense"), "Unknown budget line 'nonsense'"),
    (move(0.0), "Transfer amount must be positive, got 0.0 — give an amount greater than 0; to move money back"),
    (move(-5.0), "Transfer amount must be positive, got -5.0"),
    (move(0.004), "Transfer amount must be positive, got 0.004"),  # rounds to 0 cents
    (move(10.0, to_line="差旅费|销售一部"),
     "Transfer from '差旅费|销售一部' month 4 to itself — choose a different to line or month"),
    (move(1200.01),
     "Transfer of 1,200.01 would make '差旅费|销售一部' month 4 negative (it has 1,200.00) — transfer at most 1,200.00"),
    (move(10.0, from_month=13), "from_month must be a month number 1–12, got 13"),
    (move(10.0, to_month=0), "to_month must be a month number 1–12, got 0"),
])
def test_refusals_say_what_and_how_to_fix(budget, transfer, message):
    with pytest.raises(BudgetError) as excinfo:
        apply_transfer(budget, transfer)
    assert str(excinfo.value).startswith(message)


def test_refused_when_more_than_the_available_remaining_amount(budget):
    spent = actuals_of(budget, {"差旅费|销售一部": {1: 5000.0, 2: 5000.0, 3: 4000.0}})  # 14,000 of 14,400
    with pytest.raises(BudgetError) as excinfo:
        apply_transfer(budget, move(400.01), actuals=spent)
    assert str(excinfo.value) == (
        "Transfer of 400.01 exceeds what is left on '差旅费|销售一部': plan 14,400.00 − spent 14,000.00 "
        "= 400.00 available — transfer at most 400.00")
    new, _ = apply_transfer(budget, move(400.0), actuals=spent)
    assert new.loc[0, "m4"] == 800.0


def test_a_move_within_one_line_is_not_limited_by_its_spend(budget):
    spent = actuals_of(budget, {"差旅费|销售一部": {1: 14400.0}})
    new, _ = apply_transfer(budget, move(100.0, to_line="差旅费|销售一部", to_month=5), actuals=spent)
    assert (new.loc[0, "m4"], new.loc[0, "m5"]) == (1100.0, 1300.0)


def test_totals_balance_after_many_random_transfers_and_the_log_replays(budget):
    rng = np.random.default_rng(20260315)
    lines = ["差旅费|销售一部", "招待费|销售一部", "礼品|销售二部"]
    current, rows, refused = budget, [], 0
    for _ in range(300):
        src, dst = rng.choice(lines, 2)
        amount = round(float(rng.uniform(0.01, 500)), 2)
        transfer = move(amount, src, dst, int(rng.integers(1, 13)), int(rng.integers(1, 13)))
        try:
            current, row = apply_transfer(current, transfer)
        except BudgetError:
            refused += 1
            continue
        rows.append(row)
        assert grand_total(current) == 15600.0
    assert 100 < len(rows) and refused > 0  # both outcomes were exercised
    assert (current[list(MONTHS)].to_numpy() >= 0).all()
    log = log_frame(rows)
    assert tuple(log.columns) == LOG_COLUMNS
    assert_frame_equal(replay(budget, log), current)


def test_replay_detects_a_log_that_does_not_belong_to_the_budget(budget):
    _, log = apply_transfers(budget, [move(100.0), move(50.0, from_month=5)])
    other = budget.assign(m4=budget["m4"] + 1)
    with pytest.raises(BudgetError, match="Adjustments log row 1 does not reproduce: from_after is 14,301.00, "
                                          "the log says 14,300.00"):
        replay(other, log)


def test_replay_of_a_log_read_back_with_text_and_float_months(budget):
    current, log = apply_transfers(budget, [move(100.0), move(33.33, from_month=6, to_month=7)])
    as_read = log.astype({"from_month": "float64", "to_month": "float64"})  # as a sheet gives them back
    assert_frame_equal(replay(budget, as_read), current)


def test_apply_transfers_is_all_or_nothing(budget):
    with pytest.raises(BudgetError, match="negative"):
        apply_transfers(budget, [move(100.0), move(5000.0)])
    assert budget.loc[0, "m4"] == 1200.0


# --- Spreading a yearly amount ---------------------------------------------------------

def test_split_cents_is_exact_largest_remainder():
    assert split_cents(100, np.array([1, 1, 1])).tolist() == [34, 33, 33]
    assert split_cents(1000, np.array([0, 0])).tolist() == [500, 500]
    assert split_cents(7, np.array([5, 0, 2])).tolist() == [5, 0, 2]
    parts = split_cents(123_457, np.array([3.3, 1.1, 7.7, 0.0]))
    assert parts.sum() == 123_457 and parts[3] == 0


def test_spread_takes_from_open_months_in_proportion_to_what_is_unspent(budget):
    spent = actuals_of(budget, {"差旅费|销售一部": {3: 1000.0, 4: 200.0}})
    transfers = spread_transfer(budget, "差旅费|销售一部", "招待费|销售一部", 1000.0, months=[3, 4, 5],
                                actuals=spent, reason="r", approver="a", time=TIME)
    # free: March 200, April 1,000, May 1,200 → 1,000 × (200, 1000, 1200) / 2400
    assert [(t.from_month, t.target_month, t.amount) for t in transfers] == [
        (3, 3, 83.33), (4, 4, 416.67), (5, 5, 500.0)]
    new, log = apply_transfers(budget, transfers, actuals=spent)
    assert new.loc[1, ["m3", "m4", "m5"]].tolist() == [183.33, 516.67, 600.0]
    assert log["amount"].sum() == pytest.approx(1000.0)
    assert grand_total(new) == grand_total(budget)


def test_spread_refused_beyond_what_the_months_have(budget):
    with pytest.raises(BudgetError, match=r"exceeds what '差旅费\|销售一部' has available in months 11, 12: 2,400.00"):
        spread_transfer(budget, "差旅费|销售一部", "招待费|销售一部", 2400.01, months=[11, 12])


# --- Carry-forward ---------------------------------------------------------------------

def test_carry_forward_moves_exactly_the_unused_money_of_closed_months(budget):
    spent = actuals_of(budget, {"差旅费|销售一部": {1: 1000.0, 2: 1300.0, 3: 50.0}, "招待费|销售一部": {1: 100.0}})
    transfers = carry_forward(budget, spent, as_of=dt.date(2026, 3, 15), reason="结转", approver="财务", time=TIME)
    assert all(t.from_line == t.to_line for t in transfers)
    assert all(t.from_month < 3 <= t.target_month for t in transfers)
    new, log = apply_transfers(budget, transfers, actuals=spent)
    # 差旅费: January left 200 unused; February was overspent (nothing to move). 招待费: February's 100.
    assert new.loc[0, ["m1", "m2"]].tolist() == [1000.0, 1200.0]
    assert new.loc[1, ["m1", "m2"]].tolist() == [100.0, 0.0]
    assert round(new.loc[0, list(MONTHS[2:])].sum() - budget.loc[0, list(MONTHS[2:])].sum(), 2) == 200.0
    assert new.loc[0, "m3"] == 1200.0 + 20.0          # 200 over 10 open months with equal plans
    assert new.loc[1, "m12"] == 110.0
    assert new.loc[2, list(MONTHS)].sum() == 0.0      # nothing planned, nothing moved
    assert grand_total(new) == grand_total(budget)
    assert (log["reason"] == "结转").all() and (log["from_before"] == log["from_after"]).all()
    assert_frame_equal(replay(budget, log), new)


def test_carry_forward_follows_the_open_months_plan_and_needs_few_transfers():
    budget = make_budget({("差旅费", "销售一部"): [300, 300, 100, 300, 0, 0, 0, 0, 0, 0, 0, 0]})
    spent = actuals_of(budget, {"差旅费|销售一部": {1: 200.0, 2: 100.0}})  # 100 + 200 unused
    transfers = carry_forward(budget, spent, as_of=dt.date(2026, 3, 1))
    # 300 shared 1 : 3 by March (100) and April (300); January's 100 fills March first.
    assert [(t.from_month, t.target_month, t.amount) for t in transfers] == [(1, 3, 75.0), (1, 4, 25.0), (2, 4, 200.0)]


def test_carry_forward_in_january_moves_nothing(budget):
    assert carry_forward(budget, actuals_of(budget, {}), as_of=dt.date(2026, 1, 31)) == []


# --- Dry run ---------------------------------------------------------------------------

def test_preview_shows_before_after_change_and_changes_nothing(budget):
    original = budget.copy()
    preview = preview_transfer(budget, move(300.0))
    assert_frame_equal(budget, original)
    assert preview.columns.tolist() == ["line", "state", *MONTHS, "year"]
    assert preview[["line", "state"]].values.tolist() == [
        ["差旅费|销售一部", "before"], ["差旅费|销售一部", "after"], ["差旅费|销售一部", "change"],
        ["招待费|销售一部", "before"], ["招待费|销售一部", "after"], ["招待费|销售一部", "change"]]
    assert preview["year"].tolist() == [14400.0, 14100.0, -300.0, 1200.0, 1500.0, 300.0]
    assert preview.loc[2, "m4"] == -300.0 and preview.loc[2, "m5"] == 0.0


def test_preview_refuses_like_apply(budget):
    with pytest.raises(BudgetError, match="negative"):
        preview_transfer(budget, [move(5000.0)])
