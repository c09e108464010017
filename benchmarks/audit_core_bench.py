"""Time run_audit (and the threshold preview, summary and Benford table) on a generated ledger.

    python benchmarks/audit_core_bench.py [ROWS]    (default 1,048,576)

Wall seconds per rule, then CPU seconds (``time.process_time``) of each call the audit
workflow makes, so a busy shared machine does not hide a change.

The ledger is realistic in shape: 200 salespeople in 10 departments, 2,000 vendors,
12 categories with their own log-normal amount levels, a year of dates, receipts on most rows.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from xl_expense.core.audit import benford_analysis, run_audit, threshold_preview
from xl_expense.core.audit.summary import summarize_findings
from xl_expense.core.settings import Settings

CATEGORIES = ["客户招待", "差旅费", "交通费", "通讯费", "办公用品", "礼品", "会议费", "培训费", "市场推广", "快递费",
              "住宿费", "餐费"]


def _vendor_of(rng: np.random.Generator, person: np.ndarray) -> np.ndarray:
    """70 % of a person's claims go to their 20 usual vendors, the rest anywhere."""
    usual = (person * 37 + rng.integers(0, 20, len(person))) % 2000
    anywhere = rng.integers(0, 2000, len(person))
    return np.where(rng.random(len(person)) < 0.7, usual, anywhere)


def make_ledger(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    people = np.array([f"销售{i:03d}" for i in range(200)], dtype=object)
    departments = np.array([f"销售{i}部" for i in range(10)], dtype=object)
    vendors = np.array([f"商户{i:04d}" for i in range(2000)], dtype=object)
    person = rng.integers(0, 200, n)
    category = rng.integers(0, 12, n)
    level = np.exp(rng.uniform(np.log(50), np.log(3000), 12))[category]
    amount = np.round(level * rng.lognormal(0, 0.6, n), 2)
    round_ones = rng.random(n) < 0.02
    amount[round_ones] = rng.integers(1, 10, int(round_ones.sum())) * 1000.0
    amount[rng.random(n) < 0.003] *= -1  # refunds
    days = rng.integers(0, 365, n)
    receipt = np.array([f"{x:010d}" for x in rng.permutation(n)], dtype=object)
    receipt[(rng.random(n) < 0.08)] = None
    descriptions = np.array(["拜访客户", "客户招待晚餐", "出差住宿", "打车", "话费", "会议场地", "礼品采购"], dtype=object)
    return pd.DataFrame({
        "date": pd.Timestamp("2025-01-01") + pd.to_timedelta(days, unit="D"),
        "amount": amount,
        "category": np.array(CATEGORIES, dtype=object)[category],
        "description": descriptions[rng.integers(0, len(descriptions), n)],
        "person": people[person],
        "department": departments[person % 10],
        "customer": None,
        "vendor": vendors[_vendor_of(rng, person)],
        "receipt": receipt,
        "project": None,
        "region": None,
        "card": np.array([f"6222{i:04d}" for i in range(200)], dtype=object)[person],
        "sheet": "明细",
        "row": np.arange(n, dtype="int64") + 2,
    })


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_048_576
    ledger = make_ledger(n)
    settings = Settings(as_of=pd.Timestamp("2025-12-31").date(), policy_limits={"客户招待": 3000.0, "礼品": 2000.0})
    timings: dict[str, float] = {}
    start, cpu = time.perf_counter(), time.process_time()
    findings = run_audit(ledger, settings, timings=timings)
    total = time.perf_counter() - start
    print(f"run_audit on {n:,} rows: {total:.2f} s ({time.process_time() - cpu:.2f} s CPU), {len(findings):,} findings")
    counts = findings["rule"].value_counts()
    for rule_id, seconds in timings.items():
        print(f"  {rule_id:<18} {seconds:6.2f} s  {counts.get(rule_id, 0):>9,} findings")
    for name, call in (("threshold_preview", lambda: threshold_preview(ledger, settings)),
                       ("summarize_findings", lambda: summarize_findings(findings, ledger)),
                       ("benford_analysis", lambda: benford_analysis(ledger, settings))):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        print(f"{name}: {time.perf_counter() - start:.2f} s ({time.process_time() - cpu:.2f} s CPU)")


if __name__ == "__main__":
    main()
