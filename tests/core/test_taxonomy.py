"""The category taxonomy: default names, synonyms folded onto one name, the Categories sheet."""

from __future__ import annotations

import pandas as pd
import pytest

from xl_expense.core import taxonomy as taxonomy_module
from xl_expense.core.taxonomy import (
    Category,
    Taxonomy,
    default_taxonomy,
    normalize_categories,
    taxonomy_from_rows,
)
from xl_expense.errors import SettingsError
from xl_expense.io.budget_template import DEFAULT_CATEGORIES


def test_default_taxonomy_is_the_budget_templates_plus_other() -> None:
    tax = default_taxonomy()
    assert tax.names == DEFAULT_CATEGORIES["zh"] + ("其他",)
    assert tuple(c.english for c in tax) == DEFAULT_CATEGORIES["en"] + ("Other",)
    assert tax.display("差旅费", "en") == "Travel"
    assert tax.display("差旅费", "zh") == "差旅费"
    assert tax.display("不存在", "en") == "不存在"


@pytest.mark.parametrize("typed, canonical", [
    ("差旅", "差旅费"), ("出差", "差旅费"), ("差旅费用", "差旅费"), ("交通住宿", "差旅费"),
    ("Travel", "差旅费"), ("ＴＲＡＶＥＬ", "差旅费"), (" travel ", "差旅费"), ("Business Travel", "差旅费"),
    ("招待", "客户招待"), ("业务招待", "客户招待"), ("餐费", "客户招待"), ("宴请", "客户招待"),
    ("话费", "通讯费"), ("电话费", "通讯费"), ("通信费", "通讯费"),
    ("快递", "物流费"), ("运费", "物流费"), ("Freight", "物流费"),
    ("After-sales", "售后服务"), ("after sales", "售后服务"), ("AFTERSALES", "售后服务"),
    ("Spare parts & repair", "备件维修"), ("其它", "其他"), ("Misc.", "其他"),
    ("差旅费", "差旅费"), ("差 旅 费", "差旅费"),
])
def test_synonyms_fold_onto_the_canonical_name(typed: str, canonical: str) -> None:
    assert default_taxonomy().canonical(typed) == canonical


def test_normalize_categories_maps_known_and_flags_unknown() -> None:
    values = pd.Series(["差旅", "Travel", None, "", "  ", "咨询费", 5010.0, "客户招待"], index=[10, 11, 12, 13, 14, 15, 16, 17],
                       dtype=object, name="category")
    normalized, unknown = normalize_categories(values)
    assert normalized.tolist() == ["差旅费", "差旅费", None, None, None, "咨询费", 5010.0, "客户招待"]
    assert unknown.tolist() == [False, False, False, False, False, True, True, False]
    assert normalized.index.tolist() == values.index.tolist()
    assert normalized.name == "category"
    assert normalized.dtype == object


def test_normalize_categories_folds_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = taxonomy_module.fold_name
    monkeypatch.setattr(taxonomy_module, "fold_name", lambda text: calls.append(text) or real(text))
    tax = default_taxonomy()  # lookup built before counting
    calls.clear()
    values = pd.Series(["差旅", "出差", "话费", None] * 50_000, dtype=object)
    normalized, unknown = normalize_categories(values, tax)
    assert len(calls) == 3
    assert normalized.value_counts().to_dict() == {"差旅费": 100_000, "通讯费": 50_000}
    assert not unknown.any()


def test_normalize_categories_accepts_the_string_dtype() -> None:
    normalized, unknown = normalize_categories(pd.Series(["出差", None, "x"], dtype="str"))
    assert normalized.tolist() == ["差旅费", None, "x"]
    assert unknown.tolist() == [False, False, True]


def test_a_spelling_under_two_categories_is_refused() -> None:
    with pytest.raises(SettingsError, match="'差旅' names two categories: '差旅费' and '交通费'"):
        Taxonomy((Category("差旅费", "Travel", ("差旅",)), Category("交通费", "", ("差旅",))))


def test_categories_sheet_in_chinese_inherits_default_synonyms() -> None:
    rows = [["类别", "英文", "同义词"],
            ["差旅费", "", ""],
            ["咨询费", "Consulting", "顾问费、咨询，advisory；外包咨询"],
            [None, None, None],
            ["客户招待", "Entertainment", ""]]
    tax = taxonomy_from_rows(rows)
    assert tax.names == ("差旅费", "咨询费", "客户招待")
    assert tax.display("差旅费", "en") == "Travel"          # English label inherited
    assert tax.display("客户招待", "en") == "Entertainment"   # the sheet's own label wins
    assert tax.canonical("出差") == "差旅费"                  # inherited synonym
    assert tax.canonical("advisory") == "咨询费"
    assert tax.canonical("外包咨询") == "咨询费"
    assert tax.canonical("顾问费") == "咨询费"
    assert tax.canonical("话费") is None                      # 通讯费 is not listed: the sheet decides


def test_categories_sheet_in_english_with_literal_base() -> None:
    rows = [["Category", "English", "Synonyms"], ["Travel", "", "trips, flights"], ["Meals", "", ""]]
    tax = taxonomy_from_rows(rows, base=Taxonomy(()))
    assert tax.names == ("Travel", "Meals")
    assert tax.canonical("TRIPS") == "Travel"
    assert tax.canonical("差旅") is None  # nothing inherited from an empty base


def test_two_rows_splitting_one_default_category_do_not_collide() -> None:
    tax = taxonomy_from_rows([["类别", "英文", "同义词"], ["交通费", "", ""], ["住宿费", "Lodging", "房费"]])
    assert tax.canonical("出差") == "交通费"  # the first row keeps the inherited spellings
    assert tax.canonical("房费") == "住宿费"


@pytest.mark.parametrize("rows, message", [
    ([["类别", "同义词"], ["差旅费", "出差"], ["出差补贴", "出差"]], r"类别 row 3: '出差' is already used by '差旅费'"),
    ([["类别", "同义词"], ["差旅费", ""], [None, "外出"]], r"类别 row 3: the category name is empty"),
    ([["名字", "说明"], ["差旅费", ""]], r"类别 row 1: no category header found"),
    ([["英文", "同义词"], ["Travel", "trip"]], r"类别 row 1: no category header found"),
    ([["类别"], [None]], r"lists no categories"),
    ([], r"sheet is empty"),
])
def test_bad_categories_sheet_names_the_row(rows: list, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        taxonomy_from_rows(rows)
    assert " — " in str(info.value)


def test_a_title_row_above_the_header_is_skipped() -> None:
    tax = taxonomy_from_rows([["费用类别表（2026）"], [], ["类别", "同义词"], ["差旅费", "外勤"]])
    assert tax.names == ("差旅费",) and tax.canonical("外勤") == "差旅费"


def test_first_row_offsets_the_reported_row() -> None:
    with pytest.raises(SettingsError, match=r"Categories row 7"):
        taxonomy_from_rows([["Category", "Synonyms"], ["Travel", "trip"], ["Trips", "trip"]],
                           first_row=5, sheet="Categories")
