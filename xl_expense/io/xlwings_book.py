"""A workbook open in Excel, read and written through xlwings, for the live-book workflows.

The ribbon's macros hand us ``xw.Book.caller()``. :class:`XlwingsBook` gives the audit what
the file readers give it — the ledger, the Settings rows, an earlier run's reviewer notes —
and draws the audit's sheet descriptions (:mod:`xl_expense.io.sheet_model`) into the book,
so :func:`xl_expense.workflows.audit_live_book` runs the very middle the CLI runs.

Reading uses the public xlwings API only (``sheet.used_range``, ``range.options(ndim=2)
.value``, ``sheet.tables``), so it works with the classic COM add-in and with xlwings'
remote engine alike. Values are read as a 2-D list, not ``.options(pd.DataFrame)``: a
ledger has title rows above its header and a 合计 row below, which only the ledger
reader's own header search and row parser (:func:`~xl_expense.io.ledger_reader.ledger_from_rows`)
sort out the way they do for a file.

What the live path writes, and what it cannot:

* values (text always as text, never as a formula), number formats, bold/large/blue fonts,
  the header fill, wrapping, column widths, frozen panes: everywhere;
* Excel Tables, list dropdowns, in-workbook hyperlinks, conditional formats: through
  xlwings ≥ 0.37.5's ``tables.add``, ``data_validation.set_list``, ``add_hyperlink`` and
  ``conditional_formats.add_custom``;
* charts: drawn when the engine can add them, otherwise skipped with a line in the
  returned notes (the sheet's numbers are still there);
* not drawn at all: the dropdown's input prompt (xlwings cannot set it), tab colours and
  print setup (cosmetic), and a vertical-SUM totals row is recognised from its formula only
  on engines that read formulas synchronously (COM); the remote engine relies on the 合计 label.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import pandas as pd

from xl_expense.errors import OutputError
from xl_expense.i18n import all_langs
from xl_expense.io.ledger_reader import (
    HEADER_SEARCH_ROWS,
    Ledger,
    _not_found,
    candidate_sheets,
    header_score,
    is_vertical_sum,
    ledger_from_rows,
)
from xl_expense.io.reviewer_notes import empty_notes, notes_from_rows
from xl_expense.io.sheet_model import Block, ChartSpec, Formula, NewSheet
from xl_expense.io.sheet_xml import MAX_CELL_TEXT, parse_cell, parse_range
from xl_expense.io.xlsx_package import _STYLE_SPECS, HEADER_FILL, HIGHLIGHTS, LINK_COLOR
from xl_expense.schema import normalize_header

#: Text Excel would turn into something else when it is *set* as a value (the way typing
#: it would): a formula (= + - @), a number, date or percentage (digits, $, ¥, a bracketed
#: negative, a decimal point), or a prefix character it would swallow ('). Such text is
#: written with a leading apostrophe, Excel's own "this is text" prefix, which is not part
#: of the value.
_CONVERTED_STARTS = frozenset("=+-@'.$¥￥(0123456789")
_BOOLEAN_WORDS = frozenset({"TRUE", "FALSE"})
#: sheet_model chart kinds → xlwings chart types.
_CHART_TYPES = {"col": "column_clustered", "bar": "bar_clustered", "line": "line_markers", "pie": "pie"}
#: Excel's default cell size in points, to size a chart given in cells.
_CELL_WIDTH_PT, _CELL_HEIGHT_PT = 48.0, 15.0
_TITLE_SIZE = 14


class XlwingsBook:
    """An ``xw.Book`` (or anything with its API) seen as a source and a target of sheets."""

    def __init__(self, book: Any):
        self.book = book

    # ------------------------------------------------------------------ reading

    @property
    def name(self) -> str:
        return str(self.book.name)

    def sheet_names(self) -> list[str]:
        return [sheet.name for sheet in self.book.sheets]

    def sheet_rows(self, name: str, max_rows: int | None = None) -> list[list[Any]]:
        """The values of sheet ``name`` from A1 to the end of its used range, row by row.

        Anchored at A1 (not at the used range's corner) so that ``rows[i][j]`` is Excel's row
        ``i + 1``, column ``j + 1`` — the shape the calamine readers give. ``max_rows``
        stops after the first rows of the used range plus that many (the header search).
        Empty cells are ``None``; dates are ``datetime`` (xlwings converts them).
        """
        sheet = self.book.sheets[name]
        used = sheet.used_range
        n_rows, n_cols = used.shape
        last_row, last_col = used.row + n_rows - 1, used.column + n_cols - 1
        if max_rows is not None:
            last_row = min(last_row, used.row + max_rows - 1)
        return _grid(sheet.range((1, 1), (last_row, last_col)).options(ndim=2).value)

    def ledger(self, sheet: str | None = None, mapping: Mapping[str, str] | None = None,
               dayfirst: bool = False) -> Ledger:
        """The book's expense ledger, found and parsed exactly as :func:`load_ledger` does.

        An Excel Table with an expense header wins, else the sheet whose first rows hold the
        best header; our own output sheets are never taken unless named.
        """
        mapping = dict(mapping or {})
        names = candidate_sheets(self.sheet_names(), sheet)
        table = self._best_table(names, mapping)
        if table is not None:
            return self._table_ledger(table, mapping, dayfirst)
        best: tuple[float, str] | None = None
        for name in names:
            score = header_score(self.sheet_rows(name, HEADER_SEARCH_ROWS + 1), mapping)
            if score > 0 and (best is None or score > best[0]):
                best = (score, name)
        if best is None:
            where = f"sheet '{sheet}'" if sheet else "sheets " + ", ".join(f"'{n}'" for n in names)
            raise _not_found(where)
        name = best[1]
        rows = self.sheet_rows(name)
        ledger = ledger_from_rows(rows, name, mapping=mapping, dayfirst=dayfirst, path=self.name)
        sums = self._sum_rows(name, ledger) - set(ledger.totals_rows)
        if sums:  # a totals row without a 合计 label: parse again knowing it
            ledger = ledger_from_rows(rows, name, mapping=mapping, dayfirst=dayfirst, path=self.name,
                                      sum_rows=sums | set(ledger.totals_rows))
        return ledger

    def _best_table(self, names: Sequence[str], mapping: dict[str, str]) -> Any:
        """The Excel Table with the most expense-like header on the candidate sheets, or None."""
        best = None
        for name in names:
            for table in _tables(self.book.sheets[name]):
                header = table.header_row_range
                if header is None or table.data_body_range is None:
                    continue
                score = header_score(_grid(header.options(ndim=2).value), mapping)
                if score > 0 and (best is None or score > best[0]):
                    best = (score, table)
        return None if best is None else best[1]

    def _table_ledger(self, table: Any, mapping: dict[str, str], dayfirst: bool) -> Ledger:
        whole = table.range
        ledger = ledger_from_rows(_grid(whole.options(ndim=2).value), table.parent.name, mapping=mapping,
                                  dayfirst=dayfirst, path=self.name, first_row=whole.row, first_col=whole.column)
        ledger.table_name = table.name
        return ledger

    def _sum_rows(self, name: str, ledger: Ledger) -> set[int]:
        """Excel rows whose amount cell holds a vertical SUM/SUBTOTAL formula.

        The remote engine sends values only (formulas need an async round trip): there,
        and on any book object without formulas, the 合计 label alone marks totals rows.
        """
        if ledger.data_rows is None or "amount" not in ledger.columns:
            return set()
        first, last = ledger.data_rows
        col = ledger.columns["amount"].index + 1
        try:
            formulas = self.book.sheets[name].range((first, col), (last, col)).formula
        except (NotImplementedError, AttributeError):
            return set()
        cells = [formulas] if isinstance(formulas, str) else [row[0] if isinstance(row, (list, tuple)) else row
                                                             for row in formulas]
        return {first + i for i, f in enumerate(cells)
                if isinstance(f, str) and f.startswith("=") and is_vertical_sum(f.encode("utf-8"))}

    def settings_rows(self) -> list[list[Any]] | None:
        """The rows of the ``设置``/``Settings`` sheet (names compared as the file reader does), or None."""
        wanted = {normalize_header(n) for n in all_langs("sheet.settings")}
        name = next((n for n in self.sheet_names() if normalize_header(n) in wanted), None)
        return None if name is None else self.sheet_rows(name)

    def reviewer_notes(self) -> pd.DataFrame:
        """Status and Comment from an earlier audit's findings sheet in this book (empty if none)."""
        names = set(all_langs("sheet.findings"))
        name = next((n for n in self.sheet_names() if n in names), None)
        return empty_notes() if name is None else notes_from_rows(self.sheet_rows(name))

    def table_names(self) -> list[str]:
        return [table.name for sheet in self.book.sheets for table in _tables(sheet)]

    def saved_file(self) -> Path | None:
        """The book's file on this computer, when it has one (never saved, or in the cloud: None)."""
        fullname = str(getattr(self.book, "fullname", "") or "")
        path = Path(fullname)
        return path if fullname and "://" not in fullname and path.is_absolute() and path.is_file() else None

    # ------------------------------------------------------------------ writing

    def write_sheets(self, sheets: Sequence[NewSheet], replace: Iterable[str] = ()) -> list[str]:
        """Add ``sheets`` after the book's last sheet, first deleting the sheets named in ``replace``.

        Returns one line per thing the engine could not draw (e.g. a chart); everything else
        is drawn or an error is raised. A sheet of the same name that ``replace`` does not
        allow to delete is an :class:`~xl_expense.errors.OutputError`, as in the file writer.
        """
        replace = set(replace)
        clash = sorted({s.name for s in sheets} & (set(self.sheet_names()) - replace))
        if clash:
            raise OutputError(f"the workbook already has a sheet named '{clash[0]}'",
                              "rename or delete that sheet, then run again")
        # Excel repaints after every COM call otherwise: thousands of them for a findings sheet.
        self.book.app.screen_updating = False
        try:
            for sheet in list(self.book.sheets):
                if sheet.name in replace:
                    sheet.delete()
            notes: list[str] = []
            for spec in sheets:
                last = self.book.sheets[len(self.book.sheets) - 1]
                target = self.book.sheets.add(name=spec.name, after=last)
                notes += draw_sheet(target, spec)
        finally:
            self.book.app.screen_updating = True
        return notes


# ---------------------------------------------------------------------- drawing one sheet

def draw_sheet(sheet: Any, spec: NewSheet) -> list[str]:
    """Draw ``spec`` into the (empty) xlwings ``sheet``; returns what could not be drawn."""
    for block in spec.blocks:
        _draw_block(sheet, block)
    for col, width in sorted(spec.col_widths.items()):
        sheet.range((1, col)).column_width = width
    for table in spec.tables:
        added = sheet.tables.add(source=sheet.range(table.ref), name=table.name, table_style_name=table.style)
        if not table.show_row_stripes:
            added.show_table_style_row_stripes = False
    for validation in spec.validations:
        sheet.range(validation.sqref).data_validation.set_list(list(validation.options))
    if spec.hyperlinks:
        texts = _cell_texts(spec.blocks, [link.cell for link in spec.hyperlinks])
        for link in spec.hyperlinks:
            sheet.range(link.cell).add_hyperlink("#" + link.location, texts.get(link.cell) or link.location,
                                                 link.tooltip or link.location)
    for cf in spec.cond_formats:
        font, fill = HIGHLIGHTS[cf.highlight]
        formula = cf.formula if cf.formula.startswith("=") else "=" + cf.formula
        sheet.range(cf.sqref).conditional_formats.add_custom(formula, fill_color=_hex(fill), font_color=_hex(font))
    if spec.freeze:
        sheet.freeze_panes.freeze_at(spec.freeze)
    notes = []
    for chart in spec.charts:
        note = _draw_chart(sheet, chart)
        if note:
            notes.append(f"{spec.name}: {note}")
    return notes


def _draw_block(sheet: Any, block: Block) -> None:
    rows = _block_rows(block)
    if not rows:
        return
    width = max(len(row) for row in rows)
    grid = [[cell_value(v) for v in row] + [None] * (width - len(row)) for row in rows]
    sheet.range((block.row, block.col)).value = grid
    last_row = block.row + len(grid) - 1
    if block.row_style:
        _style(sheet.range((block.row, block.col), (last_row, block.col + width - 1)), block.row_style)
        return
    styles = list(block.styles or [])[:width]
    # Neighbouring columns of one style are formatted with one call (one action, one COM call).
    j = 0
    for key, run in groupby(styles):
        n = len(list(run))
        if key:
            _style(sheet.range((block.row, block.col + j), (last_row, block.col + j + n - 1)), key)
        j += n


def _style(rng: Any, key: str) -> None:
    """Apply a style key the way :mod:`xl_expense.io.xlsx_package` renders it in a file."""
    number_format, font, filled, wrap = _STYLE_SPECS[key]
    if number_format != "General":
        rng.number_format = number_format
    if font in ("bold", "title"):
        rng.font.bold = True
    if font == "title":
        rng.font.size = _TITLE_SIZE
    if font == "link":
        rng.font.color = _hex(LINK_COLOR)
    if filled:
        rng.color = _hex(HEADER_FILL)
    if wrap:
        rng.wrap_text = True


def _draw_chart(sheet: Any, chart: ChartSpec) -> str | None:
    """Add a native chart; None when drawn, else why not (the engine lacks charts, …)."""
    if not chart.series:
        return None
    try:
        r1, c1 = parse_cell(chart.anchor)
        source = _series_range(chart)
        added = sheet.charts.add(chart_type=_CHART_TYPES.get(chart.kind, "column_clustered"),
                                 source=sheet.range(source), plot_by="columns", anchor=sheet.range((r1, c1)),
                                 width=chart.width * _CELL_WIDTH_PT, height=chart.height * _CELL_HEIGHT_PT)
        added.set_x_axis_values(sheet.range(chart.series[0].categories_ref))
        added.title = chart.title
    except Exception as exc:  # noqa: BLE001 - a chart is an extra: its numbers are on the sheet
        return f"chart '{chart.title}' not drawn ({type(exc).__name__})"
    return None


def _series_range(chart: ChartSpec) -> str:
    """The values of all series as one range when they sit side by side, else the first one's."""
    boxes = [parse_range(s.values_ref) for s in chart.series]
    r1, c1, r2, c2 = boxes[0]
    side_by_side = all(b[0] == r1 and b[2] == r2 and b[1] == c1 + i and b[3] == c1 + i for i, b in enumerate(boxes))
    if side_by_side and c1 == c2:
        return f"{chart.series[0].values_ref.split(':')[0]}:{chart.series[-1].values_ref.split(':')[-1]}"
    return chart.series[0].values_ref


# ---------------------------------------------------------------------- values

def cell_value(value: Any) -> Any:
    """A value as xlwings should set it: text stays text, only :class:`Formula` is a formula."""
    if isinstance(value, Formula):
        return "=" + value.text
    if isinstance(value, str):
        return safe_text(value)
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (dt.date, dt.datetime)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def safe_text(text: str) -> str:
    """``text`` as Excel must store it when set as a cell value: literally.

    Excel parses a value set through COM or Office.js as if typed: ``=SUM(A:A)`` would become
    a formula, ``00123`` the number 123, ``2026-01-05`` a date. A leading apostrophe keeps it
    text (and is not part of the value). Over-long text is cut at Excel's cell limit.
    """
    text = text[:MAX_CELL_TEXT - 1]
    if text and (text[0] in _CONVERTED_STARTS or text.lstrip()[:1] in _CONVERTED_STARTS
                 or text.strip().upper() in _BOOLEAN_WORDS):
        return "'" + text
    return text


def _block_rows(block: Block) -> list[list[Any]]:
    values = block.values
    if hasattr(values, "itertuples"):  # a DataFrame block
        return [list(row) for row in values.itertuples(index=False)]
    return [list(row) for row in values]


def _cell_texts(blocks: Sequence[Block], cells: Sequence[str]) -> dict[str, str]:
    """The text the blocks put in ``cells`` (a hyperlink keeps the cell's text on display)."""
    wanted = {parse_cell(cell): cell for cell in cells}
    out: dict[str, str] = {}
    for block in blocks:
        for i, row in enumerate(_block_rows(block)):
            for j, value in enumerate(row):
                ref = wanted.get((block.row + i, block.col + j))
                if ref is not None and value is not None:
                    out[ref] = str(value)
    return out


def _grid(value: Any) -> list[list[Any]]:
    """xlwings' 2-D value as a list of lists (a single cell comes back as [[v]] with ndim=2)."""
    if value is None:
        return []
    return [list(row) if isinstance(row, (list, tuple)) else [row] for row in value]


def _tables(sheet: Any) -> list[Any]:
    try:
        return list(sheet.tables)
    except (NotImplementedError, AttributeError):
        return []


def _hex(argb: str) -> str:
    """``FFDDEBF7`` (OOXML ARGB) → ``#DDEBF7`` (xlwings)."""
    return "#" + argb[-6:]
