"""Helpers shared by the analysis modules: key text, safe ratios, rounding, months.

Every analysis table rounds money to cents and ratios to four places, as the budget monitor
does, so the numbers a manager reads on the dashboard add up to what the sheet shows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from xl_expense.errors import XlExpenseError


class AnalysisError(XlExpenseError):
    """An analysis input lacks a column or has values the analysis cannot use."""


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`AnalysisError` naming the missing columns of ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnalysisError(f"{what} is missing column(s): {', '.join(missing)}",
                            f"give the {what} the columns {', '.join(columns)}")


def key_text(values: pd.Series) -> pd.Series:
    """Group keys as plain text: stripped; blank or missing → ``None`` (kept as its own group).

    Object dtype on purpose: pandas' default string dtype turns ``None`` into ``NA``, which
    does not compare equal to itself and makes merges on keys silently drop the blank group.
    """
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda v: None if v is None else (str(v).strip() or None))
    return text.astype(object)


def spend_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows that carry an amount (unreadable amounts are not spend)."""
    require_columns(ledger, ("date", "amount"), "ledger")
    amounts = pd.to_numeric(ledger["amount"], errors="coerce")
    out = ledger.loc[amounts.notna()].copy()
    out["amount"] = amounts[amounts.notna()].astype("float64")
    out["date"] = pd.to_datetime(out["date"], errors="coerce").astype("datetime64[ns]")
    return out


def ratio(num, den) -> np.ndarray:
    """``num / den`` elementwise; NaN where ``den`` is 0 or missing (a share of nothing is undefined)."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    ok = np.isfinite(den) & (den != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def money(values) -> pd.Series | np.ndarray | float:
    """Amounts rounded to cents."""
    return np.round(values, 2)


def ratio4(values) -> pd.Series | np.ndarray | float:
    """Ratios rounded to four places (0.1234 = 12.34 %)."""
    return np.round(values, 4)


def month_start(dates: pd.Series) -> pd.Series:
    """The first day of each date's month (NaT stays NaT)."""
    dates = pd.to_datetime(dates, errors="coerce")
    return dates.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")


def points_below(value: np.ndarray, tolerance: float) -> np.ndarray:
    """Points in [0, 1]: 1 at or below 0, falling linearly to 0 at ``tolerance``; NaN stays NaN."""
    value = np.asarray(value, dtype="float64")
    return np.where(np.isnan(value), np.nan, np.clip(1.0 - value / tolerance, 0.0, 1.0))


def none_for_na(values: pd.Series) -> pd.Series:
    """Object column with ``None`` for every missing value (what the sheet writers expect)."""
    return values.astype(object).where(values.notna(), None)


def group_sort(frame: pd.DataFrame, value: str, key: str, ascending: bool = False) -> pd.DataFrame:
    """Sort by ``value`` then ``key`` with the blank key last: stable output for identical input."""
    blank = frame[key].isna()
    keys = frame[key].astype(object).where(~blank, "")
    order = pd.DataFrame({"blank": blank.to_numpy(), "value": frame[value].to_numpy(),
                          "key": keys.astype(str).to_numpy()})
    order = order.sort_values(["blank", "value", "key"], ascending=[True, ascending, True], kind="stable")
    return frame.iloc[order.index.to_numpy()].reset_index(drop=True)


def period_rows(ledger: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Rows dated within [start, end] (inclusive; either may be None = open).

    The workflow should pass the audit period or the run's "today": a single mistyped date
    (2062 for 2026) would otherwise stretch a monthly trend over forty years of empty months.
    Rows without a date are kept only when no bound is given.
    """
    if start is None and end is None:
        return ledger
    dates = pd.to_datetime(ledger["date"], errors="coerce")
    keep = dates.notna()
    if start is not None:
        keep &= dates >= pd.Timestamp(start)
    if end is not None:
        # The whole end day counts: 2025-12-31 14:00 is inside a period ending 2025-12-31.
        keep &= dates < pd.Timestamp(end) + pd.Timedelta(days=1)
    return ledger.loc[keep]
