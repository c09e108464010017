"""The customer view (客户): what each customer costs to maintain, what it pays, and the trend.

Maintenance spend is only justified by what the customer brings in, so each customer gets its
upkeep cost (by category), its maintenance-fee income from the revenue frame, the margin
(income − cost), the cost-to-income ratio and a flag when upkeep costs exceed the fees.

Spend with no customer named appears as one line with ``customer`` ``None`` so the view adds up
to the ledger total; it is never flagged (there are no fees to compare it with).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_expense.core.analysis._common import (
    AnalysisError,
    group_sort,
    key_text,
    money,
    month_start,
    ratio,
    ratio4,
    require_columns,
    spend_rows,
)
from xl_expense.core.analysis.revenue import check_revenue

CUSTOMER_COLUMNS = ("customer", "cost", "claims", "income", "margin", "cost_to_income", "cost_exceeds_income",
                    "cost_recent", "cost_prior", "trend_pct", "top_category")
CUSTOMER_CATEGORY_COLUMNS = ("customer", "category", "amount", "count", "share_of_customer")
CUSTOMER_MONTH_COLUMNS = ("customer", "month", "cost", "income")


def customer_costs_by_category(ledger: pd.DataFrame) -> pd.DataFrame:
    """Cost per customer × category (long form: the sheet writer pivots it), with shares.

    ``share_of_customer`` is the category's fraction of that customer's net cost.
    """
    rows = spend_rows(ledger)
    require_columns(rows, ("customer", "category"), "ledger")
    keys = pd.DataFrame({"customer": key_text(rows["customer"]), "category": key_text(rows["category"])})
    grouped = rows["amount"].groupby([keys["customer"], keys["category"]], dropna=False, sort=False)
    out = pd.DataFrame({"amount": grouped.sum(), "count": grouped.size()}).reset_index()
    for col in ("customer", "category"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    totals = out.groupby(out["customer"].fillna("\x00"), sort=False)["amount"].transform("sum")
    out["share_of_customer"] = ratio4(ratio(out["amount"], totals))
    out["amount"] = money(out["amount"].astype("float64"))
    out["count"] = out["count"].astype("int64")
    # Customers in order of total cost, categories within a customer by amount.
    order = pd.DataFrame({"blank": out["customer"].isna(), "total": -totals, "cust": out["customer"].fillna(""),
                          "amount": -out["amount"], "cat_blank": out["category"].isna(),
                          "cat": out["category"].fillna("")})
    order = order.sort_values(["blank", "total", "cust", "cat_blank", "amount", "cat"], kind="stable")
    return out.loc[order.index, list(CUSTOMER_CATEGORY_COLUMNS)].reset_index(drop=True)


def customer_monthly(ledger: pd.DataFrame, revenue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cost and income per customer and month (rows without a date are left out).

    Only months where the customer had cost or income appear; ``income`` is NaN without a
    revenue frame.
    """
    rows = spend_rows(ledger)
    require_columns(rows, ("customer",), "ledger")
    rows = rows.loc[rows["date"].notna()]
    cost = rows["amount"].groupby([key_text(rows["customer"]).rename("customer"),
                                   month_start(rows["date"]).rename("month")], dropna=False).sum().rename("cost")
    revenue = check_revenue(revenue)
    if revenue is not None:
        dated = revenue.loc[revenue["date"].notna()]
        income = dated["amount"].groupby([dated["customer"].rename("customer"),
                                          month_start(dated["date"]).rename("month")], dropna=False).sum()
        out = pd.concat([cost, income.rename("income")], axis=1)
        out["cost"] = out["cost"].fillna(0.0)
        out["income"] = out["income"].fillna(0.0)
    else:
        out = cost.to_frame()
        out["income"] = np.nan
    out = out.reset_index()
    out["customer"] = out["customer"].astype(object).where(out["customer"].notna(), None)
    out["cost"] = money(out["cost"].astype("float64"))
    out["income"] = money(out["income"].astype("float64"))
    out["month"] = out["month"].astype("datetime64[ns]")
    order = pd.DataFrame({"blank": out["customer"].isna(), "cust": out["customer"].fillna(""),
                          "month": out["month"]}).sort_values(["blank", "cust", "month"], kind="stable")
    return out.loc[order.index, list(CUSTOMER_MONTH_COLUMNS)].reset_index(drop=True)


def customer_view(ledger: pd.DataFrame, revenue: pd.DataFrame | None = None, trend_months: int = 3,
                  as_of=None) -> pd.DataFrame:
    """One line per customer: cost, income, margin, cost-to-income, trend and the upkeep flag.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger.
    revenue : DataFrame, optional
        Revenue frame. Without it income, margin and the ratio are NaN and the flag is NA.
        With it, a customer with cost but no income row has income 0 (and is flagged).
    trend_months : int
        Window of the trend: ``cost_recent`` is the cost of the last ``trend_months`` months of
        the ledger (ending with the month of ``as_of``, default its latest date), ``cost_prior``
        the cost of the ``trend_months`` before; ``trend_pct`` = recent ÷ prior − 1 (NaN when
        prior is 0).
    as_of : date, optional
        End of the trend window; later rows (future-dated claims) are outside both windows.

    Returns
    -------
    DataFrame
        :data:`CUSTOMER_COLUMNS`, highest cost first, the no-customer line last.
        ``cost_exceeds_income`` is a nullable boolean: True when cost > income.
    """
    rows = spend_rows(ledger)
    require_columns(rows, ("customer", "category"), "ledger")
    revenue = check_revenue(revenue)
    keys = key_text(rows["customer"]).rename("customer")
    grouped = rows["amount"].groupby(keys, dropna=False, sort=False)
    out = pd.DataFrame({"cost": grouped.sum(), "claims": grouped.size()})
    recent, prior = _trend_windows(rows, keys, trend_months, as_of)
    out["cost_recent"] = recent.reindex(out.index).fillna(0.0)
    out["cost_prior"] = prior.reindex(out.index).fillna(0.0)
    out = out.reset_index()
    out["customer"] = out["customer"].astype(object).where(out["customer"].notna(), None)
    if revenue is not None:
        out = _with_revenue_only_customers(out, revenue)
    out["top_category"] = out["customer"].map(_top_categories(rows, keys)).astype(object)
    out["top_category"] = out["top_category"].where(out["top_category"].notna(), None)
    if revenue is not None:
        income = revenue.groupby(revenue["customer"], dropna=True)["amount"].sum()
        out["income"] = [float(income.get(c, 0.0)) if c is not None else np.nan for c in out["customer"]]
    else:
        out["income"] = np.nan
    out["margin"] = out["income"] - out["cost"]
    out["cost_to_income"] = ratio4(ratio(out["cost"], out["income"]))
    known = out["income"].notna() & out["customer"].notna()
    flag = pd.array([pd.NA] * len(out), dtype="boolean")
    flag[known.to_numpy()] = (out.loc[known, "cost"] > out.loc[known, "income"]).to_numpy()
    out["cost_exceeds_income"] = flag
    out["trend_pct"] = ratio4(ratio(out["cost_recent"] - out["cost_prior"], out["cost_prior"]))
    for col in ("cost", "income", "margin", "cost_recent", "cost_prior"):
        out[col] = money(out[col].astype("float64"))
    out["claims"] = out["claims"].astype("int64")
    return group_sort(out, "cost", "customer")[list(CUSTOMER_COLUMNS)]


def _with_revenue_only_customers(out: pd.DataFrame, revenue: pd.DataFrame) -> pd.DataFrame:
    """Customers who pay fees but cost nothing yet, with cost 0: the best margins are news too."""
    paying = [c for c in pd.unique(revenue["customer"].dropna()) if c not in set(out["customer"].dropna())]
    if not paying:
        return out
    extra = pd.DataFrame({"customer": pd.Series(paying, dtype=object), "cost": 0.0, "claims": 0,
                          "cost_recent": 0.0, "cost_prior": 0.0})
    return pd.concat([out, extra], ignore_index=True)


def _trend_windows(rows: pd.DataFrame, keys: pd.Series, months: int, as_of=None
                   ) -> tuple[pd.Series, pd.Series]:
    """Cost per customer in the last ``months`` months up to ``as_of`` and in the ``months`` before."""
    if months < 1:
        raise AnalysisError(f"trend_months must be at least 1, not {months}", "use e.g. 3")
    dated = rows["date"].notna()
    if not dated.any():
        empty = pd.Series(dtype="float64")
        return empty, empty
    month = month_start(rows["date"])
    last = month[dated].max() if as_of is None else pd.Timestamp(as_of).to_period("M").to_timestamp()
    dated &= month <= last
    recent_start = last - pd.DateOffset(months=months - 1)
    prior_start = recent_start - pd.DateOffset(months=months)
    in_recent = dated & (month >= recent_start)
    in_prior = dated & (month >= prior_start) & (month < recent_start)
    recent = rows["amount"].where(in_recent, 0.0).groupby(keys, dropna=False, sort=False).sum()
    prior = rows["amount"].where(in_prior, 0.0).groupby(keys, dropna=False, sort=False).sum()
    return recent, prior


def _top_categories(rows: pd.DataFrame, keys: pd.Series) -> dict:
    """The category a customer's money mostly goes to (ties: the first in text order)."""
    cats = key_text(rows["category"]).rename("category")
    sums = rows["amount"].groupby([keys, cats], dropna=False).sum().reset_index()
    sums = sums.loc[sums["category"].notna()]
    sums = sums.sort_values(["amount", "category"], ascending=[False, True], kind="stable")
    first = sums.drop_duplicates("customer")
    return {(None if pd.isna(c) else c): cat for c, cat in zip(first["customer"], first["category"])}
