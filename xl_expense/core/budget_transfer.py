"""Budget transfers (预算调整): move planned money between lines or months, with a log that replays.

Every change to an approved budget is a :class:`Transfer` of an amount from one *cell* (a line
and a month) to another. Money is never created or destroyed: the grand total of the budget is
the same before and after every transfer, and each month of a line stays ≥ 0. Transfers are
appended to a log (:data:`LOG_COLUMNS`, the ``调整记录/Adjustments`` sheet); applying the log
in order to the original budget gives the current budget (:func:`replay`).

Design choices
--------------
* **A transfer always names its months.** ``from_month`` is required; ``to_month`` defaults
  to ``from_month``. A transfer of a yearly amount ("move 6,000 from Travel to Meals") is
  split into one transfer per month by :func:`spread_transfer` — proportional to what is still
  available in each month (plan − spent) — so each log row is a single cell-to-cell move and
  replaying the log needs nothing but the log (no actuals, no "today").
* **Carry-forward** (:func:`carry_forward`) uses the same transfers with ``from_line ==
  to_line`` and different months: unused money of closed months moves to the line's open
  months, split in proportion to their plan (keeps the plan's seasonality; equal split when
  the open months have no plan).
* **Available amount.** With ``actuals`` (budget-shaped spend to date), a transfer between
  different lines may take at most the from line's year plan − its spend. A move between
  months of the same line does not change the line's total and is not limited by it.
* Amounts are handled in whole cents, so totals balance exactly, not just approximately.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xl_expense.core.budget import MONTHS, BudgetError
from xl_expense.core.budget_monitor import fold_text

LOG_COLUMNS = ("time", "from_line", "to_line", "amount", "from_month", "to_month", "reason", "approver",
               "from_before", "from_after", "to_before", "to_after")
"""Columns of the adjustments log; ``*_before`` / ``*_after`` are the lines' year totals."""


@dataclass(frozen=True, kw_only=True)
class Transfer:
    """Move ``amount`` from ``from_line``'s ``from_month`` to ``to_line``'s ``to_month``.

    Line keys are ``"category|unit"`` (see :func:`xl_expense.core.budget.line_key`); months
    are 1–12; ``to_month`` ``None`` means the same month as ``from_month``. ``time`` is when
    the transfer was approved — given by the caller, core never reads the clock.
    """

    from_line: str
    to_line: str
    amount: float
    from_month: int
    to_month: int | None = None
    reason: str = ""
    approver: str = ""
    time: dt.datetime | None = None

    @property
    def target_month(self) -> int:
        """The month that receives the money."""
        return self.from_month if self.to_month is None else self.to_month


# --- Helpers ---------------------------------------------------------------------------

def _cents(value: float) -> int:
    return round(float(value) * 100)


def _money(value: float) -> str:
    return f"{value:,.2f}"


def normalize_line(key: str) -> str:
    """A line key with the spaces around ``|`` and at the ends dropped: ``"Travel | Sales"`` → ``"Travel|Sales"``."""
    return "|".join(part.strip() for part in str(key).split("|"))


def _budget_keys(budget: pd.DataFrame) -> np.ndarray:
    joined = fold_text(budget["category"]) + "|" + fold_text(budget["unit"])
    return np.array([normalize_line(k) for k in joined], dtype=object)


def _locate(budget: pd.DataFrame, keys: np.ndarray, line: str) -> object:
    """Index label of ``line`` in ``budget``; a clear error if it is unknown or ambiguous."""
    hits = np.flatnonzero(keys == normalize_line(line))
    if len(hits) == 0:
        known = ", ".join(dict.fromkeys(keys[:8]))
        more = " …" if len(keys) > 8 else ""
        raise BudgetError(f"Unknown budget line {line!r}",
                          f"write it as category|unit, one of: {known}{more}")
    if len(hits) > 1:
        raise BudgetError(f"Budget line {line!r} appears {len(hits)} times",
                          "merge the duplicate rows of the Budget sheet into one")
    return budget.index[hits[0]]


def _check_month(month, name: str) -> int:
    if isinstance(month, (bool, np.bool_)) or not isinstance(month, (int, np.integer)) or not 1 <= month <= 12:
        raise BudgetError(f"{name} must be a month number 1–12, got {month!r}", "give the month as 1 … 12")
    return int(month)


def _line_spent(actuals: pd.DataFrame | None, line: str) -> float:
    """Spend to date of ``line`` in a budget-shaped actuals table (0 when absent)."""
    if actuals is None or actuals.empty:
        return 0.0
    keys = _budget_keys(actuals)
    hit = keys == normalize_line(line)
    return float(actuals.loc[hit, list(MONTHS)].to_numpy(dtype=float).sum())


def _months_float(budget: pd.DataFrame) -> pd.DataFrame:
    out = budget.copy()
    out[list(MONTHS)] = out[list(MONTHS)].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype("float64")
    return out


# --- Apply -----------------------------------------------------------------------------

def apply_transfer(budget: pd.DataFrame, transfer: Transfer, *, actuals: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, dict]:
    """Apply one transfer; return the new budget and its log row (``LOG_COLUMNS``).

    Refused with :class:`BudgetError` when a line is unknown, the amount is not positive,
    the from and to cells are the same, the from month would go negative, or (with
    ``actuals``, between different lines) the amount exceeds the from line's plan − spend.
    ``budget`` itself is never changed.
    """
    cents = _cents(transfer.amount) if pd.notna(transfer.amount) else 0
    if cents <= 0:
        raise BudgetError(f"Transfer amount must be positive, got {transfer.amount!r}",
                          "give an amount greater than 0; to move money back, swap from and to")
    from_month = _check_month(transfer.from_month, "from_month")
    to_month = _check_month(transfer.target_month, "to_month")
    new = _months_float(budget)
    keys = _budget_keys(new)
    src = _locate(new, keys, transfer.from_line)
    dst = _locate(new, keys, transfer.to_line)
    if src == dst and from_month == to_month:
        raise BudgetError(f"Transfer from {transfer.from_line!r} month {from_month} to itself",
                          "choose a different to line or month")
    src_col, dst_col = MONTHS[from_month - 1], MONTHS[to_month - 1]
    has = _cents(new.at[src, src_col])
    if has - cents < 0:
        raise BudgetError(
            f"Transfer of {_money(cents / 100)} would make {transfer.from_line!r} month {from_month} negative "
            f"(it has {_money(has / 100)})",
            f"transfer at most {_money(max(has, 0) / 100)} from that month, or take it from another month")
    from_before = float(new.loc[src, list(MONTHS)].sum())
    to_before = float(new.loc[dst, list(MONTHS)].sum())
    if actuals is not None and src != dst:
        spent = _line_spent(actuals, transfer.from_line)
        available = _cents(from_before) - _cents(spent)
        if cents > available:
            raise BudgetError(
                f"Transfer of {_money(cents / 100)} exceeds what is left on {transfer.from_line!r}: plan "
                f"{_money(from_before)} − spent {_money(spent)} = {_money(available / 100)} available",
                f"transfer at most {_money(max(available, 0) / 100)}")
    total_before = _cents_total(new)
    new.at[src, src_col] = (has - cents) / 100
    new.at[dst, dst_col] = (_cents(new.at[dst, dst_col]) + cents) / 100
    # Money moves, it is never created: the grand total must not change by a single cent.
    assert _cents_total(new) == total_before, "budget transfer changed the grand total"
    log_row = {
        "time": transfer.time,
        "from_line": normalize_line(transfer.from_line),
        "to_line": normalize_line(transfer.to_line),
        "amount": cents / 100,
        "from_month": from_month,
        "to_month": to_month,
        "reason": transfer.reason,
        "approver": transfer.approver,
        "from_before": round(from_before, 2),
        "from_after": round(float(new.loc[src, list(MONTHS)].sum()), 2),
        "to_before": round(to_before, 2),
        "to_after": round(float(new.loc[dst, list(MONTHS)].sum()), 2),
    }
    return new, log_row


def _cents_total(budget: pd.DataFrame) -> int:
    values = budget[list(MONTHS)].to_numpy(dtype=float)
    return int(np.rint(values * 100).astype(np.int64).sum())


def apply_transfers(budget: pd.DataFrame, transfers: Iterable[Transfer], *,
                    actuals: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply transfers in order, all or none; return the new budget and their log rows.

    If any transfer is refused the error is raised and nothing is returned, so a split
    transfer or a carry-forward is never half applied.
    """
    rows = []
    for transfer in transfers:
        budget, row = apply_transfer(budget, transfer, actuals=actuals)
        rows.append(row)
    return budget, log_frame(rows)


def log_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Log rows as a typed DataFrame with :data:`LOG_COLUMNS`."""
    df = pd.DataFrame(list(rows), columns=list(LOG_COLUMNS))
    df["time"] = pd.to_datetime(df["time"]).astype("datetime64[ns]")
    for col in ("from_line", "to_line", "reason", "approver"):
        df[col] = df[col].astype(object)
    for col in ("from_month", "to_month"):
        df[col] = pd.array(df[col], dtype="Int64")
    for col in ("amount", "from_before", "from_after", "to_before", "to_after"):
        df[col] = df[col].astype("float64")
    return df


def replay(original_budget: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """Re-apply an adjustments log, in order, to the budget it started from.

    Each row's ``*_after`` totals are checked against the replayed budget (to the cent), so a
    log applied to the wrong original budget, or an edited log, is reported at the first row
    that does not add up instead of silently producing a different budget.
    """
    missing = [c for c in ("from_line", "to_line", "amount", "from_month") if c not in log.columns]
    if missing:
        raise BudgetError(f"Adjustments log is missing column(s): {', '.join(missing)}",
                          "restore the log's header row")
    budget = _months_float(original_budget)
    for number, row in enumerate(log.itertuples(index=False), start=1):
        to_month = getattr(row, "to_month", None)
        transfer = Transfer(
            from_line=row.from_line, to_line=row.to_line, amount=float(row.amount),
            from_month=int(row.from_month),
            to_month=None if pd.isna(to_month) else int(to_month),
            reason=getattr(row, "reason", ""), approver=getattr(row, "approver", ""),
            time=getattr(row, "time", None))
        budget, applied = apply_transfer(budget, transfer)
        for col in ("from_after", "to_after"):
            logged = getattr(row, col, None)
            if logged is not None and pd.notna(logged) and _cents(logged) != _cents(applied[col]):
                raise BudgetError(
                    f"Adjustments log row {number} does not reproduce: {col} is {_money(applied[col])}, "
                    f"the log says {_money(float(logged))}",
                    "replay the log on the budget it started from (the original Budget sheet)")
    return budget


# --- Building transfers ----------------------------------------------------------------

def split_cents(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` cents in proportion to ``weights`` (largest remainder; ties to the earlier).

    Equal split when every weight is 0. The parts always add up to ``total`` exactly.
    """
    weights = np.asarray(weights, dtype=float)
    if len(weights) == 0:
        return np.zeros(0, dtype=np.int64)
    if weights.sum() <= 0:
        weights = np.ones(len(weights))
    raw = total * weights / weights.sum()
    parts = np.floor(raw).astype(np.int64)
    short = int(total - parts.sum())
    order = np.lexsort((np.arange(len(raw)), -(raw - parts)))  # biggest remainder first
    parts[order[:short]] += 1
    return parts


def _month_values(frame: pd.DataFrame | None, line: str) -> np.ndarray:
    """The 12 monthly amounts of ``line`` in a budget-shaped frame (zeros when absent)."""
    if frame is None or frame.empty:
        return np.zeros(12)
    hit = _budget_keys(frame) == normalize_line(line)
    return _months_float(frame).loc[hit, list(MONTHS)].to_numpy(dtype=float).sum(axis=0)


def spread_transfer(budget: pd.DataFrame, from_line: str, to_line: str, amount: float, *,
                    months: Sequence[int] | None = None, actuals: pd.DataFrame | None = None,
                    reason: str = "", approver: str = "", time: dt.datetime | None = None) -> list[Transfer]:
    """Split a yearly transfer into one transfer per month, same month on both lines.

    Each month of ``months`` (default: all twelve; pass the open months to leave closed ones
    alone) gives in proportion to what it still has available: plan − spend (with
    ``actuals``) or its plan, never below 0. Refused when those months have less than
    ``amount`` available in total. Apply the result with :func:`apply_transfers`.
    """
    months = list(range(1, 13)) if months is None else [_check_month(m, "month") for m in months]
    cents = _cents(amount) if pd.notna(amount) else 0
    if cents <= 0:
        raise BudgetError(f"Transfer amount must be positive, got {amount!r}",
                          "give an amount greater than 0; to move money back, swap from and to")
    _locate(budget, _budget_keys(budget), from_line)
    idx = np.array(months) - 1
    plan = _month_values(budget, from_line)[idx]
    spent = _month_values(actuals, from_line)[idx]
    free = np.maximum(np.rint(plan * 100) - np.rint(spent * 100), 0)
    free = np.minimum(free, np.maximum(np.rint(plan * 100), 0))  # a refund never frees more than the plan
    if cents > free.sum():
        raise BudgetError(
            f"Transfer of {_money(cents / 100)} exceeds what {from_line!r} has available in months "
            f"{', '.join(map(str, months))}: {_money(free.sum() / 100)}",
            f"transfer at most {_money(free.sum() / 100)}, or include more months")
    # Shares proportional to what is free never exceed it: a part gets its extra cent only
    # when its exact share has a fraction, i.e. is below its (whole-cent) cap.
    parts = split_cents(cents, free)
    return [Transfer(from_line=from_line, to_line=to_line, amount=int(part) / 100, from_month=int(month),
                     reason=reason, approver=approver, time=time)
            for month, part in zip(months, parts) if part > 0]


def carry_forward(budget: pd.DataFrame, actuals: pd.DataFrame, *, as_of: dt.date, reason: str = "",
                  approver: str = "", time: dt.datetime | None = None) -> list[Transfer]:
    """Transfers moving each line's unused money of closed months into its open months.

    Closed months are those before ``as_of``'s month (``as_of`` in the budget year); a closed
    month's unused money is plan − spend when positive (at most its plan). A line's total
    unused money is shared among its open months (``as_of``'s month to December) in
    proportion to their plan, equally if they have none, to the cent. Closed and open months
    are then paired in calendar order (first closed month fills the first open month, …), so
    a line needs at most ``closed + open − 1`` transfers. Apply with :func:`apply_transfers`.
    """
    first_open = as_of.month
    if first_open == 1:
        return []
    plan = _months_float(budget)[list(MONTHS)].to_numpy(dtype=float)
    plan_c = np.rint(plan * 100).astype(np.int64)
    keys = _budget_keys(budget)
    transfers: list[Transfer] = []
    for pos, line in enumerate(keys):
        spent_c = np.rint(_month_values(actuals, line) * 100).astype(np.int64)
        closed = plan_c[pos, : first_open - 1]
        unused = np.clip(closed - spent_c[: first_open - 1], 0, np.maximum(closed, 0))
        total = int(unused.sum())
        if total == 0:
            continue
        shares = split_cents(total, np.maximum(plan_c[pos, first_open - 1:], 0))
        for (src, dst), cents in _pair(unused, shares):
            transfers.append(Transfer(from_line=line, to_line=line, amount=cents / 100, from_month=src + 1,
                                      to_month=first_open + dst, reason=reason, approver=approver, time=time))
    return transfers


def _pair(supply: np.ndarray, demand: np.ndarray) -> list[tuple[tuple[int, int], int]]:
    """Match supplies to demands in order (northwest corner); both sum to the same total."""
    supply, demand = supply.astype(np.int64).copy(), demand.astype(np.int64).copy()
    moves, i, j = [], 0, 0
    while i < len(supply) and j < len(demand):
        take = int(min(supply[i], demand[j]))
        if take > 0:
            moves.append(((i, j), take))
        supply[i] -= take
        demand[j] -= take
        if supply[i] == 0:
            i += 1
        if j < len(demand) and demand[j] == 0:
            j += 1
    return moves


# --- Dry run ---------------------------------------------------------------------------

def preview_transfer(budget: pd.DataFrame, transfers: Transfer | Iterable[Transfer], *,
                     actuals: pd.DataFrame | None = None) -> pd.DataFrame:
    """What the transfer(s) would do, without doing it: before, after and change of each affected line.

    Returns one row per affected line and state (``"before"``, ``"after"``, ``"change"``) with
    ``line``, ``state``, ``m1`` … ``m12`` and ``year``. Raises the same :class:`BudgetError`
    as applying would, so a dry run also tells whether the transfer would be refused.
    """
    batch = [transfers] if isinstance(transfers, Transfer) else list(transfers)
    after, log = apply_transfers(budget, batch, actuals=actuals)
    before = _months_float(budget)
    lines = list(dict.fromkeys([*log["from_line"], *log["to_line"]]))
    keys_before, keys_after = _budget_keys(before), _budget_keys(after)
    rows = []
    for line in lines:
        old = before.loc[keys_before == line, list(MONTHS)].to_numpy(dtype=float)[0]
        new = after.loc[keys_after == line, list(MONTHS)].to_numpy(dtype=float)[0]
        for state, values in (("before", old), ("after", new), ("change", new - old)):
            rows.append({"line": line, "state": state, **dict(zip(MONTHS, np.round(values, 2))),
                         "year": round(float(values.sum()), 2)})
    return pd.DataFrame(rows, columns=["line", "state", *MONTHS, "year"])
