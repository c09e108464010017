"""Aggregations of audit findings for the summary sheet: by rule, department, person, severity.

Pure pandas: the io layer turns these DataFrames into sheet blocks. Counting rules that the
summary must get right, because reviewers add the numbers up:

* ``findings`` counts findings; ``rows`` counts *distinct* ledger rows, keyed by
  ``(sheet, row)`` — a row flagged by two rules is one row.
* ``amount`` (amount at risk) is the sum of ``|amount|`` over those distinct rows, so a row
  flagged by ``duplicate`` and ``round_amount`` is not counted twice, and a refund does not
  cancel out a suspicious expense.
* Group findings (``row`` missing, e.g. a Benford result per salesperson) count as findings
  but add no rows and no amount: their ``amount`` is the whole group's, which would double
  count every row already flagged in it.
"""

from __future__ import annotations

import pandas as pd

from xl_expense.schema import SEVERITIES

#: Rank used to report the most severe level when one rule emits several.
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

_COUNT_COLUMNS = ["findings", "rows", "amount"]


def summarize_findings(findings: pd.DataFrame, ledger_df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Counts and amounts of ``findings`` for the summary sheet.

    Parameters
    ----------
    findings : DataFrame
        Findings with the columns of :data:`xl_expense.schema.FINDING_COLUMNS`.
    ledger_df : DataFrame
        The canonical ledger the findings were computed on (for totals and date range).

    Returns
    -------
    dict of DataFrame
        ``by_rule`` (rule, severity, findings, rows, amount), ``by_severity`` (severity,
        findings, rows, amount; all three levels, in order), ``by_department`` and
        ``by_person`` (key, findings, rows, amount; missing keys kept as NA, sorted by amount
        at risk then findings), and ``totals``: one row with ``rows``, ``amount``,
        ``date_min``, ``date_max``, ``findings``, ``group_findings``, ``flagged_rows``,
        ``amount_at_risk``.
    """
    findings = _prepare(findings)
    return {
        "by_rule": _by_rule(findings),
        "by_severity": _by_severity(findings),
        "by_department": _by_key(findings, "department"),
        "by_person": _by_key(findings, "person"),
        "totals": _totals(findings, ledger_df),
    }


def _prepare(findings: pd.DataFrame) -> pd.DataFrame:
    """Only the columns we aggregate, with numeric amount/row and an absolute amount."""
    out = pd.DataFrame({
        "rule": findings["rule"].astype(object),
        "severity": findings["severity"].astype(object),
        "sheet": findings["sheet"].astype(object),
        "row": pd.to_numeric(findings["row"], errors="coerce"),
        "person": findings["person"].astype(object),
        "department": findings["department"].astype(object),
        "abs_amount": pd.to_numeric(findings["amount"], errors="coerce").abs().fillna(0.0),
    })
    out["is_row"] = out["row"].notna()
    # Group findings have no sheet either; keep the key hashable and distinct from real sheets.
    out["sheet"] = out["sheet"].where(out["sheet"].notna(), "")
    return out


def _distinct_rows(findings: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Row-level findings with each (keys…, sheet, row) once: the base of rows and amount."""
    rows = findings[findings["is_row"]]
    return rows.drop_duplicates(subset=[*keys, "sheet", "row"])


def _aggregate(findings: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """findings / distinct rows / amount at risk per ``keys`` (missing keys form their own group)."""
    counted = findings.groupby(keys, dropna=False, sort=False).size().rename("findings")
    distinct = _distinct_rows(findings, keys).groupby(keys, dropna=False, sort=False)
    rows = distinct.size().rename("rows")
    amount = distinct["abs_amount"].sum().rename("amount")
    out = pd.concat([counted, rows, amount], axis=1)
    out["rows"] = out["rows"].fillna(0).astype("int64")
    out["amount"] = out["amount"].fillna(0.0).astype("float64")
    out["findings"] = out["findings"].fillna(0).astype("int64")
    return out.reset_index()


def _by_rule(findings: pd.DataFrame) -> pd.DataFrame:
    """One line per rule with its most severe level, most severe and most frequent first."""
    if findings.empty:
        return pd.DataFrame({"rule": pd.Series(dtype=object), "severity": pd.Series(dtype=object),
                             "findings": pd.Series(dtype="int64"), "rows": pd.Series(dtype="int64"),
                             "amount": pd.Series(dtype="float64")})
    out = _aggregate(findings, ["rule"])
    rank = findings["severity"].map(_SEVERITY_RANK).fillna(len(SEVERITIES))
    worst = rank.groupby(findings["rule"], sort=False).min()
    out["_rank"] = out["rule"].map(worst).to_numpy()
    out["severity"] = out["_rank"].map(dict(enumerate(SEVERITIES)))
    out = out.sort_values(["_rank", "findings", "rule"], ascending=[True, False, True], kind="stable")
    return out[["rule", "severity", *_COUNT_COLUMNS]].reset_index(drop=True)


def _by_severity(findings: pd.DataFrame) -> pd.DataFrame:
    """Every severity level, in order, zero when absent (so the headline has fixed lines)."""
    base = pd.DataFrame({"severity": list(SEVERITIES)})
    if findings.empty:
        counts = pd.DataFrame(columns=["severity", *_COUNT_COLUMNS])
    else:
        counts = _aggregate(findings, ["severity"])
    out = base.merge(counts, on="severity", how="left")
    out["findings"] = out["findings"].fillna(0).astype("int64")
    out["rows"] = out["rows"].fillna(0).astype("int64")
    out["amount"] = out["amount"].astype("float64").fillna(0.0)
    return out


def _by_key(findings: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per department or person; a row counts once per key even when several rules flag it."""
    if findings.empty:
        return pd.DataFrame({key: pd.Series(dtype=object), "findings": pd.Series(dtype="int64"),
                             "rows": pd.Series(dtype="int64"), "amount": pd.Series(dtype="float64")})
    out = _aggregate(findings, [key])
    out = out.sort_values(["amount", "findings"], ascending=[False, False], kind="stable")
    return out.reset_index(drop=True)


def _totals(findings: pd.DataFrame, ledger_df: pd.DataFrame) -> pd.DataFrame:
    """Ledger size, amount and date range next to the overall flagged rows and amount at risk."""
    amounts = pd.to_numeric(ledger_df["amount"], errors="coerce") if "amount" in ledger_df else pd.Series(dtype=float)
    dates = pd.to_datetime(ledger_df["date"], errors="coerce") if "date" in ledger_df else pd.Series(dtype="datetime64[ns]")
    distinct = _distinct_rows(findings, [])
    return pd.DataFrame({
        "rows": [int(len(ledger_df))],
        "amount": [float(amounts.sum())],
        "date_min": [dates.min()],
        "date_max": [dates.max()],
        "findings": [int(len(findings))],
        "group_findings": [int((~findings["is_row"]).sum())],
        "flagged_rows": [int(len(distinct))],
        "amount_at_risk": [float(distinct["abs_amount"].sum())],
    })
