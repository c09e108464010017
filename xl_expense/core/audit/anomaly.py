"""Multivariate outliers with an IsolationForest, explained in words.

Each positive amount becomes a row of features that a reviewer would also look at: the amount
(and its log), how it compares with the same person's and the same category's usual amounts,
with this person's usual amount *in this category*, how common the vendor is, the weekday, the
day of the month and how round the amount is. An IsolationForest isolates rows that are easy
to separate from the rest; the top ``anomaly_contamination`` share of all scored rows is
flagged.

The forest is fitted on a seeded subsample (it only ever draws 256 rows per tree, so more
training rows buy nothing) and scores every row; ``random_state`` and ``n_jobs=1`` make the
same ledger give the same findings on every run and machine.

scikit-learn is imported only when a forest is fitted (importing it costs about a second,
mostly scipy.stats pulled in by ``sklearn.utils``), and the fitting and scoring are one
function of the feature matrix, :func:`forest_scores`, so a caller may run it elsewhere (the
audit workflow runs it in a worker process while it reads the workbook) and hand the result
back through :func:`forest_scorer`.

The score is the forest's anomaly score s = 2^(-E[h(x)] / c(n)) in (0, 1] (the negated
``score_samples``; values near 1 are anomalies, below 0.5 normal). The message names the
feature with the largest standardised deviation, e.g. "amount 38× this person's median for
通讯费".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xl_expense.core.audit.registry import (
    flags,
    join_text,
    key_codes,
    label,
    money,
    no_hits,
    passes,
    row_hits,
    rule,
)
from xl_expense.core.settings import Settings

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

#: Fewer scored rows than this and "the top 1 %" is not a meaningful population.
MIN_ROWS = 50
#: Rows used to fit the forest (each tree still samples only 256 of them).
FIT_ROWS = 100_000
#: Above this many rows a quarter-size forest screens every row first and the full forest
#: scores only the strangest candidates: scoring is linear in trees × rows, and a million rows
#: through 100 trees takes ~7 s on one core.
SCREEN_ABOVE = 200_000
SCREEN_TREES = 25
#: Candidates kept by the screen: this many times the rows to flag, and at least SCREEN_MIN.
SCREEN_FACTOR = 5
SCREEN_MIN = 20_000
#: Groups smaller than this have no usable "usual amount".
MIN_GROUP = 3

FEATURES = ("amount", "log_amount", "person_z", "category_z", "person_category_z", "vendor_frequency",
            "weekday", "day_of_month", "roundness")


def make_anomaly_model(settings: Settings, max_samples: int = 256, n_estimators: int = 100) -> Pipeline:
    """Unfitted pipeline: StandardScaler → IsolationForest (seeded, single-threaded)."""
    return _make_model(settings.random_state, max_samples, n_estimators)


def _make_model(random_state: int, max_samples: int, n_estimators: int) -> Pipeline:
    # Imported here, not at the top: see the module docstring.
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        ("scale", StandardScaler()),
        ("forest", IsolationForest(n_estimators=n_estimators, max_samples=max_samples, contamination="auto",
                                   random_state=random_state, n_jobs=1)),
    ])


#: Computes :func:`forest_scores` (same arguments, same result); None = in this process.
ForestScorer = Callable[[np.ndarray, int, float], np.ndarray]
_SCORER: ContextVar[ForestScorer | None] = ContextVar("xl_expense_forest_scorer", default=None)


@contextmanager
def forest_scorer(scorer: ForestScorer) -> Iterator[None]:
    """Within the block, :func:`anomaly_scores` gets forest scores from ``scorer``.

    ``scorer(X, random_state, contamination)`` must return exactly what
    :func:`forest_scores` returns for those arguments (e.g. by calling it in another
    process); it may fall back to calling it here.
    """
    token = _SCORER.set(scorer)
    try:
        yield
    finally:
        _SCORER.reset(token)


#: Ledger columns the features are computed from.
FEATURE_INPUTS = ("amount", "date", "person", "category", "vendor")
_KNOWN: ContextVar[tuple[pd.DataFrame, pd.DataFrame] | None] = ContextVar("xl_expense_known_features", default=None)


@contextmanager
def known_features(ledger: pd.DataFrame, features: pd.DataFrame) -> Iterator[None]:
    """Within the block, :func:`anomaly_scores` reuses ``features`` (computed by the caller
    with :func:`anomaly_features`) for a ledger with the same feature inputs as ``ledger``.

    The audit workflow computes the features early, to hand the forest to a worker; this
    saves computing them a second time in the rule. Any other ledger is computed afresh.
    """
    token = _KNOWN.set((ledger.loc[:, list(FEATURE_INPUTS)], features))
    try:
        yield
    finally:
        _KNOWN.reset(token)


def _features(ledger: pd.DataFrame) -> pd.DataFrame:
    known = _KNOWN.get()
    if known is not None:
        inputs, features = known
        # Series.equals compares identical objects by identity first: a few ms per column.
        if inputs.index.equals(ledger.index) and all(inputs[c].equals(ledger[c]) for c in FEATURE_INPUTS):
            return features
    return anomaly_features(ledger)


def _group_stats(values: pd.Series, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row mean, std and size of ``values`` within its ``key`` group (key -1 = no group)."""
    grouped = values.groupby(key)
    mean = grouped.transform("mean").to_numpy(dtype="float64", copy=True)
    std = grouped.transform("std").to_numpy(dtype="float64", copy=True)
    size = grouped.transform("size").to_numpy()
    none = key < 0
    mean[none] = np.nan
    std[none] = np.nan
    return mean, std, np.where(none, 0, size)


def anomaly_features(ledger: pd.DataFrame) -> pd.DataFrame:
    """Features of every row with a positive amount (refunds and blanks are not scored).

    Columns starting with ``_`` (group keys, vendor counts) serve the explanations and are
    not fed to the forest.
    """
    scored = ledger[(ledger["amount"] > 0).to_numpy()]
    amount = scored["amount"].astype("float64")
    log_amount = np.log(amount)
    spread = float(log_amount.std()) if len(log_amount) > 1 else 1.0
    spread = spread if spread > 0 else 1.0

    def z_within(key: np.ndarray) -> np.ndarray:
        mean, std, size = _group_stats(log_amount, key)
        # Small or constant groups borrow the ledger-wide spread instead of dividing by ~0.
        std = np.where((size >= MIN_GROUP) & (std > 1e-9), std, spread)
        return np.where(size >= MIN_GROUP, (log_amount.to_numpy() - mean) / std, 0.0)

    person_z = z_within(key_codes(scored, ["person"]))
    category_z = z_within(key_codes(scored, ["category"]))
    pc_key = key_codes(scored, ["person", "category"])
    pc_z = z_within(pc_key)

    vendor_codes, _ = pd.factorize(scored["vendor"])
    vendor_counts = np.bincount(vendor_codes[vendor_codes >= 0], minlength=1)
    vendor_count = np.where(vendor_codes >= 0, vendor_counts[np.maximum(vendor_codes, 0)], 0)
    dates = scored["date"]
    cents = np.round(amount.to_numpy() * 100).astype("int64")
    roundness = np.zeros(len(scored))
    for power in range(2, 8):  # whole yuan, tens, hundreds … ten-thousands: 0–6 steps
        roundness += (cents % (10 ** power) == 0)
    return pd.DataFrame({
        "amount": amount.to_numpy(),
        "log_amount": log_amount.to_numpy(),
        "person_z": person_z,
        "category_z": category_z,
        "person_category_z": pc_z,
        "vendor_frequency": np.log1p(vendor_count),
        "weekday": dates.dt.day_of_week.fillna(-1).to_numpy(dtype="float64"),
        "day_of_month": dates.dt.day.fillna(0).to_numpy(dtype="float64"),
        "roundness": roundness,
        "_person_key": key_codes(scored, ["person"]),
        "_category_key": key_codes(scored, ["category"]),
        "_pc_key": pc_key,
        "_all_key": np.zeros(len(scored), dtype="int64"),
        "_vendor_count": vendor_count,
    }, index=scored.index)


def feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """The forest's input: the :data:`FEATURES` columns as float64, NaN/inf as 0."""
    X = features[list(FEATURES)].to_numpy(dtype="float64")
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)


def anomaly_scores(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Features plus ``score`` (anomaly score in (0, 1]) for every row with a positive amount.

    On large ledgers (over ``SCREEN_ABOVE`` rows) rows the screen ranks far from the top
    keep a NaN score: they cannot be among the flagged share.
    """
    features = _features(ledger)
    if len(features) < MIN_ROWS:
        return features.assign(score=pd.Series(dtype="float64"))
    scorer = _SCORER.get() or forest_scores
    score = scorer(feature_matrix(features), settings.random_state, settings.anomaly_contamination)
    return features.assign(score=score)


def forest_scores(X: np.ndarray, random_state: int, contamination: float) -> np.ndarray:
    """Anomaly score of each row of the feature matrix ``X`` (see :func:`feature_matrix`).

    The forest is fitted on a seeded subsample of at most ``FIT_ROWS`` rows. Above
    ``SCREEN_ABOVE`` rows a small forest screens every row and the full forest scores only
    the candidates; the others get NaN (they cannot be among the top ``contamination``).
    """
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(len(X), size=min(len(X), FIT_ROWS), replace=False))
    # The forest's own default, spelt out: fewer rows than 256 would make it warn.
    max_samples = min(256, len(fit_rows))
    model = _make_model(random_state, max_samples, 100).fit(X[fit_rows])
    if len(X) <= SCREEN_ABOVE:
        return -model.score_samples(X)
    screen = _make_model(random_state, max_samples, SCREEN_TREES).fit(X[fit_rows])
    rough = -screen.score_samples(X)
    keep = min(len(X), max(SCREEN_MIN, SCREEN_FACTOR * flag_count(len(X), contamination)))
    candidates = np.sort(np.lexsort((np.arange(len(X)), -rough))[:keep])
    score = np.full(len(X), np.nan)
    score[candidates] = -model.score_samples(X[candidates])
    return score


def flag_count(n_scored: int, contamination: float) -> int:
    """How many of ``n_scored`` rows the top ``contamination`` share is (0 below MIN_ROWS)."""
    return 0 if n_scored < MIN_ROWS else max(1, math.ceil(contamination * n_scored))


def _outlier_sample(n: int = 240, seed: int = 7, planted: float | None = 50.0) -> list[dict]:
    """One salesperson's phone bills around ¥200, plus (optionally) one at ``planted``× that."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        person = ("张三", "李四", "王五")[i % 3]
        category = ("通讯费", "交通费")[i % 2]
        rows.append({"date": f"2026-03-{1 + i % 28:02d}", "person": person, "category": category,
                     "vendor": ("中国移动", "滴滴出行", "中国联通")[i % 3],
                     "amount": float(np.round(rng.normal(200 if category == "通讯费" else 60, 15), 2))})
    if planted:
        rows.append({"date": "2026-03-10", "person": "张三", "category": "通讯费", "vendor": "中国移动",
                     "amount": float(np.round(200 * planted, 2))})
    return rows


@rule("isolation_forest", "info", code="ISO", title_zh="异常组合（孤立森林）", title_en="Unusual claim (isolation forest)",
      doc_zh="孤立森林模型综合金额、报销人及类别的常见金额、商户频次、星期、日期、整数程度等特征，"
             "标出最不寻常的一部分（anomaly_contamination，默认 1%），并说明最突出的原因。",
      examples=[
          flags(lambda: _outlier_sample(), note="a phone bill 50× the person's usual one"),
          passes(lambda: _outlier_sample(40), note="too few rows to rank"),
      ])
def isolation_forest(ledger: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The claim stands out from the rest in several respects at once (IsolationForest, top `anomaly_contamination` share).

    The message names what stands out most, e.g. the amount against the same person's usual
    amount in the same category. A prompt to look, not a finding of fault.
    """
    scored = anomaly_scores(ledger, settings)
    k = flag_count(len(scored), settings.anomaly_contamination)
    if k == 0:
        return no_hits()
    score = np.nan_to_num(scored["score"].to_numpy(), nan=-np.inf)
    # Highest score first; ties broken by ledger position so the cut is deterministic.
    order = np.lexsort((np.arange(len(score)), -score))[:k]
    top = scored.iloc[np.sort(order)]
    hits = ledger.loc[top.index]
    severity = np.where(top["score"].to_numpy() >= 0.65, "warning", "info")
    return row_hits(hits.index, top["score"].to_numpy(), explain(hits, top, scored, settings),
                    severity=list(severity))


def _times(ratio: pd.Series) -> pd.Series:
    """38.2 → '38'; 2.46 → '2.5' (a multiple in a sentence)."""
    return ratio.map(lambda r: f"{r:,.0f}" if r >= 10 else f"{r:.1f}").astype(object)


#: Preference among equally strong reasons: the most specific comparison reads best.
_REASON_WEIGHT = {"person_category": 1.2, "person": 1.0, "category": 1.0, "amount": 0.9}
#: Robust spread floor (in log units, ≈10 %): a group of identical ¥199 phone plans has MAD 0.
_MIN_SPREAD = 0.1


def _robust_z(scored: pd.DataFrame, top: pd.DataFrame, key_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Median amount of each flagged row's group and the row's robust z-score within it.

    Median and MAD (×1.4826) rather than mean and std, so the outlier does not hide itself
    by inflating its group's spread. Only the groups of flagged rows are computed.
    """
    keys = top[key_col].to_numpy()
    wanted = scored[key_col].isin(np.unique(keys[keys >= 0])).to_numpy()
    sub = scored.loc[wanted, [key_col, "log_amount"]]
    grouped = sub.groupby(key_col)["log_amount"]
    median = grouped.median()
    size = grouped.size()
    deviation = (sub["log_amount"] - sub[key_col].map(median)).abs()
    mad = deviation.groupby(sub[key_col]).median() * 1.4826
    m = top[key_col].map(median).to_numpy(dtype="float64")
    spread = np.maximum(top[key_col].map(mad).to_numpy(dtype="float64"), _MIN_SPREAD)
    usable = top[key_col].map(size).fillna(0).to_numpy() >= MIN_GROUP
    z = np.where(usable, (top["log_amount"].to_numpy() - m) / spread, 0.0)
    return np.where(usable, np.exp(m), np.nan), np.nan_to_num(z)


def explain(hits: pd.DataFrame, top: pd.DataFrame, scored: pd.DataFrame, settings: Settings) -> pd.Series:
    """Say why each flagged row stands out: the comparison in which it deviates most.

    Amount comparisons (with this person in this category, this person, this category, all
    claims) are ranked by robust z-score; a vendor seen once or twice and a rare round amount
    are named when no amount comparison is stronger.
    """
    medians, strengths = {}, {}
    for reason, key_col in (("person_category", "_pc_key"), ("person", "_person_key"),
                            ("category", "_category_key"), ("amount", "_all_key")):
        medians[reason], z = _robust_z(scored, top, key_col)
        strengths[reason] = np.abs(z) * _REASON_WEIGHT[reason]
    vendor_count = top["_vendor_count"].to_numpy()
    strengths["vendor"] = np.where((vendor_count > 0) & (vendor_count <= 2), 3.5 - vendor_count, 0.0)
    round_share = float((scored["roundness"] >= 4).mean())
    strengths["round"] = np.where((top["roundness"].to_numpy() >= 4) & (round_share < 0.05), 2.0, 0.0)
    names = list(strengths)
    strength = np.vstack([strengths[n] for n in names])
    best = np.asarray(names, dtype=object)[strength.argmax(axis=0)]
    # Nothing stands out on its own (the forest saw a combination): fall back to the amount.
    reason = pd.Series(np.where(strength.max(axis=0) > 0, best, "amount"), index=hits.index)

    lang = settings.lang
    amount_t = money(hits["amount"], settings.currency)
    category = label(hits["category"])
    wording = {
        "person_category": (("该报销人 ", category, " 的中位数 "), ("this person's median for ", category, " ")),
        "person": (("该报销人的中位数 ",), ("this person's median ",)),
        "category": ((category, " 类别的中位数 "), ("the median for ", category, " ")),
        "amount": (("全部报销的中位数 ",), ("the median of all claims ",)),
    }
    texts = {}
    for name, (zh_what, en_what) in wording.items():
        median = pd.Series(medians[name], index=hits.index)
        ratio = hits["amount"] / median
        times = _times(ratio.where(ratio >= 1, 1 / ratio))
        texts[name] = _ratio_text(lang, amount_t, ratio, times, money(median, settings.currency), zh_what, en_what)
    vendor_n = pd.Series(vendor_count, index=hits.index).astype("int64").astype(str).astype(object)
    if lang == "zh":
        texts["vendor"] = join_text("商户 ", label(hits["vendor"]), " 在账中只出现 ", vendor_n, " 次（金额 ", amount_t, "）")
        texts["round"] = join_text("金额 ", amount_t, " 是少见的整数金额")
    else:
        texts["vendor"] = join_text("vendor ", label(hits["vendor"]), " appears only ", vendor_n, " time(s) (amount ",
                                    amount_t, ")")
        texts["round"] = join_text("amount ", amount_t, " is unusually round")
    messages = pd.Series("", index=hits.index, dtype=object)
    for name, text in texts.items():
        messages = messages.where(reason != name, text)
    prefix = "异常组合：" if lang == "zh" else "Unusual claim: "
    return prefix + messages


def _ratio_text(lang, amount_t, ratio, times, median_t, zh_what, en_what) -> pd.Series:
    """'金额 ¥X 是<what>¥M 的 N 倍' / 'amount ¥X is N× <what>(¥M)', or 1/N when smaller."""
    above = ratio >= 1
    if lang == "zh":
        high = join_text("金额 ", amount_t, " 是", *zh_what, median_t, " 的 ", times, " 倍")
        low = join_text("金额 ", amount_t, " 仅为", *zh_what, median_t, " 的 1/", times)
    else:
        high = join_text("amount ", amount_t, " is ", times, "× ", *en_what, "(", median_t, ")")
        low = join_text("amount ", amount_t, " is 1/", times, " of ", *en_what, "(", median_t, ")")
    return high.where(above, low)
