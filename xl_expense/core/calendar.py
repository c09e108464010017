"""Working days and public holidays, from the ``holidays`` package.

China moves working days around each public holiday (调休): the State Council notice for a
year makes some Saturdays and Sundays working days so that the holiday forms one block. The
``holidays`` package models this for ``CN``: the days off added for a holiday are ordinary
entries ("休息日（由 2026-01-04 调休）"), and the weekend days that become working days are
collected in the calendar object's ``weekend_workdays`` set (filled while
``_add_special_holidays`` processes ``special_public_holidays``). So a day is non-working when
it is a holiday entry, or a weekend day (``calendar.weekend``) that is not in
``weekend_workdays``.

The calendar is built once per (country, years, language) and applied to a column with
``isin``/``map`` over its distinct days, never per row.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
# holidays loads its country modules on first use, all ~280 of them at once (about 0.1 s).
# Loaded here, with our other imports, that time overlaps the workbook parse that the CLI
# starts first (see xl_expense.io.prefetch) instead of landing in the middle of the audit.
import holidays.countries  # noqa: F401
import numpy as np
import pandas as pd

from xl_expense.errors import SettingsError

#: `holidays` language codes for our two output languages.
_LANGUAGE = {"zh": "zh_CN", "en": "en_US"}

#: settings.calendar values meaning "weekends only, no public holidays".
NO_HOLIDAYS = ("", "none", "weekend", "weekends")


@lru_cache(maxsize=32)
def _calendar(country: str, years: tuple[int, ...], lang: str) -> tuple[dict[dt.date, str], frozenset[dt.date],
                                                                          frozenset[int]]:
    """(holiday → name, weekend days that are working days, weekday numbers of the weekend)."""
    if country.strip().lower() in NO_HOLIDAYS:
        return {}, frozenset(), frozenset({5, 6})
    country = country.strip().upper()
    try:
        cls = holidays.country_holidays(country)
    except NotImplementedError as exc:
        raise SettingsError(f"calendar '{country}' is not a country the holidays package knows",
                            "use a country code such as CN, HK, TW, US, or 'none' for weekends only") from exc
    language = _LANGUAGE.get(lang)
    if language not in (cls.supported_languages or ()):
        language = None
    cal = holidays.country_holidays(country, years=list(years), language=language)
    names = dict(cal.items())
    wanted = set(years)
    adjusted = frozenset(d for d in getattr(cal, "weekend_workdays", set()) if d.year in wanted)
    return names, adjusted, frozenset(cal.weekend)


def day_kinds(dates: pd.Series, country: str = "CN", lang: str = "zh") -> pd.DataFrame:
    """Classify each date: ``kind`` ∈ workday / weekend / holiday / adjusted_workday.

    Returns a frame aligned to ``dates`` with columns ``nonworking`` (bool), ``kind`` and
    ``holiday`` (the holiday's name in ``lang``, else None). NaT is a workday (nothing to judge).
    """
    days = pd.to_datetime(dates).dt.normalize()
    codes, distinct = pd.factorize(days, use_na_sentinel=True)
    distinct = pd.DatetimeIndex(distinct)
    years = tuple(sorted(int(y) for y in distinct.year.unique()))
    if not years:
        return pd.DataFrame({"nonworking": False, "kind": "workday", "holiday": None}, index=dates.index
                            ).astype({"holiday": object})
    names, adjusted, weekend = _calendar(country, years, lang)
    as_date = [d.date() for d in distinct]  # a few hundred distinct days, not a row loop
    holiday = np.array([names.get(d) for d in as_date] + [None], dtype=object)  # last: NaT (code -1)
    is_holiday = np.array([h is not None for h in holiday], dtype=bool)
    is_weekend = np.append(np.isin(distinct.day_of_week, list(weekend)), False)
    is_adjusted = np.array([d in adjusted for d in as_date] + [False], dtype=bool) & is_weekend & ~is_holiday
    kind = np.where(is_holiday, "holiday", np.where(is_adjusted, "adjusted_workday",
                                                    np.where(is_weekend, "weekend", "workday"))).astype(object)
    nonworking = is_holiday | (is_weekend & ~is_adjusted)
    return pd.DataFrame({"nonworking": nonworking[codes],
                         "kind": pd.Series(kind[codes], index=dates.index, dtype=object),
                         "holiday": pd.Series(holiday[codes], index=dates.index, dtype=object)},
                        index=dates.index)


def nonworking_days(dates: pd.Series, country: str = "CN") -> pd.Series:
    """True where a date is a weekend day (unless an adjusted working day, 调休) or a public holiday."""
    return day_kinds(dates, country)["nonworking"]


def holiday_names(dates: pd.Series, country: str = "CN", lang: str = "zh") -> pd.Series:
    """The public holiday's name per date in ``lang`` (None on ordinary days)."""
    return day_kinds(dates, country, lang)["holiday"]
