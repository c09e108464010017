"""Rules about the same money claimed more than once: duplicate, near_duplicate, split_transaction."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import (
    day_numbers,
    day_text,
    flags,
    join_text,
    key_codes,
    label,
    ledger_receipt_numbers,
    memo,
    money,
    money1,
    no_hits,
    passes,
    row_hits,
    row_ref,
    rule,
)
from xl_expense.core.settings import Settings

_A = {"date": "2026-03-03", "person": "张三", "vendor": "海底捞", "amount": 880.0}


@rule("duplicate", "error", code="DUP", title_zh="重复报销", title_en="Duplicate claim",
      doc_zh="同一天、同一报销人、同一商户、同一金额出现两次以上，或同一发票号被使用两次。",
      examples=[
          flags([_A, _A], expect_rows=(1,), note="second copy of the same expense"),
          flags([{**_A, "receipt": "INV-001"}, {**_A, "date": "2026-04-09", "amount": 120.0, "receipt": "inv 001"}],
                expect_rows=(1,), note="same receipt number, written differently"),
          passes([_A, {**_A, "amount": 881.0}], note="different amount"),
          passes([{**_A, "receipt": "无"}, {**_A, "receipt": "无", "amount": 99.0}], note="placeholder receipts"),
      ])
def duplicate(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The same expense appears twice: same date, person, vendor and amount, or a receipt number used twice.

    The first occurrence is the original; each later copy is flagged and names the row it
    repeats, so the reviewer can compare the two lines.
    """
    content = _content_duplicates(ledger, settings)
    receipt = _receipt_duplicates(ledger, settings)
    receipt = receipt[~receipt.index.isin(content.index)]
    return pd.concat([content, receipt]) if len(receipt) else content


def _content_duplicates(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    amount = ledger["amount"]
    # Two unnamed expenses of the same amount on one day (two taxi rides) are not evidence:
    # at least a person or a vendor must match too.
    usable = (ledger["date"].notna() & amount.notna() & (amount != 0)
              & (ledger["person"].notna() | ledger["vendor"].notna())).to_numpy()
    key = key_codes(ledger, ["date", "person", "vendor", "amount"], na_is_value=True)
    key = np.where(usable, key, -1)
    return _later_copies(ledger, key, settings, _content_message)


def _receipt_duplicates(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    numbers = ledger_receipt_numbers(ledger)
    key = pd.factorize(numbers, use_na_sentinel=True)[0].astype("int64")
    return _later_copies(ledger, key, settings, _receipt_message)


def _later_copies(ledger, key: np.ndarray, settings: Settings, message) -> pd.DataFrame:
    """Rows whose key (≥ 0) appeared on an earlier row; message gets the first row's position."""
    keys = pd.Series(key, index=ledger.index)
    valid = keys >= 0
    later = valid & keys.duplicated()
    if not later.any():
        return no_hits()
    pos = pd.Series(np.arange(len(ledger)), index=ledger.index)
    first = pos[valid].groupby(keys[valid]).transform("min")
    first_pos = first[later].to_numpy()
    hits = ledger[later]
    ref = row_ref(ledger["sheet"].iloc[first_pos].set_axis(hits.index),
                  ledger["row"].iloc[first_pos].set_axis(hits.index), settings.lang)
    return row_hits(hits.index, 1.0, message(hits, ref, settings))


def _content_message(hits: pd.DataFrame, ref: pd.Series, settings: Settings) -> pd.Series:
    what = join_text(day_text(hits["date"]), " ", label(hits["person"]), " ", label(hits["vendor"]), " ",
                     money(hits["amount"], settings.currency))
    if settings.lang == "zh":
        return join_text("与 ", ref, " 的日期、报销人、商户、金额完全相同（", what, "）")
    return join_text("Same date, person, vendor and amount as ", ref, " (", what, ")")


def _receipt_message(hits: pd.DataFrame, ref: pd.Series, settings: Settings) -> pd.Series:
    number = label(hits["receipt"])
    if settings.lang == "zh":
        return join_text("发票号 ", number, " 已在 ", ref, " 报销过")
    return join_text("Receipt number ", number, " was already claimed at ", ref)


# --------------------------------------------------------------------------- near_duplicate

@rule("near_duplicate", "warning", code="NDP", title_zh="疑似重复", title_en="Near duplicate",
      doc_zh="同一报销人、同一商户、同一金额在相隔几天内（默认 3 天）再次出现。",
      examples=[
          flags([_A, {**_A, "date": "2026-03-05"}], expect_rows=(1,), note="two days apart"),
          flags([_A, {**_A, "date": "2026-03-06"}], expect_rows=(1,), note="three days apart: last day in"),
          passes([_A, {**_A, "date": "2026-03-07"}], note="four days apart"),
          passes([_A, _A], note="same day is a duplicate, not a near duplicate"),
          passes([_A, {**_A, "date": "2026-03-04", "person": "李四"}], note="another person"),
      ])
def near_duplicate(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The same person claims the same amount from the same vendor again within a few days.

    Catches a claim re-submitted with a changed date. Each later claim is flagged with the date
    and row of the earlier one.
    """
    hit = near_pairs(near_days(ledger), settings.near_duplicate_days)
    if not len(hit.pos):
        return no_hits()
    hits = ledger.iloc[hit.pos]
    prev = hit.prev_pos
    ref = row_ref(ledger["sheet"].iloc[prev].set_axis(hits.index), ledger["row"].iloc[prev].set_axis(hits.index),
                  settings.lang)
    prev_day = day_text(ledger["date"].iloc[prev].set_axis(hits.index))
    gap_days = pd.Series(hit.gap, index=hits.index)
    span = max(settings.near_duplicate_days - 1, 1)
    score = 0.9 - 0.4 * (gap_days.to_numpy() - 1) / span
    amount_t = money(hits["amount"], settings.currency)
    gap_t = gap_days.astype(str).astype(object)
    if settings.lang == "zh":
        message = join_text("与 ", ref, "（", prev_day, "）的报销人、商户、金额 ", amount_t, " 相同，仅相隔 ",
                            gap_t, " 天")
    else:
        message = join_text("Same person, vendor and amount (", amount_t, ") as ", ref, " on ", prev_day,
                            ", ", gap_t, " day(s) earlier")
    return row_hits(hits.index, score, message)


class NearDays(NamedTuple):
    """Rows keyed by person + vendor + amount, and one line per (key, day)."""

    line_of_row: np.ndarray  # the (key, day) line of each keyed row
    row_pos: np.ndarray      # ledger position of each keyed row, increasing
    gap: np.ndarray          # per line: days since the key's previous day (0: first day of the key)
    prev_pos: np.ndarray     # per line: first row of the key's previous day (-1: none)


class NearPairs(NamedTuple):
    """Rows whose key occurred 1…days days before, by position."""

    pos: np.ndarray
    gap: np.ndarray
    prev_pos: np.ndarray


def near_days(ledger: pd.DataFrame) -> NearDays:
    """Rows keyed by person + vendor + amount, and one line per (key, day) with the gap to the
    previous day of that key. Independent of the thresholds (the preview computes it once).

    Arrays rather than a grouped frame: this runs in every audit and preview, and on a small
    ledger pandas' per-call overhead was most of its cost.
    """
    return memo(ledger, "near_days", lambda: _near_days(ledger))


def _near_days(ledger: pd.DataFrame) -> NearDays:
    amount = ledger["amount"]
    usable = (ledger["date"].notna() & (amount > 0)).to_numpy()
    key = np.where(usable, key_codes(ledger, ["person", "vendor", "amount"]), -1)
    row_pos = np.flatnonzero(key >= 0)
    key, day = key[row_pos], day_numbers(ledger["date"])[row_pos]
    # One line per (key, day), sorted, holding the first row of that day.
    order = np.lexsort((row_pos, day, key))
    k, d = key[order], day[order]
    new_line = np.r_[True, (k[1:] != k[:-1]) | (d[1:] != d[:-1])] if len(k) else np.array([], dtype=bool)
    starts = np.flatnonzero(new_line)
    line_of_row = np.empty(len(key), dtype="int64")
    line_of_row[order] = np.cumsum(new_line) - 1
    line_key, line_day, line_pos = k[starts], d[starts], row_pos[order][starts]
    same_key = np.r_[False, line_key[1:] == line_key[:-1]] if len(starts) else np.array([], dtype=bool)
    gap = np.where(same_key, line_day - np.r_[0, line_day[:-1]] if len(starts) else line_day, 0)
    prev_pos = np.where(same_key, np.r_[-1, line_pos[:-1]] if len(starts) else line_pos, -1)
    return NearDays(line_of_row, row_pos, gap.astype("int64"), prev_pos.astype("int64"))


def near_pairs(prepared: NearDays, days: int) -> NearPairs:
    """Rows whose key occurred 1…``days`` days before (with the gap and that day's first row)."""
    close = (prepared.gap >= 1) & (prepared.gap <= days)
    line = prepared.line_of_row[close[prepared.line_of_row]]
    return NearPairs(prepared.row_pos[close[prepared.line_of_row]], prepared.gap[line], prepared.prev_pos[line])


# --------------------------------------------------------------------------- split_transaction

_S = {"person": "王五", "vendor": "京东", "category": "办公用品"}


@rule("split_transaction", "warning", code="SPL", title_zh="拆分报销", title_en="Split purchase",
      doc_zh="同一报销人（或同一张卡）在几天内（默认 3 天）向同一商户报销多笔，每笔不超过审批限额，合计超过限额；"
             "其中一笔接近限额（90–100%）时为错误。",
      examples=[
          flags([{**_S, "date": "2026-05-11", "amount": 3000.0}, {**_S, "date": "2026-05-11", "amount": 2500.0}],
                expect_rows=(0, 1), note="same day, 5,500 > 5,000"),
          flags([{**_S, "date": "2026-05-11", "amount": 4800.0}, {**_S, "date": "2026-05-13", "amount": 900.0}],
                expect_rows=(0, 1), note="day 3 of the window is in"),
          passes([{**_S, "date": "2026-05-11", "amount": 4800.0}, {**_S, "date": "2026-05-14", "amount": 900.0}],
                 note="day 4 is out of a 3-day window"),
          passes([{**_S, "date": "2026-05-11", "amount": 5600.0}], note="a single item is not a split"),
          passes([{**_S, "date": "2026-05-11", "amount": 2000.0}, {**_S, "date": "2026-05-12", "amount": 2000.0}],
                 note="together within the limit"),
          flags([{"person": "甲", "card": "6222-01", "vendor": "京东", "date": "2026-05-11", "amount": 3000.0},
                 {"person": "乙", "card": "6222-01", "vendor": "京东", "date": "2026-05-12", "amount": 3000.0}],
                expect_rows=(0, 1), note="two people, one card"),
      ])
def split_transaction(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Several items to one vendor within a few days, each within the approval limit, together above it.

    A classic way around an approval limit is to split one purchase into smaller claims. Items
    are grouped by person + vendor and by card + vendor; a window is `split_window_days`
    consecutive calendar days (3: day 1 to day 3). Items above the limit were approved anyway
    and do not count. Severity rises to error when one item lies at 90–100 % of the limit.
    """
    by_person = _split_hits(ledger, settings, "person")
    by_card = _split_hits(ledger, settings, "card")
    by_card = by_card[~by_card.index.isin(by_person.index)]
    return pd.concat([by_person, by_card]) if len(by_card) else by_person


class SplitItems(NamedTuple):
    """Candidate items of the split rule, sorted by key, day and ledger position."""

    key: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    pos: np.ndarray


class SplitHits(NamedTuple):
    """Items inside a qualifying window (by position) with that window's sum, count, span and
    largest item."""

    pos: np.ndarray
    w_sum: np.ndarray
    w_count: np.ndarray
    w_max: np.ndarray
    w_span: np.ndarray


def split_items(ledger: pd.DataFrame, who: str) -> SplitItems:
    """Candidate items (positive, dated, with ``who`` and vendor) keyed by who + vendor.

    Independent of the thresholds, so the threshold preview computes it once.
    """
    return memo(ledger, ("split_items", who), lambda: _split_items(ledger, who))


def _split_items(ledger: pd.DataFrame, who: str) -> SplitItems:
    amount = ledger["amount"]
    usable = (ledger["date"].notna() & (amount > 0)).to_numpy()
    key = np.where(usable, key_codes(ledger, [who, "vendor"]), -1)
    pos = np.flatnonzero(key >= 0)
    key, day, value = key[pos], day_numbers(ledger["date"])[pos], amount.to_numpy()[pos]
    # Sorted once here, so each threshold tried in the preview skips the sort.
    order = np.lexsort((pos, day, key))
    return SplitItems(key[order], day[order], value[order], pos[order])


def split_windows(items: SplitItems, limit: float, width: int) -> SplitHits:
    """Items inside a qualifying window, with that window's sum, count, span and largest item."""
    within = items.amount <= limit
    items = SplitItems(*(a[within] for a in items))
    empty = SplitHits(*(np.array([], dtype=t) for t in ("int64", "float64", "int64", "float64", "int64")))
    if len(items.pos) < 2:
        return empty
    days, line_of_item = _daily_totals(items)
    windows = _trailing_windows(days, width)
    qualifies = (windows["count"] >= 2) & (windows["sum"] > limit)
    if not qualifies.any():
        return empty
    covered = _covering_window(days, qualifies, width)[line_of_item]
    inside = covered >= 0
    window = covered[inside]
    pos = items.pos[inside]
    order = np.argsort(pos, kind="stable")
    window = window[order]
    return SplitHits(pos[order], windows["sum"][window], windows["count"][window], windows["max"][window],
                     windows["span"][window])


def _daily_totals(items: SplitItems) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One line per (key, day), sorted, with sum, count and max; and each item's line number.

    A single int64 key and ``reduceat`` instead of a two-column groupby: this runs once per
    value in the threshold preview, on up to a million items.
    """
    day = items.day
    combined = items.key * (int(day.max() - day.min()) + 1) + (day - day.min())
    already = bool(np.all(combined[1:] >= combined[:-1]))
    order = np.arange(len(combined)) if already else np.argsort(combined, kind="stable")
    ordered = combined[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    amount = items.amount[order]
    first = order[starts]
    count = np.diff(np.r_[starts, len(ordered)])
    days = {
        "key": items.key[first],
        "day": day[first],
        "sum": np.add.reduceat(amount, starts),
        "count": count,
        "max": np.maximum.reduceat(amount, starts),
    }
    line_of_item = np.empty(len(combined), dtype="int64")
    line_of_item[order] = np.repeat(np.arange(len(starts)), count)
    return days, line_of_item


def _split_hits(ledger: pd.DataFrame, settings: Settings, who: str) -> pd.DataFrame:
    limit = float(settings.approval_limit)
    hit = split_windows(split_items(ledger, who), limit, max(int(settings.split_window_days), 1))
    if not len(hit.pos):
        return no_hits()
    hits = ledger.iloc[hit.pos]
    total = pd.Series(hit.w_sum, index=hits.index)
    count = pd.Series(hit.w_count, index=hits.index).astype("int64")
    span = pd.Series(hit.w_span, index=hits.index).astype("int64")
    biggest = pd.Series(hit.w_max, index=hits.index)
    near = (biggest >= 0.9 * limit).to_numpy()
    score = 0.6 + 0.3 * near + 0.1 * np.minimum(1.0, total.to_numpy() / limit - 1.0)
    severity = np.where(near, "error", "warning")
    return row_hits(hits.index, score, _split_message(hits, who, total, count, span, biggest, near, settings),
                    severity=list(severity))


def _trailing_windows(days: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """For each (key, day) line: sum, count, max and span of the `width`-day window ending that day.

    Lines are unique per (key, day) and sorted, so a window holds at most ``width`` lines:
    looking back ``width - 1`` lines is enough, each step a vectorised shift.
    """
    key = days["key"]
    day = days["day"]
    total = days["sum"].copy()
    count = days["count"].copy()
    biggest = days["max"].copy()
    first_day = day.copy()
    for back in range(1, width):
        prev_key = np.roll(key, back)
        prev_day = np.roll(day, back)
        inside = (prev_key == key) & (day - prev_day <= width - 1)
        inside[:back] = False
        total += np.where(inside, np.roll(days["sum"], back), 0.0)
        count += np.where(inside, np.roll(days["count"], back), 0)
        biggest = np.maximum(biggest, np.where(inside, np.roll(days["max"], back), 0.0))
        first_day = np.where(inside, np.minimum(first_day, prev_day), first_day)
    return {"sum": total, "count": count, "max": biggest, "span": day - first_day + 1}


def _covering_window(days: dict[str, np.ndarray], qualifies: np.ndarray, width: int) -> np.ndarray:
    """Line index of a qualifying window that contains each line, or -1.

    The first qualifying window ending on or after a line's day covers it whenever any does
    (its start is no later than that of any later window), so a backward running minimum of
    the qualifying line numbers finds it.
    """
    n = len(qualifies)
    ends = np.minimum.accumulate(np.where(qualifies, np.arange(n), n)[::-1])[::-1]
    found = ends < n
    end = np.where(found, ends, 0)
    key = days["key"]
    day = days["day"]
    ok = found & (key[end] == key) & (day[end] - day <= width - 1)
    return np.where(ok, end, -1)


def _split_message(hits, who, total, count, span, biggest, near, settings: Settings) -> pd.Series:
    limit_t = money1(settings.approval_limit, settings.currency)
    name = label(hits[who])
    vendor = label(hits["vendor"])
    total_t = money(total, settings.currency)
    count_t = count.astype(str).astype(object)
    span_t = span.astype(str).astype(object)
    pct = (biggest / settings.approval_limit * 100).round().astype("int64").astype(str).astype(object)
    if settings.lang == "zh":
        subject = "同一报销人 " if who == "person" else "同一卡号 "
        text = join_text(subject, name, " 在 ", span_t, " 天内向同一商户 ", vendor, " 报销 ", count_t, " 笔共 ",
                         total_t, "，每笔均不超过审批限额 ", limit_t)
        extra = join_text("，其中最大一笔 ", money(biggest, settings.currency), " 达限额的 ", pct, "%")
    else:
        subject = "Person " if who == "person" else "Card "
        text = join_text(subject, name, " claimed ", count_t, " items from vendor ", vendor, " within ", span_t,
                         " day(s), ", total_t, " in total, each within the approval limit ", limit_t)
        extra = join_text("; the largest, ", money(biggest, settings.currency), ", is ", pct, "% of the limit")
    return text + extra.where(near, "")
