"""Reviewer status of a finding, folded to a language-free key: open, explained or confirmed.

A reviewer sets the Status on the findings sheet (待复核/已解释/已确认 or Open/Explained/
Confirmed; see :mod:`xl_expense.i18n`). Scorecards weigh findings by it: a confirmed finding
is a fact, an open one a suspicion, an explained one (a false positive, dismissed) nothing.
Text that is no known status is treated as open: the reviewer has not closed it.
"""

from __future__ import annotations

import pandas as pd

from xl_expense import i18n

STATUS_KEYS = ("open", "explained", "confirmed")

#: Words reviewers type instead of the dropdown values that mean the same thing.
_SYNONYMS = {
    "dismissed": "explained", "false positive": "explained", "false-positive": "explained",
    "resolved": "explained", "ok": "explained", "误报": "explained", "已驳回": "explained",
    "已关闭": "explained", "正常": "explained", "无问题": "explained",
    "confirm": "confirmed", "确认": "confirmed", "违规": "confirmed",
    "pending": "open", "待处理": "open",
}

_LOOKUP: dict[str, str] = {
    **{key: key for key in STATUS_KEYS},
    **{i18n.t(f"status.{key}", lang).strip().casefold(): key for key in STATUS_KEYS for lang in i18n.LANGS},
    **_SYNONYMS,
}


def status_keys(findings: pd.DataFrame) -> pd.Series:
    """``open`` / ``explained`` / ``confirmed`` for every finding (all open without a status column)."""
    if "status" not in findings.columns:
        return pd.Series("open", index=findings.index, dtype=object)
    text = findings["status"].astype(object).where(findings["status"].notna(), "")
    return text.map(lambda v: _LOOKUP.get(str(v).strip().casefold(), "open")).astype(object)
