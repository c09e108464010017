"""Read a budget workbook (made from ``workbook_templates/``) into the core's budget objects.

The template's contract (``workbook_templates/README.md``): the Tables ``XE_Budget`` (category,
unit, twelve months, year total) and ``XE_Controls`` (category, annual action, monthly action),
and the Settings rows 预算年度 / 预算口径 / 预算预警线 / 预算控制线. Columns are taken by
position inside the Tables, so renaming a header in Excel does not break the reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import python_calamine

from xl_expense.core.budget import MONTHS, UNIT_COLUMNS, empty_budget
from xl_expense.core.budget_monitor import ControlPolicy
from xl_expense.errors import SettingsError
from xl_expense.io.settings_io import settings_sheet_rows

# xl_expense.io.budget_template (the template's names and defaults) imports openpyxl, ~0.3 s:
# it is imported below only for a workbook that has Tables, so that auditing a plain ledger
# (which asks "is this a budget workbook?") does not pay for it.
from xl_expense.schema import normalize_header


@dataclass(frozen=True)
class BudgetBook:
    """The budget of a workbook, how it is controlled, and where its lines sit in the sheet.

    ``rows[i]`` is the Excel row of ``budget.iloc[i]``; ``first_col`` the 1-based column of
    the Table's category column (months follow the unit column); ``last_row`` the Table's
    last row, below which new lines are added.
    """

    budget: pd.DataFrame
    year: int
    budget_by: str
    policy: ControlPolicy
    sheet: str = ""
    rows: tuple[int, ...] = ()
    first_col: int = 1
    header_row: int = 1
    last_row: int = 1
    width: int = 15


def table_rows(book: python_calamine.CalamineWorkbook, name: str) -> list[list] | None:
    """The data rows of the Table ``name`` in an open workbook (loaded with tables), or None."""
    if name not in _table_names(book):
        return None
    return book.get_table_by_name(name).to_python()


def _table_names(book: python_calamine.CalamineWorkbook) -> list[str]:
    """The workbook's Table names; none when it was opened without tables (or has none)."""
    try:
        return book.table_names or []
    except python_calamine.CalamineError:  # TablesNotLoaded: opened without load_tables
        return []


def _is_line(row: list) -> bool:
    return len(row) >= 14 and bool(str(row[0]).strip()) and bool(str(row[1]).strip())


def _budget_frame(rows: list[list]) -> pd.DataFrame:
    """XE_Budget rows → the core's budget shape; blank lines (Excel's empty row) are dropped."""
    lines = [r for r in rows if _is_line(r)]
    if not lines:
        return empty_budget()
    frame = pd.DataFrame({"category": [str(r[0]).strip() for r in lines], "unit": [str(r[1]).strip() for r in lines]})
    for i, month in enumerate(MONTHS):
        frame[month] = pd.to_numeric(pd.Series([r[2 + i] for r in lines]), errors="coerce").fillna(0.0)
    return frame


def _budget_settings(path: Path, book: python_calamine.CalamineWorkbook | None = None) -> dict[str, object]:
    from xl_expense.io.budget_template import BUDGET_SETTING_LABELS

    values: dict[str, object] = {}
    for row in settings_sheet_rows(path, book) or []:
        if len(row) > 1 and (key := BUDGET_SETTING_LABELS.get(normalize_header(row[0]))):
            values[key] = row[1]
    return values


def read_budget_book(path: str | Path, book: python_calamine.CalamineWorkbook | None = None) -> BudgetBook | None:
    """The workbook's budget, or None when it has no ``XE_Budget`` Table (a plain ledger).

    ``book``: ``path`` already open *with tables loaded* (a workflow opens it once for all
    its readers); it is left open.
    """
    path = Path(path)
    own = book is None
    if own:
        try:
            book = python_calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
        except Exception:  # noqa: BLE001 — not a workbook with tables: the ledger reader reports real problems
            return None
    try:
        if not _table_names(book):
            return None  # no Tables at all: not a budget workbook
        from xl_expense.io.budget_template import TABLE_BUDGET, TABLE_CONTROLS

        budget_rows = table_rows(book, TABLE_BUDGET)
        if budget_rows is None:
            return None
        table = book.get_table_by_name(TABLE_BUDGET)
        # calamine's positions are 0-based and cover the data rows: the header is just above.
        (first_data, first_col), (end_row, end_col) = table.start, table.end
        layout = {"sheet": table.sheet, "first_col": first_col + 1, "header_row": first_data,
                  "last_row": end_row + 1, "width": end_col - first_col + 1,
                  "rows": tuple(first_data + 1 + i for i, r in enumerate(budget_rows) if _is_line(r))}
        controls = table_rows(book, TABLE_CONTROLS) or []
        values = _budget_settings(path, book)
    finally:
        if own:
            book.close()
    from xl_expense.io.budget_template import DEFAULT_STOP_PCT, DEFAULT_WARN_PCT

    try:
        year = int(float(values["year"]))
        budget_by = str(values.get("budget_by") or "department").strip()
        warn = float(values.get("warn_pct") or DEFAULT_WARN_PCT)
        stop = float(values.get("stop_pct") or DEFAULT_STOP_PCT)
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError("the budget year (预算年度 / Budget year) is missing or not a number",
                            "fill it in on the Settings sheet", str(path)) from exc
    if budget_by not in UNIT_COLUMNS:
        raise SettingsError(f"预算口径 / budget by is {budget_by!r}", "use department, project or stage", str(path))
    actions = [r for r in controls if len(r) >= 3 and str(r[0]).strip()]
    policy = ControlPolicy(
        warn_pct=warn, stop_pct=stop,
        annual_action={str(r[0]).strip(): str(r[1]).strip() for r in actions if str(r[1]).strip()},
        monthly_action={str(r[0]).strip(): str(r[2]).strip() for r in actions if str(r[2]).strip()},
    )
    return BudgetBook(_budget_frame(budget_rows), year, budget_by, policy, **layout)
