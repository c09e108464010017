"""Budget monitoring on known series: expected-to-date, forecasts, overrun dates, control actions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.factories import make_budget
from xl_expense import schema
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.budget import MONTHS, BudgetError
from xl_expense.core.budget_monitor import (
    ALERT_COLUMNS,
    UNBUDGETED,
    ControlPolicy,
    actuals_to_date,
    budget_overrun_findings,
    monitor_budget,
)
from xl_expense.errors import SettingsError

AS_OF = dt.date(2026, 3, 15)  # 31 + 28 + 15 = day 74 of 2026



def daily(category: str, amount: float, start: str, end: str, department: str = "销售一部") -> list[dict]:
    """One expense of ``amount`` every day from ``start`` to ``end`` inclusive: a linear spend."""
    return [{"date": d, "amount": amount, "category": category, "department": department}
            for d in pd.date_range(start, end)]


def by_line(alerts: pd.DataFrame) -> pd.DataFrame:
    return alerts.set_index(alerts["category"].astype(str) + "|" + alerts["unit"].astype(str))


@pytest.fixture
def known():
    """Three lines with known answers at 2026-03-15 (see each test)."""
    budget = make_budget({
        ("差旅费", "销售一部"): 1200.0,                                  # flat, nothing spent
        ("招待费", "销售一部"): 100.0,                                   # 1,200 a year, spent 10 a day
        ("礼品", "销售一部"): [1000, 1000, 3100] + [1000] * 9,            # seasonal: March is big
    })
    rows = daily("招待费", 10.0, "2026-01-01", "2026-03-15")
    rows += [{"date": "2026-02-10", "amount": 4200.0, "category": "礼品", "department": "销售一部"}]
    return budget, example_ledger(rows)


def test_alert_columns_and_one_row_per_line(known):
    budget, ledger = known
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026)
    assert tuple(alerts.columns) == ALERT_COLUMNS
    assert sorted(alerts["line"]) == ["差旅费|销售一部", "招待费|销售一部", "礼品|销售一部"]


def test_planned_to_date_is_full_months_plus_current_month_by_days(known):
    budget, ledger = known
    alerts = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026))
    assert alerts.loc["差旅费|销售一部", "planned_to_date"] == round(2400 + 1200 * 15 / 31, 2) == 2980.65
    assert alerts.loc["礼品|销售一部", "planned_to_date"] == 3500.0  # 1000 + 1000 + 3100 × 15/31
    assert alerts.loc["差旅费|销售一部", "expected_vs_actual"] == -2980.65


@pytest.mark.parametrize(("as_of", "expected"), [
    (dt.date(2026, 1, 1), round(1200 / 31, 2)),
    (dt.date(2026, 2, 28), 2400.0),
    (dt.date(2026, 12, 31), 14400.0),
    (dt.date(2025, 12, 31), 0.0),     # before the budget year: nothing elapsed
    (dt.date(2027, 6, 1), 14400.0),   # after it: all elapsed
])
def test_planned_to_date_at_period_edges(known, as_of, expected):
    budget, ledger = known
    alerts = by_line(monitor_budget(budget, ledger, as_of=as_of, year=2026))
    assert alerts.loc["差旅费|销售一部", "planned_to_date"] == expected


def test_actual_used_remaining(known):
    budget, ledger = known
    row = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026)).loc["招待费|销售一部"]
    assert row["actual_to_date"] == 740.0
    assert row["used_pct"] == round(740 / 1200, 4)
    assert row["remaining"] == 460.0
    assert row["mtd_planned"] == 100.0
    assert row["mtd_actual"] == 150.0
    assert row["mtd_used_pct"] == 1.5


def test_run_rate_forecast_and_overrun_date_of_a_linear_spend(known):
    budget, ledger = known
    alerts = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026))
    meals = alerts.loc["招待费|销售一部"]
    assert meals["forecast_run_rate"] == 3650.0                     # 740 / 74 days × 365
    # 10 a day passes 1,200 on day 121 of 2026: 31+28+31+30 = 120 → 1 May.
    assert meals["projected_overrun_date"] == pd.Timestamp("2026-05-01")
    travel = alerts.loc["差旅费|销售一部"]
    assert travel["forecast_run_rate"] == 0.0
    assert pd.isna(travel["projected_overrun_date"])


def test_run_rate_reaching_the_plan_exactly_on_31_december_is_no_overrun():
    budget = make_budget({("招待费", "销售一部"): [3650 / 12] * 12})
    ledger = example_ledger(daily("招待费", 10.0, "2026-01-01", "2026-03-15"))
    row = monitor_budget(budget, ledger, as_of=AS_OF, year=2026).iloc[0]
    assert row["forecast_run_rate"] == 3650.0
    assert pd.isna(row["projected_overrun_date"])


def test_seasonal_forecast_scales_the_remaining_plan_by_the_pace_so_far(known):
    budget, ledger = known
    gifts = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026)).loc["礼品|销售一部"]
    # spent 4,200 of 3,500 planned to date → pace 1.2; remaining plan 14,100 − 3,500 = 10,600.
    assert gifts["forecast_seasonal"] == 4200 + 10600 * 1.2 == 16920.0
    meals = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026)).loc["招待费|销售一部"]
    planned_to_date = 200 + 100 * 15 / 31
    assert meals["forecast_seasonal"] == round(740 + (1200 - planned_to_date) * 740 / planned_to_date, 2)


def test_actuals_to_date_is_budget_shaped(known):
    _, ledger = known
    actuals = actuals_to_date(ledger, year=2026, as_of=AS_OF).set_index("category")
    assert actuals.columns.tolist() == ["unit", *MONTHS]
    assert actuals.loc["招待费", ["m1", "m2", "m3", "m4"]].tolist() == [310.0, 280.0, 150.0, 0.0]
    assert actuals.loc["礼品", "m2"] == 4200.0


def test_rows_without_date_outside_the_year_or_after_as_of_are_ignored():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    ledger = example_ledger([
        {"date": "2026-03-01", "amount": 50.0, "category": "招待费", "department": "销售一部"},
        {"date": None, "amount": 1000.0, "category": "招待费", "department": "销售一部"},
        {"date": "2025-12-31", "amount": 1000.0, "category": "招待费", "department": "销售一部"},
        {"date": "2026-03-16", "amount": 1000.0, "category": "招待费", "department": "销售一部"},
        {"date": "2026-03-02", "amount": None, "category": "招待费", "department": "销售一部"},
    ])
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026)
    assert len(alerts) == 1
    assert alerts.loc[0, "actual_to_date"] == 50.0


def test_unbudgeted_spend_is_reported_with_zero_plan():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    ledger = example_ledger([
        {"date": "2026-02-01", "amount": 30.0, "category": "招待费", "department": "销售一部"},
        {"date": "2026-02-03", "amount": 250.0, "category": "会务费", "department": "销售一部"},
        {"date": "2026-02-04", "amount": 70.0, "category": "招待费", "department": "销售二部"},
    ])
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026, lang="en")
    extra = alerts[alerts["line"] == UNBUDGETED].set_index("category")
    assert extra["unit"].to_dict() == {"会务费": "销售一部", "招待费": "销售二部"}
    assert extra["planned_year"].tolist() == [0.0, 0.0]
    assert extra.loc["会务费", "actual_to_date"] == 250.0
    assert extra.loc["会务费", "status"] == "over"
    assert pd.isna(extra.loc["会务费", "used_pct"])
    # The biggest unbudgeted spend is the most urgent: its "overrun" began on 1 January.
    assert alerts.loc[0, "category"] == "会务费"
    assert alerts.loc[0, "message"].startswith("会务费|销售一部: unbudgeted spend, plan 0.00, spent 250.00")


def test_matching_ignores_surrounding_spaces():
    budget = make_budget({("招待费 ", " 销售一部"): 100.0})
    ledger = example_ledger([{"date": "2026-02-01", "amount": 30.0, "category": "招待费", "department": "销售一部 "}])
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026)
    assert alerts["line"].tolist() == ["招待费 | 销售一部"]  # the budget's own key, as written
    assert alerts.loc[0, "actual_to_date"] == 30.0


def test_unit_by_project_reads_the_project_column():
    budget = make_budget({("招待费", "P1"): 100.0})
    ledger = example_ledger([{"date": "2026-02-01", "amount": 30.0, "category": "招待费", "project": "P1",
                              "department": "销售一部"}])
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026, unit_by="stage")
    assert alerts["actual_to_date"].tolist() == [30.0]
    with pytest.raises(SettingsError, match="budget_by"):
        monitor_budget(budget, ledger, as_of=AS_OF, year=2026, unit_by="region")


# --- Control actions -------------------------------------------------------------------

def control_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """月超: over March's 100 (150 spent) but not the year; 年超: over the year (1,300), not March."""
    budget = make_budget({("月超", "销售一部"): 100.0, ("年超", "销售一部"): 100.0})
    ledger = example_ledger([
        {"date": "2026-03-05", "amount": 150.0, "category": "月超", "department": "销售一部"},
        {"date": "2026-02-05", "amount": 1300.0, "category": "年超", "department": "销售一部"},
    ])
    return budget, ledger


@pytest.mark.parametrize(("action", "status", "severity"), [
    ("Stop", "stop", "error"),
    ("Warn", "over", "warning"),
    ("Ignore", "ok", None),
])
def test_annual_action_decides_status_and_finding_severity(action, status, severity):
    budget, ledger = control_case()
    policy = ControlPolicy(annual_action={"年超": action}, monthly_action={"月超": "Ignore"})
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy)
    assert by_line(alerts).loc["年超|销售一部", "status"] == status
    findings = budget_overrun_findings(alerts, "en", policy=policy)
    assert findings["category"].tolist() == ([] if severity is None else ["年超"])
    assert findings["severity"].tolist() == ([] if severity is None else [severity])
    if severity:
        assert findings.loc[0, "amount"] == 100.0  # 1,300 spent of 1,200
        assert findings.loc[0, "message"] == (
            f"年超|销售一部 is over its annual budget: spent 1,300.00 of 1,200.00, 100.00 over (action: {action}).")


@pytest.mark.parametrize(("action", "status", "severity"), [
    ("Stop", "stop", "error"),
    ("Warn", "over", "warning"),
    ("Ignore", "ok", None),
])
def test_monthly_action_decides_status_and_finding_severity(action, status, severity):
    budget, ledger = control_case()
    policy = ControlPolicy(monthly_action={"月超": action}, annual_action={"年超": "Ignore"},
                           default_action="Ignore")
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy)
    assert by_line(alerts).loc["月超|销售一部", "status"] == status
    findings = budget_overrun_findings(alerts, "zh", policy=policy)
    assert findings["severity"].tolist() == ([] if severity is None else [severity])
    if severity:
        word = "停止" if action == "Stop" else "警告"
        assert findings.loc[0, "message"] == f"月超|销售一部 超出月度预算：已用 150.00，预算 100.00，超出 50.00（控制：{word}）。"
        assert findings.loc[0, "score"] == 0.5


def test_a_line_over_both_limits_gets_two_findings_with_distinct_stable_ids():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    ledger = example_ledger([{"date": "2026-03-02", "amount": 1500.0, "category": "招待费", "department": "销售一部"}])
    policy = ControlPolicy(annual_action={"招待费": "Stop"})
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy)
    findings = budget_overrun_findings(alerts, "en", policy=policy)
    assert tuple(findings.columns) == schema.FINDING_COLUMNS
    assert findings["severity"].tolist() == ["error", "warning"]  # annual Stop, monthly default Warn
    assert findings["rule"].unique().tolist() == ["budget_overrun"]
    assert findings["finding_id"].str.startswith("BUD-").all()
    assert findings["finding_id"].is_unique
    assert findings["department"].tolist() == ["销售一部", "销售一部"]
    assert findings["date"].tolist() == [pd.Timestamp(AS_OF)] * 2
    # Same overrun, later run in the same month → same ids; next month's monthly overrun → new id.
    again = budget_overrun_findings(
        monitor_budget(budget, ledger, as_of=dt.date(2026, 3, 20), year=2026, policy=policy), "zh", policy=policy)
    assert again["finding_id"].tolist() == findings["finding_id"].tolist()
    april = example_ledger([{"date": "2026-04-02", "amount": 1500.0, "category": "招待费", "department": "销售一部"}])
    later = budget_overrun_findings(
        monitor_budget(budget, april, as_of=dt.date(2026, 4, 20), year=2026, policy=policy), "en", policy=policy)
    assert later["finding_id"].iloc[0] == findings["finding_id"].iloc[0]
    assert later["finding_id"].iloc[1] != findings["finding_id"].iloc[1]


def test_no_overrun_no_findings_but_typed_empty_table(known):
    budget, ledger = known
    alerts = monitor_budget(budget, ledger[ledger["category"] == "礼品"].iloc[:0], as_of=AS_OF, year=2026)
    findings = budget_overrun_findings(alerts, "en")
    assert findings.empty
    assert tuple(findings.columns) == schema.FINDING_COLUMNS
    assert str(findings["row"].dtype) == "Int64"


def test_warn_threshold():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    ledger = example_ledger([{"date": "2026-02-01", "amount": 960.0, "category": "招待费", "department": "销售一部"}])
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026)  # 960 / 1,200 = 80 %
    assert alerts.loc[0, "status"] == "warn"
    assert monitor_budget(budget, ledger, as_of=AS_OF, year=2026,
                          policy=ControlPolicy(warn_pct=0.85)).loc[0, "status"] == "ok"


def test_stop_pct_tolerates_a_margin():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    ledger = example_ledger([{"date": "2026-02-01", "amount": 1250.0, "category": "招待费", "department": "销售一部"}])
    policy = ControlPolicy(stop_pct=1.05, annual_action={"招待费": "Stop"})
    assert monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy).loc[0, "status"] == "warn"
    assert budget_overrun_findings(monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy),
                                   policy=policy).empty


def test_accumulated_monthly_basis_is_erpnexts():
    budget, ledger = control_case()
    policy = ControlPolicy(monthly_basis="accumulated")
    alerts = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy))
    assert alerts.loc["月超|销售一部", "mtd_planned"] == 300.0   # January to March
    assert alerts.loc["月超|销售一部", "status"] == "ok"           # 150 of 300 accumulated
    assert alerts.loc["年超|销售一部", "mtd_actual"] == 1300.0
    assert "; Jan–Mar spent 1,300.00 of 300.00;" in monitor_budget(
        budget, ledger, as_of=AS_OF, year=2026, policy=policy, lang="en")["message"].str.cat()


def test_invalid_policy_is_refused():
    with pytest.raises(SettingsError, match="Unknown budget control action 'Block'"):
        ControlPolicy(annual_action={"招待费": "Block"})
    with pytest.raises(SettingsError, match="warn_pct"):
        ControlPolicy(warn_pct=1.2)


def test_duplicate_budget_lines_are_refused():
    budget = make_budget({("招待费", "销售一部"): 100.0})
    with pytest.raises(BudgetError, match="duplicate line"):
        monitor_budget(pd.concat([budget, budget]), example_ledger([]), as_of=AS_OF, year=2026)


# --- Urgency and messages --------------------------------------------------------------

def test_urgency_stop_first_then_soonest_overrun_then_used_pct():
    budget = make_budget({
        ("A_stop", "U"): 1000.0,     # over (Stop) but overrun projected later than B's
        ("B_soon", "U"): 100.0,      # 10 a day → 1 May
        ("C_later", "U"): 200.0,     # 10 a day → day 241 = 29 August
        ("D_low", "U"): 1200.0,      # 1 a day, never within the year, used 0.5 %
        ("E_none", "U"): 1200.0,     # nothing spent
    })
    rows = [{"date": "2026-03-15", "amount": 12_100.0, "category": "A_stop", "department": "U"}]
    rows += daily("B_soon", 10.0, "2026-01-01", "2026-03-15", "U") + daily("C_later", 10.0, "2026-01-01", "2026-03-15", "U")
    rows += daily("D_low", 1.0, "2026-01-01", "2026-03-15", "U")
    policy = ControlPolicy(annual_action={"A_stop": "Stop"}, monthly_action={"A_stop": "Ignore"},
                           default_action="Ignore")
    alerts = monitor_budget(budget, example_ledger(rows), as_of=AS_OF, year=2026, policy=policy)
    assert alerts["category"].tolist() == ["A_stop", "B_soon", "C_later", "D_low", "E_none"]
    assert alerts["urgency"].tolist() == [1, 2, 3, 4, 5]
    assert alerts["projected_overrun_date"].iloc[2] == pd.Timestamp("2026-08-29")


def test_messages_zh_and_en(known):
    budget, ledger = known
    policy = ControlPolicy(monthly_action={"招待费": "Stop"})
    zh = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy, lang="zh"))
    en = by_line(monitor_budget(budget, ledger, as_of=AS_OF, year=2026, policy=policy, lang="en"))
    assert zh.loc["招待费|销售一部", "message"] == (
        "招待费|销售一部：预算 1,200.00，已用 740.00（61.7%），剩余 460.00；按进度应用 248.39，"
        "3月已用 150.00 / 月预算 100.00；按当前速度全年预计 3,650.00，已超出月度预算（控制：停止）。")
    assert en.loc["招待费|销售一部", "message"] == (
        "招待费|销售一部: plan 1,200.00, spent 740.00 (61.7%), 460.00 left; expected to date 248.39; "
        "Mar spent 150.00 of 100.00; run-rate forecast 3,650.00, over the monthly budget (action: Stop).")
    assert en.loc["差旅费|销售一部", "message"].endswith("run-rate forecast 0.00.")
    # 礼品: 29.8 % used, within March's plan, but 4,200 in 74 days passes 14,100 on day 249.
    assert en.loc["礼品|销售一部", "status"] == "ok"
    assert en.loc["礼品|销售一部", "message"].endswith(
        "run-rate forecast 20,716.22, projected to overrun on 2026-09-06.")
    assert zh.loc["礼品|销售一部", "message"].endswith("按当前速度全年预计 20,716.22，预计 2026-09-06 超支。")


def test_findings_need_the_alerts_context_columns(known):
    budget, ledger = known
    alerts = monitor_budget(budget, ledger, as_of=AS_OF, year=2026).drop(columns=["year"])
    with pytest.raises(BudgetError, match="Alerts table is missing column"):
        budget_overrun_findings(alerts)
