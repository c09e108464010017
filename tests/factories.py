"""Small hand-made DataFrames shared by several test modules."""

from __future__ import annotations

import pandas as pd

from xl_expense.schema import FINDING_COLUMNS


def make_findings(rows: list[dict]) -> pd.DataFrame:
    """A findings DataFrame with every FINDING_COLUMN, missing ones as NA."""
    df = pd.DataFrame(rows)
    for col in FINDING_COLUMNS:
        if col not in df:
            df[col] = None
    df["row"] = df["row"].astype("Int64")
    return df[list(FINDING_COLUMNS)]


def make_budget(lines: dict[tuple[str, str], list[float] | float]) -> pd.DataFrame:
    """A budget from {(category, unit): 12 monthly amounts or one flat monthly amount}."""
    import numpy as np

    from xl_expense.core.budget import MONTHS

    rows = []
    for (category, unit), months in lines.items():
        values = [float(months)] * 12 if np.isscalar(months) else [float(v) for v in months]
        rows.append({"category": category, "unit": unit, **dict(zip(MONTHS, values))})
    return pd.DataFrame(rows)


def assert_same_ledger(ours, theirs) -> None:
    """Two :class:`~xl_expense.io.ledger_reader.Ledger` objects are equal field by field
    (DataFrames exactly, with their dtypes)."""
    import dataclasses

    for f in dataclasses.fields(theirs):
        left, right = getattr(ours, f.name), getattr(theirs, f.name)
        if isinstance(right, pd.DataFrame):
            pd.testing.assert_frame_equal(left, right)
        else:
            assert left == right, f.name
