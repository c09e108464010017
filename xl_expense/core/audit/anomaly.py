"""Multivariate outliers with an IsolationForest, explained in words.

Each positive amount becomes a row of features that a reviewer would also look at: the amount
(and its log), how it compares with the same person's and the same category's usual amounts,
with this person's usual amount *in this category*, how common the vendor is, the weekday, the
day of the month and how round the amount is. An IsolationForest isolates rows that are easy
to separate from the rest; the top ``anomaly_contamination`` share of all scored rows is
flagged.

The forest is Liu, Ting & Zhou's (2008) IsolationForest, written here in numpy (the same
algorithm as scikit-learn's: 100 trees of 256 rows drawn without replacement, a random
feature and a uniform random threshold per node, height limit ⌈log2 256⌉, path length with
the c(n) correction). All trees grow together level by level and every row goes through
every tree with a few array operations per level, so a 1,000-row ledger is scored in
milliseconds and the audit never imports scikit-learn (about 1.7 s of imports). It flags a
different but comparable set of rows than scikit-learn's forest, about as different as
scikit-learn with another seed (tests compare the two). ``random_state`` makes the same
ledger give the same findings on every run and machine.

Fitting and scoring are one function of the feature matrix, :func:`forest_scores`.

The score is the forest's anomaly score s = 2^(-E[h(x)] / c(ψ)) in (0, 1] (values near 1
are anomalies, below 0.5 normal). The message names the
feature with the largest standardised deviation, e.g. "amount 38× this person's median for
通讯费".
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xl_expense.core.audit.helping import SharedBlocks, offer_help
from xl_expense.core.audit.registry import (
    flags,
    key_codes,
    label,
    money,
    no_hits,
    passes,
    row_hits,
    rule,
)
from xl_expense.core.settings import Settings

#: Fewer scored rows than this and "the top 1 %" is not a meaningful population.
MIN_ROWS = 50
#: Above this many rows the forest's first quarter of trees screens every row and only the
#: strangest candidates go through the rest: scoring is linear in trees × rows.
SCREEN_ABOVE = 200_000
SCREEN_TREES = 25
#: Candidates kept by the screen: this many times the rows to flag, and at least SCREEN_MIN.
SCREEN_FACTOR = 5
SCREEN_MIN = 20_000
#: Groups smaller than this have no usable "usual amount".
MIN_GROUP = 3

FEATURES = ("amount", "log_amount", "person_z", "category_z", "person_category_z", "vendor_frequency",
            "weekday", "day_of_month", "roundness")


#: Ledger columns the features are computed from.
FEATURE_INPUTS = ("amount", "date", "person", "category", "vendor")


def _group_stats(values: pd.Series, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row mean, std and size of ``values`` within its ``key`` group (key -1 = no group).

    The grouped reductions broadcast back by group (what ``transform`` does, with one
    grouping for all three).
    """
    grouped = values.groupby(key)
    mean, std, size = grouped.mean(), grouped.std(), grouped.size()
    at = np.searchsorted(mean.index.to_numpy(), key)  # groups come sorted by key
    mean = mean.to_numpy(dtype="float64")[at]
    std = std.to_numpy(dtype="float64")[at]
    size = size.to_numpy()[at]
    none = key < 0
    mean[none] = np.nan
    std[none] = np.nan
    return mean, std, np.where(none, 0, size)


def anomaly_features(ledger: pd.DataFrame) -> pd.DataFrame:
    """Features of every row with a positive amount (refunds and blanks are not scored).

    Columns starting with ``_`` (group keys, vendor counts) serve the explanations and are
    not fed to the forest.
    """
    positive = (ledger["amount"] > 0).to_numpy()
    scored = ledger[positive]
    amount = scored["amount"].astype("float64")
    log_amount = np.log(amount)
    spread = float(log_amount.std()) if len(log_amount) > 1 else 1.0
    spread = spread if spread > 0 else 1.0

    def z_within(key: np.ndarray) -> np.ndarray:
        mean, std, size = _group_stats(log_amount, key)
        # Small or constant groups borrow the ledger-wide spread instead of dividing by ~0.
        std = np.where((size >= MIN_GROUP) & (std > 1e-9), std, spread)
        return np.where(size >= MIN_GROUP, (log_amount.to_numpy() - mean) / std, 0.0)

    # Keys of the scored rows, numbered among them (as key_codes(scored, …) would).
    person_key = key_codes(ledger, ["person"], rows=positive)
    category_key = key_codes(ledger, ["category"], rows=positive)
    pc_key = key_codes(ledger, ["person", "category"], rows=positive)
    person_z = z_within(person_key)
    category_z = z_within(category_key)
    pc_z = z_within(pc_key)

    vendor_codes = key_codes(ledger, ["vendor"], rows=positive)
    vendor_counts = np.bincount(vendor_codes[vendor_codes >= 0], minlength=1)
    vendor_count = np.where(vendor_codes >= 0, vendor_counts[np.maximum(vendor_codes, 0)], 0)
    dates = scored["date"]
    cents = np.round(amount.to_numpy() * 100).astype("int64")
    roundness = np.zeros(len(scored))
    for power in range(2, 8):  # whole yuan, tens, hundreds … ten-thousands: 0–6 steps
        roundness += (cents % (10 ** power) == 0)
    day = dates.to_numpy()
    if day.dtype.kind == "M":  # naive datetimes: weekday and day from the day number
        days = day.astype("datetime64[D]")
        missing = np.isnat(day)
        weekday = np.where(missing, -1.0, ((days.astype("int64") + 3) % 7).astype("float64"))
        day_of_month = np.where(missing, 0.0, (days - days.astype("datetime64[M]")).astype("int64") + 1.0)
    else:
        weekday = dates.dt.day_of_week.fillna(-1).to_numpy(dtype="float64")
        day_of_month = dates.dt.day.fillna(0).to_numpy(dtype="float64")
    return pd.DataFrame({
        "amount": amount.to_numpy(),
        "log_amount": log_amount.to_numpy(),
        "person_z": person_z,
        "category_z": category_z,
        "person_category_z": pc_z,
        "vendor_frequency": np.log1p(vendor_count),
        "weekday": weekday,
        "day_of_month": day_of_month,
        "roundness": roundness,
        "_person_key": person_key,
        "_category_key": category_key,
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
    features = anomaly_features(ledger)
    if len(features) < MIN_ROWS:
        return features.assign(score=pd.Series(dtype="float64"))
    score = forest_scores(feature_matrix(features), settings.random_state, settings.anomaly_contamination)
    return features.assign(score=score)


def forest_scores(X: np.ndarray, random_state: int, contamination: float) -> np.ndarray:
    """Anomaly score of each row of the feature matrix ``X`` (see :func:`feature_matrix`).

    Each tree draws its 256 rows from all of ``X``. Above ``SCREEN_ABOVE`` rows the first
    ``SCREEN_TREES`` trees screen every row and the remaining trees score only the
    candidates (their score is then the same mean over all trees); the others get NaN (they
    cannot be among the top ``contamination``).
    """
    forest = fit_isolation_forest(X, random_state)
    if len(X) <= SCREEN_ABOVE:
        return forest.scores(X)
    screen = slice(0, SCREEN_TREES)
    first = forest.path_sums(X, screen)
    keep = min(len(X), max(SCREEN_MIN, SCREEN_FACTOR * flag_count(len(X), contamination)))
    # Shortest mean path first (most isolated); ties by position, so the cut is deterministic.
    candidates = np.sort(np.lexsort((np.arange(len(X)), first))[:keep])
    mean = (first[candidates] + forest.path_sums(X[candidates], slice(SCREEN_TREES, None))) / N_TREES
    score = np.full(len(X), np.nan)
    score[candidates] = np.power(2.0, -mean / float(average_path_length(forest.sample_size)))
    return score


def flag_count(n_scored: int, contamination: float) -> int:
    """How many of ``n_scored`` rows the top ``contamination`` share is (0 below MIN_ROWS)."""
    return 0 if n_scored < MIN_ROWS else max(1, math.ceil(contamination * n_scored))


# ---------------------------------------------------------------------------------------------
# the isolation forest (Liu, Ting & Zhou 2008), in numpy
# ---------------------------------------------------------------------------------------------

#: Trees in the forest and rows drawn (without replacement) for each: the paper's defaults,
#: which scikit-learn uses too. Isolation needs few rows per tree; more only blur the outliers.
N_TREES = 100
SAMPLE_SIZE = 256
#: Rows scored per block: rows × trees index arrays stay within the CPU cache.
_SCORE_BLOCK = 2048
#: Rows below which scoring stays on one thread (starting threads costs more than it saves).
PARALLEL_MIN_ROWS = 20_000


def _scoring_threads(n_rows: int) -> int:
    """Threads for scoring ``n_rows``: one per CPU this process may use, at most 4."""
    if n_rows < PARALLEL_MIN_ROWS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))
_EULER = 0.5772156649015329


def average_path_length(n: np.ndarray | int) -> np.ndarray:
    """c(n): the mean path length of an unsuccessful search in a binary search tree of n
    points, 2·H(n−1) − 2(n−1)/n with H(i) ≈ ln i + γ; c(1) = 0 and c(2) = 1.

    It normalises the score and stands in for the subtree a leaf holding n > 1 rows would
    have grown had the depth limit not stopped it.
    """
    n = np.asarray(n, dtype="float64")
    out = np.where(n == 2, 1.0, 0.0)
    big = n > 2
    safe = np.where(big, n, 3.0)
    return np.where(big, 2.0 * (np.log(safe - 1.0) + _EULER) - 2.0 * (safe - 1.0) / safe, out)


@dataclass(frozen=True)
class IsolationForest:
    """Fitted trees stored as complete binary heaps of depth ``depth``.

    Internal node ``h`` of tree ``t`` sends a row right when ``x[feature[t, h]] >
    threshold[t, h]``. A node that became a leaf above the bottom keeps threshold +inf, so
    every row passes straight down its left side, and the bottom slots below it all hold its
    path length (depth of the leaf + c(rows in it)). Scoring is then the same ``depth`` steps
    for every row in every tree, with no branches: numpy does them for all rows at once.
    """

    feature: np.ndarray      # (trees, 2**depth - 1) int
    threshold: np.ndarray    # (trees, 2**depth - 1) float64
    path_length: np.ndarray  # (trees, 2**depth) float64
    sample_size: int

    @property
    def depth(self) -> int:
        return int(self.path_length.shape[1]).bit_length() - 1

    def path_sums(self, X: np.ndarray, trees: slice = slice(None)) -> np.ndarray:
        """Sum over ``trees`` of each row's path length h(x) (float64, one per row of X).

        Each tree is a 1-based heap in its own block of ``2**depth`` slots (slot 0 unused), so
        a row's slot number goes from ``g`` to ``2g - block + right`` and ends, after ``depth``
        steps, ``2**depth`` past its leaf. The steps write into preallocated buffers.
        """
        feature = self.feature[trees]
        n_trees, n_internal = feature.shape
        n = X.shape[0]
        width = n_internal + 1
        # Flat gathers: column-major X so that "feature f of row r" is one index, f·n + r.
        values = np.ascontiguousarray(X.T).ravel()
        # int32 slots and gathers where every index fits: half the memory traffic per step.
        index = np.int32 if max(values.size, n_trees * width * 2) < 2 ** 31 else np.int64
        feature_at = np.zeros((n_trees, width), dtype=index)
        feature_at[:, 1:] = feature.astype("int64") * n
        threshold_at = np.zeros((n_trees, width))
        threshold_at[:, 1:] = self.threshold[trees]
        feature_at, threshold_at = feature_at.ravel(), threshold_at.ravel()
        leaves = self.path_length[trees].ravel()
        block = (np.arange(n_trees, dtype=index) * width)[:, None]
        total = np.zeros(n)

        def score_rows(start: int) -> None:
            stop = min(n, start + _SCORE_BLOCK)
            rows = np.arange(start, stop, dtype=index)[None, :]
            slot = np.repeat(block + 1, stop - start, axis=1)  # every row at the root of every tree
            at = np.empty_like(slot)
            value = np.empty(slot.shape)
            cut = np.empty(slot.shape)
            right = np.empty(slot.shape, dtype=bool)
            # Every index here is in range by construction (slots of the trees' heaps, rows of
            # X), so the gathers skip numpy's bounds check: mode="wrap" never has to wrap, and
            # is about a quarter faster than the default "raise" on int32 indices.
            for _ in range(self.depth):
                np.take(feature_at, slot, out=at, mode="wrap")
                at += rows
                np.take(values, at, out=value, mode="wrap")
                np.take(threshold_at, slot, out=cut, mode="wrap")
                np.greater(value, cut, out=right)
                slot *= 2
                slot -= block
                slot += right
            total[start:stop] = np.take(leaves, slot - width, mode="wrap").sum(axis=0)

        starts = range(0, n, _SCORE_BLOCK)
        threads = _scoring_threads(n)
        # numpy releases the GIL in take/greater/add on these arrays, so blocks of rows
        # score in parallel; each row's sum over the trees is the same, bit for bit,
        # whichever thread scores its block.
        blocks = SharedBlocks(starts, score_rows)
        if threads == 1 or offer_help(blocks.take_part):
            # Alone, or running aside: then the audit's thread takes blocks too once its own
            # rules are done (see xl_expense.core.audit.helping); until then this one scores.
            blocks.take_part()
        else:
            with ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="xle-forest") as pool:
                helpers = [pool.submit(blocks.take_part) for _ in range(threads - 1)]
                blocks.take_part()
                for helper in helpers:
                    helper.result()
        blocks.wait()
        return total

    def scores(self, X: np.ndarray, trees: slice = slice(None)) -> np.ndarray:
        """Anomaly score s(x) = 2^(−E[h(x)] / c(ψ)) over ``trees``: near 1 isolated, ≤ 0.5 ordinary."""
        n_trees = len(range(*trees.indices(len(self.feature))))
        mean = self.path_sums(X, trees) / n_trees
        return np.power(2.0, -mean / float(average_path_length(self.sample_size)))


def fit_isolation_forest(X: np.ndarray, random_state: int, n_trees: int = N_TREES,
                         sample_size: int = SAMPLE_SIZE) -> IsolationForest:
    """Grow ``n_trees`` isolation trees, each on ``min(sample_size, len(X))`` rows drawn
    without replacement, to depth ⌈log2 ψ⌉ (the paper's height limit: only short paths matter).

    Each node splits on a feature drawn at random among those not constant in the node, at a
    threshold drawn uniformly between the node's minimum and maximum; a node becomes a leaf
    with one row, with all features constant, or at the depth limit. All trees grow together
    level by level, so the cost is a few numpy calls per level instead of a Python call per
    node.

    The sample rows stay ordered by node (tree, then node within the level), each node's rows
    side by side: splitting a node puts its left rows, then its right rows, each in their
    order, so the next level is ordered too without sorting. Which features vary in a node
    comes from neighbouring rows that differ (:func:`_varying_features`), and only the chosen
    feature's minimum and maximum are taken. The random draws are the same and in the same
    order as when every node's minimum and maximum of every feature were computed: the trees
    are identical (tested against that plainer version).
    """
    X = np.asarray(X, dtype="float64")
    rng = np.random.default_rng(random_state)
    n, n_features = X.shape
    psi = min(sample_size, n)
    depth = max(1, math.ceil(math.log2(max(psi, 2))))
    rows = np.stack([rng.choice(n, size=psi, replace=False) for _ in range(n_trees)])
    values = np.take(X, rows.ravel(), axis=0)  # (trees·ψ, features): tree 0's rows, tree 1's, …
    has_nan = bool(np.isnan(values).any())
    n_internal = (1 << depth) - 1
    feature = np.zeros(n_trees * n_internal, dtype="int64")
    threshold = np.full(n_trees * n_internal, np.inf)
    path_length = np.zeros(n_trees << depth)
    # One entry per node of the level: its tree, its number within the level, its row count.
    node_tree = np.arange(n_trees, dtype="int64")
    node = np.zeros(n_trees, dtype="int64")
    count = np.full(n_trees, psi, dtype="int64")
    for level in range(depth + 1):
        ends = np.cumsum(count)
        starts = ends - count
        if level == depth:
            leaf = np.ones(len(count), dtype=bool)
        else:
            varying = _varying_features(values, starts, ends, has_nan)
            n_varying = np.count_nonzero(varying, axis=1)
            leaf = (count <= 1) | (n_varying == 0)
        _fill_leaves(path_length, node_tree[leaf], node[leaf], level, depth, count[leaf])
        split = ~leaf
        n_split = int(np.count_nonzero(split))
        if not n_split:
            break
        # A feature uniformly among the node's varying ones: the k-th True of its row.
        n_var = n_varying[split]
        k = np.minimum((rng.random(n_split) * n_var).astype("int64"), n_var - 1)
        chosen = np.flatnonzero(varying[split].ravel())[np.cumsum(n_var) - n_var + k] % n_features
        split_tree, split_node, split_count = node_tree[split], node[split], count[split]
        # Rows of the split nodes (the leaves' rows are done), and which split node each is in.
        rows_at = np.flatnonzero(np.repeat(split, count))
        member = np.repeat(np.arange(n_split), split_count)
        split_start = np.cumsum(split_count) - split_count
        column = np.take(values.ravel(), rows_at * n_features + chosen[member])
        lo = np.minimum.reduceat(column, split_start)
        hi = np.maximum.reduceat(column, split_start)
        cut = lo + rng.random(n_split) * (hi - lo)
        cut = np.where(cut >= hi, lo, cut)  # rounding may reach the maximum: keep both sides non-empty
        heap = split_tree * n_internal + (1 << level) - 1 + split_node
        feature[heap] = chosen
        threshold[heap] = cut
        right = column > cut[member]
        rights = np.zeros(len(right) + 1, dtype="int64")  # right rows before each row
        np.cumsum(right, out=rights[1:])
        rights_before = rights[np.r_[split_start, len(right)]]  # … before each split node, and in all
        n_right = np.diff(rights_before)
        n_left = split_count - n_right
        if level + 1 < depth:  # the bottom level needs its nodes' row counts only
            rank = rights[:-1] - rights_before[:-1][member]  # right rows of the node before the row
            dest = np.where(right, (split_start + n_left)[member] + rank, np.arange(len(right)) - rank)
            order = np.empty(len(right), dtype="int64")
            order[dest] = rows_at
            values = np.take(values, order, axis=0)
        node_tree = np.repeat(split_tree, 2)
        node = ((2 * split_node)[:, None] + np.array([0, 1])).ravel()
        count = np.column_stack([n_left, n_right]).ravel()
    return IsolationForest(feature.reshape(n_trees, n_internal), threshold.reshape(n_trees, n_internal),
                           path_length.reshape(n_trees, 1 << depth), psi)


def _varying_features(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, has_nan: bool) -> np.ndarray:
    """(nodes, features) bool: the feature is not constant among the node's rows.

    A node's rows ``starts[i]:ends[i]`` are side by side, so a feature varies when two
    neighbouring rows of the node differ in it. The "differs" flags of each row pair are bytes
    in rows of 8 (padded), OR-ed per node as uint64 words: one pass over the rows, where a
    minimum and a maximum per node and feature cost a reduction per node and feature. NaN
    differs from itself but is neither below nor above anything: with NaN the node's minimum
    and maximum decide, as they always did.
    """
    if has_nan:
        return np.maximum.reduceat(values, starts, axis=0) > np.minimum.reduceat(values, starts, axis=0)
    n, n_features = values.shape
    pairs = np.zeros((n, -(-n_features // 8) * 8), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=pairs[:-1, :n_features])
    pairs[ends - 1] = False  # the last row of a node and the first of the next are no pair
    words = np.bitwise_or.reduceat(pairs.view(np.uint64), starts, axis=0)
    return words.view(bool)[:, :n_features]


def _fill_leaves(path_length: np.ndarray, tree: np.ndarray, node: np.ndarray, level: int, depth: int,
                 count: np.ndarray) -> None:
    """Write a leaf's path length (its depth + c(rows in it)) into every bottom slot below it
    (``path_length``: the trees' bottom slots one after the other, ``2**depth`` per tree)."""
    width = 1 << (depth - level)
    slots = ((tree << depth) + node * width)[:, None] + np.arange(width)
    path_length[slots] = (level + average_path_length(count))[:, None]


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
    return ratio.map(_times_text).astype(object)


def _times_text(r: float) -> str:
    return f"{r:,.0f}" if r >= 10 else f"{r:.1f}"


#: Preference among equally strong reasons: the most specific comparison reads best.
_REASON_WEIGHT = {"person_category": 1.2, "person": 1.0, "category": 1.0, "amount": 0.9}
#: Robust spread floor (in log units, ≈10 %): a group of identical ¥199 phone plans has MAD 0.
_MIN_SPREAD = 0.1


#: Up to this many rows the grouped medians come from one sort (no pandas overhead, which
#: dominates on small ledgers); above it from pandas' linear-time grouped median.
_SORTED_MEDIAN_ROWS = 20_000


def _robust_z(scored: pd.DataFrame, top: pd.DataFrame, key_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Median amount of each flagged row's group and the row's robust z-score within it.

    Median and MAD (×1.4826) rather than mean and std, so the outlier does not hide itself
    by inflating its group's spread. Only the groups of flagged rows are computed.
    """
    keys = top[key_col].to_numpy()
    group_key = scored[key_col].to_numpy()
    log_amount = scored["log_amount"].to_numpy()
    wanted = np.isin(group_key, np.unique(keys[keys >= 0]))
    if wanted.sum() > _SORTED_MEDIAN_ROWS or not np.isfinite(log_amount[wanted]).all():
        return _robust_z_pandas(scored, top, key_col)
    group_key, log_amount = group_key[wanted], log_amount[wanted]
    groups, median, size = _sorted_medians(group_key, log_amount)
    deviation = np.abs(log_amount - median[np.searchsorted(groups, group_key)])
    mad = _sorted_medians(group_key, deviation)[1] * 1.4826
    if not len(groups):  # no flagged row has a group
        return np.full(len(keys), np.nan), np.zeros(len(keys))
    at = np.minimum(np.searchsorted(groups, keys), len(groups) - 1)
    found = (keys >= 0) & (groups[at] == keys)
    m = np.where(found, median[at], np.nan)
    spread = np.maximum(np.where(found, mad[at], np.nan), _MIN_SPREAD)
    usable = np.where(found, size[at], 0) >= MIN_GROUP
    z = np.where(usable, (top["log_amount"].to_numpy() - m) / spread, 0.0)
    return np.where(usable, np.exp(m), np.nan), np.nan_to_num(z)


def _sorted_medians(key: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys (sorted), the median of ``values`` per key and the group sizes.

    The median of an even count is the mean of the two middle values, (a + b) / 2, as the
    grouped median of pandas computes it; of an odd count the middle value ((x + x) / 2 is x).
    """
    order = np.lexsort((values, key))
    key, values = key[order], values[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.array([], dtype="int64")
    size = np.diff(np.r_[starts, len(key)])
    median = (values[starts + (size - 1) // 2] + values[starts + size // 2]) / 2
    return key[starts], median, size


def _robust_z_pandas(scored: pd.DataFrame, top: pd.DataFrame, key_col: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_robust_z` by pandas' grouped median: faster on many rows, and it skips the NaN
    an infinite amount makes (the sorted medians give the same numbers otherwise)."""
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


#: How each amount comparison is worded: (Chinese, English) parts around the median, where
#: None stands for the row's category.
_WORDING = {
    "person_category": (("该报销人 ", None, " 的中位数 "), ("this person's median for ", None, " ")),
    "person": (("该报销人的中位数 ",), ("this person's median ",)),
    "category": ((None, " 类别的中位数 "), ("the median for ", None, " ")),
    "amount": (("全部报销的中位数 ",), ("the median of all claims ",)),
}


def explain(hits: pd.DataFrame, top: pd.DataFrame, scored: pd.DataFrame, settings: Settings) -> pd.Series:
    """Say why each flagged row stands out: the comparison in which it deviates most.

    Amount comparisons (with this person in this category, this person, this category, all
    claims) are ranked by robust z-score; a vendor seen once or twice and a rare round amount
    are named when no amount comparison is stronger. The flagged rows are a small share of
    the ledger, so each message is worded in one Python step for its own reason only.
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
    reason = np.where(strength.max(axis=0) > 0, best, "amount")

    zh = settings.lang == "zh"
    amount = hits["amount"].to_numpy(dtype="float64")
    amount_t = money(hits["amount"], settings.currency).tolist()
    category = label(hits["category"]).tolist()
    vendor = label(hits["vendor"]).tolist()
    median_t = {name: money(medians[name], settings.currency).tolist() for name in _WORDING}
    prefix = "异常组合：" if zh else "Unusual claim: "
    messages = []
    with np.errstate(divide="ignore", invalid="ignore"):  # as pandas: x / NaN is NaN, quietly
        for i, name in enumerate(reason.tolist()):
            messages.append(prefix + _reason_text(name, i, zh, amount, amount_t, category, vendor, vendor_count,
                                                  medians, median_t))
    return pd.Series(messages, index=hits.index, dtype=object)


def _reason_text(name: str, i: int, zh: bool, amount, amount_t, category, vendor, vendor_count, medians,
                 median_t) -> str:
    """The message of flagged row ``i`` for its strongest reason ``name``."""
    if name == "vendor":
        n = str(int(vendor_count[i]))
        return (f"商户 {vendor[i]} 在账中只出现 {n} 次（金额 {amount_t[i]}）" if zh
                else f"vendor {vendor[i]} appears only {n} time(s) (amount {amount_t[i]})")
    if name == "round":
        return f"金额 {amount_t[i]} 是少见的整数金额" if zh else f"amount {amount_t[i]} is unusually round"
    what = "".join(category[i] if part is None else part for part in _WORDING[name][0 if zh else 1])
    ratio = amount[i] / medians[name][i]
    return _ratio_text_one(zh, amount_t[i], ratio, _times_text(ratio if ratio >= 1 else 1 / ratio),
                           median_t[name][i], what)


def _ratio_text_one(zh: bool, amount_t: str, ratio: float, times: str, median_t: str, what: str) -> str:
    """'金额 ¥X 是<what>¥M 的 N 倍' / 'amount ¥X is N× <what>(¥M)', or 1/N when smaller."""
    if zh:
        return (f"金额 {amount_t} 是{what}{median_t} 的 {times} 倍" if ratio >= 1
                else f"金额 {amount_t} 仅为{what}{median_t} 的 1/{times}")
    return (f"amount {amount_t} is {times}× {what}({median_t})" if ratio >= 1
            else f"amount {amount_t} is 1/{times} of {what}({median_t})")
