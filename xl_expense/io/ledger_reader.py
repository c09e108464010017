"""Read the expense table out of any workbook or CSV a finance team hands us.

The table is found on its own: an Excel Table (ListObject) whose header names expense
columns, else the most header-like row in the first 30 rows of the best sheet (title rows,
merged banners and notes above it are skipped). Cells are then parsed column by column with
:mod:`xl_expense.core.normalize` and every data row ends up in exactly one place:

* ``Ledger.df`` – an expense, in the canonical shape of :mod:`xl_expense.schema`;
* ``Ledger.rejected`` – a row we could not read, with the reason (bad amount or date …);
* ``Ledger.totals_rows`` – a 合计/Total row (a label, or a vertical SUM in the amount cell);
* ``Ledger.blank_rows`` – an empty row (counted only).

Workbooks are read with python-calamine (Rust; 15–25× faster than openpyxl) row chunk by row
chunk, so a million-row sheet never exists as a million Python lists at once. Row numbers are
the ones Excel shows (1-based, counting title rows above the table).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
import threading
import zipfile
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import islice, zip_longest
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import python_calamine as calamine

from xl_expense.core.normalize import (
    HeaderMatch,
    clean_text,
    find_header,
    parse_amounts,
    parse_dates,
    score_header_row,
    text_kind,
    total_label_rows,
)
from xl_expense.errors import (
    LedgerNotFound,
    SettingsError,
    UnreadableWorkbook,
    XlExpenseError,
)
from xl_expense.io.prefetch import AUDIT_SHEETS, file_key, take_prefetched
from xl_expense.io.report_names import report_sheet_names
from xl_expense.io.safety import check_package
from xl_expense.schema import (
    ALL_COLUMNS,
    LEDGER_COLUMNS,
    TEXT_COLUMNS,
    normalize_header,
)

#: Rows searched for the header, as the issue specifies.
HEADER_SEARCH_ROWS = 30
#: Rows parsed at a time: bounds memory (Python objects for 100k rows × width) and paces
#: the progress callback.
CHUNK_ROWS = 100_000

AMOUNT_MISSING = "金额为空 / amount missing"

#: Sheets the audit and the report write; never taken for the ledger unless named with ``sheet=``
#: (the report's Tables have 金额/部门 columns and would otherwise look like a ledger).
_OWN_SHEETS = AUDIT_SHEETS | frozenset(report_sheet_names())

Progress = Callable[[int, int], None]


def column_letter(index: int) -> str:
    """0-based column index → Excel letters (0 → 'A', 27 → 'AB')."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """Excel letters → 0-based column index ('A' → 0, 'AB' → 27)."""
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index - 1


@dataclass
class ColumnRef:
    """Where a canonical column sits in the sheet: its header text and 0-based column."""

    header: str
    index: int

    @property
    def letter(self) -> str:
        return column_letter(self.index)


@dataclass
class Ledger:
    """A ledger as read: the expenses plus an account of every other row."""

    df: pd.DataFrame
    rejected: pd.DataFrame
    totals_rows: list[int]
    sheet: str
    header_row: int
    columns: dict[str, ColumnRef]
    table_name: str | None
    path: str
    blank_rows: int = 0
    #: Excel row of the first and last data row (below the header), for the summary.
    data_rows: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)


def read_ledger(path, **kw) -> pd.DataFrame:
    """The expenses of the ledger at ``path`` as a canonical DataFrame (see :func:`load_ledger`)."""
    return load_ledger(path, **kw).df


def load_ledger(path, *, sheet: str | None = None, mapping: dict[str, str] | None = None,
                dayfirst: bool = False, progress: Progress | None = None,
                book: calamine.CalamineWorkbook | None = None,
                sheets: dict[str, calamine.CalamineSheet] | None = None) -> Ledger:
    """Find and read the expense table in ``path`` (.xlsx/.xlsm/.xlsb/.xls/.ods/.csv).

    ``sheet`` restricts the search to one sheet; ``mapping`` (canonical → header text, the
    CLI's ``--map amount=实报金额``) overrides the automatic column matching; ``dayfirst``
    reads ``5/3/2026`` as 5 March; ``progress(done_rows, total_rows)`` is called once per
    chunk of rows; ``book`` is ``path`` already opened with :func:`open_workbook` (a caller
    reading several things from one workbook opens it once; it is not closed here);
    ``sheets`` caches ``book``'s parsed sheets by name for all the readers of one file (calamine
    parses a whole sheet on every ``get_sheet_by_name``): sheets found there are not parsed
    again, sheets parsed here are added. Raises :class:`~xl_expense.errors.XlExpenseError`
    subclasses with a message saying how to fix the input.
    """
    path_str = str(path)
    try:
        check_package(path)
        mapping = _validate_mapping(mapping)
        source = _open_source(Path(path), sheet, mapping, book, sheets)
        return _read_source(source, path_str, mapping, dayfirst, progress)
    except XlExpenseError as exc:
        raise exc.with_path(path_str)


# ---------------------------------------------------------------------------------------------
# sources: where the header and data rows come from
# ---------------------------------------------------------------------------------------------

@dataclass
class _Source:
    """The chosen table: its header and an iterator over the rows below it.

    ``first_row`` is the Excel row (1-based) of ``rows``' first item when known up front; for
    calamine sheets it is settled after iteration (see :func:`_calamine_row_base`).
    """

    sheet: str
    header: HeaderMatch
    header_index: int              # index of the header row in the yielded row sequence
    rows: Iterator[list]           # rows after the header, in order
    col_base: int                  # absolute column of the yielded rows' first cell
    total_rows: int                # for progress
    row_base: Callable[[int], int]  # n_yielded → Excel row number of yielded index 0, minus 1
    table_name: str | None = None
    part_path: str | None = None   # zip member of the sheet XML (xlsx/xlsm) for the SUM scan
    package: Path | None = None
    #: Excel rows whose amount cell holds a vertical SUM, when the caller knows them
    #: (a live workbook reads formulas itself; a package is scanned via part_path).
    formula_rows: frozenset[int] = frozenset()


def _validate_mapping(mapping: dict[str, str] | None) -> dict[str, str]:
    """Check ``--map`` keys are canonical column names; values are header texts."""
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in LEDGER_COLUMNS]
    if unknown:
        raise SettingsError(f"unknown column name(s) in --map: {', '.join(unknown)}",
                            f"use one of: {', '.join(LEDGER_COLUMNS)}")
    empty = [k for k, v in mapping.items() if not str(v).strip()]
    if empty:
        raise SettingsError(f"--map {empty[0]}= has no header text", "write it as --map amount=实报金额")
    return mapping


def _open_source(path: Path, sheet: str | None, mapping: dict[str, str],
                 book: calamine.CalamineWorkbook | None = None,
                 sheets: dict[str, calamine.CalamineSheet] | None = None) -> _Source:
    extra = {header: canonical for canonical, header in mapping.items()}
    if _is_text_file(path):
        return _csv_source(path, extra)
    return _calamine_source(path, sheet, extra, book, sheets)


def _is_text_file(path: Path) -> bool:
    """CSV/TXT by extension, or any file that is neither a zip nor an OLE workbook."""
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        return True
    with open(path, "rb") as handle:
        head = handle.read(8)
    return not (head.startswith(b"PK") or head.startswith(b"\xd0\xcf\x11\xe0"))


def _not_found(where: str) -> LedgerNotFound:
    return LedgerNotFound(
        f"no expense table found in {where} (no header row with a date or amount column "
        f"in the first {HEADER_SEARCH_ROWS} rows)",
        "name the sheet with --sheet and the columns with --map date=… amount=…")


# -- calamine ---------------------------------------------------------------------------------

def _is_calamine_failure(exc: BaseException) -> bool:
    """Errors calamine raises on bad files: its own, I/O and decoding ones, and Rust panics.

    A panic inside calamine surfaces as ``pyo3_runtime.PanicException``, which derives from
    BaseException (not Exception) and has no importable name, hence the name test.
    """
    return isinstance(exc, (calamine.CalamineError, ValueError, OSError, UnicodeError, KeyError,
                            IndexError, OverflowError)) or type(exc).__name__ == "PanicException"


def _unreadable(exc: BaseException, what: str = "the file could not be read as a workbook"):
    return UnreadableWorkbook(f"{what} ({_short(exc)})",
                              "re-export it from Excel (File ▸ Save As ▸ Excel Workbook) and try again")


def open_workbook(path: str | Path) -> calamine.CalamineWorkbook | None:
    """``path`` opened once for every reader of a workflow (ledger, settings, notes, budget).

    None for a CSV/text file. calamine parses the shared strings and styles on every open,
    which for a large workbook is a good part of a second each time. Raises
    :class:`~xl_expense.errors.UnreadableWorkbook` as :func:`load_ledger` would.
    """
    path = Path(path)
    return None if _is_text_file(path) else _open_workbook(path)


def close_workbook(book: calamine.CalamineWorkbook) -> None:
    """Close a book from :func:`open_workbook`, forgetting sheets a prefetch parsed for it
    that no reader took (a caller that had the ledger already reads only settings)."""
    entry = _parsed_sheets.get(id(book))
    if entry is not None and entry[0] is book:
        del _parsed_sheets[id(book)]
    book.close()


@contextlib.contextmanager
def shared_workbook(path: str | Path) -> Iterator[calamine.CalamineWorkbook | None]:
    """:func:`open_workbook` for a workflow's readers, closed with :func:`close_workbook`.

    None for a CSV, or when the workbook does not open: each reader then opens it itself
    and reports the problem as it always has.
    """
    try:
        book = open_workbook(path)
    except XlExpenseError:
        book = None
    try:
        yield book
    finally:
        if book is not None:
            close_workbook(book)


def _open_workbook(path: Path) -> calamine.CalamineWorkbook:
    """Open with tables loaded where calamine supports them (xlsx), without elsewhere.

    A broken or unsupported table part must not hide the sheets, so any failure with
    tables is retried without them.
    """
    fetched = take_prefetched(path)
    if fetched is not None:
        if fetched.sheets:
            _parsed_sheets[id(fetched.book)] = (fetched.book, fetched.sheets)
        return fetched.book
    try:
        return calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
    except calamine.PasswordError:
        raise _password_error() from None
    except BaseException as exc:  # noqa: BLE001 - see _is_calamine_failure
        if not _is_calamine_failure(exc):
            raise
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError:
        raise _password_error() from None
    except BaseException as exc:  # noqa: BLE001
        if not _is_calamine_failure(exc):
            raise
        raise _unreadable(exc) from None


#: Sheets a prefetch parsed (see :mod:`xl_expense.io.prefetch`), by ``id`` of their book.
_parsed_sheets: dict[int, tuple[calamine.CalamineWorkbook, dict[str, calamine.CalamineSheet]]] = {}


def _get_sheet(book: calamine.CalamineWorkbook, name: str) -> calamine.CalamineSheet:
    """``book``'s sheet ``name``: the one a prefetch already parsed, else parsed now."""
    parsed = _parsed_sheets.get(id(book))
    if parsed is not None and parsed[0] is book and name in parsed[1]:
        return parsed[1].pop(name)
    return book.get_sheet_by_name(name)


def _cached_sheet(book: calamine.CalamineWorkbook, name: str,
                  cache: dict[str, calamine.CalamineSheet] | None) -> calamine.CalamineSheet:
    """:func:`_get_sheet` through the caller's ``cache`` (see :func:`load_ledger`).

    A sheet parsed here is added to it; one that fails to parse is not, so the next reader
    meets the same error.
    """
    if cache is not None and name in cache:
        return cache[name]
    data = _get_sheet(book, name)
    if cache is not None:
        cache[name] = data
    return data


def _password_error() -> UnreadableWorkbook:
    return UnreadableWorkbook("the workbook is password-protected",
                              "remove the password in Excel (File ▸ Info ▸ Protect Workbook) and save again")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _calamine_source(path: Path, sheet: str | None, extra: dict[str, str],
                     book: calamine.CalamineWorkbook | None = None,
                     sheets: dict[str, calamine.CalamineSheet] | None = None) -> _Source:
    book = book if book is not None else _open_workbook(path)
    worksheets = [m.name for m in book.sheets_metadata
                  if m.typ == calamine.SheetTypeEnum.WorkSheet]
    if sheet is not None and sheet not in book.sheet_names:
        raise LedgerNotFound(f"there is no sheet named '{sheet}'",
                             f"use one of: {', '.join(book.sheet_names)}")
    # Our own output sheets (findings, summary, settings, in every language) look like
    # ledgers (dates, amounts, salespeople; the findings even sit in an Excel Table):
    # auditing an audited workbook again must read the ledger, not last run's findings.
    names = [sheet] if sheet is not None else [n for n in worksheets if n not in _OWN_SHEETS]
    parts = _sheet_parts(path)

    table = _best_table(book, names, extra)
    if table is not None:
        return _table_source(book, table, parts, path, extra)

    best: tuple[float, _Source] | None = None
    for name in names:
        try:
            data = _cached_sheet(book, name, sheets)
            candidate = _sheet_candidate(name, data, extra)
        except BaseException as exc:  # noqa: BLE001 - see _is_calamine_failure
            if not _is_calamine_failure(exc):
                raise
            if sheet is not None or len(names) == 1:
                raise _unreadable(exc, f"sheet '{name}' could not be read") from None
            continue  # a broken chart/macro sheet must not stop us reading the ledger sheet
        if candidate is not None and (best is None or candidate.header.score > best[0]):
            best = (candidate.header.score, candidate)
    _parsed_sheets.pop(id(book), None)  # the other prefetched sheets are not needed
    if best is None:
        where = f"sheet '{sheet}'" if sheet else "sheets " + ", ".join(f"'{n}'" for n in names)
        raise _not_found(where)
    source = best[1]
    source.part_path = parts.get(source.sheet)
    source.package = path
    return source


def _sheet_candidate(name: str, data: calamine.CalamineSheet, extra: dict[str, str]) -> _Source | None:
    """Find the header in the first rows of a sheet; None if it has no expense header."""
    if data.start is None:
        return None
    (r0, c0), (r1, c1) = data.start, data.end
    rows = data.iter_rows()
    # Skip leading blank rows (some calamine versions yield the rows above the used range).
    skipped, head = 0, []
    for row in rows:
        if not head and not any(_filled(v) for v in row):
            skipped += 1
            continue
        head.append(row)
        if len(head) >= HEADER_SEARCH_ROWS + 1:
            break
    match = find_header(head, HEADER_SEARCH_ROWS, extra)
    if match is None:
        return None
    first_len = len(head[0]) if head else 0
    # Yielded rows start at column c0 (width c1-c0+1) or at column A (width c1+1).
    col_base = c0 if first_len == c1 - c0 + 1 else 0
    header_index = skipped + match.row
    after = head[match.row + match.n_rows:]

    def row_base(n_yielded: int) -> int:
        # Yielded rows start at the sheet's first used row, or at row 1: the count tells.
        return r0 if n_yielded == r1 - r0 + 1 and r0 > 0 else 0

    return _Source(sheet=name, header=match, header_index=header_index,
                   rows=_chain(after, rows), col_base=col_base,
                   total_rows=max(r1 - r0 + 1 - (header_index + match.n_rows), 0),
                   row_base=row_base)


def _chain(first: list, rest: Iterable) -> Iterator:
    # itertools.chain, not a generator: a Python frame per row costs ~0.3 s per 100k rows.
    return itertools.chain(first, rest)


def _filled(value: object) -> bool:
    return not (value is None or (isinstance(value, str) and not value.strip()))


def _best_table(book: calamine.CalamineWorkbook, names: list[str], extra: dict[str, str]):
    """The Excel Table (ListObject) with the most expense-like header, or None."""
    try:
        table_names = book.table_names or []
    except BaseException as exc:  # noqa: BLE001
        if not _is_calamine_failure(exc):
            raise
        return None
    best = None
    for table_name in table_names:
        try:
            table = book.get_table_by_name(table_name)
        except BaseException as exc:  # noqa: BLE001
            if not _is_calamine_failure(exc):
                raise
            continue
        if table.sheet not in names:
            continue
        score, _ = score_header_row(list(table.columns), extra)
        if score > 0 and (best is None or score > best[0]):
            best = (score, table)
    return None if best is None else best[1]


def _table_source(book, table, parts: dict[str, str], path: Path, extra: dict[str, str]) -> _Source:
    header_cells = list(table.columns)
    score, mapping = score_header_row(header_cells, extra)
    match = HeaderMatch(0, mapping, score, [str(c) for c in header_cells])
    (r0, c0) = table.start  # first *data* row (0-based); the header is the row above
    try:
        data = table.to_python()
    except BaseException as exc:  # noqa: BLE001
        if not _is_calamine_failure(exc):
            raise
        raise _unreadable(exc, f"table '{table.name}' could not be read") from None
    return _Source(sheet=table.sheet, header=match, header_index=r0 - 1, rows=iter(data),
                   col_base=c0, total_rows=len(data), row_base=lambda n: 0,
                   table_name=table.name, part_path=parts.get(table.sheet), package=path)


def _sheet_parts(path: Path) -> dict[str, str]:
    """Sheet name → zip member of its XML, from workbook.xml and its relationships.

    Only for xlsx/xlsm (the SUM-formula scan); {} for anything else or on any surprise.
    """
    from defusedxml import ElementTree  # safety.check_package already refused DTDs

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
                return {}
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # noqa: BLE001 - the scan is an extra; reading goes on without it
        return {}
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        member = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        targets[rel.get("Id")] = member
    parts = {}
    for element in workbook.iter():
        if element.tag.endswith("}sheet") or element.tag == "sheet":
            rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), None)
            if rid in targets and targets[rid] in names:
                parts[element.get("name")] = targets[rid]
    return parts


# -- rows from elsewhere (a live workbook through xlwings, a test) ------------------------------

def candidate_sheets(names: Sequence[str], sheet: str | None = None) -> list[str]:
    """The sheets :func:`load_ledger` would search: ``sheet`` alone when named, else every
    sheet but our own output sheets (findings, summary, settings, report)."""
    if sheet is not None:
        if sheet not in names:
            raise LedgerNotFound(f"there is no sheet named '{sheet}'", f"use one of: {', '.join(names)}")
        return [sheet]
    return [name for name in names if name not in _OWN_SHEETS]


def header_score(rows: Sequence[Sequence[object]], mapping: dict[str, str] | None = None) -> float:
    """How much the best header among the first rows of a sheet looks like a ledger's (0: none).

    ``rows`` start at the sheet's first row; leading blank rows are skipped as in the
    workbook reader. A caller choosing among sheets takes the highest score, first one on ties.
    """
    extra = {header: canonical for canonical, header in _validate_mapping(mapping).items()}
    source = _rows_source("", rows, 1, 1, extra)
    return source.header.score if source is not None else 0.0


def ledger_from_rows(rows: Sequence[Sequence[object]], sheet: str, *, mapping: dict[str, str] | None = None,
                     dayfirst: bool = False, path: str = "", first_row: int = 1, first_col: int = 1,
                     sum_rows: Iterable[int] = (), progress: Progress | None = None) -> Ledger:
    """Read a ledger out of a sheet's cell values with the very parser :func:`load_ledger` uses.

    ``rows``: the values of a rectangle whose top-left cell is (``first_row``, ``first_col``),
    1-based (a live workbook's used range); empty cells may be ``None`` or ``''``, dates
    ``datetime``. ``sum_rows``: Excel rows whose amount cell holds a vertical SUM (the
    caller read the formulas), counted as totals rows. ``path`` names the source in the
    Ledger and in error messages. Raises :class:`~xl_expense.errors.LedgerNotFound` when
    the sheet has no expense header.
    """
    try:
        mapping = _validate_mapping(mapping)
        extra = {header: canonical for canonical, header in mapping.items()}
        source = _rows_source(sheet, rows, first_row, first_col, extra)
        if source is None:
            raise _not_found(f"sheet '{sheet}'")
        source.formula_rows = frozenset(int(r) for r in sum_rows)
        return _read_source(source, path or sheet, mapping, dayfirst, progress)
    except XlExpenseError as exc:
        raise exc.with_path(path) if path else exc


def _rows_source(name: str, rows: Sequence[Sequence[object]], first_row: int, first_col: int,
                 extra: dict[str, str]) -> _Source | None:
    """Like :func:`_sheet_candidate`, over rows already in memory."""
    rows = [list(row) for row in rows]
    skipped = next((i for i, row in enumerate(rows) if any(_filled(v) for v in row)), len(rows))
    head = rows[skipped:skipped + HEADER_SEARCH_ROWS + 1]
    match = find_header(head, HEADER_SEARCH_ROWS, extra)
    if match is None:
        return None
    header_index = skipped + match.row
    after = rows[header_index + match.n_rows:]
    return _Source(sheet=name, header=match, header_index=header_index, rows=iter(after),
                   col_base=first_col - 1, total_rows=len(after), row_base=lambda n: first_row - 1)


# -- csv --------------------------------------------------------------------------------------

def _decode_text(raw: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK/GB2312, what
    Chinese Excel and bank exports use), then Windows-1252 (Western Excel's "CSV");
    UTF-16 when the BOM says so."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding in ("gb18030", "cp1252"):  # Chinese Windows, then Western Windows "CSV"
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableWorkbook("the CSV file is not UTF-8, GBK or Windows-1252 text",
                             "save it again as 'CSV UTF-8' from Excel")


#: Delimiters tried, in order of preference when they find equally good headers.
CSV_DELIMITERS = (",", "\t", ";", "|")


def _best_delimiter(text: str, extra: dict[str, str]) -> tuple[float, str, list, HeaderMatch] | None:
    """(score, delimiter, first rows, header) for the delimiter that shows the best header."""
    best: tuple[float, str, list, HeaderMatch] | None = None
    for delimiter in CSV_DELIMITERS:
        sample = list(islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                             HEADER_SEARCH_ROWS + 1))
        match = find_header(sample, HEADER_SEARCH_ROWS, extra)
        if match is not None and (best is None or match.score > best[0]):
            best = (match.score, delimiter, sample, match)
    return best


def csv_rows(path: str | Path) -> list[list[str]]:
    """Every row of a CSV as text, decoded and split exactly as :func:`load_ledger` reads it."""
    text = _decode_text(Path(path).read_bytes())
    best = _best_delimiter(text, {})
    delimiter = best[1] if best else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _csv_source(path: Path, extra: dict[str, str]) -> _Source:
    """Read a CSV through the same header search as a sheet.

    The delimiter is the one under which the best expense header appears: counting
    delimiters per line is fooled by bank exports that pad every field with tabs
    *inside* quoted comma-separated fields.
    """
    text = _decode_text(path.read_bytes())
    best = _best_delimiter(text, extra)
    if best is None:
        raise _not_found(f"CSV file {path.name}")
    _, delimiter, head, match = best
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for _ in islice(rows, len(head)):
        pass
    after = head[match.row + match.n_rows:]
    total = text.count("\n") - match.row - match.n_rows
    return _Source(sheet=path.stem[:31], header=match, header_index=match.row,
                   rows=_chain(after, rows), col_base=0, total_rows=max(total, 0),
                   row_base=lambda n: 0)


# ---------------------------------------------------------------------------------------------
# reading the rows
# ---------------------------------------------------------------------------------------------

def _resolve_columns(source: _Source, mapping: dict[str, str]) -> dict[str, ColumnRef]:
    """Canonical → ColumnRef, with the user's ``--map`` applied and checked."""
    labels = source.header.labels
    columns = {c: idx for c, idx in source.header.mapping.items()}
    for canonical, header_text in mapping.items():
        wanted = normalize_header(header_text)
        hits = [i for i, label in enumerate(labels)
                if wanted in (normalize_header(label), normalize_header(label.split("/")[-1]))]
        if not hits:
            available = ", ".join(f"'{label}'" for label in labels if label) or "(none)"
            raise LedgerNotFound(
                f"--map {canonical}={header_text}: no column headed '{header_text}' in the header row "
                f"(row {_header_excel_row(source)} of sheet '{source.sheet}')",
                f"use one of the headers there: {available}")
        # One column has one meaning: drop an automatic match of the same column.
        columns = {c: i for c, i in columns.items() if i != hits[0]}
        columns[canonical] = hits[0]
    if "amount" not in columns:
        available = ", ".join(f"'{label}'" for label in labels if label)
        raise LedgerNotFound(
            f"the table on sheet '{source.sheet}' has no amount column (headers: {available})",
            "name it with --map amount=<header>")
    return {c: ColumnRef(labels[i] if i < len(labels) else "", source.col_base + i)
            for c, i in sorted(columns.items(), key=lambda kv: kv[1])}


def _header_excel_row(source: _Source) -> int:
    # Provisional for calamine sheets (base settled after iteration); exact for most files.
    return source.header_index + 1


@dataclass
class _Chunk:
    """Parsed columns of one chunk of rows; concatenated at the end."""

    n: int
    blank: np.ndarray
    label_total: np.ndarray
    date_missing: np.ndarray
    amount: np.ndarray
    amount_reason: np.ndarray
    date: np.ndarray
    date_reason: np.ndarray
    text: dict[str, np.ndarray]


def _read_source(source: _Source, path: str, mapping: dict[str, str], dayfirst: bool,
                 progress: Progress | None) -> Ledger:
    columns = _resolve_columns(source, mapping)
    local = {c: ref.index - source.col_base for c, ref in columns.items()}
    # The SUM-formula scan decompresses the sheet XML again (zlib releases the GIL): it runs
    # beside the parsing of the rows instead of after it.
    sum_scan = _in_background(sum_formula_rows, source.package, source.part_path, columns["amount"].index) \
        if source.part_path else None
    chunks: list[_Chunk] = []
    done = 0
    rows = source.rows
    while True:
        try:
            block = list(islice(rows, CHUNK_ROWS))
        except BaseException as exc:  # noqa: BLE001 - calamine converts rows lazily
            if not _is_calamine_failure(exc):
                raise
            raise _unreadable(exc, f"sheet '{source.sheet}' could not be read") from None
        if not block:
            break
        chunks.append(_parse_chunk(block, local, dayfirst))
        done += len(block)
        if progress is not None:
            progress(done, max(source.total_rows, done))

    n_after_header = done
    n_yielded = source.header_index + source.header.n_rows + n_after_header
    base = source.row_base(n_yielded)
    header_row = base + source.header_index + 1
    first_data_row = header_row + source.header.n_rows
    sum_rows = (sum_scan.result() if sum_scan is not None else set()) | set(source.formula_rows)
    return _assemble(chunks, source, columns, path, first_data_row, header_row, sum_rows)


def _in_background(func: Callable, *args) -> Future:
    """``func(*args)`` in a daemon thread; ``.result()`` waits and re-raises its exception."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            future.set_exception(exc)

    threading.Thread(target=run, name="xl-expense-scan", daemon=True).start()
    return future


def _parse_chunk(block: list[list], local: dict[str, int], dayfirst: bool) -> _Chunk:
    """Transpose a chunk of rows into columns and parse the mapped ones."""
    n = len(block)
    cols = _transpose(block)
    # Each text column is factorised once, for the totals search and the text cleaning alike;
    # amount/date/number columns are recognised by one C pass (see total_label_rows).
    kinds = [text_kind(col) for col in cols]
    factorized = {i: pd.factorize(col, use_na_sentinel=True) for i, col in enumerate(cols) if kinds[i] == "string"}
    blank = _blank_rows(cols, local.get("amount"), n)

    def column(canonical: str) -> pd.Series:
        i = local.get(canonical)
        if i is None or i >= len(cols):
            return pd.Series([None] * n, dtype=object)
        return pd.Series(cols[i], dtype=object)

    amount, amount_reason = parse_amounts(column("amount"))
    # Cells holding only spaces look filled to the cheap test above; recheck the few rows
    # that would otherwise be reported as "amount missing".
    suspect = np.flatnonzero(~blank & amount.isna().to_numpy() & amount_reason.isna().to_numpy())
    if suspect.size:
        blank[suspect] = [all(not _filled(v) for v in block[i]) for i in suspect]
    if "date" in local:
        date, date_reason = parse_dates(column("date"), dayfirst=dayfirst)
        date_missing = date.isna().to_numpy() & date_reason.isna().to_numpy()
    else:
        date = pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
        date_reason = pd.Series([None] * n, dtype=object)
        date_missing = np.ones(n, dtype=bool)
    label_total = total_label_rows(cols, date_missing, factorized)
    text = {c: clean_text(column(c), factorized.get(local[c])).to_numpy(dtype=object)
            for c in TEXT_COLUMNS if c in local}
    return _Chunk(n, blank, label_total, date_missing, amount.to_numpy(),
                  amount_reason.to_numpy(dtype=object), date.to_numpy(dtype="datetime64[ns]"),
                  date_reason.to_numpy(dtype=object), text)


def _transpose(block: list[list]) -> list[np.ndarray]:
    """The columns of a chunk of rows, as object arrays.

    calamine rows are all as wide as the sheet: one 2-D array, transposed, is several times
    faster than zipping. CSV rows can be ragged: those are zipped and padded with ''.
    """
    if not block:
        return []
    width = len(block[0])
    if width and all(len(row) == width for row in block):
        grid = np.empty((len(block), width), dtype=object)
        grid[:] = block
        return list(grid.T)  # strided views: consumers copy what they keep
    return [np.array(col, dtype=object) for col in zip_longest(*block, fillvalue="")]


def _blank_rows(cols: list[np.ndarray], amount_col: int | None, n: int) -> np.ndarray:
    """Rows whose every cell is empty (see :func:`_empty_mask`).

    Only rows with an empty amount cell can be blank, so the other columns are tested on
    those rows alone: a ledger has few of them.
    """
    if not cols:
        return np.ones(n, dtype=bool)
    first = amount_col if amount_col is not None and amount_col < len(cols) else 0
    blank = _empty_mask(cols[first])
    candidates = np.flatnonzero(blank)
    for i, col in enumerate(cols):
        if i == first or not candidates.size:
            continue
        empty = _empty_mask(col[candidates])
        blank[candidates[~empty]] = False
        candidates = candidates[empty]
    return blank


def _empty_mask(col: np.ndarray) -> np.ndarray:
    """True for cells that hold nothing: '' (calamine and CSV), None or NaN.

    Cells of spaces only are caught later, only for rows that would otherwise be rejected,
    to keep this per-cell test cheap.
    """
    # Elementwise comparisons stay in C; pd.isna on object arrays costs 5× more. calamine and
    # the CSV reader give '' for empty cells, None only comes from callers' own rows.
    return np.equal(col, "") | np.equal(col, None)


def _assemble(chunks: list[_Chunk], source: _Source, columns: dict[str, ColumnRef], path: str,
              first_data_row: int, header_row: int, sum_rows: set[int]) -> Ledger:
    """Concatenate the chunks and sort every row into df / rejected / totals / blank.

    ``sum_rows``: Excel rows whose amount cell holds a vertical SUM (:func:`sum_formula_rows`).
    """
    n = sum(c.n for c in chunks)
    rows = np.arange(first_data_row, first_data_row + n, dtype=np.int64)

    def cat(name: str, dtype) -> np.ndarray:
        parts = [getattr(c, name) for c in chunks]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)

    blank = cat("blank", bool)
    amount = cat("amount", "float64")
    amount_reason = cat("amount_reason", object)
    date = cat("date", "datetime64[ns]")
    date_reason = cat("date_reason", object)
    totals = cat("label_total", bool)
    if n and sum_rows:
        by_formula = np.isin(rows, np.fromiter(sum_rows, dtype=np.int64))
        totals |= by_formula
        # A formula never calculated (files written by scripts) leaves the cell empty
        # and the row looking blank; the formula still says it is a totals row.
        blank &= ~by_formula

    has_amount_reason = pd.notna(amount_reason)
    has_date_reason = pd.notna(date_reason)
    amount_missing = np.isnan(amount) & ~has_amount_reason
    reasons = np.where(has_amount_reason, amount_reason, None).astype(object)
    reasons[amount_missing] = AMOUNT_MISSING
    amount_bad = has_amount_reason | amount_missing
    both = has_date_reason & amount_bad
    if both.any():
        reasons[both] = [f"{a}; {d}" for a, d in zip(reasons[both], date_reason[both])]
    only_date = has_date_reason & ~amount_bad
    reasons[only_date] = date_reason[only_date]
    bad = (has_amount_reason | amount_missing | has_date_reason) & ~blank & ~totals
    good = ~(bad | blank | totals)

    n_good = int(good.sum())
    data: dict[str, pd.Series] = {
        "date": pd.Series(date[good], dtype="datetime64[ns]"),
        "amount": pd.Series(amount[good], dtype="float64"),
    }
    for canonical in TEXT_COLUMNS:
        if canonical in columns:
            data[canonical] = pd.Series(np.concatenate([c.text[canonical] for c in chunks])[good]
                                        if chunks else [], dtype=object)
        else:
            data[canonical] = pd.Series([None] * n_good, dtype=object)
    data["sheet"] = pd.Series([source.sheet] * n_good, dtype=object)
    data["row"] = pd.Series(rows[good], dtype="int64")
    # One DataFrame from all columns: a column insert at a time costs ~0.1 ms each.
    df = pd.DataFrame({name: data[name] for name in ALL_COLUMNS})

    rejected = pd.DataFrame({
        "sheet": pd.Series([source.sheet] * int(bad.sum()), dtype=object),
        "row": pd.Series(rows[bad], dtype="int64"),
        "reason": pd.Series(reasons[bad], dtype=object),
    })
    data_rows = (int(rows[0]), int(rows[-1])) if n else None
    return Ledger(df=df, rejected=rejected, totals_rows=[int(r) for r in rows[totals]],
                  sheet=source.sheet, header_row=header_row, columns=columns,
                  table_name=source.table_name, path=path, blank_rows=int(blank.sum()),
                  data_rows=data_rows)


# ---------------------------------------------------------------------------------------------
# SUM formulas (calamine gives values, not formulas)
# ---------------------------------------------------------------------------------------------

# A cell with a formula: <c r="D12" …><f …>SUM(D2:D11)</f> or a shared-formula child <f … si="0"/>.
# Tags may carry a namespace prefix (<x:c>) in files written by the .NET Open XML SDK.
_FORMULA_CELL = re.compile(
    rb'<(?:\w+:)?c\b([^>]*)>\s*<(?:\w+:)?f\b([^>]*?)(?:/>|>([^<]*)</(?:\w+:)?f>)')
_REF_ATTR = re.compile(rb'\br="\$?([A-Z]{1,3})\$?(\d+)"')
_SI_ATTR = re.compile(rb'\bsi="(\d+)"')
_SUM_CALL = re.compile(rb"\b(?:SUM|SUBTOTAL|AGGREGATE)\s*\(", re.IGNORECASE)
_RANGE = re.compile(rb"\$?([A-Z]{1,3})\$?(\d+)\s*:\s*\$?([A-Z]{1,3})\$?(\d+)|\$?([A-Z]{1,3})\s*:\s*\$?([A-Z]{1,3})\b")
_SCAN_BLOCK = 8 * 1024 * 1024


def is_vertical_sum(formula: bytes) -> bool:
    """True for SUM/SUBTOTAL over a range spanning rows ('SUM(D2:D11)', 'SUBTOTAL(9,D:D)').

    A horizontal SUM ('SUM(E5:G5)': an amount made of its parts on the same row) is an
    expense row, not a totals row.
    """
    if not _SUM_CALL.search(formula):
        return False
    for match in _RANGE.finditer(formula):
        if match.group(5):  # whole columns, e.g. D:D
            return True
        if match.group(2) != match.group(4):
            return True
    return False


def sum_formula_rows(package: Path | None, member: str, amount_col: int) -> set[int]:
    """Excel rows whose amount cell holds a vertical SUM/SUBTOTAL formula.

    From :func:`prescan_sum_formulas` when the audit scanned the sheet while calamine was
    still parsing it, else scanned now (:func:`vertical_sum_cells`).
    """
    if package is None:
        return set()
    cells = _take_prescanned(package, member)
    if cells is None:
        cells = vertical_sum_cells(package, member) or {}
    return set(cells.get(column_letter(amount_col).encode(), ()))


def vertical_sum_cells(package: Path, member: str, busy: Callable[[], bool] | None = None
                       ) -> dict[bytes, set[int]] | None:
    """Column letter → Excel rows of the cells holding a vertical SUM/SUBTOTAL formula.

    Streams the sheet XML in blocks (cut at cell boundaries) and looks only at ``<f>``
    elements, so a sheet without formulas costs one decompression pass and a byte search.
    With ``busy``, gives up (None) as soon as it returns False between blocks. A package
    that cannot be read gives {} (the reader reports what is wrong with it).
    """
    found: dict[bytes, set[int]] = {}
    shared: dict[bytes, bool] = {}
    needles = (b"<f", b":f")
    try:
        with zipfile.ZipFile(package) as archive, archive.open(member) as stream:
            carry, first = b"", True
            while True:
                if busy is not None and not busy():
                    return None
                block = stream.read(_SCAN_BLOCK)
                data = carry + block
                if first and data.find(b"<sheetData") >= 0:
                    # Unprefixed elements (everything but the .NET SDK's <x:c>): one search, not two.
                    needles = (b"<f",)
                first = False
                cut = len(data) if not block else max(data.rfind(b"</c>") + 4, 0)
                # Searched in place (find with an end), not sliced: the blocks are megabytes.
                if any(data.find(needle, 0, cut) >= 0 for needle in needles):
                    _scan_formulas(data[:cut], found, shared, needles)
                carry = data[cut:]
                if not block:
                    break
    except (KeyError, zipfile.BadZipFile, OSError, EOFError):
        return {}
    return found


#: Formula scans made while a prefetch was parsing (:func:`prescan_sum_formulas`): one file's
#: at a time, by sheet member, each taken once.
_prescanned: dict[tuple, dict[str, dict[bytes, set[int]]]] = {}


def prescan_sum_formulas(path: Path, busy: Callable[[], bool]) -> None:
    """Scan the worksheets of ``path`` for vertical SUMs while ``busy()``.

    The audit calls this while it waits for calamine's parse of the workbook (see
    :func:`~xl_expense.io.prefetch.prefetch_running`): the scan decompresses the sheet XML
    again, and then costs nothing. A sheet not scanned by the time the parse ends is scanned
    as before, beside the parsing of its rows.
    """
    _prescanned.clear()
    key = file_key(path)
    if key is None:
        return
    scans = _prescanned[key] = {}
    for name, member in _sheet_parts(path).items():
        if name in AUDIT_SHEETS:
            continue
        cells = vertical_sum_cells(path, member, busy)
        if cells is None:
            break
        scans[member] = cells


def _take_prescanned(package: Path, member: str) -> dict[bytes, set[int]] | None:
    """The prescan of ``member`` of ``package``, if one was made and the file has not changed since."""
    scans = _prescanned.get(file_key(Path(package)))
    return scans.pop(member, None) if scans is not None else None


def _formula_cells(part: bytes, needles: tuple[bytes, ...] = (b"<f", b":f")) -> Iterator[re.Match]:
    """The formula cells of a block of sheet XML, in document order.

    Found from their ``<f`` tags with a plain byte search, then matched in place: running
    the cell pattern over every ``<c`` of a block would cost ~0.1 s per 8 MB for the one
    totals formula at the end of a ledger.
    """
    starts = set()
    for needle in needles:  # <f …> or a prefixed <x:f …>
        pos = part.find(needle)
        while pos >= 0:
            f_open = pos if needle == b"<f" else part.rfind(b"<", 0, pos)
            c_open = part.rfind(b"<", 0, f_open) if f_open > 0 else -1
            if c_open >= 0:
                starts.add(c_open)
            pos = part.find(needle, pos + 2)
    for start in sorted(starts):
        match = _FORMULA_CELL.match(part, start)
        if match is not None:
            yield match


def _scan_formulas(part: bytes, found: dict[bytes, set[int]], shared: dict[bytes, bool],
                   needles: tuple[bytes, ...] = (b"<f", b":f")) -> None:
    for match in _formula_cells(part, needles):
        ref = _REF_ATTR.search(match.group(1))
        if ref is None:
            continue
        f_attrs, text = match.group(2), match.group(3)
        si = _SI_ATTR.search(f_attrs)
        if text:
            vertical = is_vertical_sum(text)
            if si is not None:
                shared[si.group(1)] = vertical
        else:
            vertical = shared.get(si.group(1), False) if si is not None else False
        if vertical:
            found.setdefault(ref.group(1), set()).add(int(ref.group(2)))
