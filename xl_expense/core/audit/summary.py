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

import numpy as np
import pandas as pd

from xl_expense.schema import SEVERITIES

#: Rank used to report the most severe level when one rule emits several.
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

_COUNT_COLUMNS = ["findings", "rows", "amount"]

#: The columns findings are counted by (the summary's tables, in this order).
_KEYS = ("rule", "severity", "department", "person")


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
    if len(findings) and _text_keys(findings):
        return _summarize_arrays(findings, ledger_df)
    return summarize_findings_pandas(findings, ledger_df)


def summarize_findings_pandas(findings: pd.DataFrame, ledger_df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """:func:`summarize_findings` by pandas groupbys: the plain version, for no findings and
    keys that are not text (the array version is tested to give exactly its tables)."""
    findings = _prepare(findings)
    return {
        "by_rule": _by_rule(findings),
        "by_severity": _by_severity(findings),
        "by_department": _by_key(findings, "department"),
        "by_person": _by_key(findings, "person"),
        "totals": _totals(findings, ledger_df),
    }


# --------------------------------------------------------------------------- array version

def _text_keys(findings: pd.DataFrame) -> bool:
    """Every key value is text or missing, rules and severities never missing: the array
    version's group labels and order are then exactly pandas' (see :func:`_groups`)."""
    for key in _KEYS:
        kind = pd.api.types.infer_dtype(findings[key], skipna=True)
        if kind not in ("string", "empty"):
            return False
    return not (findings["rule"].isna().any() or findings["severity"].isna().any())


def _summarize_arrays(findings: pd.DataFrame, ledger_df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """:func:`summarize_findings_pandas` counted with factorised keys and bincounts.

    On a small ledger the dozens of pandas groupbys, merges and sorts cost several times the
    counting itself. The group order (first appearance), labels (their dtype inferred as
    pandas infers a group index) and sort orders are pandas', tested on the same findings
    against the plain version. Amounts stay pandas' grouped sums (see :func:`_amounts`).
    """
    n = len(findings)
    row = pd.to_numeric(findings["row"], errors="coerce")
    is_row = row.notna().to_numpy()
    abs_amount = pd.to_numeric(findings["amount"], errors="coerce").abs().fillna(0.0).to_numpy(dtype="float64")
    sheet = findings["sheet"].astype(object)
    sheet_code = pd.factorize(sheet.where(sheet.notna(), ""))[0]
    row_code = pd.factorize(row)[0]
    # One code per flagged ledger row (sheet, row); -1 for group findings.
    place = np.where(is_row, pd.factorize(sheet_code * (n + 1) + row_code)[0], -1)
    n_places = int(place.max()) + 1 if is_row.any() else 0

    groups = {key: _groups(findings[key], place, n_places, abs_amount) for key in _KEYS}
    severity_rank = findings["severity"].map(_SEVERITY_RANK).fillna(len(SEVERITIES)).to_numpy()
    first_place = place >= 0
    first_place[first_place] = _first_seen(place[first_place])
    return {
        "by_rule": _rule_table(groups["rule"], severity_rank),
        "by_severity": _severity_table(groups["severity"]),
        "by_department": _key_table(groups["department"], "department"),
        "by_person": _key_table(groups["person"], "person"),
        "totals": _totals_table(ledger_df, n, int((~is_row).sum()), int(first_place.sum()),
                                float(pd.Series(abs_amount[first_place]).sum())),
    }


class _Groups:
    """One key's groups: labels, each finding's group, and the counts per group."""

    def __init__(self, labels: pd.Index, codes: np.ndarray, distinct: np.ndarray, abs_amount: np.ndarray) -> None:
        self.labels = labels        # as pandas labels a group index
        self.codes = codes          # group of each finding
        self.findings = np.bincount(codes, minlength=len(labels))
        self.rows = np.bincount(codes[distinct], minlength=len(labels))
        self.amount = _amounts(codes[distinct], abs_amount[distinct], len(labels))


def _amounts(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of ``values`` per group code (0.0 for a group without values), as pandas sums them.

    pandas' grouped sum adds a group's values in order, by ``np.add.reduceat`` when the
    groups come in blocks and with a compensated (Kahan) sum otherwise: the two can differ
    in the last bit. So the grouped sum itself is called, on the same values in the same
    order, grouped in order of first appearance as ``groupby(sort=False)`` numbers them.
    """
    out = np.zeros(n_groups)
    if len(codes):
        sums = pd.Series(values).groupby(codes, sort=False).sum()
        out[sums.index.to_numpy()] = sums.to_numpy()
    return out


def _groups(values: pd.Series, place: np.ndarray, n_places: int, abs_amount: np.ndarray) -> _Groups:
    """Groups of a key in order of first appearance, missing values one group (``groupby(…,
    sort=False, dropna=False)``), and each group's distinct flagged rows (``drop_duplicates``
    keeps the first)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    codes = codes.astype("int64", copy=False)
    flagged = np.flatnonzero(place >= 0)
    pair = codes[flagged] * max(n_places, 1) + place[flagged]
    distinct = flagged[_first_seen(pair)]
    # pandas builds a group index from the distinct values with type inference (text → str,
    # all missing → float64); Index(list) infers the same way.
    return _Groups(pd.Index(list(uniques)), codes, distinct, abs_amount)


def _first_seen(keys: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value of ``keys``."""
    first = np.zeros(len(keys), dtype=bool)
    if len(keys):
        first[np.unique(keys, return_index=True)[1]] = True
    return first


def _counts_frame(key: str, labels: pd.Index, g: _Groups, order: np.ndarray, extra: dict | None = None
                  ) -> pd.DataFrame:
    columns = {key: labels[order], **(extra or {}), "findings": g.findings[order].astype("int64"),
               "rows": g.rows[order].astype("int64"), "amount": g.amount[order].astype("float64")}
    return pd.DataFrame(columns).reset_index(drop=True)


def _rule_table(g: _Groups, severity_rank: np.ndarray) -> pd.DataFrame:
    """:func:`_by_rule`: worst level per rule; most severe, most findings, then rule id first."""
    worst = np.full(len(g.labels), float(len(SEVERITIES)))
    np.minimum.at(worst, g.codes, severity_rank.astype("float64"))
    by_id = np.argsort(np.asarray(g.labels, dtype=object), kind="stable")
    rule_order = np.empty(len(by_id), dtype="int64")
    rule_order[by_id] = np.arange(len(by_id))
    order = np.lexsort((rule_order, -g.findings, worst))
    severity = pd.Series(worst[order]).map(dict(enumerate(SEVERITIES)))  # as _by_rule maps its ranks
    return _counts_frame("rule", g.labels, g, order, {"severity": severity})


def _severity_table(g: _Groups) -> pd.DataFrame:
    """:func:`_by_severity`: every level in order, zero when absent."""
    at = {label: i for i, label in enumerate(g.labels)}
    pick = [at.get(sev) for sev in SEVERITIES]

    def column(values: np.ndarray, dtype: str) -> np.ndarray:
        return np.array([values[i] if i is not None else 0 for i in pick], dtype=dtype)

    return pd.DataFrame({"severity": list(SEVERITIES), "findings": column(g.findings, "int64"),
                         "rows": column(g.rows, "int64"), "amount": column(g.amount, "float64")})


def _key_table(g: _Groups, key: str) -> pd.DataFrame:
    """:func:`_by_key`: most amount at risk, then most findings first (ties keep group order)."""
    order = np.lexsort((-g.findings, -g.amount))
    return _counts_frame(key, g.labels, g, order)


def _totals_table(ledger_df: pd.DataFrame, n_findings: int, group_findings: int, flagged_rows: int,
                  amount_at_risk: float) -> pd.DataFrame:
    amounts = pd.to_numeric(ledger_df["amount"], errors="coerce") if "amount" in ledger_df else pd.Series(dtype=float)
    dates = pd.to_datetime(ledger_df["date"], errors="coerce") if "date" in ledger_df else pd.Series(dtype="datetime64[ns]")
    return pd.DataFrame({
        "rows": [len(ledger_df)],
        "amount": [float(amounts.sum())],
        "date_min": [dates.min()],
        "date_max": [dates.max()],
        "findings": [n_findings],
        "group_findings": [group_findings],
        "flagged_rows": [flagged_rows],
        "amount_at_risk": [amount_at_risk],
    })


# --------------------------------------------------------------------------- pandas version

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
