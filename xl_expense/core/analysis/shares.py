"""Where the money goes: category shares (占比) and Pareto tables of vendors and customers.

Pareto tables answer "how many vendors (customers) make 80 % of spend": the smallest number
of keys, largest first, whose cumulative share reaches the threshold. Spend is *net* per key
(refunds reduce it); keys whose net spend is zero or negative take no share of anything, and
rows without a key (no vendor written) are left out, since nobody can negotiate with a blank.
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
    require_columns,
    spend_rows,
)

SHARE_COLUMNS = ("category", "amount", "share", "count")
PARETO_COLUMNS = ("rank", "key", "amount", "count", "share", "cum_share", "in_core")
PARETO_SUMMARY_COLUMNS = ("by", "keys", "core_keys", "core_keys_share", "core_amount_share", "threshold")


def category_shares(ledger: pd.DataFrame) -> pd.DataFrame:
    """Amount, share of the total and number of expenses per category, largest first.

    Returns
    -------
    DataFrame
        ``category`` (``None`` = no category written, listed last), ``amount`` (net, cents),
        ``share`` (fraction of the ledger's net total; NaN when that total is 0) and ``count``.
        Shares add up to 1 (up to rounding) because refunds stay in their category.
    """
    rows = spend_rows(ledger)
    require_columns(rows, ("category",), "ledger")
    keys = key_text(rows["category"])
    grouped = rows["amount"].groupby(keys, dropna=False, sort=False)
    out = pd.DataFrame({"amount": grouped.sum(), "count": grouped.size()}).reset_index(names="category")
    out["category"] = out["category"].astype(object).where(out["category"].notna(), None)
    total = float(rows["amount"].sum())
    out["share"] = ratio4(ratio(out["amount"].to_numpy(), np.full(len(out), total)))
    out["amount"] = money(out["amount"].astype("float64"))
    out["count"] = out["count"].astype("int64")
    return group_sort(out, "amount", "category")[list(SHARE_COLUMNS)]


def pareto_table(ledger: pd.DataFrame, by: str = "vendor", threshold: float = 0.8) -> pd.DataFrame:
    """Keys of ``by`` (vendor, customer, …) by net spend, with cumulative share and the 80 % core.

    ``in_core`` marks the smallest set of top keys whose cumulative share reaches
    ``threshold`` (the key that crosses the line is in the core). Ties in amount are broken by
    key text so the table is the same on every run.

    Returns
    -------
    DataFrame
        ``rank`` (1 = largest), ``key``, ``amount``, ``count``, ``share``, ``cum_share``,
        ``in_core``; only keys with positive net spend.
    """
    _check_threshold(threshold)
    rows = spend_rows(ledger)
    require_columns(rows, (by,), "ledger")
    keys = key_text(rows[by])
    known = keys.notna()
    grouped = rows.loc[known, "amount"].groupby(keys[known], sort=False)
    out = pd.DataFrame({"amount": grouped.sum(), "count": grouped.size()}).reset_index(names="key")
    out = out.loc[out["amount"] > 0]
    out = group_sort(out, "amount", "key")
    total = float(out["amount"].sum())
    cum = out["amount"].cumsum().to_numpy()
    share = ratio(out["amount"].to_numpy(), np.full(len(out), total))
    cum_share = ratio(cum, np.full(len(out), total))
    # A key is in the core while the share *before* it is still short of the threshold; the
    # tiny tolerance keeps 0.8000000000000002 from pushing one key too many into the core.
    before = np.concatenate([[0.0], cum_share[:-1]]) if len(out) else cum_share
    out["in_core"] = before < threshold - 1e-9
    out["share"] = ratio4(share)
    out["cum_share"] = ratio4(cum_share)
    out["amount"] = money(out["amount"].astype("float64"))
    out["count"] = out["count"].astype("int64")
    out["rank"] = np.arange(1, len(out) + 1, dtype="int64")
    out["key"] = out["key"].astype(object)
    return out[list(PARETO_COLUMNS)].reset_index(drop=True)


def pareto_count(table: pd.DataFrame) -> int:
    """How many keys make the threshold's share of spend (the size of the core)."""
    return int(table["in_core"].sum())


def pareto_summary(ledger: pd.DataFrame, by: tuple[str, ...] = ("vendor", "customer"),
                   threshold: float = 0.8) -> pd.DataFrame:
    """One line per key column: how many keys, how many make ``threshold`` of spend, and shares.

    ``core_keys_share`` is the core's share of all keys (20 % of vendors making 80 % of spend is
    the textbook case); ``core_amount_share`` is the spend share the core actually reaches.
    """
    records = []
    for column in by:
        table = pareto_table(ledger, column, threshold)
        core = table.loc[table["in_core"]]
        records.append({
            "by": column,
            "keys": len(table),
            "core_keys": len(core),
            "core_keys_share": float(ratio4(ratio(len(core), len(table)))),
            "core_amount_share": float(core["cum_share"].iloc[-1]) if len(core) else np.nan,
            "threshold": float(threshold),
        })
    return pd.DataFrame(records, columns=list(PARETO_SUMMARY_COLUMNS))


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise AnalysisError(f"Pareto threshold {threshold} must lie in (0, 1]", "use e.g. 0.8 for 80 %")
