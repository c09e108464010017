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

from xl_expense.core.audit.registry import column_factorized, key_codes

#: The columns that identify an expense for its finding id.
CONTENT_COLUMNS = ("date", "amount", "person", "vendor", "receipt", "description")
HEX_DIGITS = 10


def occurrences(ledger: pd.DataFrame) -> np.ndarray:
    """0 for the first row with given sheet + content, 1 for the next identical one, …"""
    key = key_codes(ledger, ("sheet",) + CONTENT_COLUMNS, na_is_value=True)
    return cumulative_counts(key)


def cumulative_counts(key: np.ndarray) -> np.ndarray:
    """``pd.Series(key).groupby(key).cumcount()`` as int64 array: how many earlier rows share
    each row's key. A stable sort puts each key's rows together in ledger order."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    position = np.arange(len(key), dtype="int64")
    starts = np.ones(len(key), dtype=bool)
    starts[1:] = sorted_key[1:] != sorted_key[:-1]
    counts = np.empty(len(key), dtype="int64")
    counts[order] = position - np.maximum.accumulate(np.where(starts, position, 0))
    return counts


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


def ledger_content_texts(ledger: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """:func:`content_texts` of the ledger rows at ``positions``, from the ledger's column codes
    (shared by the rules; see :func:`~xl_expense.core.audit.registry.shared_work`).

    Only the distinct values at ``positions`` are converted to text. Equal to
    ``content_texts(ledger.iloc[positions])``: a column's text depends on the value alone,
    except where equal values can be written differently (``1`` and ``1.0`` in a text column,
    0.0 and -0.0 in an amount column); such a column is converted as before.
    """
    out = None
    for col in ("sheet",) + CONTENT_COLUMNS:
        part = _column_texts(ledger, col, positions)
        out = part if out is None else out + "\x1f" + part
    return out if out is not None else np.array([], dtype=object)


def _column_texts(ledger: pd.DataFrame, col: str, positions: np.ndarray) -> np.ndarray:
    codes, uniques = column_factorized(ledger, col)
    at = codes[positions]
    needed = np.unique(at[at >= 0])
    values = np.asarray(uniques[needed], dtype=object)
    column = ledger[col]
    if column.dtype == object and not all(type(u) is str for u in values):
        return content_texts_of_column(column.iloc[positions])
    if column.dtype.kind == "f" and (values == 0).any():
        amounts = column.to_numpy()
        if np.signbit(amounts[amounts == 0]).any():
            return content_texts_of_column(column.iloc[positions])
    texts = np.empty(len(uniques) + 1, dtype=object)  # the last one: missing (code -1)
    texts[needed] = [_text(u) for u in values]
    texts[-1] = ""
    return texts[at]


def content_texts_of_column(values: pd.Series) -> np.ndarray:
    """The text of each value of one column, as :func:`content_texts` writes it."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.array([_text(u) for u in uniques] + [""], dtype=object)[codes]


def finding_ids(rule_ids: np.ndarray, codes: np.ndarray, texts: np.ndarray, occurrence: np.ndarray) -> list[str]:
    """:func:`row_finding_ids` for hits of several rules at once (one rule id and code per hit)."""
    return [_short(code, f"{rule_id}\x1f{text}\x1f{int(count)}")
            for rule_id, code, text, count in zip(rule_ids, codes, texts, occurrence)]


def row_finding_ids(rule_id: str, code: str, rows: pd.DataFrame, occurrence: np.ndarray) -> list[str]:
    """Ids for findings on ``rows`` (ledger rows hit by one rule) with their occurrence counters."""
    texts = content_texts(rows)
    prefix = f"{rule_id}\x1f"
    return [_short(code, f"{prefix}{text}\x1f{int(count)}") for text, count in zip(texts, occurrence)]


def group_finding_id(rule_id: str, code: str, group_key: str) -> str:
    """Id of a finding about a group (e.g. one person's Benford test), from its language-free key."""
    return _short(code, f"{rule_id}\x1f{group_key}")
