"""Optimisation proposal (优化建议): move next period's budget from idle lines to overrunning ones.

A line is a **donor** when it is *persistently* under-used: its spend is below
``underuse_threshold`` of its plan to date overall *and* in at least ``persistence`` of the
closed months that had a plan (and there are at least ``min_months`` of them) — one quiet
month is not a trend. A line is a **receiver** when it runs ahead of plan (actual > plan to
date) and the monitor's seasonal forecast ends the year above its annual plan.

How much may move, relative to the line's next-period budget ``base``:

* a donor gives at most ``min(max_cut_pct, projected unused share)`` × base, where the
  projected unused share is ``1 − forecast ÷ annual plan``: never cut below what the line is
  on course to need;
* a receiver takes at most ``min(max_raise_pct, projected overrun share)`` × base;
* ``line_bounds`` (line → (min_change, max_change), absolute amounts) override both for the
  lines they name.

The split is a small transportation linear program solved with
:func:`scipy.optimize.linprog` (HiGHS): variables ``x[d, r] ≥ 0`` (money from donor d to
receiver r), ``Σ_r x[d, r] ≤ cap[d]``, ``Σ_d x[d, r] ≤ need[r]``, and the objective maximises
the money moved, with small bonuses (< 1, so they never reduce the total) for moves within the
same unit, to the most overrun receivers and from the most idle donors. Every move takes from
one line what it gives to another, so the budget total is unchanged by construction. Moves are
rounded *down* to ``step`` (rounding down keeps every bound) and moves below ``min_move`` are
dropped.

Nothing is applied: the moves are a proposal; the user applies them with the transfer command.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from xl_expense.core.analysis._common import AnalysisError, money, ratio, ratio4
from xl_expense.core.budget import MONTHS, line_key, year_total
from xl_expense.core.budget_monitor import (
    UNBUDGETED,
    actuals_to_date,
    fold_text,
    monitor_budget,
)
from xl_expense.core.budget_transfer import normalize_line

MOVE_COLUMNS = ("from_line", "to_line", "amount", "from_category", "from_unit", "to_category", "to_unit",
                "from_pace", "to_pace", "explanation")
LINE_COLUMNS = ("line", "category", "unit", "role", "base", "planned_year", "planned_to_date", "actual_to_date",
                "pace", "closed_months", "months_under", "forecast_seasonal", "min_change", "max_change",
                "change", "proposed")
_CENT = 0.005


@dataclass(frozen=True)
class ProposalLimits:
    """Thresholds and bounds of the reallocation (see the module docstring)."""

    max_cut_pct: float = 0.2
    max_raise_pct: float = 0.3
    underuse_threshold: float = 0.8
    persistence: float = 0.6
    min_months: int = 3
    min_move: float = 500.0
    step: float = 100.0
    same_unit_bonus: float = 0.1
    line_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self):
        if not (0 <= self.max_cut_pct <= 1 and self.max_raise_pct >= 0):
            raise AnalysisError("max_cut_pct must lie in [0, 1] and max_raise_pct be ≥ 0", "e.g. 0.2 and 0.3")
        if not 0 < self.underuse_threshold <= 1 or not 0 < self.persistence <= 1:
            raise AnalysisError("underuse_threshold and persistence must lie in (0, 1]", "e.g. 0.8 and 0.6")
        if self.step <= 0 or self.min_move < 0 or self.min_months < 1:
            raise AnalysisError("step must be positive, min_move ≥ 0 and min_months ≥ 1", "e.g. 100, 500, 3")
        for line, (low, high) in self.line_bounds.items():
            if low > 0 or high < 0:
                raise AnalysisError(f"bounds of {line!r} must allow no change: min ≤ 0 ≤ max",
                                    "give (−most it may lose, most it may gain)")


@dataclass(frozen=True)
class Proposal:
    """The proposed moves and every budget line with its role, bounds and proposed amount."""

    moves: pd.DataFrame
    lines: pd.DataFrame


def propose_reallocation(budget: pd.DataFrame, ledger: pd.DataFrame, *, year: int, as_of: dt.date,
                         unit_by: str = "department", next_budget: pd.DataFrame | None = None,
                         limits: ProposalLimits | None = None, lang: str = "zh") -> Proposal:
    """Propose budget moves for the next period from this period's use of each line.

    Parameters
    ----------
    budget : DataFrame
        This period's budget (``category``, ``unit``, ``m1`` … ``m12``).
    ledger : DataFrame
        Canonical ledger; actuals come from :func:`~xl_expense.core.budget_monitor.monitor_budget`.
    year, as_of, unit_by
        As for ``monitor_budget``.
    next_budget : DataFrame, optional
        The next period's budget whose year totals are moved; default ``budget`` itself.
    limits : ProposalLimits, optional
    lang : {"zh", "en"}
        Language of the explanations.

    Returns
    -------
    Proposal
        ``moves`` (:data:`MOVE_COLUMNS`, largest first) and ``lines`` (:data:`LINE_COLUMNS`);
        ``lines["proposed"].sum() == lines["base"].sum()``.
    """
    limits = limits or ProposalLimits()
    lines = _line_facts(budget, ledger, year=year, as_of=as_of, unit_by=unit_by, limits=limits)
    lines["base"] = _bases(lines, next_budget if next_budget is not None else budget)
    _roles_and_bounds(lines, limits)
    flows = _solve(lines, limits)
    moves = _moves(lines, flows, limits, as_of, lang)
    change = pd.Series(0.0, index=lines.index)
    for move in moves.itertuples(index=False):
        change[lines.index[lines["line"] == move.from_line][0]] -= move.amount
        change[lines.index[lines["line"] == move.to_line][0]] += move.amount
    lines["change"] = money(change)
    lines["proposed"] = money(lines["base"] + lines["change"])
    for col in ("base", "min_change", "max_change"):
        lines[col] = money(lines[col].astype("float64"))
    return Proposal(moves=moves, lines=lines[list(LINE_COLUMNS)].reset_index(drop=True))


def _line_facts(budget: pd.DataFrame, ledger: pd.DataFrame, *, year: int, as_of: dt.date, unit_by: str,
                limits: ProposalLimits) -> pd.DataFrame:
    """Per budget line: plan, spend, pace and forecast (monitor) and the monthly under-use count."""
    alerts = monitor_budget(budget, ledger, as_of=as_of, year=year, unit_by=unit_by)
    alerts = alerts.loc[alerts["line"] != UNBUDGETED]
    keyed = alerts.set_index(fold_text(alerts["category"]) + "|" + fold_text(alerts["unit"]))
    keys = (fold_text(budget["category"]) + "|" + fold_text(budget["unit"])).to_numpy()
    facts = keyed.reindex(keys)
    out = pd.DataFrame({
        "line": line_key(budget).map(normalize_line).to_numpy(),
        "category": budget["category"].astype(object).to_numpy(),
        "unit": budget["unit"].astype(object).to_numpy(),
        "planned_year": facts["planned_year"].to_numpy(dtype="float64"),
        "planned_to_date": facts["planned_to_date"].to_numpy(dtype="float64"),
        "actual_to_date": facts["actual_to_date"].to_numpy(dtype="float64"),
        "forecast_seasonal": facts["forecast_seasonal"].to_numpy(dtype="float64"),
    })
    out["pace"] = ratio4(ratio(out["actual_to_date"], out["planned_to_date"]))
    plan = budget[list(MONTHS)].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy()
    actuals = actuals_to_date(ledger, year=year, as_of=as_of, unit_by=unit_by)
    spent = actuals.set_index(actuals["category"] + "|" + actuals["unit"])[list(MONTHS)].reindex(keys)
    spent = spent.fillna(0.0).to_numpy()
    closed = _closed_months(as_of, year)
    planned = plan[:, :closed] > 0
    under = planned & (spent[:, :closed] < limits.underuse_threshold * plan[:, :closed])
    out["closed_months"] = planned.sum(axis=1).astype("int64")
    out["months_under"] = under.sum(axis=1).astype("int64")
    return out


def _closed_months(as_of: dt.date, year: int) -> int:
    """Months of ``year`` that ended before ``as_of``'s month (0 before the year, 12 after it)."""
    if as_of.year < year:
        return 0
    return as_of.month - 1 if as_of.year == year else 12


def _bases(lines: pd.DataFrame, next_budget: pd.DataFrame) -> np.ndarray:
    """Next period's year total of each line (0 when the next budget has no such line)."""
    totals = pd.Series(year_total(next_budget.assign(**{m: pd.to_numeric(next_budget[m], errors="coerce")
                                                        .fillna(0.0) for m in MONTHS})).to_numpy(),
                       index=line_key(next_budget).map(normalize_line).to_numpy())
    totals = totals.groupby(level=0).sum()
    return lines["line"].map(totals).fillna(0.0).to_numpy(dtype="float64")


def _roles_and_bounds(lines: pd.DataFrame, limits: ProposalLimits) -> None:
    """Donor/receiver role and the most each line may lose (min_change) or gain (max_change)."""
    base = lines["base"].to_numpy()
    pace = lines["pace"].to_numpy(dtype="float64")
    planned_year = lines["planned_year"].to_numpy(dtype="float64")
    forecast = lines["forecast_seasonal"].to_numpy(dtype="float64")
    persistent = (lines["closed_months"].to_numpy() >= limits.min_months) & (
        lines["months_under"].to_numpy() >= limits.persistence * lines["closed_months"].to_numpy())
    donor = (base > 0) & (pace < limits.underuse_threshold) & persistent
    receiver = (base > 0) & (pace > 1.0) & (forecast > planned_year + _CENT)
    projected = ratio(forecast, planned_year)
    unused = np.clip(1.0 - np.nan_to_num(projected, nan=1.0), 0.0, None)
    over = np.clip(np.nan_to_num(projected, nan=1.0) - 1.0, 0.0, None)
    cut = np.where(donor, np.minimum(limits.max_cut_pct, unused) * base, 0.0)
    raise_ = np.where(receiver, np.minimum(limits.max_raise_pct, over) * base, 0.0)
    for i, line in enumerate(lines["line"]):
        if line in limits.line_bounds:
            low, high = limits.line_bounds[line]
            cut[i] = min(cut[i], -float(low))
            raise_[i] = min(raise_[i], float(high))
    lines["role"] = pd.Series([("donor" if d else "receiver" if r else None) for d, r in zip(donor, receiver)],
                              index=lines.index, dtype=object)
    lines["min_change"] = 0.0 - cut + 0.0  # + 0.0 turns -0.0 into 0.0 for display
    lines["max_change"] = raise_


def _solve(lines: pd.DataFrame, limits: ProposalLimits) -> dict[tuple[int, int], float]:
    """The transportation LP: money from each donor to each receiver (positions in ``lines``)."""
    donors = np.flatnonzero((lines["role"] == "donor").to_numpy() & (lines["min_change"].to_numpy() < 0))
    receivers = np.flatnonzero((lines["role"] == "receiver").to_numpy() & (lines["max_change"].to_numpy() > 0))
    if not len(donors) or not len(receivers):
        return {}
    pairs = [(d, r) for d in donors for r in receivers]
    unit = lines["unit"].astype(object).to_numpy()
    pace = lines["pace"].to_numpy(dtype="float64")
    over = np.clip(ratio(lines["forecast_seasonal"], lines["planned_year"]) - 1.0, 0.0, 1.0)
    # Each unit of money moved earns 1; the bonuses stay below 1 so they only choose between
    # equally large solutions and never trade total money moved for a preferred pair.
    gain = np.array([1.0 + limits.same_unit_bonus * (unit[d] == unit[r]) + 0.05 * over[r]
                     + 0.05 * np.clip(1.0 - np.nan_to_num(pace[d]), 0.0, 1.0) for d, r in pairs])
    a_ub = np.zeros((len(donors) + len(receivers), len(pairs)))
    for k, (d, r) in enumerate(pairs):
        a_ub[np.searchsorted(donors, d), k] = 1.0
        a_ub[len(donors) + np.searchsorted(receivers, r), k] = 1.0
    b_ub = np.concatenate([-lines["min_change"].to_numpy()[donors], lines["max_change"].to_numpy()[receivers]])
    result = linprog(-gain, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    if result.status != 0:  # x = 0 is always feasible, so this means a solver failure
        raise AnalysisError(f"the reallocation could not be solved: {result.message}",
                            "loosen the bounds or report this budget as a bug")
    return {pair: float(x) for pair, x in zip(pairs, result.x) if x > _CENT}


def _moves(lines: pd.DataFrame, flows: dict[tuple[int, int], float], limits: ProposalLimits,
           as_of: dt.date, lang: str) -> pd.DataFrame:
    """Rounded moves with their explanation, largest first."""
    records = []
    for (d, r), amount in flows.items():
        # Rounded down: a move never exceeds the LP's amount, so every bound still holds.
        amount = np.floor(amount / limits.step + 1e-9) * limits.step
        if amount < max(limits.min_move, limits.step) - _CENT:
            continue
        src, dst = lines.iloc[d], lines.iloc[r]
        records.append({
            "from_line": src["line"], "to_line": dst["line"], "amount": float(money(amount)),
            "from_category": src["category"], "from_unit": src["unit"],
            "to_category": dst["category"], "to_unit": dst["unit"],
            "from_pace": src["pace"], "to_pace": dst["pace"],
            "explanation": _explain(src, dst, amount, limits, as_of, lang),
        })
    moves = pd.DataFrame(records, columns=list(MOVE_COLUMNS))
    if moves.empty:
        return moves.astype({"amount": "float64", "from_pace": "float64", "to_pace": "float64"})
    moves = moves.sort_values(["amount", "from_line", "to_line"], ascending=[False, True, True], kind="stable")
    return moves.reset_index(drop=True)


def _fmt(value: float) -> str:
    return f"{value:,.2f}"


def _explain(src: pd.Series, dst: pd.Series, amount: float, limits: ProposalLimits, as_of: dt.date,
             lang: str) -> str:
    """One sentence saying why this money moves, with the numbers behind it."""
    unused = max(0.0, src["planned_year"] - src["forecast_seasonal"])
    over = max(0.0, dst["forecast_seasonal"] - dst["planned_year"])
    day = as_of.isoformat()
    if lang == "zh":
        return (f"建议从「{src['line']}」调出 {_fmt(amount)} 至「{dst['line']}」：前者截至 {day} 仅用计划进度的 "
                f"{src['pace']:.0%}，{src['closed_months']} 个已结束月份中有 {src['months_under']} 个低于 "
                f"{limits.underuse_threshold:.0%}，预计全年结余 {_fmt(unused)}；后者已达计划进度的 {dst['pace']:.0%}，"
                f"预计全年超支 {_fmt(over)}。")
    return (f"Move {_fmt(amount)} from {src['line']} to {dst['line']}: by {day} the first has used "
            f"{src['pace']:.0%} of its plan to date, under {limits.underuse_threshold:.0%} in "
            f"{src['months_under']} of {src['closed_months']} closed months, projected {_fmt(unused)} unused; "
            f"the second is at {dst['pace']:.0%} of plan and projected {_fmt(over)} over its annual budget.")
