"""Budget vs actual by category, by unit (department) or by line, from the budget monitor.

Actuals are never re-computed here: the input is the table
:func:`xl_expense.core.budget_monitor.monitor_budget` returns (the ``预警/Alerts`` sheet), so
the dashboard, the alerts sheet and the transfer command agree on every number, including the
pro-rata plan-to-date and the unbudgeted spend lines.
"""

from __future__ import annotations

import pandas as pd

from xl_expense.core.analysis._common import (
    AnalysisError,
    group_sort,
    key_text,
    money,
    ratio,
    ratio4,
)
from xl_expense.core.budget_monitor import ALERT_COLUMNS, UNBUDGETED

BUDGET_VIEW_COLUMNS = ("level", "group", "planned_year", "planned_to_date", "actual_to_date", "variance",
                       "pace", "used_pct", "remaining", "forecast_seasonal", "unbudgeted_actual", "lines_over")
_LEVELS = {"category": "category", "unit": "unit", "department": "unit", "line": "line"}
_SUM = ("planned_year", "planned_to_date", "actual_to_date", "remaining", "forecast_seasonal")


def budget_vs_actual(alerts: pd.DataFrame, by: str = "category") -> pd.DataFrame:
    """Plan and spend to date per category, per unit or per budget line.

    Parameters
    ----------
    alerts : DataFrame
        The monitor's table (``monitor_budget(budget, ledger, as_of=…, year=…)``).
    by : {"category", "unit", "department", "line"}
        ``department`` is an alias of ``unit`` (budgets are usually by department).

    Returns
    -------
    DataFrame
        ``level``, ``group``, sums of ``planned_year``, ``planned_to_date``, ``actual_to_date``,
        ``remaining`` and ``forecast_seasonal``; ``variance`` = actual − plan to date (positive =
        ahead of plan), ``pace`` = actual ÷ plan to date, ``used_pct`` = actual ÷ annual plan,
        ``unbudgeted_actual`` = spend on category × unit pairs with no budget line, and
        ``lines_over`` = lines whose status is ``over`` or ``stop``. Largest plan first.
    """
    if by not in _LEVELS:
        raise AnalysisError(f"cannot show the budget by {by!r}", "use category, unit, department or line")
    missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
    if missing:
        raise AnalysisError(f"budget alerts table is missing column(s): {', '.join(missing)}",
                            "pass the table monitor_budget returned")
    column = _LEVELS[by]
    frame = alerts.copy()
    unbudgeted = frame["line"] == UNBUDGETED
    if column == "line":
        # Unbudgeted spend lines share the same "line" text; name them by their category|unit.
        frame["line"] = frame["line"].where(~unbudgeted, UNBUDGETED + " " + frame["category"].astype(str)
                                            + "|" + frame["unit"].astype(str))
    keys = key_text(frame[column]).rename("group")
    grouped = frame.groupby(keys, dropna=False, sort=False)
    out = grouped[list(_SUM)].sum()
    out["unbudgeted_actual"] = frame["actual_to_date"].where(unbudgeted, 0.0).groupby(keys, dropna=False,
                                                                                       sort=False).sum()
    out["lines_over"] = frame["status"].isin(["over", "stop"]).groupby(keys, dropna=False, sort=False).sum()
    out = out.reset_index()
    out["group"] = out["group"].astype(object).where(out["group"].notna(), None)
    out["level"] = "unit" if column == "unit" else column
    out["variance"] = out["actual_to_date"] - out["planned_to_date"]
    out["pace"] = ratio4(ratio(out["actual_to_date"], out["planned_to_date"]))
    out["used_pct"] = ratio4(ratio(out["actual_to_date"], out["planned_year"]))
    for col in (*_SUM, "variance", "unbudgeted_actual"):
        out[col] = money(out[col].astype("float64"))
    out["lines_over"] = out["lines_over"].astype("int64")
    return group_sort(out, "planned_year", "group")[list(BUDGET_VIEW_COLUMNS)]
