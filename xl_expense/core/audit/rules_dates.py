"""Rules on the expense date: weekend_holiday, future_date, out_of_period."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import (
    day_text,
    flags,
    join_text,
    no_hits,
    passes,
    row_hits,
    rule,
)
from xl_expense.core.calendar import day_kinds
from xl_expense.core.settings import Settings

_D = {"person": "张三", "vendor": "海底捞", "category": "客户招待", "amount": 680.0}

_WEEKDAY = {"zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}


@rule("weekend_holiday", "warning", code="WKD", title_zh="周末/节假日消费", title_en="Weekend or holiday spend",
      doc_zh="消费发生在周末或法定节假日（按中国日历，调休上班的周末算工作日；日历可在设置中更改）。",
      examples=[
          flags([{**_D, "date": "2026-03-07"}], note="an ordinary Saturday"),
          flags([{**_D, "date": "2026-10-01"}], note="国庆节, a Thursday"),
          flags([{**_D, "date": "2026-01-02"}], note="Friday off in exchange for Sunday 2026-01-04"),
          passes([{**_D, "date": "2026-01-04"}], note="Sunday that is an official 调休 working day"),
          passes([{**_D, "date": "2026-02-14"}], note="Saturday that is an official 调休 working day"),
          passes([{**_D, "date": "2026-03-10"}], note="an ordinary Tuesday"),
          passes([{**_D, "date": "2026-10-01"}], calendar="none", note="no public holidays when calendar = none"),
      ])
def weekend_holiday(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Money spent on a weekend or public holiday, by the calendar in `calendar` (CN by default).

    China's adjusted working weekends (调休) count as working days, and the weekdays given off
    in exchange count as holidays, as the State Council notice for each year says.
    """
    kinds = day_kinds(ledger["date"], settings.calendar, settings.lang)
    hit = kinds["nonworking"] & (ledger["amount"] > 0)
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    kind = kinds.loc[hit]
    on_holiday = (kind["kind"] == "holiday").to_numpy()
    weekday = pd.Series(np.asarray(_WEEKDAY[settings.lang], dtype=object)[hits["date"].dt.day_of_week.to_numpy()],
                        index=hits.index)
    day = day_text(hits["date"])
    name = kind["holiday"].astype(object).where(kind["holiday"].notna(), "")
    if settings.lang == "zh":
        holiday_t = join_text(day, "（", weekday, "）是法定节假日：", name)
        weekend_t = join_text(day, " 是", weekday, "，不是调休工作日")
    else:
        holiday_t = join_text(day, " (", weekday, ") is a public holiday: ", name)
        weekend_t = join_text(day, " is a ", weekday, ", not an adjusted working day")
    message = holiday_t.where(on_holiday, weekend_t)
    return row_hits(hits.index, np.where(on_holiday, 0.6, 0.5), message)


def _as_of(settings: Settings) -> dt.date:
    return settings.as_of or dt.date.today()


@rule("future_date", "error", code="FUT", title_zh="未来日期", title_en="Future date",
      doc_zh="日期晚于审计基准日（as_of，默认今天），多为录入错误或预先报销。",
      examples=[
          flags([{**_D, "date": "2027-01-05"}], as_of="2026-12-31"),
          passes([{**_D, "date": "2026-12-31"}], as_of="2026-12-31", note="the as-of day itself"),
      ])
def future_date(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The date is after the audit's as-of day (`as_of`, today by default): a typo or a claim made in advance."""
    as_of = pd.Timestamp(_as_of(settings))
    hit = ledger["date"].dt.normalize() > as_of
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    days_ahead = (hits["date"].dt.normalize() - as_of).dt.days
    score = 0.7 + 0.3 * np.minimum(1.0, days_ahead.to_numpy() / 30.0)
    as_of_t = as_of.strftime("%Y-%m-%d")
    ahead_t = days_ahead.astype(str).astype(object)
    if settings.lang == "zh":
        message = join_text("日期 ", day_text(hits["date"]), " 晚于审计基准日 ", as_of_t, "（", ahead_t, " 天后）")
    else:
        message = join_text("Date ", day_text(hits["date"]), " is ", ahead_t, " day(s) after the as-of day ", as_of_t)
    return row_hits(hits.index, score, message)


@rule("out_of_period", "warning", code="OOP", title_zh="不在审计期间", title_en="Outside the period",
      doc_zh="日期不在设置的审计期间（period_start–period_end）内；未设置期间时不检查。",
      examples=[
          flags([{**_D, "date": "2025-12-31"}], period_start="2026-01-01", period_end="2026-12-31"),
          passes([{**_D, "date": "2026-01-01"}], period_start="2026-01-01", period_end="2026-12-31"),
          passes([{**_D, "date": "2025-12-31"}], note="no period set"),
      ])
def out_of_period(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The date falls outside the audit period (`period_start` to `period_end`), when one is set."""
    start = pd.Timestamp(settings.period_start) if settings.period_start else None
    end = pd.Timestamp(settings.period_end) if settings.period_end else None
    if start is None and end is None:
        return no_hits()
    day = ledger["date"].dt.normalize()
    before = day < start if start is not None else pd.Series(False, index=ledger.index)
    after = day > end if end is not None else pd.Series(False, index=ledger.index)
    hit = before | after
    if not hit.any():
        return no_hits()
    hits = ledger[hit]
    start_t = start.strftime("%Y-%m-%d") if start is not None else "…"
    end_t = end.strftime("%Y-%m-%d") if end is not None else "…"
    if settings.lang == "zh":
        message = join_text("日期 ", day_text(hits["date"]), " 不在审计期间 ", start_t, " 至 ", end_t, " 内")
    else:
        message = join_text("Date ", day_text(hits["date"]), " is outside the audit period ", start_t, " to ", end_t)
    return row_hits(hits.index, 0.6, message)
