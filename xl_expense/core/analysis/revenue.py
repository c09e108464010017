"""The revenue frame: maintenance-fee income per customer and date.

Costs only mean something next to what the customer pays for upkeep (维护费收入). The io layer
reads a ``收入/Revenue`` sheet or a CRM export into this shape:

========== ============== ===========================================================
column     dtype          meaning
========== ============== ===========================================================
customer   object (str)   customer name, matched to the ledger's ``customer`` column
date       datetime64[ns] any day of the period the income belongs to (month is used)
amount     float64        income in the ledger currency; credit notes negative
department object         optional: the department credited with the income
region     object         optional: the region credited with the income
person     object         optional: the salesperson credited with the income
========== ============== ===========================================================

Customer names are matched after stripping surrounding spaces; nothing else is folded, so
``成都东方电气`` and ``成都东方电气有限公司`` are two customers (fix the names, not the maths).
"""

from __future__ import annotations

import pandas as pd

from xl_expense.core.analysis._common import AnalysisError, key_text, require_columns

REVENUE_COLUMNS = ("customer", "date", "amount")
OPTIONAL_REVENUE_COLUMNS = ("department", "region", "person")


def empty_revenue() -> pd.DataFrame:
    """A revenue frame without rows, correctly typed."""
    return pd.DataFrame({
        "customer": pd.Series(dtype=object),
        "date": pd.Series(dtype="datetime64[ns]"),
        "amount": pd.Series(dtype="float64"),
    })


def check_revenue(revenue: pd.DataFrame | None) -> pd.DataFrame | None:
    """The revenue frame with folded keys and typed columns; ``None`` stays ``None`` (no revenue).

    Rows without an amount are dropped (nothing was earned that we know of); an amount that is
    not a number is an error, because silently dropping income would inflate cost ratios.
    """
    if revenue is None:
        return None
    require_columns(revenue, REVENUE_COLUMNS, "revenue table")
    out = pd.DataFrame({"customer": key_text(revenue["customer"])})
    out["date"] = pd.to_datetime(revenue["date"], errors="coerce").astype("datetime64[ns]")
    amounts = pd.to_numeric(revenue["amount"], errors="coerce")
    bad = revenue["amount"].notna() & amounts.isna()
    if bad.any():
        first = revenue.loc[bad, "amount"].iloc[0]
        raise AnalysisError(f"revenue amount {first!r} is not a number",
                            "type the income as a number, e.g. 12000 or 12,000.00")
    out["amount"] = amounts.astype("float64")
    for col in OPTIONAL_REVENUE_COLUMNS:
        if col in revenue.columns:
            out[col] = key_text(revenue[col])
    return out.loc[out["amount"].notna()].reset_index(drop=True)


def revenue_by(revenue: pd.DataFrame | None, key: str) -> pd.Series | None:
    """Income per value of ``key`` (blank keys form one group under ``None``).

    Returns ``None`` when there is no revenue or the revenue frame cannot be split by ``key``:
    income is never spread over groups by guesswork.
    """
    revenue = check_revenue(revenue)
    if revenue is None or key not in revenue.columns:
        return None
    return revenue.groupby(revenue[key].astype(object), dropna=False, sort=False)["amount"].sum()
