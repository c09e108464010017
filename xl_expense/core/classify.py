"""Expense categories learned from the rows a person already labelled.

The finance team's own rules run first (``classify_rules``); this module fills the rest.
It learns only from rows that carry a category a person typed, corrected, or a rule set —
never from its own earlier predictions, which would make yesterday's mistake tomorrow's
training label. A category a person wrote is never overwritten, and every guess comes with
its probability so that the doubtful ones can be listed for review.

The model is a scikit-learn :class:`~sklearn.pipeline.Pipeline` on the canonical ledger
columns (``description``, ``vendor``, ``customer``, ``amount``):

* character 1–4-grams of the description (:class:`CharNgrams`, TF-IDF computed on whole numpy
  arrays): Chinese needs no word segmentation, and the same n-grams catch English words,
  codes and typos (``taxi``/``taxis``, 差旅/差旅费);
* character n-grams of the vendor and customer, plus the whole vendor name as one token —
  what a clerk's VLOOKUP on the merchant does, but it still generalises through the n-grams;
* the amount's sign and order of magnitude in fixed bins (a ¥30 taxi and a ¥3,000 dinner);
* an averaged :class:`~sklearn.linear_model.SGDClassifier` with the logistic loss, rare
  categories softly up-weighted (:data:`BALANCE_POWER`): linear, fast to predict, and it gives
  probabilities. ``benchmarks/classify_bench.py`` compares it with a LinearSVC and a
  VLOOKUP-style lookup on three real ledgers.

Prediction scores each distinct vendor and description once (:class:`_ColumnScorer`): ledgers
repeat the same merchant thousands of times.

Everything is deterministic: a fixed ``random_state`` everywhere, fixed amount bins.
"""

from __future__ import annotations

import hashlib
import warnings
import weakref
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn
from scipy.special import expit
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from xl_expense.errors import XlExpenseError

#: Canonical ledger columns the model reads; any other column is ignored.
FEATURE_COLUMNS = ("description", "vendor", "customer", "amount")
TEXT_FEATURES = ("description", "vendor", "customer")

#: Values of the ``source`` column, in order of authority.
SOURCE_MANUAL = "manual"  # a person typed or corrected it: never overwritten
SOURCE_RULE = "rule"      # one of the user's rules matched: the model does not touch it
SOURCE_MODEL = "model"    # this module's guess: replaced on every run, never trained on

#: Rows predicted per block: ``predict_proba`` is rows × classes floats, and a million-row
#: ledger with 400 categories would otherwise need 3 GB at once.
PREDICT_BLOCK = 50_000


class NotEnoughLabels(XlExpenseError):
    """Too few labelled rows (or categories) to learn from."""


# ------------------------------------------------------------------------------ features

class LedgerColumns(BaseEstimator, TransformerMixin):
    """Pick the model's columns from a ledger and make them safe for the vectorisers.

    Missing text becomes ``""`` (TF-IDF refuses NaN), text is NFKC-folded so full-width
    ``ＴＡＸＩ`` and ``TAXI`` are the same n-grams, and a missing column counts as empty,
    so a ledger without a customer column still works. ``fit`` also records what the
    model was trained on (:func:`model_fingerprint` reports it).

    Parameters
    ----------
    columns : tuple of str
        Canonical columns to keep; ``amount`` is numeric, the others text.
    """

    def __init__(self, columns=FEATURE_COLUMNS):
        self.columns = columns

    def fit(self, X, y=None):
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_samples_fit_ = len(frame)
        self.labels_sha256_ = _labels_hash(y) if y is not None else None
        return self

    def transform(self, X):
        check_is_fitted(self, "n_samples_fit_")
        frame = _as_frame(X)
        out = {}
        for name in self.columns:
            if name == "amount":
                values = frame["amount"] if "amount" in frame else pd.Series(np.nan, index=frame.index)
                out[name] = pd.to_numeric(values, errors="coerce").astype("float64")
            else:
                out[name] = _clean_text(frame.get(name), frame.index)
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns, dtype=object)


class AmountBins(BaseEstimator, TransformerMixin):
    """One-hot of the amount's sign and order of magnitude, in fixed half-decade bins.

    Fixed bins (not learned quantiles) keep the features identical between runs and
    ledgers: ¥30–¥100 is always the same column. Refunds (negative) and missing amounts
    get their own columns because they are different kinds of row.
    """

    #: Half-decade edges from 1 to 10⁸ in the ledger currency.
    EDGES = tuple(10 ** (k / 2) for k in range(17))

    def fit(self, X, y=None):
        self.n_features_out_ = len(self.EDGES) + 1 + 2
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_out_")
        amount = np.asarray(X, dtype="float64").reshape(-1)
        magnitude = np.abs(np.nan_to_num(amount, nan=0.0))
        bucket = np.searchsorted(np.asarray(self.EDGES), magnitude, side="right")
        missing = np.isnan(amount)
        negative = amount < 0
        rows = np.arange(len(amount))
        data = np.ones(len(amount))
        blocks = [sp.csr_matrix((data, (rows, bucket)), shape=(len(amount), len(self.EDGES) + 1)),
                  sp.csr_matrix(np.column_stack([negative, missing]).astype("float64"))]
        return sp.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features=None):
        bins = [f"amount_bin{k}" for k in range(len(self.EDGES) + 1)]
        return np.asarray(bins + ["amount_negative", "amount_missing"], dtype=object)


class TextNgrams(TfidfVectorizer):
    """A :class:`~sklearn.feature_extraction.text.TfidfVectorizer` that accepts an empty column.

    A ledger without customers (or a tiny one where no n-gram reaches ``min_df``) has no
    vocabulary; the stock vectoriser raises, this one contributes zero features instead.
    """

    def fit(self, raw_documents, y=None):
        self.fit_transform(raw_documents)
        return self

    def fit_transform(self, raw_documents, y=None):
        try:
            matrix = super().fit_transform(raw_documents)
        except ValueError as error:
            if "vocabulary" not in str(error) and "min_df" not in str(error):
                raise
            self.empty_ = True
            return sp.csr_matrix((len(raw_documents), 1), dtype=self.dtype)
        self.empty_ = False
        return matrix

    def transform(self, raw_documents):
        check_is_fitted(self, "empty_")
        if self.empty_:
            return sp.csr_matrix((len(raw_documents), 1), dtype=self.dtype)
        # Ledgers repeat the same vendor and description thousands of times: vectorise each
        # distinct text once and copy its row (exact, and 5–10× faster on real ledgers).
        codes, uniques = pd.factorize(np.asarray(raw_documents, dtype=object), use_na_sentinel=False)
        return super().transform(list(uniques))[codes]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "empty_")
        return np.asarray(["<empty>"], dtype=object) if self.empty_ else super().get_feature_names_out(input_features)


class CharNgrams(BaseEstimator, TransformerMixin):
    """Character n-gram TF-IDF of a text column, computed on whole numpy arrays.

    What :class:`TextNgrams` computes, without its Python loop over every n-gram of every row
    (that loop was most of the time to classify a ledger). Each distinct text is lower-cased,
    its whitespace collapsed and padded with one space at each end (so ``" ta"`` marks a word
    start, as scikit-learn's ``char_wb`` does); its code points become one row of an integer
    matrix, and every n-gram's 64-bit hash is computed for all rows at once by a rolling
    multiply–xor over the columns. ``fit`` keeps the hashes seen in at least ``min_df`` rows
    (the most frequent ``max_features``) as the vocabulary; two different n-grams sharing a
    64-bit hash is too unlikely to matter. Weights are scikit-learn's: ``1 + log(tf)`` times
    the smoothed idf, rows scaled to unit length.

    Parameters
    ----------
    ngram_range : (int, int), default (1, 3)
        Shortest and longest n-gram.
    min_df : int, default 1
        Rows an n-gram must appear in to be kept.
    max_features : int, optional
        Keep only the most frequent n-grams.
    """

    #: 64-bit FNV-1a constants: a well-mixed rolling hash that numpy computes column by column.
    _OFFSET = np.uint64(0xCBF29CE484222325)
    _PRIME = np.uint64(0x100000001B3)
    #: Cells (rows × longest text) vectorised at once, to bound memory on long texts.
    _CHUNK_CELLS = 2_000_000

    def __init__(self, ngram_range=(1, 3), min_df=1, max_features=None):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, raw_documents, y=None):
        codes, uniques = pd.factorize(np.asarray(raw_documents, dtype=object), use_na_sentinel=False)
        weight = np.bincount(codes, minlength=len(uniques)).astype("float64")
        rows, hashes = self._ngram_hashes(uniques)
        # A (distinct text × n-gram) count matrix: its non-zeros are the (text, n-gram) pairs, and
        # each text counts as many times as it occurs in the ledger.
        column, candidates = pd.factorize(hashes)
        counts = sp.csr_matrix((np.ones(len(column), dtype=np.float64), (rows, column)),
                               shape=(len(uniques), len(candidates)))
        counts.sum_duplicates()
        text_weight = np.repeat(weight, np.diff(counts.indptr))
        df = np.bincount(counts.indices, weights=text_weight, minlength=len(candidates))
        keep = df >= self.min_df
        if self.max_features is not None and keep.sum() > self.max_features:
            term_count = np.bincount(counts.indices, weights=text_weight * counts.data, minlength=len(candidates))
            # Most frequent first; the hash breaks ties so the choice is the same on every run.
            order = np.lexsort((candidates, -np.where(keep, term_count, -1.0)))
            keep = np.zeros(len(candidates), dtype=bool)
            keep[order[: self.max_features]] = True
        kept = np.flatnonzero(keep)
        kept = kept[np.argsort(candidates[kept])]  # vocabulary in hash order: independent of row order
        self.ngram_hashes_ = np.asarray(candidates[kept], dtype=np.uint64)
        df = df[kept]
        n_documents = weight.sum()
        self.idf_ = (np.log((1.0 + n_documents) / (1.0 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, raw_documents):
        check_is_fitted(self, "ngram_hashes_")
        codes, uniques = pd.factorize(np.asarray(raw_documents, dtype=object), use_na_sentinel=False)
        width = max(len(self.ngram_hashes_), 1)  # an empty vocabulary still gives one (zero) column
        rows, hashes = self._ngram_hashes(uniques)
        column = pd.Index(self.ngram_hashes_).get_indexer(hashes)  # hash table: -1 for unseen n-grams
        known = column >= 0
        counts = sp.csr_matrix((np.ones(int(known.sum()), dtype=np.float32), (rows[known], column[known])),
                               shape=(len(uniques), width))
        counts.sum_duplicates()
        counts.data = (1.0 + np.log(counts.data)) * self.idf_[counts.indices]
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        matrix = sp.csr_matrix(sp.diags_array(1.0 / norms).astype(np.float32) @ counts, dtype=np.float32)
        return matrix[codes] if len(uniques) != len(codes) else matrix

    def _ngram_hashes(self, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, hash) of every n-gram occurrence in ``texts`` (distinct strings)."""
        lo, hi = self.ngram_range
        words = (" ".join(t.lower().split()) if isinstance(t, str) else "" for t in texts)  # missing: no text
        padded = [f" {w} " if w else "" for w in words]
        lengths = np.fromiter(map(len, padded), dtype=np.intp, count=len(padded))
        order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
        sorted_lengths = lengths[order]
        all_rows, all_hashes = [], []
        start = int(np.searchsorted(sorted_lengths, 1))  # empty texts have no n-grams
        while start < len(order):
            # As many rows as fit in _CHUNK_CELLS at the chunk's longest text (lengths ascend).
            end = min(len(order), start + max(1, self._CHUNK_CELLS // int(sorted_lengths[start])))
            while end - start > 1 and sorted_lengths[end - 1] * (end - start) > self._CHUNK_CELLS:
                end = start + max(1, self._CHUNK_CELLS // int(sorted_lengths[end - 1]))
            chunk = order[start:end]
            longest = int(sorted_lengths[end - 1])
            points = (np.array([padded[i] for i in chunk], dtype=f"<U{longest}")
                      .view(np.uint32).reshape(len(chunk), longest).astype(np.uint64))
            rolling = np.full((len(chunk), longest + 1), self._OFFSET, dtype=np.uint64)
            chunk_lengths = lengths[chunk][:, None]
            for n in range(1, hi + 1):
                rolling = (rolling[:, :-1] ^ points[:, n - 1:]) * self._PRIME  # windows of length n
                if n >= lo:
                    starts = np.arange(rolling.shape[1])
                    valid = starts[None, :] + n <= chunk_lengths
                    row, _ = np.nonzero(valid)
                    all_rows.append(chunk[row])
                    all_hashes.append(rolling[valid])
            start += len(chunk)
        if not all_rows:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.uint64)
        return np.concatenate(all_rows), np.concatenate(all_hashes)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "ngram_hashes_")
        return np.asarray([f"ngram_{h:016x}" for h in self.ngram_hashes_] or ["<empty>"], dtype=object)


def _whole_text(text: str) -> list[str]:
    """The whole (lower-cased, stripped) name as one token: the VLOOKUP feature."""
    text = text.strip().lower()
    return [text] if text else []


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError(f"expected a ledger DataFrame with columns {FEATURE_COLUMNS}, got {type(X).__name__}")


def _clean_text(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """Text as plain ``str`` objects, missing → ``""``, NFKC-folded (full-width → half-width)."""
    if values is None:
        return pd.Series("", index=index, dtype=object)
    text = values.astype(object).where(values.notna(), "")
    # Folding each distinct value once: ledgers repeat the same vendor thousands of times.
    uniques = pd.unique(text.to_numpy())
    folded = pd.Series(uniques, dtype=object).astype(str).str.normalize("NFKC").str.strip()
    mapping = dict(zip(uniques, folded.to_numpy()))
    return pd.Series(text.map(mapping).to_numpy(dtype=object), index=index, dtype=object)


def _labels_hash(y) -> str:
    """A short fingerprint of the training labels, so a stored model can tell it is stale."""
    labels = pd.Series(np.asarray(y, dtype=object)).astype(str)
    digest = hashlib.sha256("\x1f".join(labels.tolist()).encode("utf-8"))
    return digest.hexdigest()


#: Inverse regularisation per row, as LinearSVC's ``C``: ``alpha = 1 / (C · rows)``. Measured on
#: the Taiwan and Birmingham ledgers (``alpha`` ≈ 1e-6–2e-6 at 70k–150k rows gave the best macro-F1);
#: on a dozen labelled rows it keeps the model from claiming 100 % certainty.
REGULARISATION_C = 7.0


def alpha_for(n_rows: int) -> float:
    """SGD's ``alpha`` for a training set of ``n_rows``: stronger regularisation on few labels."""
    return 1.0 / (REGULARISATION_C * max(int(n_rows), 1))


#: How much rarer categories weigh when the model learns: a category with ``n_c`` of ``n`` rows
#: (``k`` categories) has weight ``(n / (k · n_c)) ** BALANCE_POWER`` on its positive examples.
#: 0 ignores rarity, 1 is scikit-learn's "balanced". Ledgers are long-tailed (Toronto: 424 GL
#: accounts, median 22 rows, largest 29,000): unweighted, the model almost never predicts a rare
#: account, and fully balanced it predicts them everywhere (accuracy fell 9 points). 0.3 was the
#: best macro-F1 without losing accuracy on the benchmark sets.
BALANCE_POWER = 0.3


def category_weights(labels, power: float = BALANCE_POWER) -> dict[str, float]:
    """Weight of each category's rows in training, softly favouring rare categories (see BALANCE_POWER)."""
    counts = pd.Series(np.asarray(labels, dtype=object)).value_counts()
    weights = (counts.sum() / (len(counts) * counts)) ** power
    return {label: float(w) for label, w in weights.items()}


def _sklearn_class_weight(weights: dict) -> dict:
    """``weights`` keyed the way scikit-learn looks categories up in a ``class_weight`` dict.

    scikit-learn looks a category that reads as an integer up by that integer: the account code
    ``"6601"`` is found under ``6601``, not ``"6601"`` (and an unfound one is an error). Account
    codes are common category names in finance, so the keys are converted the same way.
    """
    keyed = {}
    for label, weight in weights.items():
        try:
            key = int(label)
        except (TypeError, ValueError):
            key = str(label)
        keyed.setdefault(key, weight)  # "007" and "7" are one category to scikit-learn: first wins
    return keyed


def make_classifier(random_state: int = 0, *, alpha: float = 2e-6, n_jobs: int | None = None,
                    class_weight: dict | None = None) -> Pipeline:
    """Return the unfitted expense classifier (see the module docstring for why this shape).

    Parameters
    ----------
    random_state : int, default 0
        Seed of the SGD solver, fixed so that two runs on the same labels agree.
    alpha : float, default 2e-6
        L2 regularisation of the SGD classifier; :func:`train_classifier` sets it from the
        number of labelled rows with :func:`alpha_for`.
    n_jobs : int, optional
        Threads for the one-vs-rest fits (one binary problem per category; the result does
        not depend on it).
    class_weight : dict, optional
        Weight of each category's rows, as :func:`category_weights` returns it;
        :func:`fit_classifier` sets it from the labels.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``columns`` → ``features`` (:class:`~sklearn.compose.ColumnTransformer`) → ``classifier``.
        Fit it with :func:`fit_classifier` on a ledger DataFrame and its category labels.
    """
    features = ColumnTransformer(
        [
            # 1–4-grams: single characters carry meaning in Chinese (费, 餐), 4-grams separate
            # English words (``taxi`` vs ``tax ``); on Toronto's purpose text 1–4 beat 1–3 by
            # 0.006 macro-F1. min_df=2 on free text: an n-gram seen once is noise.
            ("description", CharNgrams((1, 4), min_df=2, max_features=300_000), "description"),
            ("vendor", CharNgrams((1, 4), min_df=1, max_features=300_000), "vendor"),
            ("vendor_name", TextNgrams(analyzer=_whole_text, dtype=np.float32), "vendor"),
            ("customer", CharNgrams((1, 3), min_df=2, max_features=100_000), "customer"),
            ("amount", AmountBins(), ["amount"]),
        ],
        sparse_threshold=1.0,
    )
    # Averaged SGD (the mean of the weights over the updates): on Toronto's 424 accounts it
    # gained 3–4 points of accuracy over plain SGD at the same number of epochs. 20 epochs
    # beat 10 by 0.003–0.005 macro-F1; the ConvergenceWarning it may raise on large sets is
    # expected and silenced by fit_classifier.
    classifier = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=20, tol=1e-4, average=True,
                               class_weight=None if class_weight is None else _sklearn_class_weight(class_weight),
                               random_state=random_state, n_jobs=n_jobs)
    return Pipeline([("columns", LedgerColumns()), ("features", features), ("classifier", classifier)])


# ------------------------------------------------------------------------------ training

@dataclass(frozen=True)
class TrainingResult:
    """A fitted model and what the classification report says about it.

    ``cv_accuracy`` is the stratified k-fold accuracy on the user's own labels (``None``
    when the smallest category has fewer than 2 rows, so no fold split is possible).
    ``skipped`` lists categories with fewer than ``min_per_class`` rows: the model cannot
    learn them, so the report says so instead of pretending.
    """

    model: Pipeline
    cv_accuracy: float | None
    n_labelled: int
    classes: tuple[str, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def labelled_rows(labels: pd.Series, sources: pd.Series | None = None,
                  exclude_sources: tuple[str, ...] = (SOURCE_MODEL,)) -> pd.Series:
    """Boolean mask of rows to learn from: a non-empty category not produced by the model.

    ``sources`` (aligned to ``labels``) says where each category came from; rows whose
    source is in ``exclude_sources`` are left out. By default only the model's own guesses
    are, so a person's category and a rule's category both teach the model.
    """
    text = labels.astype(object).where(labels.notna(), "").astype(str).str.strip()
    mask = text.ne("")
    if sources is not None:
        mask &= ~_aligned(sources, labels.index).isin(list(exclude_sources)).to_numpy()
    return pd.Series(mask.to_numpy(dtype=bool), index=labels.index)


def train_classifier(
    ledger: pd.DataFrame,
    labels: pd.Series | str = "category",
    *,
    sources: pd.Series | None = None,
    exclude_sources: tuple[str, ...] = (SOURCE_MODEL,),
    min_per_class: int = 2,
    cv: bool = True,
    cv_max_rows: int = 20_000,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> TrainingResult:
    """Fit :func:`make_classifier` on the rows that already carry a category.

    Parameters
    ----------
    ledger : DataFrame
        Canonical ledger; rows without a category are ignored (they are what we predict).
    labels : Series or str, default "category"
        The categories, aligned to ``ledger``, or the name of the column holding them.
    sources : Series, optional
        Where each category came from (``manual``/``rule``/``model``). Rows from a source in
        ``exclude_sources`` (by default the model's own guesses) are never trained on.
    min_per_class : int, default 2
        Categories with fewer labelled rows are skipped (reported in ``skipped``): one example
        cannot be cross-validated and is more often a typo than a category.
    cv : bool, default True
        Compute the cross-validated accuracy for the report.
    cv_max_rows : int, default 20000
        The cross-validation runs on a stratified sample of at most this many rows; five refits
        on a million rows would cost minutes for one number in a report.
    random_state : int, default 0
    n_jobs : int, optional
        Threads for the one-vs-rest fits; the model does not depend on it.

    Returns
    -------
    TrainingResult

    Raises
    ------
    NotEnoughLabels
        Fewer than two categories have ``min_per_class`` labelled rows. We raise rather than
        return ``None``: a classify run that silently predicts nothing would look like success.
    """
    y_all = ledger[labels] if isinstance(labels, str) else _aligned(labels, ledger.index)
    if sources is not None:
        sources = _aligned(sources, ledger.index)
    mask = labelled_rows(y_all, sources, exclude_sources)
    y = y_all[mask.to_numpy()].astype(str).str.strip()
    counts = y.value_counts()
    kept = counts[counts >= min_per_class]
    skipped = {str(k): int(v) for k, v in counts[counts < min_per_class].items()}
    if len(kept) < 2:
        raise NotEnoughLabels(
            f"only {len(kept)} categor{'y has' if len(kept) == 1 else 'ies have'} at least {min_per_class} "
            f"labelled rows ({int(mask.sum())} labelled rows in all)",
            "fill the category column on a few more rows of each kind (at least "
            f"{min_per_class} rows in each of 2 or more categories), or add rules")
    keep = y.isin(kept.index)
    X = ledger.iloc[np.flatnonzero(mask.to_numpy())[keep.to_numpy()]]
    y = y[keep]
    model = fit_classifier(make_classifier(random_state, alpha=alpha_for(len(y)), n_jobs=n_jobs), X, y)
    accuracy = (cross_validated_accuracy(X, y, random_state=random_state, max_rows=cv_max_rows, n_jobs=n_jobs)
                if cv else None)
    return TrainingResult(model=model, cv_accuracy=accuracy, n_labelled=len(y),
                          classes=tuple(str(c) for c in model.classes_), skipped=skipped)


def fit_classifier(model: Pipeline, ledger: pd.DataFrame, labels, *, balance: bool = True) -> Pipeline:
    """Fit ``model`` on ``ledger``/``labels``, quiet about SGD stopping at ``max_iter``.

    With ``balance`` (the default) the classifier's ``class_weight`` is first set from these
    labels by :func:`category_weights`, so rare categories are not drowned by the common ones;
    ``balance=False`` fits ``model`` as it is. The iteration cap is deliberate (see
    :func:`make_classifier`), so the ConvergenceWarning it triggers on large ledgers says
    nothing the user can act on.
    """
    labels = np.asarray(labels, dtype=object)
    if balance and isinstance(model, Pipeline) and "classifier" in model.named_steps:
        model.set_params(classifier__class_weight=_sklearn_class_weight(category_weights(labels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(ledger, labels)
    _drop_solver_state(model)
    return model


def _drop_solver_state(model) -> None:
    """Free averaged SGD's last un-averaged weights, kept only to resume with ``partial_fit``.

    They are a second (categories × features) array as large as ``coef_``: for 400 categories
    that is hundreds of MB in memory and in the stored model. Nothing here resumes training
    (``fit`` starts from scratch and re-creates them), and prediction reads only ``coef_``.
    """
    classifier = model.named_steps.get("classifier") if isinstance(model, Pipeline) else None
    if isinstance(classifier, SGDClassifier) and classifier.average and not classifier.warm_start:
        classifier._standard_coef = None
        classifier._standard_intercept = None


def _aligned(values: pd.Series, index: pd.Index) -> pd.Series:
    """``values`` on ``index``: by label when the indexes match, else it must line up by position."""
    if values.index.equals(index):
        return values
    if not index.has_duplicates and not values.index.has_duplicates:
        return values.reindex(index)
    if len(values) != len(index):
        raise ValueError("labels/sources must be aligned to the ledger (same index or same length)")
    return pd.Series(values.to_numpy(), index=index)


def cross_validated_accuracy(ledger: pd.DataFrame, labels: pd.Series, *, max_folds: int = 5,
                             max_rows: int = 20_000, random_state: int = 0,
                             n_jobs: int | None = None) -> float | None:
    """Mean accuracy of :func:`make_classifier` over stratified k folds of the user's labels.

    ``k`` is the smallest category's row count capped at ``max_folds``, so every fold sees every
    category; ``None`` when a category has a single row. Large ledgers are first sampled down to
    ``max_rows`` rows, stratified, with a fixed seed.
    """
    y = pd.Series(np.asarray(labels, dtype=object), index=ledger.index)
    X = ledger
    if len(y) > max_rows:
        X, y = _stratified_sample(X, y, max_rows, random_state)
    smallest = int(y.value_counts().min())
    folds = min(max_folds, smallest)
    if folds < 2 or y.nunique() < 2:
        return None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    # Each fold trains on (k-1)/k of the rows: regularise for that size, as train_classifier does.
    model = make_classifier(random_state, alpha=alpha_for(len(y) * (folds - 1) // folds), n_jobs=n_jobs,
                            class_weight=category_weights(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(model, X, y.to_numpy(dtype=object), cv=splitter, scoring="accuracy")
    return float(np.mean(scores))


def _stratified_sample(X: pd.DataFrame, y: pd.Series, n: int, random_state: int):
    """About ``n`` rows with every category kept at ≥ 2 rows where it has them."""
    rng = np.random.default_rng(random_state)
    share = n / len(y)
    keys = rng.random(len(y))
    rank = y.groupby(y.to_numpy()).cumcount().to_numpy()  # keep the first two rows of each category
    chosen = (keys < share) | (rank < 2)
    return X[chosen], y[chosen]


# ------------------------------------------------------------------------------ prediction

def predict_categories(
    model: Pipeline,
    ledger: pd.DataFrame,
    *,
    existing: pd.Series | None = None,
    sources: pd.Series | None = None,
    min_confidence: float = 0.6,
) -> pd.DataFrame:
    """Category, confidence, source and review flag for every row of ``ledger``.

    Parameters
    ----------
    model : fitted Pipeline from :func:`train_classifier` / :func:`make_classifier`
    ledger : DataFrame
    existing : Series, optional
        Categories already on the rows (aligned to ``ledger``).
    sources : Series, optional
        Where each existing category came from. A non-empty category whose source is
        ``manual`` or ``rule`` — or missing: a category found in the ledger was typed by
        someone — is kept with confidence 1.0 and never overwritten. Only rows that are
        empty or whose source is ``model`` (an earlier guess) are predicted again.
    min_confidence : float, default 0.6
        Predictions below this probability get ``review=True``.

    Returns
    -------
    DataFrame indexed like ``ledger`` with ``category`` (object), ``confidence`` (float64,
    the highest class probability), ``source`` (``manual``/``rule``/``model``) and
    ``review`` (bool).
    """
    check_is_fitted(model)
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    index = ledger.index
    category = pd.Series(None, index=index, dtype=object)
    confidence = pd.Series(np.nan, index=index, dtype="float64")
    source = pd.Series(None, index=index, dtype=object)

    keep = pd.Series(False, index=index)
    if existing is not None:
        existing = _aligned(existing, index)
        given = labelled_rows(existing)
        origin = (_aligned(sources, index) if sources is not None else pd.Series(None, index=index, dtype=object))
        origin = origin.astype(object).where(origin.notna(), SOURCE_MANUAL)
        keep = given & origin.ne(SOURCE_MODEL)
        category[keep] = existing[keep].astype(str).str.strip()
        confidence[keep] = 1.0
        source[keep] = origin[keep].where(origin[keep].eq(SOURCE_RULE), SOURCE_MANUAL)

    todo = ~keep.to_numpy()
    if todo.any():
        labels, probability = _predict_with_confidence(model, ledger[todo])
        category[todo] = labels
        confidence[todo] = probability
        source[todo] = SOURCE_MODEL
    review = source.eq(SOURCE_MODEL) & (confidence < min_confidence)
    return pd.DataFrame({"category": category, "confidence": confidence, "source": source,
                         "review": review.astype(bool)}, index=index)


def _predict_with_confidence(model: Pipeline, ledger: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Most probable class and its probability, in blocks to bound memory.

    A pipeline shaped like :func:`make_classifier`'s goes through :class:`_ColumnScorer`
    (each distinct vendor or description scored once); any other fitted pipeline through its
    own ``predict_proba``. Both give the same answer (``tests/core/test_classify.py`` checks).
    """
    scorer = _ColumnScorer.for_model(model)
    if scorer is not None:
        ledger = model.named_steps["columns"].transform(ledger)
    classes = model.classes_
    labels = np.empty(len(ledger), dtype=object)
    probability = np.empty(len(ledger), dtype="float64")
    for start in range(0, len(ledger), PREDICT_BLOCK):
        block = slice(start, start + PREDICT_BLOCK)
        if scorer is not None:
            proba = scorer.predict_proba(ledger.iloc[block])
        else:
            proba = model.predict_proba(ledger.iloc[block])
        best = proba.argmax(axis=1)
        labels[block] = classes[best]
        probability[block] = proba[np.arange(len(best)), best]
    return labels, probability


class _ColumnScorer:
    """Probabilities of a fitted :func:`make_classifier` pipeline, scoring each distinct value once.

    A linear model's score is a sum over feature blocks, and each block comes from one ledger
    column: ``score(row) = Σ_column W_column · features(row[column]) + b``. Ledgers repeat the
    same vendor and description thousands of times, so each column's distinct values are
    vectorised and multiplied by that column's weights once, and the (distinct × classes)
    result is copied to the rows by index: several times less arithmetic than
    ``predict_proba`` on the stacked (rows × features) matrix. Scores are float32 (half the
    memory traffic of the rows × classes arrays); the probabilities agree with
    ``predict_proba`` to float32 rounding (about 1e-7).

    The weights, re-laid out per column, are kept for as long as the fitted classifier lives
    (an Excel function classifies a few rows per call: re-copying a 400-category model's
    weights on every call would cost more than the prediction).
    """

    _cache: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()

    def __init__(self, blocks, intercept, binary, coef):
        self.blocks = blocks        # [(transformer, column, weights (features × classes))]
        self.intercept = intercept  # (classes,)
        self.binary = binary        # two classes: one score column, P(second class)
        self.coef = coef            # the classifier's coef_ it was built from (staleness check)

    @classmethod
    def for_model(cls, model) -> _ColumnScorer | None:
        """The scorer for ``model``, or ``None`` when it is not shaped like :func:`make_classifier`'s."""
        steps = getattr(model, "named_steps", {})
        features, classifier = steps.get("features"), steps.get("classifier")
        if not (isinstance(steps.get("columns"), LedgerColumns) and isinstance(features, ColumnTransformer)
                and isinstance(classifier, SGDClassifier) and classifier.loss == "log_loss"):
            return None
        cached = cls._cache.get(classifier)
        if cached is not None and cached.coef is classifier.coef_:  # a refit makes a new coef_ array
            return cached
        blocks = []
        for name, transformer, column in features.transformers_:
            if name == "remainder" or transformer == "drop":
                continue
            if transformer == "passthrough":
                return None
            # (features × classes), C-ordered: each sparse row's non-zeros pick whole rows of W.
            block = classifier.coef_[:, features.output_indices_[name]].T
            blocks.append((transformer, column, np.ascontiguousarray(block, dtype=np.float32)))
        scorer = cls(blocks, np.asarray(classifier.intercept_, dtype=np.float32),
                     classifier.coef_.shape[0] == 1, classifier.coef_)
        cls._cache[classifier] = scorer
        return scorer

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores (rows × classes; one column for two classes) of the columns picked by ``LedgerColumns``."""
        scores = np.tile(self.intercept, (len(frame), 1))
        for transformer, column, weights in self.blocks:
            if isinstance(column, str):
                codes, uniques = pd.factorize(frame[column].to_numpy(dtype=object), use_na_sentinel=False)
                features = transformer.transform(pd.Series(uniques, dtype=object))
                scores += np.asarray(features.astype(np.float32) @ weights)[codes]
            else:
                scores += np.asarray(transformer.transform(frame[column]).astype(np.float32) @ weights)
        return scores

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The same one-vs-rest normalised logistic probabilities as ``SGDClassifier.predict_proba``."""
        prob = expit(self.decision_function(frame))
        if self.binary:
            return np.column_stack([1 - prob[:, 0], prob[:, 0]])
        total = prob.sum(axis=1)
        zero = total == 0  # every class saturated to 0: uniform, as scikit-learn does
        prob[zero] = 1.0
        total[zero] = prob.shape[1]
        prob /= total[:, None]
        return prob


def model_fingerprint(model: Pipeline) -> dict:
    """What a stored model must match before it is trusted again.

    The io layer stores this next to the model and refuses to load when ``sklearn_version``
    differs from the running one (a pickle from another version can mispredict silently), and
    retrains when ``labels_sha256`` no longer matches the workbook's labels.
    """
    check_is_fitted(model)
    columns = model.named_steps["columns"]
    return {
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "classes": [str(c) for c in model.classes_],
        "feature_columns": list(columns.columns),
        "trained_on": int(columns.n_samples_fit_),
        "labels_sha256": columns.labels_sha256_,
    }
