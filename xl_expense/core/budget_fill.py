"""Fill a budget from last year's actuals, sales targets and allocation weights (pure).

The article our users follow asks for a budget "drawn from market, sales targets and history":
each budget line (category × unit) gets an annual amount and a monthly spread, and finance has
to be able to say *why* every number is what it is. So :func:`fill_budget` returns two frames:
the budget (shape of :mod:`xl_expense.core.budget`) and a *basis* with one row per line that
names the method, the inputs and a sentence in Chinese and in English.

Three ways to get a line's annual amount:

``history×growth``
    last year's actual spend of the line × (1 + growth).
``target×ratio``
    the unit's sales target for the budget year × its expense ratio (费用率), split over the
    unit's categories by last year's category shares. ``category fallback`` is the same with
    company-wide category shares, for a unit that has a target but no spend history; ``flat``
    is the same with no history at all (one uncategorised line per unit).
``weights``
    a category total (history × growth, or targets × ratio) split over units by weights, for
    new projects or sales stages that have no history of their own.

Months follow the line's own history when it has enough (see :func:`seasonality`), else its
category across all units, else 1/12 each; a target given per month overrides both. Amounts
are then rounded to a unit (e.g. ¥100) by the largest-remainder method, level by level: unit
totals against the grand total, line totals against their unit's total, then each line's
months against the line total, so the rounded budget adds up exactly at every level: no
"rounding difference" line for finance to explain.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from xl_expense.core.budget import (
    BUDGET_COLUMNS,
    KEY_COLUMNS,
    MONTHS,
    UNIT_COLUMNS,
    BudgetError,
    empty_budget,
)

#: Category of ledger rows whose category cell is empty (one label, so the line is visible
#: in the budget and can be reassigned, rather than silently dropped).
UNCATEGORISED = "未分类"
#: Unit (department / project / stage) of ledger rows whose unit cell is empty.
UNASSIGNED = "未分配"

#: A line needs this much positive spend, in this many distinct months, to have a seasonality
#: of its own (see :func:`seasonality`); fill_budget uses these defaults.
SEASON_MIN_TOTAL = 1000.0
SEASON_MIN_MONTHS = 3

#: Methods written into the basis ``method`` column (stable ids, like audit rule ids).
METHODS = ("history×growth", "target×ratio", "category fallback", "flat", "weights")
#: Values of the basis ``seasonality_source`` column.
SEASONALITY_SOURCES = ("line", "category", "flat", "target")

BASIS_COLUMNS = (
    "category",
    "unit",
    "method",
    "history_year",      # the calendar year whose actuals were used (<NA> without history)
    "history_total",     # that year's net actual of the line (weights: of the whole category)
    "growth",            # growth rate applied (history×growth and weights-from-history)
    "ratio",             # expense ratio (费用率) applied (target modes)
    "ratio_source",      # "given" | "history"
    "target_revenue",    # the unit's sales target (weights: the total of all targets)
    "share",             # category share within the unit, or the unit's weight share
    "seasonality_source",
    "computed_total",    # the annual amount before rounding
    "budget_total",      # the annual amount after rounding (= sum of m1..m12)
    "text_zh",
    "text_en",
)

_UNIT_WORDS = {
    "department": ("部门", "department"),
    "project": ("项目", "project"),
    "stage": ("销售阶段", "sales stage"),
}
_ROUND_WORDS_ZH = {0.01: "分", 0.1: "角", 1.0: "元", 10.0: "十元", 100.0: "百元", 1000.0: "千元", 10000.0: "万元"}


# ---------------------------------------------------------------------------------------------
# largest-remainder rounding
# ---------------------------------------------------------------------------------------------

def _check_round_unit(unit: float) -> float:
    """The rounding unit as a positive float, or a BudgetError that says how to fix it."""
    try:
        value = float(unit)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise BudgetError(f"rounding unit {unit!r} is not a positive amount",
                          "use e.g. 100 to round to hundreds, or 0.01 for cents")
    return value


def _decimals(unit: float) -> int:
    """Decimal places of a rounding unit (0.05 → 2), to print multiples without float dust."""
    exponent = Decimal(repr(unit)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _spread_shortfall(shortfall: int, remainders: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Units to add (or remove) per entry so the counts reach their target sum.

    Adding goes to the largest remainders first (they were rounded down the most); removing
    takes from the smallest remainders first, preferring entries still above zero so that
    non-negative input does not turn negative. Ties keep the original order (stable sort),
    which makes the result deterministic.
    """
    size = remainders.size
    if shortfall == 0 or size == 0:
        return np.zeros(size, dtype=np.int64)
    if shortfall > 0:
        order = np.argsort(-remainders, kind="stable")
    else:
        # lexsort sorts by the last key first: positives before the rest, then remainder, then position
        order = np.lexsort((np.arange(size), remainders, counts <= 0))
    whole, part = divmod(abs(shortfall), size)
    steps = np.full(size, whole, dtype=np.int64)
    steps[order[:part]] += 1
    return steps if shortfall > 0 else -steps


def largest_remainder_round(values, unit: float = 100.0, total: float | None = None) -> np.ndarray:
    """Round amounts to multiples of ``unit`` so that they add up to an exact rounded total.

    Rounding each month of a budget on its own makes the year total drift from what was
    agreed (twelve ¥50 months round to ¥1,200 or ¥0, never ¥600). The largest-remainder
    (Hamilton) method rounds every amount down, then gives the missing units one by one to
    the amounts that lost the most, so the sum is exactly the rounded total.

    Parameters
    ----------
    values : array-like of float
        Amounts in currency units (yuan). Without ``total`` they may have any sign; with
        ``total`` they are weights and must be non-negative.
    unit : float, default 100.0
        Rounding unit; results are exact multiples of it.
    total : float, optional
        The total the results must add up to, itself rounded half-up to ``unit``. Default: the
        rounded sum of ``values``. When given, ``values`` are first scaled proportionally to it
        (classic Hamilton apportionment of a total by weights).

    Returns
    -------
    numpy.ndarray of float64
        Same length as ``values`` (flattened). Ties between equal remainders go to the entry
        that comes first.

    Raises
    ------
    BudgetError
        Non-finite values or unit; negative weights with ``total``; a non-zero ``total`` to
        split over no values or over weights that sum to zero.

    Examples
    --------
    >>> largest_remainder_round([50.0, 50.0, 50.0], unit=100).tolist()
    [100.0, 100.0, 0.0]
    """
    step = _check_round_unit(unit)
    amounts = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(amounts).all():
        raise BudgetError("amounts to round contain an empty or infinite value",
                          "fill every amount with a number (0 for none)")
    if total is not None:
        amounts = _scale_to_total(amounts, float(total))
        target = float(total)
    else:
        target = float(amounts.sum())
    # Work in integer counts of the unit: the 9-decimal snap removes float noise such as
    # 129600/100 = 1295.9999999999998 before flooring.
    quotas = np.round(amounts / step, 9)
    floors = np.floor(quotas)
    counts = floors.astype(np.int64)
    target_count = int(np.floor(np.round(target / step, 9) + 0.5))  # half-up, as finance rounds
    if amounts.size == 0:
        if target_count != 0:
            raise BudgetError(f"cannot split a total of {target:,.2f} over no amounts",
                              "add at least one line to receive the total")
        return np.zeros(0, dtype=np.float64)
    counts += _spread_shortfall(target_count - int(counts.sum()), quotas - floors, counts)
    return np.round(counts * step, _decimals(step))


def _scale_to_total(weights: np.ndarray, total: float) -> np.ndarray:
    """Weights scaled so they sum to ``total`` (the Hamilton quotas)."""
    if (weights < 0).any():
        raise BudgetError("weights to split a total by include a negative value",
                          "use zero or positive weights")
    weight_sum = weights.sum()
    if weight_sum == 0:
        if total != 0 and weights.size:
            raise BudgetError(f"cannot split {total:,.2f} by weights that are all zero",
                              "give at least one positive weight")
        return weights
    return weights * (total / weight_sum)


# ---------------------------------------------------------------------------------------------
# actuals and seasonality
# ---------------------------------------------------------------------------------------------

def _unit_column(unit_by: str) -> str:
    """Ledger column that holds the budget unit, or a BudgetError listing the valid choices."""
    if unit_by not in UNIT_COLUMNS:
        raise BudgetError(f"unknown budget unit {unit_by!r}",
                          f"set budget_by to one of: {', '.join(UNIT_COLUMNS)}")
    return UNIT_COLUMNS[unit_by]


def _labels(frame: pd.DataFrame, column: str, missing: str) -> pd.Series:
    """Text labels of a column, stripped, with empty cells (or an absent column) as ``missing``."""
    if column not in frame.columns:
        return pd.Series(missing, index=frame.index, dtype=object)
    text = frame[column].astype("string").str.strip()
    return text.mask(text.isna() | text.eq(""), missing).astype(object)


def _budget_from_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """Budget-shaped frame from a (category, unit) × month-number table."""
    table = table.reindex(columns=range(1, 13), fill_value=0.0)
    table.columns = list(MONTHS)
    budget = table.reset_index()
    for key in KEY_COLUMNS:
        budget[key] = budget[key].astype(object)
    for month in MONTHS:
        budget[month] = budget[month].astype("float64")
    return budget[list(BUDGET_COLUMNS)]


def monthly_actuals(ledger: pd.DataFrame, unit_by: str = "department", year: int | None = None) -> pd.DataFrame:
    """Actual spend per category × unit × calendar month of one year, in budget shape.

    This is what last year's budget *should* have been, and the base every fill method
    starts from.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger (``xl_expense.schema``): ``date``, ``amount``, ``category`` and the
        unit column are used.
    unit_by : {"department", "project", "stage"}
        Which ledger column is the budget unit (stage reads the ``project`` column).
    year : int, optional
        Calendar year to total. Default: the latest year with a dated row.

    Returns
    -------
    DataFrame
        ``category, unit, m1..m12``, sorted by category then unit. Amounts are net (refunds,
        negative in the ledger, reduce their month). Rows without a readable date or amount
        are skipped: they cannot be placed in a month. An empty category becomes
        :data:`UNCATEGORISED` and an empty unit :data:`UNASSIGNED`, so their spend stays in
        the budget where finance can see it.
    """
    unit_column = _unit_column(unit_by)
    if "date" not in ledger.columns or "amount" not in ledger.columns:
        raise BudgetError("the history ledger has no date or amount column",
                          "pass the canonical ledger read by load_ledger")
    dates = pd.to_datetime(ledger["date"], errors="coerce")
    amounts = pd.to_numeric(ledger["amount"], errors="coerce")
    usable = dates.notna() & amounts.notna()
    if year is None:
        if not usable.any():
            return empty_budget()
        year = int(dates[usable].dt.year.max())
    keep = (usable & (dates.dt.year == year)).to_numpy()
    if not keep.any():
        return empty_budget()
    rows = pd.DataFrame({
        "category": _labels(ledger, "category", UNCATEGORISED)[keep],
        "unit": _labels(ledger, unit_column, UNASSIGNED)[keep],
        "month": dates[keep].dt.month,
        "amount": amounts[keep].astype("float64"),
    })
    table = rows.groupby(["category", "unit", "month"], sort=True)["amount"].sum().unstack("month", fill_value=0.0)
    return _budget_from_pivot(table)


def _line_shares(lines: pd.DataFrame, history: pd.DataFrame, min_total: float, min_months: int):
    """Monthly shares for any lines (n × 12 array) and where each came from.

    A line uses its own history if that history is big enough, else its category summed
    over all units of the history, else 1/12 per month. Months with net refunds count as
    zero: a negative share would make a budget month negative.
    """
    keys = lines[list(KEY_COLUMNS)].reset_index(drop=True)
    months = list(MONTHS)
    clipped = history[list(KEY_COLUMNS)].copy()
    clipped[months] = history[months].clip(lower=0.0).to_numpy()
    by_category = clipped.groupby("category", sort=False)[months].sum().reset_index()

    def enough(frame: pd.DataFrame) -> np.ndarray:
        values = frame[months].to_numpy(dtype=np.float64)
        total = values.sum(axis=1)
        return (total > 0) & (total >= min_total) & ((values > 0).sum(axis=1) >= min_months)

    line_hist = keys.merge(clipped, on=list(KEY_COLUMNS), how="left")[months].fillna(0.0)
    cat_hist = keys[["category"]].merge(by_category, on="category", how="left")[months].fillna(0.0)
    line_ok, cat_ok = enough(line_hist), enough(cat_hist)

    flat = np.full((len(keys), 12), 1.0 / 12.0)
    line_values = line_hist.to_numpy(dtype=np.float64)
    cat_values = cat_hist.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        line_shares = line_values / line_values.sum(axis=1, keepdims=True)
        cat_shares = cat_values / cat_values.sum(axis=1, keepdims=True)
    shares = np.where(line_ok[:, None], line_shares, np.where(cat_ok[:, None], cat_shares, flat))
    source = np.where(line_ok, "line", np.where(cat_ok, "category", "flat")).astype(object)
    return shares, source


def seasonality(history: pd.DataFrame, min_total: float = SEASON_MIN_TOTAL, min_months: int = SEASON_MIN_MONTHS) -> pd.DataFrame:
    """Share of each calendar month in every line's year, from a history in budget shape.

    Sales maintenance spend is seasonal (year-end client gifts, Spring Festival, trade-fair
    months), so an annual budget spread 1/12 per month raises false alarms in quiet months
    and hides overruns in busy ones.

    Parameters
    ----------
    history : DataFrame
        Actuals in budget shape, e.g. from :func:`monthly_actuals`.
    min_total : float, default 1000.0
        A line (or category) with less positive spend than this is too small to have a
        pattern of its own.
    min_months : int, default 3
        ... or with spend in fewer distinct months: one big March invoice is an event, not a
        season, and would otherwise put the whole next-year budget into March.

    Returns
    -------
    DataFrame
        ``category, unit, m1..m12`` (shares, each row sums to 1) plus ``source``:
        ``"line"`` (own history), ``"category"`` (the category across all units) or
        ``"flat"`` (1/12 each).
    """
    shares, source = _line_shares(history, history, min_total, min_months)
    result = history[list(KEY_COLUMNS)].reset_index(drop=True).copy()
    result[list(MONTHS)] = shares
    result["source"] = source
    return result


# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------

def _check_growth(growth: float) -> float:
    """Growth as a float above -100 %."""
    try:
        value = float(growth)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= -1.0:
        raise BudgetError(f"growth {growth!r} is not a rate above -100%",
                          "give growth as a fraction, e.g. 0.08 for +8% or -0.05 for -5%")
    return value


def _check_ratio(ratio: object, unit: str | None = None) -> float:
    """An expense ratio given by the user, as a fraction in [0, 1]."""
    where = f" for {unit}" if unit else ""
    try:
        value = float(ratio)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise BudgetError(f"expense ratio{where} {ratio!r} is not a non-negative number",
                          "give the ratio as a fraction, e.g. 0.03 for 3%")
    # 费用率 of 3 almost always means "3 %" typed as a whole number, not 300 % of revenue.
    if value > 1:
        raise BudgetError(f"expense ratio{where} {ratio!r} is above 100% of revenue",
                          f"give it as a fraction: {value / 100:g} for {value:g}%")
    return value


def _money_column(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    """A numeric, finite, non-negative amount column, or a BudgetError naming the bad row."""
    values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() < 0)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise BudgetError(f"{what}: {column} in row {position + 1} is empty, not a number or negative",
                          f"fill {column} with a non-negative amount")
    return values


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise when a user-supplied table lacks a column we need."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BudgetError(f"{what} has no column {', '.join(missing)} (found: {', '.join(map(str, frame.columns))})",
                          f"name the columns {', '.join(columns)}")


def _target_table(targets: pd.DataFrame, need_unit: bool):
    """Annual target per unit and, when months are given, each unit's monthly profile.

    Returns ``(annual: Series by unit, profiles: dict unit → 12 shares)``. Without a ``unit``
    column (allowed only with weights) everything is one unit, ``"*"``.
    """
    _require(targets, ("unit", "revenue") if need_unit else ("revenue",), "targets")
    frame = pd.DataFrame({
        "unit": _labels(targets, "unit", "*") if "unit" in targets.columns else "*",
        "revenue": _money_column(targets, "revenue", "targets"),
    })
    profiles: dict[str, np.ndarray] = {}
    if "month" in targets.columns:
        months = pd.to_numeric(targets["month"], errors="coerce")
        if not months.isin(range(1, 13)).all():
            raise BudgetError("targets: month must be a number from 1 to 12 in every row",
                              "fill month with 1–12, or drop the month column for annual targets")
        frame["month"] = months.astype(int).to_numpy()
        table = frame.groupby(["unit", "month"])["revenue"].sum().unstack("month", fill_value=0.0)
        table = table.reindex(columns=range(1, 13), fill_value=0.0)
        for unit, row in table.iterrows():
            values = row.to_numpy(dtype=np.float64)
            if values.sum() > 0:
                profiles[str(unit)] = values / values.sum()
    annual = frame.groupby("unit", sort=True)["revenue"].sum()
    return annual, profiles


def _revenue_table(revenue: pd.DataFrame) -> pd.Series:
    """Historical revenue per unit (months, if any, are summed)."""
    _require(revenue, ("unit", "revenue"), "revenue history")
    frame = pd.DataFrame({"unit": _labels(revenue, "unit", UNASSIGNED),
                          "revenue": _money_column(revenue, "revenue", "revenue history")})
    return frame.groupby("unit")["revenue"].sum()


# ---------------------------------------------------------------------------------------------
# annual amount per line (the "plan")
# ---------------------------------------------------------------------------------------------

def _history_totals(actuals: pd.DataFrame) -> pd.DataFrame:
    """Lines of the history with net total and the positive total used for budgeting.

    A line whose refunds exceed its spend (net negative) is budgeted at zero, not negative.
    """
    lines = actuals[list(KEY_COLUMNS)].reset_index(drop=True).copy()
    lines["net"] = actuals[list(MONTHS)].sum(axis=1).to_numpy()
    lines["base"] = lines["net"].clip(lower=0.0)
    return lines


def _plan_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Plan rows completed with every basis input column (missing ones as NaN)."""
    plan = rows.copy()
    for column in ("history_total", "growth", "ratio", "target_revenue", "share",
                   "aux_spend", "aux_revenue", "aux_category_total", "aux_category_share"):
        if column not in plan.columns:
            plan[column] = np.nan
        plan[column] = plan[column].astype("float64")
    if "ratio_source" not in plan.columns:
        plan["ratio_source"] = None
    plan["ratio_source"] = plan["ratio_source"].astype(object)
    return plan


def _plan_by_growth(lines: pd.DataFrame, growth: float) -> pd.DataFrame:
    """history×growth: every history line, last year's (non-negative) actual × (1 + growth)."""
    return _plan_frame(pd.DataFrame({
        "category": lines["category"], "unit": lines["unit"], "method": "history×growth",
        "history_total": lines["net"], "growth": growth,
        "computed_total": lines["base"] * (1.0 + growth),
    }))


def _unit_ratios(units: list[str], spend: pd.Series, expense_ratio, revenue) -> pd.DataFrame:
    """Expense ratio per target unit, with its source and the history behind it.

    The ratio is per unit (all categories together); the category split comes later, so the
    effective ratio of a category × unit line is the unit ratio × the category's share.
    A given ratio (float for all units, or a mapping per unit) wins over history.
    """
    table = pd.DataFrame({"unit": units})
    table["ratio"] = np.nan
    table["ratio_source"] = None
    table["aux_spend"] = spend.reindex(units).fillna(0.0).to_numpy()
    table["aux_revenue"] = np.nan
    if isinstance(expense_ratio, Mapping):
        given = {str(k).strip(): _check_ratio(v, str(k)) for k, v in expense_ratio.items()}
        hit = table["unit"].isin(list(given))
        table.loc[hit, "ratio"] = table.loc[hit, "unit"].map(given)
        table.loc[hit, "ratio_source"] = "given"
    elif expense_ratio is not None:
        table["ratio"] = _check_ratio(expense_ratio)
        table["ratio_source"] = "given"
    todo = table["ratio"].isna()
    if not todo.any():
        return table
    if revenue is None:
        names = ", ".join(table.loc[todo, "unit"])
        raise BudgetError(f"no expense ratio for {names}: neither given nor computable without revenue history",
                          "pass expense_ratio (e.g. 0.03) or the revenue history of last year")
    history_revenue = _revenue_table(revenue)
    table.loc[todo, "aux_revenue"] = table.loc[todo, "unit"].map(history_revenue).astype("float64")
    unknown = todo & table["aux_revenue"].isna() & (table["aux_spend"] == 0)
    if unknown.any():
        raise BudgetError(f"targets name units unknown to the history: {', '.join(table.loc[unknown, 'unit'])}",
                          "check the spelling against the ledger, or give an expense_ratio for new units")
    no_revenue = todo & ~(table["aux_revenue"] > 0)
    if no_revenue.any():
        raise BudgetError(f"no positive revenue history for {', '.join(table.loc[no_revenue, 'unit'])}, "
                          "so its expense ratio cannot be computed",
                          "add its revenue to the revenue history, or give an expense_ratio for it")
    table.loc[todo, "ratio"] = table.loc[todo, "aux_spend"] / table.loc[todo, "aux_revenue"]
    table.loc[todo, "ratio_source"] = "history"
    return table


def _category_split(lines: pd.DataFrame, units: list[str]) -> pd.DataFrame:
    """For each unit: its categories and shares, with the method that split them.

    A unit with spend history splits by its own category shares; a unit without falls back
    to the company-wide shares (``category fallback``); with no history at all there is one
    :data:`UNCATEGORISED` line (``flat``).
    """
    positive = lines[lines["base"] > 0]
    unit_spend = positive.groupby("unit")["base"].sum()
    company = positive.groupby("category", sort=True)["base"].sum()
    parts = []
    for unit in units:
        own = lines[lines["unit"] == unit]
        if unit_spend.get(unit, 0.0) > 0:
            part = pd.DataFrame({"category": own["category"].to_numpy(), "unit": unit,
                                 "share": (own["base"] / unit_spend[unit]).to_numpy(),
                                 "method": "target×ratio", "history_total": own["net"].to_numpy()})
        elif company.sum() > 0:
            part = pd.DataFrame({"category": company.index.to_numpy(dtype=object), "unit": unit,
                                 "share": (company / company.sum()).to_numpy(),
                                 "method": "category fallback", "history_total": 0.0})
        else:
            part = pd.DataFrame({"category": [UNCATEGORISED], "unit": unit, "share": [1.0],
                                 "method": "flat", "history_total": np.nan})
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _plan_by_targets(lines, targets, growth, expense_ratio, revenue):
    """target×ratio for units with a target; history×growth for the others (e.g. back office)."""
    annual, profiles = _target_table(targets, need_unit=True)
    units = [str(u) for u in annual.index]
    spend = lines.groupby("unit")["base"].sum()
    ratios = _unit_ratios(units, spend, expense_ratio, revenue)
    split = _category_split(lines, units).merge(ratios, on="unit", how="left")
    split["target_revenue"] = split["unit"].map(annual).astype("float64")
    split["computed_total"] = split["target_revenue"] * split["ratio"] * split["share"]
    rest = _plan_by_growth(lines[~lines["unit"].isin(units)], growth)
    plan = pd.concat([_plan_frame(split), rest], ignore_index=True)
    return plan, profiles


def _company_ratio(lines, expense_ratio, revenue) -> tuple[float, str, float]:
    """One expense ratio for the whole company (weights mode): given, or spend ÷ revenue."""
    if isinstance(expense_ratio, Mapping):
        raise BudgetError("with weights, expense_ratio must be one number for the whole total",
                          "give expense_ratio as a single fraction, e.g. 0.03")
    if expense_ratio is not None:
        return _check_ratio(expense_ratio), "given", np.nan
    if revenue is None:
        raise BudgetError("targets need an expense ratio: none given and no revenue history",
                          "pass expense_ratio (e.g. 0.03) or the revenue history of last year")
    total_revenue = float(_revenue_table(revenue).sum())
    if total_revenue <= 0:
        raise BudgetError("the revenue history adds up to zero, so no expense ratio can be computed",
                          "fill the revenue history or give expense_ratio")
    return float(lines["base"].sum()) / total_revenue, "history", total_revenue


def _weight_rows(weights: pd.DataFrame, categories: list[str]) -> pd.DataFrame:
    """Normalised weight per (category, unit): category-specific rows win over general rows."""
    _require(weights, ("unit", "weight"), "weights")
    frame = pd.DataFrame({
        "unit": _labels(weights, "unit", UNASSIGNED),
        "weight": _money_column(weights, "weight", "weights"),
        "category": (weights["category"].astype("string").str.strip().astype(object)
                     if "category" in weights.columns else None),
    })
    frame["category"] = frame["category"].where(frame["category"].notna() & (frame["category"] != ""), None)
    specific = frame[frame["category"].notna()]
    general = frame[frame["category"].isna()]
    extra = sorted(set(specific["category"]) - set(categories))
    if extra:
        raise BudgetError(f"weights name categories with no amount to split: {', '.join(extra)}",
                          "check the spelling against the ledger's categories")
    parts = []
    for category in categories:
        rows = specific[specific["category"] == category]
        if rows.empty:
            rows = general
        if rows.empty:
            raise BudgetError(f"no weights for category {category}",
                              "add weight rows for it, or rows without a category that apply to all")
        rows = rows.groupby("unit", sort=False)["weight"].sum()
        if rows.sum() <= 0:
            raise BudgetError(f"the weights for category {category} are all zero",
                              "give at least one unit a positive weight")
        parts.append(pd.DataFrame({"category": category, "unit": rows.index.to_numpy(dtype=object),
                                   "share": (rows / rows.sum()).to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def _plan_by_weights(lines, weights, growth, targets, expense_ratio, revenue):
    """weights: category totals (history×growth or targets×ratio) split over units by weight."""
    positive = lines[lines["base"] > 0]
    by_category = positive.groupby("category", sort=True)["base"].sum()
    net_by_category = lines.groupby("category")["net"].sum()
    profiles: dict[str, np.ndarray] = {}
    if targets is None:
        totals = pd.DataFrame({"category": by_category.index.to_numpy(dtype=object),
                               "aux_category_total": (by_category * (1.0 + growth)).to_numpy(),
                               "history_total": net_by_category.reindex(by_category.index).to_numpy(),
                               "growth": growth})
    else:
        annual, profiles = _target_table(targets, need_unit=False)
        ratio, source, total_revenue = _company_ratio(lines, expense_ratio, revenue)
        target_total = float(annual.sum())
        if by_category.sum() > 0:
            shares = by_category / by_category.sum()
        else:
            shares = pd.Series([1.0], index=pd.Index([UNCATEGORISED], dtype=object))
        totals = pd.DataFrame({"category": shares.index.to_numpy(dtype=object),
                               "aux_category_share": shares.to_numpy(),
                               "aux_category_total": target_total * ratio * shares.to_numpy(),
                               "history_total": net_by_category.reindex(shares.index).to_numpy(),
                               "ratio": ratio, "ratio_source": source, "target_revenue": target_total,
                               "aux_spend": float(lines["base"].sum()), "aux_revenue": total_revenue})
        # a monthly profile of the company target applies to every weighted line
        profiles = {"*": _company_profile(targets)} if "month" in targets.columns else {}
    if totals.empty:
        raise BudgetError("there is no category total to split by weights: the history is empty",
                          "pass a history ledger with last year's spend, or targets with an expense ratio")
    rows = _weight_rows(weights, list(totals["category"])).merge(totals, on="category", how="left")
    rows["method"] = "weights"
    rows["computed_total"] = rows["aux_category_total"] * rows["share"]
    return _plan_frame(rows), profiles


def _company_profile(targets: pd.DataFrame) -> np.ndarray:
    """Monthly shares of all targets together."""
    frame = pd.DataFrame({"revenue": _money_column(targets, "revenue", "targets"),
                          "month": pd.to_numeric(targets["month"], errors="coerce")})
    by_month = frame.groupby("month")["revenue"].sum().reindex(range(1, 13), fill_value=0.0).to_numpy()
    return by_month / by_month.sum() if by_month.sum() > 0 else np.full(12, 1.0 / 12.0)


# ---------------------------------------------------------------------------------------------
# basis sentences
# ---------------------------------------------------------------------------------------------

def _money(value: float) -> str:
    """¥ amount with thousands separators; cents only when there are any."""
    if value is None or not np.isfinite(value):
        return "—"
    if abs(value - round(value)) < 0.005:
        return f"¥{value:,.0f}"
    return f"¥{value:,.2f}"


def _pct(rate: float) -> str:
    """A rate as a percentage without trailing zeros: 0.08 → '8%', 0.0245 → '2.45%'."""
    text = f"{rate * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _growth_term(growth: float) -> str:
    """'(1+8%)' or '(1−5%)': a minus sign reads better than '1+-5%'."""
    sign = "+" if growth >= 0 else "−"
    return f"(1{sign}{_pct(abs(growth))})"


def _season_text(source: str, category: str, history_year) -> tuple[str, str]:
    if source == "line":
        return f"按{history_year}年该行月度分布分摊", f"spread over months as this line in {history_year}"
    if source == "category":
        return (f"按{history_year}年「{category}」全部单位的月度分布分摊",
                f"spread over months as {category} across all units in {history_year}")
    if source == "target":
        return "按销售目标的月度分布分摊", "spread over months as the sales target"
    return "按12个月平均分摊", "spread evenly over 12 months"


def _ratio_text(row, history_year) -> tuple[str, str]:
    ratio = _pct(row.ratio)
    if row.ratio_source == "history":
        return (f"费用率 {ratio}（{history_year}年费用 {_money(row.aux_spend)} ÷ 收入 {_money(row.aux_revenue)}）",
                f"expense ratio {ratio} ({history_year} spend {_money(row.aux_spend)} ÷ revenue {_money(row.aux_revenue)})")
    return f"费用率 {ratio}（给定）", f"expense ratio {ratio} (given)"


def _basis_text(row, year: int, history_year, unit_words: tuple[str, str], round_words: tuple[str, str]):
    """One zh and one en sentence that let a finance user re-do the line's arithmetic."""
    season_zh, season_en = _season_text(row.seasonality_source, row.category, history_year)
    computed, final = _money(row.computed_total), _money(row.budget_total)
    tail_zh = f"{season_zh}，取整到{round_words[0]}：{final}。"
    tail_en = f"{season_en}; rounded to {round_words[1]}: {final}."
    if row.method == "history×growth":
        note_zh = note_en = ""
        if row.history_total < 0:
            note_zh, note_en = "（净额为负，按 ¥0 计）", " (net negative, counted as ¥0)"
        return (f"{history_year}年实际 {_money(row.history_total)}{note_zh} × {_growth_term(row.growth)} = {computed}，{tail_zh}",
                f"{history_year} actual {_money(row.history_total)}{note_en} × {_growth_term(row.growth)} = {computed}; {tail_en}")
    if row.method in ("target×ratio", "category fallback", "flat"):
        ratio_zh, ratio_en = _ratio_text(row, history_year)
        head_zh = f"{year}年销售目标 {_money(row.target_revenue)} × {ratio_zh}"
        head_en = f"{year} sales target {_money(row.target_revenue)} × {ratio_en}"
        share = _pct(row.share)
        if row.method == "target×ratio":
            head_zh += f" × 该{unit_words[0]}{history_year}年「{row.category}」占比 {share}"
            head_en += f" × this {unit_words[1]}'s {history_year} share of {row.category} {share}"
        elif row.method == "category fallback":
            head_zh += f" × 全公司{history_year}年「{row.category}」占比 {share}（该{unit_words[0]}无历史费用）"
            head_en += f" × company-wide {history_year} share of {row.category} {share} (no spend history for this {unit_words[1]})"
        else:
            head_zh += "（无历史费用可按类别拆分）"
            head_en += " (no spend history to split by category)"
        return f"{head_zh} = {computed}，{tail_zh}", f"{head_en} = {computed}; {tail_en}"
    # weights
    if pd.notna(row.growth):
        origin_zh = f"{history_year}年实际 {_money(row.history_total)} × {_growth_term(row.growth)}"
        origin_en = f"{history_year} actual {_money(row.history_total)} × {_growth_term(row.growth)}"
    else:
        ratio_zh, ratio_en = _ratio_text(row, history_year)
        origin_zh = f"{year}年销售目标 {_money(row.target_revenue)} × {ratio_zh} × 类别占比 {_pct(row.aux_category_share)}"
        origin_en = f"{year} sales target {_money(row.target_revenue)} × {ratio_en} × category share {_pct(row.aux_category_share)}"
    total = _money(row.aux_category_total)
    return (f"「{row.category}」合计 {total}（{origin_zh}）× 权重 {_pct(row.share)} = {computed}，{tail_zh}",
            f"{row.category} total {total} ({origin_en}) × weight {_pct(row.share)} = {computed}; {tail_en}")


def _round_words(step: float) -> tuple[str, str]:
    zh = _ROUND_WORDS_ZH.get(step, f"{_money(step)}的整数倍")
    return zh, f"multiples of {_money(step)}"


# ---------------------------------------------------------------------------------------------
# fill_budget
# ---------------------------------------------------------------------------------------------

def _pick_history_year(ledger: pd.DataFrame, year: int, history_year: int | None) -> int | None:
    """The year whose actuals are "last year": ``year - 1`` if it has rows, else the latest before."""
    if history_year is not None:
        return int(history_year)
    if "date" not in ledger.columns or ledger.empty:
        return None
    years = pd.to_datetime(ledger["date"], errors="coerce").dt.year.dropna()
    before = years[years < year]
    return int(before.max()) if not before.empty else None


def _month_shares(plan: pd.DataFrame, actuals: pd.DataFrame, profiles: dict[str, np.ndarray]):
    """Monthly shares per plan line: the target's profile if given, else :func:`seasonality`'s rule."""
    shares, source = _line_shares(plan, actuals, SEASON_MIN_TOTAL, SEASON_MIN_MONTHS)
    if profiles:
        for position, (unit, method) in enumerate(zip(plan["unit"], plan["method"])):
            if method == "history×growth":
                continue  # units without a target keep their own seasonality
            profile = profiles.get(unit, profiles.get("*"))
            if profile is not None:
                shares[position] = profile
                source[position] = "target"
    return shares, source


def _round_budget(computed: np.ndarray, shares: np.ndarray, step: float, units: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Totals rounded level by level, each against the rounded level above it.

    Unit totals against the grand total, line totals against their unit's total, months
    against their line's total: a department whose target × ratio is ¥30,000 gets exactly
    ¥30,000, and the grand total is kept as well.
    """
    if units is None:
        units = np.zeros(len(computed), dtype=object)
    units = np.asarray(units, dtype=object)
    names = list(dict.fromkeys(units.tolist()))
    unit_sums = np.array([computed[units == name].sum() for name in names], dtype=float)
    unit_totals = largest_remainder_round(unit_sums, step)
    totals = np.zeros(len(computed))
    for name, unit_total in zip(names, unit_totals):
        members = units == name
        totals[members] = largest_remainder_round(computed[members], step, total=unit_total)
    months = np.zeros((len(totals), 12))
    for position, (line_total, line_shares) in enumerate(zip(totals, shares)):
        months[position] = largest_remainder_round(line_shares, step, total=line_total)
    return totals, months


def fill_budget(
    history_ledger: pd.DataFrame,
    *,
    year: int,
    unit_by: str = "department",
    growth: float = 0.0,
    targets: pd.DataFrame | None = None,
    expense_ratio: float | Mapping[str, float] | None = None,
    revenue: pd.DataFrame | None = None,
    weights: pd.DataFrame | None = None,
    round_to: float = 100.0,
    history_year: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fill a budget for ``year`` from history, sales targets and weights, with its basis.

    Parameters
    ----------
    history_ledger : DataFrame
        Canonical ledger with at least last year's expenses.
    year : int
        The budget year.
    unit_by : {"department", "project", "stage"}
        What a budget unit is (the workbook's ``budget_by`` setting).
    growth : float, default 0.0
        Growth over history as a fraction (0.08 = +8 %); used for lines filled from history.
    targets : DataFrame, optional
        Sales targets of the budget year: ``unit``, ``revenue`` and optionally ``month``
        (1–12). Units with a target are budgeted as target × expense ratio; units without one
        keep history × growth. With ``weights`` the targets' units are not used (the column
        may be omitted): all targets add up to one company total, split by weights.
    expense_ratio : float or mapping unit → float, optional
        费用率 as a fraction (0.03 = 3 %); wins over the ratio from history. Ratios above 1
        are refused (almost always "3" meant 3 %).
    revenue : DataFrame, optional
        Revenue of the history year, ``unit`` and ``revenue``: the ratio of a unit is its
        history spend ÷ its history revenue (per unit, all categories together).
    weights : DataFrame, optional
        ``unit``, ``weight`` and optionally ``category``: split each category's total over
        these units in proportion to the weights (projects or sales stages without a history
        of their own). Rows with a category apply to it alone; rows without apply to every
        category that has none of its own.
    round_to : float, default 100.0
        Rounding unit of every monthly amount.
    history_year : int, optional
        The year of actuals to start from. Default: ``year - 1``, or the latest earlier year in
        the ledger (the basis names the year used).

    Returns
    -------
    budget : DataFrame
        ``category, unit, m1..m12``, sorted by category then unit.
    basis : DataFrame
        One row per budget line in the same order, columns :data:`BASIS_COLUMNS`.

    Notes
    -----
    Rounding preserves totals exactly: the grand total is the unrounded total rounded to
    ``round_to`` (half up); the unit totals are rounded against it by largest remainder, the
    line totals against their unit's total, and each line's months against its line total, so
    ``sum(m1..m12)`` of each line is its ``budget_total``, each unit's lines add up to its
    rounded total (target × ratio stays exact when it is a round number) and the units add up
    to the rounded grand total.

    Raises
    ------
    BudgetError
        Empty history without targets; unknown units in targets; negative or >100 % ratios;
        bad growth, weights or rounding unit.
    """
    growth = _check_growth(growth)
    step = _check_round_unit(round_to)
    _unit_column(unit_by)  # validates unit_by before any work
    unit_words = _UNIT_WORDS[unit_by]
    history_year = _pick_history_year(history_ledger, year, history_year)
    if history_year is None:
        actuals = empty_budget()
    else:
        actuals = monthly_actuals(history_ledger, unit_by, history_year)
    lines = _history_totals(actuals)
    if targets is None and weights is None and lines.empty:
        raise BudgetError(f"no expenses before {year} in the history ledger, and no targets",
                          "pass a ledger with last year's expenses, or sales targets with an expense ratio")

    profiles: dict[str, np.ndarray] = {}
    if weights is not None:
        plan, profiles = _plan_by_weights(lines, weights, growth, targets, expense_ratio, revenue)
    elif targets is not None:
        plan, profiles = _plan_by_targets(lines, targets, growth, expense_ratio, revenue)
    else:
        plan = _plan_by_growth(lines, growth)
    plan = plan.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)

    shares, source = _month_shares(plan, actuals, profiles)
    totals, months = _round_budget(plan["computed_total"].to_numpy(dtype=np.float64), shares, step,
                                   plan["unit"].to_numpy(dtype=object))

    budget = plan[list(KEY_COLUMNS)].astype(object).copy()
    budget[list(MONTHS)] = months
    plan["seasonality_source"] = source
    plan["budget_total"] = totals
    plan["history_year"] = pd.array([history_year] * len(plan), dtype="Int64")
    round_words = _round_words(step)
    texts = [_basis_text(row, year, history_year, unit_words, round_words) for row in plan.itertuples(index=False)]
    plan["text_zh"] = [zh for zh, _ in texts]
    plan["text_en"] = [en for _, en in texts]
    basis = plan[list(BASIS_COLUMNS)].copy()
    basis["category"] = basis["category"].astype(object)
    basis["unit"] = basis["unit"].astype(object)
    return budget, basis
