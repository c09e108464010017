"""IsolationForest outliers: deterministic, and explained in words."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.audit import RULES
from xl_expense.core.audit.anomaly import (
    _outlier_sample,
    anomaly_features,
    anomaly_scores,
    average_path_length,
    feature_matrix,
    fit_isolation_forest,
    flag_count,
    forest_scores,
)
from xl_expense.core.audit.registry import example_ledger, prepare_ledger
from xl_expense.core.settings import Settings

RULE = RULES["isolation_forest"]


def test_planted_outlier_is_flagged_with_the_multiple():
    ledger = example_ledger(_outlier_sample(planted=50.0))
    hits = RULE.func(ledger, Settings())
    planted = len(ledger) - 1
    assert planted in hits.index
    assert hits.loc[planted, "score"] == hits["score"].max()
    assert hits.loc[planted, "severity"] == "warning"
    message = hits.loc[planted, "message"]
    assert message.startswith("异常组合：金额 ¥10,000.00 是该报销人 通讯费 的中位数 ")
    assert message.endswith(" 的 51 倍") or message.endswith(" 的 50 倍") or message.endswith(" 的 49 倍")
    en = RULE.func(ledger, Settings(lang="en")).loc[planted, "message"]
    assert "× this person's median for 通讯费" in en


def test_flags_the_contamination_share():
    ledger = example_ledger(_outlier_sample(n=1000, planted=None))
    assert len(RULE.func(ledger, Settings(anomaly_contamination=0.01))) == 10
    assert len(RULE.func(ledger, Settings(anomaly_contamination=0.02))) == 20
    assert flag_count(1000, 0.005) == 5 and flag_count(49, 0.2) == 0


def test_deterministic_for_a_seed():
    ledger = example_ledger(_outlier_sample(n=600))
    first = RULE.func(ledger, Settings())
    again = RULE.func(ledger, Settings())
    pd.testing.assert_frame_equal(first, again)
    other = anomaly_scores(ledger, Settings(random_state=1))["score"]
    assert not np.allclose(other, anomaly_scores(ledger, Settings())["score"])


def test_refunds_are_not_scored():
    rows = _outlier_sample(n=100, planted=None) + [{"date": "2026-03-02", "person": "张三", "category": "通讯费",
                                                    "amount": -90000.0}]
    ledger = example_ledger(rows)
    scored = anomaly_scores(ledger, Settings())
    assert len(scored) == 100 and (len(ledger) - 1) not in scored.index
    assert scored["score"].between(0, 1).all()


def test_rare_vendor_explained():
    rows = _outlier_sample(n=300, planted=None)
    rows.append({"date": "2026-03-04", "person": "李四", "category": "交通费", "vendor": "某私人车行", "amount": 61.0})
    ledger = example_ledger(rows)
    hits = RULE.func(ledger, Settings(anomaly_contamination=0.2, lang="en"))
    assert hits.loc[len(ledger) - 1, "message"] == "Unusual claim: vendor 某私人车行 appears only 1 time(s) (amount ¥61.00)"


# --------------------------------------------------------------------------- the numpy forest

def test_average_path_length_matches_the_paper():
    # c(n) = 2·H(n−1) − 2(n−1)/n with H(i) = ln i + γ; c(1) = 0 and c(2) = 1 by definition.
    c = average_path_length(np.array([1, 2, 3, 256]))
    assert c[0] == 0.0 and c[1] == 1.0
    assert c[2] == pytest.approx(2 * (np.log(2) + 0.5772156649) - 4 / 3)
    assert c[3] == pytest.approx(10.2448, abs=1e-4)


def test_identical_rows_cannot_be_isolated_and_score_one_half():
    # Every node is constant, so each tree is one leaf holding ψ rows: h = c(ψ), s = 2^-1.
    forest = fit_isolation_forest(np.ones((300, 4)), random_state=0)
    assert (forest.threshold == np.inf).all()
    np.testing.assert_allclose(forest.scores(np.ones((5, 4))), 0.5)


def test_trees_isolate_their_own_sample_within_the_height_limit():
    X = np.random.default_rng(3).normal(size=(16, 3))  # ψ = 16 distinct rows: depth limit 4
    forest = fit_isolation_forest(X, random_state=0, n_trees=20)
    assert forest.sample_size == 16 and forest.depth == 4
    # A leaf above the limit holds one row (c(1) = 0), so its path length is a whole depth.
    lengths = forest.path_length
    assert lengths.min() >= 1 and lengths.max() < 4 + average_path_length(16)
    shallow = lengths < 4
    assert np.array_equal(lengths[shallow], np.round(lengths[shallow]))


def test_planted_outliers_are_ranked_first():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3000, 6))
    planted = rng.choice(3000, size=15, replace=False)
    X[planted] += rng.choice([-1, 1], size=(15, 6)) * 6
    scores = forest_scores(X, 0, 0.005)
    assert set(np.argsort(-scores)[:15]) == set(planted)
    assert scores[planted].min() > 0.65 > np.median(scores)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1])


def _compare_with_scikit_learn(ledger: pd.DataFrame) -> tuple[float, float]:
    """Spearman correlation with scikit-learn's IsolationForest, and the overlap of the top 1 %."""
    from sklearn.ensemble import IsolationForest

    X = feature_matrix(anomaly_features(ledger))
    ours = forest_scores(X, 0, 0.01)
    theirs = -IsolationForest(n_estimators=100, max_samples=min(256, len(X)), random_state=0,
                              n_jobs=1).fit(X).score_samples(X)
    k = flag_count(len(X), 0.01)
    top = len(set(np.argsort(-ours, kind="stable")[:k]) & set(np.argsort(-theirs, kind="stable")[:k])) / k
    assert abs(ours.mean() - theirs.mean()) < 0.02  # same normalisation c(ψ)
    return _spearman(ours, theirs), top


def test_scores_agree_with_scikit_learn_on_the_demo_ledger():
    from xl_expense.demo import demo_ledger

    demo = demo_ledger().rename(columns={"日期": "date", "报销人": "person", "费用类别": "category",
                                         "供应商": "vendor", "金额（元）": "amount"})
    ledger = example_ledger(demo[["date", "person", "category", "vendor", "amount"]].to_dict("records"))
    rho, top = _compare_with_scikit_learn(ledger)
    # Two scikit-learn forests with different seeds agree about as well (ρ ≈ 0.96, top ≈ 0.9).
    assert rho > 0.9 and top > 0.7


def test_scores_agree_with_scikit_learn_on_a_real_ledger(shared_data):
    from xl_expense.io.profiles import read_with_profile

    ledger = read_with_profile(shared_data / "birmingham_pcard_2014_2018.csv.gz", max_rows=20_000).df
    rho, top = _compare_with_scikit_learn(prepare_ledger(ledger))
    assert rho > 0.9 and top > 0.6


def test_the_audit_does_not_import_scikit_learn():
    code = ("import sys; from xl_expense.core.audit import run_audit; "
            "from xl_expense.core.audit.anomaly import _outlier_sample; "
            "from xl_expense.core.audit.registry import example_ledger; "
            "run_audit(example_ledger(_outlier_sample(n=300))); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scoring_in_threads_gives_the_same_sums_bit_for_bit(monkeypatch) -> None:
    """Blocks of rows score in parallel threads on big ledgers; every row's sum must not change."""
    from xl_expense.core.audit import anomaly

    X = np.random.default_rng(3).normal(size=(3 * anomaly._SCORE_BLOCK + 17, 5))
    forest = anomaly.fit_isolation_forest(X, random_state=0)
    monkeypatch.setattr(anomaly, "PARALLEL_MIN_ROWS", 10**9)
    single = forest.path_sums(X)
    monkeypatch.setattr(anomaly, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(anomaly, "_scoring_threads", lambda n: 3)
    threaded = forest.path_sums(X)
    assert np.array_equal(single, threaded)
    assert np.all(threaded > 0)
