"""A values-only .xlsx copy of a non-package ledger (.xls, .xlsb, .ods, .csv).

Our write-back adds sheets to an Office Open XML package without touching its other
parts; formats that are not such a package get a new .xlsx holding their cell values,
sheet by sheet at the same cell addresses, so hyperlinks from findings still land on the
right row. Formatting of those formats is not carried over (the summary says so).
"""

from __future__ import annotations

import csv
from pathlib import Path

import python_calamine

from xl_expense.errors import UnreadableWorkbook

#: Suffixes of zip packages our writer can add sheets to.
PACKAGE_SUFFIXES = (".xlsx", ".xlsm")
_FORMULA_START = ("=", "+", "-", "@")


def _csv_rows(path: Path) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with open(path, newline="", encoding=encoding) as handle:
                return list(csv.reader(handle))
        except UnicodeDecodeError:
            continue
    raise UnreadableWorkbook("CSV is neither UTF-8 nor GBK", "save it as UTF-8 CSV")


def copy_values_to_xlsx(src: str | Path, dst: str | Path) -> None:
    """Write every sheet's cell values of ``src`` into a new workbook at ``dst``."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    src = Path(src)
    wb = Workbook(write_only=True)
    if src.suffix.lower() == ".csv":
        sheets = [(src.stem[:31] or "Sheet1", _csv_rows(src), (0, 0))]
    else:
        book = python_calamine.CalamineWorkbook.from_path(str(src))
        sheets = []
        for name in book.sheet_names:
            sheet = book.get_sheet_by_name(name)
            sheets.append((name, sheet.to_python(skip_empty_area=True), sheet.start or (0, 0)))
        book.close()
    for name, rows, (top, left) in sheets:
        ws = wb.create_sheet(name)
        for _ in range(top):
            ws.append([])
        for values in rows:
            cells = [None] * left
            for value in values:
                if value == "":
                    value = None
                cell = WriteOnlyCell(ws, value=value)
                # Untrusted text that looks like a formula stays text.
                if isinstance(value, str) and value.startswith(_FORMULA_START):
                    cell.data_type = "s"
                cells.append(cell)
            ws.append(cells)
    wb.save(dst)
