"""IsolationForest outliers: deterministic, and explained in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_expense.core.audit import RULES
from xl_expense.core.audit.anomaly import _outlier_sample, anomaly_scores, flag_count
from xl_expense.core.audit.registry import example_ledger
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
