"""Scorecards (绩效) per salesperson or department: components, a score, a tier and its reward.

Nobody should be judged by a number they cannot trace, so every component is a visible column
and the score is a plain weighted mean of component points:

    score = 100 × Σ wᵢ·pᵢ / Σ wᵢ      (sums over the components that could be measured)

Each component's points pᵢ lie in [0, 1] (1 = nothing to improve):

* ``budget`` — pace = actual ÷ plan to date of the budget lines (monitor table, budget by
  department). p = 1 at or under plan, falling linearly to 0 at ``budget_tolerance`` over
  (0.5 → 150 % of plan scores 0). A salesperson is measured by the budget of their home
  department (where most of their spend is booked): budgets are not set per person.
* ``peer_spend`` — cost per customer served ÷ the median of the peers (salespeople of the same
  home department; departments among all departments). p = 1 at or under the median, 0 at
  (1 + ``peer_tolerance``) × median. Normalising by customers keeps the one who serves twelve
  customers from looking worse than the one who serves three.
* ``findings`` — Σ severity weight × status weight over the group's audit findings, per
  expense row. Confirmed findings weigh 1, open ones 0.5, explained (dismissed, false
  positive) 0; errors 3, warnings 1, info 0. p = 1 − rate ÷ ``findings_tolerance`` (floor 0).
  ``missing_receipt`` and ``budget_overrun`` findings are left out here: they have their own
  components and would otherwise count twice.
* ``receipts`` — missing-receipt findings not explained away, per expense row;
  p = 1 − rate ÷ ``receipts_tolerance``.
* ``savings`` — change of cost per customer against the previous period (when given):
  p = 0.5 + saving % ÷ (2 × ``savings_span``), clipped to [0, 1]: no change scores 0.5,
  ``savings_span`` cheaper scores 1, ``savings_span`` dearer scores 0.

The tier is the first of the reward/penalty table (sorted by minimum score, highest first)
whose minimum the score reaches; its amount is the reward (negative = penalty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xl_expense.core.analysis._common import (
    AnalysisError,
    key_text,
    money,
    points_below,
    ratio,
    ratio4,
    spend_rows,
)
from xl_expense.core.analysis.statuses import STATUS_KEYS, status_keys
from xl_expense.errors import SettingsError
from xl_expense.schema import SEVERITIES

COMPONENTS = ("budget", "peer_spend", "findings", "receipts", "savings")
LEVELS = ("person", "department")
#: Rules with their own component, left out of the findings component.
OWN_COMPONENT_RULES = ("missing_receipt", "budget_overrun")

SCORECARD_COLUMNS = (
    "level", "group", "department", "spend", "claims", "customers", "cost_per_customer",
    "budget_planned_to_date", "budget_actual_to_date", "budget_pace", "budget_points",
    "peer_group_size", "peer_median_cost_per_customer", "peer_index", "peer_spend_points",
    "findings_error", "findings_warning", "findings_info",
    "findings_confirmed", "findings_open", "findings_explained",
    "weighted_findings", "findings_rate", "findings_points",
    "missing_receipts", "receipts_rate", "receipts_points",
    "previous_cost_per_customer", "savings", "savings_pct", "savings_points",
    "weights_used", "score", "tier", "reward", "rank",
)


@dataclass(frozen=True)
class Tier:
    """A row of the reward/penalty table: scores from ``min_score`` up earn ``amount``."""

    name: str
    min_score: float
    amount: float


DEFAULT_TIERS: dict[str, tuple[Tier, ...]] = {
    "zh": (Tier("优秀", 85.0, 2000.0), Tier("良好", 70.0, 0.0), Tier("需改进", 0.0, -1000.0)),
    "en": (Tier("Excellent", 85.0, 2000.0), Tier("Good", 70.0, 0.0), Tier("Needs improvement", 0.0, -1000.0)),
}


def tiers_from_mapping(mapping: Mapping[str, object]) -> tuple[Tier, ...]:
    """Tiers from the settings layer's dict, highest minimum first.

    Accepts ``{"优秀": {"min_score": 85, "amount": 2000}, …}`` or ``{"优秀": (85, 2000), …}``.
    A tier table without a tier starting at 0 leaves low scores without a tier (reward 0).
    """
    tiers = []
    for name, spec in mapping.items():
        try:
            if isinstance(spec, Mapping):
                min_score, amount = spec["min_score"], spec.get("amount", 0.0)
            else:
                min_score, amount = spec
            tiers.append(Tier(str(name).strip(), float(min_score), float(amount)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"reward tier {name!r} has an invalid value {spec!r}",
                                "give a minimum score and an amount, e.g. 优秀 = 85, 2000") from exc
    return _checked_tiers(tiers)


def _checked_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    if not tiers:
        raise SettingsError("the reward tier table is empty", "list at least one tier, e.g. 良好 = 0, 0")
    scores = [t.min_score for t in tiers]
    if len(set(scores)) != len(scores):
        raise SettingsError("two reward tiers have the same minimum score", "give each tier its own minimum")
    if any(not 0 <= s <= 100 for s in scores):
        raise SettingsError("a reward tier's minimum score is outside 0–100", "scores run from 0 to 100")
    return tuple(sorted(tiers, key=lambda t: -t.min_score))


@dataclass(frozen=True)
class ScoreConfig:
    """Weights, tolerances and the tier table of the scorecards (see the module docstring)."""

    weights: Mapping[str, float] = field(default_factory=lambda: {
        "budget": 25.0, "peer_spend": 25.0, "findings": 25.0, "receipts": 15.0, "savings": 10.0})
    severity_weights: Mapping[str, float] = field(default_factory=lambda: {"error": 3.0, "warning": 1.0, "info": 0.0})
    status_weights: Mapping[str, float] = field(default_factory=lambda: {
        "confirmed": 1.0, "open": 0.5, "explained": 0.0})
    budget_tolerance: float = 0.5
    peer_tolerance: float = 1.0
    findings_tolerance: float = 0.1
    receipts_tolerance: float = 0.05
    savings_span: float = 0.5
    #: ``None`` = :data:`DEFAULT_TIERS` in the run's language; a mapping as for :func:`tiers_from_mapping`.
    tiers: Sequence[Tier] | Mapping[str, object] | None = None

    def __post_init__(self):
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            raise SettingsError(f"unknown score component(s): {', '.join(sorted(unknown))}",
                                f"use {', '.join(COMPONENTS)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise SettingsError("score weights must be ≥ 0 and not all 0", "e.g. budget = 25, findings = 25")
        if set(self.status_weights) != set(STATUS_KEYS) or set(self.severity_weights) != set(SEVERITIES):
            raise SettingsError("severity and status weights must name every level",
                                f"severities {SEVERITIES}, statuses {STATUS_KEYS}")
        for name in ("budget_tolerance", "peer_tolerance", "findings_tolerance", "receipts_tolerance",
                     "savings_span"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be positive", "e.g. 0.5")

    def tier_table(self, lang: str = "zh") -> tuple[Tier, ...]:
        """The tiers in use, highest minimum first."""
        if self.tiers is None:
            return DEFAULT_TIERS.get(lang, DEFAULT_TIERS["en"])
        if isinstance(self.tiers, Mapping):
            return tiers_from_mapping(self.tiers)
        return _checked_tiers(list(self.tiers))


def scorecards(ledger: pd.DataFrame, findings: pd.DataFrame | None = None, *, level: str = "person",
               alerts: pd.DataFrame | None = None, previous: pd.DataFrame | None = None,
               config: ScoreConfig | None = None, lang: str = "zh") -> pd.DataFrame:
    """Scorecards per salesperson (``level="person"``) or department, best score first.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger of the period being scored. Rows without a person (department) are
        not scored.
    findings : DataFrame, optional
        Audit findings of that ledger, with an optional ``status`` column (reviewer's status in
        either language). ``None`` = not audited: the findings and receipts components are
        not measured (NaN), which is different from an audit that found nothing (points 1).
    alerts : DataFrame, optional
        ``monitor_budget``'s table for a budget by department; otherwise no budget component.
    previous : DataFrame, optional
        Canonical ledger of the previous period, for the savings component.
    config : ScoreConfig, optional
        Weights, tolerances and tiers.
    lang : {"zh", "en"}
        Picks the default tier names.

    Returns
    -------
    DataFrame
        :data:`SCORECARD_COLUMNS`. Points columns are NaN when a component could not be
        measured; ``weights_used`` is the Σ w of the measured ones, so
        ``score = 100 × Σ w·points / weights_used``.
    """
    if level not in LEVELS:
        raise AnalysisError(f"cannot score by {level!r}", "use person or department")
    config = config or ScoreConfig()
    rows = spend_rows(ledger)
    rows = rows.assign(_key=key_text(rows[level]), _dept=key_text(rows["department"]))
    rows = rows.loc[rows["_key"].notna()]
    out = _base(rows, level)
    out = out.join(_budget(out, alerts, config))
    out = out.join(_peers(out, level, config))
    out = out.join(_findings(out, findings, level, config))
    out = out.join(_savings(out, previous, level, config))
    out = _score(out, config, config.tier_table(lang))
    return out.reset_index()[list(SCORECARD_COLUMNS)]


def _home_departments(rows: pd.DataFrame) -> pd.Series:
    """Each person's department: the one with the largest spend (ties: first in text order)."""
    sums = rows.groupby(["_key", "_dept"], dropna=False)["amount"].sum().reset_index()
    sums["_dept_text"] = sums["_dept"].astype(object).where(sums["_dept"].notna(), "")
    sums = sums.sort_values(["_key", "amount", "_dept_text"], ascending=[True, False, True], kind="stable")
    first = sums.drop_duplicates("_key").set_index("_key")["_dept"]
    return first.astype(object).where(first.notna(), None)


def _base(rows: pd.DataFrame, level: str) -> pd.DataFrame:
    """Spend, rows and customers served per group, indexed by group."""
    grouped = rows.groupby("_key", sort=True)
    out = pd.DataFrame({
        "spend": grouped["amount"].sum(),
        "claims": grouped.size().astype("int64"),
        "customers": grouped["customer"].agg(lambda s: key_text(s).nunique()).astype("int64"),
    })
    out.index.name = "group"
    out["level"] = level
    out["department"] = _home_departments(rows) if level == "person" else out.index.to_series().astype(object)
    out["cost_per_customer"] = ratio(out["spend"], out["customers"])
    return out


def _budget(base: pd.DataFrame, alerts: pd.DataFrame | None, config: ScoreConfig) -> pd.DataFrame:
    """Plan to date and spend of each group's (home) department, pace and points."""
    out = pd.DataFrame(index=base.index)
    planned = actual = pd.Series(np.nan, index=base.index)
    if alerts is not None and len(alerts) and (alerts["unit_by"] == "department").all():
        units = key_text(alerts["unit"])
        by_unit = alerts.groupby(units, dropna=True)[["planned_to_date", "actual_to_date"]].sum()
        planned = base["department"].map(by_unit["planned_to_date"]).astype("float64")
        actual = base["department"].map(by_unit["actual_to_date"]).astype("float64")
    out["budget_planned_to_date"] = money(planned)
    out["budget_actual_to_date"] = money(actual)
    pace = ratio(actual, planned)
    out["budget_pace"] = ratio4(pace)
    out["budget_points"] = points_below(pace - 1.0, config.budget_tolerance)
    return out


def _peers(base: pd.DataFrame, level: str, config: ScoreConfig) -> pd.DataFrame:
    """Cost per customer against the median of the peer group."""
    peer_key = base["department"].astype(object).fillna("") if level == "person" else pd.Series("", index=base.index)
    cpc = base["cost_per_customer"]
    median = cpc.groupby(peer_key).transform("median")
    size = cpc.groupby(peer_key).transform("size")
    index = pd.Series(ratio(cpc, median), index=base.index)
    # Nothing spent and peers spending nothing either: on par, not unmeasurable.
    index[(cpc == 0) & (median == 0)] = 1.0
    return pd.DataFrame({
        "peer_group_size": size.astype("int64"),
        "peer_median_cost_per_customer": money(median.astype("float64")),
        "peer_index": ratio4(index),
        "peer_spend_points": points_below(index.to_numpy() - 1.0, config.peer_tolerance),
    }, index=base.index)


def _findings(base: pd.DataFrame, findings: pd.DataFrame | None, level: str, config: ScoreConfig
              ) -> pd.DataFrame:
    """Counts by severity and status, weighted findings and missing receipts, with points."""
    count_cols = [f"findings_{s}" for s in SEVERITIES] + [f"findings_{s}" for s in ("confirmed", "open", "explained")]
    out = pd.DataFrame(0, index=base.index, columns=[*count_cols, "missing_receipts"], dtype="int64")
    out["weighted_findings"] = 0.0
    if findings is None:
        for col in out.columns:
            out[col] = np.nan
        out["findings_rate"] = out["findings_points"] = np.nan
        out["receipts_rate"] = out["receipts_points"] = np.nan
        return out
    f = pd.DataFrame({"key": key_text(findings[level]), "rule": findings["rule"].astype(object),
                      "severity": findings["severity"].astype(object), "status": status_keys(findings)})
    f = f.loc[f["key"].isin(base.index)]
    receipts = f.loc[(f["rule"] == "missing_receipt") & (f["status"] != "explained")]
    out["missing_receipts"] = receipts.groupby("key").size().reindex(base.index, fill_value=0).astype("int64")
    f = f.loc[~f["rule"].isin(OWN_COMPONENT_RULES)]
    for name, column in (*((s, "severity") for s in SEVERITIES), *((s, "status") for s in STATUS_KEYS)):
        counts = f.loc[f[column] == name].groupby("key").size()
        out[f"findings_{name}"] = counts.reindex(base.index, fill_value=0).astype("int64")
    weight = f["severity"].map(config.severity_weights).fillna(0.0) * f["status"].map(config.status_weights)
    out["weighted_findings"] = weight.groupby(f["key"]).sum().reindex(base.index, fill_value=0.0).astype("float64")
    rate = ratio(out["weighted_findings"], base["claims"])
    out["findings_rate"] = ratio4(rate)
    out["findings_points"] = points_below(rate, config.findings_tolerance)
    receipts_rate = ratio(out["missing_receipts"], base["claims"])
    out["receipts_rate"] = ratio4(receipts_rate)
    out["receipts_points"] = points_below(receipts_rate, config.receipts_tolerance)
    return out


def _savings(base: pd.DataFrame, previous: pd.DataFrame | None, level: str, config: ScoreConfig
             ) -> pd.DataFrame:
    """Cost per customer now against the previous period: saving %, amount and points."""
    out = pd.DataFrame(np.nan, index=base.index,
                       columns=["previous_cost_per_customer", "savings", "savings_pct", "savings_points"])
    if previous is None:
        return out
    prev = spend_rows(previous)
    keys = key_text(prev[level])
    grouped = prev.loc[keys.notna()].groupby(keys[keys.notna()])
    prev_cpc = pd.Series(ratio(grouped["amount"].sum(),
                               grouped["customer"].agg(lambda s: key_text(s).nunique())),
                         index=grouped["amount"].sum().index)
    before = prev_cpc.reindex(base.index).astype("float64")
    now = base["cost_per_customer"]
    pct = pd.Series(ratio(before - now, before), index=base.index)
    out["previous_cost_per_customer"] = money(before)
    # Money saved at today's number of customers: (old − new cost per customer) × customers.
    out["savings"] = money((before - now) * base["customers"])
    out["savings_pct"] = ratio4(pct)
    out["savings_points"] = np.where(pct.isna(), np.nan,
                                     np.clip(0.5 + pct / (2 * config.savings_span), 0.0, 1.0))
    return out


def _score(out: pd.DataFrame, config: ScoreConfig, tiers: tuple[Tier, ...]) -> pd.DataFrame:
    """Weighted mean of measured points, tier, reward and rank."""
    points = {c: out[f"{c}_points"].astype("float64") for c in COMPONENTS}
    for c in COMPONENTS:
        out[f"{c}_points"] = ratio4(points[c])
    weights = {c: float(config.weights.get(c, 0.0)) for c in COMPONENTS}
    # Points are rounded first so that the score recomputed from the visible columns is exact.
    rounded = {c: out[f"{c}_points"] for c in COMPONENTS}
    weighted = sum(rounded[c].fillna(0.0) * weights[c] for c in COMPONENTS)
    used = sum(rounded[c].notna() * weights[c] for c in COMPONENTS)
    out["weights_used"] = used.astype("float64")
    out["score"] = np.round(100.0 * ratio(weighted, used), 1)
    tier = [_tier_of(s, tiers) for s in out["score"]]
    out["tier"] = pd.Series([t.name if t else None for t in tier], index=out.index, dtype=object)
    out["reward"] = [t.amount if t else 0.0 for t in tier]
    out["reward"] = out["reward"].astype("float64")
    out["spend"] = money(out["spend"])
    out["cost_per_customer"] = money(out["cost_per_customer"])
    order = pd.DataFrame({"nan": out["score"].isna().to_numpy(), "score": -out["score"].fillna(0).to_numpy(),
                          "group": out.index.astype(str)})
    order = order.sort_values(["nan", "score", "group"], kind="stable").index.to_numpy()
    out = out.iloc[order]
    out["rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out


def _tier_of(score: float, tiers: tuple[Tier, ...]) -> Tier | None:
    if pd.isna(score):
        return None
    # Scores are rounded to 0.1, so 84.95 shows as 85.0 and must earn the 85 tier.
    return next((t for t in tiers if score >= t.min_score - 1e-9), None)
