"""fill_budget and its parts, with answers worked out by hand in each test.

Rounding is checked in integer counts of the unit, so "the totals are preserved" means
exactly, not within a tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.budget import MONTHS, BudgetError
from xl_expense.core.budget_fill import (
    BASIS_COLUMNS,
    UNASSIGNED,
    UNCATEGORISED,
    _spread_shortfall,
    fill_budget,
    largest_remainder_round,
    monthly_actuals,
    seasonality,
)

M = list(MONTHS)


def ledger_rows(rows: list[tuple[str, float, str | None, str | None]], project: str | None = None) -> pd.DataFrame:
    """Canonical ledger from (date, amount, category, department) tuples."""
    dates, amounts, categories, departments = zip(*rows)
    return pd.DataFrame({
        "date": pd.to_datetime(list(dates)),
        "amount": list(amounts),
        "category": list(categories),
        "department": list(departments),
        "project": [project] * len(rows),
    })


def monthly(year: int, category: str, unit: str, amounts: list[float]) -> list[tuple]:
    """One ledger row on the 15th of each month with a non-zero amount."""
    return [(f"{year}-{m:02d}-15", a, category, unit) for m, a in enumerate(amounts, start=1) if a]


def counts(values, unit: float) -> np.ndarray:
    """Amounts as exact integer counts of the unit (fails if any is not a multiple)."""
    scaled = np.asarray(values, dtype=float) / unit
    ints = np.rint(scaled)
    assert np.allclose(scaled, ints, rtol=0, atol=1e-6), values
    return ints.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# largest_remainder_round
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "unit", "total", "expected"), [
    # twelve-month style tie: 3 × 50 = 150 → 200 (half up); ties go to the earlier entries
    ([50.0, 50.0, 50.0], 100.0, None, [100.0, 100.0, 0.0]),
    # Hamilton: floors 4+3+2 = 9 of 10, the largest remainder (.4) gets the last unit
    ([4.3, 3.4, 2.3], 1.0, None, [4.0, 4.0, 2.0]),
    # apportion 10 seats by equal weights: 3.33 each, the first gets the spare seat
    ([1.0, 1.0, 1.0], 1.0, 10.0, [4.0, 3.0, 3.0]),
    # weights that divide exactly stay exact
    ([0.6, 0.3, 0.1], 100.0, 1000.0, [600.0, 300.0, 100.0]),
    # cents: 33.3 + 33.3 + 33.4 cents → the .4 remainder wins the missing cent
    ([0.333, 0.333, 0.334], 0.01, None, [0.33, 0.33, 0.34]),
    # float noise: 0.1 + 0.2 is 0.30000000000000004, still exactly three tenths
    ([0.1 + 0.2], 0.1, None, [0.3]),
    ([129600.0], 100.0, None, [129600.0]),
    # signs: -1.3 and 2.6 hundreds; sum 1.3 → 1 hundred; -130 has the larger remainder (.7 above -200)
    ([-130.0, 260.0], 100.0, None, [-100.0, 200.0]),
    ([0.0, 0.0], 100.0, None, [0.0, 0.0]),
    ([], 100.0, None, []),
    ([0.0, 0.0], 100.0, 0.0, [0.0, 0.0]),
])
def test_largest_remainder_known_answers(values, unit, total, expected):
    assert largest_remainder_round(values, unit, total).tolist() == expected


def test_largest_remainder_ties_are_deterministic_and_in_order():
    # four quarters of one hundred: one hundred in total, given to the first
    assert largest_remainder_round([25.0] * 4, 100.0).tolist() == [100.0, 0.0, 0.0, 0.0]
    # the larger remainder wins before order is considered
    assert largest_remainder_round([25.0, 25.0, 26.0, 24.0], 100.0).tolist() == [0.0, 0.0, 100.0, 0.0]


def test_removing_units_prefers_positive_entries_with_small_remainders():
    steps = _spread_shortfall(-1, np.array([0.0, 0.5, 0.2]), np.array([0, 3, 2]))
    assert steps.tolist() == [0, 0, -1]


def test_largest_remainder_preserves_totals_exactly_over_random_cases():
    rng = np.random.default_rng(20260101)
    for _ in range(400):
        unit = float(rng.choice([0.01, 1.0, 10.0, 100.0, 1000.0]))
        values = np.round(rng.uniform(0, 20000, size=int(rng.integers(1, 30))), 2)
        result = largest_remainder_round(values, unit)
        got = counts(result, unit)
        # the rounded sum, half up, in whole units
        assert got.sum() == int(np.floor(np.round(values.sum() / unit, 9) + 0.5))
        # every entry moved by less than one unit (rounded down or up, never further)
        assert np.all(np.abs(result - values) < unit + 1e-9)

        total = float(np.round(rng.uniform(0, 50000), 2))
        split = largest_remainder_round(values, unit, total=total)
        assert counts(split, unit).sum() == int(np.floor(np.round(total / unit, 9) + 0.5))


@pytest.mark.parametrize(("values", "unit", "total"), [
    ([1.0, float("nan")], 100.0, None),
    ([1.0], 0.0, None),
    ([1.0], -100.0, None),
    ([-1.0, 2.0], 100.0, 100.0),      # negative weights cannot split a total
    ([0.0, 0.0], 100.0, 300.0),       # nothing to split by
    ([], 100.0, 300.0),               # nowhere to put it
])
def test_largest_remainder_refuses_bad_input(values, unit, total):
    with pytest.raises(BudgetError):
        largest_remainder_round(values, unit, total)


# ---------------------------------------------------------------------------------------------
# monthly_actuals and seasonality
# ---------------------------------------------------------------------------------------------

def test_monthly_actuals_totals_by_line_and_month():
    ledger = ledger_rows([
        ("2025-01-10", 100.0, "差旅", "华东"),
        ("2025-01-20", 50.0, "差旅", "华东"),
        ("2025-12-31", -30.0, "差旅", "华东"),   # refund: nets against December
        ("2025-03-01", 70.0, None, "华北"),      # no category
        ("2025-03-02", 20.0, " 礼品 ", None),     # spaces stripped, no department
        ("2024-05-05", 999.0, "差旅", "华东"),   # other year
        ("2025-06-01", float("nan"), "差旅", "华东"),  # no amount
    ])
    ledger.loc[len(ledger)] = [pd.NaT, 500.0, "差旅", "华东", None]  # no date: cannot be placed in a month
    actuals = monthly_actuals(ledger, year=2025)
    assert actuals.columns.tolist() == ["category", "unit", *M]
    # sorted by code point: 差 (U+5DEE) < 未 (U+672A) < 礼 (U+793C)
    assert actuals[["category", "unit"]].values.tolist() == [
        ["差旅", "华东"], [UNCATEGORISED, "华北"], ["礼品", UNASSIGNED]]
    assert actuals.loc[0, M].tolist() == [150.0] + [0.0] * 10 + [-30.0]
    assert actuals.loc[1, "m3"] == 70.0 and actuals.loc[2, "m3"] == 20.0
    # default year: the latest with a dated row
    assert monthly_actuals(ledger).loc[0, "m1"] == 150.0
    assert monthly_actuals(ledger, year=2024).loc[0, "m5"] == 999.0


def test_monthly_actuals_by_stage_reads_the_project_column():
    ledger = ledger_rows([("2025-02-01", 10.0, "礼品", "华东")], project="方案阶段")
    assert monthly_actuals(ledger, unit_by="stage")["unit"].tolist() == ["方案阶段"]
    with pytest.raises(BudgetError, match="budget_by"):
        monthly_actuals(ledger, unit_by="region")


def test_seasonality_keeps_a_december_peak_and_falls_back():
    rows = (monthly(2025, "礼品", "华东", [100.0] * 11 + [1100.0])     # Dec-heavy, enough history
            + monthly(2025, "礼品", "华北", [0.0] * 5 + [300.0] + [0.0] * 6)  # one month: not a season
            + monthly(2025, "培训", "华南", [200.0, 200.0, 200.0] + [0.0] * 9))  # 600 < min_total
    shares = seasonality(monthly_actuals(ledger_rows(rows), year=2025), min_total=1000.0, min_months=3)
    by_line = shares.set_index(["category", "unit"])
    np.testing.assert_allclose(shares[M].sum(axis=1), 1.0)

    east = by_line.loc[("礼品", "华东")]
    assert east["source"] == "line"
    assert east["m12"] == pytest.approx(1100 / 2200)
    assert east["m1"] == pytest.approx(100 / 2200)

    # the category across units: 100×11 + 300 in June + 1100 in December = 2500
    north = by_line.loc[("礼品", "华北")]
    assert north["source"] == "category"
    assert north["m6"] == pytest.approx(400 / 2500)
    assert north["m12"] == pytest.approx(1100 / 2500)

    south = by_line.loc[("培训", "华南")]
    assert south["source"] == "flat"
    assert south[M].tolist() == [1 / 12] * 12


# ---------------------------------------------------------------------------------------------
# fill_budget: history × growth
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def growth_ledger() -> pd.DataFrame:
    rows = (monthly(2025, "差旅", "华东", [1000.0] * 11 + [9000.0])           # 20,000, Dec-heavy
            + monthly(2025, "礼品", "华北", [0, 0, 1234.0, 0, 0, 1234.0, 0, 0, 1234.0, 0, 0, 0])  # 3,702
            + monthly(2024, "差旅", "华东", [50000.0] * 12)                   # older year: ignored
            + monthly(2026, "差旅", "华东", [70000.0]))                      # the budget year itself: ignored
    return ledger_rows(rows)


def test_fill_by_growth_known_answer(growth_ledger):
    budget, basis = fill_budget(growth_ledger, year=2026, growth=0.08, round_to=100)
    assert budget[["category", "unit"]].values.tolist() == [["差旅", "华东"], ["礼品", "华北"]]
    # 20,000 × 1.08 = 21,600; months 1,080 ×11 and 9,720 → floors 10×11 + 97 = 207 of 216 hundreds,
    # the nine missing go to the .8 remainders in month order (Jan–Sep)
    assert budget.loc[0, M].tolist() == [1100.0] * 9 + [1000.0] * 2 + [9700.0]
    # 3,702 × 1.08 = 3,998.16; grand 25,598.16 → 256 hundreds, so this line gets 40 (not 39);
    # its three equal months 1,333.33 → the spare hundred goes to March
    assert budget.loc[1, M].tolist() == [0, 0, 1400.0, 0, 0, 1300.0, 0, 0, 1300.0, 0, 0, 0]

    assert basis.columns.tolist() == list(BASIS_COLUMNS)
    first = basis.loc[0]
    assert first["method"] == "history×growth"
    assert first["history_year"] == 2025
    assert first["history_total"] == 20000.0
    assert first["growth"] == 0.08
    assert first["computed_total"] == pytest.approx(21600.0)
    assert first["budget_total"] == 21600.0
    assert first["seasonality_source"] == "line"
    assert first["text_zh"] == "2025年实际 ¥20,000 × (1+8%) = ¥21,600，按2025年该行月度分布分摊，取整到百元：¥21,600。"
    assert first["text_en"] == ("2025 actual ¥20,000 × (1+8%) = ¥21,600; spread over months as this line in 2025; "
                                "rounded to multiples of ¥100: ¥21,600.")
    assert basis.loc[1, "text_zh"] == ("2025年实际 ¥3,702 × (1+8%) = ¥3,998.16，按2025年该行月度分布分摊，"
                                       "取整到百元：¥4,000。")


def test_fill_negative_growth_reads_as_a_minus(growth_ledger):
    _, basis = fill_budget(growth_ledger, year=2026, growth=-0.05)
    assert "× (1−5%) = ¥19,000" in basis.loc[0, "text_zh"]


def test_rounding_preserves_line_and_grand_totals_exactly():
    rng = np.random.default_rng(7)
    size = 400
    ledger = pd.DataFrame({
        "date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, size), unit="D"),
        "amount": np.round(rng.gamma(2.0, 800.0, size), 2),
        "category": rng.choice(["差旅", "礼品", "招待", None], size),
        "department": rng.choice(["华东", "华北", "华南", "西部", None], size),
    })
    for unit in (100.0, 10.0, 0.01):
        budget, basis = fill_budget(ledger, year=2026, growth=0.037, round_to=unit)
        month_counts = np.vstack([counts(budget[m], unit) for m in M]).T
        line_counts = counts(basis["budget_total"], unit)
        assert (month_counts.sum(axis=1) == line_counts).all()
        computed = basis["computed_total"].sum()
        assert line_counts.sum() == int(np.floor(np.round(computed / unit, 9) + 0.5))
        assert (month_counts >= 0).all()


def test_fill_requires_history_or_targets():
    empty = ledger_rows([("2027-01-01", 10.0, "差旅", "华东")])  # only after the budget year
    with pytest.raises(BudgetError, match="no targets"):
        fill_budget(empty, year=2026)
    with pytest.raises(BudgetError, match="growth"):
        fill_budget(empty, year=2028, growth=-1.5)


# ---------------------------------------------------------------------------------------------
# fill_budget: targets × expense ratio
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def target_ledger() -> pd.DataFrame:
    rows = (monthly(2025, "差旅", "华东", [2500.0] * 12)               # 30,000, even
            + monthly(2025, "礼品", "华东", [0.0] * 11 + [10000.0])    # 10,000, December only
            + monthly(2025, "差旅", "华北", [600.0] * 12))             # 7,200, no target
    return ledger_rows(rows)


def test_fill_by_targets_with_ratio_from_history(target_ledger):
    targets = pd.DataFrame({"unit": ["华东"], "revenue": [1_500_000.0]})
    revenue = pd.DataFrame({"unit": ["华东", "华北"], "revenue": [1_000_000.0, 500_000.0]})
    budget, basis = fill_budget(target_ledger, year=2026, targets=targets, revenue=revenue)
    lines = budget.set_index(["category", "unit"])
    # ratio 40,000 / 1,000,000 = 4 %; 1,500,000 × 4 % = 60,000, split 75 % / 25 % by 2025 categories
    # 差旅 45,000 over 12 even months: 3,750 each → 37.5 hundreds, ties to Jan–Jun
    assert lines.loc[("差旅", "华东"), M].tolist() == [3800.0] * 6 + [3700.0] * 6
    # 礼品 had one month only, and no other unit has it: flat, 1,250 → 12.5 hundreds
    assert lines.loc[("礼品", "华东"), M].tolist() == [1300.0] * 6 + [1200.0] * 6
    # 华北 has no target: last year × (1 + 0)
    assert lines.loc[("差旅", "华北"), M].tolist() == [600.0] * 12

    info = basis.set_index(["category", "unit"])
    east = info.loc[("差旅", "华东")]
    assert east["method"] == "target×ratio"
    assert east["ratio"] == pytest.approx(0.04)
    assert east["ratio_source"] == "history"
    assert east["target_revenue"] == 1_500_000.0
    assert east["share"] == pytest.approx(0.75)
    assert east["budget_total"] == 45000.0
    assert east["text_zh"] == ("2026年销售目标 ¥1,500,000 × 费用率 4%（2025年费用 ¥40,000 ÷ 收入 ¥1,000,000）"
                               " × 该部门2025年「差旅」占比 75% = ¥45,000，按2025年该行月度分布分摊，取整到百元：¥45,000。")
    assert "sales target ¥1,500,000 × expense ratio 4%" in east["text_en"]
    assert info.loc[("差旅", "华北"), "method"] == "history×growth"
    assert info.loc[("礼品", "华东"), "seasonality_source"] == "flat"


@pytest.mark.parametrize("ratio", [0.05, {"华东": 0.05}])
def test_fill_by_targets_with_given_ratio(target_ledger, ratio):
    targets = pd.DataFrame({"unit": ["华东"], "revenue": [1_500_000.0]})
    budget, basis = fill_budget(target_ledger, year=2026, targets=targets, expense_ratio=ratio)
    totals = dict(zip(budget["category"] + "|" + budget["unit"], budget[M].sum(axis=1)))
    # 75,000 → 56,250 + 18,750; with 7,200 the grand total is 822 hundreds: the .5 tie goes to the
    # first line in order (差旅|华东)
    assert totals == {"差旅|华东": 56300.0, "差旅|华北": 7200.0, "礼品|华东": 18700.0}
    assert set(basis.loc[basis["unit"] == "华东", "ratio_source"]) == {"given"}
    assert "费用率 5%（给定）" in basis.loc[0, "text_zh"]


def test_monthly_targets_set_the_monthly_profile(target_ledger):
    targets = pd.DataFrame({"unit": ["华东"] * 12, "month": range(1, 13),
                            "revenue": [100_000.0] * 11 + [400_000.0]})  # 1,500,000 in all
    budget, basis = fill_budget(target_ledger, year=2026, targets=targets, expense_ratio=0.04)
    east = budget[(budget["category"] == "差旅") & (budget["unit"] == "华东")].iloc[0]
    # 45,000 × 1/15 = 3,000 a month, December 45,000 × 4/15 = 12,000
    assert east[M].tolist() == [3000.0] * 11 + [12000.0]
    assert set(basis.loc[basis["unit"] == "华东", "seasonality_source"]) == {"target"}
    assert basis.loc[basis["unit"] == "华北", "seasonality_source"].tolist() == ["line"]


def test_new_unit_with_given_ratio_uses_company_category_shares(target_ledger):
    targets = pd.DataFrame({"unit": ["华南"], "revenue": [1_000_000.0]})
    _, basis = fill_budget(target_ledger, year=2026, targets=targets, expense_ratio={"华南": 0.0472})
    south = basis[basis["unit"] == "华南"].set_index("category")
    # company 2025: 差旅 37,200, 礼品 10,000 of 47,200; 1,000,000 × 4.72 % = 47,200
    assert south["method"].unique().tolist() == ["category fallback"]
    assert south.loc["差旅", "budget_total"] == 37200.0
    assert south.loc["礼品", "budget_total"] == 10000.0
    assert "全公司2025年「差旅」占比" in south.loc["差旅", "text_zh"]


def test_targets_without_history_give_one_flat_line_per_unit():
    later = ledger_rows([("2027-03-01", 10.0, "差旅", "华东")])
    targets = pd.DataFrame({"unit": ["华东"], "revenue": [120_000.0]})
    budget, basis = fill_budget(later, year=2026, targets=targets, expense_ratio=0.1)
    assert budget[["category", "unit"]].values.tolist() == [[UNCATEGORISED, "华东"]]
    assert budget.loc[0, M].tolist() == [1000.0] * 12
    assert basis.loc[0, "method"] == "flat"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"targets": pd.DataFrame({"unit": ["华西"], "revenue": [1.0]}),
      "revenue": pd.DataFrame({"unit": ["华东"], "revenue": [1.0]})}, "unknown to the history: 华西"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "revenue": [1.0]})}, "no expense ratio for 华东"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "revenue": [1.0]}), "expense_ratio": -0.01}, "non-negative"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "revenue": [1.0]}), "expense_ratio": 3}, "0.03 for 3%"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "revenue": [-5.0]}), "expense_ratio": 0.1}, "negative"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "amount": [1.0]}), "expense_ratio": 0.1}, "no column revenue"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "month": [13], "revenue": [1.0]}), "expense_ratio": 0.1}, "1 to 12"),
    ({"targets": pd.DataFrame({"unit": ["华东"], "revenue": [1.0]}),
      "revenue": pd.DataFrame({"unit": ["华东"], "revenue": [0.0]})}, "no positive revenue history for 华东"),
])
def test_target_inputs_are_validated(target_ledger, kwargs, message):
    with pytest.raises(BudgetError, match=message):
        fill_budget(target_ledger, year=2026, **kwargs)


# ---------------------------------------------------------------------------------------------
# fill_budget: weights over projects / stages
# ---------------------------------------------------------------------------------------------

def test_weights_split_each_category_total(target_ledger):
    weights = pd.DataFrame({"unit": ["P1", "P2", "P3"], "weight": [1.0, 3.0, 5.0],
                            "category": [None, None, "礼品"]})
    budget, basis = fill_budget(target_ledger, year=2026, unit_by="project", weights=weights)
    totals = dict(zip(budget["category"] + "|" + budget["unit"], budget[M].sum(axis=1)))
    # 差旅 37,200 split 1:3 by the general rows; 礼品 10,000 all to P3 (its own rows win)
    assert totals == {"差旅|P1": 9300.0, "差旅|P2": 27900.0, "礼品|P3": 10000.0}
    assert set(basis["method"]) == {"weights"}
    p1 = basis[basis["unit"] == "P1"].iloc[0]
    assert p1["share"] == pytest.approx(0.25)
    # new projects have no history of their own: the category's pattern (even here)
    assert p1["seasonality_source"] == "category"
    assert p1["text_zh"].startswith("「差旅」合计 ¥37,200（2025年实际 ¥37,200 × (1+0%)）× 权重 25% = ¥9,300")


def test_weights_split_a_target_total():
    rows = monthly(2025, "差旅", "华东", [1000.0] * 12) + monthly(2025, "礼品", "华东", [500.0] * 12)
    targets = pd.DataFrame({"revenue": [600_000.0]})  # one company target, no unit
    weights = pd.DataFrame({"unit": ["方案", "签约"], "weight": [2.0, 1.0]})
    budget, basis = fill_budget(ledger_rows(rows), year=2026, unit_by="stage", targets=targets,
                                expense_ratio=0.03, weights=weights)
    totals = dict(zip(budget["category"] + "|" + budget["unit"], budget[M].sum(axis=1)))
    # 600,000 × 3 % = 18,000; 差旅 2/3 → 12,000, 礼品 1/3 → 6,000; then 2:1 over the stages
    assert totals == {"差旅|方案": 8000.0, "差旅|签约": 4000.0, "礼品|方案": 4000.0, "礼品|签约": 2000.0}
    assert basis.loc[0, "text_zh"] == ("「差旅」合计 ¥12,000（2026年销售目标 ¥600,000 × 费用率 3%（给定） × 类别占比 66.67%）"
                                       "× 权重 66.67% = ¥8,000，按2025年「差旅」全部单位的月度分布分摊，取整到百元：¥8,000。")


def test_weights_are_validated(target_ledger):
    with pytest.raises(BudgetError, match="招待"):
        fill_budget(target_ledger, year=2026, weights=pd.DataFrame(
            {"unit": ["P1"], "weight": [1.0], "category": ["招待"]}))
    with pytest.raises(BudgetError, match="no weights for category"):
        fill_budget(target_ledger, year=2026, weights=pd.DataFrame(
            {"unit": ["P1"], "weight": [1.0], "category": ["差旅"]}))
    with pytest.raises(BudgetError, match="all zero"):
        fill_budget(target_ledger, year=2026, weights=pd.DataFrame({"unit": ["P1"], "weight": [0.0]}))


def test_unit_totals_survive_rounding_exactly() -> None:
    """Rounding is level by level: a unit's round target × ratio is not nudged by its neighbours."""
    from xl_expense.core.budget_fill import _round_budget

    computed = np.array([333.4, 333.3, 333.3, 250.0, 250.0, 250.0, 250.0])
    units = np.array(["东", "东", "东", "南", "南", "南", "南"], dtype=object)
    shares = np.full((7, 12), 1 / 12)
    totals, months = _round_budget(computed, shares, 100.0, units)
    assert totals[:3].sum() == 1000.0 and totals[3:].sum() == 1000.0
    assert months.sum(axis=1).tolist() == totals.tolist()
    flat, _ = _round_budget(computed, shares, 100.0)
    assert flat.sum() == 2000.0
