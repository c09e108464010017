"""Rules on missing information: missing_receipt, missing_field."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_expense import schema
from xl_expense.core.audit.registry import (
    flags,
    group_hits,
    join_text,
    ledger_receipt_numbers,
    money,
    money1,
    no_hits,
    passes,
    row_hits,
    rule,
)
from xl_expense.core.settings import Settings
from xl_expense.errors import SettingsError

#: From this many rows on, a column empty on every row is taken as missing from the export
#: (one finding for the ledger); a handful of rows without a value are flagged one by one.
ABSENT_COLUMN_MIN_ROWS = 10

_F = {"date": "2026-03-03", "person": "张三", "vendor": "国航", "category": "差旅费"}

#: Column names as users know them, for messages.
FIELD_NAMES = {
    "zh": {"date": "日期", "amount": "金额", "category": "费用类别", "description": "摘要", "person": "报销人",
           "department": "部门", "customer": "客户", "vendor": "商户", "receipt": "发票号", "project": "项目",
           "region": "地区", "card": "卡号"},
    "en": {c: c for c in schema.LEDGER_COLUMNS},
}


@rule("missing_receipt", "warning", code="RCP", title_zh="缺少发票", title_en="Missing receipt",
      doc_zh="金额不低于发票门槛（receipt_threshold，默认 1,000）却没有发票号/票据号。",
      examples=[
          flags([{**_F, "amount": 1000.0}], note="at the threshold"),
          flags([{**_F, "amount": 2300.0, "receipt": "无"}], note="placeholder is no receipt"),
          passes([{**_F, "amount": 2300.0, "receipt": "04412345"}]),
          passes([{**_F, "amount": 999.99}]),
      ])
def missing_receipt(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Amount is at or above `receipt_threshold` but no receipt or invoice number is given.

    Placeholders such as 无, -, N/A or 0 count as no receipt.
    """
    threshold = float(settings.receipt_threshold)
    amount = ledger["amount"]
    candidates = (amount >= threshold) & (amount > 0)
    if not candidates.any():
        return no_hits()
    # Fold receipts only where the amount calls for one: a fraction of a million rows.
    if len(ledger) >= ABSENT_COLUMN_MIN_ROWS and ledger["receipt"].isna().all():
        return _no_receipt_column(ledger.loc[candidates], threshold, settings)
    numbers = ledger_receipt_numbers(ledger, candidates)
    hits = ledger.loc[numbers.index[numbers.isna().to_numpy()]]
    if hits.empty:
        return no_hits()
    score = 0.5 + 0.5 * np.minimum(1.0, (hits["amount"] / max(threshold, 1.0) - 1.0).to_numpy() / 9.0)
    amount_t = money(hits["amount"], settings.currency)
    threshold_t = money1(threshold, settings.currency)
    if settings.lang == "zh":
        message = join_text("金额 ", amount_t, " 不低于发票门槛 ", threshold_t, "，但没有发票号")
    else:
        message = join_text("Amount ", amount_t, " is at or above the receipt threshold ", threshold_t,
                            " but has no receipt number")
    return row_hits(hits.index, score, message)


def _no_receipt_column(due: pd.DataFrame, threshold: float, settings: Settings) -> pd.DataFrame:
    """One finding for the whole ledger when it holds no receipt numbers at all.

    Flagging every claim above the threshold would bury the reviewer in rows that all say
    the same thing: the export left out the receipt column.
    """
    total = money1(float(due["amount"].sum()), settings.currency)
    threshold_t = money1(threshold, settings.currency)
    if settings.lang == "zh":
        message = (f"台账中没有任何发票号（可能缺少发票号列）：{len(due):,} 笔不低于发票门槛 {threshold_t} 的费用"
                   f"（共 {total}）无法核对票据")
    else:
        message = (f"The ledger holds no receipt numbers at all (is the receipt column missing?): {len(due):,} "
                   f"claims at or above {threshold_t} (total {total}) cannot be checked")
    return group_hits([{"group_key": "missing_receipt|no_column", "score": 1.0, "message": message,
                        "amount": float(due["amount"].sum())}])


@rule("missing_field", "warning", code="MIS", title_zh="缺少必填项", title_en="Missing field",
      doc_zh="必填列（required_fields，默认 日期、金额、报销人、费用类别）为空。",
      examples=[
          flags([{**_F, "amount": 80.0, "person": None}]),
          flags([{**_F, "amount": 80.0, "vendor": None}], required_fields="person,vendor"),
          passes([{**_F, "amount": 80.0, "vendor": None}], note="vendor not required by default"),
      ])
def missing_field(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """A required column (`required_fields`: date, amount, person, category by default) is empty.

    The reader already reports rows without a readable date or amount, so in practice this
    catches claims without a person or category, which no later rule can attribute.
    """
    unknown = [f for f in settings.required_fields if f not in schema.LEDGER_COLUMNS]
    if unknown:
        raise SettingsError(f"required_fields names unknown column(s): {', '.join(unknown)}",
                            f"use columns from: {', '.join(schema.LEDGER_COLUMNS)}")
    fields = list(dict.fromkeys(settings.required_fields))
    if not fields:
        return no_hits()
    missing = ledger[fields].isna()
    # A column empty on every row is one problem of the ledger, not one per row.
    absent = [f for f in fields if len(ledger) >= ABSENT_COLUMN_MIN_ROWS and bool(missing[f].all())]
    column_hits = _absent_columns(absent, len(ledger), settings)
    fields = [f for f in fields if f not in absent]
    missing = missing[fields]
    hit = missing.any(axis=1)
    if not hit.any():
        return column_hits
    missing = missing[hit]
    names = FIELD_NAMES[settings.lang]
    sep = "、" if settings.lang == "zh" else ", "
    listed = pd.Series("", index=missing.index, dtype=object)
    for field in fields:  # a handful of columns, each step vectorised over rows
        part = np.where(missing[field].to_numpy(), names[field], "")
        joiner = np.where((listed != "").to_numpy() & (part != ""), sep, "")
        listed = listed + joiner + part
    count = missing.sum(axis=1)
    score = 0.4 + 0.2 * np.minimum(count.to_numpy() - 1, 3) / 3
    prefix = "缺少：" if settings.lang == "zh" else "Missing: "
    rows = row_hits(missing.index, score, prefix + listed)
    if column_hits.empty:
        return rows
    return pd.concat([rows.assign(group_key=None), column_hits])


def _absent_columns(fields: list[str], n_rows: int, settings: Settings) -> pd.DataFrame:
    """One group finding per required column that is empty on every row."""
    if not fields:
        return no_hits()
    names = FIELD_NAMES[settings.lang]
    records = []
    for field in fields:
        if settings.lang == "zh":
            message = f"必填列“{names[field]}”在全部 {n_rows:,} 行中都为空（台账可能缺少此列，可用 --map 指定）"
        else:
            message = (f"Required column '{names[field]}' is empty on all {n_rows:,} rows "
                       "(is the column missing? name it with --map)")
        records.append({"group_key": f"missing_field|{field}", "score": 0.8, "message": message})
    return group_hits(records)
