from __future__ import annotations

import datetime as dt

import pytest

from xl_expense.core.settings import Settings, settings_from_dict
from xl_expense.errors import SettingsError
from xl_expense.io.settings_io import load_settings, settings_from_rows


def test_defaults_match_the_issue() -> None:
    s = Settings()
    assert (s.approval_limit, s.receipt_threshold, s.currency, s.lang) == (5000.0, 1000.0, "CNY", "zh")


def test_values_are_coerced_from_cell_text() -> None:
    s = settings_from_dict({"approval_limit": "8,000", "period_start": "2026-01-01", "required_fields": "date, amount",
                            "policy_limits": "客户招待=3000；通讯费=800"})
    assert s.approval_limit == 8000.0
    assert s.period_start == dt.date(2026, 1, 1)
    assert s.required_fields == ("date", "amount")
    assert dict(s.policy_limits) == {"客户招待": 3000.0, "通讯费": 800.0}


@pytest.mark.parametrize("values, message", [
    ({"aproval_limit": 1}, "unknown setting 'aproval_limit'"),
    ({"approval_limit": "lots"}, "invalid value"),
    ({"lang": "fr"}, "lang must be"),
    ({"period_start": "2026-12-01", "period_end": "2026-01-01"}, "period_start is after period_end"),
])
def test_bad_settings_say_what_and_how(values: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        settings_from_dict(values)
    assert " — " in str(info.value)


def test_settings_sheet_rows_in_chinese() -> None:
    values, ignored = settings_from_rows([["参数", "值", "说明"], ["审批限额", 6000, ""], ["限额:客户招待", 3000, ""],
                                          ["预算预警线", 0.8, "budget key, not audit"], [None, None]])
    assert values == {"approval_limit": 6000, "policy_limits": {"客户招待": 3000.0}}
    assert ignored == ["预算预警线"]


def test_sheet_wins_over_config_and_overrides_win_over_both(tmp_path, demo_workbook) -> None:
    config = tmp_path / "s.toml"
    config.write_text("[audit]\napproval_limit = 9999\n", encoding="utf-8")
    settings, source = load_settings(demo_workbook, config, {"lang": "en"})
    assert source["source"] == "sheet"
    assert settings.approval_limit == 5000 and settings.lang == "en"
    assert dict(settings.policy_limits) == {"客户招待": 3000.0, "通讯费": 1000.0}


def test_config_used_when_no_settings_sheet(tmp_path) -> None:
    from openpyxl import Workbook

    book = tmp_path / "b.xlsx"
    Workbook().save(book)
    config = tmp_path / "s.toml"
    config.write_text("approval_limit = 9999\n", encoding="utf-8")
    settings, source = load_settings(book, config)
    assert settings.approval_limit == 9999 and source["source"] == "config:s.toml"
    config.write_text("approval_limit = \n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(book, config)
