"""Classify a whole ledger: a person's category first, then the user's rules, then the model.

This is the order of authority the finance team expects:

1. **manual**: a category a person typed or corrected is kept as typed (spelling normalised
   through the taxonomy's synonyms, 差旅 → 差旅费) and never overwritten;
2. **rule**: where no person decided, the first of the team's rules that matches decides;
3. **model**: the rest is predicted by a model trained on the rows of 1 and 2 — never on
   its own earlier guesses — with its probability; doubtful guesses are marked for review.

How does a later run know that a filled category cell was a person's decision and not our
own earlier guess? The workbook keeps, beside the category, the source and the suggestion
we wrote (:func:`person_decided`). A cell whose source says ``rule``/``model`` and whose value
still equals our suggestion is ours and is classified again (rules may have changed); any
other filled cell — also one where a person overwrote our suggestion — is ``manual``.

Pure: pandas and the classification core only. The workflow reads and writes the workbook,
and stores the model (:mod:`xl_expense.io.model_store`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xl_expense.core.classify import (
    SOURCE_MANUAL,
    SOURCE_MODEL,
    SOURCE_RULE,
    TEXT_FEATURES,
    NotEnoughLabels,
    TrainingResult,
    predict_categories,
    train_classifier,
)
from xl_expense.core.classify_rules import Rule, apply_rules
from xl_expense.core.taxonomy import (
    Taxonomy,
    default_taxonomy,
    fold_name,
    normalize_categories,
)

#: Columns of :attr:`LedgerClassification.table`, in the order they are written.
RESULT_COLUMNS = ("category", "confidence", "source", "rule", "suggested", "review")


@dataclass
class LedgerClassification:
    """The outcome of one classification run over a ledger.

    ``table`` is indexed like the ledger with :data:`RESULT_COLUMNS`: the category, its
    confidence (1.0 for manual and rule rows), its source, the rule that matched, our
    suggestion (what we wrote; empty for manual rows) and the review flag. ``training`` is
    None when no model could be trained (``note`` says why) or none was needed.
    """

    table: pd.DataFrame
    training: TrainingResult | None = None
    model_reused: bool = False
    unknown_categories: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def counts(self) -> pd.DataFrame:
        """Rows per category and source (columns manual/rule/model/total), largest first."""
        return classification_counts(self.table)

    @property
    def review_rows(self) -> pd.DataFrame:
        return self.table[self.table["review"]]


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _text_list(values: pd.Series) -> list[str]:
    """``_text(values).tolist()`` in one plain-Python pass (what pandas' string methods call
    per value anyway, without their overhead per call)."""
    array = values.to_numpy(dtype=object)
    return ["" if missing else str(value).strip() for value, missing in zip(array, pd.isna(array))]


def person_decided(existing: pd.Series, prior_source: pd.Series | None = None,
                   prior_suggested: pd.Series | None = None) -> pd.Series:
    """True where the category cell holds a person's decision (see the module docstring).

    ``prior_source``/``prior_suggested`` are the source and suggestion columns an earlier run
    wrote (None when the ledger has none: then every filled category is a person's).
    """
    filled = pd.Series(np.array([text != "" for text in _text_list(existing)], dtype=bool),
                       index=existing.index, name=existing.name)
    if prior_source is None:
        return filled
    source = _text(prior_source.reindex(existing.index)).str.lower()
    suggested = (_text(prior_suggested.reindex(existing.index)) if prior_suggested is not None
                 else pd.Series("", index=existing.index))
    ours = source.isin([SOURCE_RULE, SOURCE_MODEL]).to_numpy().copy()
    ours[ours] = _folded(_text(existing)[ours]) == _folded(suggested[ours])
    return filled & ~pd.Series(ours, index=existing.index)


def _folded(values: pd.Series) -> np.ndarray:
    """:func:`fold_name` of each value, computed once per distinct value (ledgers repeat them)."""
    codes, uniques = pd.factorize(values)
    folded = np.array([fold_name(u) for u in uniques] + [""], dtype=object)
    return folded[codes]


def label_rows(ledger: pd.DataFrame, *, rules: tuple[Rule, ...] = (), taxonomy: Taxonomy | None = None,
               prior_source: pd.Series | None = None, prior_suggested: pd.Series | None = None
               ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Steps 1 and 2: the manual and rule categories; other rows are left empty.

    Returns the partial result table and the manual categories the taxonomy does not know
    (value → rows), which the report lists so a typo does not quietly become a category.
    """
    taxonomy = taxonomy or default_taxonomy()
    index = ledger.index
    existing = ledger["category"] if "category" in ledger.columns else pd.Series(None, index=index, dtype=object)
    normalized, unknown = normalize_categories(existing, taxonomy)
    manual = person_decided(existing, prior_source, prior_suggested).to_numpy()
    # Filled as numpy arrays, then one DataFrame: a .loc assignment per column and step costs
    # more than the labelling itself on the thousand-row ledgers of a batch.
    # Empty cells hold NaN (what pd.Series(None, index=…, dtype=object) has always given here).
    n = len(index)
    category = np.full(n, np.nan, dtype=object)
    confidence = np.full(n, np.nan, dtype="float64")
    source = np.full(n, np.nan, dtype=object)
    rule = np.full(n, np.nan, dtype=object)
    suggested = np.full(n, np.nan, dtype=object)
    category[manual] = normalized.to_numpy(dtype=object)[manual]
    confidence[manual] = 1.0
    source[manual] = SOURCE_MANUAL
    if rules:
        hits = apply_rules(ledger, rules, taxonomy)
        hit_category = hits["category"].to_numpy(dtype=object)
        by_rule = (~manual) & hits["category"].notna().to_numpy()
        category[by_rule] = hit_category[by_rule]
        suggested[by_rule] = hit_category[by_rule]
        rule[by_rule] = hits["rule"].to_numpy(dtype=object)[by_rule]
        confidence[by_rule] = 1.0
        source[by_rule] = SOURCE_RULE
    table = pd.DataFrame({
        "category": pd.Series(category, index=index, dtype=object),
        "confidence": pd.Series(confidence, index=index, dtype="float64"),
        "source": pd.Series(source, index=index, dtype=object),
        "rule": pd.Series(rule, index=index, dtype=object),
        "suggested": pd.Series(suggested, index=index, dtype=object),
        "review": pd.Series(np.zeros(n, dtype=bool), index=index, dtype=bool),
    })
    typo = unknown.to_numpy() & manual
    if not typo.any():
        return table, {}
    unknown_counts = normalized[typo].astype(str).value_counts()
    return table, {str(k): int(v) for k, v in unknown_counts.items()}


def training_rows(table: pd.DataFrame) -> np.ndarray:
    """Positions of the rows the model learns from: manual and rule rows, never model rows."""
    return np.flatnonzero(table["source"].isin([SOURCE_MANUAL, SOURCE_RULE]).to_numpy())


def training_fingerprint(ledger: pd.DataFrame, table: pd.DataFrame) -> str:
    """SHA-256 of what the model would learn from: the labelled rows' features and labels.

    A stored model whose fingerprint matches was trained on exactly these rows and is
    reused; any change (a new label, a corrected category, an edited description) retrains.
    """
    rows = training_rows(table)
    digest = hashlib.sha256()
    for name in (*TEXT_FEATURES, "amount"):
        if name in ledger.columns:
            values = ledger[name].iloc[rows]
            digest.update(name.encode())
            digest.update("\x1f".join(_text_list(values)).encode("utf-8"))
    digest.update("\x1e".join(_text_list(table["category"].iloc[rows])).encode("utf-8"))
    return digest.hexdigest()


def train_on_labels(ledger: pd.DataFrame, table: pd.DataFrame, *, random_state: int = 0,
                    cv: bool = True) -> TrainingResult:
    """Fit the classifier on the manual and rule rows (raises :class:`NotEnoughLabels`)."""
    rows = training_rows(table)
    return train_classifier(ledger.iloc[rows], table["category"].iloc[rows].astype(str),
                            random_state=random_state, cv=cv)


def fill_predictions(ledger: pd.DataFrame, table: pd.DataFrame, model, *, min_confidence: float = 0.6
                     ) -> pd.DataFrame:
    """Step 3: predict the rows steps 1–2 left empty; returns a new table.

    With ``model`` None (nothing to learn from) those rows stay empty and are all marked for
    review, so nothing unclassified passes unnoticed.
    """
    table = table.copy()
    todo = table["source"].isna().to_numpy()
    if not todo.any():
        return table
    if model is None:
        table.loc[todo, "review"] = True
        return table
    predicted = predict_categories(model, ledger[todo], min_confidence=min_confidence)
    table.loc[todo, "category"] = predicted["category"].to_numpy()
    table.loc[todo, "suggested"] = predicted["category"].to_numpy()
    table.loc[todo, "confidence"] = predicted["confidence"].to_numpy()
    table.loc[todo, "source"] = SOURCE_MODEL
    table.loc[todo, "review"] = predicted["review"].to_numpy()
    return table


def classify_ledger(ledger: pd.DataFrame, *, rules: tuple[Rule, ...] = (), taxonomy: Taxonomy | None = None,
                    prior_source: pd.Series | None = None, prior_suggested: pd.Series | None = None,
                    model=None, min_confidence: float = 0.6, random_state: int = 0,
                    cv: bool = True, labelled: tuple[pd.DataFrame, dict[str, int]] | None = None
                    ) -> LedgerClassification:
    """Classify every row of ``ledger``: manual, then rules, then a model (see module docstring).

    ``model``: a fitted classifier to reuse (the caller checked it was trained on these very
    labels with :func:`training_fingerprint`); None trains a new one on the labelled rows.
    When there is too little to learn from, the unlabelled rows stay empty and marked for
    review, and ``note`` says what to do. ``labelled``: :func:`label_rows`' result when the
    caller already computed it (to fingerprint the labels), so the rules run once.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    table, unknown = labelled or label_rows(ledger, rules=rules, taxonomy=taxonomy,
                                            prior_source=prior_source, prior_suggested=prior_suggested)
    training, note, reused = None, "", model is not None
    if model is None and table["source"].isna().any():
        try:
            training = train_on_labels(ledger, table, random_state=random_state, cv=cv)
            model = training.model
        except NotEnoughLabels as exc:
            note = exc.one_line()
    table = fill_predictions(ledger, table, model, min_confidence=min_confidence)
    return LedgerClassification(table=table, training=training, model_reused=reused and model is not None,
                                unknown_categories=unknown, note=note)


def classification_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Rows per category (index) and source (columns manual, rule, model, total), largest first.

    Rows left unclassified are counted under an empty category name.
    """
    category = _blank_missing(table["category"])
    source = _blank_missing(table["source"])
    if not len(table) or not all(isinstance(v, str) for v in (*category, *source)):
        return _crosstab_counts(category, source)
    # A crosstab by hand: sorted codes (as pd.crosstab sorts its keys) and one bincount; the
    # pandas crosstab costs milliseconds per call on a thousand rows, a batch makes thousands.
    cat_codes, categories = pd.factorize(category, sort=True)
    src_codes, sources = pd.factorize(source, sort=True)
    grid = np.bincount(cat_codes * len(sources) + src_codes,
                       minlength=len(categories) * len(sources)).reshape(len(categories), len(sources))
    where = {name: i for i, name in enumerate(sources)}
    columns = {name: (grid[:, where[name]] if name in where else np.zeros(len(categories), dtype=np.int64))
               for name in (SOURCE_MANUAL, SOURCE_RULE, SOURCE_MODEL)}
    columns["total"] = grid.sum(axis=1)  # includes rows left unclassified (source "")
    counts = pd.DataFrame({name: values.astype("int64") for name, values in columns.items()},
                          index=pd.Index(list(categories), name="category"))
    return counts.sort_values(["total"], ascending=False, kind="stable")


def _blank_missing(values: pd.Series) -> np.ndarray:
    """The values as an object array, missing ones as ''."""
    array = values.to_numpy(dtype=object, copy=True)
    array[pd.isna(array)] = ""
    return array


def _crosstab_counts(category: np.ndarray, source: np.ndarray) -> pd.DataFrame:
    """:func:`classification_counts` with pandas' crosstab: empty tables and non-text labels."""
    counts = pd.crosstab(pd.Series(category, dtype=object), pd.Series(source, dtype=object))
    for name in (SOURCE_MANUAL, SOURCE_RULE, SOURCE_MODEL):
        if name not in counts.columns:
            counts[name] = 0
    total = counts.sum(axis=1)  # includes rows left unclassified (source "")
    counts = counts[[SOURCE_MANUAL, SOURCE_RULE, SOURCE_MODEL]].astype("int64")
    counts["total"] = total.astype("int64")
    counts.index.name = "category"
    counts.columns.name = None
    return counts.sort_values(["total"], ascending=False, kind="stable")
