"""A small description of a new worksheet, independent of how it is written.

The audit (and later the budget and report workflows) describe the sheets they add with
these dataclasses; :mod:`xl_expense.io.xlsx_package` turns them into SpreadsheetML and adds
them to an existing workbook package without touching its other parts, and an xlwings
adapter can draw the same description into a live book. Coordinates are 1-based (Excel's).

Text values are always written as text, never as formulas, whatever they start with
(``=``, ``+``, ``-``, ``@``): ledger text is untrusted. Only :class:`Formula` values become
formulas, and only code (never ledger data) creates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: Style keys understood by every writer. Writers map them to fonts, fills and number formats.
STYLE_KEYS = (
    "text",      # plain text
    "wrap",      # text, wrapped
    "title",     # bold, larger: a sheet or block title
    "header",    # bold on a light fill: column headers outside Tables
    "label",     # bold text: row labels in key/value blocks
    "int",       # #,##0
    "money",     # #,##0.00 (currency shown in headers, not in the cells, so sums stay readable)
    "percent",   # 0.0%
    "score",     # 0.000
    "date",      # yyyy-mm-dd
    "datetime",  # yyyy-mm-dd hh:mm:ss
    "link",      # blue underlined: hyperlink cells
    "yuan",      # "¥"#,##0.00: money on sheets whose ledger currency is CNY (the report's sheets)
)

#: Fills for conditional formatting (differential styles).
HIGHLIGHT_KEYS = ("error", "warning", "info", "good")


@dataclass(frozen=True)
class Formula:
    """A formula written by our own code, e.g. ``Formula("SUM(B2:B9)")`` (no leading ``=``)."""

    text: str


@dataclass
class Block:
    """A rectangle of values whose top-left cell is (row, col).

    ``styles`` gives one style key per column (None = plain); ``row_style`` overrides it for
    every cell (used for titles and header rows).
    """

    row: int
    col: int
    values: Sequence[Sequence[Any]]
    styles: Sequence[str | None] | None = None
    row_style: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """An Excel Table (ListObject) over ``ref`` (e.g. ``"A1:M120"``); its first row is the header."""

    name: str
    ref: str
    style: str = "TableStyleMedium2"
    show_row_stripes: bool = True


@dataclass(frozen=True)
class ListValidation:
    """A dropdown (data validation of type list) on ``sqref`` with the given choices."""

    sqref: str
    options: Sequence[str]
    prompt: str | None = None


@dataclass(frozen=True)
class Hyperlink:
    """A link from ``cell`` to a place in the same workbook, e.g. ``"'费用明细'!D15"``."""

    cell: str
    location: str
    tooltip: str | None = None


@dataclass(frozen=True)
class CondFormat:
    """Highlight ``sqref`` where ``formula`` (relative to its top-left cell) is true."""

    sqref: str
    formula: str
    highlight: str  # one of HIGHLIGHT_KEYS


@dataclass(frozen=True)
class ChartSeries:
    name: str
    values_ref: str      # e.g. "B5:B13" on the same sheet
    categories_ref: str  # e.g. "A5:A13" on the same sheet


@dataclass(frozen=True)
class ChartSpec:
    """A native chart anchored at ``anchor`` (top-left cell) spanning width×height cells."""

    kind: str  # "col" | "bar" | "line" | "pie"
    title: str
    series: Sequence[ChartSeries]
    anchor: str
    width: int = 9
    height: int = 16
    y_axis_format: str | None = None  # e.g. "0.0%"


@dataclass
class NewSheet:
    """Everything needed to write one worksheet."""

    name: str  # ≤ 31 characters, none of []:*?/\ (Excel's limits)
    blocks: list[Block] = field(default_factory=list)
    col_widths: dict[int, float] = field(default_factory=dict)
    freeze: str | None = None  # top-left cell of the scrolling pane, e.g. "A2"
    tables: list[TableSpec] = field(default_factory=list)
    validations: list[ListValidation] = field(default_factory=list)
    hyperlinks: list[Hyperlink] = field(default_factory=list)
    cond_formats: list[CondFormat] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    tab_color: str | None = None  # RRGGBB
    #: Print setup: scale to one page wide (any number of pages tall), optionally landscape.
    fit_width: bool = False
    landscape: bool = False
