"""Peer benchmark (对标): departments or regions ranked on the same ratios, the best as reference.

Learning from the best department (案例分享) needs a fair comparison, so every group is measured
on the ratios of :mod:`.ratios` plus audit findings per 100 expense rows and budget pace, all
"lower is better". Each metric ranks the groups (1 = best; groups where the metric cannot be
measured get no rank), the overall rank orders groups by their mean rank, and the best group
is the reference: every other group's gap to it is shown per metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_expense.core.analysis._common import (
    AnalysisError,
    key_text,
    money,
    ratio,
    ratio4,
)
from xl_expense.core.analysis.ratios import efficiency_ratios
from xl_expense.core.analysis.statuses import status_keys

#: Metrics compared, all lower-is-better.
METRICS = ("cost_per_customer", "cost_per_claim", "cost_per_activity", "expense_to_revenue",
           "findings_per_100_claims", "budget_pace")
BENCHMARK_COLUMNS = ("level", "group", "spend", "claims", "customers", *METRICS,
                     *(f"rank_{m}" for m in METRICS), "mean_rank", "overall_rank", "is_reference",
                     *(f"gap_{m}" for m in METRICS))
GAP_COLUMNS = ("level", "group", "reference", "metric", "value", "reference_value", "gap", "gap_pct")
_MONEY_METRICS = ("cost_per_customer", "cost_per_claim", "cost_per_activity")


def benchmark(ledger: pd.DataFrame, findings: pd.DataFrame | None = None, revenue: pd.DataFrame | None = None,
              alerts: pd.DataFrame | None = None, by: str = "department") -> pd.DataFrame:
    """Groups of ``by`` (department or region) ranked on :data:`METRICS`; the best is the reference.

    Parameters
    ----------
    ledger, revenue : DataFrame
        As for :func:`.ratios.efficiency_ratios` (revenue needs a ``by`` column for the
        expense-to-revenue ratio).
    findings : DataFrame, optional
        Audit findings; explained (dismissed) findings are not counted.
    alerts : DataFrame, optional
        ``monitor_budget``'s table; budget pace is only measured by department.
    by : str
        ``department`` or ``region`` (any ledger column works).

    Returns
    -------
    DataFrame
        :data:`BENCHMARK_COLUMNS`, in overall rank order. ``gap_<metric>`` = value − the
        reference's value (positive = worse than the reference). Rows with a blank group are
        left out: an unnamed department cannot be a peer.
    """
    ratios = efficiency_ratios(ledger, revenue, by=by)
    out = ratios.loc[ratios["group"].notna()].set_index("group")
    out = out.drop(columns=["activities", "revenue"])
    out["findings_per_100_claims"] = _findings_rate(findings, ledger, by, out)
    out["budget_pace"] = _budget_pace(alerts, by, out.index)
    for metric in METRICS:
        out[f"rank_{metric}"] = out[metric].rank(method="min", ascending=True).astype("Float64").astype("Int64")
    ranks = out[[f"rank_{m}" for m in METRICS]].astype("float64")
    out["mean_rank"] = ratio4(ranks.mean(axis=1, skipna=True))
    order = pd.DataFrame({"nan": out["mean_rank"].isna().to_numpy(),
                          "mean": out["mean_rank"].fillna(0).to_numpy(),
                          "cpc": out["cost_per_customer"].fillna(np.inf).to_numpy(),
                          "group": out.index.astype(str)})
    order = order.sort_values(["nan", "mean", "cpc", "group"], kind="stable").index.to_numpy()
    out = out.iloc[order]
    out["overall_rank"] = np.arange(1, len(out) + 1, dtype="int64")
    out["is_reference"] = out["overall_rank"] == 1
    reference = out.iloc[0] if len(out) else None
    for metric in METRICS:
        gap = out[metric] - (reference[metric] if reference is not None else np.nan)
        out[f"gap_{metric}"] = money(gap) if metric in _MONEY_METRICS else ratio4(gap)
    out["level"] = by
    return out.reset_index()[list(BENCHMARK_COLUMNS)]


def benchmark_gaps(table: pd.DataFrame) -> pd.DataFrame:
    """The benchmark in long form: one line per group × metric with the reference's value and gap.

    ``gap_pct`` = gap ÷ reference value (NaN when the reference is 0 or not measured).
    """
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GAP_COLUMNS})
    reference = table.loc[table["is_reference"]].iloc[0]
    records = []
    for row in table.itertuples(index=False):
        for metric in METRICS:
            value, ref = getattr(row, metric), reference[metric]
            records.append({"level": row.level, "group": row.group, "reference": reference["group"],
                            "metric": metric, "value": value, "reference_value": ref,
                            "gap": getattr(row, f"gap_{metric}"),
                            "gap_pct": float(ratio4(ratio(value - ref, ref)))})
    out = pd.DataFrame(records, columns=list(GAP_COLUMNS))
    for col in ("value", "reference_value", "gap", "gap_pct"):
        out[col] = out[col].astype("float64")
    return out


def _findings_rate(findings: pd.DataFrame | None, ledger: pd.DataFrame, by: str, out: pd.DataFrame
                   ) -> np.ndarray:
    """Findings not explained away, per 100 expense rows of the group."""
    if findings is None:
        return np.full(len(out), np.nan)
    kept = findings.loc[status_keys(findings) != "explained"]
    counts = key_text(_finding_groups(kept, ledger, by)).value_counts().reindex(out.index, fill_value=0)
    return ratio4(100.0 * ratio(counts.to_numpy(), out["claims"].to_numpy()))


def _finding_groups(findings: pd.DataFrame, ledger: pd.DataFrame, by: str) -> pd.Series:
    """The ``by`` value of each finding: its own column, else its ledger row's (by sheet and row).

    Findings carry person and department but not region; a finding about a group of rows (no
    row number) then belongs to no region.
    """
    if by in findings.columns:
        return findings[by]
    if by not in ledger.columns:
        raise AnalysisError(f"ledger has no column {by!r} to benchmark by", "benchmark by department or region")
    lookup = pd.Series(ledger[by].to_numpy(), index=pd.MultiIndex.from_arrays(
        [ledger["sheet"].astype(object).to_numpy(), ledger["row"].astype("int64").to_numpy()]))
    lookup = lookup[~lookup.index.duplicated()]
    has_row = findings["row"].notna().to_numpy()
    keys = pd.MultiIndex.from_arrays([findings["sheet"].astype(object).to_numpy()[has_row],
                                      findings["row"].to_numpy()[has_row].astype("int64")])
    values = np.full(len(findings), None, dtype=object)
    values[has_row] = lookup.reindex(keys).to_numpy()
    return pd.Series(values, index=findings.index, dtype=object)


def _budget_pace(alerts: pd.DataFrame | None, by: str, groups: pd.Index) -> np.ndarray:
    """Actual ÷ plan to date per department (only when the budget is by department)."""
    if alerts is None or by != "department" or not len(alerts) or not (alerts["unit_by"] == "department").all():
        return np.full(len(groups), np.nan)
    sums = alerts.groupby(key_text(alerts["unit"]))[["planned_to_date", "actual_to_date"]].sum()
    sums = sums.reindex(groups)
    return ratio4(ratio(sums["actual_to_date"], sums["planned_to_date"]))
