"""Efficiency ratios: cost per customer, per expense claim, per ticket/visit, and to revenue.

The same ratios serve the dashboard (one line for the whole ledger), the peer benchmark
(one line per department or region) and the scorecards, so a number means the same thing on
every sheet:

* ``cost_per_customer`` — net spend ÷ distinct customers named on the group's expenses.
  Spend without a customer stays in the numerator: upkeep that nobody attributed to a
  customer is still upkeep.
* ``cost_per_claim`` — net spend ÷ expense rows.
* ``cost_per_activity`` — net spend ÷ tickets or visits, when the ledger has such a column:
  a numeric column is summed (visits per row), a text column counts distinct ids (ticket no.).
* ``expense_to_revenue`` — net spend ÷ income, when a revenue frame is given and can be split
  the same way (the revenue frame needs a ``department`` column for a per-department ratio).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_expense.core.analysis._common import (
    AnalysisError,
    group_sort,
    key_text,
    money,
    ratio,
    ratio4,
    spend_rows,
)
from xl_expense.core.analysis.revenue import check_revenue, revenue_by

#: Columns recognised as tickets/visits when ``activity`` is not named explicitly.
ACTIVITY_COLUMNS = ("tickets", "ticket", "ticket_id", "visits", "visit", "visit_id", "工单", "工单号", "拜访次数")

RATIO_COLUMNS = ("level", "group", "spend", "claims", "customers", "cost_per_customer", "cost_per_claim",
                 "activities", "cost_per_activity", "revenue", "expense_to_revenue")


def find_activity_column(ledger: pd.DataFrame) -> str | None:
    """The first ticket/visit column present in the ledger, if any."""
    return next((c for c in ACTIVITY_COLUMNS if c in ledger.columns), None)


def efficiency_ratios(ledger: pd.DataFrame, revenue: pd.DataFrame | None = None, by: str | None = None,
                      activity: str | None = None) -> pd.DataFrame:
    """Spend, counts and efficiency ratios for the whole ledger or per value of ``by``.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger (extra columns such as ``tickets`` are allowed).
    revenue : DataFrame, optional
        Revenue frame; without it ``revenue`` and ``expense_to_revenue`` are NaN.
    by : str, optional
        Ledger column to group by (``department``, ``region``, ``person``, ``customer``…);
        ``None`` gives one line with ``level == "all"`` and ``group`` ``None``.
    activity : str, optional
        Ticket/visit column; default: the first of :data:`ACTIVITY_COLUMNS` present.

    Returns
    -------
    DataFrame
        :data:`RATIO_COLUMNS`, largest spend first (blank group last).
    """
    rows = spend_rows(ledger)
    if by is not None and by not in rows.columns:
        raise AnalysisError(f"ledger has no column {by!r} to group by", "group by a canonical ledger column")
    activity = activity or find_activity_column(rows)
    if activity is not None and activity not in rows.columns:
        raise AnalysisError(f"ledger has no ticket/visit column {activity!r}", "name a column the ledger has")
    keys = key_text(rows[by]) if by else pd.Series([None] * len(rows), index=rows.index, dtype=object)
    grouped = rows.groupby(keys.rename("group"), dropna=False, sort=False)
    out = pd.DataFrame({
        "spend": grouped["amount"].sum(),
        "claims": grouped.size(),
        "customers": grouped["customer"].agg(lambda s: key_text(s).nunique()) if "customer" in rows
        else grouped.size() * 0,
    })
    out["activities"] = _activities(rows, keys, grouped, activity)
    out = out.reset_index()
    if rows.empty:
        out = pd.DataFrame({"group": [None], "spend": [0.0], "claims": [0], "customers": [0],
                            "activities": [np.nan if activity is None else 0.0]}) if by is None else out
    out["group"] = out["group"].astype(object).where(out["group"].notna(), None)
    out["level"] = by or "all"
    income = _income(revenue, by, out["group"])
    out["revenue"] = income
    out["cost_per_customer"] = ratio(out["spend"], out["customers"])
    out["cost_per_claim"] = ratio(out["spend"], out["claims"])
    out["cost_per_activity"] = ratio(out["spend"], out["activities"])
    out["expense_to_revenue"] = ratio(out["spend"], out["revenue"])
    for col in ("spend", "revenue", "cost_per_customer", "cost_per_claim", "cost_per_activity"):
        out[col] = money(out[col].astype("float64"))
    out["expense_to_revenue"] = ratio4(out["expense_to_revenue"].astype("float64"))
    out["claims"] = out["claims"].astype("int64")
    out["customers"] = out["customers"].astype("int64")
    out["activities"] = out["activities"].astype("float64")
    return group_sort(out, "spend", "group")[list(RATIO_COLUMNS)]


def _activities(rows: pd.DataFrame, keys: pd.Series, grouped, activity: str | None) -> pd.Series | float:
    """Tickets/visits per group: a numeric column is summed, a text column counts distinct ids."""
    if activity is None:
        return np.nan
    values = rows[activity]
    numeric = pd.to_numeric(values, errors="coerce")
    if values.notna().any() and numeric[values.notna()].notna().all():
        return numeric.groupby(keys.rename("group"), dropna=False, sort=False).sum().astype("float64")
    return grouped[activity].agg(lambda s: key_text(s).nunique()).astype("float64")


def _income(revenue: pd.DataFrame | None, by: str | None, groups: pd.Series) -> np.ndarray:
    """Income for each group, NaN when the revenue frame cannot be split by ``by``."""
    revenue = check_revenue(revenue)
    if revenue is None:
        return np.full(len(groups), np.nan)
    if by is None:
        return np.full(len(groups), float(revenue["amount"].sum()))
    totals = revenue_by(revenue, by)
    if totals is None:
        return np.full(len(groups), np.nan)
    lookup = {(None if pd.isna(k) else k): float(v) for k, v in totals.items()}
    # A group with spend but no income earned nothing (0), which is not the same as unknown.
    return np.array([lookup.get(g, 0.0) for g in groups], dtype="float64")
