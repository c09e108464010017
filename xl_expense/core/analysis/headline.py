"""The audit headline of the dashboard: findings and amount at risk by severity (and status).

The counting is :func:`xl_expense.core.audit.summary.summarize_findings`' (each flagged row
once, absolute amounts, group findings add no amount), so the dashboard and the audit summary
sheet never disagree; this module only adds the reviewer-status split and a total line.
"""

from __future__ import annotations

import pandas as pd

from xl_expense.core.analysis._common import money
from xl_expense.core.analysis.statuses import STATUS_KEYS, status_keys
from xl_expense.core.audit.summary import summarize_findings

HEADLINE_COLUMNS = ("severity", "findings", "rows", "amount_at_risk", "open", "explained", "confirmed")
TOTAL = "total"


def audit_headline(findings: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """One line per severity (error, warning, info) and a ``total`` line.

    ``findings``/``rows``/``amount_at_risk`` as on the audit summary; ``open``, ``explained``
    and ``confirmed`` count findings by reviewer status (all open when the findings carry no
    ``status`` column, i.e. a fresh run). The total's rows and amount count each row once even
    when it is flagged at two severities.
    """
    summary = summarize_findings(findings, ledger)
    out = summary["by_severity"].rename(columns={"amount": "amount_at_risk"})
    statuses = status_keys(findings)
    severity = findings["severity"].astype(object)
    for key in STATUS_KEYS:
        counts = severity[statuses == key].value_counts()
        out[key] = out["severity"].map(counts).fillna(0).astype("int64")
    totals = summary["totals"].iloc[0]
    total = {"severity": TOTAL, "findings": int(totals["findings"]), "rows": int(totals["flagged_rows"]),
             "amount_at_risk": float(totals["amount_at_risk"]),
             **{key: int((statuses == key).sum()) for key in STATUS_KEYS}}
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    out["amount_at_risk"] = money(out["amount_at_risk"].astype("float64"))
    for col in ("findings", "rows", *STATUS_KEYS):
        out[col] = out[col].astype("int64")
    out["severity"] = out["severity"].astype(object)
    return out[list(HEADLINE_COLUMNS)]
