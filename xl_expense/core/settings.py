"""Audit settings: one frozen dataclass, its defaults, and validation from plain dicts.

Settings come, in order of precedence, from a ``设置``/``Settings`` sheet in the workbook,
a TOML file (``--config``), or these defaults (loading lives in :mod:`xl_expense.io.settings_io`).
The settings actually used are written into every audit's run record, so a finding can
always be traced to the thresholds that produced it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from xl_expense.errors import SettingsError


@dataclass(frozen=True)
class Settings:
    """Thresholds and switches of one audit run. Amounts are in ``currency``."""

    #: Single-approval limit (审批限额); splits and near-limit amounts are judged against it.
    approval_limit: float = 5000.0
    #: At or above this amount a receipt/invoice number is required.
    receipt_threshold: float = 1000.0
    currency: str = "CNY"
    #: Output language of labels and messages: "zh" or "en".
    lang: str = "zh"
    #: Per-category single-expense limits (category → limit), e.g. {"客户招待": 3000}.
    policy_limits: Mapping[str, float] = field(default_factory=dict)
    #: Calendar for weekend_holiday, as a `holidays` country code ("CN" knows 调休 workdays).
    calendar: str = "CN"
    #: Audit period; rows outside it are `out_of_period`. None = not checked.
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    #: "Today" for future_date; None = the day of the run.
    as_of: dt.date | None = None
    #: Days within which the same person/vendor/amount counts as a near duplicate.
    near_duplicate_days: int = 3
    #: Window (days) within which several items to one vendor look like a split purchase.
    split_window_days: int = 3
    #: below_threshold flags amounts within this fraction under the approval limit.
    below_threshold_pct: float = 0.05
    #: round_amount flags amounts that are multiples of this and at least `round_min`.
    round_multiple: float = 1000.0
    round_min: float = 1000.0
    #: Benford is not judged on fewer amounts than this.
    benford_min_count: int = 500
    #: Columns that must be filled on every row (missing_field).
    required_fields: tuple[str, ...] = ("date", "amount", "person", "category")
    #: IsolationForest: share of rows flagged and its seed (fixed for reproducible findings).
    anomaly_contamination: float = 0.01
    random_state: int = 0
    #: Rules switched off by id.
    disabled_rules: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the run record (dates as ISO text)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def settings_from_dict(values: Mapping[str, Any], base: Settings | None = None) -> Settings:
    """Validate user-given values (from TOML or a Settings sheet) and apply them over ``base``.

    Unknown keys are an error rather than ignored: a misspelt threshold silently falling back
    to its default is how alert fatigue or missed findings start.
    """
    base = base or Settings()
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        name = str(key).strip()
        if name not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise SettingsError(f"unknown setting '{name}'", f"use one of: {known}")
        changes[name] = _coerce(name, raw, getattr(base, name))
    settings = dataclasses.replace(base, **changes)
    _check(settings)
    return settings


def _coerce(name: str, raw: Any, current: Any) -> Any:
    """Turn text from a cell or TOML into the type of the field's default."""
    try:
        if name in ("period_start", "period_end", "as_of"):
            if raw in (None, ""):
                return None
            if isinstance(raw, dt.datetime):
                return raw.date()
            if isinstance(raw, dt.date):
                return raw
            return dt.date.fromisoformat(str(raw).strip())
        if name == "policy_limits":
            if isinstance(raw, Mapping):
                return {str(k): float(v) for k, v in raw.items()}
            # "客户招待=3000; 差旅费=8000" as typed in one cell
            pairs = [p for p in str(raw).replace("；", ";").split(";") if p.strip()]
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in pairs)}
        if isinstance(current, bool):
            return str(raw).strip().lower() in ("1", "true", "yes", "是", "y")
        if isinstance(current, int):
            return int(float(raw))
        if isinstance(current, float):
            return float(str(raw).replace(",", ""))
        if isinstance(current, tuple):
            if isinstance(raw, (list, tuple)):
                return tuple(str(x).strip() for x in raw)
            return tuple(x.strip() for x in str(raw).replace("，", ",").split(",") if x.strip())
        return str(raw).strip()
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting '{name}' has an invalid value {raw!r}",
                            f"give a value like {current!r}") from exc


def _check(settings: Settings) -> None:
    if settings.lang not in ("zh", "en"):
        raise SettingsError(f"lang must be 'zh' or 'en', not {settings.lang!r}", "set lang = \"zh\" or \"en\"")
    if settings.approval_limit <= 0 or settings.receipt_threshold < 0:
        raise SettingsError("approval_limit must be positive and receipt_threshold not negative",
                            "fix the amounts in the Settings sheet or config file")
    if not 0 < settings.anomaly_contamination < 0.5:
        raise SettingsError("anomaly_contamination must lie between 0 and 0.5", "use e.g. 0.01")
    if settings.period_start and settings.period_end and settings.period_start > settings.period_end:
        raise SettingsError("period_start is after period_end", "swap the two dates")
