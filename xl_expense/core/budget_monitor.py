"""Monitor a budget against the ledger: what is spent, what was expected, where it is heading.

:func:`monitor_budget` gives one row per budget line (plus one per *unbudgeted* category × unit
that has spend) with the numbers a finance user checks every month:

* ``planned_to_date`` — the plan for the elapsed part of the year, as Odoo's "theoretical
  amount": every month before ``as_of``'s month in full, plus ``as_of``'s month pro rata by
  days (15 March = 15/31 of March). Spend ahead of this is spend ahead of plan.
* ``forecast_run_rate`` — actual so far ÷ elapsed days × days in the year: where the line ends
  if money keeps going out at the average daily pace.
* ``forecast_seasonal`` — ``actual + (planned_year − planned_to_date) × r`` with
  ``r = actual / planned_to_date`` (``r = 1`` when nothing was planned yet): the rest of the
  year follows the plan's own seasonality, scaled by how far the line is running over or under
  plan so far. A line spending 120 % of its plan-to-date is assumed to keep spending 120 % of
  each remaining month's plan.
* ``projected_overrun_date`` — the first day on which the run-rate line (cumulative spend =
  daily rate × day of year) exceeds the annual plan; NaT when that is not within the year.
* Control actions as ERPNext's budget control: each category has an action for the *annual*
  limit and one for the *monthly* limit, ``Stop`` / ``Warn`` / ``Ignore``
  (:class:`ControlPolicy`). The monthly limit is the plan of ``as_of``'s month against that
  month's spend to date (``monthly_basis="month"``, the default), or ERPNext's
  "accumulated monthly" budget — plan from January to the end of ``as_of``'s month against spend
  from January (``monthly_basis="accumulated"``). The default is the stricter one: unused money
  of a closed month does not silently cover a later month; moving it is a logged
  carry-forward (:func:`xl_expense.core.budget_transfer.carry_forward`).

:func:`budget_overrun_findings` turns the alerts into audit findings (rule ``budget_overrun``):
an error for an exceeded ``Stop`` limit, a warning for an exceeded ``Warn`` limit.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xl_expense import schema
from xl_expense.core.audit.ids import group_finding_id
from xl_expense.core.budget import MONTHS, UNIT_COLUMNS, BudgetError, line_key
from xl_expense.errors import SettingsError

#: The ``line`` of rows that show spend with no budget line (a finance user must see it).
UNBUDGETED = "(unbudgeted)"
ACTIONS = ("Stop", "Warn", "Ignore")
STATUSES = ("ok", "warn", "over", "stop")
RULE_ID = "budget_overrun"
RULE_CODE = "BUD"

ALERT_COLUMNS = (
    "line", "category", "unit", "planned_year", "planned_to_date", "actual_to_date", "used_pct",
    "remaining", "expected_vs_actual", "mtd_planned", "mtd_actual", "mtd_used_pct",
    "forecast_run_rate", "forecast_seasonal", "projected_overrun_date", "annual_action",
    "monthly_action", "status", "urgency", "message",
    # Context, the same on every row: lets findings be made from an Alerts sheet read back.
    "year", "as_of", "unit_by",
)
_MONEY = ("planned_year", "planned_to_date", "actual_to_date", "remaining", "expected_vs_actual",
          "mtd_planned", "mtd_actual", "forecast_run_rate", "forecast_seasonal")
_CENT = 0.005  # amounts are compared to the cent: 1000.004 spent of 1000 is not an overrun


@dataclass(frozen=True)
class ControlPolicy:
    """What to do when a line reaches its budget, per category (ERPNext's budget control).

    ``warn_pct`` — used share (of the annual or monthly limit) from which a line is ``warn``.
    ``stop_pct`` — share beyond which a limit counts as exceeded (1.0 = the plan itself; 1.05
    tolerates 5 % before acting). ``annual_action`` / ``monthly_action`` map a category to
    ``"Stop"``, ``"Warn"`` or ``"Ignore"``; categories not listed get ``default_action``. An
    ``Ignore`` limit is not checked at all (the line's numbers are still shown).
    ``monthly_basis`` — ``"month"`` (this month's plan vs this month's spend) or
    ``"accumulated"`` (plan through this month vs spend since January, as ERPNext).
    """

    warn_pct: float = 0.8
    stop_pct: float = 1.0
    annual_action: Mapping[str, str] = field(default_factory=dict)
    monthly_action: Mapping[str, str] = field(default_factory=dict)
    default_action: str = "Warn"
    monthly_basis: str = "month"

    def __post_init__(self):
        for action in (self.default_action, *self.annual_action.values(), *self.monthly_action.values()):
            if action not in ACTIONS:
                raise SettingsError(f"Unknown budget control action {action!r}",
                                    "use Stop, Warn or Ignore")
        if self.monthly_basis not in ("month", "accumulated"):
            raise SettingsError(f"Unknown monthly_basis {self.monthly_basis!r}", "use month or accumulated")
        if not 0 < self.warn_pct <= self.stop_pct:
            raise SettingsError(f"warn_pct {self.warn_pct} must be above 0 and at most stop_pct {self.stop_pct}",
                                "e.g. warn_pct = 0.8, stop_pct = 1.0")


# --- Actuals ---------------------------------------------------------------------------

def fold_text(values: pd.Series) -> pd.Series:
    """Key text for matching budget and ledger: missing → "", surrounding spaces dropped."""
    text = values.astype(object).where(values.notna(), "")
    return text.astype(str).str.strip()


def actuals_to_date(ledger: pd.DataFrame, *, year: int, as_of: dt.date, unit_by: str = "department"
                    ) -> pd.DataFrame:
    """Spend per category × unit × month of ``year``, dated up to and including ``as_of``.

    Budget-shaped (``category``, ``unit``, ``m1`` … ``m12``), keys folded as for matching
    (stripped text, missing → ""). Rows without a date or outside the year are ignored;
    rows after ``as_of`` are not spent yet "to date" (future-dated claims).
    """
    if unit_by not in UNIT_COLUMNS:
        raise SettingsError(f"Unknown budget_by {unit_by!r}", "use department, project or stage")
    dates = pd.to_datetime(ledger["date"])
    keep = (dates.dt.year == year) & (dates <= pd.Timestamp(as_of)) & ledger["amount"].notna()
    rows = ledger.loc[keep]
    frame = pd.DataFrame({
        "category": fold_text(rows["category"]),
        "unit": fold_text(rows[UNIT_COLUMNS[unit_by]]),
        "month": dates[keep].dt.month,
        "amount": rows["amount"].astype("float64"),
    })
    table = frame.pivot_table(index=["category", "unit"], columns="month", values="amount",
                              aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=range(1, 13), fill_value=0.0)
    table.columns = list(MONTHS)
    return table.reset_index().astype({m: "float64" for m in MONTHS})


# --- Monitor ---------------------------------------------------------------------------

def _checked_budget(budget: pd.DataFrame) -> pd.DataFrame:
    """The budget with months as floats (blank = 0); duplicate lines are refused."""
    missing = [c for c in ("category", "unit", *MONTHS) if c not in budget.columns]
    if missing:
        raise BudgetError(f"Budget is missing column(s): {', '.join(missing)}",
                          "the budget needs category, unit and m1 … m12")
    out = budget.reset_index(drop=True).copy()
    out[list(MONTHS)] = out[list(MONTHS)].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype("float64")
    key = fold_text(out["category"]) + "|" + fold_text(out["unit"])
    dup = key[key.duplicated()]
    if len(dup):
        raise BudgetError(f"Budget has duplicate line(s): {', '.join(dict.fromkeys(dup))}",
                          "merge them into one row per category and unit")
    return out


def _elapsed_share(as_of: dt.date, year: int) -> np.ndarray:
    """Share of each month elapsed at the end of ``as_of``: 1 before its month, days/len in it."""
    share = np.zeros(12)
    for month in range(1, 13):
        days = calendar.monthrange(year, month)[1]
        start = dt.date(year, month, 1)
        share[month - 1] = min(max((as_of - start).days + 1, 0), days) / days
    return share


def _current_month(as_of: dt.date, year: int) -> int:
    """The month whose limit is the monthly limit: 0 before the year, 12 after it."""
    if as_of.year < year:
        return 0
    return as_of.month if as_of.year == year else 12


def _lines(budget: pd.DataFrame, actuals: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Budget lines then unbudgeted spend lines, with plan and actual matrices (n × 12)."""
    bkey = (fold_text(budget["category"]) + "\x1f" + fold_text(budget["unit"])).to_numpy()
    akey = (actuals["category"] + "\x1f" + actuals["unit"]).to_numpy()
    by_key = actuals.set_index(akey)[list(MONTHS)]
    actual_budgeted = by_key.reindex(bkey).fillna(0.0).to_numpy()
    extra = actuals.loc[~np.isin(akey, bkey)]
    extra = extra.loc[extra[list(MONTHS)].abs().sum(axis=1) > 0]
    lines = pd.DataFrame({
        "line": pd.concat([line_key(budget), pd.Series(UNBUDGETED, index=extra.index)], ignore_index=True),
        "category": pd.concat([budget["category"].astype(object),
                               extra["category"].astype(object).replace("", None)], ignore_index=True),
        "unit": pd.concat([budget["unit"].astype(object),
                           extra["unit"].astype(object).replace("", None)], ignore_index=True),
    })
    plan = np.vstack([budget[list(MONTHS)].to_numpy(), np.zeros((len(extra), 12))])
    actual = np.vstack([actual_budgeted, extra[list(MONTHS)].to_numpy()])
    return lines, plan, actual


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (a share of nothing is undefined, not infinite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def _overrun_dates(actual: np.ndarray, planned_year: np.ndarray, elapsed_days: int, year: int) -> pd.Series:
    """First day the run-rate line (rate × day of year) exceeds the annual plan; NaT if not this year."""
    days_in_year = 366 if calendar.isleap(year) else 365
    rate = actual / elapsed_days if elapsed_days else np.zeros_like(actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(rate > 0, planned_year / np.where(rate > 0, rate, 1.0), np.inf)
    # Rounded before floor: 1200 / (740/74) is 119.99999999999999 in floating point.
    day = np.floor(np.round(crossing, 6)) + 1
    ok = np.isfinite(day) & (day <= days_in_year)
    offsets = pd.to_timedelta(np.where(ok, day - 1, 0), unit="D")
    dates = pd.Timestamp(year, 1, 1) + offsets
    return pd.Series(dates, dtype="datetime64[ns]").where(ok, pd.NaT)


def _actions(categories: pd.Series, mapping: Mapping[str, str], default: str) -> np.ndarray:
    folded = {str(k).strip(): v for k, v in mapping.items()}
    return np.array([folded.get(c, default) for c in fold_text(categories)], dtype=object)


def _status(out: pd.DataFrame, policy: ControlPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Status of each line and whether its annual / monthly limits are exceeded."""
    annual_on = out["annual_action"].to_numpy() != "Ignore"
    monthly_on = out["monthly_action"].to_numpy() != "Ignore"
    over_annual = out["actual_to_date"].to_numpy() > out["planned_year"].to_numpy() * policy.stop_pct + _CENT
    over_monthly = out["mtd_actual"].to_numpy() > out["mtd_planned"].to_numpy() * policy.stop_pct + _CENT
    stop = (annual_on & over_annual & (out["annual_action"].to_numpy() == "Stop")) | (
        monthly_on & over_monthly & (out["monthly_action"].to_numpy() == "Stop"))
    over = (annual_on & over_annual) | (monthly_on & over_monthly)
    warn = (annual_on & (out["used_pct"].fillna(0).to_numpy() >= policy.warn_pct)) | (
        monthly_on & (out["mtd_used_pct"].fillna(0).to_numpy() >= policy.warn_pct))
    status = np.select([stop, over, warn], ["stop", "over", "warn"], "ok").astype(object)
    return status, np.column_stack([annual_on & over_annual, monthly_on & over_monthly])


def _urgency(out: pd.DataFrame) -> np.ndarray:
    """Rank, 1 = most urgent: Stop overruns first, then soonest projected overrun, then used %."""
    used = out["used_pct"].to_numpy(dtype=float)
    spent = out["actual_to_date"].to_numpy() > 0
    used_key = np.where(np.isnan(used), np.where(spent, np.inf, 0.0), used)  # unbudgeted spend: ∞ %
    dates = out["projected_overrun_date"]
    date_key = np.where(dates.isna(), np.iinfo(np.int64).max, dates.to_numpy(dtype="datetime64[ns]").view("int64"))
    tier = np.where(out["status"].to_numpy() == "stop", 0, 1)
    order = np.lexsort((np.arange(len(out)), -used_key, date_key, tier))
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    return rank


def monitor_budget(budget: pd.DataFrame, ledger: pd.DataFrame, *, as_of: dt.date, year: int,
                   unit_by: str = "department", policy: ControlPolicy = ControlPolicy(),
                   lang: str = "zh") -> pd.DataFrame:
    """Budget alerts: one row per budget line (and per unbudgeted spend), most urgent first.

    Parameters
    ----------
    budget : DataFrame
        ``category``, ``unit``, ``m1`` … ``m12`` (see :mod:`xl_expense.core.budget`).
    ledger : DataFrame
        Canonical ledger; rows without a date, outside ``year`` or after ``as_of`` are ignored.
    as_of : date
        The day the numbers are "to date" (inclusive). Core never reads the clock.
    year : int
        The budget year.
    unit_by : {"department", "project", "stage"}
        Ledger column a line's ``unit`` is matched against (stage → ``project``).
    policy : ControlPolicy
        Control actions and thresholds.
    lang : {"zh", "en"}
        Language of ``message``.

    Returns
    -------
    DataFrame
        :data:`ALERT_COLUMNS`, sorted by ``urgency`` (1 = most urgent). Money rounded to cents,
        percentages are fractions (0.85 = 85 %) rounded to 4 places. Spend on a category × unit
        with no budget line appears as ``line == "(unbudgeted)"`` with a plan of 0.
    """
    budget = _checked_budget(budget)
    actuals = actuals_to_date(ledger, year=year, as_of=as_of, unit_by=unit_by)
    lines, plan, actual = _lines(budget, actuals)
    share = _elapsed_share(as_of, year)
    days_in_year = 366 if calendar.isleap(year) else 365
    elapsed_days = min(max((as_of - dt.date(year, 1, 1)).days + 1, 0), days_in_year)
    month = _current_month(as_of, year)

    out = lines
    out["planned_year"] = plan.sum(axis=1)
    out["planned_to_date"] = plan @ share
    out["actual_to_date"] = actual.sum(axis=1)
    out["used_pct"] = _ratio(out["actual_to_date"].to_numpy(), out["planned_year"].to_numpy())
    out["remaining"] = out["planned_year"] - out["actual_to_date"]
    out["expected_vs_actual"] = out["actual_to_date"] - out["planned_to_date"]
    if month == 0:
        mtd_plan, mtd_actual = np.zeros(len(out)), np.zeros(len(out))
    elif policy.monthly_basis == "month":
        mtd_plan, mtd_actual = plan[:, month - 1], actual[:, month - 1]
    else:  # ERPNext's accumulated monthly budget
        mtd_plan, mtd_actual = plan[:, :month].sum(axis=1), actual[:, :month].sum(axis=1)
    out["mtd_planned"] = mtd_plan
    out["mtd_actual"] = mtd_actual
    out["mtd_used_pct"] = _ratio(mtd_actual, mtd_plan)
    out["forecast_run_rate"] = out["actual_to_date"] / elapsed_days * days_in_year if elapsed_days else np.nan
    pace = _ratio(out["actual_to_date"].to_numpy(), out["planned_to_date"].to_numpy())
    pace = np.where(np.isnan(pace), 1.0, pace)
    out["forecast_seasonal"] = out["actual_to_date"] + (out["planned_year"] - out["planned_to_date"]) * pace
    out["projected_overrun_date"] = _overrun_dates(
        out["actual_to_date"].to_numpy(), out["planned_year"].to_numpy(), elapsed_days, year)
    out["annual_action"] = _actions(out["category"], policy.annual_action, policy.default_action)
    out["monthly_action"] = _actions(out["category"], policy.monthly_action, policy.default_action)
    for col in _MONEY:
        out[col] = out[col].astype("float64").round(2)
    for col in ("used_pct", "mtd_used_pct"):
        out[col] = out[col].astype("float64").round(4)
    out["status"], exceeded = _status(out, policy)
    out["urgency"] = _urgency(out)
    out["message"] = _messages(out, exceeded, lang, month, policy.monthly_basis)
    out["year"] = year
    out["as_of"] = pd.Timestamp(as_of)
    out["as_of"] = out["as_of"].astype("datetime64[ns]")
    out["unit_by"] = unit_by
    return out.sort_values("urgency", kind="stable").reset_index(drop=True)[list(ALERT_COLUMNS)]


# --- Messages --------------------------------------------------------------------------

def _money(value: float) -> str:
    return f"{value:,.2f}"


def _pct(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


_MONTH_ABBR = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _period_label(month: int, basis: str, lang: str) -> str:
    """"Mar" / "3月" for this month's limit, "Jan–Mar" / "1–3月" for the accumulated one."""
    if lang == "zh":
        return f"{month}月" if basis == "month" or month == 1 else f"1–{month}月"
    return _MONTH_ABBR[month] if basis == "month" or month == 1 else f"Jan–{_MONTH_ABBR[month]}"


def _messages(out: pd.DataFrame, exceeded: np.ndarray, lang: str, month: int, basis: str) -> list[str]:
    """One sentence per line with its numbers, in ``lang`` (a loop over lines, not expenses)."""
    period = _period_label(month, basis, lang) if month else ""
    return [_message(row, tuple(flags), lang, period) for row, flags in zip(out.itertuples(index=False), exceeded)]


def _over_text(row, exceeded: tuple[bool, bool], lang: str) -> str:
    """Which limits are exceeded and with which action, e.g. "annual budget (Stop)"."""
    parts = []
    for over, kind, action in ((exceeded[0], "annual", row.annual_action), (exceeded[1], "monthly", row.monthly_action)):
        if over and lang == "zh":
            parts.append(("年度预算" if kind == "annual" else "月度预算") + ("（控制：停止）" if action == "Stop" else "（控制：警告）"))
        elif over:
            parts.append(f"the {kind} budget (action: {action})")
        # an Ignore limit is never flagged as exceeded
    return ("、" if lang == "zh" else " and ").join(parts)


def _message(row, exceeded: tuple[bool, bool], lang: str, period: str) -> str:
    name = f"{row.category or ''}|{row.unit or ''}"
    date = "" if pd.isna(row.projected_overrun_date) else row.projected_overrun_date.date().isoformat()
    if lang == "zh":
        head = "预算外支出" if row.line == UNBUDGETED else "预算"
        text = (f"{name}：{head} {_money(row.planned_year)}，已用 {_money(row.actual_to_date)}"
                f"（{_pct(row.used_pct)}），剩余 {_money(row.remaining)}；按进度应用 {_money(row.planned_to_date)}")
        if period:
            text += f"，{period}已用 {_money(row.mtd_actual)} / 月预算 {_money(row.mtd_planned)}"
        text += f"；按当前速度全年预计 {_money(row.forecast_run_rate if not pd.isna(row.forecast_run_rate) else 0)}"
        tail = {"warn": "，接近预算上限。", "ok": "。"}.get(row.status) or f"，已超出{_over_text(row, exceeded, lang)}。"
        if date and row.status != "stop" and row.status != "over":
            tail = f"，预计 {date} 超支" + tail
        return text + tail
    head = "unbudgeted spend, plan" if row.line == UNBUDGETED else "plan"
    text = (f"{name}: {head} {_money(row.planned_year)}, spent {_money(row.actual_to_date)}"
            f" ({_pct(row.used_pct)}), {_money(row.remaining)} left; expected to date {_money(row.planned_to_date)}")
    if period:
        text += f"; {period} spent {_money(row.mtd_actual)} of {_money(row.mtd_planned)}"
    text += f"; run-rate forecast {_money(row.forecast_run_rate if not pd.isna(row.forecast_run_rate) else 0)}"
    tail = {"warn": ", close to the limit.", "ok": "."}.get(row.status) or f", over {_over_text(row, exceeded, lang)}."
    if date and row.status not in ("stop", "over"):
        tail = f", projected to overrun on {date}" + tail
    return text + tail


# --- Findings --------------------------------------------------------------------------

def _finding_message(row, limit_kind: str, limit: float, actual: float, lang: str) -> str:
    name = f"{row.category or ''}|{row.unit or ''}"
    if lang == "zh":
        kind = "年度预算" if limit_kind == "annual" else "月度预算"
        action = "停止" if row.action == "Stop" else "警告"
        return (f"{name} 超出{kind}：已用 {_money(actual)}，预算 {_money(limit)}，超出 {_money(actual - limit)}"
                f"（控制：{action}）。")
    kind = "annual budget" if limit_kind == "annual" else "monthly budget"
    return (f"{name} is over its {kind}: spent {_money(actual)} of {_money(limit)}, "
            f"{_money(actual - limit)} over (action: {row.action}).")


def budget_overrun_findings(alerts: pd.DataFrame, lang: str = "zh", *,
                            policy: ControlPolicy = ControlPolicy()) -> pd.DataFrame:
    """Audit findings (``schema.FINDING_COLUMNS``, rule ``budget_overrun``) for exceeded limits.

    An exceeded annual or monthly limit whose action is ``Stop`` is an error, ``Warn`` a
    warning, ``Ignore`` nothing; a line over both limits gets two findings. A limit is exceeded
    when spend is above ``policy.stop_pct`` × plan (use the policy the alerts were made with).
    Ids are stable: rule + category|unit + year (annual) or year-month (monthly), so a
    reviewer's note stays on the same overrun from run to run. ``amount`` is the excess over
    the limit; ``score`` is the excess as a share of the limit (1 when the limit is 0), at most 1.
    """
    missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
    if missing:
        raise BudgetError(f"Alerts table is missing column(s): {', '.join(missing)}",
                          "pass the table monitor_budget returned (or the whole Alerts sheet)")
    records = []
    for row in alerts.itertuples(index=False):
        year = int(row.year)
        as_of = pd.Timestamp(row.as_of)
        month = _current_month(as_of.date(), year)
        checks = (("annual", row.annual_action, row.planned_year, row.actual_to_date, f"{year}"),
                  ("monthly", row.monthly_action, row.mtd_planned, row.mtd_actual, f"{year}-{month:02d}"))
        for kind, action, plan, actual, period in checks:
            limit = float(plan) * policy.stop_pct
            if action == "Ignore" or not float(actual) > limit + _CENT:
                continue
            excess = float(actual) - limit
            key = f"{kind}\x1f{row.category or ''}|{row.unit or ''}\x1f{period}"
            records.append({
                "finding_id": group_finding_id(RULE_ID, RULE_CODE, key),
                "rule": RULE_ID,
                "severity": "error" if action == "Stop" else "warning",
                "sheet": None,
                "row": pd.NA,
                "date": as_of,
                "person": None,
                "department": row.unit if row.unit_by == "department" else None,
                "vendor": None,
                "category": row.category,
                "amount": round(excess, 2),
                "score": round(min(1.0, excess / limit) if limit > 0 else 1.0, 4),
                "message": _finding_message(_Row(row.category, row.unit, action), kind, limit, float(actual), lang),
            })
    return _findings_frame(records)


@dataclass(frozen=True)
class _Row:
    category: object
    unit: object
    action: str


def _findings_frame(records: list[dict]) -> pd.DataFrame:
    """Records as a findings table typed like ``run_audit``'s output."""
    df = pd.DataFrame(records, columns=list(schema.FINDING_COLUMNS))
    for col in ("finding_id", "rule", "severity", "message", "sheet", "person", "department", "vendor", "category"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    df["row"] = pd.array(df["row"], dtype="Int64")
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df["amount"] = df["amount"].astype("float64")
    df["score"] = df["score"].astype("float64")
    return df
