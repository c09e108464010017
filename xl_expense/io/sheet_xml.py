"""Render one :class:`~xl_expense.io.sheet_model.NewSheet` as SpreadsheetML text.

:mod:`xl_expense.io.xlsx_package` splices the result into an existing workbook. This module
knows nothing about the package: the caller hands it the style indices it appended to
``styles.xml`` and an allocator for part names and table ids, and gets back the worksheet
XML, its relationships and the extra parts (tables, drawings, charts).

Text is written as inline strings (``t="inlineStr"``), so ``sharedStrings.xml`` of the
workbook stays untouched, and an inline string is never evaluated: ``=HYPERLINK(...)``
typed into a ledger stays the text ``=HYPERLINK(...)``. Only :class:`Formula` values become
``<f>`` elements.

Large sheets (the findings of a million-row ledger) are rendered column by column: a
column of strings is escaped in one pass over a joined string, numbers go through
``float.__repr__`` via ``map``, and only mixed columns fall back to a per-cell dispatch.
"""

from __future__ import annotations

import datetime as dt
import decimal
import heapq
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from xl_expense.errors import OutputError
from xl_expense.io.sheet_model import Block, Formula, NewSheet, TableSpec

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_TABLE = REL_NS + "/table"
REL_DRAWING = REL_NS + "/drawing"
CT_TABLE = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"

# Excel's limits (Excel specifications and limits).
MAX_ROWS = 1_048_576
MAX_COLS = 16_384
MAX_CELL_TEXT = 32_767           # characters in one cell
MAX_VALIDATION_LIST = 255        # characters of a literal list in a data validation
MAX_PROMPT = 255                 # characters of an input message
MAX_TABLE_NAME = 255

# Characters XML 1.0 forbids (control characters except tab, LF, CR; lone surrogates;
# U+FFFE/U+FFFF). Excel refuses the whole file if one appears, so they are dropped.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ILLEGAL_XML_BUT_NUL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Excel reads ``_xHHHH_`` in text as an escaped character; a literal one is written with
# its underscore escaped (``_x005F_``) so the reader shows exactly what the ledger said.
_EXCEL_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_CELL_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


# --------------------------------------------------------------------------- text helpers

def clean_text(text: str) -> str:
    """Drop characters XML cannot carry and cut the text to Excel's cell limit."""
    return _ILLEGAL_XML.sub("", text)[:MAX_CELL_TEXT]


def xml_text(text: str) -> str:
    """Escape cell text for element content (after :func:`clean_text`)."""
    text = _EXCEL_ESCAPE.sub(r"_x005F_\1", text)
    # A literal CR would be normalised to LF by every XML parser; a reference keeps it.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def xml_attr(text: str) -> str:
    """Escape text for an attribute value in double quotes."""
    return xml_attr_clean(_ILLEGAL_XML.sub("", str(text)))


def escape_texts(texts: list[str]) -> list[str]:
    """Clean and escape many cell texts at once.

    Joining the column with NUL (a character the cleaner removes anyway, so it cannot be
    data once cleaned) turns three regex/replace passes per cell into three per column.
    """
    if not texts:
        return []
    big = "\x00".join(texts)
    if big.count("\x00") != len(texts) - 1 or max(map(len, texts)) > MAX_CELL_TEXT:
        return [xml_text(clean_text(t)) for t in texts]
    big = _ILLEGAL_XML_BUT_NUL.sub("", big)
    return xml_text(big).split("\x00")


def escape_attrs(values: list[Any]) -> list[str]:
    """``[xml_attr(v) for v in values]`` with one pass of each replacement over the joined
    texts (the NUL separator is removed by the cleaner, so it cannot be data)."""
    texts = [str(v) for v in values]
    if not texts:
        return []
    big = "\x00".join(texts)
    if big.count("\x00") != len(texts) - 1:
        return [xml_attr(t) for t in texts]
    return xml_attr_clean(_ILLEGAL_XML_BUT_NUL.sub("", big)).split("\x00")


def xml_attr_clean(text: str) -> str:
    """The escaping half of :func:`xml_attr`, for text already cleaned."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#9;"))


def quote_sheet_name(name: str) -> str:
    """The sheet name as a formula reference prefix: ``'Q1 费用'`` (apostrophes doubled)."""
    return "'" + name.replace("'", "''") + "'"


def cell_location(sheet: str, cell: str) -> str:
    """A hyperlink location such as ``'Sheet 1'!D15`` for ``cell`` on ``sheet``."""
    return f"{quote_sheet_name(sheet)}!{cell}"


# --------------------------------------------------------------------------- references

def col_letter(col: int) -> str:
    """1 → A, 28 → AB (Excel's bijective base-26 column names)."""
    letters = ""
    while col > 0:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def parse_cell(ref: str) -> tuple[int, int]:
    """``"B7"`` → (row 7, col 2); ``$`` signs are ignored."""
    m = _CELL_REF.match(ref.strip())
    if not m:
        raise ValueError(f"not a cell reference: {ref!r}")
    letters, row = m.group(1).upper(), int(m.group(2))
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return row, col


def parse_range(ref: str) -> tuple[int, int, int, int]:
    """``"A1:M120"`` → (first row, first col, last row, last col); a single cell works too."""
    first, _, last = ref.partition(":")
    r1, c1 = parse_cell(first)
    r2, c2 = parse_cell(last) if last else (r1, c1)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def range_ref(r1: int, c1: int, r2: int, c2: int, absolute: bool = False) -> str:
    d = "$" if absolute else ""
    a = f"{d}{col_letter(c1)}{d}{r1}"
    b = f"{d}{col_letter(c2)}{d}{r2}"
    return a if a == b else f"{a}:{b}"


# --------------------------------------------------------------------------- context

@dataclass
class SheetContext:
    """What the renderer needs from the package it is writing into."""

    style_ids: dict[str, int]          # style key (sheet_model.STYLE_KEYS) → cellXfs index
    dxf_ids: dict[str, int]            # highlight key → dxfs index
    date1904: bool = False
    new_part: Callable[[str], str] = lambda pattern: pattern.format(1)  # "xl/tables/table{}.xml" → free name
    new_table: Callable[[str], tuple[int, str]] = lambda name: (1, name)  # wanted name → (id, unique name)


@dataclass
class RenderedSheet:
    """The worksheet part and what hangs off it. Part names have no leading slash."""

    xml: Iterable[bytes]  # the worksheet in pieces (the sheet data is rendered lazily)
    rels: list[tuple[str, str, str]] = field(default_factory=list)   # (rId, type, target part)
    parts: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # part → (bytes, content type)
    rows: int = 0  # rows of cell data (a size hint for compression)


# --------------------------------------------------------------------------- cell values

_EPOCH_1900 = dt.datetime(1899, 12, 30)   # serial 1 = 1900-01-01 (Excel keeps Lotus' 1900 leap-day bug;
_EPOCH_1904 = dt.datetime(1904, 1, 1)     # serials from 1900-03-01 on line up with this epoch)
_FIRST_DATE_1900 = dt.datetime(1900, 3, 1)
_NUMBER_TYPES = (int, float, np.integer, np.floating, decimal.Decimal)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) or isinstance(v, np.floating):
        return math.isnan(v)
    try:  # pandas NA / NaT without importing pandas here
        return v != v  # noqa: PLR0124 - NaN-like values are the only ones unequal to themselves
    except Exception:  # pd.NA raises on bool()
        return True


def date_serial(value: dt.datetime | dt.date, date1904: bool = False) -> float | None:
    """Excel's serial number for a date or datetime; None when Excel cannot show it."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    # Before 1900-03-01 the 1900 system is off by Lotus' phantom 29 Feb; before the epoch
    # Excel has no dates at all. Such values are written as ISO text instead.
    if value < (epoch if date1904 else _FIRST_DATE_1900):
        return None
    delta = value - epoch
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86_400_000_000


def _number_text(v: Any) -> str | None:
    f = float(v)
    if math.isnan(f) or math.isinf(f):
        return None
    if isinstance(v, (int, np.integer)) and abs(int(v)) < 2**53:
        return str(int(v))
    return float.__repr__(f)


class _Column:
    """Renders one column of a block as a piece of the row template plus one slot per row.

    A *dense* column (no blanks, one type) puts the whole cell markup into the template and
    only the value into the slot, so a row costs one ``str.format`` call. A *sparse* or
    mixed column puts ``<c r="B{0}" `` in the template and the rest of the cell (style,
    type, value) into the slot; a blank is an empty styled cell ``<c r="B7" s="2"/>``.
    """

    def __init__(self, letter: str, slot: int, ctx: SheetContext, style: str | None):
        self.letter = letter
        self.slot = slot
        self.ctx = ctx
        self.style = style

    def s(self, key: str | None = None) -> int:
        return self.ctx.style_ids[key or self.style or "text"]

    def render(self, values: list[Any]) -> tuple[str, list[str]]:
        kinds = set(map(type, values))
        if kinds <= {str, type(None)}:
            return self._texts(values)
        if kinds <= {float, int, type(None)}:
            return self._numbers(values)
        if kinds and all(k in (dt.datetime, dt.date, type(None)) or (isinstance(k, type) and issubclass(k, dt.datetime))
                         for k in kinds):
            done = self._dates(values)
            if done is not None:
                return done
        return self._mixed(values)

    def _open(self) -> str:
        return f'<c r="{self.letter}{{0}}" '

    def _sparse(self, values: list[Any], keep: list[int], tails: list[str]) -> tuple[str, list[str]]:
        slots = [f's="{self.s()}"/>'] * len(values)
        for i, tail in zip(keep, tails):
            slots[i] = tail
        return self._open() + "{" + str(self.slot) + "}", slots

    def _texts(self, values: list[Any]) -> tuple[str, list[str]]:
        keep = [i for i, v in enumerate(values) if v]  # None and "" are blank cells
        texts = escape_texts([values[i] for i in keep])
        head = f's="{self.s()}" t="inlineStr"><is><t xml:space="preserve">'
        if len(keep) == len(values):
            return self._open() + head + "{" + str(self.slot) + "}</t></is></c>", texts
        return self._sparse(values, keep, [head + t + "</t></is></c>" for t in texts])

    def _numbers(self, values: list[Any]) -> tuple[str, list[str]]:
        keep = [i for i, v in enumerate(values) if v is not None and v == v and v not in (math.inf, -math.inf)]
        nums = [values[i] for i in keep] if len(keep) != len(values) else values
        texts = [str(v) if type(v) is int else float.__repr__(v) for v in nums]
        head = f's="{self.s()}"><v>'
        if len(keep) == len(values):
            return self._open() + head + "{" + str(self.slot) + "}</v></c>", texts
        return self._sparse(values, keep, [head + t + "</v></c>" for t in texts])

    def _dates(self, values: list[Any]) -> tuple[str, list[str]] | None:
        """Dates and datetimes as serial numbers, computed with numpy for the whole column."""
        keep = [i for i, v in enumerate(values) if v is not None]
        present = [values[i] for i in keep]
        if any(getattr(v, "tzinfo", None) is not None for v in present[:1]):
            return None
        try:
            stamps = np.array(present, dtype="datetime64[us]")
        except (TypeError, ValueError):
            return None
        epoch = np.datetime64(_EPOCH_1904 if self.ctx.date1904 else _EPOCH_1900, "us")
        first = np.datetime64(_EPOCH_1904 if self.ctx.date1904 else _FIRST_DATE_1900, "us")
        if stamps.size and (stamps.min() < first or np.isnat(stamps).any()):
            return None  # before Excel's calendar: the per-cell path writes ISO text
        serial = (stamps - epoch) / np.timedelta64(1, "D")
        whole = serial == np.floor(serial)
        key = self.style if self.style not in (None, "text", "wrap") else ("date" if whole.all() else "datetime")
        texts = [str(int(x)) if w else float.__repr__(x) for x, w in zip(serial.tolist(), whole.tolist())]
        head = f's="{self.s(key)}"><v>'
        if len(keep) == len(values):
            return self._open() + head + "{" + str(self.slot) + "}</v></c>", texts
        return self._sparse(values, keep, [head + t + "</v></c>" for t in texts])

    def _mixed(self, values: list[Any]) -> tuple[str, list[str]]:
        blank = f's="{self.s()}"/>'
        return self._open() + "{" + str(self.slot) + "}", [self.tail(v) or blank for v in values]

    def tail(self, v: Any) -> str:
        """Everything of one cell after ``<c r="…" ``; '' for a blank."""
        if isinstance(v, str):
            if not v:
                return ""
            return f's="{self.s()}" t="inlineStr"><is><t xml:space="preserve">{xml_text(clean_text(v))}</t></is></c>'
        if isinstance(v, (bool, np.bool_)):
            return f's="{self.s()}" t="b"><v>{int(bool(v))}</v></c>'
        if isinstance(v, Formula):
            text = v.text[1:] if v.text.startswith("=") else v.text
            return f's="{self.s()}"><f>{xml_text(clean_text(text))}</f></c>'
        if _is_missing(v):
            return ""
        if isinstance(v, np.datetime64):
            v = v.astype("datetime64[us]").item()
        if isinstance(v, (dt.datetime, dt.date)):
            serial = date_serial(v, self.ctx.date1904)
            if serial is None:
                return self.tail(v.isoformat())
            key = self.style if self.style not in (None, "text", "wrap") else (
                "datetime" if isinstance(v, dt.datetime) and serial % 1 else "date")
            return f's="{self.s(key)}"><v>{float.__repr__(serial) if serial % 1 else int(serial)}</v></c>'
        if isinstance(v, dt.time):
            # No time-of-day style key exists; "12:30:00" as text reads right everywhere.
            return self.tail(v.isoformat())
        if isinstance(v, _NUMBER_TYPES):
            text = _number_text(v)
            return f's="{self.s()}"><v>{text}</v></c>' if text else ""
        if isinstance(v, dt.timedelta):
            return f's="{self.s()}"><v>{float.__repr__(v.total_seconds() / 86400)}</v></c>'
        return self.tail(str(v))


def _block_columns(block: Block) -> list[list[Any]]:
    """The block's values column by column (ragged rows padded with None).

    A pandas DataFrame is accepted too (values only, no header or index): its columns are
    already columns, which saves the transpose on large findings tables.
    """
    values = block.values
    if hasattr(values, "columns") and hasattr(values, "iloc"):  # a DataFrame
        return [values.iloc[:, j].astype(object).where(values.iloc[:, j].notna(), None).tolist()
                for j in range(values.shape[1])]
    if isinstance(values, np.ndarray):
        return [values[:, j].tolist() for j in range(values.shape[1])] if values.ndim == 2 else []
    rows = [r if isinstance(r, (list, tuple)) else list(r) for r in values]
    if not rows:
        return []
    return [list(c) for c in itertools.zip_longest(*rows)]


def _block_height(block: Block) -> int:
    v = block.values
    return int(v.shape[0]) if hasattr(v, "shape") else len(v)


#: Rows rendered at a time: bounds the memory of a million-row sheet to one chunk's strings.
CHUNK_ROWS = 32_768


def _block_slice(block: Block, start: int, stop: int) -> Block:
    v = block.values
    part = v.iloc[start:stop] if hasattr(v, "iloc") else v[start:stop]
    return Block(block.row + start, block.col, part, block.styles, block.row_style)


def _block_width(block: Block) -> int:
    v = block.values
    if hasattr(v, "shape"):
        return int(v.shape[1]) if len(v.shape) > 1 else 0
    return max(map(len, v), default=0)


def _check_block(block: Block) -> tuple[int, int]:
    """(height, width) of a block, refusing what does not fit in a worksheet."""
    if block.row < 1 or block.col < 1:
        raise ValueError(f"block origin must be ≥ (1, 1), got ({block.row}, {block.col})")
    n, w = _block_height(block), _block_width(block)
    if n and block.row + n - 1 > MAX_ROWS:
        raise OutputError(f"{block.row + n - 1:,} rows do not fit in one sheet",
                          f"Excel holds at most {MAX_ROWS:,} rows per sheet")
    if w and block.col + w - 1 > MAX_COLS:
        raise OutputError(f"{w} columns do not fit", f"Excel holds at most {MAX_COLS:,} columns")
    return n, w


def _render_rows(block: Block, ctx: SheetContext) -> list[str]:
    """Cell markup of every row of a (small) block: one template, one ``format`` per row."""
    columns = _block_columns(block)
    n = _block_height(block)
    if not columns or not n:
        return []
    styles = list(block.styles or [])
    template, slots = [], []
    for j, values in enumerate(columns):
        style = block.row_style or (styles[j] if j < len(styles) else None)
        piece, column_slots = _Column(col_letter(block.col + j), j + 1, ctx, style).render(values)
        template.append(piece)
        slots.append(column_slots)
    return list(map("".join(template).format, map(str, range(block.row, block.row + n)), *slots))


def _rendered_chunks(block: Block, ctx: SheetContext) -> Iterator[tuple[int, list[str]]]:
    """(first row number, cell markup of each row) of a block, a chunk of :data:`CHUNK_ROWS`
    rows at a time (a million-row block is never rendered whole)."""
    n = _block_height(block)
    for start in range(0, n, CHUNK_ROWS):
        part = _block_slice(block, start, min(n, start + CHUNK_ROWS))
        yield part.row, _render_rows(part, ctx)


def _block_chunks(block: Block, ctx: SheetContext) -> Iterator[str]:
    """``<row>`` elements of a block, joined per chunk of :data:`CHUNK_ROWS` rows."""
    for first, rows in _rendered_chunks(block, ctx):
        numbers = map(str, range(first, first + len(rows)))
        yield "".join(map('<row r="{0}">{1}</row>'.format, numbers, rows))


def _spans(blocks: list[Block]) -> list[tuple[int, int, int, int]]:
    out = []
    for b in blocks:
        n, w = _check_block(b)
        if n and w:
            out.append((b.row, b.row + n - 1, b.col, b.col + w - 1))
    return out


def _sheet_data(blocks: list[Block], ctx: SheetContext) -> Iterator[str]:
    """``<sheetData>`` for all blocks, yielded in pieces (a million-row sheet never sits in
    memory whole)."""
    spans = _spans(blocks)
    _check_no_overlap(spans)
    yield "<sheetData>"
    if not _rows_overlap(spans):
        # Blocks in disjoint row bands are written band after band.
        for b in sorted(blocks, key=lambda x: x.row):
            yield from _block_chunks(b, ctx)
    else:
        yield from _merged_rows(blocks, ctx)
    yield "</sheetData>"


def _merged_rows(blocks: list[Block], ctx: SheetContext) -> Iterator[str]:
    """``<row>`` elements of blocks that share rows (side by side), in row order.

    Each block is rendered a chunk of :data:`CHUNK_ROWS` rows at a time and the blocks' rows
    are merged by row number (a shared row gets its cells left block first), so a findings
    sheet of half a million rows is never held as one string. Yielded per chunk of rows.
    """
    merged = heapq.merge(*(_numbered_rows(b, ctx) for b in blocks))  # by row, then column
    out: list[str] = []
    for number, cells in itertools.groupby(merged, key=_first):
        out.append(f'<row r="{number}">' + "".join(c for _, _, c in cells) + "</row>")
        if len(out) >= CHUNK_ROWS:
            yield "".join(out)
            out = []
    if out:
        yield "".join(out)


def _numbered_rows(block: Block, ctx: SheetContext) -> Iterator[tuple[int, int, str]]:
    """(row number, column, cell markup) of each row of ``block``, rendered a chunk at a time."""
    for first, rows in _rendered_chunks(block, ctx):
        yield from zip(range(first, first + len(rows)), itertools.repeat(block.col), rows)


def _first(item: tuple) -> int:
    return item[0]


def _used_range(spans: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    if not spans:
        return None
    return min(s[0] for s in spans), min(s[2] for s in spans), max(s[1] for s in spans), max(s[3] for s in spans)


def _check_no_overlap(spans: list[tuple[int, int, int, int]]) -> None:
    for a, b in itertools.combinations(spans, 2):
        if a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]:
            raise ValueError(f"blocks overlap: rows {a[0]}–{a[1]} cols {a[2]}–{a[3]} and rows {b[0]}–{b[1]} cols {b[2]}–{b[3]}")


def _rows_overlap(spans: list[tuple[int, int, int, int]]) -> bool:
    ordered = sorted(spans)
    return any(a[1] >= b[0] for a, b in zip(ordered, ordered[1:]))


# --------------------------------------------------------------------------- tables

_TABLE_NAME_OK = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]*$")
_LOOKS_LIKE_REF = re.compile(r"^([A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*|[RrCc])$")


def safe_table_name(name: str) -> str:
    """A valid Excel table name: letter or underscore first, no spaces, not a cell address."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\\]", "_", name) or "Table"
    if not _TABLE_NAME_OK.match(cleaned) or _LOOKS_LIKE_REF.match(cleaned):
        cleaned = "T_" + cleaned
    return cleaned[:MAX_TABLE_NAME]


def _header_names(values: list[Any]) -> list[str]:
    """Table column names: the header text, made non-empty and unique as Excel requires."""
    names: list[str] = []
    seen: set[str] = set()
    for i, v in enumerate(values, start=1):
        base = "" if v is None else " ".join(clean_text(str(v)).split())
        base = base or f"Column{i}"
        name, k = base, 2
        while name.casefold() in seen:
            name, k = f"{base}{k}", k + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def _cell_value(blocks: list[Block], row: int, col: int) -> Any:
    for b in blocks:
        h = _block_height(b)
        if b.row <= row < b.row + h and col >= b.col:
            v = b.values
            if hasattr(v, "iloc"):
                j = col - b.col
                return v.iloc[row - b.row, j] if j < v.shape[1] else None
            r = v[row - b.row]
            j = col - b.col
            if j < len(r):
                return r[j]
    return None


def _with_table_headers(blocks: list[Block], tables: list[TableSpec]) -> tuple[list[Block], list[list[str]]]:
    """Column names of every table (in order), with the header cells rewritten as that text.

    Excel requires each header cell of a Table to hold exactly its column name as text:
    unique, not empty. Headers that are numbers, blank or repeated are fixed here.
    """
    headers: list[list[str]] = []
    extra: list[Block] = []
    for t in tables:
        r1, c1, _, c2 = parse_range(t.ref)
        current = [_cell_value(blocks, r1, c) for c in range(c1, c2 + 1)]
        names = _header_names(current)
        headers.append(names)
        if current != names:
            extra.append(Block(r1, c1, [names], row_style=None))
    if not extra:
        return blocks, headers
    # Header cells we rewrite are cut out of the caller's blocks and written as text.
    return _overlay(blocks, extra), headers


def _overlay(blocks: list[Block], patches: list[Block]) -> list[Block]:
    out: list[Block] = []
    patch_cells = {(p.row, p.col + j): v for p in patches for j, v in enumerate(p.values[0])}
    for b in blocks:
        h = _block_height(b)
        hits = [(r, c) for (r, c) in patch_cells if b.row <= r < b.row + h and c >= b.col]
        if not hits:
            out.append(b)
            continue
        rows = list(b.values.itertuples(index=False)) if hasattr(b.values, "iloc") else list(b.values)
        for r, c in hits:
            row = list(rows[r - b.row])
            j = c - b.col
            row.extend([None] * (j + 1 - len(row)))
            row[j] = patch_cells[(r, c)]
            rows[r - b.row] = row
        out.append(Block(b.row, b.col, rows, b.styles, b.row_style))
    covered = {(r, c) for b in out for (r, c) in patch_cells
               if b.row <= r < b.row + _block_height(b) and c >= b.col and c - b.col < max(1, _width(b))}
    for (r, c), v in patch_cells.items():
        if (r, c) not in covered:
            out.append(Block(r, c, [[v]], row_style="header"))
    return out


def _width(b: Block) -> int:
    v = b.values
    if hasattr(v, "shape"):
        return int(v.shape[1]) if len(v.shape) > 1 else 1
    return max((len(r) for r in v), default=0)


def table_xml(table_id: int, name: str, ref: str, columns: list[str], spec: TableSpec) -> bytes:
    """``xl/tables/tableN.xml``: the Table with its autoFilter (Excel's filter buttons)."""
    cols = "".join(f'<tableColumn id="{i}" name="{xml_attr(c)}"/>' for i, c in enumerate(columns, start=1))
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<table xmlns="{MAIN_NS}" id="{table_id}" name="{xml_attr(name)}" displayName="{xml_attr(name)}" '
        f'ref="{ref}" totalsRowShown="0"><autoFilter ref="{ref}"/>'
        f'<tableColumns count="{len(columns)}">{cols}</tableColumns>'
        f'<tableStyleInfo name="{xml_attr(spec.style)}" showFirstColumn="0" showLastColumn="0" '
        f'showRowStripes="{int(spec.show_row_stripes)}" showColumnStripes="0"/></table>'
    ).encode("utf-8")


# --------------------------------------------------------------------------- sheet parts

def _sheet_views(freeze: str | None, selected: bool) -> str:
    sel = ' tabSelected="1"' if selected else ""
    if not freeze:
        return f'<sheetViews><sheetView workbookViewId="0"{sel}/></sheetViews>'
    row, col = parse_cell(freeze)
    ys, xs = row - 1, col - 1
    if ys == 0 and xs == 0:
        return f'<sheetViews><sheetView workbookViewId="0"{sel}/></sheetViews>'
    # The pane that scrolls both ways is the "active" one; Excel names it by position.
    pane = "bottomRight" if ys and xs else ("bottomLeft" if ys else "topRight")
    split = (f' xSplit="{xs}"' if xs else "") + (f' ySplit="{ys}"' if ys else "")
    return (f'<sheetViews><sheetView workbookViewId="0"{sel}>'
            f'<pane{split} topLeftCell="{freeze.upper()}" activePane="{pane}" state="frozen"/>'
            f'<selection pane="{pane}" activeCell="{freeze.upper()}" sqref="{freeze.upper()}"/>'
            f'</sheetView></sheetViews>')


def _cols(widths: dict[int, float]) -> str:
    if not widths:
        return ""
    items = "".join(f'<col min="{c}" max="{c}" width="{float(w):g}" customWidth="1"/>'
                    for c, w in sorted(widths.items()) if 1 <= c <= MAX_COLS and w and w > 0)
    return f"<cols>{items}</cols>" if items else ""


def _validations(sheet: NewSheet) -> str:
    if not sheet.validations:
        return ""
    items = []
    for v in sheet.validations:
        for opt in v.options:
            if "," in opt or '"' in opt:
                raise OutputError(f"dropdown choice {opt!r} contains a comma or a quote",
                                  "Excel separates choices with commas; pick another wording")
        # Excel stores a literal list as one quoted string of at most 255 characters.
        listing = ",".join(clean_text(o) for o in v.options)
        if len(listing) > MAX_VALIDATION_LIST:
            raise OutputError(f"dropdown list for {v.sqref} is {len(listing)} characters long",
                              f"Excel allows at most {MAX_VALIDATION_LIST}; shorten the choices")
        prompt = ""
        if v.prompt:
            prompt = f' showInputMessage="1" prompt="{xml_attr(clean_text(v.prompt)[:MAX_PROMPT])}"'
        items.append(f'<dataValidation type="list" allowBlank="1" showErrorMessage="1"{prompt} '
                     f'sqref="{xml_attr(v.sqref)}"><formula1>"{xml_text(listing)}"</formula1></dataValidation>')
    return f'<dataValidations count="{len(items)}">{"".join(items)}</dataValidations>'


def _cond_formats(sheet: NewSheet, ctx: SheetContext) -> str:
    out = []
    for priority, cf in enumerate(sheet.cond_formats, start=1):
        dxf = ctx.dxf_ids[cf.highlight]
        formula = cf.formula[1:] if cf.formula.startswith("=") else cf.formula
        out.append(f'<conditionalFormatting sqref="{xml_attr(cf.sqref)}"><cfRule type="expression" '
                   f'dxfId="{dxf}" priority="{priority}"><formula>{xml_text(formula)}</formula>'
                   f'</cfRule></conditionalFormatting>')
    return "".join(out)


def _hyperlinks(sheet: NewSheet) -> str:
    if not sheet.hyperlinks:
        return ""
    links = sheet.hyperlinks
    cells = escape_attrs([h.cell for h in links])
    locations = escape_attrs([h.location for h in links])
    tips = iter(escape_attrs([h.tooltip[:255] for h in links if h.tooltip]))
    items = [f'<hyperlink ref="{c}" location="{loc}"' + (f' tooltip="{next(tips)}"/>' if h.tooltip else "/>")
             for h, c, loc in zip(links, cells, locations)]
    return f'<hyperlinks>{"".join(items)}</hyperlinks>'


def _sheet_pr(sheet: NewSheet) -> str:
    """``<sheetPr>``: tab colour, and fit-to-page (CT_SheetPr order: tabColor, outlinePr, pageSetUpPr)."""
    tab = f'<tabColor rgb="FF{sheet.tab_color.lstrip("#").upper()}"/>' if sheet.tab_color else ""
    fit = '<pageSetUpPr fitToPage="1"/>' if sheet.fit_width else ""
    return f"<sheetPr>{tab}{fit}</sheetPr>" if tab or fit else ""


def _page_setup(sheet: NewSheet) -> str:
    """``<pageSetup>``: fitToHeight 0 means "as many pages tall as needed" (one page wide)."""
    if not (sheet.fit_width or sheet.landscape):
        return ""
    fit = ' fitToWidth="1" fitToHeight="0"' if sheet.fit_width else ""
    orientation = ' orientation="landscape"' if sheet.landscape else ""
    return f'<pageSetup paperSize="9"{orientation}{fit}/>'  # 9 = A4


def render_sheet(sheet: NewSheet, ctx: SheetContext, *, selected: bool = False) -> RenderedSheet:
    """The worksheet XML for ``sheet`` plus its tables and charts.

    Element order follows the CT_Worksheet schema sequence; Excel rejects a file whose
    worksheet children are out of order.
    """
    from xl_expense.io.chart_xml import chart_parts  # local: charts are optional

    blocks, headers = _with_table_headers(list(sheet.blocks), list(sheet.tables))
    spans = _spans(blocks)
    _check_no_overlap(spans)
    used = _used_range(spans)
    out = RenderedSheet(xml=(), rows=sum(s[1] - s[0] + 1 for s in spans))
    rid = itertools.count(1)

    table_parts = []
    for spec, columns in zip(sheet.tables, headers):
        r1, c1, r2, c2 = parse_range(spec.ref)
        # A Table needs a data row below its header; Excel repairs a header-only Table.
        r2 = max(r2, r1 + 1)
        ref = range_ref(r1, c1, r2, c2)
        table_id, name = ctx.new_table(spec.name)
        part = ctx.new_part("xl/tables/table{}.xml")
        out.parts[part] = (table_xml(table_id, name, ref, columns, spec), CT_TABLE)
        r = f"rId{next(rid)}"
        out.rels.append((r, REL_TABLE, part))
        table_parts.append(f'<tablePart r:id="{r}"/>')
        if used is None:
            used = (r1, c1, r2, c2)
        else:
            used = (min(used[0], r1), min(used[1], c1), max(used[2], r2), max(used[3], c2))

    drawing = ""
    if sheet.charts:
        drawing_part = ctx.new_part("xl/drawings/drawing{}.xml")
        out.parts.update(chart_parts(sheet.name, sheet.charts, drawing_part, ctx.new_part))
        r = f"rId{next(rid)}"
        out.rels.append((r, REL_DRAWING, drawing_part))
        drawing = f'<drawing r:id="{r}"/>'

    tab = _sheet_pr(sheet)
    dimension = f'<dimension ref="{range_ref(*used)}"/>' if used else '<dimension ref="A1"/>'
    tables = f'<tableParts count="{len(table_parts)}">{"".join(table_parts)}</tableParts>' if table_parts else ""
    head = "".join([
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
        f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">',
        tab, dimension, _sheet_views(sheet.freeze, selected),
        '<sheetFormatPr defaultRowHeight="15"/>', _cols(sheet.col_widths),
    ])
    tail = "".join([
        _cond_formats(sheet, ctx), _validations(sheet), _hyperlinks(sheet),
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>',
        _page_setup(sheet), drawing, tables, "</worksheet>",
    ])
    out.xml = _encoded(head, _sheet_data(blocks, ctx), tail)
    return out


def _encoded(head: str, body: Iterator[str], tail: str) -> Iterator[bytes]:
    yield head.encode("utf-8")
    for piece in body:
        yield piece.encode("utf-8")
    yield tail.encode("utf-8")


__all__: Sequence[str] = (
    "SheetContext", "RenderedSheet", "render_sheet", "escape_texts", "clean_text", "xml_text", "xml_attr",
    "quote_sheet_name", "cell_location", "col_letter", "parse_cell", "parse_range", "range_ref",
    "date_serial", "safe_table_name", "table_xml",
)
