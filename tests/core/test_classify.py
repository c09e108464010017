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
