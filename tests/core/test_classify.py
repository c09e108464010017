"""The expense classifier: learns the user's labels, never overrides a person, says how sure it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import NotFittedError

from xl_expense.core.classify import (
    NotEnoughLabels,
    cross_validated_accuracy,
    labelled_rows,
    make_classifier,
    model_fingerprint,
    predict_categories,
    train_classifier,
)
from xl_expense.errors import XlExpenseError

# Mixed Chinese/English rows as sales assistants type them: (description, vendor, amount, category).
LABELLED = [
    ("滴滴出行 打车", "滴滴出行", 32.0, "差旅费"),
    ("Didi taxi to client", "DiDi", 45.0, "差旅费"),
    ("出差 高铁票 上海", "12306", 553.0, "差旅费"),
    ("train ticket Beijing", "12306", 626.0, "差旅费"),
    ("中国移动 话费", "中国移动", 100.0, "通讯费"),
    ("China Mobile phone bill", "China Mobile", 99.0, "通讯费"),
    ("手机话费充值", "中国联通", 50.0, "通讯费"),
    ("mobile data top-up", "China Unicom", 30.0, "通讯费"),
    ("宴请客户 晚餐", "海底捞", 1280.0, "客户招待"),
    ("client dinner", "Haidilao", 960.0, "客户招待"),
    ("招待客户 午餐", "全聚德", 860.0, "客户招待"),
    ("business lunch with customer", "Quanjude", 720.0, "客户招待"),
]


def _ledger(rows, with_category=True) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["description", "vendor", "amount", "category"][: len(rows[0])])
    frame["customer"] = None
    if not with_category and "category" in frame:
        frame = frame.drop(columns="category")
    return frame


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    return _ledger(LABELLED)


@pytest.fixture(scope="module")
def trained(labelled):
    return train_classifier(labelled)


NEW_ROWS = _ledger([
    ("打车 去客户公司", "滴滴出行", 28.0),
    ("taxi", "DiDi", 60.0),
    ("话费", "中国移动", 80.0),
    ("phone bill", "China Mobile", 120.0),
    ("客户 晚餐", "海底捞", 1500.0),
    ("dinner with client", "Haidilao", 880.0),
])


def test_mixed_chinese_english_rows_get_the_known_category(trained) -> None:
    result = predict_categories(trained.model, NEW_ROWS)
    assert result["category"].tolist() == ["差旅费", "差旅费", "通讯费", "通讯费", "客户招待", "客户招待"]
    assert result["source"].tolist() == ["model"] * 6
    assert result["confidence"].between(0, 1).all()
    assert list(result.columns) == ["category", "confidence", "source", "review"]
    assert result.index.equals(NEW_ROWS.index)


def labelled_frame() -> pd.DataFrame:
    return _ledger(LABELLED)


def test_training_result_reports_what_was_learned(trained) -> None:
    assert trained.classes == ("客户招待", "差旅费", "通讯费")
    assert trained.n_labelled == 12
    assert trained.skipped == {}
    # Four rows per category → 4 folds; a held-out row whose vendor appears nowhere else can miss.
    assert trained.cv_accuracy == cross_validated_accuracy(labelled_frame(), labelled_frame()["category"])
    assert 0.75 <= trained.cv_accuracy <= 1.0


def test_manual_category_is_never_overwritten(trained) -> None:
    # A person decided this taxi ride was client entertainment; the model would say 差旅费.
    existing = pd.Series(["客户招待", None, "通讯费", None, None, None], dtype=object)
    sources = pd.Series(["manual", None, "rule", None, None, None], dtype=object)
    result = predict_categories(trained.model, NEW_ROWS, existing=existing, sources=sources)
    assert result.loc[0].tolist() == ["客户招待", 1.0, "manual", False]
    assert result.loc[2].tolist() == ["通讯费", 1.0, "rule", False]
    assert result.loc[1, "source"] == "model"


def test_existing_category_without_a_source_counts_as_manual(trained) -> None:
    existing = pd.Series(["培训费", None, None, None, None, None], dtype=object)
    result = predict_categories(trained.model, NEW_ROWS, existing=existing)
    assert result.loc[0, ["category", "source"]].tolist() == ["培训费", "manual"]


def test_an_earlier_model_guess_is_predicted_again(trained) -> None:
    existing = pd.Series(["通讯费"] + [None] * 5, dtype=object)  # yesterday's wrong guess
    sources = pd.Series(["model"] + [None] * 5, dtype=object)
    result = predict_categories(trained.model, NEW_ROWS, existing=existing, sources=sources)
    assert result.loc[0, ["category", "source"]].tolist() == ["差旅费", "model"]


def test_review_flag_follows_the_confidence_threshold(trained) -> None:
    rows = pd.concat([NEW_ROWS, _ledger([("", "", np.nan)])], ignore_index=True)  # nothing to go on
    existing = pd.Series(["客户招待"] + [None] * 6, dtype=object)
    loose = predict_categories(trained.model, rows, existing=existing, min_confidence=0.0)
    strict = predict_categories(trained.model, rows, existing=existing, min_confidence=1.0)
    middle = predict_categories(trained.model, rows, existing=existing, min_confidence=0.6)
    assert not loose["review"].any()
    # A manual row is never sent for review, whatever the threshold.
    assert strict["review"].tolist() == [False] + [True] * 6
    model_rows = middle["source"].eq("model")
    assert middle["review"].tolist() == (model_rows & (middle["confidence"] < 0.6)).tolist()
    # The empty row has no evidence: it is the least sure prediction.
    assert middle["confidence"].iloc[-1] == middle.loc[model_rows, "confidence"].min()
    assert middle["confidence"].iloc[-1] < 0.6 and middle["review"].iloc[-1]


def test_invalid_threshold_is_refused(trained) -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        predict_categories(trained.model, NEW_ROWS, min_confidence=60)


def test_retraining_on_new_labels_changes_the_prediction(labelled, trained) -> None:
    parcel = _ledger([("顺丰快递 寄样品", "顺丰速运", 23.0)])
    before = predict_categories(trained.model, parcel)["category"].iloc[0]
    assert before != "物流费"  # the model has never seen the category
    more = pd.concat([labelled, _ledger([
        ("顺丰 快递费", "顺丰速运", 18.0, "物流费"),
        ("SF Express courier", "SF Express", 25.0, "物流费"),
        ("寄送合同 快递", "顺丰速运", 15.0, "物流费"),
    ])], ignore_index=True)
    retrained = train_classifier(more)
    assert predict_categories(retrained.model, parcel)["category"].iloc[0] == "物流费"
    assert model_fingerprint(retrained.model)["labels_sha256"] != model_fingerprint(trained.model)["labels_sha256"]


def test_rows_without_a_label_and_model_guesses_are_never_trained_on(labelled, trained) -> None:
    # Unlabelled rows and rows whose category the model wrote (deliberately absurd here).
    extra = _ledger([
        ("滴滴出行 打车", "滴滴出行", 30.0, "通讯费"),
        ("中国移动 话费", "中国移动", 100.0, "客户招待"),
        ("宴请客户", "海底捞", 900.0, None),
        ("taxi", "DiDi", 40.0, ""),
    ])
    ledger = pd.concat([labelled, extra], ignore_index=True)
    sources = pd.Series(["manual"] * 12 + ["model", "model", None, None], dtype=object)
    result = train_classifier(ledger, sources=sources)
    assert result.n_labelled == 12
    assert model_fingerprint(result.model) == model_fingerprint(trained.model)
    np.testing.assert_array_equal(result.model.predict_proba(NEW_ROWS), trained.model.predict_proba(NEW_ROWS))


def test_labelled_rows_mask() -> None:
    labels = pd.Series(["差旅费", None, " ", "通讯费", "办公费"], dtype=object)
    sources = pd.Series(["manual", None, None, "model", "rule"], dtype=object)
    assert labelled_rows(labels, sources).tolist() == [True, False, False, False, True]
    assert labelled_rows(labels, sources, exclude_sources=("model", "rule")).tolist() == [
        True, False, False, False, False]


def test_training_is_deterministic(labelled) -> None:
    first = train_classifier(labelled, cv=False).model.predict_proba(NEW_ROWS)
    second = train_classifier(labelled, cv=False).model.predict_proba(NEW_ROWS)
    np.testing.assert_array_equal(first, second)


def test_labels_can_be_a_series_with_the_categories(labelled) -> None:
    result = train_classifier(labelled.drop(columns="category"), labelled["category"], cv=False)
    assert result.n_labelled == 12


def test_too_few_labels_is_a_clear_error(labelled) -> None:
    one_category = labelled.assign(category=labelled["category"].where(labelled["category"].eq("差旅费")))
    with pytest.raises(NotEnoughLabels, match="only 1 category has at least 2 labelled rows") as info:
        train_classifier(one_category)
    assert isinstance(info.value, XlExpenseError)
    assert "fill the category column" in str(info.value)
    with pytest.raises(NotEnoughLabels, match="0 labelled rows in all"):
        train_classifier(labelled.assign(category=None))


def test_a_category_with_one_row_is_skipped_and_reported(labelled) -> None:
    ledger = pd.concat([labelled, _ledger([("培训 课程", "得到", 199.0, "培训费")])], ignore_index=True)
    result = train_classifier(ledger)
    assert result.skipped == {"培训费": 1}
    assert "培训费" not in result.classes
    assert result.n_labelled == 12


def test_cross_validated_accuracy_adapts_folds_and_needs_two_rows_per_class(labelled) -> None:
    # Every category has one telling word in every row: each of the 3 folds is classified right.
    easy = _ledger([(f"{word} {i}", None, 10.0 * i, category) for i in range(3)
                    for word, category in (("打车", "差旅费"), ("话费", "通讯费"), ("宴请", "客户招待"))])
    assert cross_validated_accuracy(easy, easy["category"]) == pytest.approx(1.0)
    single = pd.concat([labelled, _ledger([("培训", "得到", 99.0, "培训费")])], ignore_index=True)
    assert cross_validated_accuracy(single, single["category"]) is None


def test_ledger_without_optional_columns_still_works(labelled) -> None:
    bare = labelled[["vendor", "amount", "category"]]
    result = train_classifier(bare, cv=False)
    predicted = predict_categories(result.model, pd.DataFrame({"vendor": ["中国移动", "海底捞"]}))
    assert predicted["category"].tolist() == ["通讯费", "客户招待"]


def test_fingerprint_has_what_a_safe_loader_checks(trained) -> None:
    fingerprint = model_fingerprint(trained.model)
    assert fingerprint["sklearn_version"] == sklearn.__version__
    assert fingerprint["classes"] == ["客户招待", "差旅费", "通讯费"]
    assert fingerprint["feature_columns"] == ["description", "vendor", "customer", "amount"]
    assert fingerprint["trained_on"] == 12
    assert len(fingerprint["labels_sha256"]) == 64


def test_unfitted_model_is_refused() -> None:
    with pytest.raises(NotFittedError):
        predict_categories(make_classifier(), NEW_ROWS)
    with pytest.raises(NotFittedError):
        model_fingerprint(make_classifier())


def test_a_ledger_with_a_repeated_index_is_handled_by_position(labelled) -> None:
    # Concatenated sheets often keep each sheet's own 0..n index.
    doubled = pd.concat([labelled, labelled])
    result = train_classifier(doubled, cv=False)
    assert result.n_labelled == 24
    predicted = predict_categories(result.model, doubled, existing=doubled["category"])
    assert predicted["source"].eq("manual").all()
    assert predicted["category"].tolist() == doubled["category"].tolist()


# ------------------------------------------------------------------------------ fast paths

def _fnv1a(text: str) -> int:
    """The 64-bit FNV-1a hash of ``text``'s code points, written out the slow way."""
    h = 0xCBF29CE484222325
    for char in text:
        h = ((h ^ ord(char)) * 0x100000001B3) % 2**64
    return h


def _char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    padded = f" {' '.join(text.lower().split())} " if text.split() else ""
    return [padded[i:i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)]


CORPUS = ["滴滴出行 打车", "Didi  TAXI to client", "滴滴出行", "", "taxi", "China Mobile 话费", "滴滴出行"]


@pytest.mark.parametrize(("ngram_range", "min_df", "max_features"), [((1, 3), 1, None), ((2, 4), 2, None),
                                                                        ((1, 2), 1, 14), ((1, 2), 1, 4)])
def test_char_ngrams_equal_scikit_learn_tfidf_on_the_same_ngrams(ngram_range, min_df, max_features) -> None:
    """The vectorised n-grams are exactly scikit-learn's TF-IDF of the same n-grams, columns permuted."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from xl_expense.core.classify import CharNgrams

    ours = CharNgrams(ngram_range=ngram_range, min_df=min_df, max_features=max_features).fit(CORPUS)
    reference = TfidfVectorizer(analyzer=lambda t: _char_ngrams(t, *ngram_range), sublinear_tf=True,
                                min_df=min_df, max_features=max_features).fit(CORPUS)
    terms = reference.get_feature_names_out()
    assert len(ours.ngram_hashes_) == len(terms)
    column = pd.Index(ours.ngram_hashes_).get_indexer(np.array([_fnv1a(t) for t in terms], dtype=np.uint64))
    assert (column >= 0).all()
    new_text = ["滴滴 打车 taxi", "unknown words", "", "滴滴出行"]
    for texts in (CORPUS, new_text):
        expected = reference.transform(texts).toarray()
        got = ours.transform(texts).toarray()
        np.testing.assert_allclose(got[:, column], expected, rtol=1e-6, atol=1e-7)


def test_char_ngrams_with_nothing_to_learn_give_one_empty_column() -> None:
    from xl_expense.core.classify import CharNgrams

    empty = CharNgrams(min_df=2).fit(["", "", "a"])
    assert len(empty.ngram_hashes_) == 0
    assert empty.transform(["abc", ""]).shape == (2, 1)
    assert empty.transform(["abc", ""]).nnz == 0


def test_char_ngrams_vocabulary_does_not_depend_on_row_order() -> None:
    from xl_expense.core.classify import CharNgrams

    forward = CharNgrams((1, 3), max_features=20).fit(CORPUS)
    backward = CharNgrams((1, 3), max_features=20).fit(CORPUS[::-1])
    np.testing.assert_array_equal(forward.ngram_hashes_, backward.ngram_hashes_)
    np.testing.assert_array_equal(forward.idf_, backward.idf_)


def test_fast_prediction_path_agrees_with_the_plain_pipeline(trained) -> None:
    """``predict_categories`` scores each distinct vendor/description once; same answer as predict_proba."""
    from xl_expense.core import classify

    # Repeated rows, an unseen vendor, empty text, missing amount and a refund.
    rows = pd.concat([NEW_ROWS] * 3 + [_ledger([("", "", np.nan), ("退款 打车", "未知商户", -28.0)])],
                     ignore_index=True)
    proba = trained.model.predict_proba(rows)
    fast = classify._ColumnScorer.for_model(trained.model)
    assert fast is not None
    columns = trained.model.named_steps["columns"].transform(rows)
    np.testing.assert_allclose(fast.predict_proba(columns), proba, rtol=1e-5, atol=1e-6)
    result = predict_categories(trained.model, rows)
    assert result["category"].tolist() == list(trained.model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(result["confidence"], proba.max(axis=1), rtol=1e-5)


def test_fast_path_follows_a_refit_and_handles_two_classes(labelled) -> None:
    """The cached per-column weights are rebuilt when the model is refitted (new coef_)."""
    from xl_expense.core.classify import fit_classifier

    two = labelled[labelled["category"].isin(["差旅费", "通讯费"])]
    model = fit_classifier(make_classifier(), two, two["category"])
    first = predict_categories(model, NEW_ROWS)
    np.testing.assert_allclose(first["confidence"], model.predict_proba(NEW_ROWS).max(axis=1), rtol=1e-5)
    assert first["category"].tolist()[:4] == ["差旅费", "差旅费", "通讯费", "通讯费"]
    fit_classifier(model, labelled, labelled["category"])  # same object, three classes now
    again = predict_categories(model, NEW_ROWS)
    assert again["category"].tolist() == ["差旅费", "差旅费", "通讯费", "通讯费", "客户招待", "客户招待"]
    np.testing.assert_allclose(again["confidence"], model.predict_proba(NEW_ROWS).max(axis=1), rtol=1e-5)


def test_rare_categories_weigh_more_but_not_fully_balanced() -> None:
    from xl_expense.core.classify import BALANCE_POWER, category_weights

    weights = category_weights(["差旅费"] * 8 + ["培训费"] * 2)
    assert BALANCE_POWER == 0.3
    assert weights == pytest.approx({"差旅费": (10 / 16) ** 0.3, "培训费": (10 / 4) ** 0.3})
    assert category_weights(["a", "b", "a", "b"]) == {"a": 1.0, "b": 1.0}
    assert category_weights(["a"] * 9 + ["b"], power=1.0) == pytest.approx({"a": 10 / 18, "b": 5.0})


def test_fit_classifier_sets_the_category_weights_from_the_labels(labelled) -> None:
    from xl_expense.core.classify import category_weights, fit_classifier

    skewed = pd.concat([labelled, labelled[labelled["category"].eq("差旅费")]], ignore_index=True)
    model = fit_classifier(make_classifier(), skewed, skewed["category"])
    assert model.named_steps["classifier"].class_weight == category_weights(skewed["category"])
    assert model.named_steps["classifier"].class_weight["差旅费"] == pytest.approx((16 / 24) ** 0.3)  # 8 of 16 rows, 3 categories
    plain = fit_classifier(make_classifier(), skewed, skewed["category"], balance=False)
    assert plain.named_steps["classifier"].class_weight is None
    # Refitting the same object on other labels recomputes the weights (no stale categories).
    fit_classifier(model, labelled, labelled["category"])
    assert model.named_steps["classifier"].class_weight == {"差旅费": 1.0, "通讯费": 1.0, "客户招待": 1.0}


def test_fitted_model_keeps_one_copy_of_the_weights(labelled) -> None:
    from xl_expense.core.classify import fit_classifier

    model = fit_classifier(make_classifier(), labelled, labelled["category"])
    classifier = model.named_steps["classifier"]
    assert classifier._standard_coef is None  # averaged SGD's resume state: as large as coef_
    assert classifier.coef_.shape[0] == 3
    expected = predict_categories(model, NEW_ROWS)["category"].tolist()
    assert expected == ["差旅费", "差旅费", "通讯费", "通讯费", "客户招待", "客户招待"]


def test_account_codes_as_categories_are_weighted_and_learned(labelled) -> None:
    """scikit-learn looks categories that read as integers up by the integer: "6601" must still work."""
    codes = {"差旅费": "6601", "通讯费": "6602", "客户招待": "0066"}
    ledger = labelled.assign(category=labelled["category"].map(codes))
    ledger = pd.concat([ledger, ledger[ledger["category"].eq("6601")]], ignore_index=True)
    result = train_classifier(ledger)
    assert result.classes == ("0066", "6601", "6602")
    assert model_fingerprint(result.model)["classes"] == ["0066", "6601", "6602"]
    predicted = predict_categories(result.model, NEW_ROWS)["category"].tolist()
    assert predicted == ["6601", "6601", "6602", "6602", "0066", "0066"]
    assert result.model.named_steps["classifier"].class_weight == pytest.approx(
        {6601: (16 / 24) ** 0.3, 6602: (16 / 12) ** 0.3, 66: (16 / 12) ** 0.3})


def test_char_ngrams_chunks_long_and_missing_texts_like_short_ones(monkeypatch) -> None:
    """Chunking (bounded memory) does not change the features; a missing text has none."""
    from xl_expense.core.classify import CharNgrams

    texts = ["滴滴出行 打车" * 30, None, "taxi", "x", "China Mobile 话费" * 7, "", "taxi", np.nan]
    whole = CharNgrams((1, 4)).fit(texts)
    expected = whole.transform(texts).toarray()
    monkeypatch.setattr(CharNgrams, "_CHUNK_CELLS", 5)  # one or two texts per chunk
    chunked = CharNgrams((1, 4)).fit(texts)
    np.testing.assert_array_equal(chunked.ngram_hashes_, whole.ngram_hashes_)
    np.testing.assert_array_equal(chunked.transform(texts).toarray(), expected)
    assert not expected[[1, 5, 7]].any()  # None, "" and NaN
    np.testing.assert_array_equal(expected[2], expected[6])
