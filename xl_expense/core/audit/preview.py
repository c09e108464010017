"""Threshold preview: how many rows each tunable rule would flag at a few other settings.

Teams tune thresholds before alert fatigue sets in: "at a 1,500 receipt threshold we would
look at 312 rows instead of 1,040". Only the affected rule is re-run for each value, and the
IsolationForest count follows from the share alone (its scores do not depend on it), so the
preview costs a few rule runs, not a few audits. The amount rules are counted from their
conditions directly (no messages to word for rows nobody will see); tests check that those
counts equal the rules' own.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xl_expense.core.audit.anomaly import flag_count
from xl_expense.core.audit.registry import (
    _NO_RECEIPT,
    RULES,
    get_rules,
    ledger_receipt_numbers,
    prepare_ledger,
    receipt_numbers,
    shared_work,
)
from xl_expense.core.audit.rules_duplicates import (
    near_days,
    near_pairs,
    split_items,
    split_windows,
)
from xl_expense.core.settings import Settings

PREVIEW_COLUMNS = ("rule", "setting", "value", "flagged", "current")


def _scaled(factors: Sequence[float]) -> Callable[[Any], list]:
    return lambda current: [round(current * f, 2) for f in factors]


def _fixed(values: Sequence[Any]) -> Callable[[Any], list]:
    return lambda current: list(values)


#: (rule id, setting, alternatives given the current value); the current value is always added.
TUNABLES: tuple[tuple[str, str, Callable[[Any], list]], ...] = (
    ("split_transaction", "approval_limit", _scaled((0.5, 1.0, 1.5, 2.0))),
    ("split_transaction", "split_window_days", _fixed((1, 2, 3, 5))),
    ("below_threshold", "approval_limit", _scaled((0.5, 1.0, 1.5, 2.0))),
    ("below_threshold", "below_threshold_pct", _fixed((0.02, 0.05, 0.10))),
    ("missing_receipt", "receipt_threshold", _fixed((500.0, 1000.0, 2000.0, 5000.0))),
    ("round_amount", "round_multiple", _fixed((100.0, 500.0, 1000.0))),
    ("near_duplicate", "near_duplicate_days", _fixed((1, 3, 7))),
    ("isolation_forest", "anomaly_contamination", _fixed((0.005, 0.01, 0.02))),
)


def threshold_preview(ledger: pd.DataFrame, settings: Settings, *, prepared: bool = False) -> pd.DataFrame:
    """Rows each tunable rule would flag per alternative value (columns :data:`PREVIEW_COLUMNS`).

    ``current`` marks the value in use. Rules switched off in ``disabled_rules`` are left out.
    ``prepared``: ``ledger`` is already :func:`prepare_ledger`'s output (then the groundwork
    the rules computed for it in an enclosing :func:`shared_work` is reused).
    """
    df = ledger if prepared else prepare_ledger(ledger)
    enabled = {r.id for r in get_rules(settings)}
    counters: dict[str, Callable[[Settings], int]] = {}
    lines = []
    with shared_work(df):  # the counters share column codes (person, vendor, card, receipt …)
        for rule_id, setting, alternatives in TUNABLES:
            if rule_id not in enabled:
                continue
            if rule_id not in counters:
                counters[rule_id] = _counter(df, rule_id)
            current = getattr(settings, setting)
            values = sorted(set(alternatives(current)) | {current})
            for value in values:
                lines.append({"rule": rule_id, "setting": setting, "value": value,
                              "flagged": counters[rule_id](dataclasses.replace(settings, **{setting: value})),
                              "current": value == current})
    return pd.DataFrame(lines, columns=list(PREVIEW_COLUMNS)).astype({"flagged": "int64", "current": bool})


def _counter(ledger: pd.DataFrame, rule_id: str) -> Callable[[Settings], int]:
    """A function counting the distinct rows ``rule_id`` flags under given settings.

    The window rules reuse their threshold-independent groundwork between values and skip the
    messages; the IsolationForest count follows from the share; the amount rules are counted
    from their conditions; the rest re-run the rule.
    """
    if rule_id == "isolation_forest":
        n_scored = int((ledger["amount"] > 0).sum())
        return lambda s: flag_count(n_scored, s.anomaly_contamination)
    if rule_id == "split_transaction":
        items = [split_items(ledger, who) for who in ("person", "card")]

        # The current limit and window appear under both settings: computed once.
        @functools.cache
        def split_count(limit: float, width: int) -> int:
            return len(np.unique(np.concatenate(
                [split_windows(i, limit, width).pos for i in items])))

        return lambda s: split_count(float(s.approval_limit), max(int(s.split_window_days), 1))
    if rule_id == "missing_receipt":
        positive = ledger["amount"] > 0
        amounts = ledger.loc[positive, "amount"].to_numpy()
        no_receipt = ledger_receipt_numbers(ledger, positive).isna().to_numpy()
        return lambda s: int(((amounts >= float(s.receipt_threshold)) & no_receipt).sum())
    if rule_id == "near_duplicate":
        prepared = near_days(ledger)
        return lambda s: len(near_pairs(prepared, s.near_duplicate_days).pos)
    if rule_id == "below_threshold":
        amount = ledger["amount"].to_numpy(dtype="float64")
        return lambda s: _below_threshold_count(amount, s)
    if rule_id == "round_amount":
        amount = ledger["amount"].to_numpy(dtype="float64")
        return lambda s: _round_amount_count(amount, s)
    return lambda s: int(RULES[rule_id].func(ledger, s).index.nunique())


def _below_threshold_count(amount: np.ndarray, settings: Settings) -> int:
    """Rows ``below_threshold`` flags: positive amounts within the share under the limit."""
    limit = float(settings.approval_limit)
    floor = limit * (1.0 - float(settings.below_threshold_pct))
    return int(((amount >= floor) & (amount <= limit) & (amount > 0)).sum())


def _round_amount_count(amount: np.ndarray, settings: Settings) -> int:
    """Rows ``round_amount`` flags: multiples of the step (to the cent) at or above the minimum."""
    step = float(settings.round_multiple)
    if step <= 0:
        return 0
    ratio = amount / step
    hit = (amount >= max(float(settings.round_min), step)) & (np.abs(ratio - np.round(ratio)) * step < 0.005)
    return int(hit.sum())


#: A receipt of more letters/digits than the longest placeholder (无, NA, NULL …), and no
#: separators, folds to itself in capitals: it is a receipt number without folding it.
_PLAIN_RECEIPT = re.compile(rf"[A-Za-z0-9]{{{max(map(len, _NO_RECEIPT)) + 1},}}")


def _no_receipt(receipt: pd.Series) -> np.ndarray:
    """Rows without a receipt number, as :func:`receipt_numbers` sees them.

    Folding every receipt costs a Python call per distinct number (all of them, usually);
    plain alphanumeric numbers are recognised by one regex and only the rest are folded.
    """
    values = receipt.to_numpy(dtype=object)
    plain = np.fromiter((type(v) is str and _PLAIN_RECEIPT.fullmatch(v) is not None for v in values),
                        dtype=bool, count=len(values))
    missing = np.zeros(len(values), dtype=bool)
    rest = ~plain
    if rest.any():
        missing[rest] = receipt_numbers(receipt[rest]).isna().to_numpy()
    return missing
