"""Benford's law: the first-digit test on the whole ledger and per salesperson.

In amounts that arise naturally, the first digit d occurs with probability log10(1 + 1/d)
(30.1 % ones, 4.6 % nines). Invented amounts drift away from it. Conformity is judged by
Nigrini's mean absolute deviation (MAD) over the nine digits, with his bands for the first-digit
test: close ≤ 0.006, acceptable ≤ 0.012, marginal ≤ 0.015, nonconforming above. A test on few
amounts is noise, so a group is only judged with at least `benford_min_count` amounts.

Only amounts ≥ 10 are tested: small amounts are usually fixed prices (parking, a coffee) whose
first digits say nothing, as Nigrini recommends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import (
    flags,
    group_hits,
    money1,
    no_hits,
    passes,
    rule,
)
from xl_expense.core.settings import Settings

DIGITS = np.arange(1, 10)
EXPECTED = np.log10(1.0 + 1.0 / DIGITS)
#: Nigrini's first-digit MAD bands (upper bounds), in order.
BANDS = (("close", 0.006), ("acceptable", 0.012), ("marginal", 0.015))
MIN_AMOUNT = 10.0
CONFORMITY_LABELS = {
    "zh": {"close": "高度符合", "acceptable": "可接受", "marginal": "勉强符合", "nonconforming": "不符合"},
    "en": {"close": "Close", "acceptable": "Acceptable", "marginal": "Marginal", "nonconforming": "Nonconforming"},
}
ALL_LABEL = {"zh": "全部", "en": "ALL"}


@dataclass(frozen=True)
class BenfordResult:
    """First-digit table of the population and the conformity of each group.

    ``digits``: columns digit, count, actual, expected (population, digits 1–9).
    ``groups``: columns group, n, mad, conformity, judged — first the population (group
    ``ALL``/``全部``), then each person by name. ``conformity`` is a code (close, acceptable,
    marginal, nonconforming; see :data:`CONFORMITY_LABELS` for display); ``judged`` is False
    under ``benford_min_count`` amounts, where the band is shown but means little.
    """

    digits: pd.DataFrame
    groups: pd.DataFrame


def first_digits(amounts: pd.Series) -> pd.Series:
    """Leading digit (1–9) of each amount ≥ 10 (absolute value); other rows are dropped."""
    values = amounts.abs()
    values = values[values >= MIN_AMOUNT]
    x = values.to_numpy(dtype="float64")
    scaled = x / np.power(10.0, np.floor(np.log10(x)))
    # log10 can land a hair under an integer power (999.9999 → 9.99…); the clip keeps 1–9.
    digit = np.clip(np.floor(scaled + 1e-9), 1, 9).astype("int64")
    return pd.Series(digit, index=values.index)


def conformity(mad: float) -> str:
    """Nigrini's band for a first-digit MAD."""
    for name, upper in BANDS:
        if mad <= upper:
            return name
    return "nonconforming"


def _first_digit_array(amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`first_digits` on an array: the digits and the positions they come from."""
    values = np.abs(amounts)
    tested = np.flatnonzero(values >= MIN_AMOUNT)  # NaN compares False: missing amounts drop out
    x = values[tested]
    scaled = x / np.power(10.0, np.floor(np.log10(x)))
    return np.clip(np.floor(scaled + 1e-9), 1, 9).astype("int64"), tested


def _mad(counts: np.ndarray) -> np.ndarray:
    n = counts.sum(axis=1).astype("float64")
    share = counts.astype("float64") / np.maximum(n, 1)[:, None]
    return np.abs(share - EXPECTED).mean(axis=1)


def _analyse(ledger: pd.DataFrame, settings: Settings) -> tuple[BenfordResult, np.ndarray, np.ndarray]:
    """The result, the digit counts per group (same order as ``groups``; digits 1–9 in
    columns) and each group's total.

    Counted with ``bincount`` over person codes rather than a crosstab: a crosstab costs
    milliseconds even on a small ledger, and this runs for every file of a batch.
    """
    amount = ledger["amount"].to_numpy(dtype="float64")
    digit, tested = _first_digit_array(amount)
    counts = np.bincount(digit, minlength=10)[1:10]
    n = int(counts.sum())
    digit_frame = pd.DataFrame({
        "digit": DIGITS,
        "count": counts.astype("int64"),
        "actual": counts / n if n else np.zeros(9),
        "expected": EXPECTED,
    })
    person = ledger["person"].iloc[tested]
    named = person.notna().to_numpy()
    # Persons as text, sorted by name (as a crosstab would order them).
    codes, names = pd.factorize(person[named].astype(str), sort=True)
    per_person = np.bincount(codes * 9 + digit[named] - 1, minlength=9 * len(names)).reshape(len(names), 9)
    tested_amount = pd.Series(amount[tested])
    # Summed by pandas' grouped sum, as before: same rounding of the totals to the last bit.
    person_totals = tested_amount[named].groupby(codes, sort=True).sum().to_numpy()
    totals = np.concatenate([[tested_amount.sum()], person_totals])
    table = np.vstack([counts[None, :], per_person]).astype("int64")
    sizes = table.sum(axis=1).astype("int64")
    mads = _mad(table) if n else np.zeros(len(table))
    groups = pd.DataFrame({
        "group": [ALL_LABEL[settings.lang]] + [str(g) for g in names],
        "n": sizes,
        "mad": mads,
        "conformity": [conformity(m) for m in mads],
        "judged": sizes >= int(settings.benford_min_count),
    })
    return BenfordResult(digit_frame, groups), table, totals


def benford_analysis(ledger: pd.DataFrame, settings: Settings) -> BenfordResult:
    """First-digit test on all amounts ≥ 10 and per person; see :class:`BenfordResult`."""
    return _analyse(ledger, settings)[0]


def _benford_sample(n: int, seed: int, person: str = "张三") -> list[dict]:
    """Log-uniform amounts (which follow Benford exactly) for examples and tests."""
    rng = np.random.default_rng(seed)
    amounts = np.round(10 ** rng.uniform(1, 5, n), 2)
    return [{"date": "2026-03-03", "person": person, "vendor": "v", "category": "c", "amount": float(a)}
            for a in amounts]


def _uniform_sample(n: int, seed: int, person: str = "李四") -> list[dict]:
    rng = np.random.default_rng(seed)
    amounts = np.round(rng.uniform(100, 999, n), 2)  # invented amounts: every first digit 1–9 alike
    return [{"date": "2026-03-03", "person": person, "vendor": "v", "category": "c", "amount": float(a)}
            for a in amounts]


@rule("benford", "warning", code="BEN", title_zh="本福特定律偏离", title_en="Benford deviation",
      doc_zh="金额首位数字的分布偏离本福特定律（Nigrini MAD > 0.015 为不符合），对全体及每位报销人分别检验；"
             "少于 500 笔不判断。",
      examples=[
          flags(lambda: _benford_sample(1500, 1) + _uniform_sample(600, 2), note="one person invents amounts"),
          passes(lambda: _benford_sample(2000, 3), note="natural amounts"),
          passes(lambda: _uniform_sample(300, 4), note="too few amounts to judge"),
      ])
def benford(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """First digits of the amounts deviate from Benford's law (Nigrini MAD above 0.015), overall or for one person.

    One finding per nonconforming group with at least `benford_min_count` amounts; it names the
    digit that deviates most. Not proof of fraud: a ledger of fixed-price items also deviates.
    """
    result, table, totals = _analyse(ledger, settings)
    groups = result.groups
    bad = groups.index[(groups["judged"] & (groups["conformity"] == "nonconforming")).to_numpy()]
    if len(bad) == 0:
        return no_hits()
    counts = table.astype("float64")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    records = []
    for position in bad:  # one line per nonconforming group: a handful
        line = groups.loc[position]
        is_all = position == 0
        worst = int(np.argmax(np.abs(share[position] - EXPECTED)))
        records.append({
            "group_key": "benford|ALL" if is_all else f"benford|person={line['group']}",
            "score": 0.5 + 0.5 * min(1.0, (line["mad"] - 0.015) / 0.015),
            "message": _message(line, worst, share[position, worst], float(totals[position]), is_all, settings),
            "person": None if is_all else line["group"],
            "amount": float(totals[position]),
        })
    return group_hits(records)


def _message(line, worst: int, share: float, total: float, is_all: bool, settings: Settings) -> str:
    digit = worst + 1
    money = money1(total, settings.currency)
    if settings.lang == "zh":
        who = "全部" if is_all else f"报销人 {line['group']} 的"
        return (f"{who} {line['n']:,} 笔金额（共 {money}）的首位数字偏离本福特定律：MAD {line['mad']:.4f} > 0.015，"
                f"不符合；首位为 {digit} 的占 {share:.1%}，预期 {EXPECTED[worst]:.1%}")
    who = "All" if is_all else f"Person {line['group']}:"
    return (f"{who} {line['n']:,} amounts ({money}) deviate from Benford's law: MAD {line['mad']:.4f} > 0.015, "
            f"nonconforming; first digit {digit} is {share:.1%} against {EXPECTED[worst]:.1%} expected")
