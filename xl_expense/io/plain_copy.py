"""A values-only .xlsx copy of a non-package ledger (.xls, .xlsb, .ods, .csv).

Our write-back adds sheets to an Office Open XML package without touching its other
parts; formats that are not such a package get a new .xlsx holding their cell values,
sheet by sheet at the same cell addresses, so hyperlinks from findings still land on the
right row. Formatting of those formats is not carried over.

The values go through the same sheet writer as the audit sheets (about 10× faster than
openpyxl's write-only mode on a 186k-row CSV), so ledger text that looks like a formula
is written as text here too.
"""

from __future__ import annotations

import re
from pathlib import Path

import python_calamine

from xl_expense.io.ledger_reader import csv_rows
from xl_expense.io.sheet_model import Block, NewSheet
from xl_expense.io.xlsx_package import add_sheets

#: Suffixes of zip packages our writer can add sheets to.
PACKAGE_SUFFIXES = (".xlsx", ".xlsm")
#: The empty sheet of the starting workbook; replaced by the copied sheets.
_PLACEHOLDER = "xl-expense placeholder"


#: Plain decimal numbers (no leading zeros, which mark codes like 0012): stored as numbers.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d+)?")


def _csv_cells(rows: list[list[str]]) -> list[list[object]]:
    """CSV text as Excel would show it: empty cells empty, plain numbers as numbers."""
    return [[None if v == "" else float(v) if _NUMBER.fullmatch(v) else v for v in row] for row in rows]


def _source_sheets(src: Path) -> list[NewSheet]:
    """One sheet description per source sheet, values at their original addresses."""
    if src.suffix.lower() == ".csv":
        return [NewSheet(src.stem[:31] or "Sheet1", blocks=[Block(1, 1, _csv_cells(csv_rows(src)))])]
    book = python_calamine.CalamineWorkbook.from_path(str(src))
    try:
        sheets = []
        for name in book.sheet_names:
            sheet = book.get_sheet_by_name(name)
            top, left = sheet.start or (0, 0)
            rows = [[None if v == "" else v for v in row] for row in sheet.to_python(skip_empty_area=True)]
            sheets.append(NewSheet(name, blocks=[Block(top + 1, left + 1, rows)] if rows else []))
        return sheets
    finally:
        book.close()


def copy_values_to_xlsx(src: str | Path, dst: str | Path) -> None:
    """Write every sheet's cell values of ``src`` into a new workbook at ``dst``."""
    from openpyxl import Workbook

    src, dst = Path(src), Path(dst)
    start = dst.with_name(f".{dst.stem}.start.xlsx")
    try:
        wb = Workbook()
        wb.active.title = _PLACEHOLDER
        wb.save(start)
        add_sheets(start, dst, _source_sheets(src), replace=[_PLACEHOLDER])
    finally:
        start.unlink(missing_ok=True)
