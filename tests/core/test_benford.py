"""First-digit Benford test with Nigrini's MAD bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.audit import RULES, benford_analysis
from xl_expense.core.audit.benford import EXPECTED, conformity, first_digits
from xl_expense.core.audit.registry import example_ledger
from xl_expense.core.settings import Settings


def _ledger(amounts, person="张三"):
    return example_ledger([{"date": "2026-03-03", "person": person, "amount": float(a)} for a in amounts])


def _benford_amounts(n, seed):
    return np.round(10 ** np.random.default_rng(seed).uniform(1, 6, n), 2)


def test_first_digits():
    digits = first_digits(pd.Series([10.0, 19.99, 999.99, 1000.0, 0.5, 9.99, -345.0, 70000.0]))
    assert digits.tolist() == [1, 1, 9, 1, 3, 7]  # below 10 left out; refunds by absolute value


@pytest.mark.parametrize("mad,band", [(0.0, "close"), (0.006, "close"), (0.0061, "acceptable"),
                                      (0.012, "acceptable"), (0.015, "marginal"), (0.0151, "nonconforming")])
def test_nigrini_bands(mad, band):
    assert conformity(mad) == band


def test_benford_sample_conforms():
    result = benford_analysis(_ledger(_benford_amounts(2000, 11)), Settings())
    population = result.groups.iloc[0]
    assert population["group"] == "全部" and population["n"] == 2000 and population["judged"]
    assert population["conformity"] in ("close", "acceptable")
    assert result.digits.columns.tolist() == ["digit", "count", "actual", "expected"]
    assert result.digits["count"].sum() == 2000
    assert np.allclose(result.digits["expected"], EXPECTED)
    assert RULES["benford"].func(_ledger(_benford_amounts(2000, 11)), Settings()).empty


def test_uniform_sample_is_nonconforming_with_a_finding():
    amounts = np.round(np.random.default_rng(5).uniform(100, 999.99, 2000), 2)
    ledger = _ledger(amounts)
    result = benford_analysis(ledger, Settings(lang="en"))
    assert result.groups["group"].tolist() == ["ALL", "张三"]
    assert result.groups["conformity"].tolist() == ["nonconforming", "nonconforming"]
    hits = RULES["benford"].func(ledger, Settings(lang="en"))
    assert hits["group_key"].tolist() == ["benford|ALL", "benford|person=张三"]
    assert hits["amount"].iloc[0] == pytest.approx(amounts.sum())
    assert hits["message"].iloc[1].startswith("Person 张三: 2,000 amounts")
    assert "first digit 1 is" in hits["message"].iloc[1]


def test_fewer_than_min_count_not_judged():
    amounts = np.round(np.random.default_rng(5).uniform(100, 999.99, 499), 2)
    result = benford_analysis(_ledger(amounts), Settings())
    assert not result.groups["judged"].any()
    assert result.groups["conformity"].iloc[0] == "nonconforming"  # shown, but not a finding
    assert RULES["benford"].func(_ledger(amounts), Settings()).empty


def test_per_person_groups_sorted_and_only_the_inventor_flagged():
    natural = [{"date": "2026-03-03", "person": "王五", "amount": float(a)} for a in _benford_amounts(3000, 2)]
    invented = [{"date": "2026-03-03", "person": "李四", "amount": float(a)}
                for a in np.round(np.random.default_rng(3).uniform(500, 999, 600), 2)]
    ledger = example_ledger(natural + invented)
    result = benford_analysis(ledger, Settings())
    assert result.groups["group"].tolist() == ["全部", "李四", "王五"]
    hits = RULES["benford"].func(ledger, Settings())
    assert "benford|person=李四" in hits["group_key"].tolist()
    assert "benford|person=王五" not in hits["group_key"].tolist()


def test_empty_ledger():
    result = benford_analysis(_ledger([]), Settings())
    assert result.digits["count"].sum() == 0
    assert result.groups["n"].tolist() == [0]
