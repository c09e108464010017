"""Turn the cells people type into numbers, dates and a header mapping (pure, vectorised).

Ledgers typed by hand mix real numbers with ``'¥1,234.50'``, ``'（120.00）'`` and full-width
digits, and real dates with ``'2026年3月5日'`` and Excel serial numbers. Each parser here takes a
whole column (a :class:`pandas.Series` of whatever the reader found) and returns the parsed
column plus a *reason* column: ``None`` where the cell parsed or was empty, else a short
bilingual sentence the audit shows in its list of unreadable rows. Nothing loops over rows in
Python on the hot path: cells are sorted by type once, then regular expressions and
``pd.to_datetime`` work on whole arrays.

Header detection lives here too because it is a pure scoring problem over cell text:
:func:`find_header` picks the row of the first 30 that looks most like an expense header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from xl_expense.schema import (
    ALIAS_LOOKUP,
    ALIAS_RANK,
    HEADER_ALIASES,
    TOTAL_MARKERS,
    normalize_header,
)

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------

#: Excel's day zero in the 1900 date system. 1899-12-30 rather than -31 because Excel counts
#: the non-existent 1900-02-29 (a Lotus 1-2-3 bug it kept); correct for every serial ≥ 61.
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Numbers in a date column are read as Excel serials only in this range (1954-10 … 2119-01):
#: smaller or larger numbers in a date column are far more likely typos or amounts.
SERIAL_MIN, SERIAL_MAX = 20000, 80000
#: Years accepted from text dates; ``'0026/3/5'`` is a typo, not the first century.
YEAR_MIN, YEAR_MAX = 1900, 2199


#: Python types of number cells (calamine gives float and int, pandas numpy scalars).
_NUMBER_TYPES = frozenset({float, int, np.float64, np.int64})


def _cell_kinds(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (number, text, empty) over an object column, by Python type.

    One pass over the cell types in plain Python (about 40 ms per million cells) is the
    price of a column that mixes floats from real cells with strings from typed ones; all
    later work is array-wide. ``bool`` is neither number nor text: Excel's TRUE in an amount
    column is an error, not 1. Exact types, as Excel readers give them.
    """
    cells = values.to_numpy(dtype=object)
    is_empty = pd.isna(cells)
    types = [type(value) for value in cells]
    is_text = np.array([t is str for t in types], dtype=bool)
    is_number = np.array([t in _NUMBER_TYPES for t in types], dtype=bool) & ~is_empty
    if is_text.any():
        at = np.flatnonzero(is_text)
        blank = at[np.array([not value.strip() for value in cells[at]], dtype=bool)]
        is_empty[blank] = True
        is_text[blank] = False
    return is_number, is_text, is_empty


def _quote(value: object) -> str:
    """Cell text as it is shown inside a reason: quoted, shortened to 40 characters."""
    text = str(value)
    return "'" + (text if len(text) <= 40 else text[:39] + "…") + "'"


def _reasons(index: pd.Index, bad: np.ndarray, shown: pd.Series, prefix: str) -> pd.Series:
    """A reason column: ``prefix + 'cell text'`` where ``bad``, else ``None``.

    Built in plain Python: bad cells are few, and a pandas string method per step cost more
    than the text itself on the small columns a batch reads by the thousand.
    """
    reasons = np.full(len(index), None, dtype=object)
    if bad.any():
        reasons[bad] = [prefix + _quote(value) for value in shown.to_numpy(dtype=object)[bad]]
    return pd.Series(reasons, index=index, dtype=object)


def on_uniques(values: pd.Series, func) -> pd.Series:
    """Apply an element-wise-in-spirit ``func`` (Series → Series) to the distinct values only.

    Ledger columns repeat themselves (200 salespeople over a million rows), and pandas'
    string methods on object arrays run a Python call per element; factorising first makes
    the work proportional to the number of distinct values. Missing values stay missing.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) > 0.7 * len(values):  # nearly all distinct: factorising only costs
        return func(values)
    mapped = func(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    result = mapped.to_numpy()
    taken = result.take(np.where(codes < 0, 0, codes)) if len(result) else np.full(len(codes), None)
    # Explicit dtype: pandas 3 would infer its own string dtype from an object array of str.
    out = pd.Series(taken, index=values.index, dtype=taken.dtype)
    if (codes < 0).any():
        out[codes < 0] = None if out.dtype == object else (False if out.dtype == bool else np.nan)
    return out


# ---------------------------------------------------------------------------------------------
# amounts
# ---------------------------------------------------------------------------------------------

AMOUNT_REASON = "金额无法识别 / amount not a number: "

# Currency words and signs people put in the cell itself. Full-width ￥ becomes ¥ under NFKC.
_CURRENCY = re.compile(r"(?i)rmb|cny|usd|gbp|eur|hkd|us\$|hk\$|[¥$£€元圆]|人民币")
# A thousands separator must separate groups of three: '1,234.50' yes, '12,5' (a European
# decimal comma) no, so that it is reported instead of silently read as 125.
_PLAIN_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?$|^\.\d+$")


def parse_amounts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse an amount column into float64 and a reason column.

    Accepts numbers, and text such as ``'¥1,234.50'``, ``'1,234.50元'``, ``'RMB 80'``,
    ``'￥１２０．５０'`` (full width), ``'(120.00)'``/``'（120.00）'`` (accounting negatives),
    ``'-5'`` and ``'5-'``. Empty cells give NaN with no reason (the caller decides whether a
    missing amount is an error); anything else unreadable gives NaN and a reason such as
    ``"金额无法识别 / amount not a number: 'abc'"``.
    """
    index = values.index
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        # Fast path: calamine/pandas already gave real numbers for the whole column.
        return values.astype("float64"), pd.Series([None] * len(index), index=index, dtype=object)

    values = values.astype(object)
    is_number, is_text, is_empty = _cell_kinds(values)
    amounts = np.full(len(values), np.nan)
    if is_number.any():
        amounts[is_number] = values[is_number].astype("float64").to_numpy()
    bad = ~(is_number | is_text | is_empty)  # dates, booleans, times in an amount column
    if is_text.any():
        parsed = on_uniques(values[is_text].astype(object), _parse_amount_text)
        amounts[is_text] = parsed.to_numpy()
        bad[is_text] = parsed.isna().to_numpy()
    return pd.Series(amounts, index=index, dtype="float64"), _reasons(index, bad, values, AMOUNT_REASON)


def _parse_amount_text(text: pd.Series) -> pd.Series:
    """Parse amount strings; NaN where the text is not an amount."""
    text = text.str.normalize("NFKC").str.replace("\u2212", "-", regex=False)  # U+2212 minus sign
    text = text.str.replace(r"\s+", "", regex=True)
    # Accounting negatives: the whole amount in parentheses.
    paren = text.str.match(r"^\(.*\)$")
    text = text.where(~paren, text.str.slice(1, -1))
    text = text.str.replace(_CURRENCY, "", regex=True)
    # A sign may sit before or after the currency sign: '-¥5', '¥-5', and '5-' from old systems.
    lead_minus = text.str.startswith("-")
    trail_minus = text.str.endswith("-") & ~lead_minus
    lead_plus = text.str.startswith("+")
    text = text.where(~(lead_minus | lead_plus), text.str.slice(1))
    text = text.where(~trail_minus, text.str.slice(0, -1))
    valid = text.str.match(_PLAIN_NUMBER)
    numbers = pd.to_numeric(text.where(valid).str.replace(",", "", regex=False), errors="coerce")
    signed = lead_minus | trail_minus
    numbers = numbers.astype("float64").where(~(paren & signed))  # '(-5)': ambiguous, reported
    return numbers.where(~(paren ^ signed), -numbers)


# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------

DATE_REASON = "日期无法识别 / date unreadable: "

_TIME = r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\.\d+)?)?"
# Year first: 2026-03-05, 2026/3/5, 2026.3.5, 2026年3月5日, optionally with a time.
_YMD = re.compile(r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<a>\d{1,2})\s*[-/.月]\s*(?P<b>\d{1,2})\s*[日号]?" + _TIME + r"$")
# Compact 20260305 (also what an 8-digit number in a date column means).
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<a>\d{2})(?P<b>\d{2})$")
# Year last: 3/5/2026 or 5.3.2026 (month or day first: ambiguous, see ``dayfirst``).
_XXY = re.compile(r"^(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4}|\d{2})" + _TIME + r"$")
# Month names: 05-MAR-2026, 5 March 2026 (UK council exports), and Mar 5, 2026.
_DMONY = re.compile(r"^(?P<b>\d{1,2})[- ]?(?P<mon>[a-z]{3,9})\.?[- ,]*(?P<y>\d{4}|\d{2})" + _TIME + r"$")
_MONDY = re.compile(r"^(?P<mon>[a-z]{3,9})\.?[- ](?P<b>\d{1,2}),?[- ](?P<y>\d{4})" + _TIME + r"$")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}


def parse_dates(values: pd.Series, dayfirst: bool = False) -> tuple[pd.Series, pd.Series]:
    """Parse a date column into datetime64[ns] and a reason column.

    Accepts date/datetime objects, Excel serial numbers (1900 system, 20000–80000),
    ``'2026/3/5'``, ``'2026-03-05'``, ``'2026.3.5'``, ``'2026年3月5日'``, ``'20260305'``,
    ``'3/5/2026'`` (month first unless ``dayfirst``; a form that can only be read one way,
    like ``'25/3/2026'``, is read that way), ``'05-MAR-2026'``, ``'Mar 5, 2026'``, each
    optionally followed by a time. Empty cells give NaT with no reason; unreadable ones NaT
    and ``"日期无法识别 / date unreadable: '…'"``.
    """
    index = values.index
    no_reasons = pd.Series([None] * len(index), index=index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.astype("datetime64[ns]"), no_reasons

    values = values.astype(object)
    is_number, is_text, is_empty = _cell_kinds(values)
    is_object = ~(is_number | is_text | is_empty)
    dates = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    bad = np.zeros(len(values), dtype=bool)

    if is_object.any():
        objects = values[is_object]
        # datetime.time and timedelta (a time-only cell) are not dates.
        converted = on_uniques(objects, _dates_from_objects)
        dates[is_object] = converted.astype("datetime64[ns]").to_numpy()
        bad[is_object] = converted.isna().to_numpy()
    if is_number.any():
        converted = _dates_from_numbers(values[is_number].astype("float64"))
        dates[is_number] = converted.to_numpy()
        bad[is_number] = converted.isna().to_numpy()
    if is_text.any():
        converted = on_uniques(values[is_text].astype(object), lambda u: _dates_from_text(u.astype(str), dayfirst))
        dates[is_text] = converted.to_numpy()
        bad[is_text] = converted.isna().to_numpy()
    return pd.Series(dates, index=index), _reasons(index, bad, values, DATE_REASON)


def _dates_from_objects(objects: pd.Series) -> pd.Series:
    """date/datetime/Timestamp cells; a time-only cell (datetime.time, timedelta) is NaT."""
    dates = pd.to_datetime(objects.where(objects.map(_is_datelike)), errors="coerce")
    return dates.astype("datetime64[ns]")


def _is_datelike(value: object) -> bool:
    import datetime as _dt  # local: only objects reach here, rarely more than one column

    return isinstance(value, (_dt.date, pd.Timestamp, np.datetime64))


def _dates_from_numbers(numbers: pd.Series) -> pd.Series:
    """Excel serials (time of day kept as the fraction) and 8-digit yyyymmdd numbers."""
    out = pd.Series(pd.NaT, index=numbers.index, dtype="datetime64[ns]")
    serial = numbers.between(SERIAL_MIN, SERIAL_MAX)
    if serial.any():
        days = numbers[serial]
        # Round to the second: Excel stores times as binary fractions of a day.
        seconds = (days * 86400).round().astype("int64")
        out[serial] = EXCEL_EPOCH + pd.to_timedelta(seconds, unit="s")
    compact = numbers.between(19000101, 21991231) & (numbers % 1 == 0)
    if compact.any():
        as_int = numbers[compact].astype("int64")
        parts = pd.DataFrame({"year": as_int // 10000, "month": as_int // 100 % 100, "day": as_int % 100})
        out[compact] = pd.to_datetime(parts, errors="coerce").astype("datetime64[ns]")
    return out


_DIGIT = re.compile(r"\d")


def _dates_from_text(text: pd.Series, dayfirst: bool) -> pd.Series:
    """Parse date strings pattern by pattern; each pattern handles a whole array at once.

    Every form read here has a digit: text without one ('合计', 'n/a', a note) is unreadable
    without running the patterns (each costs a few pandas calls even for one cell).
    """
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    # What .str.normalize("NFKC").str.strip().str.lower() does, one plain call per value.
    folded = [unicodedata.normalize("NFKC", value).strip().lower() for value in text.to_numpy(dtype=object)]
    has_digit = np.fromiter((_DIGIT.search(value) is not None for value in folded), dtype=bool, count=len(folded))
    if not has_digit.any():
        return out
    text = pd.Series(folded, index=text.index, dtype=text.dtype)[has_digit]
    todo = pd.Series(True, index=text.index)

    for pattern, order in ((_YMD, "ymd"), (_COMPACT, "ymd"), (_XXY, "xxy"), (_DMONY, "mon"), (_MONDY, "mon")):
        if not todo.any():
            break
        parts = text[todo].str.extract(pattern)
        hit = parts["y"].notna()
        if not hit.any():
            continue
        parts = parts[hit]
        year = parts["y"].astype("float64")
        if order == "mon":
            month = parts["mon"].str.slice(0, 3).map(_MONTHS).astype("float64")
            # The month word must be a month ('5 marzo' no): the full word or its first letters.
            month[~parts["mon"].map(_is_month_word)] = np.nan
            day = parts["b"].astype("float64")
        elif order == "xxy":
            first, second = parts["a"].astype("float64"), parts["b"].astype("float64")
            month, day = (second, first) if dayfirst else (first, second)
            # Only one reading is a valid date (e.g. 25/3/2026): take it whatever dayfirst says.
            swap = (month > 12) & (day <= 12)
            month, day = month.where(~swap, day), day.where(~swap, month)
        else:
            month, day = parts["a"].astype("float64"), parts["b"].astype("float64")
        # Two-digit years (05-MAR-14): 00–69 → 2000s, 70–99 → 1900s, as Excel reads them.
        two_digit = (parts["y"].str.len() == 2).to_numpy()
        year = year.where(~two_digit, year + np.where(year < 70, 2000, 1900))
        year = year.where(year.between(YEAR_MIN, YEAR_MAX))
        frame = pd.DataFrame({"year": year, "month": month, "day": day})
        for unit, col in (("hour", "H"), ("minute", "M"), ("second", "S")):
            if col in parts:
                frame[unit] = parts[col].astype("float64").fillna(0)
        valid = frame[["year", "month", "day"]].notna().all(axis=1)
        if "hour" in frame:
            valid &= frame["hour"].between(0, 23) & frame["minute"].between(0, 59) & frame["second"].between(0, 59)
        parsed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        if valid.any():
            parsed[valid] = pd.to_datetime(frame[valid], errors="coerce").astype("datetime64[ns]")
        out[parsed.index] = parsed
        todo[parts.index] = False  # matched the shape: a bad value (2026-02-30) stays unreadable

    # A serial number stored as text ('45991') is still a serial.
    if todo.any():
        digits = text[todo]
        numeric = pd.to_numeric(digits.where(digits.str.fullmatch(r"\d{5}(?:\.\d+)?")), errors="coerce")
        if numeric.notna().any():
            out[numeric.index] = _dates_from_numbers(numeric)
    return out


def _is_month_word(word: object) -> bool:
    if not isinstance(word, str):
        return False
    full = ("january", "february", "march", "april", "may", "june", "july", "august",
            "september", "october", "november", "december", "sept")
    return any(name.startswith(word) for name in full) and len(word) >= 3


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------

_WS = re.compile(r"[\s\u3000\u00a0\u200b]+")


def clean_text(values: pd.Series, factorized: tuple[np.ndarray, np.ndarray] | None = None) -> pd.Series:
    """Text cells as tidy strings (object dtype): whitespace runs folded to one space and
    stripped; numbers that are really IDs (receipt 12345 read as 12345.0) written without
    '.0'; dates as ISO text; empty → None.

    ``factorized`` is ``pd.factorize(values)`` (NA sentinel -1) when the caller has it
    already (the reader factorises each text column once for this and the totals search).
    """
    series = values.astype(object)
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if factorized is not None and kind in ("string", "empty"):
        codes, uniques = factorized
        tidy = _tidy(pd.Series(np.asarray(uniques, dtype=object), dtype=object)).to_numpy(dtype=object)
        # Code -1 (a missing cell) takes the appended None.
        return pd.Series(np.append(tidy, None)[codes], index=series.index, dtype=object)
    # A numpy array, not a Series: pandas 3 turns None into NaN on masked assignment.
    out = np.full(len(series), None, dtype=object)
    cells = series.to_numpy(dtype=object)
    if kind in ("string", "empty"):
        is_str = ~pd.isna(cells)
        is_num = others = np.zeros(len(series), dtype=bool)
    else:
        # One pass over the types in plain Python: cheaper than map + isin + notna in pandas
        # on the thousand-row columns of a batch. Exact types, as Excel readers give them.
        filled = ~pd.isna(cells)
        types = [type(value) for value in cells]
        is_str = np.array([t is str for t in types], dtype=bool) & filled
        is_num = np.array([t in _NUMBER_TYPES for t in types], dtype=bool) & filled
        others = ~(is_str | is_num) & filled
    if is_num.any():
        numbers = cells[is_num].astype("float64")
        with np.errstate(invalid="ignore"):  # inf % 1 is NaN: not whole (pandas ops stay silent too)
            whole = (numbers % 1 == 0) & (np.abs(numbers) < 2**53)
        shown = np.empty(len(numbers), dtype=object)
        shown[whole] = [str(number) for number in numbers[whole].astype("int64").tolist()]
        shown[~whole] = [repr(number) for number in numbers[~whole].tolist()]
        out[is_num] = shown
    if is_str.any():
        out[is_str] = on_uniques(series[is_str], _tidy).to_numpy(dtype=object)
    if others.any():  # dates, booleans in a text column: as Excel would show them, roughly
        out[others] = [_other_text(value) for value in cells[others]]
    return pd.Series(out, index=series.index, dtype=object)



def _tidy(text: pd.Series) -> pd.Series:
    """Strings with whitespace runs folded to one space and stripped; '' → None.

    One plain-Python pass instead of two pandas string methods per column (see :func:`_tidy_one`).
    """
    values = np.array([_tidy_one(value) for value in text.to_numpy(dtype=object)], dtype=object)
    return pd.Series(values, index=text.index, dtype=object)


def _tidy_one(value: str) -> str | None:
    """``_WS.sub(" ", value).strip() or None``.

    ``str.split()`` splits on exactly the characters ``\\s`` matches (``str.isspace``, U+3000
    and U+00A0 included) and is several times faster than the regex; only the zero-width
    space, which ``_WS`` adds, needs the regex.
    """
    if "\u200b" in value:
        return _WS.sub(" ", value).strip() or None
    return " ".join(value.split()) or None


def _other_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text.replace("T", " ")
    return str(value)


# ---------------------------------------------------------------------------------------------
# totals rows
# ---------------------------------------------------------------------------------------------

_LABEL_SPACES = re.compile(r"[\s\u3000]+")
#: Markers folded like labels ("grand total" → "grandtotal"), longest first.
_FOLDED_MARKERS = tuple(sorted({_LABEL_SPACES.sub("", normalize_header(m)) for m in TOTAL_MARKERS},
                               key=len, reverse=True))
_CJK_MARKERS = tuple(m for m in _FOLDED_MARKERS if not m.isascii())
_LATIN_MARKERS = tuple(m for m in _FOLDED_MARKERS if m.isascii())
# What may follow a marker in a label that is still only a label: '合计：', 'Total (CNY)', '小计-3月'.
_SEPARATORS = ":：-—–_/\\|()（）[]【】<>《》,，.。 =#0123456789"
#: Longest label that a loose (prefix/suffix) match may flag, e.g. '华东区三月份费用合计'.
_MAX_LABEL = 16


def fold_label(text: pd.Series) -> pd.Series:
    """Fold label text for comparison with total markers: NFKC, lower case, no spaces.

    Chinese sheets space labels out to align them ('合　计'), so spaces are dropped entirely.
    """
    folded = text.astype(str).str.normalize("NFKC").str.lower()
    folded = folded.str.replace(_LABEL_SPACES, "", regex=True)
    return folded.str.strip(":：*")


_MARKER_SEARCH = re.compile("|".join(map(re.escape, _FOLDED_MARKERS))).search
_MARKER_FINDITER = re.compile("|".join(map(re.escape, _FOLDED_MARKERS))).finditer


def _mentions_marker(value: str) -> bool:
    """Is ``value`` a short label whose folded text (:func:`fold_label`) contains a marker?"""
    if len(value) > 60:
        return False
    folded = _LABEL_SPACES.sub("", unicodedata.normalize("NFKC", value).lower())
    return _MARKER_SEARCH(folded) is not None


def _marker_mentions(values: Sequence[str]) -> np.ndarray:
    """:func:`_mentions_marker` of every value, with one normalisation and search for all.

    The values are joined with NUL: NFKC, lower-casing and the space folding act on each
    part as on the part alone (NUL neither composes with a neighbour nor is cased, spaced or
    case-ignorable), and no marker holds a NUL, so each match lies inside one value. A value
    holding a NUL itself (possible in a CSV) falls back to one call per value.
    """
    values = list(values)
    if not values:
        return np.zeros(0, dtype=bool)
    joined = "\x00".join(value if len(value) <= 60 else "" for value in values)
    if joined.count("\x00") != len(values) - 1:
        return np.fromiter((_mentions_marker(v) for v in values), dtype=bool, count=len(values))
    # ''.join(split()) is _LABEL_SPACES.sub('', …) (both drop what str.isspace() calls space,
    # U+3000 included), three times faster on a long string.
    folded = "".join(unicodedata.normalize("NFKC", joined).lower().split())
    hits = [match.start() for match in _MARKER_FINDITER(folded)]
    result = np.zeros(len(values), dtype=bool)
    if hits:
        # The value a match lies in is the number of separators before it.
        separators = np.frombuffer(folded.encode("utf-32-le", "surrogatepass"), dtype="<u4") == 0
        result[np.cumsum(separators)[hits]] = True
    return result


def label_total_match(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(exact, loose) masks over label cells.

    *exact*: the cell is only a marker ('合计', 'Total:', '合 计', 'Grand Total').
    *loose*: a short label that starts with a marker followed by a separator or, for Chinese
    markers, starts or ends with one ('合计金额', '本月合计', 'Total for March'). A loose match
    also hits vendor names ('Total UK Ltd') and the odd description, so callers use it only
    on rows without a date.
    """
    flags = [_total_flags(value) for value in text.astype(str).to_numpy(dtype=object)]
    exact = pd.Series([e for e, _ in flags], index=text.index, dtype=bool)
    loose = pd.Series([lo for _, lo in flags], index=text.index, dtype=bool)
    return exact, loose


def _total_flags(value: str) -> tuple[bool, bool]:
    """(exact, loose) for one label: :func:`label_total_match` one cell at a time.

    Plain Python on purpose: a label column has few candidates, and a pandas string method
    per marker costs more in call overhead than the matching itself.
    """
    folded = _LABEL_SPACES.sub("", unicodedata.normalize("NFKC", value).lower()).strip(":：*")
    if folded in _FOLDED_MARKERS:
        return True, False
    if len(folded) > _MAX_LABEL:
        return False, False
    raw = None
    for marker in _FOLDED_MARKERS:
        starts = folded.startswith(marker)
        if marker in _CJK_MARKERS:
            if starts or folded.endswith(marker):
                return False, True
        elif starts:
            # 'total for march' keeps its space before folding: look at the raw text for it.
            if raw is None:
                raw = unicodedata.normalize("NFKC", value).lower().strip()
            if folded[len(marker):len(marker) + 1] in _SEPARATORS or raw.startswith(marker + " "):
                return False, True
    return False, False


def is_total_row(labels: pd.DataFrame, date_missing: pd.Series | None = None,
                 sum_formula: pd.Series | None = None) -> pd.Series:
    """True for rows that are totals (合计/小计/Total/…), not expenses.

    ``labels``: the row's cells (any column; non-text cells are ignored). A row is a totals
    row when one of its text cells is exactly a marker; or a short label starting/ending with
    one and the row has no date (``date_missing``); or when ``sum_formula`` says the amount
    cell holds a vertical SUM/SUBTOTAL (the reader finds those in the sheet XML). A
    description such as '年会 total 预算说明' is not flagged: markers must start the label.
    """
    missing = (np.zeros(len(labels), dtype=bool) if date_missing is None
               else np.asarray(date_missing.to_numpy(), dtype=bool))
    result = total_label_rows([labels[column].to_numpy(dtype=object) for column in labels.columns], missing)
    if sum_formula is not None:
        result |= sum_formula.reindex(labels.index, fill_value=False).astype(bool).to_numpy()
    return pd.Series(result, index=labels.index)


#: ``infer_dtype`` kinds of columns that hold no text cell, hence no totals label: most
#: amount, date and number columns are skipped without hashing a single cell.
_NO_TEXT_KINDS = frozenset({"floating", "integer", "mixed-integer-float", "decimal", "complex", "boolean",
                            "datetime64", "datetime", "date", "timedelta64", "timedelta", "time", "period",
                            "interval", "empty"})


def text_kind(values: np.ndarray | pd.Series) -> str:
    """``pandas.api.types.infer_dtype`` of a column, skipping missing cells (one C pass)."""
    return pd.api.types.infer_dtype(values, skipna=True)


def may_hold_text(kind: str) -> bool:
    """Can a column of this :func:`text_kind` hold a text cell?"""
    return kind not in _NO_TEXT_KINDS


def total_label_rows(columns: Sequence[np.ndarray], date_missing: np.ndarray,
                     factorized: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Rows whose label cells mark a totals row (the label part of :func:`is_total_row`).

    ``columns``: object arrays of cells; ``factorized``: ``pd.factorize`` of some of them by
    position, when the caller has them already. Each column is matched on its distinct
    values only, and columns without text are skipped.
    """
    n = len(columns[0]) if len(columns) else len(date_missing)
    result = np.zeros(n, dtype=bool)
    for position, cells in enumerate(columns):
        if factorized is not None and position in factorized:
            codes, uniques = factorized[position]
        else:
            kind = text_kind(cells)
            if not may_hold_text(kind):
                continue
            if kind in ("string", "empty"):
                codes, uniques = pd.factorize(cells, use_na_sentinel=True)
            else:
                # Numbers or dates with a few labels (the 合计 in a date column): only the
                # text cells can be labels, so only they are hashed.
                is_text = np.array([type(v) is str for v in cells], dtype=bool)
                text_codes, uniques = pd.factorize(cells[is_text], use_na_sentinel=True)
                codes = np.full(len(cells), -1, dtype=np.intp)
                codes[is_text] = text_codes
        uniques = np.asarray(uniques, dtype=object)
        text_at = np.flatnonzero([type(value) is str for value in uniques])
        # Cheap pre-filter: only short labels that mention a marker go through the matching.
        # One normalisation and search over the whole column, and numpy rather than pandas
        # for the rest: on the thousand-row ledgers a batch reads by the thousand, a pandas
        # call per step and a Python call per value each cost more than the matching.
        candidates = text_at[_marker_mentions(uniques[text_at])] if text_at.size else text_at
        if not candidates.size:
            continue
        exact_u = np.zeros(len(uniques) + 1, dtype=bool)  # last slot: missing cells (code -1)
        loose_u = np.zeros(len(uniques) + 1, dtype=bool)
        for at in candidates:
            exact_u[at], loose_u[at] = _total_flags(uniques[at])
        result |= exact_u[codes] | (loose_u[codes] & date_missing)
    return result


# ---------------------------------------------------------------------------------------------
# header detection
# ---------------------------------------------------------------------------------------------

#: Canonical columns that make a header an *expense* header: at least one must be present.
KEY_COLUMNS = ("date", "amount")
_WEIGHTS = {"date": 3.0, "amount": 3.0}
_CONTAINS = sorted(((normalize_header(a), c) for c, aliases in HEADER_ALIASES.items() for a in aliases),
                   key=lambda pair: len(pair[0]), reverse=True)
#: Latin aliases must match whole words ('type' is not in 'prototype'); compiled once.
_WORD_PATTERNS = {alias: re.compile(rf"(?<![a-z]){re.escape(alias)}(?![a-z])")
                  for alias, _ in _CONTAINS if alias.isascii()}


@dataclass
class HeaderMatch:
    """The header row found in a block of rows.

    ``row``: 0-based index into the rows given to :func:`find_header`; ``n_rows`` is 2 when a
    merged group header sits above sub-headers; ``mapping`` canonical → 0-based column;
    ``labels`` the header text per column (joined 'parent/child' for two-row headers).
    """

    row: int
    mapping: dict[str, int]
    score: float
    labels: list[str] = field(default_factory=list)
    n_rows: int = 1


def _match_alias(folded: str, extra: dict[str, str]) -> tuple[str | None, bool]:
    """(canonical, exact) for one folded header text."""
    if not folded:
        return None, False
    if folded in extra:
        return extra[folded], True
    return _match_known_alias(folded)


@lru_cache(maxsize=8192)
def _match_known_alias(folded: str) -> tuple[str | None, bool]:
    """:func:`_match_alias` against the built-in aliases only.

    Cached: header detection scores every cell of the first 30 rows up to three times (as a
    row, as a group header and as its sub-header), and a batch reads the same headers and
    descriptions in file after file; the contains-scan over every alias is the costly part.
    """
    if folded in ALIAS_LOOKUP:
        return ALIAS_LOOKUP[folded], True
    if len(folded) > 40:  # a sentence (a note above the table), not a header
        return None, False
    for alias, canonical in _CONTAINS:
        # The substring test first: a word pattern can only match where the alias occurs,
        # and data cells of the first rows (names, descriptions) miss the cache file after file.
        if alias not in folded:
            continue
        pattern = _WORD_PATTERNS.get(alias)
        if pattern is None or pattern.search(folded):
            return canonical, False
    return None, False


@lru_cache(maxsize=8192)
def _fold_header(text: str) -> str:
    """:func:`normalize_header`, cached for the same reason as :func:`_match_known_alias`."""
    return normalize_header(text)


def score_header_row(cells: Sequence[object], extra_aliases: dict[str, str] | None = None
                     ) -> tuple[float, dict[str, int]]:
    """Score one row as an expense header: (score, canonical → 0-based column).

    Exact alias matches count 2 (date and amount 3), "contains" matches ('报销金额(元)')
    count 1; an exact match beats a contains match for the same column, otherwise the first
    column wins. Rows without date or amount, or with fewer than two canonical columns,
    score 0. ``extra_aliases`` (folded header → canonical) carries the user's ``--map``.
    """
    extra = {normalize_header(k): v for k, v in (extra_aliases or {}).items()}
    best: dict[str, tuple[bool, int, int]] = {}
    n_numbers = 0
    for col, cell in enumerate(cells):
        if isinstance(cell, (int, float)) and not isinstance(cell, bool):
            n_numbers += 1
            continue
        if not isinstance(cell, str):
            continue
        folded = _fold_header(cell)
        canonical, exact = _match_alias(folded, extra)
        if canonical is None:
            continue
        # Among equally exact matches the alias listed first wins: '日期' over '交易时间'.
        rank = ALIAS_RANK.get(folded, len(ALIAS_RANK)) if exact else len(ALIAS_RANK)
        previous = best.get(canonical)
        if previous is None or (exact, -rank) > (previous[0], -previous[1]):
            best[canonical] = (exact, rank, col)
    if not any(k in best for k in KEY_COLUMNS) or len(best) < 2:
        return 0.0, {}
    score = sum(_WEIGHTS.get(c, 1.0) * (2.0 if exact else 1.0) for c, (exact, _, _) in best.items())
    score -= 0.5 * n_numbers  # a data row that happens to contain 'total' is not a header
    return max(score, 0.0), {c: col for c, (_, _, col) in best.items()}


def _cell_text(cell: object) -> str:
    return cell.strip() if isinstance(cell, str) else ""


def find_header(rows: Sequence[Sequence[object]], max_rows: int = 30,
                extra_aliases: dict[str, str] | None = None) -> HeaderMatch | None:
    """The most header-like row among the first ``max_rows`` rows, or None.

    Title rows, merged banners and notes above the table score 0 and are skipped. When a row
    has blanks under which the next row holds sub-headers (a merged '金额' over '借方/贷方',
    or '费用' over '日期 | 金额'), the two rows are also scored as one header.
    """
    best: HeaderMatch | None = None
    limit = min(len(rows), max_rows)
    scores: dict[int, tuple[float, dict[str, int]]] = {}

    def row_score(i: int) -> tuple[float, dict[str, int]]:
        # Each row is scored as itself and as the row below the one before: score it once.
        if i not in scores:
            scores[i] = score_header_row(list(rows[i]), extra_aliases)
        return scores[i]

    for i in range(limit):
        cells = list(rows[i])
        score, mapping = row_score(i)
        candidate = HeaderMatch(i, mapping, score, [_cell_text(c) for c in cells], 1) if score > 0 else None
        if i + 1 < len(rows) and sum(bool(_cell_text(c)) for c in cells) >= 2:
            # A single filled cell above a header is a title banner, not a group header.
            child = list(rows[i + 1])
            # The cheap shape test first: data rows (digits, dates) are never sub-headers.
            if _is_subheader(cells, child):
                merged = _two_row_header(cells, child, extra_aliases)
                below, _ = row_score(i + 1)
                if merged is not None and merged.score >= max(score, below):
                    merged.row = i
                    candidate = merged
        if candidate is not None and (best is None or candidate.score > best.score):
            best = candidate
    return best


def _is_subheader(parent: list, child: list) -> bool:
    """Does ``child`` look like sub-headers under merged cells of ``parent``?

    It must hold only short text without digits (data rows have amounts and dates), and at
    least one of its labels must sit under a blank parent cell (the right-hand part of a
    merged group header, which calamine reports as empty).
    """
    filled = [c for c in child if _cell_text(c)]
    if not filled or any(not isinstance(c, str) for c in filled):
        return False
    if any(len(c.strip()) > 20 or any(ch.isdigit() for ch in c) for c in filled):
        return False
    under_blank = any(_cell_text(c) and not _cell_text(p) for p, c in zip(parent, child))
    return under_blank


def _two_row_header(parent: list, child: list, extra_aliases: dict[str, str] | None) -> HeaderMatch | None:
    """Score a group header over sub-headers as one header.

    Each column reads its sub-header when that names a column ('基本信息' over '报销人'),
    else the group label carried right across the merged parent cell ('金额' over
    '借方 | 贷方': the first column under it, the debit, becomes the amount).
    """
    width = max(len(parent), len(child))
    parent = parent + [""] * (width - len(parent))
    child = child + [""] * (width - len(child))
    extra = {normalize_header(k): v for k, v in (extra_aliases or {}).items()}
    labels, combined, carried = [], [], ""
    for p, c in zip(parent, child):
        p_text, c_text = _cell_text(p), _cell_text(c)
        carried = p_text or (carried if c_text else "")
        labels.append(f"{carried}/{c_text}" if c_text and carried else (c_text or carried))
        child_means, _ = _match_alias(_fold_header(c_text), extra)
        combined.append(c_text if child_means or not carried else carried)
    score, mapping = score_header_row(combined, extra_aliases)
    if score == 0:
        return None
    return HeaderMatch(0, mapping, score, labels, 2)
