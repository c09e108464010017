"""Categories and rules from the workbook's sheets (zh/en), the [classify] TOML table, or defaults."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from xl_expense.core.taxonomy import default_taxonomy
from xl_expense.errors import SettingsError
from xl_expense.io.classify_config import (
    ClassifyConfig,
    read_classify_config,
    taxonomy_from_toml,
)
from xl_expense.io.settings_io import load_settings

LEDGER = [["日期", "支出对象", "摘要", "金额", "费用类别"], ["2024-01-05", "滴滴出行", "打车去客户", 35, "差旅费"]]

ZH_CATEGORIES = [["类别", "英文", "同义词"],
                 ["差旅费", "Travel", "出差、交通费"],
                 ["客户招待", "", "宴请,招待"],
                 ["备件维修", "Spare parts", ""]]
ZH_RULES = [["分类规则（按优先级）"],  # a title row above the header
            ["字段", "关键词", "最小金额", "最大金额", "类别", "优先级", "规则名称"],
            ["供应商", "滴滴", None, None, "出差", 1, "打车"],
            ["摘要", "re:宴请|晚宴", 500, None, "客户招待", 2, None]]
EN_CATEGORIES = [["Category", "English", "Synonyms"], ["Travel expenses", "", "trip; taxi fares"],
                 ["Hospitality", "", "dinner"]]
EN_RULES = [["Field", "Pattern", "Min", "Max", "Category", "Priority"], ["vendor", "Uber", None, None, "trip", 1]]


def _book(path: Path, sheets: dict[str, list[list]]) -> Path:
    """A workbook whose first sheet is a small ledger, then ``sheets`` in order."""
    book = openpyxl.Workbook()
    book.active.title = "明细"
    for row in LEDGER:
        book.active.append(row)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def _toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


TEAM_TOML = """
[audit]
approval_limit = 3000

[classify.categories]
"差旅费" = ["出差", "差旅"]
"客户招待" = { english = "Hospitality", synonyms = "招待、宴请" }
"通讯费" = "话费"

[[classify.rules]]
pattern = "滴滴"
field = "vendor"
category = "出差"
priority = 1

[[classify.rules]]
pattern = "re:话费|流量"
category = "通讯费"
name = "phone"
"""


# ------------------------------------------------------------------ sheets

def test_chinese_sheets(tmp_path: Path) -> None:
    book = _book(tmp_path / "台账.xlsx", {"类别": ZH_CATEGORIES, "分类规则": ZH_RULES})
    config = read_classify_config(book)
    assert config.taxonomy.names == ("差旅费", "客户招待", "备件维修")
    assert config.taxonomy.canonical("交通费") == "差旅费"
    assert config.taxonomy.canonical("出差费") == "差旅费"  # a default synonym is kept for a listed category
    assert config.taxonomy.canonical("宴请") == "客户招待"
    assert config.taxonomy.get("客户招待").english == "Customer hospitality"  # blank → the default's
    assert config.taxonomy.canonical("通讯费") is None  # not listed: the sheet decides which exist
    assert [(r.name, r.field, r.pattern, r.category, r.min_amount, r.priority) for r in config.rules] == [
        ("打车", "vendor", "滴滴", "差旅费", None, 1),
        ("R4", "description", "re:宴请|晚宴", "客户招待", 500.0, 2)]
    assert config.rules[1].origin == "分类规则 row 4"
    assert config.sources == {"taxonomy": "sheet:类别", "rules": "sheet:分类规则"}


def test_english_sheets_any_case(tmp_path: Path) -> None:
    book = _book(tmp_path / "ledger.xlsx", {"categories": EN_CATEGORIES, " RULES": EN_RULES})
    config = read_classify_config(book)
    assert config.taxonomy.names == ("Travel expenses", "Hospitality")
    assert config.taxonomy.canonical("Taxi fares") == "Travel expenses"
    assert [(r.pattern, r.category) for r in config.rules] == [("Uber", "Travel expenses")]
    assert config.sources == {"taxonomy": "sheet:categories", "rules": "sheet: RULES"}


def test_no_sheets_no_config_gives_defaults(tmp_path: Path) -> None:
    config = read_classify_config(_book(tmp_path / "plain.xlsx", {}))
    assert config == ClassifyConfig(default_taxonomy(), (), {"taxonomy": "defaults", "rules": "none"})


def test_csv_gives_defaults(tmp_path: Path) -> None:
    csv = tmp_path / "ledger.csv"
    csv.write_text("日期,支出对象,摘要,金额,费用类别\n2024-01-05,滴滴出行,打车,35,\n", encoding="utf-8")
    config = read_classify_config(csv)
    assert config.taxonomy == default_taxonomy() and config.rules == ()
    assert config.sources == {"taxonomy": "defaults", "rules": "none"}


def test_rules_sheet_alone_is_checked_against_the_default_taxonomy(tmp_path: Path) -> None:
    book = _book(tmp_path / "b.xlsx", {"分类规则": [["关键词", "类别"], ["话费", "通讯"]]})
    config = read_classify_config(book)
    assert config.rules[0].category == "通讯费"
    assert config.sources == {"taxonomy": "defaults", "rules": "sheet:分类规则"}


def test_empty_rules_sheet_means_no_rules(tmp_path: Path) -> None:
    book = _book(tmp_path / "b.xlsx", {"Rules": [["Pattern", "Category"]]})
    config = read_classify_config(book, _toml(tmp_path / "team.toml", TEAM_TOML))
    assert config.rules == ()
    assert config.sources["rules"] == "sheet:Rules"


def test_bad_rule_row_names_file_sheet_and_row(tmp_path: Path) -> None:
    rows = [["字段", "关键词", "类别"], ["供应商", "滴滴", "差旅费"], ["摘要", "re:(宴请", "客户招待"]]
    book = _book(tmp_path / "台账.xlsx", {"分类规则": rows})
    with pytest.raises(SettingsError) as info:
        read_classify_config(book)
    assert info.value.path == str(book)
    assert str(info.value).startswith(f"{book}: 分类规则 row 3: invalid regular expression 're:(宴请'")


def test_unknown_category_in_rule_names_row(tmp_path: Path) -> None:
    book = _book(tmp_path / "b.xlsx", {"Categories": EN_CATEGORIES, "Rules": [["Pattern", "Category"],
                                                                              ["hotel", "Lodging"]]})
    with pytest.raises(SettingsError) as info:
        read_classify_config(book)
    assert info.value.what == "Rules row 2: category 'Lodging' is not in the category list"
    assert info.value.path == str(book)


def test_bad_category_row_names_file_sheet_and_row(tmp_path: Path) -> None:
    rows = [["类别", "同义词"], ["差旅费", "出差"], ["", "招待"]]
    book = _book(tmp_path / "b.xlsx", {"类别": rows})
    with pytest.raises(SettingsError) as info:
        read_classify_config(book)
    assert str(info.value) == (f"{book}: 类别 row 3: the category name is empty — "
                               "type the category name in the first column or delete the row")


# ------------------------------------------------------------------ TOML and precedence

def test_toml_categories_and_rules(tmp_path: Path) -> None:
    toml = _toml(tmp_path / "team.toml", TEAM_TOML)
    config = read_classify_config(_book(tmp_path / "b.xlsx", {}), toml)
    assert config.taxonomy.names == ("差旅费", "客户招待", "通讯费")
    assert config.taxonomy.get("客户招待").english == "Hospitality"
    assert config.taxonomy.canonical("宴请") == "客户招待"
    assert config.taxonomy.canonical("话费") == "通讯费"
    assert [(r.name, r.field, r.category, r.priority) for r in config.rules] == [
        ("rule 1", "vendor", "差旅费", 1), ("phone", "any", "通讯费", 100)]
    assert config.sources == {"taxonomy": "config:team.toml", "rules": "config:team.toml"}


def test_toml_array_of_category_tables(tmp_path: Path) -> None:
    toml = _toml(tmp_path / "t.toml", '[[classify.categories]]\nname = "Travel"\nsynonyms = ["trip"]\n'
                                      '[[classify.categories]]\nname = "Meals"\nenglish = "Meals"\n')
    config = read_classify_config(tmp_path / "ledger.csv", toml)
    assert config.taxonomy.names == ("Travel", "Meals")  # the name given is the canonical one…
    assert config.taxonomy.canonical("trip") == "Travel"
    assert config.taxonomy.canonical("差旅费") == "Travel"  # …and the default 差旅费's spellings join it


def test_sheets_win_over_toml_part_by_part(tmp_path: Path) -> None:
    """A Categories sheet beats [classify.categories]; with no Rules sheet the TOML rules apply,
    checked against the sheet's categories."""
    toml = _toml(tmp_path / "team.toml", TEAM_TOML.replace('category = "通讯费"', 'category = "差旅费"'))
    book = _book(tmp_path / "b.xlsx", {"类别": ZH_CATEGORIES})
    config = read_classify_config(book, toml)
    assert config.taxonomy.names == ("差旅费", "客户招待", "备件维修")
    assert [(r.pattern, r.category) for r in config.rules] == [("滴滴", "差旅费"), ("re:话费|流量", "差旅费")]
    assert config.sources == {"taxonomy": "sheet:类别", "rules": "config:team.toml"}

    both = _book(tmp_path / "c.xlsx", {"类别": ZH_CATEGORIES, "分类规则": ZH_RULES})
    assert read_classify_config(both, toml).sources == {"taxonomy": "sheet:类别", "rules": "sheet:分类规则"}


def test_toml_rule_checked_against_sheet_taxonomy_names_toml_entry(tmp_path: Path) -> None:
    toml = _toml(tmp_path / "team.toml", TEAM_TOML)  # its 2nd rule says 通讯费, unknown to the sheet
    book = _book(tmp_path / "b.xlsx", {"类别": ZH_CATEGORIES})
    with pytest.raises(SettingsError) as info:
        read_classify_config(book, toml)
    assert info.value.what == "[[classify.rules]] #2: category '通讯费' is not in the category list"
    assert info.value.path == str(toml)


@pytest.mark.parametrize("text, message", [
    ('[classify]\nmin_confidance = 0.7\n', "unknown key(s) in [classify]: min_confidance"),
    ('classify = 3\n', "'classify' in the config file must be a table"),
    ('[classify.categories]\n"差旅费" = 3\n', "[classify.categories] 差旅费: synonyms must be text or a list of text"),
    ('[[classify.categories]]\nname = "A"\ncolour = "red"\n', "[classify.categories] row 1: unknown key(s) colour"),
    ('[classify.categories]\n', "[classify.categories] lists no categories"),
    ('[classify.categories]\n"差旅费" = ["出差"]\n"出差" = []\n', "[classify.categories] row 2: '出差' is already used by '差旅费'"),
    ('[classify]\nrules = { pattern = "x" }\n', "'classify.rules' in the config file must be an array of tables"),
    ('[[classify.rules]]\npattern = "x"\ncatgory = "差旅费"\n', "[[classify.rules]] #1: unknown key(s) catgory"),
])
def test_toml_errors_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    toml = _toml(tmp_path / "team.toml", text)
    with pytest.raises(SettingsError) as info:
        read_classify_config(tmp_path / "ledger.csv", toml)
    assert info.value.what == message
    assert info.value.path == str(toml)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        read_classify_config(tmp_path / "ledger.csv", tmp_path / "nope.toml")


def test_taxonomy_from_toml_directly() -> None:
    taxonomy = taxonomy_from_toml({"办公费": {"synonyms": ["文具"]}, "Other": []})
    assert taxonomy.names == ("办公费", "Other")
    assert taxonomy.canonical("文具") == "办公费" and taxonomy.canonical("杂费") == "Other"


def test_classify_table_does_not_break_the_audit_settings(tmp_path: Path) -> None:
    """One TOML file for both: the audit settings ignore [classify] (top-level or [audit] keys)."""
    toml = _toml(tmp_path / "team.toml", TEAM_TOML.replace("[audit]\n", ""))
    book = _book(tmp_path / "b.xlsx", {})
    settings, source = load_settings(book, toml)
    assert settings.approval_limit == 3000 and source["source"] == "config:team.toml"
    settings, _ = load_settings(book, _toml(tmp_path / "only.toml", '[[classify.rules]]\npattern = "x"\n'
                                                                    'category = "其他"\n'))
    assert settings.approval_limit == 5000
