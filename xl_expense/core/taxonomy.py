"""Expense categories (费用类别): the names a team agrees on, and the variants people type.

Shares, budgets and per-category limits only mean something when every row carries one of a
fixed set of names. Ledgers arrive with ``差旅``, ``出差``, ``差旅费用`` and ``Travel`` for the same
thing; a :class:`Taxonomy` folds all of them onto one canonical name before anything counts.

The default taxonomy is the ten categories of the budget template
(``xl_expense.io.budget_template.DEFAULT_CATEGORIES``, same zh and en names, same order, so a
classified ledger sums straight into the budget's SUMIFS) plus **其他 / Other**. 其他 is added
on purpose: a classifier needs somewhere to put the taxi receipt that fits nowhere, and a
finance reviewer would rather see "其他" in the review list than a wrong guess. It is last so
the budget's category order is unchanged. (The core cannot import the io module; a test keeps
the two lists equal.)

Synonyms are alternative *names of a category* — what someone types in the category column.
Words that merely appear in a description (酒店, hotel, 机票) are not synonyms: they are
classification rules (:mod:`xl_expense.core.classify_rules`), because "hotel" in a description
of a customer dinner at a hotel is hospitality, not travel.

Names are compared after folding (:func:`fold_name`): full-width → half-width, case, and
spaces, hyphens, underscores and dots removed, so ``'After-sales'``, ``'after sales'`` and
``'ＡＦＴＥＲＳＡＬＥＳ'`` are one name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from xl_expense.errors import SettingsError
from xl_expense.schema import normalize_header

#: Removed when comparing names: "after-sales" = "after sales" = "aftersales".
_NAME_NOISE = re.compile(r"[\s\-_·・.]+")
#: Separators in a synonyms cell: ASCII and full-width comma, 顿号, semicolons, line breaks.
_SYNONYM_SPLIT = re.compile(r"[,，、;；\n\r]+")


def fold_name(text: object) -> str:
    """Fold a category name for comparison (width, case, spaces and joiners removed)."""
    return _NAME_NOISE.sub("", normalize_header(text))


@dataclass(frozen=True)
class Category:
    """One category: its primary (canonical) name, English label and accepted variants."""

    #: The canonical name stored in the ledger (zh in the default taxonomy).
    name: str
    #: Label shown to English users; empty when the team has none.
    english: str = ""
    #: Other names typed for this category (compared folded).
    synonyms: tuple[str, ...] = ()

    def display(self, lang: str = "zh") -> str:
        """The label for ``lang``: the English name for "en" when there is one, else the name."""
        return self.english if lang == "en" and self.english else self.name

    def spellings(self) -> tuple[str, ...]:
        """Every name that means this category: primary, English, synonyms."""
        return tuple(s for s in (self.name, self.english, *self.synonyms) if s)


# The default sales-maintenance taxonomy. Order and the first two columns equal the budget
# template's DEFAULT_CATEGORIES; 其他 is the catch-all added for classification.
_DEFAULT: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("售后服务", "After-sales service",
     ("售后", "售后费", "售后服务费", "售后维护", "售后维护费", "维保服务",
      "after-sales", "after sales", "aftersales", "after-sales services", "after sales support")),
    ("技术支持", "Technical support",
     ("技术服务", "技术支持费", "技术服务费", "技术咨询",
      "tech support", "technical services", "technical service", "support")),
    ("备件维修", "Spare parts & repair",
     ("备件", "备品备件", "备件费", "配件", "维修", "维修费", "维修费用", "备件及维修",
      "spare parts", "spare parts and repair", "parts & repair", "parts and repair", "parts",
      "repair", "repairs", "maintenance parts")),
    ("差旅费", "Travel",
     ("差旅", "出差", "出差费", "差旅费用", "交通住宿", "交通住宿费", "交通费", "住宿费",
      "travel expense", "travel expenses", "travelling", "traveling", "business travel")),
    ("客户招待", "Customer hospitality",
     ("招待", "招待费", "业务招待", "业务招待费", "客户招待费", "餐费", "宴请", "接待费",
      "hospitality", "entertainment", "client entertainment", "customer entertainment",
      "business entertainment", "meals", "client hospitality")),
    ("通讯费", "Communication",
     ("通讯", "通信", "通信费", "通讯费用", "话费", "电话费", "手机费",
      "communications", "telecom", "telecommunications", "phone", "telephone", "mobile phone")),
    ("培训费", "Training",
     ("培训", "培训费用", "教育培训", "training fees", "training expenses", "courses")),
    ("市场活动", "Marketing events",
     ("市场活动费", "市场推广", "市场推广费", "推广费", "市场费", "会展", "展会", "会展费", "活动费",
      "marketing", "marketing event", "events", "promotion", "trade shows")),
    ("物流费", "Logistics",
     ("物流", "快递", "快递费", "运费", "运输费", "邮寄费", "物流运输",
      "shipping", "freight", "courier", "delivery", "postage")),
    ("办公费", "Office",
     ("办公", "办公用品", "办公费用", "office supplies", "office expenses", "stationery")),
    ("其他", "Other",
     ("其它", "其他费用", "其它费用", "杂费", "others", "misc", "miscellaneous", "sundry")),
)


@dataclass(frozen=True)
class Taxonomy:
    """The categories of one team, in display order. Immutable; build a new one to change it."""

    categories: tuple[Category, ...]

    def __post_init__(self) -> None:
        # Build the lookup now so a contradictory taxonomy fails where it is made, not later
        # when the first ledger is normalised.
        _ = self.lookup

    # -- queries ------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical names, in order."""
        return tuple(c.name for c in self.categories)

    @cached_property
    def lookup(self) -> dict[str, str]:
        """Folded spelling → canonical name, for every name, English label and synonym."""
        found: dict[str, str] = {}
        for cat in self.categories:
            if not fold_name(cat.name):
                raise SettingsError("a category has an empty name", "give every category a name")
            for spelling in cat.spellings():
                key = fold_name(spelling)
                if not key:
                    continue
                other = found.get(key)
                if other is not None and other != cat.name:
                    raise SettingsError(
                        f"'{spelling}' names two categories: '{other}' and '{cat.name}'",
                        "keep each name or synonym under one category only")
                found[key] = cat.name
        return found

    def canonical(self, value: object) -> str | None:
        """The canonical name ``value`` stands for, or None when it is not a known spelling."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        return self.lookup.get(fold_name(_as_text(value)))

    def get(self, name: str) -> Category:
        """The category with canonical name (or any spelling) ``name``; KeyError when unknown."""
        canonical = self.canonical(name)
        for cat in self.categories:
            if cat.name == canonical:
                return cat
        raise KeyError(name)

    def display(self, name: str, lang: str = "zh") -> str:
        """Label of a category in ``lang``; an unknown name is shown as given."""
        try:
            return self.get(name).display(lang)
        except KeyError:
            return name

    def __contains__(self, value: object) -> bool:
        return self.canonical(value) is not None

    def __iter__(self) -> Iterator[Category]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)


def default_taxonomy() -> Taxonomy:
    """The default sales-maintenance taxonomy (budget template's ten categories + 其他)."""
    return Taxonomy(tuple(Category(zh, en, syn) for zh, en, syn in _DEFAULT))


# --- the 类别/Categories sheet ------------------------------------------------------------------

#: Header cells of the Categories sheet (compared folded), by column.
CATEGORY_SHEET_HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("类别", "费用类别", "类别名称", "名称", "category", "categories", "name"),
    "english": ("英文", "英文名", "英文名称", "english", "english name", "en"),
    "synonyms": ("同义词", "别名", "近义词", "synonyms", "synonym", "aliases", "alias", "variants"),
}
_CATEGORY_HEADER_LOOKUP = {fold_name(h): col for col, hs in CATEGORY_SHEET_HEADERS.items() for h in hs}


def taxonomy_from_rows(rows: Sequence[Sequence[Any]], base: Taxonomy | None = None,
                       first_row: int = 1, sheet: str = "类别") -> Taxonomy:
    """Build a taxonomy from the rows of a ``类别``/``Categories`` sheet.

    The first non-empty row is the header: ``类别 | 英文 | 同义词`` (or ``category | english |
    synonyms``); synonyms in one cell are separated by commas, 、 or semicolons.

    A row whose name is already known to ``base`` (the default taxonomy unless given; pass an
    empty ``Taxonomy(())`` to take the sheet literally) keeps the base's English label when its
    own is blank, and the base's synonyms and names as extra synonyms, so a team that just
    lists ``差旅费`` still has ``出差`` folded onto it. Base categories not listed are dropped:
    the sheet decides which categories exist. ``first_row`` is the Excel row of ``rows[0]``,
    used in error messages.
    """
    base = default_taxonomy() if base is None else base
    header_at, columns = _category_header(rows, first_row, sheet)
    listed: list[tuple[int, str, str, list[str]]] = []
    for offset, row in enumerate(rows[header_at + 1:], start=header_at + 1):
        excel_row = first_row + offset
        cells = {col: _cell(row, i) for col, i in columns.items()}
        name = cells.get("name", "")
        english = cells.get("english", "")
        synonyms = [s.strip() for s in _SYNONYM_SPLIT.split(cells.get("synonyms", "")) if s.strip()]
        if not name:
            if english or synonyms:
                raise SettingsError(f"{sheet} row {excel_row}: the category name is empty",
                                    "type the category name in the first column or delete the row")
            continue
        listed.append((excel_row, name, english, synonyms))
    if not listed:
        raise SettingsError(f"the {sheet} sheet lists no categories",
                            "add one category per row under the header, or delete the sheet")
    return _merge_with_base(listed, base, sheet)


def _category_header(rows: Sequence[Sequence[Any]], first_row: int, sheet: str) -> tuple[int, dict[str, int]]:
    """Index of the header row and the column of each known header.

    Title rows above the header (no header word in them) are skipped, up to the fifth
    non-empty row.
    """
    first_text_row = None
    for index, row in enumerate(rows):
        texts = [_cell(row, i) for i in range(len(row or ()))]
        if not any(texts):
            continue
        first_text_row = index if first_text_row is None else first_text_row
        columns: dict[str, int] = {}
        for i, text in enumerate(texts):
            col = _CATEGORY_HEADER_LOOKUP.get(fold_name(text))
            if col and col not in columns:
                columns[col] = i
        if "name" in columns:
            return index, columns
        if columns or index - first_text_row >= 4:
            break
    if first_text_row is None:
        raise SettingsError(f"the {sheet} sheet is empty",
                            "add a header row 类别 | 英文 | 同义词 and one category per row")
    raise SettingsError(f"{sheet} row {first_row + first_text_row}: no category header found",
                        "start the sheet with a header row: 类别 | 英文 | 同义词 (category | english | synonyms)")


def _merge_with_base(listed: list[tuple[int, str, str, list[str]]], base: Taxonomy, sheet: str) -> Taxonomy:
    """Categories of the sheet, completed from ``base``; explicit spellings win over inherited ones."""
    explicit: dict[str, str] = {}  # folded spelling → sheet name, to report duplicates by row
    for excel_row, name, english, synonyms in listed:
        for spelling in (name, english, *synonyms):
            key = fold_name(spelling)
            if key and explicit.get(key, name) != name:
                raise SettingsError(f"{sheet} row {excel_row}: '{spelling}' is already used by '{explicit[key]}'",
                                    "keep each name or synonym under one category only")
            if key:
                explicit[key] = name
    categories = []
    inherited_by: dict[str, str] = {}  # folded inherited spelling → the sheet row that took it
    for _, name, english, synonyms in listed:
        inherited: tuple[str, ...] = ()
        known = base.canonical(name) or (base.canonical(english) if english else None)
        if known is not None:
            inherited = base.get(known).spellings()
        # An inherited spelling never overrides one the sheet gives, and when two rows split
        # one base category (交通费 and 住宿费 both from 差旅费) the first row keeps the rest.
        free = {fold_name(s) for s in inherited
                if explicit.get(fold_name(s), name) == name and inherited_by.setdefault(fold_name(s), name) == name}
        if not english and known is not None and fold_name(base.get(known).english) in free:
            english = base.get(known).english
        extra = [s for s in inherited if fold_name(s) in free]
        merged = _unique_spellings([*synonyms, *extra], exclude=(name, english))
        categories.append(Category(name, english, merged))
    return Taxonomy(tuple(categories))


def _unique_spellings(spellings: Sequence[str], exclude: Sequence[str]) -> tuple[str, ...]:
    """Spellings without folded duplicates or the category's own names, first kept."""
    seen = {fold_name(e) for e in exclude if e}
    out = []
    for s in spellings:
        key = fold_name(s)
        if key and key not in seen:
            seen.add(key)
            out.append(s)
    return tuple(out)


# --- normalising a ledger's category column -------------------------------------------------

def normalize_categories(values: pd.Series, taxonomy: Taxonomy | None = None) -> tuple[pd.Series, pd.Series]:
    """Map every spelling in ``values`` to its canonical category name.

    Returns ``(normalized, unknown)``: ``normalized`` has the canonical name where the value is a
    known name/English label/synonym, the original value unchanged where it is not (a person
    should see what was typed), and None where the cell is empty; ``unknown`` is True exactly on
    the non-empty values the taxonomy does not know. Each distinct value is folded once, so a
    million-row column with a few hundred spellings costs one factorize and a take.
    """
    taxonomy = taxonomy or default_taxonomy()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    known = np.zeros(len(uniques) + 1, dtype=bool)
    blank = np.zeros(len(uniques) + 1, dtype=bool)
    for i, value in enumerate(uniques):
        text = _as_text(value)
        canonical = taxonomy.lookup.get(fold_name(text))
        mapped[i] = canonical if canonical is not None else (value if text.strip() else None)
        known[i] = canonical is not None
        blank[i] = not text.strip()
    # Slot -1 (the last) is where pd.factorize sends missing values.
    mapped[-1], known[-1], blank[-1] = None, False, True
    normalized = pd.Series(mapped[codes], index=values.index, name=values.name, dtype=object)
    unknown = pd.Series(~known[codes] & ~blank[codes], index=values.index, name="unknown_category")
    return normalized, unknown


def _as_text(value: object) -> str:
    """Cell value as text; a whole number read as 5010.0 (a GL code) becomes '5010'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(row: Sequence[Any] | None, i: int) -> str:
    """Text of cell ``i`` of a row ('' when absent or empty)."""
    if row is None or i >= len(row) or row[i] is None:
        return ""
    value = row[i]
    if isinstance(value, float) and np.isnan(value):
        return ""
    return _as_text(value).strip()


__all__ = [
    "CATEGORY_SHEET_HEADERS",
    "Category",
    "Taxonomy",
    "default_taxonomy",
    "fold_name",
    "normalize_categories",
    "taxonomy_from_rows",
]
