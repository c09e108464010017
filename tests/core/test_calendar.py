"""China's calendar with adjusted working days (调休), from the holidays package."""

from __future__ import annotations

import pandas as pd
import pytest

from xl_expense.core.calendar import day_kinds, holiday_names, nonworking_days
from xl_expense.errors import SettingsError


def _dates(*days):
    return pd.Series(pd.to_datetime(list(days)))


@pytest.mark.parametrize("day,nonworking,kind", [
    ("2026-03-07", True, "weekend"),            # an ordinary Saturday
    ("2026-03-10", False, "workday"),           # an ordinary Tuesday
    ("2026-02-14", False, "adjusted_workday"),  # Saturday worked for the Spring Festival (春节调休)
    ("2026-01-04", False, "adjusted_workday"),  # Sunday worked for New Year (元旦调休)
    ("2025-09-28", False, "adjusted_workday"),  # Sunday worked for National Day 2025
    ("2025-10-11", False, "adjusted_workday"),  # Saturday worked for National Day 2025
    ("2026-10-01", True, "holiday"),            # 国庆节, a Thursday
    ("2026-10-07", True, "holiday"),            # Wednesday off in exchange for 2026-10-10
    ("2026-05-02", True, "holiday"),            # 劳动节 on a Saturday
])
def test_cn_days(day, nonworking, kind):
    kinds = day_kinds(_dates(day))
    assert bool(kinds["nonworking"].iloc[0]) is nonworking
    assert kinds["kind"].iloc[0] == kind


def test_nonworking_days_is_aligned_and_handles_nat():
    dates = pd.Series(pd.to_datetime(["2026-03-07", None, "2026-03-10"]), index=[10, 11, 12])
    result = nonworking_days(dates)
    assert result.index.tolist() == [10, 11, 12]
    assert result.tolist() == [True, False, False]


def test_holiday_names_in_both_languages():
    dates = _dates("2026-10-01", "2026-03-10", "2026-01-02")
    assert holiday_names(dates, lang="zh").tolist() == ["国庆节", None, "休息日（由 2026-01-04 调休）"]
    assert holiday_names(dates, lang="en").tolist()[:2] == ["National Day", None]


def test_other_calendars():
    dates = _dates("2026-02-14", "2026-10-01", "2026-07-03")
    assert nonworking_days(dates, "none").tolist() == [True, False, False]     # weekends only
    assert nonworking_days(dates, "US").tolist() == [True, False, True]        # observed Independence Day


def test_unknown_calendar_is_a_settings_error():
    with pytest.raises(SettingsError, match="calendar 'XX'"):
        nonworking_days(_dates("2026-03-07"), "XX")


def test_empty_and_all_nat():
    assert nonworking_days(pd.Series(pd.to_datetime([]))).tolist() == []
    assert nonworking_days(pd.Series(pd.to_datetime([None, None]))).tolist() == [False, False]


def test_country_calendars_load_with_the_module_not_in_the_middle_of_an_audit() -> None:
    """holidays loads all its countries on first use (~0.1 s): importing our calendar does it,
    so the CLI's imports (which overlap the workbook parse) pay for it, not the audit."""
    import subprocess
    import sys

    code = "import sys, xl_expense.core.calendar; print('holidays.countries.china' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
