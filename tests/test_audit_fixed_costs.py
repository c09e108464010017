"""The audit step's fixed per-file costs went down; not one finding, table or sheet changed.

A batch audits thousands of ~1,000-row workbooks, where what an audit costs regardless of
the ledger's size dominates: the isolation forest's fit, the summary's pandas groupbys, the
typing and sorting of the findings table, the empty hit tables of rules that find nothing.
Each was made cheaper under one contract, held two ways:

* **Golden digests** taken with the code as it was before (2026-05): the forest's arrays,
  and every cell of the audit sheets built for the demo ledger (findings, summary, Benford,
  preview, carried-over reviewer notes).
* **The plain version in the same process**: the forest grown with a minimum and maximum per
  node and feature and a sort per level, the summary by pandas groupbys, the findings typed
  and sorted by pandas, compared exactly on many inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from xl_expense import schema
from xl_expense.core.audit import (
    RULES,
    _typed,
    anomaly,
    benford_analysis,
    registry,
    run_audit,
    threshold_preview,
)
from xl_expense.core.audit.summary import summarize_findings

AS_OF = dt.date(2026, 12, 31)


def sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- the forest


def plain_fit(X: np.ndarray, random_state: int, n_trees: int = anomaly.N_TREES,
              sample_size: int = anomaly.SAMPLE_SIZE) -> anomaly.IsolationForest:
    """The forest as it was grown before: every node's minimum and maximum of every feature
    (``reduceat``), the rows sorted by node again at each level."""
    X = np.asarray(X, dtype="float64")
    rng = np.random.default_rng(random_state)
    n, n_features = X.shape
    psi = min(sample_size, n)
    depth = max(1, math.ceil(math.log2(max(psi, 2))))
    rows = np.stack([rng.choice(n, size=psi, replace=False) for _ in range(n_trees)])
    samples = X[rows]
    feature = np.zeros((n_trees, (1 << depth) - 1), dtype="int64")
    threshold = np.full((n_trees, (1 << depth) - 1), np.inf)
    path_length = np.zeros((n_trees, 1 << depth))
    tree = np.repeat(np.arange(n_trees), psi)
    values = np.ascontiguousarray(samples.reshape(-1, n_features).T)
    node = np.zeros(values.shape[1], dtype="int64")
    for level in range(depth + 1):
        group = tree * (1 << level) + node
        order = np.argsort(group, kind="stable")
        group, tree, node, values = group[order], tree[order], node[order], values[:, order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        count = np.diff(np.r_[starts, len(group)])
        low = np.minimum.reduceat(values, starts, axis=1).T
        high = np.maximum.reduceat(values, starts, axis=1).T
        varying = high > low
        g_tree, g_node = tree[starts], node[starts]
        leaf = (count <= 1) | ~varying.any(axis=1) | (level == depth)
        width = 1 << (depth - level)
        slots = (g_node[leaf] * width)[:, None] + np.arange(width)
        path_length[g_tree[leaf][:, None], slots] = (level + anomaly.average_path_length(count[leaf]))[:, None]
        split = ~leaf
        n_varying = varying[split].sum(axis=1)
        k = np.minimum((rng.random(int(split.sum())) * n_varying).astype("int64"), n_varying - 1)
        chosen = (np.cumsum(varying[split], axis=1) > k[:, None]).argmax(axis=1)
        lo, hi = low[split, chosen], high[split, chosen]
        cut = lo + rng.random(len(lo)) * (hi - lo)
        cut = np.where(cut >= hi, lo, cut)
        heap = (1 << level) - 1 + g_node[split]
        feature[g_tree[split], heap] = chosen
        threshold[g_tree[split], heap] = cut
        group_feature = np.full(len(starts), -1)
        group_feature[split] = chosen
        group_cut = np.full(len(starts), np.inf)
        group_cut[split] = cut
        member = np.repeat(np.arange(len(starts)), count)
        keep = split[member]
        member = member[keep]
        tree, node, values = tree[keep], node[keep], values[:, keep]
        node = 2 * node + (values[group_feature[member], np.arange(len(member))] > group_cut[member])
        if not len(node):
            break
    return anomaly.IsolationForest(feature, threshold, path_length, psi)


def forest_digest(forest: anomaly.IsolationForest) -> str:
    return sha(forest.feature.tobytes(), forest.threshold.tobytes(), forest.path_length.tobytes(),
               str((forest.feature.shape, forest.path_length.shape, forest.sample_size)).encode())


def matrix(kind: str, n: int, n_features: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":  # amounts-like, with a few far outliers
        X = rng.lognormal(5, 1.2, (n, n_features))
        X[rng.random(n) < 0.01] *= 40
    elif kind == "discrete":  # weekdays, roundness: many ties, columns constant within nodes
        X = rng.integers(0, 4, (n, n_features)).astype("float64")
    elif kind == "constant_columns":
        X = rng.random((n, n_features))
        X[:, ::2] = 1.0
    elif kind == "special":  # inf, -0.0 and NaN (which the features never hold, but the fit accepts)
        X = rng.random((n, n_features))
        X[rng.random((n, n_features)) < 0.05] = np.inf
        X[rng.random((n, n_features)) < 0.05] = -0.0
        X[rng.random((n, n_features)) < 0.05] = np.nan
    else:
        X = rng.random((n, n_features))
    return X


FOREST_CASES = [("lognormal", 1000, 9, 0), ("discrete", 700, 9, 1), ("constant_columns", 300, 5, 2),
                ("special", 500, 6, 3), ("uniform", 200, 1, 4), ("uniform", 3, 9, 5), ("uniform", 1, 4, 6),
                ("uniform", 257, 17, 7)]


@pytest.mark.parametrize("kind,n,n_features,seed", FOREST_CASES)
@pytest.mark.parametrize("random_state", [0, 11])
def test_forest_is_the_plain_forest_bit_for_bit(kind, n, n_features, seed, random_state):
    X = matrix(kind, n, n_features, seed)
    fast, plain = anomaly.fit_isolation_forest(X, random_state), plain_fit(X, random_state)
    assert fast.sample_size == plain.sample_size
    for name in ("feature", "threshold", "path_length"):
        a, b = getattr(fast, name), getattr(plain, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("n_trees,sample_size", [(20, 64), (5, 1000), (1, 2)])
def test_forest_other_sizes_are_the_plain_forest(n_trees, sample_size):
    X = matrix("lognormal", 600, 9, 8)
    fast = anomaly.fit_isolation_forest(X, 3, n_trees=n_trees, sample_size=sample_size)
    assert forest_digest(fast) == forest_digest(plain_fit(X, 3, n_trees=n_trees, sample_size=sample_size))


#: forest_digest of fit_isolation_forest(matrix(*case), 0), taken before the fit was rewritten.
FOREST_DIGESTS = {
    ("lognormal", 1000, 9, 0): "3728c5f6cd033fe8",
    ("discrete", 700, 9, 1): "700c6646abbf019b",
    ("special", 500, 6, 3): "f0540635e7867a84",
}


@pytest.mark.parametrize("case", list(FOREST_DIGESTS))
def test_forest_is_the_golden_one(case):
    assert forest_digest(anomaly.fit_isolation_forest(matrix(*case), 0)) == FOREST_DIGESTS[case]


def test_scores_with_narrow_indices_are_the_plain_heap_walk():
    X = matrix("lognormal", 2500, 9, 9)  # two scoring blocks, the second one not full
    forest = anomaly.fit_isolation_forest(X, 0)
    total = np.zeros(len(X))
    for t in range(forest.feature.shape[0]):  # one tree after another, as float sums add up
        node = np.zeros(len(X), dtype="int64")
        for _ in range(forest.depth):
            f, cut = forest.feature[t, node], forest.threshold[t, node]
            node = 2 * node + 1 + (X[np.arange(len(X)), f] > cut)
        leaf = forest.path_length[t, node - forest.feature.shape[1]]
        total = total + leaf if t else leaf.copy()
    assert forest.path_sums(X).tobytes() == total.tobytes()


# --------------------------------------------------------------------------- hits and findings tables


def test_no_hits_is_a_fresh_empty_table_each_time():
    first = registry.no_hits()
    first["extra"] = 1.0
    first.loc[7] = [0.5, "m", 1.0]
    again = registry.no_hits()
    assert list(again.columns) == ["score", "message"] and again.empty
    assert again.dtypes.to_dict() == {"score": np.dtype("float64"), "message": np.dtype(object)}
    assert again.index.dtype == np.dtype("int64")


@pytest.mark.parametrize("severity", [None, "warning", ["info", "warning", "info"]])
def test_row_hits_equal_the_column_by_column_table(severity):
    index = pd.Index([4, 9, 12])
    message = pd.Series(["a", "b", None], index=[0, 1, 2], dtype=object)  # taken by position
    expected = pd.DataFrame(index=index)
    expected["score"] = np.clip(np.asarray([1.5, 0.2, -1.0], dtype="float64"), 0.0, 1.0)
    expected["message"] = pd.Series(message.to_numpy(dtype=object), index=index, dtype=object)
    if severity is not None:
        texts = [severity] * 3 if isinstance(severity, str) else severity
        expected["severity"] = pd.Series(texts, index=index, dtype=object)
    got = registry.row_hits(index, [1.5, 0.2, -1.0], message, severity)
    assert_frame_equal(got, expected, check_exact=True)


def random_finding_columns(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)

    def pick(values):
        return np.array(values, dtype=object)[rng.integers(0, len(values), n)]

    return {
        "date": (pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).to_numpy(),
        "person": pick(["张三", None, np.nan, "李四"]),
        "department": pick(["销售一部", None]),
        "vendor": pick(["海底捞", "滴滴", None]),
        "category": pick(["差旅费", None, pd.NA]),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(500, 300, n)),
        "sheet": pick(["明细", "分表"]),
        "row": rng.integers(2, 500, n),
        "finding_id": np.array([f"X-{i:04d}" for i in rng.permutation(n)], dtype=object),
        "rule": pick(list(RULES)),
        "severity": np.where(rng.random(n) < 0.5, np.str_("warning"), "error").astype(object),
        "score": rng.random(n),
        "message": pick(["m1", "m2"]),
    }


@pytest.mark.parametrize("n,seed", [(0, 0), (1, 1), (57, 2), (400, 3)])
def test_findings_typed_at_once_equal_the_typed_frame(n, seed):
    from xl_expense.core.audit import _typed_columns

    columns = random_finding_columns(n, seed)
    person = [repr(v) for v in columns["person"]]
    expected = _typed(pd.DataFrame({k: v.copy() for k, v in columns.items()}))
    got = _typed_columns(columns)
    assert_frame_equal(got, expected, check_exact=True)
    assert [type(v) for v in got["severity"]] == [type(v) for v in expected["severity"]]  # np.str_ stays
    assert [repr(v) for v in columns["person"]] == person  # the ledger's arrays are not written to


def test_sort_order_is_pandas_sort(monkeypatch):
    from xl_expense.core.audit import _sort_order

    rng = np.random.default_rng(5)
    n = 300
    keys = [pd.Series(rng.integers(0, 3, n)),
            pd.Series(np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n))),  # unknown rules: NaN
            pd.Series(rng.integers(0, 2, n).astype("float64")),
            pd.Series(np.where(rng.random(n) < 0.2, np.inf, rng.integers(2, 30, n))),
            pd.Series([f"ID-{v:03d}" for v in rng.integers(0, 120, n)], dtype=object)]  # ties too
    frame = pd.DataFrame({str(i): k for i, k in enumerate(keys)})
    expected = frame.sort_values(list(frame.columns), kind="stable").index.to_numpy()
    assert np.array_equal(_sort_order(*keys), expected)
    keys[-1] = keys[-1].where(rng.random(n) < 0.9, None)  # not all text: pandas sorts them
    frame = pd.DataFrame({str(i): k for i, k in enumerate(keys)})
    expected = frame.sort_values(list(frame.columns), kind="stable").index.to_numpy()
    assert np.array_equal(_sort_order(*keys), expected)


@pytest.mark.parametrize("seed", range(4))
def test_occurrence_counts_are_pandas_cumcount(seed):
    from xl_expense.core.audit.ids import cumulative_counts

    key = np.random.default_rng(seed).integers(0, 30 * (seed + 1), 1000)
    expected = pd.Series(key).groupby(key).cumcount().to_numpy()
    got = cumulative_counts(key)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert cumulative_counts(np.array([], dtype="int64")).shape == (0,)


# --------------------------------------------------------------------------- summary


def random_findings(n: int, seed: int, sort: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(values):
        return np.array(values, dtype=object)[rng.integers(0, len(values), n)]

    amount = rng.choice([0.1, 0.2, 0.3, 1 / 3, 123.45, -7.0, 1e16, 2.5e-3], n) * rng.random(n)
    amount[rng.random(n) < 0.05] = np.nan
    findings = pd.DataFrame({
        "finding_id": [f"F-{i}" for i in range(n)],
        "rule": pick(["duplicate", "split_transaction", "isolation_forest", "benford"]),
        "severity": pick(["error", "warning", "info"]),
        "sheet": pick(["S1", "S2", None]),
        "row": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(2, 40, n)), dtype="Int64"),
        "person": pick(["张三", "李四", None, np.nan, "王五"]),
        "department": pick(["销售一部", None]),
        "amount": amount,
    })
    if sort:  # as run_audit returns them: by severity and rule, so the groups come in blocks
        findings = findings.sort_values(["severity", "rule"], kind="stable").reset_index(drop=True)
    return findings


LEDGER = pd.DataFrame({"amount": [10.0, 2.5, np.nan], "date": pd.to_datetime(["2025-01-02", "2025-03-01", None])})


def assert_summaries_equal(findings: pd.DataFrame, ledger: pd.DataFrame = LEDGER) -> None:
    from xl_expense.core.audit.summary import summarize_findings_pandas

    fast, plain = summarize_findings(findings, ledger), summarize_findings_pandas(findings, ledger)
    assert list(fast) == list(plain)
    for name in plain:
        assert_frame_equal(fast[name], plain[name], check_exact=True, obj=name)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("sort", [False, True])
def test_summary_tables_are_the_pandas_ones(seed, sort):
    rng = np.random.default_rng(100 + seed)
    findings = random_findings(int(rng.integers(1, 300)), seed, sort)
    assert_summaries_equal(findings)


@pytest.mark.parametrize("change", ["one_department", "no_department", "no_rows", "one_person", "big_amounts",
                                    "unknown_severity", "numeric_people"])
def test_summary_edge_cases_are_the_pandas_ones(change):
    findings = random_findings(120, 7, sort=True)
    n = len(findings)
    if change == "one_department":  # one group: pandas adds it with reduceat, not a compensated sum
        findings["department"] = "销售一部"
    elif change == "no_department":
        findings["department"] = None
    elif change == "no_rows":  # group findings only
        findings["row"] = pd.array([None] * n, dtype="Int64")
    elif change == "one_person":
        findings["person"] = "张三"
    elif change == "big_amounts":  # where a compensated and a plain sum differ in the last bits
        findings["amount"] = np.random.default_rng(1).random(n) * 1e17
    elif change == "unknown_severity":
        findings.loc[::5, "severity"] = "weird"
    elif change == "numeric_people":  # employee numbers read as numbers: the pandas version counts them
        findings["person"] = pd.Series(np.arange(n) % 4, dtype=object)
    assert_summaries_equal(findings)


def test_summary_of_no_findings_is_the_pandas_one():
    empty = _typed(pd.DataFrame({c: [] for c in schema.FINDING_COLUMNS}))
    assert_summaries_equal(empty)


def test_summary_of_real_findings_is_the_pandas_one(demo_ledger):
    ledger, settings = demo_ledger
    assert_summaries_equal(run_audit(ledger, settings), ledger)


# --------------------------------------------------------------------------- the audit sheets


@pytest.fixture(scope="module")
def demo_ledger(demo_workbook: Path):
    from xl_expense.io.ledger_reader import load_ledger
    from xl_expense.io.settings_io import load_settings

    settings, _ = load_settings(demo_workbook, None, {})
    return load_ledger(demo_workbook).df, dataclasses.replace(settings, as_of=AS_OF)


def sheets_digest(demo_workbook: Path, lang: str) -> str:
    """Every cell, style, table, link and chart of the two audit sheets, as text."""
    from xl_expense.io.audit_sheets import build_audit_sheets
    from xl_expense.io.ledger_reader import load_ledger
    from xl_expense.io.settings_io import load_settings

    settings, _ = load_settings(demo_workbook, None, {"lang": lang})
    settings = dataclasses.replace(settings, as_of=AS_OF)
    ledger = load_ledger(demo_workbook)
    findings = run_audit(ledger.df, settings)
    ids = findings["finding_id"].tolist()
    notes = pd.DataFrame({"finding_id": ids[:3] + ["DUP-0000000000"],
                          "status": ["已核实", "Closed", None, "误报"],
                          "comment": ["ok", None, "看过", "gone"]}, dtype=object)
    record = {"tool_version": "xl-expense test", "input_file": "demo.xlsx", "input_sha256": "0" * 64,
              "time": "2026-05-01T12:00:00+00:00", "lang": lang, "ledger_sheet": ledger.sheet,
              "rows_read": len(ledger.df), "settings": settings.to_dict()}
    sheets = build_audit_sheets(
        findings, ledger=ledger, settings=settings, summary=summarize_findings(findings, ledger.df),
        benford=benford_analysis(ledger.df, settings), preview=threshold_preview(ledger.df, settings),
        notes=notes, run_record=record, rule_titles={rid: r.title(lang) for rid, r in RULES.items()})
    return sha(repr(sheets).encode())


#: sheets_digest of the demo ledger, taken before the fixed costs were cut (2026-05).
SHEET_DIGESTS = {"zh": "ee3e58105c2561bc", "en": "b78085eb34028d44"}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_audit_sheets_are_the_golden_ones(demo_workbook, lang):
    assert sheets_digest(demo_workbook, lang) == SHEET_DIGESTS[lang]
