"""The budget as a DataFrame: one row per budget line (category × unit), twelve monthly amounts.

``unit`` is the department, project or sales stage a line belongs to (the workbook's
``budget_by`` setting says which). Every budget module (fill, monitor, transfers) and the
budget workbook's Budget Table share this shape, so a budget read from Excel, filled from
history or adjusted by a transfer is the same kind of object.
"""

from __future__ import annotations

import pandas as pd

from xl_expense.errors import XlExpenseError

MONTHS = tuple(f"m{i}" for i in range(1, 13))
KEY_COLUMNS = ("category", "unit")
BUDGET_COLUMNS = KEY_COLUMNS + MONTHS
#: Ledger column that holds each kind of budget unit.
UNIT_COLUMNS = {"department": "department", "project": "project", "stage": "project"}


class BudgetError(XlExpenseError):
    """A budget operation would break the budget (negative line, unbalanced log, unknown line)."""


def line_key(budget: pd.DataFrame) -> pd.Series:
    """``"category|unit"`` for every line: the id transfers and alerts refer to."""
    return budget["category"].astype(str) + "|" + budget["unit"].astype(str)


def empty_budget() -> pd.DataFrame:
    """A budget with no lines, correctly typed."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in KEY_COLUMNS})
    for month in MONTHS:
        frame[month] = pd.Series(dtype="float64")
    return frame


def year_total(budget: pd.DataFrame) -> pd.Series:
    """Planned amount of each line for the whole year."""
    return budget[list(MONTHS)].sum(axis=1)
