"""The 分类报告/Classification sheet: what the classification run did, and what to check.

Blocks, top to bottom: the headline (rows by source, rows to review, the model and its
cross-validated accuracy on the user's own labels), rows per category and source, the review
list (each row linked to its ledger row, lowest confidence first), categories typed that the
taxonomy does not know, and the run record (version, input SHA-256, settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from xl_expense.io.audit_sheets import (
    _Cursor,
    _run_record_block,
    _table_block,
    sheet_reference,
)
from xl_expense.io.ledger_reader import Ledger
from xl_expense.io.sheet_model import Hyperlink, NewSheet
from xl_expense.io.sheet_xml import col_letter
from xl_expense.io.table_sheet import plain_cell

#: Both names of the sheet; a re-run replaces the sheet an earlier run wrote in either language.
SHEET_NAMES = {"zh": "分类报告", "en": "Classification"}
#: The review list is for reading; past this many rows the ledger's own filter on the
#: "needs review" column is the better tool, and the sheet says so.
REVIEW_LIST_MAX = 5_000

_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "费用分类报告", "headline": "概览", "rows": "费用行数", "manual": "人工", "rule": "规则",
        "model": "模型", "unclassified": "未分类", "review": "需复核行数", "min_confidence": "复核置信度阈值",
        "model_state": "模型状态", "trained": "本次训练", "reused": "沿用已存模型（标签未变）", "none": "无",
        "labelled": "训练样本行数", "cv_accuracy": "交叉验证准确率（用户标签）", "classes": "可预测类别数",
        "skipped": "样本不足未学习的类别", "note": "说明", "by_category": "各类别行数（按来源）",
        "category": "类别", "total": "合计", "review_list": "待复核清单（置信度从低到高）",
        "row": "行号", "date": "日期", "description": "摘要", "vendor": "供应商", "amount": "金额",
        "suggestion": "建议类别", "confidence": "置信度", "link": "链接", "go": "定位",
        "review_more": "另有 {n} 行需复核：在费用明细表按“需复核”列筛选。",
        "unknown": "类别表中没有的类别（可能是笔误）", "value": "填写值", "count": "行数",
        "rules": "分类规则条数", "model_file": "模型文件",
    },
    "en": {
        "title": "Expense classification", "headline": "Overview", "rows": "Expense rows", "manual": "Manual",
        "rule": "Rule", "model": "Model", "unclassified": "Unclassified", "review": "Rows to review",
        "min_confidence": "Review below confidence", "model_state": "Model status", "trained": "trained in this run",
        "reused": "stored model reused (labels unchanged)", "none": "none", "labelled": "Labelled rows trained on",
        "cv_accuracy": "Cross-validated accuracy (your labels)", "classes": "Categories it can predict",
        "skipped": "Categories with too few rows to learn", "note": "Note",
        "by_category": "Rows per category and source", "category": "Category", "total": "Total",
        "review_list": "Review list (lowest confidence first)", "row": "Row", "date": "Date",
        "description": "Description", "vendor": "Vendor", "amount": "Amount", "suggestion": "Suggestion",
        "confidence": "Confidence", "link": "Link", "go": "go to row",
        "review_more": "{n} more rows need review: filter the ledger on its 'Needs review' column.",
        "unknown": "Categories not in the Categories sheet (typos?)", "value": "Value typed", "count": "Rows",
        "rules": "Classification rules", "model_file": "Model file",
    },
}


def _t(key: str, lang: str) -> str:
    return _LABELS["en" if lang == "en" else "zh"][key]


def _headline(cur: _Cursor, table: pd.DataFrame, info: Mapping[str, Any], lang: str) -> None:
    cur.title(_t("headline", lang))
    source = table["source"]
    cur.pair(_t("rows", lang), len(table), "int")
    for key in ("manual", "rule", "model"):
        cur.pair(_t(key, lang), int(source.eq(key).sum()), "int")
    cur.pair(_t("unclassified", lang), int(source.isna().sum()), "int")
    cur.pair(_t("review", lang), int(table["review"].sum()), "int")
    cur.pair(_t("min_confidence", lang), float(info.get("min_confidence", 0.6)), "percent")
    cur.pair(_t("rules", lang), int(info.get("rules", 0)), "int")
    state = info.get("model_state", "none")
    cur.pair(_t("model_state", lang), _t(state if state in ("trained", "reused") else "none", lang))
    if info.get("model_file"):
        cur.pair(_t("model_file", lang), str(info["model_file"]))
    if info.get("labelled") is not None:
        cur.pair(_t("labelled", lang), int(info["labelled"]), "int")
    accuracy = info.get("cv_accuracy")
    cur.pair(_t("cv_accuracy", lang), float(accuracy) if accuracy is not None else "—",
             "percent" if accuracy is not None else None)
    if info.get("classes") is not None:
        cur.pair(_t("classes", lang), int(info["classes"]), "int")
    skipped = info.get("skipped") or {}
    if skipped:
        cur.pair(_t("skipped", lang), ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    if info.get("note"):
        cur.pair(_t("note", lang), str(info["note"]), "wrap")


def _counts_block(cur: _Cursor, counts: pd.DataFrame, display: Mapping[str, str], lang: str) -> None:
    header = [_t(k, lang) for k in ("category", "manual", "rule", "model", "total")]
    values = [[display.get(str(cat), str(cat)) if cat != "" else _t("unclassified", lang),
               int(r["manual"]), int(r["rule"]), int(r["model"]), int(r["total"])]
              for cat, r in counts.iterrows()]
    _table_block(cur, _t("by_category", lang), header, values, ["text", "int", "int", "int", "int"], lang)


def _review_block(cur: _Cursor, ledger: Ledger, table: pd.DataFrame, display: Mapping[str, str],
                  lang: str) -> list[Hyperlink]:
    review = table[table["review"]]
    order = review["confidence"].fillna(-1.0).sort_values(kind="stable").index
    shown = order[:REVIEW_LIST_MAX]
    df = ledger.df.loc[shown]
    rows = df["row"].to_numpy()
    columns = [c for c in ("date", "description", "vendor", "amount") if c in df.columns]
    values = []
    for i, idx in enumerate(shown):
        record = [int(rows[i]), *(plain_cell(df.at[idx, c]) for c in columns)]
        category = table.at[idx, "category"]
        record += [display.get(str(category), category) if category is not None else None,
                   plain_cell(table.at[idx, "confidence"]), _t("go", lang)]
        values.append(record)
    styles = [None, *({"date": "date", "amount": "money"}.get(c, "text") for c in columns), "text", "percent", "link"]
    header = [_t("row", lang), *(_t(c, lang) for c in columns), _t("suggestion", lang), _t("confidence", lang),
              _t("link", lang)]
    first = _table_block(cur, _t("review_list", lang), header, values, styles, lang)
    link_col = len(header)
    links = [Hyperlink(f"{col_letter(link_col)}{first + i}", f"{sheet_reference(ledger.sheet)}!A{int(r)}")
             for i, r in enumerate(rows)]
    if len(order) > REVIEW_LIST_MAX:
        cur.pair(_t("note", lang), _t("review_more", lang).format(n=len(order) - REVIEW_LIST_MAX), "wrap")
    return links


def build_classification_sheet(ledger: Ledger, table: pd.DataFrame, counts: pd.DataFrame, *,
                               info: Mapping[str, Any], unknown: Mapping[str, int],
                               display: Mapping[str, str] | None = None,
                               run_record: Mapping[str, Any] | None = None, lang: str = "zh") -> NewSheet:
    """The report sheet for one classification run.

    ``table`` is the per-row result (category, confidence, source, rule, suggested, review)
    indexed like ``ledger.df``; ``counts`` rows per category and source; ``info`` the
    headline values (model_state, labelled, cv_accuracy, classes, skipped, note,
    min_confidence, rules, model_file); ``display`` category name → label in ``lang``.
    """
    display = dict(display or {})
    cur = _Cursor()
    cur.title(_t("title", lang))
    cur.gap()
    _headline(cur, table, info, lang)
    cur.gap()
    _counts_block(cur, counts, display, lang)
    cur.gap()
    links = _review_block(cur, ledger, table, display, lang)
    cur.gap()
    if unknown:
        _table_block(cur, _t("unknown", lang), [_t("value", lang), _t("count", lang)],
                     [[k, int(v)] for k, v in unknown.items()], ["text", "int"], lang)
        cur.gap()
    if run_record:
        _run_record_block(cur, run_record, lang)
    return NewSheet(name=SHEET_NAMES["en" if lang == "en" else "zh"], blocks=cur.blocks,
                    col_widths={1: 30, 2: 14, 3: 30, 4: 22, 5: 14, 6: 14, 7: 10, 8: 10},
                    hyperlinks=links, freeze=None, tab_color="5B9BD5")
