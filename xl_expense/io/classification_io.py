"""Classification columns in the user's own ledger sheet: find them, read them back, write them.

The classify workflow writes, beside the ledger's rows, the category (into the ledger's own
category column where the ledger has one), its confidence, its source (``manual`` /
``rule`` / ``model``), the rule that matched, our suggestion and a review flag. A later run
reads the source and suggestion columns back so it can tell a person's correction from its
own earlier guess (:func:`xl_expense.core.classify_ledger.person_decided`).

Cells are written with :func:`xl_expense.io.cell_patch.patch_rows`: only the ledger's
worksheet part changes (and its Table's column list when the ledger is an Excel Table);
every other part of the workbook is copied byte for byte. Ledger text is written as text,
never as a formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import python_calamine

from xl_expense.core.taxonomy import fold_name
from xl_expense.errors import UnreadableWorkbook
from xl_expense.io.cell_patch import patch_rows
from xl_expense.io.ledger_reader import Ledger
from xl_expense.io.sheet_xml import col_letter as column_letter

#: Header of each classification column, (zh, en). Chosen so that none is mistaken for a
#: ledger column by the header matcher (e.g. "Suggested category" would read as a category).
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    "category": ("费用类别", "Category"),
    "confidence": ("分类置信度", "Confidence"),
    "source": ("分类来源", "Classified by"),
    "rule": ("匹配规则", "Match rule"),
    "suggested": ("分类建议", "Suggestion"),
    "review": ("需复核", "Needs review"),
}
#: The columns after the category, in the order they are added.
EXTRA_COLUMNS = ("confidence", "source", "rule", "suggested", "review")
_REVIEW_MARK = {"zh": "是", "en": "yes"}
_FOLDED_LABELS = {fold_name(label): key for key, labels in COLUMN_LABELS.items() for label in labels}


@dataclass
class LedgerGrid:
    """Where the ledger sits on its sheet, as the classification writer needs it.

    ``header_row``: the Excel row of the (last) header row, where new headers go;
    ``last_col``: 1-based last column of the ledger (its Table's, or the last filled header
    cell); ``headers``: 1-based column → header text on ``header_row``.
    """

    sheet: str
    header_row: int
    last_col: int
    headers: dict[int, str]
    table_name: str | None = None
    table_last_col: int | None = None

    def column_of(self, key: str) -> int | None:
        """The 1-based column whose header is our label for ``key`` (zh or en), if any."""
        for col, text in self.headers.items():
            if _FOLDED_LABELS.get(fold_name(text)) == key:
                return col
        return None


def _open(path: Path) -> python_calamine.CalamineWorkbook:
    try:
        return python_calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise UnreadableWorkbook(f"the workbook could not be read again ({exc})",
                                 "open the file in Excel and save it again", str(path)) from exc


def read_ledger_grid(path: str | Path, ledger: Ledger,
                     wanted: tuple[str, ...] = EXTRA_COLUMNS) -> tuple[LedgerGrid, dict[str, pd.Series]]:
    """The ledger's layout on its sheet, and the values in our earlier columns.

    Returns the grid and, for each key of ``wanted`` whose column an earlier run wrote
    (found by header, in either language), a Series of that column's cell values indexed
    like ``ledger.df`` (read by the rows' Excel row numbers).
    """
    path = Path(path)
    header_row = (ledger.data_rows[0] - 1) if ledger.data_rows else ledger.header_row
    book = _open(path)
    try:
        sheet = book.get_sheet_by_name(ledger.sheet)
        table_last = None
        if ledger.table_name:
            table = book.get_table_by_name(ledger.table_name)
            table_last = table.end[1] + 1
        headers: dict[int, str] = {}
        wanted_rows = {int(r) for r in ledger.df["row"]} if len(ledger.df) else set()
        raw: dict[int, list[Any]] = {}
        for index, row in enumerate(sheet.iter_rows(), start=1):
            if index == header_row:
                headers = {c: str(v).strip() for c, v in enumerate(row, start=1) if str(v).strip()}
            elif index in wanted_rows:
                raw[index] = row
    finally:
        book.close()
    last_col = table_last or max(headers, default=0)
    grid = LedgerGrid(ledger.sheet, header_row, last_col, headers, ledger.table_name, table_last)
    prior: dict[str, pd.Series] = {}
    for key in wanted:
        col = grid.column_of(key)
        if col is None:
            continue
        values = [_cell(raw.get(int(r)), col) for r in ledger.df["row"]]
        prior[key] = pd.Series(values, index=ledger.df.index, dtype=object)
    return grid, prior


def _cell(row: list[Any] | None, col: int) -> Any:
    if row is None or col > len(row):
        return None
    value = row[col - 1]
    return None if value == "" else value


@dataclass
class ColumnPlan:
    """Where each classification column goes (1-based), and which columns are new."""

    columns: dict[str, int]
    new: list[str]


def plan_columns(grid: LedgerGrid, ledger: Ledger) -> ColumnPlan:
    """Reuse the ledger's category column and our earlier columns; append the missing ones."""
    columns: dict[str, int] = {}
    new: list[str] = []
    next_col = grid.last_col + 1
    category = ledger.columns.get("category")
    for key in ("category", *EXTRA_COLUMNS):
        existing = category.index + 1 if key == "category" and category else grid.column_of(key)
        if existing:
            columns[key] = existing
        else:
            columns[key] = next_col
            new.append(key)
            next_col += 1
    return ColumnPlan(columns, new)


def classification_rows(grid: LedgerGrid, plan: ColumnPlan, ledger: Ledger, table: pd.DataFrame,
                        lang: str = "zh") -> dict[int, dict[int, Any]]:
    """Excel row → {column → value} for every classification cell (and the new headers).

    A row whose category a person decided keeps its category cell untouched; every other
    classification cell of a ledger row is rewritten (an earlier guess may have changed).
    Rows and columns rather than "K12" references: :func:`patch_rows` takes them as they are.
    """
    lang_i = 1 if lang == "en" else 0
    rows: dict[int, dict[int, Any]] = {}
    if plan.new:
        rows[grid.header_row] = {plan.columns[key]: COLUMN_LABELS[key][lang_i] for key in plan.new}
    c = plan.columns
    cat_col, conf_col, src_col, rule_col, sugg_col, rev_col = (
        c["category"], c["confidence"], c["source"], c["rule"], c["suggested"], c["review"])
    mark = _REVIEW_MARK["en" if lang == "en" else "zh"]
    # Plain Python values (tolist): the writer renders them without numpy's scalar types.
    columns = zip(ledger.df["row"].to_numpy().tolist(),
                  table["category"].to_numpy(dtype=object).tolist(),
                  table["confidence"].round(4).to_numpy().tolist(),
                  table["source"].to_numpy(dtype=object).tolist(),
                  table["rule"].to_numpy(dtype=object).tolist(),
                  table["suggested"].to_numpy(dtype=object).tolist(),
                  table["review"].to_numpy(dtype=bool).tolist())
    for r, category, confidence, source, rule, suggested, review in columns:
        # Same assignment order as one cell after another: should two keys share a
        # column, the later one wins, as it always has.
        cells = {cat_col: category} if source != "manual" else {}
        cells[conf_col] = confidence
        cells[src_col] = source
        cells[rule_col] = rule
        cells[sugg_col] = suggested
        cells[rev_col] = mark if review else None
        rows.setdefault(int(r), {}).update(cells)
    return rows


def classification_cells(grid: LedgerGrid, plan: ColumnPlan, ledger: Ledger, table: pd.DataFrame,
                         lang: str = "zh") -> dict[str, Any]:
    """A1 reference → value for every classification cell (and the new headers);
    :func:`classification_rows` keyed the way :func:`patch_cells` takes cells."""
    return {f"{column_letter(col)}{row}": value
            for row, cells in classification_rows(grid, plan, ledger, table, lang).items()
            for col, value in cells.items()}


def write_classification_columns(src: str | Path, dst: str | Path, grid: LedgerGrid, plan: ColumnPlan,
                                 ledger: Ledger, table: pd.DataFrame, lang: str = "zh") -> None:
    """Write the classification columns into ``dst`` (a copy of ``src``; may be ``src``).

    When the ledger is an Excel Table and the new columns sit right of it, the Table grows
    to include them (filters and banding then cover them too).
    """
    rows = classification_rows(grid, plan, ledger, table, lang)
    new_columns = None
    if grid.table_name and plan.new:
        lang_i = 1 if lang == "en" else 0
        appended = [k for k in plan.new if plan.columns[k] > (grid.table_last_col or 0)]
        new_columns = {grid.table_name: [COLUMN_LABELS[k][lang_i] for k in appended]} if appended else None
    patch_rows(src, dst, grid.sheet, rows, new_columns=new_columns)
