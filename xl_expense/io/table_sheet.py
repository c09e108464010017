"""One DataFrame as an Excel Table on a sheet of its own: the shape of most sheets we add.

Alerts, the budget basis, the adjustments log: each is a filterable Table with a frozen,
labelled header, number formats per column and sensible widths. Values only; ledger text
stays text (the writer never turns a string into a formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xl_expense.io.sheet_model import Block, CondFormat, NewSheet, TableSpec
from xl_expense.io.sheet_xml import col_letter

#: Column width by style key (characters); text columns are sized from their content.
_WIDTHS = {"money": 14.0, "percent": 9.0, "date": 11.0, "datetime": 18.0, "int": 8.0, "score": 8.0}


def plain_cell(value: object) -> object:
    """NaN/NaT/NA become empty cells; numpy scalars become Python ones."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _column_cells(series: pd.Series) -> list[object]:
    """``[plain_cell(v) for v in series]``, a column at a time.

    Iterating a Series yields what ``itertuples`` yields (Python scalars for numpy dtypes,
    Timestamps for datetimes, the objects themselves otherwise); ``isna`` of the column is
    ``pd.isna`` of each value. Numbers, text and booleans need nothing more, so only other
    values go through :func:`plain_cell`.
    """
    missing = series.isna().to_numpy(dtype=bool)
    if series.dtype.kind in "iufb" and isinstance(series.dtype, np.dtype):
        values = series.to_numpy().tolist()  # Python int/float/bool, like iterating the Series
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing.tolist())]
        return values
    plain = _PLAIN_TYPES
    return [None if m else (v if type(v) in plain else plain_cell(v)) for v, m in zip(series, missing.tolist())]


#: Values :func:`plain_cell` returns unchanged when they are not missing.
_PLAIN_TYPES = frozenset((str, int, float, bool))


def table_sheet(name: str, frame: pd.DataFrame, *, headers: Mapping[str, str], table_name: str,
                styles: Mapping[str, str] | None = None, highlights: Sequence[tuple[str, str, str]] = (),
                tab_color: str | None = None) -> NewSheet:
    """``frame``'s columns (in ``headers`` order, labelled by it) as the Table ``table_name``.

    ``highlights``: (column, formula on that column's first data cell, highlight key) for
    conditional formatting over the whole column, e.g. ``("status", '$H2="stop"', "error")``;
    the placeholder ``{col}`` in the formula is replaced by the column letter.
    """
    columns = list(headers)
    styles = dict(styles or {})
    if columns and frame.columns.is_unique:
        rows = [list(record) for record in zip(*(_column_cells(frame[c]) for c in columns))]
    else:
        rows = [[plain_cell(v) for v in record] for record in frame[columns].itertuples(index=False, name=None)]
    if not rows:  # Excel wants a Table to have at least one data row
        rows = [[None] * len(columns)]
    last_row = len(rows) + 1
    last_col = col_letter(len(columns))
    sheet = NewSheet(
        name,
        blocks=[Block(1, 1, [[headers[c] for c in columns]]),
                Block(2, 1, rows, styles=[styles.get(c) for c in columns])],
        freeze="A2",
        tables=[TableSpec(table_name, f"A1:{last_col}{last_row}")],
        tab_color=tab_color,
    )
    for i, column in enumerate(columns, start=1):
        style = styles.get(column)
        if style in _WIDTHS:
            width = _WIDTHS[style]
        else:
            longest = max([len(str(headers[column]))] + [len(str(r[i - 1])) for r in rows[:200] if r[i - 1]])
            width = min(max(8.0, longest * 1.6 + 2), 60.0)
        sheet.col_widths[i] = width
    for column, formula, highlight in highlights:
        letter = col_letter(columns.index(column) + 1)
        sheet.cond_formats.append(CondFormat(f"A2:{last_col}{last_row}", formula.format(col=letter), highlight))
    return sheet
