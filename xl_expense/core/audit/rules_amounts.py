"""Rules on a single amount: below_threshold, round_amount, over_policy_limit, negative_amount.

Refunds (amounts ≤ 0) are left out of the amount rules except ``negative_amount`` itself:
a -4,900 reversal is not "just under the limit".
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import (
    flags,
    join_text,
    label,
    money,
    money1,
    no_hits,
    passes,
    plain_number,
    row_hits,
    rule,
)
from xl_expense.core.settings import Settings
from xl_expense.core.taxonomy import default_taxonomy

_R = {"date": "2026-03-03", "person": "张三", "vendor": "某礼品店", "category": "礼品"}


@rule("below_threshold", "info", code="BTH", title_zh="接近审批限额", title_en="Just below the limit",
      doc_zh="金额在审批限额以下 5% 以内（默认 4,750–5,000），可能为规避审批而压低金额；"
             "同一报销人有 3 笔以上时为警告。",
      examples=[
          flags([{**_R, "amount": 4990.0}]),
          flags([{**_R, "amount": 5000.0}], note="at the limit itself"),
          passes([{**_R, "amount": 4700.0}]),
          passes([{**_R, "amount": 5000.01}], note="above the limit needs approval anyway"),
          passes([{**_R, "amount": -4900.0}], note="refund"),
      ])
def below_threshold(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Amount lies just below the approval limit (within `below_threshold_pct`, 5 % by default).

    Claims kept just under the limit avoid a second approval. One such claim is information;
    a person with three or more is a warning.
    """
    limit = float(settings.approval_limit)
    floor = limit * (1.0 - float(settings.below_threshold_pct))
    amount = ledger["amount"]
    hit = (amount >= floor) & (amount <= limit) & (amount > 0)
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    per_person = hits.groupby(hits["person"].astype(object).fillna("\x00"))["amount"].transform("size")
    repeated = (per_person >= 3) & hits["person"].notna()
    closeness = (hits["amount"] - floor) / max(limit - floor, 1e-9)
    score = 0.4 + 0.3 * closeness.to_numpy() + 0.3 * repeated.to_numpy()
    pct = ((limit - hits["amount"]) / limit * 100).map("{:.1f}".format).astype(object)
    amount_t = money(hits["amount"], settings.currency)
    limit_t = money1(limit, settings.currency)
    count_t = per_person.astype(str).astype(object)
    if settings.lang == "zh":
        message = join_text("金额 ", amount_t, " 仅比审批限额 ", limit_t, " 低 ", pct, "%")
        extra = join_text("；该报销人共有 ", count_t, " 笔此类金额")
    else:
        message = join_text("Amount ", amount_t, " is only ", pct, "% below the approval limit ", limit_t)
        extra = join_text("; this person has ", count_t, " such amounts")
    message = message + extra.where(repeated, "")
    return row_hits(hits.index, score, message, severity=list(np.where(repeated, "warning", "info")))


@rule("round_amount", "info", code="RND", title_zh="整数金额", title_en="Round amount",
      doc_zh="金额是整千（round_multiple）的整数倍且不小于 round_min；真实消费很少恰好是整数，估算或虚构的金额常常是。",
      examples=[
          flags([{**_R, "amount": 3000.0}]),
          passes([{**_R, "amount": 3000.5}]),
          passes([{**_R, "amount": 2999.0}]),
          passes([{**_R, "amount": 500.0}], note="below round_min"),
      ])
def round_amount(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Amount is an exact multiple of `round_multiple` (1,000) and at least `round_min`.

    Real receipts rarely come to a round sum; estimated or invented ones often do.
    """
    step = float(settings.round_multiple)
    if step <= 0:
        return no_hits()
    amount = ledger["amount"]
    ratio = amount / step
    # Compare in cents: 3000.0000001 from a float sum is still round, 3000.01 is not.
    hit = (amount >= max(float(settings.round_min), step)) & ((ratio - ratio.round()).abs() * step < 0.005)
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    # 10,000 is rounder than 3,000: the score rises with the power of ten it is a multiple of.
    rounder = (((hits["amount"] / (step * 10)) % 1).abs() * step * 10 < 0.005).to_numpy()
    score = np.where(rounder, 0.5, 0.3)
    amount_t = money(hits["amount"], settings.currency)
    step_t = plain_number(step)
    if settings.lang == "zh":
        message = join_text("金额 ", amount_t, " 恰为 ", step_t, " 的整数倍")
    else:
        message = join_text("Amount ", amount_t, " is an exact multiple of ", step_t)
    return row_hits(hits.index, score, message)


def _fold(text: pd.Series) -> pd.Series:
    """Category names compared loosely: full/half width, case and spaces do not matter, and a
    known synonym or English label means its category (招待费, Customer hospitality → 客户招待),
    so a limit set for 客户招待 applies however the ledger or the classifier spelled it."""
    taxonomy = default_taxonomy()

    def one(v):
        if v is None or v != v:
            return None
        return taxonomy.canonical(v) or "".join(unicodedata.normalize("NFKC", str(v)).lower().split())

    return text.astype(object).map(one)


@rule("over_policy_limit", "error", code="POL", title_zh="超出类别限额", title_en="Over category limit",
      doc_zh="单笔金额超过该费用类别的政策限额（policy_limits，例如 客户招待=3000）。",
      examples=[
          flags([{**_R, "category": "客户招待", "amount": 3200.0}], policy_limits={"客户招待": 3000.0}),
          flags([{**_R, "category": " 客户招待 ", "amount": 3200.0}], policy_limits={"客户招待": 3000.0},
                note="spaces around the category"),
          passes([{**_R, "category": "客户招待", "amount": 3000.0}], policy_limits={"客户招待": 3000.0}),
          passes([{**_R, "category": "差旅费", "amount": 9000.0}], policy_limits={"客户招待": 3000.0}),
          flags([{**_R, "category": "招待费", "amount": 3200.0}], policy_limits={"客户招待": 3000.0},
                note="a synonym of the category"),
          flags([{**_R, "category": "客户招待", "amount": 3200.0}], policy_limits={"Customer hospitality": 3000.0},
                note="the limit set by the English label"),
      ])
def over_policy_limit(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Amount is above the per-category limit set in `policy_limits` (e.g. 客户招待 = 3,000)."""
    if not settings.policy_limits:
        return no_hits()
    limits = {_fold(pd.Series([k])).iloc[0]: float(v) for k, v in settings.policy_limits.items()}
    # Fold the few distinct categories, not every row.
    codes, uniques = pd.factorize(ledger["category"])
    folded = _fold(pd.Series(uniques, dtype=object))
    # The extra NaN at the end is what code -1 (no category) picks.
    limit_of_unique = np.append(folded.map(limits).to_numpy(dtype="float64"), np.nan)
    limit = pd.Series(limit_of_unique[codes], index=ledger.index)
    hit = ledger["amount"] > limit
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    cap = limit[hit]
    score = 0.6 + 0.4 * np.minimum(1.0, (hits["amount"] / cap - 1.0).to_numpy())
    amount_t = money(hits["amount"], settings.currency)
    cap_t = money(cap, settings.currency)
    category = label(hits["category"]).str.strip()
    if settings.lang == "zh":
        message = join_text("金额 ", amount_t, " 超过 ", category, " 的单笔限额 ", cap_t)
    else:
        message = join_text("Amount ", amount_t, " is above the ", category, " limit of ", cap_t)
    return row_hits(hits.index, score, message)


@rule("negative_amount", "info", code="NEG", title_zh="负数金额（退款）", title_en="Negative amount (refund)",
      doc_zh="金额为负，通常是退款或冲销；请确认对应的原始报销存在。",
      examples=[
          flags([{**_R, "amount": -120.0}]),
          passes([{**_R, "amount": 0.0}]),
          passes([{**_R, "amount": 120.0}]),
      ])
def negative_amount(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Amount is negative: a refund or reversal; check that the original claim exists."""
    hit = ledger["amount"] < 0
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    amount_t = money(hits["amount"], settings.currency)
    if settings.lang == "zh":
        message = join_text("负数金额 ", amount_t, "（退款或冲销），请核对原报销")
    else:
        message = join_text("Negative amount ", amount_t, " (refund or reversal); check the original claim")
    return row_hits(hits.index, 0.2, message)
