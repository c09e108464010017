"""The audit: run every registered rule over a canonical ledger and collect findings.

``run_audit(ledger, settings)`` returns one line per finding with the columns of
:data:`xl_expense.schema.FINDING_COLUMNS`, sorted by severity, rule (registry order), sheet
(ledger order) and row, so the same ledger and settings always give the same table, ids
included. Rules live in the ``rules_*`` modules, :mod:`.benford` and :mod:`.anomaly`; they are
imported here explicitly, which fixes the registry (and report) order.
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, MutableMapping

import numpy as np
import pandas as pd

from xl_expense import schema
from xl_expense.core.audit import rules_duplicates, rules_amounts, rules_dates, rules_fields  # noqa: F401
from xl_expense.core.audit import benford as _benford_rules, anomaly as _anomaly_rules  # noqa: F401
from xl_expense.core.audit.benford import BenfordResult, benford_analysis
from xl_expense.core.audit.helping import HelpDesk, offering_help
from xl_expense.core.audit.ids import finding_ids, group_finding_id, ledger_content_texts, occurrences, row_finding_ids
from xl_expense.core.audit.preview import threshold_preview
from xl_expense.core.audit.registry import RULES, Rule, get_rules, prepare_ledger, shared_work
from xl_expense.core.settings import Settings

__all__ = ["run_audit", "audit_and_preview", "run_rule", "benford_analysis", "BenfordResult", "threshold_preview", "RULES", "Rule",
           "get_rules", "empty_findings", "prepare_ledger"]

_ROW_COLUMNS = ("date", "person", "department", "vendor", "category", "amount", "sheet", "row")


def empty_findings() -> pd.DataFrame:
    """A findings table with no lines and the right dtypes."""
    # Built once: typing the columns costs ~2 ms, and most rules find nothing in a small ledger.
    global _EMPTY
    if _EMPTY is None:
        _EMPTY = _typed(pd.DataFrame({c: [] for c in schema.FINDING_COLUMNS}))
    return _EMPTY.copy()


_EMPTY: pd.DataFrame | None = None


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.loc[:, list(schema.FINDING_COLUMNS)]
    for col in ("finding_id", "rule", "severity", "message", "sheet", "person", "department", "vendor", "category"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    df["row"] = pd.array(df["row"], dtype="Int64")
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df["amount"] = df["amount"].astype("float64")
    df["score"] = df["score"].astype("float64").round(4)
    return df


def run_rule(rule: Rule, ledger: pd.DataFrame, settings: Settings, occurrence: np.ndarray | None = None
             ) -> pd.DataFrame:
    """Findings of one rule on a prepared ledger (see :func:`prepare_ledger`)."""
    hits = rule.func(ledger, settings)
    if hits.empty:
        return empty_findings()
    if "group_key" in hits.columns:
        # A rule may return both: group hits carry a group_key, row hits leave it empty.
        is_group = hits["group_key"].notna().to_numpy()
        grouped = _group_findings(rule, hits[is_group])
        if is_group.all():
            return grouped
        row_part = run_rule_rows(rule, ledger, hits[~is_group].drop(columns="group_key"), occurrence)
        return pd.concat([row_part, grouped], ignore_index=True) if len(grouped) else row_part
    return run_rule_rows(rule, ledger, hits, occurrence)


def run_rule_rows(rule: Rule, ledger: pd.DataFrame, hits: pd.DataFrame, occurrence: np.ndarray | None
                  ) -> pd.DataFrame:
    """Findings for hits indexed by ledger rows."""
    rows = ledger.loc[hits.index]
    if occurrence is None:
        occurrence = occurrences(ledger)
    out = pd.DataFrame({c: rows[c].to_numpy() for c in _ROW_COLUMNS}, index=hits.index)
    out["finding_id"] = row_finding_ids(rule.id, rule.code, rows, occurrence[hits.index.to_numpy()])
    out["rule"] = rule.id
    out["severity"] = hits["severity"].to_numpy() if "severity" in hits.columns else rule.severity
    out["score"] = hits["score"].to_numpy()
    out["message"] = hits["message"].to_numpy()
    return _typed(out.reset_index(drop=True))


def _group_findings(rule: Rule, hits: pd.DataFrame) -> pd.DataFrame:
    out = hits.copy()
    out["finding_id"] = [group_finding_id(rule.id, rule.code, k) for k in hits["group_key"]]
    out["rule"] = rule.id
    out["severity"] = out["severity"].where(out["severity"].notna(), rule.severity)
    out["sheet"] = None
    out["row"] = pd.NA
    return _typed(out.reset_index(drop=True))


def audit_and_preview(ledger: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`run_audit` and :func:`threshold_preview` over one prepared ledger.

    The preview's counters need the same groundwork as the rules (column codes, receipt
    numbers, split windows): computed once for both, it costs the preview a fraction. On a
    big ledger it is computed while the anomaly rule is still running in its own thread.
    """
    df = prepare_ledger(ledger)
    preview: list[pd.DataFrame] = []
    with shared_work(df):
        findings = _run_audit(df, settings, None, while_waiting=lambda: preview.append(
            threshold_preview(df, settings, prepared=True)))
    return findings, preview[0]


def run_audit(ledger: pd.DataFrame, settings: Settings | None = None,
              timings: MutableMapping[str, float] | None = None, *, prepared: bool = False) -> pd.DataFrame:
    """Run every enabled rule over ``ledger`` and return the findings (``schema.FINDING_COLUMNS``).

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger (``schema.ALL_COLUMNS``), as the readers produce it.
    settings : Settings, optional
        Thresholds, language and switched-off rules; defaults when omitted.
    timings : dict, optional
        If given, receives the seconds each rule took, by rule id (for the run record and
        benchmarks).

    Returns
    -------
    DataFrame
        One line per finding, sorted by severity, rule, sheet and row; row findings copy the
        ledger row's date, person, department, vendor, category, amount, sheet and row; group
        findings (Benford) have no sheet and row.
    """
    return _run_audit(ledger if prepared else prepare_ledger(ledger), settings or Settings(), timings)


def _run_audit(df: pd.DataFrame, settings: Settings, timings: MutableMapping[str, float] | None,
               while_waiting: Callable[[], None] | None = None) -> pd.DataFrame:
    """:func:`run_audit` on a prepared ledger.

    On a big ledger the anomaly model is mostly numpy that releases the GIL: it runs in a
    second thread while the other rules run here, reading the ledger only. The other rules'
    findings are put together, and ``while_waiting`` is called, before this thread turns to
    it: the forest takes longer than all the other rules together, and this thread then
    scores blocks of it too (see :mod:`.helping`).
    """
    rules = get_rules(settings)
    if df.empty:
        if while_waiting is not None:
            while_waiting()
        return empty_findings()
    frames: list[pd.DataFrame] = []
    with shared_work(df), ThreadPoolExecutor(max_workers=1, thread_name_prefix="xl-expense-rule") as pool:
        # The thread runs in a copy of this context, so it shares the groundwork (column
        # codes) with the rules here: both read the same ledger, and every entry is a pure
        # function of it, so whichever thread computes one first saves the other the work.
        desk = HelpDesk()
        aside = {rule.id: pool.submit(offering_help(contextvars.copy_context(), desk).run, _timed, rule, df, settings)
                 for rule in rules if rule.id in _ASIDE_RULES and len(df) >= ASIDE_MIN_ROWS}
        occurrence = occurrences(df)
        seconds: dict[str, float] = {}
        here = [rule for rule in rules if rule.id not in aside]
        frames += _findings_of(here, [_timed(rule, df, settings) for rule in here], df, occurrence, seconds)
        if while_waiting is not None:
            while_waiting()
        later = [rule for rule in rules if rule.id in aside]
        for rule in later:
            desk.help_until(aside[rule.id])  # take part in its work instead of only waiting
        frames += _findings_of(later, [aside[rule.id].result() for rule in later], df, occurrence, seconds)
    if timings is not None:
        timings.update((rule.id, seconds[rule.id]) for rule in rules)  # in registry order
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_findings()
    # The sort below has no ties (the finding id is its last key), so the order of the
    # frames does not matter: this is the order run_rule's frames would sort to.
    return _sorted(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], df)


def _findings_of(rules: list[Rule], results: list[tuple[pd.DataFrame, float]], df: pd.DataFrame,
                 occurrence: np.ndarray, timings: dict[str, float]) -> list[pd.DataFrame]:
    """The findings of ``rules`` from their hits and timings (:func:`_timed`): one table of
    row findings for them all, then their group findings. Each rule's seconds go to ``timings``."""
    row_parts, group_frames = [], []
    for rule, (hits, seconds) in zip(rules, results):
        timings[rule.id] = seconds
        if hits.empty:
            continue
        if "group_key" in hits.columns:  # as in run_rule: group hits carry a group_key
            is_group = hits["group_key"].notna().to_numpy()
            if is_group.any():
                group_frames.append(_group_findings(rule, hits[is_group]))
            hits = hits[~is_group].drop(columns="group_key")
        if len(hits):
            row_parts.append((rule, hits))
    return ([_row_findings(row_parts, df, occurrence)] if row_parts else []) + group_frames


#: Rules run in a second thread on big ledgers (see :func:`run_audit`).
_ASIDE_RULES = frozenset({"isolation_forest"})
#: Below this many rows a thread costs more than it saves.
ASIDE_MIN_ROWS = 20_000


def _timed(rule: Rule, df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    hits = rule.func(df, settings)
    return hits, time.perf_counter() - start


def _hit_severity(rule: Rule, hits: pd.DataFrame) -> np.ndarray:
    """Each hit's own severity where it has one, else the rule's (a rule may mix row and
    group hits, e.g. ``missing_field``: its row hits then carry no severity of their own)."""
    if "severity" not in hits.columns:
        return np.full(len(hits), rule.severity, dtype=object)
    own = hits["severity"].to_numpy(dtype=object)
    return np.where(pd.isna(own), rule.severity, own)


def _row_findings(parts: list[tuple[Rule, pd.DataFrame]], ledger: pd.DataFrame, occurrence: np.ndarray
                  ) -> pd.DataFrame:
    """:func:`run_rule_rows` for the row hits of every rule at once, in rule order.

    One table, one pass over the ids and one typing of the columns instead of one per rule:
    on a small ledger the per-rule pandas overhead cost more than the rules.
    """
    positions = np.concatenate([hits.index.to_numpy(dtype="int64") for _, hits in parts])
    sizes = [len(hits) for _, hits in parts]
    rule_ids = np.repeat(np.array([r.id for r, _ in parts], dtype=object), sizes)
    codes = np.repeat(np.array([r.code for r, _ in parts], dtype=object), sizes)
    columns = {c: ledger[c].to_numpy()[positions] for c in _ROW_COLUMNS}
    texts = ledger_content_texts(ledger, positions)
    columns["finding_id"] = finding_ids(rule_ids, codes, texts, occurrence[positions])
    columns["rule"] = rule_ids
    columns["severity"] = np.concatenate([_hit_severity(rule, hits) for rule, hits in parts])
    columns["score"] = np.concatenate([hits["score"].to_numpy(dtype="float64") for _, hits in parts])
    columns["message"] = np.concatenate([hits["message"].to_numpy(dtype=object) for _, hits in parts])
    return _typed_columns(columns)


#: Finding columns that hold text (or None), as :func:`_typed` leaves them.
_TEXT_FINDING_COLUMNS = ("finding_id", "rule", "severity", "message", "sheet", "person", "department", "vendor",
                         "category")


def _typed_columns(columns: dict[str, Any]) -> pd.DataFrame:
    """``_typed(pd.DataFrame(columns))``, built as one table of typed columns.

    Typing a frame column by column copies it once per column; here each column is typed as
    an array first. Equal to :func:`_typed` (tested), which stays for the other tables.
    """
    date = columns["date"]
    if not (isinstance(date, np.ndarray) and date.dtype == "datetime64[ns]"):
        return _typed(pd.DataFrame(columns))
    data: dict[str, Any] = {}
    for col in schema.FINDING_COLUMNS:
        values = columns[col]
        if col in _TEXT_FINDING_COLUMNS:
            values = np.array(values, dtype=object)  # a copy: the ledger's arrays stay as they are
            values[pd.isna(values)] = None
            data[col] = pd.Series(values, dtype=object, copy=False)
        elif col == "row":
            data[col] = pd.array(values, dtype="Int64")
        elif col == "date":
            data[col] = values
        elif col == "amount":
            data[col] = np.asarray(values, dtype="float64")
        else:  # score
            data[col] = np.asarray(values, dtype="float64").round(4)
    return pd.DataFrame(data)


def _sorted(findings: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Severity, then rule in registry order, sheet in ledger order, row; group findings last."""
    severity_rank = findings["severity"].map({s: i for i, s in enumerate(schema.SEVERITIES)})
    rule_rank = findings["rule"].map({r: i for i, r in enumerate(RULES)})
    sheets = {s: i for i, s in enumerate(pd.unique(ledger["sheet"].dropna()))}
    sheet_rank = findings["sheet"].map(sheets).fillna(len(sheets))
    row = findings["row"].astype("float64").fillna(np.inf)
    order = _sort_order(severity_rank, rule_rank, sheet_rank, row, findings["finding_id"])
    return findings.iloc[order].reset_index(drop=True)


def _sort_order(*keys: pd.Series) -> np.ndarray:
    """Positions in the order of ``DataFrame(keys).sort_values(all, kind="stable")``.

    The numeric keys sort as floats (missing last, as pandas puts them); the last key, the
    finding ids, by their rank among the distinct ids. One ``np.lexsort`` instead of pandas'
    multi-column sort, which costs milliseconds on the few hundred findings of a small ledger.
    Ids that are not all text are sorted by pandas itself.
    """
    *numeric, ids = keys
    id_values = ids.to_numpy(dtype=object)
    if not all(type(v) is str for v in id_values):
        frame = pd.DataFrame({str(i): k.to_numpy() for i, k in enumerate(keys)})
        return frame.sort_values(list(frame.columns), kind="stable").index.to_numpy()
    id_rank = np.unique(id_values, return_inverse=True)[1].ravel()
    columns = [k.to_numpy(dtype="float64", na_value=np.nan) for k in numeric]
    return np.lexsort([id_rank, *reversed(columns)])
