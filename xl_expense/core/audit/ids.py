"""Stable finding ids: the same issue on the same expense keeps its id from run to run.

Reviewers write a Status and a Comment next to each finding; the next run matches them back by
id. So an id must not depend on the row number (rows get inserted above) nor on the run. It is
a short SHA-1 of the rule, the sheet and the row's *content* (date, amount, person, vendor,
receipt, description), plus an occurrence counter that tells identical rows apart (the second
identical row of a sheet is occurrence 1). Group findings hash the rule and the group key.
The ``DUP-`` style prefix (the rule's code) lets a reader see the rule in the id itself.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import key_codes

#: The columns that identify an expense for its finding id.
CONTENT_COLUMNS = ("date", "amount", "person", "vendor", "receipt", "description")
HEX_DIGITS = 10


def occurrences(ledger: pd.DataFrame) -> np.ndarray:
    """0 for the first row with given sheet + content, 1 for the next identical one, …"""
    key = key_codes(ledger, ("sheet",) + CONTENT_COLUMNS, na_is_value=True)
    return pd.Series(key).groupby(key).cumcount().to_numpy()


def _short(code: str, text: str) -> str:
    return f"{code}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:HEX_DIGITS]}"


def _text(value) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # numpy 2 reprs np.float64 as 'np.float64(…)'; hash plain text
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def content_texts(rows: pd.DataFrame) -> np.ndarray:
    """The identifying text of each row: sheet and content columns joined by a unit separator.

    Each column is converted once per distinct value (a few hundred dates and names), then
    the parts are put together as arrays.
    """
    out = None
    for col in ("sheet",) + CONTENT_COLUMNS:
        codes, uniques = pd.factorize(rows[col], use_na_sentinel=True)
        texts = np.array([_text(u) for u in uniques] + [""], dtype=object)  # code -1 → ""
        part = texts[codes]
        out = part if out is None else out + "\x1f" + part
    return out if out is not None else np.array([], dtype=object)


def row_finding_ids(rule_id: str, code: str, rows: pd.DataFrame, occurrence: np.ndarray) -> list[str]:
    """Ids for findings on ``rows`` (ledger rows hit by one rule) with their occurrence counters."""
    texts = content_texts(rows)
    prefix = f"{rule_id}\x1f"
    return [_short(code, f"{prefix}{text}\x1f{int(count)}") for text, count in zip(texts, occurrence)]


def group_finding_id(rule_id: str, code: str, group_key: str) -> str:
    """Id of a finding about a group (e.g. one person's Benford test), from its language-free key."""
    return _short(code, f"{rule_id}\x1f{group_key}")
