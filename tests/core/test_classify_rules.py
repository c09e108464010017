"""The user's classification rules: reading them, checking them, applying them (first match wins)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from xl_expense.core.classify_rules import (
    DEFAULT_PRIORITY,
    Rule,
    _FoldedColumn,
    apply_rules,
    check_rules,
    fold_text,
    rules_from_rows,
    rules_from_toml,
)
from xl_expense.core.taxonomy import Category, Taxonomy
from xl_expense.errors import SettingsError


def _ledger(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"amount": [100.0] * n, "description": [None] * n, "vendor": [None] * n, "customer": [None] * n}
    base.update(columns)
    return pd.DataFrame({k: pd.Series(v, dtype=float if k == "amount" else object) for k, v in base.items()})


def _categories(ledger: pd.DataFrame, rules: list[Rule]) -> list:
    return apply_rules(ledger, rules)["category"].tolist()


# --- applying ---------------------------------------------------------------------------------

def test_lower_priority_number_wins_then_order_given() -> None:
    ledger = _ledger(description=["酒店 hotel", "酒店", "hotel", "其他"])
    rules = [Rule("hotel", "客户招待", priority=5, name="late"),
             Rule("酒店", "差旅费", priority=1, name="first"),
             Rule("hotel", "备件维修", priority=5, name="also-5")]
    out = apply_rules(ledger, rules)
    assert out["category"].tolist() == ["差旅费", "差旅费", "客户招待", None]
    assert out["rule"].tolist() == ["first", "first", "late", None]


def test_keyword_is_literal_and_re_prefix_is_a_regex() -> None:
    ledger = _ledger(description=["a.b", "axb", "订单12345", "订单ABC"])
    assert _categories(ledger, [Rule("a.b", "其他")]) == ["其他", None, None, None]
    assert _categories(ledger, [Rule("re:a.b", "其他")]) == ["其他", "其他", None, None]
    assert _categories(ledger, [Rule(r"re:订单\d{5}$", "物流费")]) == [None, None, "物流费", None]


def test_amount_range_is_inclusive_and_needs_an_amount() -> None:
    ledger = _ledger(description=["餐费"] * 6, amount=[99.99, 100.0, 300.0, 500.0, 500.01, np.nan])
    rules = [Rule("餐费", "客户招待", min_amount=100, max_amount=500)]
    assert _categories(ledger, rules) == [None, "客户招待", "客户招待", "客户招待", None, None]
    assert _categories(ledger, [Rule("餐费", "客户招待", min_amount=500)]) == [None, None, None, "客户招待", "客户招待", None]
    assert _categories(ledger, [Rule("餐费", "客户招待", max_amount=100)]) == ["客户招待", "客户招待", None, None, None, None]
    # without a range, a row without an amount still matches on text
    assert _categories(ledger, [Rule("餐费", "客户招待")]) == ["客户招待"] * 6


def test_field_specific_rule_looks_only_at_its_field_and_any_at_all_three() -> None:
    ledger = _ledger(description=["顺丰", None, None], vendor=[None, "顺丰速运", None], customer=[None, None, "顺丰集团"])
    assert _categories(ledger, [Rule("顺丰", "物流费", field="vendor")]) == [None, "物流费", None]
    assert _categories(ledger, [Rule("顺丰", "物流费", field="customer")]) == [None, None, "物流费"]
    assert _categories(ledger, [Rule("顺丰", "物流费", field="description")]) == ["物流费", None, None]
    assert _categories(ledger, [Rule("顺丰", "物流费")]) == ["物流费"] * 3


def test_matching_ignores_case_and_width_and_line_breaks() -> None:
    ledger = _ledger(description=["ＨＯＴＥＬ 住宿", "Hotel", "hotel\nroom 2", "hostel", "Ｒｏｏｍ１０１"])
    assert _categories(ledger, [Rule("hotel", "差旅费")]) == ["差旅费", "差旅费", "差旅费", None, None]
    assert _categories(ledger, [Rule("ＨＯＴＥＬ ROOM", "差旅费")]) == [None, None, "差旅费", None, None]
    assert _categories(ledger, [Rule(r"re:ROOM ?\d+", "差旅费")]) == [None, None, "差旅费", None, "差旅费"]


def test_mixed_chinese_and_english_text() -> None:
    ledger = _ledger(description=["拜访客户 dinner with 张总", "Taxi 打车去机场", "DHL 国际快递", "培训 training"])
    rules = [Rule("dinner", "客户招待"), Rule("打车", "差旅费"), Rule("re:dhl|快递", "物流费"), Rule("Training", "培训费")]
    out = apply_rules(ledger, rules)
    assert out["category"].tolist() == ["客户招待", "差旅费", "物流费", "培训费"]
    assert out["rule"].tolist() == ["rule 1", "rule 2", "rule 3", "rule 4"]


def test_rule_categories_are_normalised_through_the_taxonomy() -> None:
    out = apply_rules(_ledger(description=["出差 北京"]), [Rule("北京", "出差")])
    assert out["category"].tolist() == ["差旅费"]


def test_result_is_indexed_like_the_ledger_and_holds_none() -> None:
    ledger = _ledger(description=["hotel", "x"]).set_axis([7, 3])
    out = apply_rules(ledger, [Rule("hotel", "Travel")])
    assert out.index.tolist() == [7, 3]
    assert list(out.columns) == ["category", "rule"]
    assert out["category"].dtype == object
    assert out.loc[3, "category"] is None and out.loc[3, "rule"] is None


def test_missing_columns_count_as_empty() -> None:
    ledger = pd.DataFrame({"description": pd.Series(["hotel", "taxi"], dtype="str")})
    rules = [Rule("hotel", "差旅费", min_amount=0), Rule("taxi", "差旅费", field="vendor"), Rule("taxi", "其他")]
    assert apply_rules(ledger, rules)["category"].tolist() == [None, "其他"]
    assert apply_rules(ledger.iloc[:0], rules).empty


@pytest.mark.parametrize("pattern", [
    r"re:a\sb", r"re:[^x]+号", r"re:^b", r"re:a$", r"re:(?s)a.b", r"re:(?<=a)b", r"re:\Ab", r"re:x*",
    r"re:^(?!拜访)培训", r"re:b\b", r"re:\d+号", r"re:[a-z]+\d",
])
def test_regex_on_joined_values_equals_searching_each_value(pattern: str) -> None:
    """The one-scan shortcut never changes the answer, even for matches across cell borders."""
    values = ["a", "b", "ab", "a b", "ba", "b a", "x号", "12号", "a\nb", "培训", "拜访培训", "ab1", "", "号"]
    column = _FoldedColumn(pd.Series(values, dtype=object), len(values))
    compiled = re.compile(pattern[3:], re.IGNORECASE | re.MULTILINE)
    expected = [compiled.search(fold_text(v)) is not None for v in values]
    assert column.regex_hits(compiled).tolist() == expected


@pytest.mark.parametrize("text, folded", [
    ("  Hotel  ", "hotel"), ("\u3000ＨＯＴＥＬ\u3000住宿 ", "hotel 住宿"), ("", ""), (" ", ""),
    ("a\nb\r\n c", "a b c"), ("ﬁle", "file"), ("Ⅻ", "xii"), ("（１２０）", "(120)"),
])
def test_fold_text(text: str, folded: str) -> None:
    assert fold_text(text) == folded


def test_many_distinct_values_give_exact_answers() -> None:
    """150k distinct descriptions × 50 rules: the fast paths agree with a plain count.

    (Speed is measured by hand, not asserted here: 0.9 s on this machine for this case.)
    """
    n = 150_000
    rng = np.random.default_rng(0)
    words = np.array(["酒店住宿", "Hotel stay", "taxi 打车", "快递费", "话费充值", "培训课程", "备件更换"], dtype=object)
    desc = [f"{w} {i}号" for w, i in zip(words[rng.integers(0, len(words), n)], range(n))]
    amount = rng.gamma(2, 500, n)
    ledger = _ledger(description=desc, amount=amount.tolist(),
                     vendor=[f"供应商{i % 3000}" for i in range(n)], customer=[f"客户{i % 7000}" for i in range(n)])
    rules = [Rule(f"nomatch{i}", "其他", field=("description", "vendor", "customer", "any")[i % 4]) for i in range(35)]
    rules += [Rule(rf"re:nomatch\d+号{i}", "其他", field="any") for i in range(13)]
    rules += [Rule("re:[^a-z]+号99$", "其他"), Rule("酒店", "差旅费", min_amount=100)]
    out = apply_rules(ledger, rules)
    expected = np.array(["酒店" in d for d in desc]) & (amount >= 100)
    assert (out["category"].notna().to_numpy() == expected).all()
    assert set(out.loc[out["category"].notna(), "rule"]) == {"rule 50"}  # unnamed: by position


# --- reading and checking -----------------------------------------------------------------------

ZH_ROWS = [
    ["分类规则（按优先级）", None, None, None, None, None],
    ["字段", "关键词", "最小金额", "最大金额", "类别", "优先级"],
    ["摘要", "酒店", None, "3,000", "差旅", 2],
    ["供应商", "re:顺丰|京东物流", "", "", "快递", ""],
    [None, None, None, None, None, None],
    ["任意", 12306, 0, None, "Travel", 1.0],
]


def test_rules_sheet_with_chinese_headers() -> None:
    rules = rules_from_rows(ZH_ROWS[1:], first_row=2)
    assert [(r.field, r.pattern, r.min_amount, r.max_amount, r.category, r.priority, r.name) for r in rules] == [
        ("description", "酒店", None, 3000.0, "差旅费", 2, "R3"),
        ("vendor", "re:顺丰|京东物流", None, None, "物流费", DEFAULT_PRIORITY, "R4"),
        ("any", "12306", 0.0, None, "差旅费", 1, "R6"),
    ]


def test_a_title_row_above_the_header_is_skipped() -> None:
    assert [r.name for r in rules_from_rows(ZH_ROWS)] == ["R3", "R4", "R6"]
    assert rules_from_rows([]) == () and rules_from_rows([[None, None]]) == ()


@pytest.mark.parametrize("rows, message", [
    ([["字段", "关键词", "金额"], ["摘要", "酒店", 1]], r"分类规则 row 1: the header lacks category"),
    ([["酒店", "差旅费"], ["出租车", "差旅费"]], r"分类规则 row 1: no header row found"),
])
def test_missing_rules_header(rows: list, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        rules_from_rows(rows)


def test_rules_sheet_with_english_headers_in_another_order() -> None:
    rows = [["Category", "Pattern", "Field", "Priority", "Min", "Max", "Name"],
            ["Customer hospitality", "dinner", "Description", 3, 50, 800, "dinners"],
            ["Logistics", "re:^dhl", "vendor", None, None, None, None]]
    rules = rules_from_rows(rows, sheet="Rules")
    assert [(r.name, r.category, r.field, r.priority, r.min_amount, r.max_amount) for r in rules] == [
        ("dinners", "客户招待", "description", 3, 50.0, 800.0), ("R3", "物流费", "vendor", 100, None, None)]
    out = apply_rules(_ledger(description=["Dinner", "dinner"], vendor=["x", "DHL Express"], amount=[100.0, 900.0]), rules)
    assert out["rule"].tolist() == ["dinners", "R3"]


@pytest.mark.parametrize("row, message", [
    (["摘要", "re:(酒店", None, None, "差旅费", 1], r"分类规则 row 5: invalid regular expression 're:\(酒店'"),
    (["摘要", "酒店", None, None, "咨询费", 1], r"分类规则 row 5: category '咨询费' is not in the category list"),
    (["金额", "酒店", None, None, "差旅费", 1], r"分类规则 row 5: unknown field '金额'"),
    (["摘要", "酒店", 500, 100, "差旅费", 1], r"分类规则 row 5: minimum amount 500 is above maximum 100"),
    (["摘要", "酒店", "五百", None, "差旅费", 1], r"分类规则 row 5: minimum amount '五百' is not a number"),
    (["摘要", "酒店", None, None, "差旅费", 1.5], r"分类规则 row 5: priority 1.5 is not a whole number"),
    (["摘要", None, None, None, "差旅费", 1], r"分类规则 row 5: the pattern is empty"),
    (["摘要", "re:", None, None, "差旅费", 1], r"分类规则 row 5: the pattern is empty"),
])
def test_bad_rule_names_its_row_and_the_fix(row: list, message: str) -> None:
    rows = [["字段", "关键词", "最小金额", "最大金额", "类别", "优先级"], ["摘要", "出租车", None, None, "差旅费", 1], row]
    with pytest.raises(SettingsError, match=message) as info:
        rules_from_rows(rows, first_row=3)
    assert " — " in str(info.value)


def test_unknown_category_lists_the_known_ones_of_a_custom_taxonomy() -> None:
    tax = Taxonomy((Category("Travel", "", ("trip",)), Category("Meals")))
    assert rules_from_rows([["pattern", "category"], ["uber", "TRIP"]], tax)[0].category == "Travel"
    with pytest.raises(SettingsError, match=r"category '差旅费' is not in the category list — use one of: Travel, Meals"):
        rules_from_rows([["pattern", "category"], ["uber", "差旅费"]], tax)


def test_rules_from_toml() -> None:
    config = {"rules": [{"pattern": "hotel", "category": "差旅", "field": "description", "max": 3000},
                        {"name": "快递", "pattern": "re:顺丰", "category": "Logistics", "priority": 1, "min_amount": 0}]}
    rules = rules_from_toml(config)
    assert [(r.name, r.category, r.field, r.priority, r.min_amount, r.max_amount, r.origin) for r in rules] == [
        ("rule 1", "差旅费", "description", 100, None, 3000.0, "[[rules]] #1"),
        ("快递", "物流费", "any", 1, 0.0, None, "[[rules]] #2")]
    assert rules_from_toml({}) == ()


@pytest.mark.parametrize("config, message", [
    ({"rules": [{"pattern": "x", "catgory": "差旅费"}]}, r"\[\[rules\]\] #1: unknown key\(s\) catgory"),
    ({"rules": [{"pattern": "x", "category": "差旅费"}, {"pattern": "re:[", "category": "差旅费"}]},
     r"\[\[rules\]\] #2: invalid regular expression"),
    ({"rules": {"pattern": "x"}}, r"must be an array of tables"),
])
def test_bad_toml_rules(config: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        rules_from_toml(config)


def test_check_rules_names_unnamed_rules_by_position() -> None:
    rules = check_rules([Rule("a", "其他"), Rule("b", "其他", name="mine")])
    assert [r.name for r in rules] == ["rule 1", "mine"]
    with pytest.raises(SettingsError, match=r"rule 2: unknown field 'amount'"):
        check_rules([Rule("a", "其他"), Rule("b", "其他", field="amount")])


def test_a_regex_that_is_a_list_of_words_matches_like_one() -> None:
    """``re:酒店|Hotel`` runs as keyword scans; the answer is the regex's own."""
    ledger = _ledger(description=["如家酒店", "HOTEL x", "hostel", "a  b", "宾馆", None])
    assert _categories(ledger, [Rule("re:酒店|Hotel|宾馆", "差旅费")]) == ["差旅费", "差旅费", None, None, "差旅费", None]
    assert _categories(ledger, [Rule("re:a b|zz", "其他")]) == [None, None, None, "其他", None, None]
    assert _categories(ledger, [Rule("re:a  b|zz", "其他")]) == [None] * 6  # two spaces never survive folding


def _naive(ledger: pd.DataFrame, rules: list[Rule]) -> list:
    """Reference: the documented semantics, one row and one rule at a time."""
    checked = check_rules(rules)
    ordered = sorted(checked, key=lambda r: r.priority)
    out = []
    for _, row in ledger.iterrows():
        found = None
        for rule in ordered:
            fields = ("description", "vendor", "customer") if rule.field == "any" else (rule.field,)
            texts = [fold_text(row[f]) for f in fields if isinstance(row[f], str)]
            if rule.is_regex:
                rx = re.compile(rule.pattern[3:], re.IGNORECASE)
                text_ok = any(rx.search(t) for t in texts)
            else:
                text_ok = any(fold_text(rule.pattern) in t for t in texts)
            amount = row["amount"]
            low = -np.inf if rule.min_amount is None else rule.min_amount
            high = np.inf if rule.max_amount is None else rule.max_amount
            ranged = rule.min_amount is not None or rule.max_amount is not None
            amount_ok = not ranged or (not np.isnan(amount) and low <= amount <= high)
            if text_ok and amount_ok:
                found = rule.category
                break
        out.append(found)
    return out


def test_random_ledgers_agree_with_a_row_by_row_reference() -> None:
    rng = np.random.default_rng(7)
    vocab = ["酒店", "Hotel", "ＨＯＴＥＬ", "taxi", "打车", "快递", "顺丰", "a b", "12号", " ", "\n", "x"]
    def text() -> str | None:
        return None if rng.random() < 0.15 else "".join(rng.choice(vocab, size=rng.integers(1, 4)))
    n = 300
    ledger = _ledger(description=[text() for _ in range(n)], vendor=[text() for _ in range(n)],
                     customer=[text() for _ in range(n)],
                     amount=[np.nan if rng.random() < 0.1 else float(rng.integers(0, 1000)) for _ in range(n)])
    patterns = ["hotel", "打车", "re:顺丰|快递", r"re:\d+号", r"re:a\sb", "re:^x", "re:x$", "re:[^a-z]+车", "A B",
                "re:(?<=酒)店", "TAXI"]
    categories = ["差旅费", "物流费", "其他", "客户招待"]
    rules = [Rule(p, categories[i % 4], field=("description", "vendor", "customer", "any")[int(rng.integers(0, 4))],
                  priority=int(rng.integers(1, 4)),
                  min_amount=float(rng.integers(0, 500)) if rng.random() < 0.3 else None,
                  max_amount=float(rng.integers(500, 1000)) if rng.random() < 0.3 else None)
             for i, p in enumerate(patterns)]
    assert apply_rules(ledger, rules)["category"].tolist() == _naive(ledger, rules)
