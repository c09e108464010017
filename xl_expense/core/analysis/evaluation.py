"""Periodic evaluation (定期审计和评估): what changed between audit runs.

Finding ids are stable across runs (:mod:`xl_expense.core.audit.ids`): the same issue on the
same expense keeps its id. Comparing this run's ids with earlier runs' gives, per finding:

* ``opened`` — new in this run (never seen before);
* ``recurring`` — also in the previous run (the problem is still there);
* ``reopened`` — absent from the previous run but seen in an earlier one (it came back);
* ``resolved`` — in the previous run, not in this one (fixed, or the row was corrected).

Runs are passed oldest first as ``(label, findings)`` pairs — the label is whatever the
workbook records for a run (its time or number).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xl_expense.core.analysis._common import key_text, money, require_columns
from xl_expense.schema import SEVERITIES

STATES = ("opened", "recurring", "reopened", "resolved")
CHANGE_COLUMNS = ("finding_id", "state", "rule", "severity", "department", "person", "amount")
BY_COLUMNS = ("current", "previous", *STATES, "net_change")
TREND_COLUMNS = ("run", "findings", *STATES, *SEVERITIES, "amount_at_risk")
_ATTRS = ("rule", "severity", "department", "person", "amount")


def finding_changes(current: pd.DataFrame, history: Sequence[pd.DataFrame] = ()) -> pd.DataFrame:
    """One line per finding of this run or the previous one, with its state.

    Parameters
    ----------
    current : DataFrame
        This run's findings (``finding_id`` plus rule, severity, department, person, amount).
    history : sequence of DataFrame
        Earlier runs' findings, oldest first; the last one is the previous run.

    Returns
    -------
    DataFrame
        :data:`CHANGE_COLUMNS`; attributes come from this run, or from the previous run for
        resolved findings. Ordered by state, rule, then id.
    """
    _check(current)
    for frame in history:
        _check(frame)
    now = _by_id(current)
    before = _by_id(history[-1]) if history else _by_id(current.iloc[:0])
    earlier = set().union(*(set(frame["finding_id"].dropna()) for frame in history[:-1])) if history else set()
    state = pd.Series("opened", index=now.index, dtype=object)
    state[now.index.isin(before.index)] = "recurring"
    state[~now.index.isin(before.index) & now.index.isin(list(earlier))] = "reopened"
    gone = before.loc[~before.index.isin(now.index)]
    out = pd.concat([now.assign(state=state), gone.assign(state="resolved")])
    out = out.reset_index(names="finding_id")
    out["amount"] = money(pd.to_numeric(out["amount"], errors="coerce").astype("float64"))
    for col in ("rule", "severity", "department", "person"):
        out[col] = key_text(out[col])
    out["_state"] = out["state"].map({s: i for i, s in enumerate(STATES)})
    out = out.sort_values(["_state", "rule", "finding_id"], kind="stable")
    return out[list(CHANGE_COLUMNS)].reset_index(drop=True)


def evaluation_by(changes: pd.DataFrame, by: Sequence[str] = ("rule", "department")) -> pd.DataFrame:
    """Counts of each state per ``by`` (rule and department by default), biggest movers first.

    ``current`` = opened + recurring + reopened (this run's count), ``previous`` = recurring +
    resolved (the previous run's count) and ``net_change`` = current − previous. Blank keys
    (group findings have no department) form their own line with ``None``.
    """
    keys = list(by)
    frame = changes.assign(**{k: changes[k].astype(object).fillna("\x00") for k in keys})
    counts = pd.crosstab([frame[k] for k in keys], frame["state"])
    counts = counts.reindex(columns=list(STATES), fill_value=0)
    counts.columns.name = None
    counts["current"] = counts["opened"] + counts["recurring"] + counts["reopened"]
    counts["previous"] = counts["recurring"] + counts["resolved"]
    counts["net_change"] = counts["current"] - counts["previous"]
    out = counts.reset_index()
    for k in keys:
        out[k] = out[k].astype(object).where(out[k] != "\x00", None)
    out = out.astype({c: "int64" for c in BY_COLUMNS})
    out["_abs"] = out["net_change"].abs()
    sort_keys = [out[k].astype(object).fillna("").astype(str).rename(f"_k{i}") for i, k in enumerate(keys)]
    out = pd.concat([out, *sort_keys], axis=1)
    out = out.sort_values(["_abs", "current", *[s.name for s in sort_keys]],
                          ascending=[False, False, *[True] * len(keys)], kind="stable")
    return out[[*keys, *BY_COLUMNS]].reset_index(drop=True)


def evaluation_trend(runs: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One line per run, oldest first: findings, state counts, counts by severity, amount at risk.

    The first run has every finding ``opened``. ``amount_at_risk`` sums ``|amount|`` of row
    findings, each (sheet, row) once, as the audit summary does.
    """
    records = []
    for i, (label, findings) in enumerate(runs):
        changes = finding_changes(findings, [f for _, f in runs[:i]])
        state_counts = changes["state"].value_counts()
        severity_counts = key_text(findings["severity"]).value_counts()
        records.append({
            "run": label, "findings": int(findings["finding_id"].nunique()),
            **{s: int(state_counts.get(s, 0)) for s in STATES},
            **{s: int(severity_counts.get(s, 0)) for s in SEVERITIES},
            "amount_at_risk": float(money(_amount_at_risk(findings))),
        })
    out = pd.DataFrame(records, columns=list(TREND_COLUMNS))
    return out.astype({c: "int64" for c in ("findings", *STATES, *SEVERITIES)} | {"amount_at_risk": "float64"})


def _check(findings: pd.DataFrame) -> None:
    require_columns(findings, ("finding_id", *_ATTRS), "findings table")


def _by_id(findings: pd.DataFrame) -> pd.DataFrame:
    """Attributes by finding id (an id listed twice — a hand-edited sheet — counts once)."""
    frame = findings.loc[findings["finding_id"].notna(), ["finding_id", *_ATTRS]]
    frame = frame.assign(finding_id=frame["finding_id"].astype(str).str.strip())
    return frame.drop_duplicates("finding_id").set_index("finding_id")


def _amount_at_risk(findings: pd.DataFrame) -> float:
    if "row" not in findings.columns or "sheet" not in findings.columns:
        return float(pd.to_numeric(findings["amount"], errors="coerce").abs().sum())
    rows = findings.loc[findings["row"].notna()].drop_duplicates(["sheet", "row"])
    return float(pd.to_numeric(rows["amount"], errors="coerce").abs().sum())
