"""The rule registry: one decorated function per audit rule, found by its stable id.

A rule is a pure function ``(ledger, settings) -> hits``. Adding a rule means adding one
decorated function to a ``rules_*.py`` module (and importing that module in
:mod:`xl_expense.core.audit`); the tests, the findings sheet and the docs read the registry.

Wording a rule for users
------------------------
* The **first paragraph of the function's docstring** is the rule's English description
  (what it detects and why a reviewer cares); ``doc_zh`` in the decorator is the same in
  Chinese. :meth:`Rule.describe` returns the one for a language.
* ``title_en`` / ``title_zh`` are the short names shown in tables ("Split purchase" /
  "拆分报销").
* Each **hit** carries its own message with the concrete numbers, in ``settings.lang``.

Hits
----
A rule returns a DataFrame with columns ``score`` (0–1, 1 = strongest) and ``message``,
optionally ``severity`` (to override the rule's default per hit). Row hits are indexed by the
ledger's index. Group hits (population-level, e.g. Benford) carry a ``group_key`` column (a
language-independent key used for the finding id) and may carry ``person``, ``department``,
``category``, ``vendor``, ``date`` and ``amount`` columns; their sheet and row stay empty.
:func:`row_hits` and :func:`group_hits` build both shapes.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xl_expense import schema
from xl_expense.core.settings import Settings, settings_from_dict
from xl_expense.errors import SettingsError

RuleFunc = Callable[[pd.DataFrame, Settings], pd.DataFrame]


@dataclass(frozen=True)
class Example:
    """A small ledger that the rule must (``flags=True``) or must not flag.

    ``rows`` is a list of dicts (missing canonical columns are filled by
    :func:`example_ledger`) or a zero-argument callable returning one, for examples that need
    hundreds of rows (Benford, IsolationForest). ``settings`` overrides defaults.
    ``expect_rows``, when given, lists the 0-based positions that must be the flagged ones.
    """

    rows: Sequence[Mapping[str, Any]] | Callable[[], Sequence[Mapping[str, Any]]]
    flags: bool
    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    expect_rows: tuple[int, ...] | None = None

    def ledger(self) -> pd.DataFrame:
        rows = self.rows() if callable(self.rows) else self.rows
        return example_ledger(rows)

    def make_settings(self, base: Settings | None = None) -> Settings:
        """Settings for this example: ``base`` (default: as of 2026-12-31) with the overrides."""
        return settings_from_dict(self.settings, base or Settings(as_of=dt.date(2026, 12, 31)))


def flags(rows, note: str = "", expect_rows: tuple[int, ...] | None = None, **settings) -> Example:
    """An example ledger the rule must flag."""
    return Example(rows, True, settings, note, expect_rows)


def passes(rows, note: str = "", **settings) -> Example:
    """An example ledger the rule must not flag."""
    return Example(rows, False, settings, note)


@dataclass(frozen=True)
class Rule:
    """One registered audit rule."""

    id: str
    severity: str
    func: RuleFunc
    title_zh: str
    title_en: str
    doc_zh: str
    examples: tuple[Example, ...]
    code: str

    @property
    def doc_en(self) -> str:
        """First paragraph of the function's docstring, on one line."""
        text = (self.func.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(text.split())

    def describe(self, lang: str = "zh") -> str:
        """What the rule detects, in ``lang``."""
        return self.doc_zh if lang == "zh" else self.doc_en

    def title(self, lang: str = "zh") -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def __call__(self, ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
        return self.func(ledger, settings)


#: Every rule by id, in registration (= import) order, which is also the report order.
RULES: dict[str, Rule] = {}


def rule(id: str, severity: str, *, code: str, title_zh: str, title_en: str, doc_zh: str,
         examples: Sequence[Example] = ()) -> Callable[[RuleFunc], RuleFunc]:
    """Register ``func`` as rule ``id``.

    ``code`` is the short prefix of its finding ids (``DUP-3fa9c01b2e``); both id and code
    are a contract: reviewers' notes are matched to findings through them.
    """
    if severity not in schema.SEVERITIES:
        raise ValueError(f"severity must be one of {schema.SEVERITIES}, not {severity!r}")

    def register(func: RuleFunc) -> RuleFunc:
        if id in RULES:
            raise ValueError(f"duplicate rule id: {id}")
        if any(r.code == code for r in RULES.values()):
            raise ValueError(f"duplicate rule code: {code}")
        if not (func.__doc__ or "").strip():
            raise ValueError(f"rule {id} needs a docstring: it is the message users see")
        RULES[id] = Rule(id, severity, func, title_zh, title_en, doc_zh, tuple(examples), code)
        return func

    return register


def get_rules(settings: Settings) -> list[Rule]:
    """The enabled rules, in report order. Unknown ids in ``disabled_rules`` are an error.

    A misspelt id would otherwise leave a noisy rule running while the user believes it off.
    """
    unknown = [r for r in settings.disabled_rules if r not in RULES]
    if unknown:
        raise SettingsError(f"disabled_rules names unknown rule(s): {', '.join(unknown)}",
                            f"use ids from: {', '.join(RULES)}")
    return [r for r in RULES.values() if r.id not in settings.disabled_rules]


# --------------------------------------------------------------------------- ledger and hits


def prepare_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger as rules expect it: every canonical column present, a fresh 0…n-1 index.

    Rules index their hits by position-like labels, so a reader's filtered index must not leak in.
    """
    df = ledger.reset_index(drop=True)
    missing = [c for c in schema.ALL_COLUMNS if c not in df.columns]
    if missing:
        df = df.assign(**{c: None for c in missing})
    if not pd.api.types.is_datetime64_any_dtype(df["date"]):
        df["date"] = pd.to_datetime(df["date"], errors="coerce")
    if df["amount"].dtype != "float64":
        df["amount"] = pd.to_numeric(df["amount"], errors="coerce").astype("float64")
    return df


# --------------------------------------------------------------------------- shared work

class _SharedWork:
    """Work on one prepared ledger that several rules (and the preview) would otherwise redo.

    Most rules key rows by the same few columns (person, vendor, date, amount, receipt) and
    the finding ids read the same content columns: factorising a text column of 100,000 rows
    costs milliseconds, and an audit did it some 40 times. Everything here is a pure function
    of the ledger's columns, so sharing it cannot change a finding.
    """

    def __init__(self, ledger: pd.DataFrame) -> None:
        self.ledger = ledger
        self.codes: dict[str, tuple[np.ndarray, Any]] = {}
        self.memo: dict[Any, Any] = {}


_SHARED: contextvars.ContextVar[_SharedWork | None] = contextvars.ContextVar("xl_expense_audit_shared", default=None)


@contextlib.contextmanager
def shared_work(ledger: pd.DataFrame) -> Iterator[None]:
    """Within the block, column codes and other groundwork of ``ledger`` are computed once.

    Only this very DataFrame object is served from the cache (``is``), and only while the
    block runs: ``run_audit`` and ``threshold_preview`` wrap their prepared ledger, which
    nobody else holds, so it cannot change under the cache.
    """
    current = _SHARED.get()
    if current is not None and current.ledger is ledger:
        yield
        return
    token = _SHARED.set(_SharedWork(ledger))
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared_for(ledger: pd.DataFrame) -> _SharedWork | None:
    work = _SHARED.get()
    return work if work is not None and work.ledger is ledger else None


def memo(ledger: pd.DataFrame, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per shared ledger and ``key`` (see :func:`shared_work`); uncached outside.

    Callers must treat the result as read-only: the next rule gets the same object.
    """
    work = _shared_for(ledger)
    if work is None:
        return compute()
    if key not in work.memo:
        work.memo[key] = compute()
    return work.memo[key]


def column_factorized(ledger: pd.DataFrame, col: str) -> tuple[np.ndarray, Any]:
    """``pd.factorize(ledger[col])``: int64 codes (-1 = missing) and the distinct values."""
    work = _shared_for(ledger)
    if work is not None and col in work.codes:
        return work.codes[col]
    codes, uniques = pd.factorize(ledger[col], use_na_sentinel=True)
    out = (codes.astype("int64", copy=False), uniques)
    if work is not None:
        work.codes[col] = out
    return out


def column_codes(ledger: pd.DataFrame, col: str) -> tuple[np.ndarray, int]:
    """Codes of ``ledger[col]`` (-1 = missing) and the number of distinct values."""
    codes, uniques = column_factorized(ledger, col)
    return codes, len(uniques)


def row_hits(index: pd.Index, score, message, severity=None) -> pd.DataFrame:
    """Hits on ledger rows: ``score`` clipped to [0, 1], one message per row."""
    # One constructor call: adding the columns one by one cost three times as much, and
    # every rule of every audit builds its hits here.
    columns = {"score": np.clip(np.asarray(score, dtype="float64") * np.ones(len(index)), 0.0, 1.0),
               "message": _as_text(message, index)}
    if severity is not None:
        columns["severity"] = _as_text(severity, index)
    return pd.DataFrame(columns, index=index)


def group_hits(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Hits on groups (no single source row); each record needs group_key, score, message."""
    cols = ["group_key", "score", "message", "severity", "person", "department", "vendor",
            "category", "date", "amount"]
    out = pd.DataFrame(list(records), columns=cols)
    out["score"] = out["score"].astype("float64").clip(0.0, 1.0)
    return out


def no_hits() -> pd.DataFrame:
    """Row hits with no rows (what most rules find in a small ledger)."""
    # Built once, handed out as shallow copies: pandas copies on write, and a shallow copy
    # has its own columns, so a caller that adds one leaves the template as it was.
    global _NO_HITS
    if _NO_HITS is None:
        _NO_HITS = row_hits(pd.Index([], dtype="int64"), [], [])
    return _NO_HITS.copy(deep=False)


_NO_HITS: pd.DataFrame | None = None


def _as_text(values, index: pd.Index) -> pd.Series:
    if isinstance(values, pd.Series):
        return pd.Series(values.to_numpy(dtype=object), index=index, dtype=object)
    if isinstance(values, str):
        return pd.Series([values] * len(index), index=index, dtype=object)
    return pd.Series(list(values), index=index, dtype=object)


# --------------------------------------------------------------------------- formatting

_SYMBOLS = {"CNY": "¥", "RMB": "¥", "JPY": "¥", "USD": "$", "HKD": "HK$", "EUR": "€", "GBP": "£"}


def money(values, currency: str = "CNY") -> pd.Series:
    """``¥9,800.00`` for each amount (formatting is per hit, after detection is done)."""
    symbol = _SYMBOLS.get(currency.upper(), currency.upper() + " ")
    s = pd.Series(values, dtype="float64") if not isinstance(values, pd.Series) else values.astype("float64")
    texts = [_money_text(x, symbol) for x in s.to_numpy().tolist()]
    return pd.Series(texts, index=s.index, dtype=object)


def _money_text(x: float, symbol: str) -> str:
    return "" if math.isnan(x) else f"{'-' if x < 0 else ''}{symbol}{abs(x):,.2f}"


def money1(value: float, currency: str = "CNY") -> str:
    """One amount as ``¥5,000.00``."""
    return _money_text(float(value), _SYMBOLS.get(currency.upper(), currency.upper() + " "))


def day_text(dates: pd.Series) -> pd.Series:
    """ISO day (``2026-03-05``) per date; ``?`` for NaT."""
    values = dates.to_numpy()
    if values.dtype.kind == "M":
        # numpy's ISO day is strftime's %Y-%m-%d for every year a datetime64[ns] can hold
        # (1677–2262: four digits), without a Python call per row.
        texts = np.datetime_as_string(values.astype("datetime64[D]")).astype(object)
        texts[np.isnat(values)] = "?"
        return pd.Series(texts, index=dates.index, dtype=object)
    return dates.dt.strftime("%Y-%m-%d").astype(object).fillna("?")


def label(values: pd.Series, missing: str = "—") -> pd.Series:
    """Text for a name column in a message (missing names shown as a dash)."""
    texts = values.to_numpy(dtype=object, copy=True)
    texts[pd.isna(texts)] = missing
    if all(type(t) is str for t in texts):  # names are text: nothing to convert
        return pd.Series(texts, index=values.index, dtype=object)
    return values.astype(object).where(values.notna(), missing).astype(str).astype(object)


def row_ref(sheet: pd.Series, row: pd.Series, lang: str) -> pd.Series:
    """Where a row lives, as a reviewer would look it up: ``Sheet1 第 12 行`` / ``Sheet1 row 12``."""
    sheet_t = label(sheet, "?")
    if row.dtype == "int64":
        row_t = pd.Series(row.to_numpy().astype(str).astype(object), index=row.index, dtype=object)
    else:
        row_t = row.astype("Int64").astype(str).astype(object)
    if lang == "zh":
        return join_text(sheet_t, " 第 ", row_t, " 行")
    return join_text(sheet_t, " row ", row_t)


def join_text(*parts) -> pd.Series:
    """Concatenate str and Series parts element-wise (all Series share one index).

    Done on object arrays, as pandas itself does for text (``Series + str`` adds the arrays
    with numpy and only on a TypeError, i.e. a missing value, masks it out): the pandas
    wrapper around each addition costs more than the addition on a few hundred hits.
    """
    series = [p for p in parts if isinstance(p, pd.Series)]
    index = series[0].index
    if all(p.index is index or p.index.equals(index) for p in series[1:]):
        out = np.full(len(index), "", dtype=object)
        try:
            for p in parts:
                if isinstance(p, pd.Series):
                    out = out + (p.to_numpy() if p.dtype == object else p.astype(object).to_numpy())
                else:
                    out = out + str(p)
        except TypeError:
            pass  # a missing value among the parts: pandas' own rules below
        else:
            return pd.Series(out, index=index, dtype=object)
    out = pd.Series([""] * len(index), index=index, dtype=object)
    for p in parts:
        out = out + (p.astype(object) if isinstance(p, pd.Series) else str(p))
    return out


def plain_number(x: float) -> str:
    """1000.0 → '1,000'; 2.5 → '2.5' (thresholds in messages)."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


# --------------------------------------------------------------------------- examples


def example_ledger(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A canonical ledger from a few dicts, as the reader would produce it.

    Missing columns are None, ``sheet`` defaults to ``"Sheet1"`` and ``row`` to the Excel row
    under a one-line header (2, 3, …).
    """
    records = []
    for i, r in enumerate(rows):
        rec = {c: None for c in schema.ALL_COLUMNS}
        rec["sheet"] = "Sheet1"
        rec["row"] = i + 2
        rec.update(r)
        records.append(rec)
    df = pd.DataFrame(records, columns=list(schema.ALL_COLUMNS))
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df["amount"] = pd.to_numeric(df["amount"]).astype("float64")
    df["row"] = df["row"].astype("int64")
    for col in schema.TEXT_COLUMNS + ("sheet",):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


# --------------------------------------------------------------------------- vectorised helpers

#: What people type in a receipt column when there is no receipt (after folding).
_NO_RECEIPT = frozenset({"", "无", "没有", "暂无", "缺", "缺票", "无票", "0", "00", "NA", "NONE", "NIL", "NULL"})
#: Separators people type inside receipt numbers; dropped before comparing.
_RECEIPT_SEPARATORS = str.maketrans("", "", " \t\u3000-_/\\.,，。·—–－／＿．")


def _fold_receipt(value: object) -> str | None:
    if not isinstance(value, str):
        value = None if value is None or value != value else str(value)
        if value is None:
            return None
    folded = value.translate(_RECEIPT_SEPARATORS).upper()
    return None if folded in _NO_RECEIPT else folded


def receipt_numbers(receipt: pd.Series) -> pd.Series:
    """Receipt numbers folded for comparison; placeholders like 无/-/N/A → None.

    Case, spaces and separators do not matter: ``INV-001``, ``inv 001`` and ``INV001`` are
    the same receipt typed three ways. Folding runs once per distinct value.
    """
    codes, uniques = pd.factorize(receipt, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    folded = np.empty(len(uniques) + 1, dtype=object)  # last: missing (code -1) stays None
    if _all_plain(uniques):
        folded[:-1] = _fold_plain(uniques)
    else:
        plain = np.fromiter((isinstance(u, str) and u.isascii() and u.isalnum() for u in uniques), dtype=bool,
                            count=len(uniques))
        folded[:-1][plain] = _fold_plain(uniques[plain])
        folded[:-1][~plain] = [_fold_receipt(u) for u in uniques[~plain]]
    return pd.Series(folded[codes], index=receipt.index, dtype=object)


def ledger_receipt_numbers(ledger: pd.DataFrame, rows=None) -> pd.Series:
    """:func:`receipt_numbers` of ``ledger["receipt"]`` (only at ``rows``, a mask, if given).

    Inside :func:`shared_work` the whole column is folded once for every rule that asks;
    outside it only the rows asked for are folded (a fraction of a million, for some rules).
    """
    if _shared_for(ledger) is None:
        return receipt_numbers(ledger["receipt"] if rows is None else ledger.loc[rows, "receipt"])
    folded = memo(ledger, "receipt_numbers", lambda: receipt_numbers(ledger["receipt"]))
    return folded if rows is None else folded[rows]


def _all_plain(values: np.ndarray) -> bool:
    """Every value a string of ASCII letters and digits, or empty (checked on one joined string)."""
    if not len(values) or pd.api.types.infer_dtype(values, skipna=False) != "string":
        return False
    joined = "".join(values)
    return joined.isascii() and (joined.isalnum() or not joined)


#: A placeholder of ASCII letters and digits, or nothing, on a line of its own (see ``_NO_RECEIPT``).
_PLAIN_PLACEHOLDER = re.compile("^(?:" + "|".join(sorted(
    (p for p in _NO_RECEIPT if p.isascii() and (p.isalnum() or not p)), key=lambda p: (-len(p), p))) + ")$", re.MULTILINE)


def _fold_plain(values: np.ndarray) -> np.ndarray:
    """:func:`_fold_receipt` of strings of ASCII letters and digits only (most receipt numbers).

    They have no separators to drop and ASCII upper-casing keeps their length, so one
    ``upper`` over all of them joined by newlines folds them at once (a million receipt
    numbers in milliseconds instead of a Python call each); placeholders such as ``NA`` or
    ``0`` are looked for in the joined text first, and usually there are none.
    """
    if not len(values):
        return values
    joined = "\n".join(values).upper()
    upper = np.array(joined.split("\n"), dtype=object)
    if _PLAIN_PLACEHOLDER.search(joined):
        upper[pd.Index(upper).isin(_NO_RECEIPT)] = None
    return upper


def key_codes(df: pd.DataFrame, cols: Sequence[str], na_is_value: bool = False,
              rows: np.ndarray | None = None) -> np.ndarray:
    """One int64 code per row for the combination of ``cols``; -1 where any of them is missing.

    With ``na_is_value`` a missing value is just another value (no -1). Codes number the
    distinct combinations in order of first appearance (as ``pd.factorize`` would), so they
    are the same whichever way the columns were factorised. ``rows`` (a boolean mask or
    positions) restricts the result to those rows, numbered among themselves exactly as
    ``key_codes(df[rows], cols)`` would, but reusing the whole ledger's column codes.
    Factorising each column and combining codes is several times faster than a multi-column
    groupby on a million rows.
    """
    key, missing = _combined(df, cols)
    if rows is not None:
        key, missing = key[rows], missing[rows]
    key = pd.factorize(key)[0].astype("int64")
    if not na_is_value:
        key[missing] = -1
    return key


def _combined(df: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """An injective int64 code of each row's values of ``cols`` (missing is a value) and
    where any of them is missing."""
    key = np.zeros(len(df), dtype="int64")
    missing = np.zeros(len(df), dtype=bool)
    span = 1
    for col in cols:
        codes, n_unique = column_codes(df, col)
        missing |= codes < 0
        if span * (n_unique + 1) >= 2 ** 62:  # keep the combined code within int64
            key = pd.factorize(key)[0].astype("int64")
            span = len(df) + 1
        key = key * (n_unique + 1) + codes + 1
        span *= n_unique + 1
    return key, missing


def day_numbers(dates: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 (int64); NaT → a large negative sentinel."""
    days = dates.astype("datetime64[s]").to_numpy().astype("datetime64[D]").astype("int64")
    days = np.where(dates.isna().to_numpy(), np.iinfo("int64").min // 4, days)
    return days
