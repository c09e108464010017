"""Import profiles: declarative TOML mappings from an export's columns to the canonical ledger.

Payment apps, banks, purchase-card programmes and expense systems each export their own
table: a preamble above the header (Alipay, WeChat Pay, bank statements), GBK text, a 收/支
column instead of signed amounts, debit and credit columns, a footer or subtotal lines below.
A *profile* describes one such format in one TOML file in this folder; adding a format is
adding a file (or passing the path of a TOML file anywhere a profile name is accepted).

What a profile says (see ``alipay.toml`` for a commented example):

* ``[detect] headers`` — header texts that must all appear in one row. The header row is
  *searched for* (first ``header_search_rows`` rows), never a fixed number of lines skipped,
  so a longer preamble next year still reads.
* ``[columns]`` — canonical column → header text, or a list of aliases (first one present
  wins) for formats whose column names drift between years (Toronto p-card files).
* ``[sign]`` — how the sign of a row is known, and what happens to money coming *in*:

  ``mode = "signed"``       one amount column; ``spend_sign`` says whether spending is
                            positive (card statements) or negative (bank statements);
  ``mode = "direction"``    an unsigned amount plus a 收/支 column (``expense``/``income``
                            values; anything else, e.g. 不计收支 or ``/``, is *neutral*);
  ``mode = "debit_credit"`` separate 支出 (``debit``) and 收入 (``credit``) columns.

  The canonical ledger holds spending positive and refunds negative. A row whose
  ``refund_column`` contains one of ``refund_contains`` (``退款``) is a refund: kept, negative.
  Other income rows follow ``income_rows`` and neutral rows ``neutral_rows``: ``"exclude"``
  (the default: salary, red packets, transfers and top-ups are not expenses) or ``"refund"``
  (kept, negative: credits on a purchase card). Excluded rows are never dropped silently:
  they are listed in :attr:`ProfileLedger.excluded` with the reason.
* ``[[exclude]]`` — rows to leave out by a column's value (a credit-card repayment is not an
  expense), with the reason shown for them.
* ``[clean]`` — ``null_values`` (``/``, ``-`` mean empty), ``footer_markers`` (a line starting
  with one ends the table), ``subtotal_when_empty`` (canonical columns that are all empty only
  on subtotal lines), ``amount_regex`` (the number to read in ``131.77(已退款89.84)``) and
  ``amount_less_regex`` (a number in the same cell to subtract: the part refunded).

Every data row ends up in exactly one place: ``df`` (an expense), ``rejected`` (unreadable
amount or date, with the reason), ``totals_rows`` (合计 / subtotal lines), ``excluded`` (read,
but not an expense, by the profile's sign and exclude rules) or ``blank_rows``. Cells are parsed
with :mod:`xl_expense.core.normalize`, so ``¥28.16`` and ``2025/12/03 14:06:51`` read as in any
ledger. Text files are decoded with the profile's ``encodings`` (default UTF-8 with or without
BOM, then GB18030 — a superset of GBK — then Windows-1252), the first that decodes the whole
file; ``.csv.gz`` files are read as a stream.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice, zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
import python_calamine as calamine

from xl_expense.core.normalize import (
    clean_text,
    is_total_row,
    on_uniques,
    parse_amounts,
    parse_dates,
)
from xl_expense.errors import (
    LedgerNotFound,
    SettingsError,
    UnreadableWorkbook,
    XlExpenseError,
)
from xl_expense.io.ledger_reader import AMOUNT_MISSING, ColumnRef, Ledger
from xl_expense.io.safety import check_package
from xl_expense.schema import (
    ALL_COLUMNS,
    LEDGER_COLUMNS,
    TEXT_COLUMNS,
    normalize_header,
)

PROFILE_DIR = Path(__file__).resolve().parent
#: UTF-8 (a BOM is skipped when present), GB18030 (superset of GBK/GB2312: Chinese Windows,
#: bank and payment exports), Windows-1252 (Western Excel's "CSV"). Tried in order; the first
#: that decodes the *whole* file wins, since a stray byte may sit far below the header.
DEFAULT_ENCODINGS = ("utf-8-sig", "gb18030", "cp1252")
#: Delimiters tried when a profile does not name one: the header decides which is right.
DELIMITERS = (",", "\t", ";", "|")
HEADER_SEARCH_ROWS = 80
#: Bytes of a text file looked at to detect its profile.
DETECT_BYTES = 256 * 1024
CHUNK_ROWS = 100_000
_BLOCK = 1 << 20

FORMATS = ("csv", "xls", "xlsx")
SIGN_MODES = ("signed", "direction", "debit_credit")
POLICIES = ("exclude", "refund")
NEUTRAL_POLICIES = ("exclude", "refund", "expense")

INCOME_REASON = "收入，非费用 / money in, not an expense"
NEUTRAL_REASON = "不计收支 / neither income nor expense (transfer, top-up …)"
FOOTER_REASON = "表尾说明 / footer below the table"

_EXPENSE, _REFUND, _INCOME, _NEUTRAL = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignRule:
    """How a row's sign is known; see the module docstring."""

    mode: str = "signed"
    spend_sign: str = "+"
    column: tuple[str, ...] = ()
    expense: tuple[str, ...] = ()
    income: tuple[str, ...] = ()
    debit: tuple[str, ...] = ()
    credit: tuple[str, ...] = ()
    income_rows: str = "exclude"
    neutral_rows: str = "exclude"
    refund_column: tuple[str, ...] = ()
    refund_contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExcludeRule:
    """Leave out rows whose ``column`` equals one of ``equals`` or contains one of ``contains``."""

    column: tuple[str, ...]
    reason: str
    equals: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """One export format, as loaded from its TOML file."""

    name: str
    title: str
    required: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    formats: tuple[str, ...] = FORMATS
    encodings: tuple[str, ...] = DEFAULT_ENCODINGS
    delimiter: str | None = None
    dayfirst: bool = False
    header_search_rows: int = HEADER_SEARCH_ROWS
    sign: SignRule = SignRule()
    exclude: tuple[ExcludeRule, ...] = ()
    null_values: tuple[str, ...] = ()
    footer_markers: tuple[str, ...] = ()
    subtotal_when_empty: tuple[str, ...] = ()
    amount_regex: str | None = None
    amount_less_regex: str | None = None
    source: str = ""


@dataclass
class ProfileLedger(Ledger):
    """A :class:`~xl_expense.io.ledger_reader.Ledger` read through a profile.

    ``excluded`` (sheet, row, reason) lists the rows the profile leaves out on purpose
    (income, neutral transfers, repayments, footer lines): read fine, not expenses.
    """

    profile: str = ""
    encoding: str | None = None
    excluded: pd.DataFrame = field(default_factory=lambda: _row_frame([], [], []))


_TOP_KEYS = {"name", "title", "formats", "encodings", "delimiter", "dayfirst", "header_search_rows",
             "detect", "columns", "sign", "exclude", "clean"}
_SIGN_KEYS = {"mode", "spend_sign", "column", "expense", "income", "debit", "credit", "income_rows",
              "neutral_rows", "refund_column", "refund_contains"}
_CLEAN_KEYS = {"null_values", "footer_markers", "subtotal_when_empty", "amount_regex", "amount_less_regex"}


def _strings(value: object, where: str, source: str) -> tuple[str, ...]:
    """A TOML string or list of strings as a tuple (one alias or several)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SettingsError(f"profile {source}: '{where}' must be a string or a list of strings",
                        "fix the TOML file")


def _check_keys(table: dict, allowed: set[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SettingsError(f"profile {source}: unknown key(s) in {where}: {', '.join(unknown)}",
                            f"use only: {', '.join(sorted(allowed))}")


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile TOML file (raises SettingsError saying what is wrong)."""
    path = Path(path)
    source = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"profile {source} cannot be read ({exc})", "check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"profile {source} is not valid TOML ({exc})", "fix the TOML syntax") from None
    _check_keys(data, _TOP_KEYS, "the top level", source)
    for key in ("name", "detect", "columns"):
        if key not in data:
            raise SettingsError(f"profile {source} has no '{key}'", "see alipay.toml for the layout")
    columns = {k: _strings(v, f"columns.{k}", source) for k, v in data["columns"].items()}
    unknown = sorted(set(columns) - set(LEDGER_COLUMNS))
    if unknown:
        raise SettingsError(f"profile {source}: unknown canonical column(s) {', '.join(unknown)}",
                            f"use one of: {', '.join(LEDGER_COLUMNS)}")
    sign = _load_sign(data.get("sign", {}), source)
    if "amount" not in columns and sign.mode != "debit_credit":
        raise SettingsError(f"profile {source} maps no amount column", "add columns.amount")
    clean = data.get("clean", {})
    _check_keys(clean, _CLEAN_KEYS, "[clean]", source)
    formats = _strings(data.get("formats", list(FORMATS)), "formats", source)
    if set(formats) - set(FORMATS):
        raise SettingsError(f"profile {source}: formats must be among {', '.join(FORMATS)}", "fix formats")
    subtotal = _strings(clean.get("subtotal_when_empty", []), "clean.subtotal_when_empty", source)
    if set(subtotal) - set(columns):
        raise SettingsError(f"profile {source}: subtotal_when_empty names unmapped columns",
                            "list canonical columns that [columns] maps")
    regex, less_regex = clean.get("amount_regex"), clean.get("amount_less_regex")
    for key, pattern in (("amount_regex", regex), ("amount_less_regex", less_regex)):
        if pattern is None:
            continue
        try:
            if re.compile(pattern).groups != 1:
                raise re.error("needs exactly one group")
        except re.error as exc:
            raise SettingsError(f"profile {source}: {key} is invalid ({exc})",
                                "write one capturing group around the number") from None
    return Profile(
        name=str(data["name"]),
        title=str(data.get("title", data["name"])),
        required=_strings(data["detect"].get("headers", []), "detect.headers", source),
        columns=columns,
        formats=formats,
        encodings=_strings(data.get("encodings", list(DEFAULT_ENCODINGS)), "encodings", source),
        delimiter=data.get("delimiter"),
        dayfirst=bool(data.get("dayfirst", False)),
        header_search_rows=int(data.get("header_search_rows", HEADER_SEARCH_ROWS)),
        sign=sign,
        exclude=tuple(_load_exclude(rule, source) for rule in data.get("exclude", [])),
        null_values=_strings(clean.get("null_values", []), "clean.null_values", source),
        footer_markers=_strings(clean.get("footer_markers", []), "clean.footer_markers", source),
        subtotal_when_empty=subtotal,
        amount_regex=regex,
        amount_less_regex=less_regex,
        source=str(path),
    )


def _load_sign(table: dict, source: str) -> SignRule:
    _check_keys(table, _SIGN_KEYS, "[sign]", source)
    lists = {k: _strings(table[k], f"sign.{k}", source)
             for k in ("column", "expense", "income", "debit", "credit", "refund_column", "refund_contains")
             if k in table}
    rule = SignRule(mode=table.get("mode", "signed"), spend_sign=table.get("spend_sign", "+"),
                    income_rows=table.get("income_rows", "exclude"),
                    neutral_rows=table.get("neutral_rows", "exclude"), **lists)
    problems = []
    if rule.mode not in SIGN_MODES:
        problems.append(f"sign.mode must be one of {', '.join(SIGN_MODES)}")
    if rule.spend_sign not in ("+", "-"):
        problems.append("sign.spend_sign must be '+' or '-'")
    if rule.income_rows not in POLICIES:
        problems.append(f"sign.income_rows must be one of {', '.join(POLICIES)}")
    if rule.neutral_rows not in NEUTRAL_POLICIES:
        problems.append(f"sign.neutral_rows must be one of {', '.join(NEUTRAL_POLICIES)}")
    if rule.mode == "direction" and not (rule.column and rule.expense):
        problems.append("direction mode needs sign.column and sign.expense")
    if rule.mode == "debit_credit" and not (rule.debit and rule.credit):
        problems.append("debit_credit mode needs sign.debit and sign.credit")
    if problems:
        raise SettingsError(f"profile {source}: {'; '.join(problems)}", "fix the [sign] table")
    return rule


def _load_exclude(rule: dict, source: str) -> ExcludeRule:
    _check_keys(rule, {"column", "equals", "contains", "reason"}, "[[exclude]]", source)
    if "column" not in rule or not ("equals" in rule or "contains" in rule):
        raise SettingsError(f"profile {source}: each [[exclude]] needs column and equals or contains",
                            "fix the [[exclude]] table")
    return ExcludeRule(column=_strings(rule["column"], "exclude.column", source),
                       reason=str(rule.get("reason", "excluded by the import profile")),
                       equals=_strings(rule.get("equals", []), "exclude.equals", source),
                       contains=_strings(rule.get("contains", []), "exclude.contains", source))


@lru_cache(maxsize=1)
def _shipped() -> tuple[Profile, ...]:
    return tuple(load_profile(p) for p in sorted(PROFILE_DIR.glob("*.toml")))


def list_profiles() -> list[Profile]:
    """The profiles shipped in this folder, sorted by name."""
    return sorted(_shipped(), key=lambda p: p.name)


def get_profile(name: str | Path | Profile) -> Profile:
    """A shipped profile by name, or a profile TOML file by path."""
    if isinstance(name, Profile):
        return name
    text = str(name)
    if text.endswith(".toml"):
        return load_profile(text)
    for profile in _shipped():
        if profile.name == text:
            return profile
    names = ", ".join(p.name for p in list_profiles())
    raise SettingsError(f"no import profile named '{text}'", f"use one of: {names}, or a .toml file path")


# ---------------------------------------------------------------------------------------------
# sources: the rows of a text file or of each sheet of a workbook
# ---------------------------------------------------------------------------------------------

def _file_kind(path: Path) -> str:
    """'xlsx' (zip package), 'xls' (OLE) or 'csv' (text, possibly gzipped), by content."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PK"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "csv"


def _open_binary(path: Path):
    with open(path, "rb") as handle:
        gz = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _text_name(path: Path) -> str:
    """The sheet name given to a text file: its name without .csv/.gz, ≤ 31 characters (Excel)."""
    name = path.name
    for suffix in (".gz", ".csv", ".txt", ".tsv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name[:31]


def _pick_encoding(path: Path, encodings: Sequence[str]) -> str:
    """The first encoding that decodes the whole file (streamed in blocks)."""
    for encoding in encodings:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with _open_binary(path) as stream:
                while block := stream.read(_BLOCK):
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise UnreadableWorkbook(f"the file could not be read ({exc})",
                                     "check the file is complete (re-download or re-export it)") from None
    raise UnreadableWorkbook(f"the text is not in any of the encodings {', '.join(encodings)}",
                             "save it again as 'CSV UTF-8' from Excel")


def _head_text(path: Path) -> str:
    """The first bytes of a text file, decoded for detection (a cut character is dropped)."""
    try:
        with _open_binary(path) as stream:
            raw = stream.read(DETECT_BYTES)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnreadableWorkbook(f"the file could not be read ({exc})",
                                 "check the file is complete (re-download or re-export it)") from None
    for encoding in DEFAULT_ENCODINGS:
        try:
            return codecs.getincrementaldecoder(encoding)().decode(raw, final=False)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


@dataclass
class _Sheet:
    """Rows of one table source; ``rows()`` yields them again from the top."""

    name: str
    head: list[list]
    kind: str
    path: Path
    delimiter: str | None = None
    values: list[list] | None = None   # whole sheet (workbooks)
    data: calamine.CalamineSheet | None = None  # the parsed sheet, to read it whole later


def _text_heads(path: Path, delimiter: str | None) -> list[_Sheet]:
    text = _head_text(path)
    if "\n" in text:
        text = text[: text.rfind("\n") + 1]  # drop the cut last line
    sheets = []
    for delim in ((delimiter,) if delimiter else DELIMITERS):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        head = list(islice(reader, HEADER_SEARCH_ROWS * 2))
        sheets.append(_Sheet(_text_name(path), head, "csv", path, delim))
    return sheets


def _is_calamine_failure(exc: BaseException) -> bool:
    """calamine raises its own errors, decoding errors and, on malformed files, Rust panics
    (``PanicException`` derives from BaseException and has no importable name)."""
    return isinstance(exc, (calamine.CalamineError, ValueError, OSError, UnicodeError, KeyError,
                            IndexError)) or type(exc).__name__ == "PanicException"


def open_book(path: str | Path) -> calamine.CalamineWorkbook | None:
    """``path`` opened once for detection and for whichever reader reads it next; None for text.

    Opened with its Excel Tables where they load (the spine's reader looks for a Table
    ledger first), else without, as :func:`xl_expense.io.ledger_reader.load_ledger` opens it.
    Raises the errors detection gives for a workbook calamine cannot open (password,
    damaged). The caller closes the book.
    """
    path = Path(path)
    try:
        check_package(path)
        if _file_kind(path) == "csv":
            return None
        try:
            return calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
        except BaseException as exc:
            if not _reader_failure(exc):
                raise
        return _open_plain(path)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))


def _reader_failure(exc: BaseException) -> bool:
    """The spine reader's test for a failed open with tables (it then opens without them)."""
    from xl_expense.io.ledger_reader import _is_calamine_failure as reader_failure

    return reader_failure(exc)


def _open_plain(path: Path) -> calamine.CalamineWorkbook:
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError:
        raise UnreadableWorkbook("the workbook is password-protected",
                                 "remove the password in Excel and save again") from None
    except BaseException as exc:  # Rust panics too: see _is_calamine_failure
        if not _is_calamine_failure(exc):
            raise
        raise UnreadableWorkbook(f"the file could not be read as a workbook ({exc})",
                                 "re-export it from Excel (File ▸ Save As ▸ Excel Workbook)") from None


def _workbook_sheets(path: Path, nrows: int | None, book: calamine.CalamineWorkbook | None = None,
                     parsed: dict[str, calamine.CalamineSheet] | None = None) -> list[_Sheet]:
    """Each worksheet's rows from A1 (``skip_empty_area=False``: list index + 1 = Excel row).

    ``book``: ``path`` already open (:func:`open_book`); ``parsed``: its sheets parsed so far,
    by name, shared with the reader that reads the file next (calamine parses a whole sheet
    on every ``get_sheet_by_name``).
    """
    own = book is None
    if own:
        check_package(path)
        book = _open_plain(path)
    kind = _file_kind(path)
    sheets = []
    try:
        for meta in book.sheets_metadata:
            if meta.typ != calamine.SheetTypeEnum.WorkSheet:
                continue
            try:
                data = parsed[meta.name] if parsed is not None and meta.name in parsed \
                    else book.get_sheet_by_name(meta.name)
                if parsed is not None:
                    parsed[meta.name] = data
                rows = data.to_python(skip_empty_area=False, nrows=nrows)
            except BaseException as exc:  # Rust panics too: see _is_calamine_failure
                if not _is_calamine_failure(exc):
                    raise
                continue  # a broken extra sheet must not hide the table on another
            sheets.append(_Sheet(meta.name, rows[:HEADER_SEARCH_ROWS * 2], kind, path,
                                 values=rows if nrows is None else None, data=data))
    finally:
        if own:
            book.close()
    return sheets


# ---------------------------------------------------------------------------------------------
# header matching and detection
# ---------------------------------------------------------------------------------------------

def _fold(cell: object) -> str:
    return _fold_text(cell) if isinstance(cell, str) else normalize_header(cell if cell is not None else "")


@lru_cache(maxsize=8192)
def _fold_text(text: str) -> str:
    """:func:`normalize_header` of a text cell, cached: detection folds every cell of the first
    80 rows of each sheet, where departments, categories and names repeat row after row."""
    return normalize_header(text)


@dataclass
class _Header:
    """Where a profile's header sits in a sheet and which column holds what."""

    profile: Profile
    sheet: _Sheet
    index: int                 # 0-based row of the header in the sheet
    labels: list[str]
    positions: dict[str, int]  # folded header text → first column holding it
    score: float

    def column(self, aliases: Sequence[str]) -> int | None:
        """The column of the first alias present, or None."""
        found = self.columns(aliases)
        return found[0] if found else None

    def columns(self, aliases: Sequence[str]) -> list[int]:
        """Columns of every alias present, in the aliases' order."""
        found = []
        for alias in aliases:
            pos = self.positions.get(normalize_header(alias))
            if pos is not None and pos not in found:
                found.append(pos)
        return found


def _row_positions(cells: Sequence[object]) -> dict[str, int]:
    """Folded header text → first column holding it, for one row."""
    positions: dict[str, int] = {}
    for i, cell in enumerate(cells):
        folded = _fold(cell)
        if folded and folded not in positions:
            positions[folded] = i
    return positions


@lru_cache(maxsize=256)
def _folded_aliases(aliases: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalize_header(a) for a in aliases)


def _match_row(profile: Profile, cells: Sequence[object],
               positions: dict[str, int] | None = None) -> tuple[float, dict[str, int]] | None:
    """Score one row as ``profile``'s header: None unless every required header is present.

    ``positions``: :func:`_row_positions` of ``cells`` when the caller has it (detection
    scores the same rows against every profile).
    """
    if positions is None:
        positions = _row_positions(cells)
    if not all(h in positions for h in _folded_aliases(tuple(profile.required))):
        return None
    mapped = sum(any(a in positions for a in _folded_aliases(tuple(aliases)))
                 for aliases in profile.columns.values())
    return len(profile.required) + 0.25 * mapped, positions


def _find_header(profile: Profile, sheet: _Sheet, folded_rows: list[dict[str, int]] | None = None
                 ) -> _Header | None:
    for index, row in enumerate(sheet.head[: profile.header_search_rows]):
        match = _match_row(profile, row, folded_rows[index] if folded_rows is not None else None)
        if match is not None:
            score, positions = match
            return _Header(profile, sheet, index, [_fold(c) for c in row], positions, score)
    return None


def _candidates(path: Path, kind: str, book: calamine.CalamineWorkbook | None = None,
                parsed: dict[str, calamine.CalamineSheet] | None = None) -> list[_Sheet]:
    """The first rows of every table source: each sheet, or the text split by each delimiter."""
    if kind == "csv":
        return _text_heads(path, None)
    return _workbook_sheets(path, HEADER_SEARCH_ROWS * 2, book, parsed)


def _best_header(path: Path, profiles: Sequence[Profile], book: calamine.CalamineWorkbook | None = None,
                 parsed: dict[str, calamine.CalamineSheet] | None = None) -> _Header | None:
    """The best-scoring header of any profile in any sheet (first one wins a tie)."""
    kind = _file_kind(path)
    best: _Header | None = None
    sheets = _candidates(path, kind, book, parsed)
    # Each row is folded once, then scored against every profile.
    limit = max((p.header_search_rows for p in profiles), default=0)
    folded = [[_row_positions(row) for row in sheet.head[:limit]] for sheet in sheets]
    for profile in profiles:
        if kind not in profile.formats:
            continue
        for sheet, folded_rows in zip(sheets, folded):
            if sheet.kind == "csv" and profile.delimiter and sheet.delimiter != profile.delimiter:
                continue
            header = _find_header(profile, sheet, folded_rows)
            if header is not None and (best is None or header.score > best.score):
                best = header
    return best


def detect_profile(path: str | Path) -> Profile:
    """The shipped profile whose headers match the file best.

    Every profile's required headers are looked for in the first rows of the file (each sheet
    of a workbook); the profile with all of them and the most mapped columns wins. Raises
    :class:`~xl_expense.errors.LedgerNotFound` when none matches.
    """
    path = Path(path)
    try:
        check_package(path)
        header = _best_header(path, list_profiles())
        if header is None:
            raise _no_profile()
        return header.profile
    except XlExpenseError as exc:
        raise exc.with_path(str(path))


def _no_profile() -> LedgerNotFound:
    names = ", ".join(p.name for p in list_profiles())
    return LedgerNotFound("no import profile matches this file's headers",
                          f"name one with --profile ({names}), or describe the format in a "
                          "profile .toml file (see xl_expense/io/profiles/alipay.toml)")


def read_detected(path: str | Path, *, book: calamine.CalamineWorkbook | None = None,
                  sheets: dict[str, calamine.CalamineSheet] | None = None) -> ProfileLedger | None:
    """``path`` read through the shipped profile that matches it best; None when none matches.

    The same as :func:`detect_profile` followed by :func:`read_with_profile`, with the header
    found once. ``book`` is ``path`` opened with :func:`open_book` (left open) and ``sheets``
    its parsed sheets by name, shared with the reader the caller falls back to (see
    :func:`~xl_expense.io.ledger_reader.load_ledger`), so a workbook is opened and each of its
    sheets parsed once whoever reads it.
    """
    path = Path(path)
    try:
        if book is None:  # open_book checked it
            check_package(path)
        header = _best_header(path, list_profiles(), book, sheets)
        return None if header is None else _read(path, header)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def read_with_profile(path: str | Path, profile: Profile | str | None = None, *,
                      max_rows: int | None = None) -> ProfileLedger:
    """Read ``path`` through ``profile`` (a Profile, a name, a .toml path, or None to detect it).

    ``max_rows`` stops after that many rows below the header (a preview, or a sample of a
    half-million-row export); the ledger's notes say so.

    Returns a :class:`ProfileLedger`: the canonical ``df`` of :mod:`xl_expense.schema` (spending
    positive, refunds negative, ``row`` = the row Excel shows), ``rejected`` rows with reasons,
    ``totals_rows``, and ``excluded`` rows the profile leaves out on purpose.
    """
    path = Path(path)
    try:
        check_package(path)
        if profile is None:
            header = _best_header(path, list_profiles())
            if header is None:
                raise _no_profile()
        else:
            chosen = get_profile(profile)
            if _file_kind(path) not in chosen.formats:
                raise LedgerNotFound(f"profile '{chosen.name}' reads {', '.join(chosen.formats)} files, "
                                     f"not {_file_kind(path)}", "choose another --profile")
            header = _best_header(path, [chosen])
            if header is None:
                wanted = ", ".join(chosen.required)
                raise LedgerNotFound(
                    f"profile '{chosen.name}': no row with the headers {wanted} in the first "
                    f"{chosen.header_search_rows} rows", "check the file, or leave out --profile to detect it")
        return _read(path, header, max_rows)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))


def _rows_after_header(header: _Header) -> tuple[Iterator[list], str | None]:
    """All rows below the header, re-read from the top, and the text encoding used."""
    sheet = header.sheet
    skip = header.index + 1
    if sheet.kind != "csv":
        values = sheet.values
        if values is None and sheet.data is not None:  # the sheet detection parsed, read whole
            values = sheet.data.to_python(skip_empty_area=False)
        if values is None:
            values = next(s for s in _workbook_sheets(sheet.path, None) if s.name == sheet.name).values
        return iter(values[skip:]), None
    encoding = _pick_encoding(sheet.path, header.profile.encodings)

    def rows() -> Iterator[list]:
        with _open_binary(sheet.path) as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            yield from islice(csv.reader(text, delimiter=sheet.delimiter), skip, None)

    return rows(), encoding


@dataclass
class _Plan:
    """Column positions resolved from the header: what the chunks read.

    ``columns`` lists, per canonical column, every alias column present in header order:
    a consolidated file whose months used different names has the value in one or the other
    (Birmingham's BILLING GROSS AMT is empty where a month had only ORIGINAL GROSS AMT), so
    each row takes the first alias cell that is filled.
    """

    columns: dict[str, list[int]]
    direction: int | None
    debit: list[int]
    credit: list[int]
    refund: int | None
    exclude: list[tuple[int, ExcludeRule]]


def _plan(header: _Header) -> _Plan:
    profile = header.profile
    columns = {c: found for c, aliases in profile.columns.items() if (found := header.columns(aliases))}
    sign = profile.sign
    direction = header.column(sign.column) if sign.mode == "direction" else None
    debit = header.columns(sign.debit) if sign.mode == "debit_credit" else []
    credit = header.columns(sign.credit) if sign.mode == "debit_credit" else []
    missing = []
    if sign.mode == "direction" and direction is None:
        missing.append(" / ".join(sign.column))
    if sign.mode == "debit_credit" and not (debit and credit):
        missing.append(" / ".join(sign.debit + sign.credit))
    if sign.mode != "debit_credit" and "amount" not in columns:
        missing.append(" / ".join(profile.columns["amount"]))
    if missing:
        raise LedgerNotFound(f"profile '{profile.name}': column(s) {'; '.join(missing)} not in the header row",
                             "check the export, or choose another --profile")
    if sign.mode == "debit_credit" and "amount" not in columns:
        columns["amount"] = debit
    rules = [(pos, rule) for rule in profile.exclude if (pos := header.column(rule.column)) is not None]
    return _Plan(columns, direction, debit, credit, header.column(sign.refund_column), rules)


@dataclass
class _Parsed:
    """One chunk, parsed: per-row arrays concatenated at the end."""

    date: np.ndarray
    amount: np.ndarray
    reason: np.ndarray       # None, or why the row cannot be read
    status: np.ndarray       # 'good', 'blank', 'total', 'excluded', 'rejected'
    text: dict[str, np.ndarray]


class _Block:
    """A chunk of rows and the same cells column by column (transposed once)."""

    def __init__(self, rows: list[list]):
        self.rows = rows
        self.n = len(rows)
        # zip_longest: CSV rows can be ragged; calamine rows are all as wide as the sheet.
        self.cols = [np.array(col, dtype=object) for col in zip_longest(*rows, fillvalue="")]

    def column(self, pos: int | None) -> pd.Series:
        if pos is None:
            return pd.Series([None] * self.n, dtype=object)
        if pos >= len(self.cols):
            return pd.Series([""] * self.n, dtype=object)
        return pd.Series(self.cols[pos], dtype=object)

    def first_filled(self, positions: Sequence[int], nulls: frozenset[str]) -> pd.Series:
        """Per row, the first of ``positions`` whose cell is filled (placeholders count as empty)."""
        series = _nullify(self.column(positions[0]), nulls)
        for pos in positions[1:]:
            empty = _empty(series)
            if not empty.any():
                break
            other = _nullify(self.column(pos), nulls)
            series = series.where(~empty, other)
        return series


def _empty(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=object)
    empty = np.equal(values, "") | np.equal(values, None)
    is_str = np.array([isinstance(v, str) for v in values], dtype=bool) & ~empty
    if is_str.any():
        empty[is_str] = pd.Series(values[is_str], dtype=object).str.strip().eq("").to_numpy()
    return empty


def _nullify(series: pd.Series, null_values: frozenset[str]) -> pd.Series:
    """Cells holding only a placeholder ('/', '-') are empty."""
    if not null_values:
        return series
    stripped = on_uniques(series, _strip_text).to_numpy(dtype=object)
    values = series.to_numpy(dtype=object, copy=True)
    values[np.isin(stripped, list(null_values))] = ""
    return pd.Series(values, dtype=object)


def _strip_text(values: pd.Series) -> pd.Series:
    return pd.Series([v.strip() if isinstance(v, str) else None for v in values], index=values.index, dtype=object)


def _strip_strings(values: pd.Series) -> pd.Series:
    return pd.Series([v.strip() if isinstance(v, str) else v for v in values], index=values.index, dtype=object)


_SPACE_RUN = re.compile(r"\s+")


def _fold_spaces(values: pd.Series) -> pd.Series:
    return pd.Series([_SPACE_RUN.sub(" ", v).strip() if isinstance(v, str) else v for v in values],
                     index=values.index, dtype=object)


def _tidy_date_text(series: pd.Series) -> pd.Series:
    """Fold runs of spaces/tabs inside date text ('2025/12/03  14:06:51', '2023-05-02 \t')
    so the shared date parser sees the shapes it knows (once per distinct value)."""
    return on_uniques(series, _fold_spaces)


def _extract_amount(series: pd.Series, regex: str | None) -> pd.Series:
    if regex is None:
        return series
    is_text = series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return series
    values = series.to_numpy(dtype=object, copy=True)
    texts = series[is_text].astype(str)
    found = texts.str.extract(regex, expand=False)
    values[is_text] = np.where(found.notna(), found.to_numpy(dtype=object), texts.to_numpy(dtype=object))
    return pd.Series(values, dtype=object)


def _amounts(block: _Block, positions: Sequence[int], profile: Profile, nulls: frozenset[str]
             ) -> tuple[pd.Series, pd.Series]:
    """Parse an amount column; with ``amount_less_regex`` the number it finds in the same cell
    is subtracted (JD's '131.77(已退款89.84)' spent 41.93)."""
    # Stripped first so a reason quotes '十二元', not the export's padding '十二元    \t'.
    cells = on_uniques(block.first_filled(positions, nulls), _strip_strings)
    amount, reason = parse_amounts(_extract_amount(cells, profile.amount_regex))
    if profile.amount_less_regex is not None:
        less_cells = cells.map(lambda v: v if isinstance(v, str) else None)
        found = less_cells.str.extract(profile.amount_less_regex, expand=False)
        less, _ = parse_amounts(found.astype(object).where(found.notna(), None))
        amount = amount - less.fillna(0.0)
    return amount, reason


def _fold_values(values: pd.Series) -> pd.Series:
    return pd.Series([normalize_header(v) if isinstance(v, str) else "" for v in values],
                     index=values.index, dtype=object)


def _folded_text(series: pd.Series) -> np.ndarray:
    """Cells folded like headers (NFKC, case, spaces) for comparing with the profile's words."""
    return on_uniques(clean_text(series), _fold_values).to_numpy(dtype=object)


def _contains_any(values: np.ndarray, words: Sequence[str]) -> np.ndarray:
    folded = [normalize_header(w) for w in words]
    return np.array([isinstance(v, str) and any(w in v for w in folded) for v in values], dtype=bool)


def _classify(block: _Block, plan: _Plan, profile: Profile, nulls: frozenset[str]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amount as the ledger holds it, kind per row, reason or None) for one chunk."""
    sign = profile.sign
    n = block.n
    if sign.mode == "debit_credit":
        debit, debit_reason = _amounts(block, plan.debit, profile, nulls)
        credit, credit_reason = _amounts(block, plan.credit, profile, nulls)
        reason = debit_reason.where(debit_reason.notna(), credit_reason).to_numpy(dtype=object)
        both_missing = (debit.isna() & credit.isna()).to_numpy()
        net = (debit.fillna(0) - credit.fillna(0)).to_numpy(copy=True)
        net[both_missing] = np.nan
        kind = np.where(net < 0, _INCOME, _EXPENSE)
        value = np.abs(net)
    else:
        raw, amount_reason = _amounts(block, plan.columns["amount"], profile, nulls)
        reason = amount_reason.to_numpy(dtype=object)
        value = raw.to_numpy()
        if sign.mode == "signed":
            spend = value >= 0 if sign.spend_sign == "+" else value <= 0
            kind = np.where(spend | np.isnan(value), _EXPENSE, _INCOME)
            value = np.abs(value)
        else:
            direction = _folded_text(block.column(plan.direction))
            kind = np.full(n, _NEUTRAL)
            kind[np.isin(direction, [normalize_header(v) for v in sign.income])] = _INCOME
            kind[np.isin(direction, [normalize_header(v) for v in sign.expense])] = _EXPENSE
            value = np.where(kind == _EXPENSE, value, np.abs(value))
    if plan.refund is not None and sign.refund_contains:
        refund = _contains_any(_folded_text(block.column(plan.refund)), sign.refund_contains)
        kind = np.where(refund & (kind != _EXPENSE), _REFUND, kind)
    if sign.income_rows == "refund":
        kind = np.where(kind == _INCOME, _REFUND, kind)
    if sign.neutral_rows == "refund":
        kind = np.where(kind == _NEUTRAL, _REFUND, kind)
    elif sign.neutral_rows == "expense":
        kind = np.where(kind == _NEUTRAL, _EXPENSE, kind)
    amount = np.where(kind == _REFUND, -value, value)
    return amount, kind, reason


def _blank_rows(block: _Block) -> np.ndarray:
    """Rows with no cell filled. Cheap per-column test; cells of spaces are rechecked later."""
    if not block.cols:
        return np.ones(block.n, dtype=bool)
    return np.logical_and.reduce([np.equal(c, "") | np.equal(c, None) for c in block.cols])


def _row_is_blank(row: list) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def _first_text(row: list) -> str:
    for value in row:
        if isinstance(value, str) and value.strip():
            return normalize_header(value)
        if value is not None and not isinstance(value, str):
            return ""
    return ""


class _Reader:
    """Parses the rows below a header chunk by chunk and keeps the footer state across chunks."""

    def __init__(self, header: _Header):
        self.header = header
        self.profile = header.profile
        self.plan = _plan(header)
        self.nulls = frozenset(v.strip() for v in self.profile.null_values)
        self.footers = tuple(normalize_header(m) for m in self.profile.footer_markers)
        self.in_footer = False
        # Cells looked at for 合计/Total labels: the mapped columns and the first column.
        self.label_columns = sorted({0} | {p for ps in self.plan.columns.values() for p in ps})

    def parse(self, rows: list[list]) -> _Parsed:
        block = _Block(rows)
        profile, plan, n = self.profile, self.plan, block.n
        amount, kind, reason = _classify(block, plan, profile, self.nulls)
        if "date" in plan.columns:
            date_cells = _tidy_date_text(block.first_filled(plan.columns["date"], self.nulls))
            date, date_reason = parse_dates(date_cells, dayfirst=profile.dayfirst)
        else:
            date = pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
            date_reason = pd.Series([None] * n, dtype=object)
        date_missing = date.isna().to_numpy() & date_reason.isna().to_numpy()
        text = {c: clean_text(block.first_filled(ps, self.nulls)).to_numpy(dtype=object)
                for c, ps in plan.columns.items() if c in TEXT_COLUMNS}

        blank = _blank_rows(block)
        suspect = np.flatnonzero(~blank & np.isnan(amount) & pd.isna(reason))
        if suspect.size:  # rows of spaces only look filled to the cheap test
            blank[suspect] = [_row_is_blank(rows[i]) for i in suspect]
        status = np.full(n, "good", dtype=object)
        status[blank] = "blank"
        status[self._footer(rows, blank, np.isnan(amount))] = "footer"
        labels = pd.DataFrame({i: block.column(i) for i in self.label_columns})
        # A label in the date column ('人民币合计') makes the date unreadable, not missing: for
        # the totals test any row without a date counts as dateless.
        no_date = pd.Series(date.isna().to_numpy())
        totals = is_total_row(labels, no_date).to_numpy() | self._subtotals(text, date_missing, amount)
        status[(status == "good") & totals] = "total"

        reasons = np.array(reason, dtype=object)
        missing = np.isnan(amount) & pd.isna(reasons)
        reasons[missing] = AMOUNT_MISSING
        bad_date = date_reason.notna().to_numpy()
        both = bad_date & pd.notna(reasons)
        reasons[both] = [f"{a}; {d}" for a, d in zip(reasons[both], date_reason[both])]
        only_date = bad_date & pd.isna(reasons)
        reasons[only_date] = date_reason.to_numpy(dtype=object)[only_date]
        status[(status == "good") & pd.notna(reasons)] = "rejected"

        excluded = self._excluded_reasons(block, kind)
        hit = (status == "good") & pd.notna(excluded)
        status[hit] = "excluded"
        reasons[hit] = excluded[hit]
        footer = status == "footer"
        status[footer] = "excluded"
        reasons[footer] = FOOTER_REASON
        return _Parsed(date.to_numpy(dtype="datetime64[ns]"), amount, reasons, status, text)

    def _footer(self, rows: list[list], blank: np.ndarray, no_amount: np.ndarray) -> np.ndarray:
        """Rows from the first footer line on (a note such as 以上数据仅供参考), for the rest of the file."""
        out = np.zeros(len(rows), dtype=bool)
        if not self.footers:
            return out
        start = 0 if self.in_footer else None
        if start is None:
            for i in np.flatnonzero(no_amount & ~blank):
                if _first_text(rows[i]).startswith(self.footers):
                    start = int(i)
                    self.in_footer = True
                    break
        if start is not None:
            out[start:] = ~blank[start:]
        return out

    def _subtotals(self, text: dict[str, np.ndarray], date_missing: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Lines with the profile's identifying columns all empty (Toronto's per-card subtotals)."""
        columns = self.profile.subtotal_when_empty
        if not columns:
            return np.zeros(len(amount), dtype=bool)
        empty = np.ones(len(amount), dtype=bool)
        for canonical in columns:
            if canonical == "date":
                empty &= date_missing
            elif canonical == "amount":
                empty &= np.isnan(amount)
            elif canonical in text:
                empty &= pd.isna(text[canonical])
        return empty

    def _excluded_reasons(self, block: _Block, kind: np.ndarray) -> np.ndarray:
        reasons = np.full(block.n, None, dtype=object)
        for pos, rule in self.plan.exclude:
            values = _folded_text(block.column(pos))
            hit = np.isin(values, [normalize_header(v) for v in rule.equals])
            if rule.contains:
                hit |= _contains_any(values, rule.contains)
            reasons[hit & pd.isna(reasons)] = rule.reason
        sign = self.profile.sign
        if sign.income_rows == "exclude":
            reasons[(kind == _INCOME) & pd.isna(reasons)] = INCOME_REASON
        if sign.neutral_rows == "exclude":
            reasons[(kind == _NEUTRAL) & pd.isna(reasons)] = NEUTRAL_REASON
        return reasons


def _row_frame(sheets: list, rows: list, reasons: list) -> pd.DataFrame:
    return pd.DataFrame({"sheet": pd.Series(sheets, dtype=object),
                         "row": pd.Series(rows, dtype="int64"),
                         "reason": pd.Series(reasons, dtype=object)})


def _read(path: Path, header: _Header, max_rows: int | None = None) -> ProfileLedger:
    rows, encoding = _rows_after_header(header)
    if max_rows is not None:
        rows = islice(rows, max_rows)
    reader = _Reader(header)
    parts: list[_Parsed] = []
    try:
        while block := list(islice(rows, CHUNK_ROWS)):
            parts.append(reader.parse(block))
    except UnicodeDecodeError as exc:  # the file changed between the encoding check and now
        raise UnreadableWorkbook(f"the text is not valid {encoding} ({exc.reason})",
                                 "save it again as 'CSV UTF-8' from Excel") from None
    except csv.Error as exc:
        raise UnreadableWorkbook(f"the CSV text is malformed ({exc})", "re-export the file") from None
    ledger = _assemble(path, header, reader.plan, parts, encoding)
    if max_rows is not None and ledger.data_rows and ledger.data_rows[1] - ledger.data_rows[0] + 1 >= max_rows:
        ledger.notes.append(f"read only the first {max_rows} rows below the header (max_rows)")
    return ledger


def _assemble(path: Path, header: _Header, plan: _Plan, parts: list[_Parsed], encoding: str | None) -> ProfileLedger:
    first_row = header.index + 2  # header index is 0-based; the first data row is the next one
    n = sum(len(p.amount) for p in parts)
    rows = np.arange(first_row, first_row + n, dtype=np.int64)

    def cat(name: str, dtype) -> np.ndarray:
        arrays = [getattr(p, name) for p in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype=dtype)

    status = cat("status", object)
    reasons = cat("reason", object)
    good = status == "good"
    sheet = header.sheet.name
    df = pd.DataFrame({"date": pd.Series(cat("date", "datetime64[ns]")[good], dtype="datetime64[ns]"),
                       "amount": pd.Series(cat("amount", "float64")[good], dtype="float64")})
    n_good = int(good.sum())
    for canonical in TEXT_COLUMNS:
        if canonical in plan.columns:
            values = np.concatenate([p.text[canonical] for p in parts])[good] if parts else []
            df[canonical] = pd.Series(values, dtype=object)
        else:
            df[canonical] = pd.Series([None] * n_good, dtype=object)
    df["sheet"] = pd.Series([sheet] * n_good, dtype=object)
    df["row"] = pd.Series(rows[good], dtype="int64")
    df = df[list(ALL_COLUMNS)]

    def listed(state: str) -> pd.DataFrame:
        mask = status == state
        return _row_frame([sheet] * int(mask.sum()), rows[mask].tolist(), reasons[mask].tolist())

    excluded = listed("excluded")
    notes = [f"profile {header.profile.name}: {header.profile.title}"]
    if len(excluded):
        counts = excluded["reason"].value_counts()
        notes += [f"{count} row(s) excluded: {reason}" for reason, count in counts.items()]
    header_cells = header.sheet.head[header.index]
    columns = {c: ColumnRef(str(header_cells[ps[0]]).strip() if ps[0] < len(header_cells) else "", ps[0])
               for c, ps in sorted(plan.columns.items(), key=lambda kv: kv[1][0])}
    return ProfileLedger(
        df=df, rejected=listed("rejected"), totals_rows=rows[status == "total"].tolist(), sheet=sheet,
        header_row=header.index + 1, columns=columns, table_name=None, path=str(path),
        blank_rows=int((status == "blank").sum()), data_rows=(int(rows[0]), int(rows[-1])) if n else None,
        notes=notes, profile=header.profile.name, encoding=encoding, excluded=excluded)


__all__ = [
    "DEFAULT_ENCODINGS",
    "PROFILE_DIR",
    "ExcludeRule",
    "Profile",
    "ProfileLedger",
    "SignRule",
    "detect_profile",
    "get_profile",
    "list_profiles",
    "load_profile",
    "open_book",
    "read_detected",
    "read_with_profile",
]
