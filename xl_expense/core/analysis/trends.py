"""Monthly trend of spend with month-on-month (环比) and year-on-year (同比) change.

Every calendar month between the first and last dated expense appears, with 0 where nothing
was spent: a month without expenses is information, and skipping it would make the
month-on-month change compare March with January. Rows without a date are not in the trend
(they are on the audit's list of unreadable or missing dates).
"""

from __future__ import annotations

import pandas as pd

from xl_expense.core.analysis._common import (
    money,
    month_start,
    period_rows,
    ratio,
    ratio4,
    spend_rows,
)
from xl_expense.core.analysis.revenue import check_revenue

TREND_COLUMNS = ("month", "amount", "count", "mom_change", "mom_pct", "yoy_change", "yoy_pct",
                 "revenue", "expense_to_revenue")


def monthly_trend(ledger: pd.DataFrame, revenue: pd.DataFrame | None = None, *, start=None, end=None
                  ) -> pd.DataFrame:
    """Spend per month with the change against the previous month and the same month a year ago.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger.
    revenue : DataFrame, optional
        Revenue frame (:mod:`.revenue`); adds income and expense-to-revenue per month.
    start, end : date, optional
        Only expenses dated in [start, end] (see :func:`._common.period_rows`); pass the audit
        period or today so one mistyped year does not stretch the chart.

    Returns
    -------
    DataFrame
        ``month`` (first day of the month), ``amount``, ``count``, ``mom_change`` /
        ``mom_pct`` (against the month before; NaN for the first month, pct NaN when that month
        was 0), ``yoy_change`` / ``yoy_pct`` (against the same month of the previous year when
        it is in the ledger's range, else NaN), ``revenue`` and ``expense_to_revenue`` (NaN
        without a revenue frame).
    """
    rows = spend_rows(period_rows(ledger, start, end))
    rows = rows.loc[rows["date"].notna()]
    revenue = check_revenue(revenue)
    months = month_start(rows["date"])
    grouped = rows["amount"].groupby(months)
    out = pd.DataFrame({"amount": grouped.sum(), "count": grouped.size()})
    if out.empty:
        return _empty()
    span = pd.date_range(out.index.min(), out.index.max(), freq="MS")
    out = out.reindex(span, fill_value=0)
    out.index.name = "month"
    out = out.reset_index()
    amount = out["amount"].astype("float64")
    previous = amount.shift(1)
    out["mom_change"] = amount - previous
    out["mom_pct"] = ratio(out["mom_change"], previous)
    # Same month one year earlier: 12 rows up, since every month of the span is present.
    last_year = amount.shift(12)
    out["yoy_change"] = amount - last_year
    out["yoy_pct"] = ratio(out["yoy_change"], last_year)
    if revenue is not None:
        income = period_rows(revenue, start, end)
        income = income.loc[income["date"].notna()]
        by_month = income["amount"].groupby(month_start(income["date"])).sum()
        out["revenue"] = out["month"].map(by_month).fillna(0.0).astype("float64")
        out["expense_to_revenue"] = ratio(amount, out["revenue"])
    else:
        out["revenue"] = float("nan")
        out["expense_to_revenue"] = float("nan")
    for col in ("amount", "mom_change", "yoy_change", "revenue"):
        out[col] = money(out[col].astype("float64"))
    for col in ("mom_pct", "yoy_pct", "expense_to_revenue"):
        out[col] = ratio4(out[col].astype("float64"))
    out["count"] = out["count"].astype("int64")
    out["month"] = out["month"].astype("datetime64[ns]")
    return out[list(TREND_COLUMNS)]


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in TREND_COLUMNS})
    frame["month"] = frame["month"].astype("datetime64[ns]")
    frame["count"] = frame["count"].astype("int64")
    return frame
