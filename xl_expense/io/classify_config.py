"""Read the team's categories and classification rules: workbook sheets, else TOML, else defaults.

Where each part comes from, decided separately for the categories and for the rules:

1. the workbook's ``类别``/``Categories`` (resp. ``分类规则``/``Rules``) sheet, when it has one —
   even an empty Rules sheet: it says "no rules" on purpose;
2. else the ``[classify]`` table of the ``--config`` TOML file (the same file as the audit
   settings, see :mod:`xl_expense.io.settings_io`);
3. else the default taxonomy (:func:`~xl_expense.core.taxonomy.default_taxonomy`) and no rules.

The sheet wins because the workbook is what the finance user edits and sees; the TOML file is
the team's default for ledgers that carry no such sheet (CSV exports, ``.xls`` from a bank).
This is the settings' precedence too. Parts are never merged: rules from a sheet and rules
from TOML would be two policies in one run. Rules are checked against the taxonomy in effect,
whichever source each came from.

Sheet names compare trimmed and case-insensitively (``rules``, ``Categories ``). The TOML
shapes::

    [classify.categories]                 # "name" = synonyms, or a table (TOML needs
    "差旅费" = ["出差", "差旅"]             # quotes around non-ASCII keys)
    "客户招待" = { english = "Hospitality", synonyms = "招待、宴请" }

    [[classify.rules]]                    # keys as in the Rules sheet (see rules_from_toml)
    pattern = "滴滴"
    field = "vendor"
    category = "差旅费"
    priority = 1

``[[classify.categories]]`` (an array of tables with ``name``, ``english``, ``synonyms``) is
accepted as well. Every error names the sheet and row (or the TOML entry) and the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import python_calamine

from xl_expense.core.classify_rules import Rule, rules_from_rows, rules_from_toml
from xl_expense.core.taxonomy import Taxonomy, default_taxonomy, taxonomy_from_rows
from xl_expense.errors import SettingsError
from xl_expense.i18n import LABELS, LANGS
from xl_expense.io.settings_io import named_sheets_rows, read_toml

#: Sheet names (any case) of the categories and the rules; i18n entries, when added, count too.
CATEGORY_SHEET_NAMES = ("类别", "Categories")
RULE_SHEET_NAMES = ("分类规则", "Rules")
#: Keys of the ``[classify]`` table; anything else is a typo and an error.
CLASSIFY_TABLE_KEYS = ("categories", "rules")
#: Keys of one category given as a TOML table.
_CATEGORY_KEYS = ("name", "english", "synonyms")


@dataclass(frozen=True)
class ClassifyConfig:
    """The categories and rules of one classification run, and where each came from.

    ``sources`` maps ``"taxonomy"`` and ``"rules"`` to ``sheet:<sheet name>``,
    ``config:<file name>``, or ``defaults`` (taxonomy) / ``none`` (rules) — for the run record.
    """

    taxonomy: Taxonomy
    rules: tuple[Rule, ...] = ()
    sources: dict[str, str] = field(default_factory=lambda: {"taxonomy": "defaults", "rules": "none"})


def read_classify_config(workbook_path: str | Path, config: Path | None = None,
                         book: python_calamine.CalamineWorkbook | None = None) -> ClassifyConfig:
    """The taxonomy and rules for classifying ``workbook_path`` (precedence: module docstring).

    ``config`` is the ``--config`` TOML file, if any. A CSV or a workbook without the sheets
    falls back to the TOML and then the defaults. ``book``: the workbook already open (the
    workflow opens it once for all its readers; it is left open). Raises
    :class:`~xl_expense.errors.SettingsError` naming the file and the sheet row (or TOML
    entry) of the first bad category or rule.
    """
    sheets = named_sheets_rows(workbook_path, {"taxonomy": _sheet_names("sheet.categories", CATEGORY_SHEET_NAMES),
                                               "rules": _sheet_names("sheet.rules", RULE_SHEET_NAMES)}, book)
    table = _classify_table(config) if config is not None else {}

    taxonomy, taxonomy_source = default_taxonomy(), "defaults"
    if "taxonomy" in sheets:
        name, rows = sheets["taxonomy"]
        taxonomy = _from_workbook(workbook_path, lambda: taxonomy_from_rows(rows, first_row=1, sheet=name))
        taxonomy_source = f"sheet:{name}"
    elif "categories" in table:
        taxonomy = _from_config(config, lambda: taxonomy_from_toml(table["categories"]))
        taxonomy_source = f"config:{Path(config).name}"

    rules: tuple[Rule, ...] = ()
    rules_source = "none"
    if "rules" in sheets:
        name, rows = sheets["rules"]
        rules = _from_workbook(workbook_path, lambda: rules_from_rows(rows, taxonomy, first_row=1, sheet=name))
        rules_source = f"sheet:{name}"
    elif "rules" in table:
        rules = _from_config(config, lambda: _rules_from_table(table, taxonomy))
        rules_source = f"config:{Path(config).name}"
    return ClassifyConfig(taxonomy, rules, {"taxonomy": taxonomy_source, "rules": rules_source})


def _sheet_names(key: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` plus the i18n labels of ``key`` where :mod:`xl_expense.i18n` has them."""
    labels = [LABELS[lang][key] for lang in LANGS if key in LABELS.get(lang, {})]
    return tuple(dict.fromkeys([*labels, *names]))


def _classify_table(config: Path) -> dict[str, Any]:
    """The ``[classify]`` table of the TOML file (empty when it has none)."""
    table = read_toml(config).get("classify", {})
    if not isinstance(table, Mapping):
        raise SettingsError("'classify' in the config file must be a table", "write it as a [classify] section",
                            str(config))
    unknown = sorted(str(key) for key in table if key not in CLASSIFY_TABLE_KEYS)
    if unknown:
        raise SettingsError(f"unknown key(s) in [classify]: {', '.join(unknown)}",
                            f"use only: {', '.join(CLASSIFY_TABLE_KEYS)}", str(config))
    return dict(table)


def _from_workbook(path: str | Path, read):
    """Run ``read`` and put the workbook's name on a SettingsError (the message has sheet and row)."""
    try:
        return read()
    except SettingsError as exc:
        raise exc.with_path(str(path))


def _from_config(config: Path, read):
    """Run ``read`` and put the TOML file's name on a SettingsError."""
    try:
        return read()
    except SettingsError as exc:
        raise exc.with_path(str(config))


def _rules_from_table(table: Mapping[str, Any], taxonomy: Taxonomy) -> tuple[Rule, ...]:
    """Rules of ``[[classify.rules]]``; the core names entries ``[[rules]] #n``, we say where they are."""
    try:
        return rules_from_toml({"rules": table["rules"]}, taxonomy)
    except SettingsError as exc:
        if exc.what.startswith("[[rules]]"):
            exc.what = "[[classify.rules]]" + exc.what[len("[[rules]]"):]
        exc.what = exc.what.replace("'rules' in the config file", "'classify.rules' in the config file")
        exc.args = (exc.one_line(),)
        raise


def taxonomy_from_toml(entries: Any, base: Taxonomy | None = None) -> Taxonomy:
    """A taxonomy from ``[classify.categories]`` (a table) or ``[[classify.categories]]`` (an array).

    Each category becomes one row of a Categories sheet and goes through
    :func:`~xl_expense.core.taxonomy.taxonomy_from_rows`, so the TOML and the sheet mean exactly
    the same (a listed default category keeps its synonyms; unlisted ones are dropped). Errors
    name the entry as ``[classify.categories] row <n>`` (the n-th category).
    """
    where = "[classify.categories]"
    if isinstance(entries, Mapping):
        listed = [_category_entry(name, spec, where) for name, spec in entries.items()]
    elif isinstance(entries, list):
        listed = [_category_table(entry, f"{where} row {n}") for n, entry in enumerate(entries, start=1)]
    else:
        raise SettingsError(f"{where} must be a table or an array of tables",
                            'write one category per line: "差旅费" = ["出差", "差旅"]')
    if not listed:
        raise SettingsError(f"{where} lists no categories", "add one category per line, or delete the table")
    rows = [["类别", "英文", "同义词"], *([name, english, "\n".join(synonyms)] for name, english, synonyms in listed)]
    # first_row=0: the header is "row 0", so row n is the n-th category.
    return taxonomy_from_rows(rows, base=base, first_row=0, sheet=where)


def _category_entry(name: str, spec: Any, where: str) -> tuple[str, str, list[str]]:
    """``name = [synonyms]``, ``name = "synonyms"`` or ``name = {english = …, synonyms = …}``."""
    if isinstance(spec, Mapping):
        if "name" in spec:
            raise SettingsError(f"{where} {name}: 'name' is the key itself", "remove the name = … line")
        return _category_table({**spec, "name": name}, f"{where} {name}")
    return name, "", _synonyms(spec, f"{where} {name}")


def _category_table(entry: Any, where: str) -> tuple[str, str, list[str]]:
    """One category given as a table with ``name``, ``english`` and ``synonyms``."""
    if not isinstance(entry, Mapping):
        raise SettingsError(f"{where} is not a table", "write name = …, english = …, synonyms = [...]")
    unknown = sorted(str(key) for key in entry if key not in _CATEGORY_KEYS)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}", f"use only: {', '.join(_CATEGORY_KEYS)}")
    name, english = entry.get("name", ""), entry.get("english", "")
    if not isinstance(name, str) or not isinstance(english, str):
        raise SettingsError(f"{where}: name and english must be text", 'quote them: name = "差旅费"')
    return name, english, _synonyms(entry.get("synonyms", []), where)


def _synonyms(value: Any, where: str) -> list[str]:
    """Synonyms as a list of text (a string is split later like a sheet cell: by commas, 、, ;)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SettingsError(f"{where}: synonyms must be text or a list of text", 'write synonyms = ["出差", "差旅"]')


__all__ = [
    "CATEGORY_SHEET_NAMES",
    "RULE_SHEET_NAMES",
    "ClassifyConfig",
    "read_classify_config",
    "taxonomy_from_toml",
]
