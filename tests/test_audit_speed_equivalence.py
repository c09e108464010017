"""The audit core's fast paths find exactly what the plain ones found.

The audit was made faster (shared column codes, one findings table for all rules, array
versions of the window rules, numpy medians and digit counts) under one contract: not a
single finding, preview line or summary number may change. Two kinds of checks hold it:

* **Golden digests and counts**, taken with the audit as it was before the speed work, of
  the demo ledger and of a generated ledger with planted duplicates, near duplicates and
  splits. Any change to a finding (id, severity, score, message …) changes a digest.
* **Reference implementations in the same process**: each fast path against the plain
  pandas one it replaced, so a difference shows up on any machine, whatever its floating
  point library.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from xl_expense.core.audit import (
    RULES,
    anomaly,
    benford,
    benford_analysis,
    ids,
    prepare_ledger,
    registry,
    rules_duplicates,
    run_audit,
    run_rule,
    threshold_preview,
)
from xl_expense.core.audit import _sorted as sorted_findings
from xl_expense.core.audit.summary import summarize_findings
from xl_expense.core.settings import Settings

AS_OF = dt.date(2026, 12, 31)


# --------------------------------------------------------------------------- ledgers


def generated_ledger(n: int = 1200, seed: int = 5) -> pd.DataFrame:
    """A canonical ledger with every rule's material: copies, re-dated copies, halves, refunds."""
    rng = np.random.default_rng(seed)
    people = np.array([f"员工{i:02d}" for i in range(40)] + [None], dtype=object)
    vendors = np.array([f"商户{i:03d}" for i in range(120)], dtype=object)
    categories = np.array(["差旅费", "客户招待", "通讯费", "办公费", "礼品", None], dtype=object)
    person = people[rng.integers(0, len(people), n)]
    amount = np.round(np.exp(rng.uniform(np.log(20), np.log(6000), n)), 2)
    amount[rng.random(n) < 0.03] = rng.integers(1, 6, int((rng.random(n) < 0.03).sum()) or 1)[0] * 1000.0
    amount[rng.random(n) < 0.01] *= -1
    receipt = np.array([f"INV{i:06d}" for i in rng.permutation(n)], dtype=object)
    receipt[rng.random(n) < 0.1] = None
    receipt[rng.random(n) < 0.02] = "无"
    base = pd.DataFrame({
        "date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "amount": amount,
        "category": categories[rng.integers(0, len(categories), n)],
        "description": np.array(["拜访客户", "客户晚餐", "出差", "话费"], dtype=object)[rng.integers(0, 4, n)],
        "person": person,
        "department": np.array(["销售一部", "销售二部", None], dtype=object)[rng.integers(0, 3, n)],
        "customer": None,
        "vendor": vendors[rng.integers(0, len(vendors), n)],
        "receipt": receipt,
        "project": None,
        "region": None,
        "card": np.array([f"6222{i:02d}" for i in range(30)], dtype=object)[rng.integers(0, 30, n)],
    })
    redated = base.iloc[::9].assign(date=lambda d: d["date"] + pd.Timedelta(days=2))
    halves = base.iloc[::13].assign(amount=lambda d: (d["amount"] / 2).round(2))
    ledger = pd.concat([base, redated, halves, base.iloc[::31]], ignore_index=True)
    ledger["sheet"] = np.where(np.arange(len(ledger)) % 5 == 0, "分表", "明细")
    ledger["row"] = np.arange(len(ledger), dtype="int64") + 2
    return ledger


GENERATED_SETTINGS = Settings(as_of=AS_OF, approval_limit=3000.0, near_duplicate_days=3,
                              policy_limits={"客户招待": 2500.0}, period_start=dt.date(2025, 2, 1))


@pytest.fixture(scope="module")
def demo(demo_workbook: Path) -> tuple[pd.DataFrame, Settings]:
    from xl_expense.io.ledger_reader import load_ledger
    from xl_expense.io.settings_io import load_settings

    settings, _ = load_settings(demo_workbook, None, {})
    return load_ledger(demo_workbook).df, dataclasses.replace(settings, as_of=AS_OF)


# --------------------------------------------------------------------------- golden digests


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's values as text (floats by repr, so the last bit counts)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, frame.columns)).encode())
    for row in frame.itertuples(index=False):
        h.update(("\n" + "|".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row)).encode())
    return h.hexdigest()[:16]


def audit_digests(ledger: pd.DataFrame, settings: Settings) -> dict[str, str]:
    findings = run_audit(ledger, settings)
    out = {"findings": digest(findings), "preview": digest(threshold_preview(ledger, settings))}
    for name, table in summarize_findings(findings, ledger).items():
        out[name] = digest(table)
    result = benford_analysis(ledger, settings)
    out["benford"] = digest(pd.concat([result.digits.astype(str), result.groups.astype(str)]))
    return out


#: Findings per rule and digests, taken with the audit before the speed work (2026-05).
GENERATED_COUNTS = {"weekend_holiday": 448, "missing_field": 261, "duplicate": 246, "near_duplicate": 128,
                    "out_of_period": 126, "split_transaction": 82, "missing_receipt": 63, "round_amount": 45,
                    "over_policy_limit": 44, "isolation_forest": 15, "negative_amount": 8, "below_threshold": 6,
                    "benford": 1}
GENERATED_DIGESTS = {"findings": "32c767f2c8bfbc2c", "preview": "1119ec03a5ddc704", "by_rule": "ff5df03ba25063f1",
                     "by_severity": "4aa29b4bdc20f635", "by_department": "3851cb51b0167468",
                     "by_person": "c7ea0023437e54ab", "totals": "caed508622380130", "benford": "1bb8c2ff93a05639"}
DEMO_COUNTS = {"isolation_forest": 50, "split_transaction": 38, "below_threshold": 31, "over_policy_limit": 21,
               "weekend_holiday": 3, "duplicate": 1, "future_date": 1, "out_of_period": 1, "missing_receipt": 1,
               "missing_field": 1, "negative_amount": 1}
DEMO_DIGESTS = {"findings": "c70fb8b18e551047", "preview": "7bdbeacf4883bc73", "by_rule": "f54343f2b1a1587c",
                "by_severity": "289c63c4d03d5bcd", "by_department": "1e8c974fd52dc791",
                "by_person": "d7b7a87ecd46dcea", "totals": "31b21602627056e0", "benford": "7d266d6f57483320"}


def test_generated_ledger_findings_are_the_golden_ones():
    ledger = generated_ledger()
    findings = run_audit(ledger, GENERATED_SETTINGS)
    assert findings["rule"].value_counts().to_dict() == GENERATED_COUNTS
    assert audit_digests(ledger, GENERATED_SETTINGS) == GENERATED_DIGESTS


def test_demo_ledger_findings_are_the_golden_ones(demo):
    ledger, settings = demo
    findings = run_audit(ledger, settings)
    assert findings["rule"].value_counts().to_dict() == DEMO_COUNTS
    assert audit_digests(ledger, settings) == DEMO_DIGESTS


# --------------------------------------------------------------------------- against the plain paths


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_run_audit_equals_its_rules_one_by_one(lang):
    """One findings table for all rules == run_rule per rule, concatenated and sorted."""
    ledger = generated_ledger(900, seed=11)
    settings = dataclasses.replace(GENERATED_SETTINGS, lang=lang)
    df = prepare_ledger(ledger)
    occurrence = ids.occurrences(df)
    frames = [f for f in (run_rule(r, df, settings, occurrence) for r in RULES.values()) if len(f)]
    expected = sorted_findings(pd.concat(frames, ignore_index=True), df)
    assert_frame_equal(run_audit(ledger, settings), expected, check_exact=True)


def test_shared_column_codes_change_nothing():
    """Rules inside shared_work (cached codes) return what they return outside it."""
    df = prepare_ledger(generated_ledger(700, seed=3))
    for rule in RULES.values():
        plain = rule.func(df, GENERATED_SETTINGS)
        with registry.shared_work(df):
            shared = rule.func(df, GENERATED_SETTINGS)
            again = rule.func(df, GENERATED_SETTINGS)  # served from the cache now
        assert_frame_equal(shared, plain, check_exact=True)
        assert_frame_equal(again, plain, check_exact=True)


def reference_key_codes(df: pd.DataFrame, cols, na_is_value: bool = False) -> np.ndarray:
    """key_codes as it was: factorise column by column, renumbering after each."""
    key = np.zeros(len(df), dtype="int64")
    missing = np.zeros(len(df), dtype=bool)
    for col in cols:
        codes, uniques = pd.factorize(df[col], use_na_sentinel=not na_is_value)
        missing |= codes < 0
        key = pd.factorize(key * (len(uniques) + 1) + codes + 1)[0].astype("int64")
    key[missing] = -1
    return key


@pytest.mark.parametrize("cols", [["person"], ["person", "vendor"], ["date", "person", "vendor", "amount"],
                                  ["sheet", "date", "amount", "person", "vendor", "receipt", "description"]])
@pytest.mark.parametrize("na_is_value", [False, True])
def test_key_codes_of_rows_equal_those_of_the_subset(cols, na_is_value):
    df = prepare_ledger(generated_ledger(600, seed=4))
    mask = (df["amount"] > 0).to_numpy()
    assert np.array_equal(registry.key_codes(df, cols, na_is_value), reference_key_codes(df, cols, na_is_value))
    with registry.shared_work(df):
        sub = registry.key_codes(df, cols, na_is_value, rows=mask)
    assert np.array_equal(sub, reference_key_codes(df[mask], cols, na_is_value))


def test_content_texts_from_shared_codes_equal_the_plain_ones():
    """Including the values that factorize as one but print as two: 1 / 1.0, 0.0 / -0.0."""
    df = prepare_ledger(generated_ledger(300, seed=8))
    df["receipt"] = df["receipt"].astype(object)
    df.loc[5, "receipt"], df.loc[250, "receipt"] = 1, 1.0
    df.loc[7, "amount"], df.loc[260, "amount"] = 0.0, -0.0
    df.loc[9, "person"] = None
    positions = np.array([250, 260, 9, 3, 120, 299, 0], dtype="int64")
    with registry.shared_work(df):
        fast = ids.ledger_content_texts(df, positions)
    assert fast.tolist() == ids.content_texts(df.iloc[positions]).tolist()


def reference_robust_z(scored: pd.DataFrame, top: pd.DataFrame, key_col: str):
    return anomaly._robust_z_pandas(scored, top, key_col)


@pytest.mark.parametrize("rows", [120, 600, 3000])
def test_sorted_medians_equal_pandas_grouped_medians(rows):
    ledger = prepare_ledger(generated_ledger(rows, seed=rows))
    scored = anomaly.anomaly_features(ledger)
    top = scored.iloc[::7]
    for key_col in ("_pc_key", "_person_key", "_category_key", "_all_key"):
        fast_m, fast_z = anomaly._robust_z(scored, top, key_col)
        plain_m, plain_z = reference_robust_z(scored, top, key_col)
        assert np.array_equal(fast_m, plain_m, equal_nan=True)
        assert np.array_equal(fast_z, plain_z)


def test_benford_counts_equal_a_crosstab():
    ledger = prepare_ledger(generated_ledger(2000, seed=9))
    result, table, totals = benford._analyse(ledger, GENERATED_SETTINGS)
    digits = benford.first_digits(ledger["amount"].dropna())
    tested = ledger.loc[digits.index]
    named = tested["person"].notna()
    persons = tested.loc[named, "person"].astype(str)
    cross = pd.crosstab(persons, digits[named]).reindex(columns=benford.DIGITS, fill_value=0).sort_index()
    assert np.array_equal(table[1:], cross.to_numpy())
    assert result.groups["group"].tolist()[1:] == [str(p) for p in cross.index]
    sums = tested.loc[named, "amount"].groupby(persons).sum().reindex(cross.index).to_numpy()
    assert np.array_equal(totals[1:], sums)
    assert totals[0] == tested["amount"].sum()


def reference_near_pairs(ledger: pd.DataFrame, days: int) -> pd.DataFrame:
    """near_pairs as it was: a grouped frame and a merge."""
    amount = ledger["amount"]
    usable = (ledger["date"].notna() & (amount > 0)).to_numpy()
    key = np.where(usable, reference_key_codes(ledger, ["person", "vendor", "amount"]), -1)
    keep = key >= 0
    frame = pd.DataFrame({"key": key[keep], "day": registry.day_numbers(ledger["date"])[keep],
                          "pos": np.arange(len(ledger))[keep]})
    per_day = frame.groupby(["key", "day"], sort=True)["pos"].min().reset_index()
    same_key = per_day["key"].eq(per_day["key"].shift())
    per_day["gap"] = (per_day["day"] - per_day["day"].shift()).where(same_key)
    per_day["prev_pos"] = per_day["pos"].shift().where(same_key)
    close = per_day[(per_day["gap"] >= 1) & (per_day["gap"] <= days)]
    return frame.merge(close[["key", "day", "gap", "prev_pos"]], on=["key", "day"]).sort_values("pos")


@pytest.mark.parametrize("days", [0, 1, 3, 7])
def test_near_pairs_equal_the_grouped_frame_version(days):
    ledger = prepare_ledger(generated_ledger(1500, seed=12))
    fast = rules_duplicates.near_pairs(rules_duplicates.near_days(ledger), days)
    plain = reference_near_pairs(ledger, days)
    assert fast.pos.tolist() == plain["pos"].tolist()
    assert fast.gap.tolist() == plain["gap"].astype("int64").tolist()
    assert fast.prev_pos.tolist() == plain["prev_pos"].astype("int64").tolist()


def reference_split_positions(ledger: pd.DataFrame, who: str, limit: float, width: int) -> list[int]:
    """Items of a qualifying window, by brute force over every (key, window end day)."""
    items = rules_duplicates.split_items(ledger, who)
    frame = pd.DataFrame(items._asdict())
    frame = frame[frame["amount"] <= limit]
    flagged = set()
    for _, group in frame.groupby("key"):
        for end in group["day"].unique():
            window = group[(group["day"] <= end) & (group["day"] > end - width)]
            if len(window) >= 2 and window["amount"].sum() > limit:
                flagged.update(window["pos"].tolist())
    return sorted(flagged)


@pytest.mark.parametrize("limit, width", [(1500.0, 1), (3000.0, 3), (5000.0, 5)])
def test_split_windows_flag_the_brute_force_items(limit, width):
    ledger = prepare_ledger(generated_ledger(800, seed=2))
    for who in ("person", "card"):
        fast = rules_duplicates.split_windows(rules_duplicates.split_items(ledger, who), limit, width)
        assert fast.pos.tolist() == reference_split_positions(ledger, who, limit, width)


def test_text_helpers_equal_pandas_string_arithmetic():
    index = pd.Index([10, 11, 12, 13])
    names = pd.Series(["甲", None, "乙", np.nan], index=index, dtype=object)
    numbers = pd.Series([1, 2.5, None, "x"], index=index, dtype=object)
    plain_label = names.astype(object).where(names.notna(), "—").astype(str).astype(object)
    assert_series_equal(registry.label(names), plain_label)
    assert_series_equal(registry.label(numbers), numbers.astype(object).where(numbers.notna(), "—")
                        .astype(str).astype(object))
    # A missing value in a part: pandas' own rule (the result is missing there), as before.
    joined = registry.join_text("a", names, "b")
    expected = pd.Series([""] * 4, index=index, dtype=object) + "a" + names.astype(object) + "b"
    assert_series_equal(joined, expected)
    dates = pd.Series(pd.to_datetime(["2026-03-05", None, "1999-12-31"]))
    assert registry.day_text(dates).tolist() == ["2026-03-05", "?", "1999-12-31"]
    assert registry.money(pd.Series([1234.5, -0.004, np.nan])).tolist() == ["¥1,234.50", "-¥0.00", ""]
    refs = registry.row_ref(pd.Series(["明细", None]), pd.Series([12, 13], dtype="int64"), "zh")
    assert refs.tolist() == ["明细 第 12 行", "? 第 13 行"]


def reference_path_sums(forest: anomaly.IsolationForest, X: np.ndarray) -> np.ndarray:
    """Every row down every tree, one heap step per level (the scoring as it was)."""
    n_trees = forest.feature.shape[0]
    node = np.zeros((n_trees, len(X)), dtype="int64")
    trees = np.arange(n_trees)[:, None]
    rows = np.arange(len(X))[None, :]
    for level in range(forest.depth):
        heap = (1 << level) - 1 + node
        go_right = X[rows, forest.feature[trees, heap]] > forest.threshold[trees, heap]
        node = 2 * node + go_right
    return forest.path_length[trees, node].sum(axis=0)


@pytest.mark.parametrize("rows, n_trees, sample_size", [(3000, 100, 256), (300, 20, 64), (60, 7, 256)])
def test_forest_path_sums_equal_the_plain_heap_walk(rows, n_trees, sample_size):
    rng = np.random.default_rng(rows)
    X = np.column_stack([rng.lognormal(size=rows), rng.integers(0, 7, rows), rng.normal(size=rows)])
    forest = anomaly.fit_isolation_forest(X, random_state=0, n_trees=n_trees, sample_size=sample_size)
    assert np.array_equal(forest.path_sums(X), reference_path_sums(forest, X))
