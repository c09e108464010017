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
from xl_expense.io.xlsx_package import BAD_SHEET_CHARS, MAX_SHEET_NAME, add_sheets

#: Suffixes of zip packages our writer can add sheets to.
PACKAGE_SUFFIXES = (".xlsx", ".xlsm")
#: The empty sheet of the starting workbook; replaced by the copied sheets.
_PLACEHOLDER = "xl-expense placeholder"


#: Plain decimal numbers (no leading zeros, which mark codes like 0012): stored as numbers.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d+)?")


def _csv_cells(rows: list[list[str]]) -> list[list[object]]:
    """CSV text as Excel would show it: empty cells empty, plain numbers as numbers."""
    return [[None if v == "" else float(v) if _NUMBER.fullmatch(v) else v for v in row] for row in rows]


def xlsx_sheet_name(name: str, taken: set[str], position: int) -> str:
    """``name`` as an .xlsx can hold it, unique among ``taken`` (casefolded; updated).

    Old .xls files and ODS allow sheet names Excel's .xlsx refuses: a name of spaces (a real
    Birmingham export has a sheet called ' '), ``[ ] : * ? / \\``, apostrophes at the ends,
    more than 31 characters. Those characters become ``_``, a blank name becomes
    ``Sheet<position>``; a valid name is kept as it is, so findings still link to it.
    """
    clean = "".join("_" if ch in BAD_SHEET_CHARS or ord(ch) < 32 else ch for ch in name).strip("'")
    clean = clean[:MAX_SHEET_NAME] if clean.strip() else f"Sheet{position}"
    if clean.casefold() == "history":
        clean += "_"
    candidate, k = clean, 2
    while candidate.casefold() in taken:
        suffix = f"_{k}"
        candidate, k = clean[:MAX_SHEET_NAME - len(suffix)] + suffix, k + 1
    taken.add(candidate.casefold())
    return candidate


def _source_sheets(src: Path) -> list[NewSheet]:
    """One sheet description per source sheet, values at their original addresses."""
    taken: set[str] = set()
    if src.suffix.lower() == ".csv":
        return [NewSheet(xlsx_sheet_name(src.stem, taken, 1), blocks=[Block(1, 1, _csv_cells(csv_rows(src)))])]
    book = python_calamine.CalamineWorkbook.from_path(str(src))
    try:
        sheets = []
        for position, name in enumerate(book.sheet_names, start=1):
            sheet = book.get_sheet_by_name(name)
            top, left = sheet.start or (0, 0)
            rows = [[None if v == "" else v for v in row] for row in sheet.to_python(skip_empty_area=True)]
            sheets.append(NewSheet(xlsx_sheet_name(name, taken, position),
                                   blocks=[Block(top + 1, left + 1, rows)] if rows else []))
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
