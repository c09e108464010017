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
