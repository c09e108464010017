"""Change cell values in one worksheet of an existing workbook, copying everything else raw.

Why: the budget commands write new numbers into the ``XE_Budget`` Table of a workbook the
user keeps working in. An openpyxl load-and-save would drop what openpyxl does not model
(charts, pivots, VBA, slicers, cached values …). Like :mod:`xl_expense.io.xlsx_package`,
this module rewrites only what must change:

* the patched worksheet part — streamed once as bytes; only the ``<row>`` elements that
  hold a patched cell are rebuilt, every other byte of the part is kept;
* the table parts whose ``ref`` the caller grows (``tables=``, by rows or by new columns);
* ``xl/workbook.xml`` when it lacks ``fullCalcOnLoad="1"`` (so Excel recomputes the formulas
  that depend on the new numbers when the file is opened), and ``xl/calcChain.xml`` with its
  relationship and content-type override when a formula cell was overwritten (Excel
  "repairs" a workbook whose calc chain names a cell that no longer has a formula).

Every other zip member is copied as its raw compressed bytes. Text is written as inline
strings (``t="inlineStr"``) and never becomes a formula; only
:class:`~xl_expense.io.sheet_model.Formula` values do.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import html
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xl_expense.errors import OutputError, UnreadableWorkbook, XlExpenseError
from xl_expense.io.safety import MAX_UNCOMPRESSED_BYTES, check_package
from xl_expense.io.sheet_model import Formula
from xl_expense.io.sheet_xml import (
    MAX_COLS,
    MAX_ROWS,
    REL_TABLE,
    clean_text,
    col_letter,
    date_serial,
    parse_cell,
    parse_range,
    range_ref,
    xml_text,
)

# Private helpers of the package writer, shared on purpose: one zip writer, one text editor.
from xl_expense.io.xlsx_package import (
    FAST_DEFLATE_BYTES,
    REL_CALC_CHAIN,
    REL_WORKSHEET,
    _commit,
    _decode,
    _Edit,
    _edit_content_types,
    _edit_rels,
    _elements,
    _encode,
    _Package,
    _Plan,
    _prefix,
    _set_attr,
    _Workbook,
    _write_temp,
    _write_zip,
    member_key,
)

__all__ = ["patch_cells", "patch_rows"]

#: CT_Workbook children that come before ``<calcPr>``, nearest first (ECMA-376 §18.2.28).
_BEFORE_CALC_PR = ("definedNames", "externalReferences", "functionGroups", "sheets")
_NUMBERS = (int, float, np.integer, np.floating, decimal.Decimal)


# =========================================================================== public API

def patch_cells(src: str | Path, dst: str | Path, sheet: str, cells: Mapping[str, object], *,
                tables: Mapping[str, str] | None = None, style_from_above: bool = False,
                new_columns: Mapping[str, list[str]] | None = None) -> None:
    """Write ``src`` to ``dst`` with the values of ``cells`` (A1 reference → value) on ``sheet``.

    Values: ``int``/``float`` (and numpy/Decimal numbers) → number; ``bool`` → Excel boolean;
    ``str`` → inline text, never a formula whatever it starts with; ``None``, NaN or ``""`` →
    the cell keeps its style and loses its value; :class:`Formula` → a formula (no cached value);
    ``date``/``datetime`` → serial number in the workbook's date system (1900 or 1904; a date
    Excel cannot show, before 1900-03-01, becomes ISO text); ``time`` → fraction of a day.

    Existing cells keep their style (``s``) and position; missing cells and rows are inserted
    in order and take the style Excel shows for the empty cell (the row's style if it has one,
    else the column's) — or, with ``style_from_above``, the style of the cell in the same
    column of the nearest row above that exists in ``src`` (lines added below a Table then
    look like the Table's last line). ``tables`` maps a Table name on ``sheet`` to its new ref; only the last
    row may change, and the last column when ``new_columns`` names the columns added on the
    right of that Table (their header cells must be among ``cells``, with the same text: Excel
    requires a Table's header cells to equal its column names); a Table in ``new_columns`` but
    not in ``tables`` keeps its rows. A Table's calculated column is
    not filled in new rows: pass their formulas as :class:`Formula` cells.

    Every other zip member is copied byte for byte; ``dst`` may be ``src`` (the file is
    replaced atomically). Raises :class:`OutputError` for an unknown sheet or Table, a bad
    reference, or a cell Excel would not let you change alone (the first cell of a shared
    formula, part of an array formula); :class:`UnreadableWorkbook` for a damaged input.
    """
    _patch(Path(src), Path(dst), sheet, lambda: _parse_targets(cells), tables, style_from_above, new_columns)


def patch_rows(src: str | Path, dst: str | Path, sheet: str, rows: Mapping[int, Mapping[int, object]], *,
               tables: Mapping[str, str] | None = None, style_from_above: bool = False,
               new_columns: Mapping[str, list[str]] | None = None) -> None:
    """:func:`patch_cells` with the cells given as Excel row → {1-based column → value}.

    Why: a caller that computes thousands of cells by row and column (the classification
    columns of a ledger) would otherwise format every position as "K12" only for
    :func:`patch_cells` to parse it back. Same values, same result, same errors.
    """
    _patch(Path(src), Path(dst), sheet, lambda: _check_rows(rows), tables, style_from_above, new_columns)


def _patch(src: Path, dst: Path, sheet: str, targets: Callable[[], dict[int, dict[int, Any]]],
           tables: Mapping[str, str] | None, style_from_above: bool,
           new_columns: Mapping[str, list[str]] | None) -> None:
    """Both public functions; ``targets`` reads the cells where the errors of a bad
    reference have always been raised (after the package and the sheet were checked)."""
    try:
        check_package(src)
        with _Package.open(src) as pkg:
            plan = _plan(pkg, sheet, targets, dict(tables or {}), style_from_above, dict(new_columns or {}))
            tmp = _write_temp(dst, lambda fh: _write_zip(pkg, plan, fh))
        _commit(tmp, dst, mode_from=src)  # after closing src: Windows cannot replace an open file
    except XlExpenseError as exc:
        raise exc.with_path(str(src)) from None


# =========================================================================== planning

def _plan(pkg: _Package, sheet: str, read_targets: Callable[[], dict[int, dict[int, Any]]], tables: dict[str, str],
          style_from_above: bool, new_columns: dict[str, list[str]]) -> _Plan:
    wb = _Workbook(pkg)
    part = _sheet_part(pkg, wb, sheet)
    targets = read_targets()
    plan = _Plan()
    formula_overwritten = False
    if targets:  # with only ``tables`` the sheet part is copied raw
        result = _patch_sheet(_read_big(pkg, part), targets, wb.date1904, sheet, style_from_above)
        # The zip writer takes an iterable of chunks as well as bytes: no 400 MB join.
        info = pkg.info(part)
        plan.replaced[info.filename] = result.chunks  # type: ignore[assignment]
        if info.file_size > FAST_DEFLATE_BYTES:
            plan.levels[info.filename] = 1
        formula_overwritten = result.formula_overwritten
    for table_part, new_text in _table_edits(pkg, part, sheet, tables, new_columns).items():
        plan.replaced[pkg.info(table_part).filename] = new_text
    if formula_overwritten:
        _drop_calc_chain(pkg, wb, plan)
    wb_text = _full_calc_on_load(wb.text)
    if wb_text != wb.text:
        plan.replaced[pkg.info(wb.part).filename] = _encode(wb_text, pkg.read(wb.part))
    return plan


def _sheet_part(pkg: _Package, wb: _Workbook, name: str) -> str:
    """The worksheet part of sheet ``name`` (Excel compares sheet names case-insensitively)."""
    match = next((s for s in wb.sheets if s.name == name), None) or \
        next((s for s in wb.sheets if s.name.casefold() == name.casefold()), None)
    if match is None:
        listed = ", ".join(repr(s.name) for s in wb.sheets)
        raise OutputError(f"no sheet named {name!r}", f"the workbook has {listed}")
    rel = next((r for r in wb.rels if r.id == match.rid), None)
    if rel is None or match.part is None or not pkg.has(match.part):
        raise UnreadableWorkbook(f"sheet {name!r} has no worksheet part", "open the file in Excel and save it again")
    if rel.type != REL_WORKSHEET:
        raise OutputError(f"sheet {name!r} is not a worksheet (a chart or dialog sheet)", "choose a worksheet")
    return match.part


def _read_big(pkg: _Package, part: str) -> bytes:
    """A worksheet part's bytes. Sheets may be far bigger than the metadata parts
    :meth:`_Package.read` allows; :func:`check_package` has already refused bombs."""
    info = pkg.info(part)
    if info.file_size > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableWorkbook(f"part {info.filename} is {info.file_size:,} bytes", "split the workbook")
    try:
        data = pkg.zf.read(info)
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, OSError
        raise UnreadableWorkbook(f"part {info.filename} is damaged ({exc})", "open the file in Excel and save it again") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableWorkbook(f"part {info.filename} is UTF-16", "open the file in Excel and save it again")
    return data


def _parse_targets(cells: Mapping[str, object]) -> dict[int, dict[int, Any]]:
    """row → {col → value}; a bad or out-of-range reference is the caller's error, named.

    References written the plain way ("K12") are read with one regex and a table lookup;
    anything else ("$K$12", " k12 ", a non-str key) goes through :func:`parse_cell`.
    """
    by_row: dict[int, dict[int, Any]] = {}
    plain = _PLAIN_REF.fullmatch
    numbers = _column_numbers()
    for ref, value in cells.items():
        m = plain(ref) if type(ref) is str else None
        col = numbers.get(m.group(1)) if m else None
        if col is not None:
            row = int(m.group(2))
        else:
            row, col = _parse_ref(ref)
        if not 1 <= row <= MAX_ROWS:
            _out_of_sheet(ref)
        cols = by_row.get(row)
        if cols is None:
            by_row[row] = {col: value}
        elif col in cols:
            raise OutputError(f"cell {ref!r} is given twice", "give each cell once")
        else:
            cols[col] = value
    return by_row


def _parse_ref(ref: object) -> tuple[int, int]:
    try:
        row, col = parse_cell(str(ref))
    except ValueError:
        raise OutputError(f"bad cell reference {ref!r}", "use A1 references such as 'C7'") from None
    if not (1 <= row <= MAX_ROWS and 1 <= col <= MAX_COLS):
        _out_of_sheet(ref)
    return row, col


def _out_of_sheet(ref: object) -> None:
    raise OutputError(f"cell reference {ref!r} is outside the sheet",
                      f"Excel has rows 1–{MAX_ROWS:,} and columns A–{col_letter(MAX_COLS)}")


def _check_rows(rows: Mapping[int, Mapping[int, object]]) -> dict[int, dict[int, Any]]:
    """:func:`patch_rows`' cells as a fresh row → {col → value}, positions checked."""
    out: dict[int, dict[int, Any]] = {}
    for row, cols in rows.items():
        row = int(row)
        if row in out:
            raise OutputError(f"row {row} is given twice", "give each row once")
        checked = {int(c): v for c, v in cols.items()}
        if len(checked) != len(cols):
            raise OutputError(f"a column of row {row} is given twice", "give each cell once")
        for col in checked:
            if not (1 <= row <= MAX_ROWS and 1 <= col <= MAX_COLS):
                _out_of_sheet(f"{col_letter(col) if col >= 1 else col}{row}")
        if checked:
            out[row] = checked
    return out


#: "K12" the way every program writes it (no $, upper case, no leading zero in the row).
_PLAIN_REF = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,6})")
_COLUMN_NUMBERS: dict[str, int] = {}
_COLUMN_NUMBERS_B: dict[bytes, int] = {}


def _column_numbers() -> dict[str, int]:
    """Column letters → number for every column Excel has ("A" → 1 … "XFD" → 16384), built
    once per process: a dict lookup is far cheaper than converting letters cell by cell."""
    if not _COLUMN_NUMBERS:
        _COLUMN_NUMBERS.update((col_letter(c), c) for c in range(1, MAX_COLS + 1))
        _COLUMN_NUMBERS_B.update((k.encode(), v) for k, v in _COLUMN_NUMBERS.items())
    return _COLUMN_NUMBERS


def _column_numbers_b() -> dict[bytes, int]:
    _column_numbers()
    return _COLUMN_NUMBERS_B


# =========================================================================== cell values

def _cell_content(value: Any, p: str, date1904: bool) -> tuple[str | None, str]:
    """(``t`` attribute or None, the cell's child elements) for a new value."""
    if isinstance(value, Formula):
        text = value.text.removeprefix("=")
        return None, f"<{p}f>{xml_text(clean_text(text))}</{p}f>"
    if isinstance(value, str):
        if not value:
            return None, ""
        return "inlineStr", f'<{p}is><{p}t xml:space="preserve">{xml_text(clean_text(value))}</{p}t></{p}is>'
    if isinstance(value, (bool, np.bool_)):
        return "b", f"<{p}v>{int(bool(value))}</{p}v>"
    if _missing(value):
        return None, ""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, (dt.datetime, dt.date)):
        serial = date_serial(value, date1904)
        if serial is None:  # before 1900-03-01 (or the 1904 epoch): Excel has no serial for it
            return _cell_content(value.isoformat(), p, date1904)
        return None, f"<{p}v>{_number(serial)}</{p}v>"
    if isinstance(value, dt.time):
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return None, f"<{p}v>{_number(seconds / 86400)}</{p}v>"
    if isinstance(value, _NUMBERS):
        number = float(value)
        if math.isinf(number):
            raise OutputError(f"cannot write {value!r} to a cell", "Excel has no infinite numbers")
        if isinstance(value, (int, np.integer)) and abs(int(value)) < 2**53:
            return None, f"<{p}v>{int(value)}</{p}v>"
        return None, f"<{p}v>{_number(number)}</{p}v>"
    raise TypeError(f"cannot write a {type(value).__name__} to a cell: {value!r}")


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:  # NaN, pd.NA and NaT are the values unequal to themselves (pd.NA raises on bool())
        return bool(value != value)  # noqa: PLR0124
    except (TypeError, ValueError):
        return True


# =========================================================================== worksheet

_ATTR = re.compile(rb"""([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")
_CELL_REF = re.compile(rb"^([A-Za-z]{1,3})([0-9]+)$")
#: Attributes of a cell that describe its old value, not its place or look: ``t`` (type),
#: ``cm`` (cell metadata: dynamic-array formulas) and ``vm`` (value metadata: rich values,
#: pictures in cells). They go; ``r``, ``s``, ``ph`` and unknown attributes stay.
_VALUE_ATTRS = {b"t", b"cm", b"vm"}


@dataclass
class _SheetResult:
    chunks: list  # bytes / memoryview pieces of the new part, in order
    formula_overwritten: bool = False


@dataclass
class _Tags:
    """Compiled patterns for one namespace prefix (``b""`` or ``b"x:"``)."""

    p: bytes
    row: re.Pattern = field(init=False)
    cell: re.Pattern = field(init=False)
    formula: re.Pattern = field(init=False)

    def __post_init__(self) -> None:
        p = re.escape(self.p)
        # A row start tag with its r (any attribute order; r is optional in the schema).
        self.row = re.compile(rb"<" + p + rb"row(?=[\s/>])(?:[^>]*?\sr\s*=\s*[\"'](\d+)[\"'])?[^>]*?(/?)>")
        self.cell = re.compile(rb"<" + p + rb"c(?=[\s/>])([^>]*?)(/?)>")
        self.formula = re.compile(rb"<" + p + rb"f(?=[\s/>])([^>]*?)/?>")


def _attrs(tag_body: bytes) -> list[tuple[bytes, bytes]]:
    return [(m.group(1), m.group(2)[1:-1]) for m in _ATTR.finditer(tag_body)]


def _patch_sheet(data: bytes, targets: dict[int, dict[int, Any]], date1904: bool, sheet: str,
                 style_from_above: bool = False) -> _SheetResult:
    """Rebuild the touched rows of the worksheet ``data``; keep every other byte."""
    head = data[:65536].decode("utf-8", "replace")
    p = _prefix(head, "worksheet")
    tags = _Tags(p.encode())
    pb = tags.p
    sd = re.search(rb"<" + re.escape(pb) + rb"sheetData(?=[\s/>])[^>]*?(/?)>", data)
    if not sd:
        raise UnreadableWorkbook(f"sheet {sheet!r} has no cell data", "open the file in Excel and save it again")
    edits: list[tuple[int, int, bytes]] = []
    if sd.group(1):  # <sheetData/>: an empty sheet
        body_start = body_end = sd.end()
        edits_open = (sd.start(), sd.end())
        rows_nums: list[int] = []
        rows_starts: list[int] = []
    else:
        body_start = sd.end()
        body_end = data.find(b"</" + pb + b"sheetData>", body_start)
        if body_end < 0:
            raise UnreadableWorkbook(f"sheet {sheet!r} is truncated", "open the file in Excel and save it again")
        edits_open = None
        rows_nums, rows_starts = _row_index(data, tags, body_start, body_end, sheet)
    col_styles = _column_styles(data[:sd.start()], pb)
    arrays = _array_ranges(data, tags, body_start, body_end)
    ctx = _RowContext(tags, date1904, col_styles, arrays, sheet)
    patched: set[int] = set()   # indices of rebuilt rows
    pinned: set[int] = set()    # indices of rows right after an inserted row
    for row in sorted(targets):
        i = bisect.bisect_left(rows_nums, row)
        ctx.above = ctx.row_styles(data, rows_starts[i - 1]) if style_from_above and i > 0 else {}
        if i < len(rows_nums) and rows_nums[i] == row:
            start = rows_starts[i]
            end, new = ctx.patch_row(data, start, row, targets[row])
            edits.append((start, end, new))
            patched.add(i)
        else:
            pos = rows_starts[i] if i < len(rows_starts) else body_end
            edits.append((pos, pos, ctx.new_row(row, targets[row], None)))
            if i < len(rows_starts):
                pinned.add(i)
    for i in sorted(pinned - patched):
        pin = _pin_row(data, tags, rows_starts[i], rows_nums[i])
        if pin:
            edits.append(pin)
    dim = _dimension_edit(data[:sd.start()], pb, targets)
    if dim:
        edits.append(dim)
    if edits_open is not None:
        rows = b"".join(new for s, e, new in edits if s == e == body_start)
        edits = [e for e in edits if not (e[0] == e[1] == body_start)]
        opening = data[sd.start():sd.end() - 2].rstrip() + b">"
        edits.append((edits_open[0], edits_open[1], opening + rows + b"</" + pb + b"sheetData>"))
    return _SheetResult(_splice(data, edits), ctx.formula_overwritten)


def _row_index(data: bytes, tags: _Tags, start: int, end: int, sheet: str) -> tuple[list[int], list[int]]:
    """Row numbers and start offsets of every ``<row>`` in the sheet data, in file order.

    One regex pass over the sheet; a row without ``r`` is the row after the previous one.
    """
    nums: list[int] = []
    starts: list[int] = []
    prev = 0
    for m in tags.row.finditer(data, start, end):
        r = int(m.group(1)) if m.group(1) else prev + 1
        if r <= prev:
            raise UnreadableWorkbook(f"the rows of sheet {sheet!r} are out of order (row {r} after {prev})",
                                     "open the file in Excel and save it again")
        nums.append(r)
        starts.append(m.start())
        prev = r
    return nums, starts


def _pin_row(data: bytes, tags: _Tags, start: int, num: int) -> tuple[int, int, bytes] | None:
    """An edit giving the row after an inserted one an explicit ``r`` when it relied on the
    implicit "previous + 1" numbering, which the new row in front of it would shift."""
    m = tags.row.match(data, start)
    if m and not m.group(1):
        return m.start(), m.end(), _with_row_number(data[m.start():m.end()], num)
    return None


def _with_row_number(tag: bytes, num: int) -> bytes:
    return _set_attr(tag.decode("utf-8"), "r", str(num)).encode("utf-8")


def _column_styles(before: bytes, pb: bytes) -> list[tuple[int, int, int]]:
    """(min col, max col, style) of the ``<col>`` elements that carry a style."""
    out = []
    for m in re.finditer(rb"<" + re.escape(pb) + rb"col(?=[\s/>])([^>]*)>", before):
        a = dict(_attrs(m.group(1)))
        try:
            if a.get(b"style") and int(a[b"style"]):
                out.append((int(a[b"min"]), int(a[b"max"]), int(a[b"style"])))
        except (KeyError, ValueError):
            continue
    return out


def _array_ranges(data: bytes, tags: _Tags, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """Ranges of multi-cell array formulas (and data tables): Excel refuses to change part of one."""
    if b"array" not in data[start:end] and b"dataTable" not in data[start:end]:
        return []
    out = []
    for m in tags.formula.finditer(data, start, end):
        a = dict(_attrs(m.group(1)))
        if a.get(b"t") in (b"array", b"dataTable") and a.get(b"ref"):
            try:
                out.append(parse_range(a[b"ref"].decode()))
            except ValueError:
                continue
    return [r for r in out if (r[0], r[1]) != (r[2], r[3])]


class _RowContext:
    """Rebuilds rows: knows the prefix, the date system, column styles and array formulas.

    Speed matters here (the classify step patches six cells on every ledger row), so the
    bytes that repeat are computed once per call: the content of each distinct text, the
    attribute text of each distinct kept-attribute list, each column's letters.
    """

    def __init__(self, tags: _Tags, date1904: bool, col_styles: list[tuple[int, int, int]],
                 arrays: list[tuple[int, int, int, int]], sheet: str):
        self.tags = tags
        self.p = tags.p.decode()
        self.date1904 = date1904
        self.col_styles = col_styles
        self.arrays = arrays
        self.sheet = sheet
        self.formula_overwritten = False
        self.above: dict[int, bytes] = {}  # col → style of the row above (style_from_above)
        pb = tags.p
        self._open = b"<" + pb + b"c"                  # every cell starts so
        self._open_r = b"<" + pb + b'c r="'            # ... and a cell written the usual way so
        self._cell_close = b"</" + pb + b"c>"
        self._row_close = b"</" + pb + b"row>"
        self._v = (f"<{self.p}v>".encode(), f"</{self.p}v>".encode())
        # Cells as Excel and every library write them: r first, double quotes, upper case.
        self._letters_re = re.compile(re.escape(self._open_r) + rb'([A-Z]{1,3})[0-9]+"')
        self._numbers = _column_numbers_b()
        self._texts: dict[str, tuple[bytes, bytes]] = {}      # text → (t attribute, content)
        self._attr_text: dict[tuple, bytes] = {}               # kept attributes → their text
        self._letter: dict[int, bytes] = {}                    # column → its letters
        self._heads: dict[int, bytes] = {}                     # column → b'<c r="K'
        self._tails: dict[tuple, bytes] = {}                   # (column, style, text) → rest of a new cell
        self._col_style: dict[int, bytes | None] = {}          # column → its <col> style
        # The last row shape seen: (cell letters, their columns, plan per set of patched columns).
        self._shape: tuple[list[bytes], list[int], dict[tuple[int, ...], list]] = ([], [], {})

    def default_style(self, col: int, row_style: bytes | None) -> bytes | None:
        """The style of a new cell: the row above's (when asked for), else the style Excel
        shows for the empty cell: its row's (when customFormat) or its column's."""
        if col in self.above:
            return self.above[col]
        if row_style is not None:
            return row_style
        for c1, c2, s in self.col_styles:
            if c1 <= col <= c2:
                return str(s).encode()
        return None

    def check_not_in_array(self, row: int, col: int) -> None:
        for r1, c1, r2, c2 in self.arrays:
            if r1 <= row <= r2 and c1 <= col <= c2:
                raise OutputError(f"cell {col_letter(col)}{row} of sheet {self.sheet!r} is part of the array formula "
                                  f"{range_ref(r1, c1, r2, c2)}", "delete the array formula in Excel first")

    def content(self, value: Any) -> tuple[bytes, bytes]:
        """(`` t="…"`` or b"", the cell's child elements) for a new value, as bytes.

        Texts repeat a lot (categories, sources, rule names), so each is escaped once;
        floats and blanks, the other common values, skip :func:`_cell_content`'s dispatch.
        """
        kind = type(value)
        if kind is str:
            done = self._texts.get(value)
            if done is None:
                t, inner = _cell_content(value, self.p, self.date1904)
                done = self._texts[value] = (b' t="' + t.encode() + b'"' if t else b"", inner.encode("utf-8"))
            return done
        if value is None:
            return b"", b""
        if (kind is float or kind is np.float64) and not math.isinf(value):
            if math.isnan(value):  # a blank cell
                return b"", b""
            return b"", self._v[0] + _number(float(value)).encode() + self._v[1]
        t, inner = _cell_content(value, self.p, self.date1904)
        return (b' t="' + t.encode() + b'"' if t else b""), inner.encode("utf-8")

    def render(self, row: int, col: int, value: Any, keep: list[tuple[bytes, bytes]]) -> bytes:
        """A whole ``<c>`` element: ``keep`` attributes (r first), the new type and content."""
        if self.arrays:
            self.check_not_in_array(row, col)
        t, inner = self.content(value)
        key = tuple(keep)
        attrs = self._attr_text.get(key)
        if attrs is None:
            # Values stay escaped as they were; one that was in single quotes may hold a '"'.
            attrs = self._attr_text[key] = b"".join(b" " + k + b'="' + v.replace(b'"', b"&quot;") + b'"'
                                                    for k, v in keep if k != b"r")
        letters = self._letter.get(col)
        if letters is None:
            letters = self._letter[col] = col_letter(col).encode()
        head = self._open_r + letters + str(row).encode() + b'"' + attrs + t
        if not inner:
            return head + b"/>"
        return head + b">" + inner + self._cell_close

    def render_new(self, row: int, row_b: bytes, col: int, value: Any, row_style: bytes | None) -> bytes:
        """``render(row, col, value, self._style_attr(col, row_style))``, faster: a new cell
        is ``<c r="`` + letters + row + a tail that only depends on the column, the style and
        the value, and the tails of texts and blanks are made once per call. ``row_b`` is
        ``str(row).encode()``."""
        if self.arrays:
            self.check_not_in_array(row, col)
        style = self.above.get(col) if self.above else None
        if style is None:
            style = row_style if row_style is not None else self._column_style(col)
        if value is None or type(value) is str:
            key = (col, style, value)
            tail = self._tails.get(key)
            if tail is None:
                tail = self._tails[key] = self._tail(style, value)
        else:
            tail = self._tail(style, value)
        head = self._heads.get(col)
        if head is None:
            head = self._heads[col] = self._open_r + col_letter(col).encode()
        return head + row_b + tail

    def _column_style(self, col: int) -> bytes | None:
        """The style of the ``<col>`` element covering ``col`` (see :meth:`default_style`)."""
        if col not in self._col_style:
            self._col_style[col] = next((str(s).encode() for c1, c2, s in self.col_styles if c1 <= col <= c2), None)
        return self._col_style[col]

    def _tail(self, style: bytes | None, value: Any) -> bytes:
        t, inner = self.content(value)
        attrs = b' s="' + style.replace(b'"', b"&quot;") + b'"' if style is not None else b""
        if not inner:
            return b'"' + attrs + t + b"/>"
        return b'"' + attrs + t + b">" + inner + self._cell_close

    def new_row(self, row: int, values: dict[int, Any], row_style: bytes | None) -> bytes:
        row_b = str(row).encode()
        cells = b"".join(self.render_new(row, row_b, col, values[col], row_style) for col in sorted(values))
        return b"<" + self.tags.p + b'row r="' + str(row).encode() + b'">' + cells + b"</" + self.tags.p + b"row>"

    def _style_attr(self, col: int, row_style: bytes | None) -> list[tuple[bytes, bytes]]:
        s = self.default_style(col, row_style)
        return [(b"s", s)] if s is not None else []

    def row_styles(self, data: bytes, start: int) -> dict[int, bytes]:
        """col → ``s`` of the styled cells of the row starting at ``start``."""
        m = self.tags.row.match(data, start)
        if m.group(2):
            return {}
        end = data.find(b"</" + self.tags.p + b"row>", m.end())
        out: dict[int, bytes] = {}
        col = 0
        for cm in self.tags.cell.finditer(data, m.end(), end if end >= 0 else m.end()):
            a = dict(_attrs(cm.group(1)))
            rm = _CELL_REF.match(a.get(b"r", b""))
            col = _col_number(rm.group(1)) if rm else col + 1
            if a.get(b"s"):
                out[col] = a[b"s"]
        return out

    def patch_row(self, data: bytes, start: int, row: int, values: dict[int, Any]) -> tuple[int, bytes]:
        """(end offset of the old row, the new row's bytes)."""
        done = self._patch_row_fast(data, start, row, values)
        return done if done is not None else self._patch_row_general(data, start, row, values)

    def _patch_row_fast(self, data: bytes, start: int, row: int, values: dict[int, Any]) -> tuple[int, bytes] | None:
        """:meth:`_patch_row_general` for the row shape Excel, LibreOffice and openpyxl write,
        without visiting the cells that stay; None for any other shape.

        The shape: the row has ``r``, a closing tag, and every cell in it starts
        ``<c r="LETTERS123"`` (r first, double quotes) with columns strictly increasing. Then
        the row text split at those starts gives, per cell, the cell and the text after it,
        so a patched column is found by bisection and only the cells that change, and the
        last one (new columns go after it), are parsed. For well-formed XML the bytes are
        exactly those of the general path (``tests/test_writer_speed_equivalence.py``
        compares the two on many row shapes).
        """
        m = self.tags.row.match(data, start)
        if m is None or m.group(2) or not m.group(1):
            return None
        body = m.end()
        end = data.find(self._row_close, body)
        if end < 0:
            return None  # the general path names the error
        seg = data[body:end]
        pieces = seg.split(self._open_r)
        n = len(pieces) - 1
        if n:
            letters = self._letters_re.findall(seg)
            if len(letters) != n or seg.count(self._open) != n:
                return None
            if letters != self._shape[0]:  # rows of a ledger mostly have the same cells
                numbers = self._numbers
                cols = [numbers.get(x) for x in letters]
                if None in cols or not all(map(operator.lt, cols, cols[1:])):
                    return None
                self._shape = (letters, cols, {})
            cols, plans = self._shape[1], self._shape[2]
        elif seg.count(self._open):
            return None
        else:
            cols, plans = [], {}
        keys = tuple(sorted(values))
        plan = plans.get(keys)
        if plan is None:  # (column, index of the cell at or after it, whether that cell is it)
            plan = plans[keys] = [(col, k, k < n and cols[k] == col)
                                  for col in keys for k in (bisect.bisect_left(cols, col),)]
        tag = data[m.start():body]
        row_style = None
        if b"customFormat" in tag:
            row_attrs = dict(_attrs(tag))
            row_style = row_attrs.get(b"s") if row_attrs.get(b"customFormat") in (b"1", b"true") else None
        # The changes, rendered column by column in ascending order as the general path
        # does (so that the same error surfaces first), grouped by where they go.
        row_b = str(row).encode()
        before: dict[int, list[bytes]] = {}               # cell index → new cells right before it
        replaced: dict[int, tuple[bytes, bytes]] = {}     # cell index → (new cell, text after the old one)
        after: list[bytes] = []                           # new cells after the last cell
        for col, k, existing in plan:
            if existing:
                split = self._split_cell(pieces[k + 1])
                if split is None:
                    return None
                attr_text, inner, trailing = split
                self._check_old_formula(inner, row, col)
                keep = [(a, v) for a, v in _attrs(attr_text) if a not in _VALUE_ATTRS]
                replaced[k] = (self.render(row, col, values[col], keep), trailing)
            elif k < n:
                before.setdefault(k, []).append(self.render_new(row, row_b, col, values[col], row_style))
            else:
                after.append(self.render_new(row, row_b, col, values[col], row_style))
        close_end = end + len(self._row_close)
        if n == 0:  # no cells: the new ones go right after the start tag, as in the general path
            return close_end, b"".join([tag, *after, seg, self._row_close])
        last = None  # (the last cell's text, the text after it) when new cells follow it
        if after and n - 1 not in replaced:
            split = self._split_cell(pieces[n])
            if split is None:
                return None
            trailing = split[2]
            last = (pieces[n][:len(pieces[n]) - len(trailing)], trailing)
        if not before and not replaced:  # the usual case: new columns on the right only
            cut = len(seg) - len(last[1])
            return close_end, b"".join([tag, seg[:cut], *after, seg[cut:], self._row_close])
        out = [tag, pieces[0]]
        open_r = self._open_r
        for k in range(n):  # rows are short: a handful of list items
            if k in before:
                out += before[k]
            if k in replaced:
                cell, trailing = replaced[k]
            elif k == n - 1 and after:
                cell, trailing = open_r + last[0], last[1]
            else:
                out.append(open_r)
                out.append(pieces[k + 1])
                continue
            out.append(cell)
            if k == n - 1:
                out += after
            out.append(trailing)
        out.append(self._row_close)
        return close_end, b"".join(out)

    def _split_cell(self, piece: bytes) -> tuple[bytes, bytes, bytes] | None:
        """A piece of a row split at ``<c r="`` → (the start tag's attribute text as the general
        path's cell regex captures it, the cell after its start tag, the text after the cell);
        None when the cell is not closed (the general path reports that)."""
        gt = piece.find(b">")
        if gt < 0:
            return None
        if piece[gt - 1:gt] == b"/":
            return b' r="' + piece[:gt - 1], b"", piece[gt + 1:]
        close = piece.find(self._cell_close, gt + 1)
        if close < 0:
            return None
        stop = close + len(self._cell_close)
        return b' r="' + piece[:gt], piece[gt + 1:stop], piece[stop:]

    def _patch_row_general(self, data: bytes, start: int, row: int, values: dict[int, Any]) -> tuple[int, bytes]:
        """Any row shape: walks every cell (implicit positions, prefixes, odd quoting)."""
        tags = self.tags
        m = tags.row.match(data, start)
        row_attrs = dict(_attrs(data[m.start():m.end()]))
        row_style = row_attrs.get(b"s") if row_attrs.get(b"customFormat") in (b"1", b"true") else None
        if m.group(2):  # <row …/>: no cells yet
            tag = data[m.start():m.end() - 2].rstrip()
            if not m.group(1):
                tag = _with_row_number(tag + b">", row)[:-1]
            cells = b"".join(self.render(row, col, values[col], self._style_attr(col, row_style)) for col in sorted(values))
            return m.end(), tag + b">" + cells + b"</" + tags.p + b"row>"
        close = b"</" + tags.p + b"row>"
        end = data.find(close, m.end())
        if end < 0:
            raise UnreadableWorkbook(f"row {row} of sheet {self.sheet!r} is not closed",
                                     "open the file in Excel and save it again")
        out = [data[m.start():m.end()] if m.group(1) else _with_row_number(data[m.start():m.end()], row)]
        pending = sorted(values)
        pos = m.end()
        col = 0
        cell_close = b"</" + tags.p + b"c>"
        while True:
            cm = tags.cell.search(data, pos, end)
            if not cm:
                break
            if cm.group(2):
                cell_end = cm.end()
            else:
                cell_end = data.find(cell_close, cm.end(), end)
                if cell_end < 0:
                    raise UnreadableWorkbook(f"a cell of row {row} of sheet {self.sheet!r} is not closed",
                                             "open the file in Excel and save it again")
                cell_end += len(cell_close)
            attrs = _attrs(cm.group(1))
            ref = dict(attrs).get(b"r")
            rm = _CELL_REF.match(ref) if ref else None
            col = _col_number(rm.group(1)) if rm else col + 1
            out.append(data[pos:cm.start()])  # whitespace between cells
            while pending and pending[0] < col:
                c = pending.pop(0)
                out.append(self.render(row, c, values[c], self._style_attr(c, row_style)))
            if pending and pending[0] == col:
                pending.pop(0)
                self._check_old_formula(data[cm.end():cell_end], row, col)
                keep = [(k, v) for k, v in attrs if k not in _VALUE_ATTRS]
                out.append(self.render(row, col, values[col], keep))
            elif ref is None:  # implicit position: pin it, cells may be inserted before it
                tag = data[cm.start():cm.end()]
                out.append(tag[:2 + len(tags.p)] + b' r="' + f"{col_letter(col)}{row}".encode() + b'"'
                           + tag[2 + len(tags.p):] + data[cm.end():cell_end])
            else:
                out.append(data[cm.start():cell_end])
            pos = cell_end
        for c in pending:
            out.append(self.render(row, c, values[c], self._style_attr(c, row_style)))
        out.append(data[pos:end + len(close)])  # row extLst (if any) and </row>
        return end + len(close), b"".join(out)

    def _check_old_formula(self, inner: bytes, row: int, col: int) -> None:
        """Refuse to overwrite the cell holding a shared formula's text; note any formula."""
        fm = self.tags.formula.search(inner)
        if not fm:
            return
        self.formula_overwritten = True
        a = dict(_attrs(fm.group(1)))
        if a.get(b"t") == b"shared" and a.get(b"ref"):
            raise OutputError(
                f"cell {col_letter(col)}{row} of sheet {self.sheet!r} holds a shared formula that the cells "
                f"{a[b'ref'].decode()} copy", "write the formula into each of those cells in Excel (or re-save the file) first")


def _col_number(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def _dimension_edit(before: bytes, pb: bytes, targets: dict[int, dict[int, Any]]) -> tuple[int, int, bytes] | None:
    """Grow ``<dimension ref>`` to cover the patched cells (it is a hint, so never shrink it)."""
    m = re.search(rb"<" + re.escape(pb) + rb"dimension(?=[\s/>])[^>]*?\sref\s*=\s*([\"'])([^\"']*)\1", before)
    if not m or not targets:
        return None
    rows = list(targets)
    cols = [c for row in targets.values() for c in row]
    try:
        r1, c1, r2, c2 = parse_range(m.group(2).decode())
    except ValueError:
        return None
    n1, m1, n2, m2 = min(r1, min(rows)), min(c1, min(cols)), max(r2, max(rows)), max(c2, max(cols))
    if (n1, m1, n2, m2) == (r1, c1, r2, c2):
        return None
    return m.start(2), m.end(2), range_ref(n1, m1, n2, m2).encode()


def _splice(data: bytes, edits: list[tuple[int, int, bytes]]) -> list:
    """The pieces of ``data`` with ``edits`` applied, as zero-copy views where unchanged."""
    view = memoryview(data)
    out: list = []
    pos = 0
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < pos:
            raise AssertionError("overlapping edits")  # a bug, not a user error
        out.append(view[pos:start])
        out.append(new)
        pos = end
    out.append(view[pos:])
    return out


# =========================================================================== tables

def _table_edits(pkg: _Package, sheet_part: str, sheet: str, tables: dict[str, str],
                 new_columns: dict[str, list[str]] | None = None) -> dict[str, bytes]:
    """New bytes of each table part whose ref changes (the last row, and the last column by
    the columns named in ``new_columns``)."""
    new_columns = {k.casefold(): v for k, v in (new_columns or {}).items()}
    if not tables and not new_columns:
        return {}
    found = {}
    for rel in pkg.rels(sheet_part):
        if rel.type == REL_TABLE and not rel.external and pkg.has(rel.target):
            root = pkg.xml(rel.target)
            found[rel.target] = root.attrib
    by_name = {}
    for part, attrib in found.items():
        for key in ("displayName", "name"):
            if attrib.get(key):
                by_name.setdefault(attrib[key].casefold(), part)
    out: dict[str, bytes] = {}
    new_refs: dict[str, tuple[int, int, int, int]] = {}
    tables = dict(tables)
    for key, added in new_columns.items():  # columns added without a new row count: same rows
        if key not in by_name:
            raise OutputError(f"no Table named {key!r} on sheet {sheet!r}", "name a Table of that sheet")
        if not any(name.casefold() == key for name in tables):
            r1, c1, r2, c2 = parse_range(found[by_name[key]].get("ref", "A1"))
            tables[key] = range_ref(r1, c1, r2, c2 + len(added))
    for name, ref in tables.items():
        part = by_name.get(name.casefold())
        if part is None:
            listed = ", ".join(sorted(a.get("displayName") or a.get("name", "") for a in found.values())) or "none"
            raise OutputError(f"no Table named {name!r} on sheet {sheet!r}", f"its Tables: {listed}")
        added = list(new_columns.get(name.casefold(), []))
        new_refs[part] = _check_table_ref(name, found[part], ref, len(added))
        raw = pkg.read(part)
        text = _retarget_table(_decode(raw, part), found[part], new_refs[part])
        out[part] = _encode(_add_table_columns(text, name, added) if added else text, raw)
    for part, (r1, c1, r2, c2) in new_refs.items():
        for other, attrib in found.items():
            if other == part:
                continue
            o1, oc1, o2, oc2 = new_refs.get(other) or parse_range(attrib.get("ref", "A1"))
            if r1 <= o2 and o1 <= r2 and c1 <= oc2 and oc1 <= c2:
                raise OutputError(f"Table {found[part].get('displayName')!r} would overlap Table "
                                  f"{attrib.get('displayName')!r}", "move the other Table first")
    return out


def _table_rows(attrib: Mapping[str, str]) -> tuple[int, int]:
    """(header rows, totals rows) of a Table (header defaults to 1, totals to 0)."""
    try:
        return int(attrib.get("headerRowCount", "1")), int(attrib.get("totalsRowCount", "0"))
    except ValueError:
        return 1, 0


def _check_table_ref(name: str, attrib: Mapping[str, str], ref: str, added_columns: int = 0
                     ) -> tuple[int, int, int, int]:
    try:
        new = parse_range(ref)
        old = parse_range(attrib.get("ref", ""))
    except ValueError:
        raise OutputError(f"bad Table range {ref!r} for {name!r}", "use a range such as 'A1:O61'") from None
    if (new[0], new[1], new[3]) != (old[0], old[1], old[3] + added_columns):
        raise OutputError(f"Table {name!r} is {range_ref(*old)}; only its last row can change"
                          f"{f' and {added_columns} column(s) be added' if added_columns else ''}, not to {ref!r}",
                          f"keep the range starting at {range_ref(old[0], old[1], old[0], old[1])} "
                          f"and ending in column {col_letter(old[3] + added_columns)}")
    if new[3] > MAX_COLS:
        raise OutputError(f"Table {name!r} cannot grow past column {col_letter(MAX_COLS)}", "remove unused columns")
    header, totals = _table_rows(attrib)
    if new[2] < new[0] + header + totals or new[2] > MAX_ROWS:
        raise OutputError(f"Table {name!r} cannot end at row {new[2]}", "a Table needs at least one data row")
    return new


def _retarget_table(text: str, attrib: Mapping[str, str], new: tuple[int, int, int, int]) -> str:
    """The table part with its ``ref``, its AutoFilter's and its sort ranges moved."""
    p = _prefix(text, "table")
    old = parse_range(attrib.get("ref", ""))
    _, totals = _table_rows(attrib)
    old_data_end, new_data_end = old[2] - totals, new[2] - totals
    edit = _Edit(text)
    root = re.search(rf"<{re.escape(p)}table(?=[\s>])[^>]*>", text)
    edit.replace(root.start(), root.end(), _set_attr(root.group(0), "ref", range_ref(*new)))
    # The AutoFilter covers header and data rows but not the totals row.
    for local, fixed_end in (("autoFilter", True), ("sortState", False), ("sortCondition", False)):
        for s, e in _elements(text, p, local):
            m = re.match(rf"<{re.escape(p)}{local}(?=[\s/>])[^>]*>", text[s:e])
            tag = m.group(0)
            ref_m = re.search(r"\sref\s*=\s*[\"']([^\"']*)[\"']", tag)
            if not ref_m:
                continue
            try:
                r1, c1, r2, c2 = parse_range(ref_m.group(1))
            except ValueError:
                continue
            if fixed_end or r2 == old_data_end:
                r2 = new_data_end
            else:
                continue
            if fixed_end and c2 == old[3]:  # the AutoFilter spans every column, new ones too
                c2 = new[3]
            edit.replace(s, s + len(tag), _set_attr(tag, "ref", range_ref(r1, c1, r2, c2)))
            if local == "autoFilter":
                break  # only the table's own AutoFilter
    return edit.apply()


def _add_table_columns(text: str, name: str, headers: list[str]) -> str:
    """The table part with ``<tableColumn>`` elements appended for ``headers``.

    Excel refuses ("repairs") a Table whose column names repeat (compared case-insensitively)
    or whose ids repeat, so both are checked; ids continue after the largest one.
    """
    p = _prefix(text, "table")
    spans = _elements(text, p, "tableColumns")
    if not spans:
        raise UnreadableWorkbook(f"Table {name!r} has no column list", "open the file in Excel and save it again")
    s, e = spans[0]
    block = text[s:e]
    ids = [int(i) for i in re.findall(r"<" + re.escape(p) + r"tableColumn\s[^>]*?\bid\s*=\s*[\"'](\d+)", block)]
    names = [html.unescape(n).casefold() for n in
             re.findall(r"<" + re.escape(p) + r"tableColumn\s[^>]*?\bname\s*=\s*\"([^\"]*)\"", block)]
    for header in headers:
        if header.casefold() in names:
            raise OutputError(f"Table {name!r} already has a column named {header!r}", "rename that column")
        names.append(header.casefold())
    next_id = max(ids, default=0) + 1
    added = "".join(f'<{p}tableColumn id="{next_id + i}" name="{xml_text(clean_text(h))}"/>'
                    for i, h in enumerate(headers))
    open_tag = re.match(rf"<{re.escape(p)}tableColumns(?=[\s/>])[^>]*>", block).group(0)
    if open_tag.endswith("/>"):  # an empty list written as <tableColumns/>: not valid, but be safe
        new_block = f"{_set_attr(open_tag[:-2] + '>', 'count', str(len(headers)))}{added}</{p}tableColumns>"
    else:
        count = len(ids) + len(headers)
        close = block.rfind(f"</{p}tableColumns>")
        new_block = _set_attr(open_tag, "count", str(count)) + block[len(open_tag):close] + added + block[close:]
    return text[:s] + new_block + text[e:]


# =========================================================================== workbook part

def _drop_calc_chain(pkg: _Package, wb: _Workbook, plan: _Plan) -> None:
    """Remove ``calcChain.xml``, its relationship and its content-type override.

    Excel rebuilds the chain on the next save; a chain that lists a cell which no longer
    holds a formula makes Excel report the file as damaged and "repair" it.
    """
    rels = [r for r in wb.rels if r.type == REL_CALC_CHAIN and not r.external]
    if not rels:
        return
    removed = {member_key(r.target) for r in rels if pkg.has(r.target)}
    plan.removed |= removed
    rels_info = pkg.info(wb.rels_part)
    plan.replaced[rels_info.filename] = _encode(
        _edit_rels(_decode(pkg.read(wb.rels_part), wb.rels_part), {r.id for r in rels}, []), pkg.read(wb.rels_part))
    ct = pkg.info("[Content_Types].xml").filename
    plan.replaced[ct] = _encode(_edit_content_types(_decode(pkg.read(ct), ct), removed, []), pkg.read(ct))


def _full_calc_on_load(text: str) -> str:
    """``text`` with ``<calcPr fullCalcOnLoad="1">``, so Excel recomputes every formula on open.

    Without it Excel shows the formulas' cached results, which were computed from the old
    numbers (or are absent where a formula was written without one).
    """
    p = _prefix(text, "workbook")
    spans = _elements(text, p, "calcPr")
    edit = _Edit(text)
    if spans:
        s, e = spans[0]
        tag = re.match(rf"<{re.escape(p)}calcPr(?=[\s/>])[^>]*>", text[s:e]).group(0)
        value = re.search(r"\sfullCalcOnLoad\s*=\s*[\"']([^\"']*)[\"']", tag)
        if value and value.group(1).strip().lower() in ("1", "true"):
            return text
        edit.replace(s, s + len(tag), _set_attr(tag, "fullCalcOnLoad", "1"))
        return edit.apply()
    for local in _BEFORE_CALC_PR:
        prev = _elements(text, p, local)
        if prev:
            edit.insert(prev[-1][1], f'<{p}calcPr fullCalcOnLoad="1"/>')
            return edit.apply()
    raise UnreadableWorkbook("the workbook lists no sheets", "open the file in Excel and save it again")
