"""Load audit settings: the workbook's ``设置``/``Settings`` sheet, else a TOML file, else defaults.

The Settings sheet is two columns, key and value, with an optional header row and note
column. Keys may be the canonical field names of :class:`~xl_expense.core.settings.Settings`
or the Chinese/English labels below; a per-category policy limit is written as
``限额:客户招待`` / ``limit:Hospitality`` with the limit as value. Rows whose key is not an
audit setting are left to other workflows (the budget issue adds its own keys) and listed
in the run record as ignored, so a typo is visible rather than silent.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import python_calamine

from xl_expense.core.settings import Settings, settings_from_dict
from xl_expense.errors import SettingsError
from xl_expense.i18n import all_langs
from xl_expense.schema import normalize_header

#: Labels users type in the Settings sheet → field name.
SETTING_LABELS: dict[str, str] = {
    "审批限额": "approval_limit", "approval limit": "approval_limit",
    "发票阈值": "receipt_threshold", "票据阈值": "receipt_threshold", "receipt threshold": "receipt_threshold",
    "币种": "currency", "货币": "currency", "currency": "currency",
    "语言": "lang", "language": "lang",
    "日历": "calendar", "节假日日历": "calendar", "calendar": "calendar",
    "期间开始": "period_start", "审计期间开始": "period_start", "period start": "period_start",
    "期间结束": "period_end", "审计期间结束": "period_end", "period end": "period_end",
    "基准日": "as_of", "as of": "as_of",
    "近似重复天数": "near_duplicate_days", "near duplicate days": "near_duplicate_days",
    "拆单窗口天数": "split_window_days", "split window days": "split_window_days",
    "临界比例": "below_threshold_pct", "below threshold pct": "below_threshold_pct",
    "整数金额倍数": "round_multiple", "round multiple": "round_multiple",
    "整数金额下限": "round_min", "round min": "round_min",
    "本福特最少笔数": "benford_min_count", "benford min count": "benford_min_count",
    "必填字段": "required_fields", "required fields": "required_fields",
    "异常比例": "anomaly_contamination", "anomaly contamination": "anomaly_contamination",
    "随机种子": "random_state", "random state": "random_state",
    "停用规则": "disabled_rules", "disabled rules": "disabled_rules",
}
_LIMIT_PREFIXES = ("限额:", "限额：", "limit:", "policy_limit:", "policy limit:")
_HEADER_KEYS = {"参数", "设置", "项目", "setting", "key", "name", "参数名"}


def settings_from_rows(rows: list[list[Any]]) -> tuple[dict[str, Any], list[str]]:
    """Turn key/value rows of a Settings sheet into field values, and the keys ignored."""
    values: dict[str, Any] = {}
    limits: dict[str, float] = {}
    ignored: list[str] = []
    for row in rows:
        if not row or row[0] in (None, ""):
            continue
        key = str(row[0]).strip()
        value = row[1] if len(row) > 1 else None
        folded = normalize_header(key)
        if folded in _HEADER_KEYS:
            continue
        prefix = next((p for p in _LIMIT_PREFIXES if folded.startswith(normalize_header(p))), None)
        if prefix is not None:
            category = key.split(":" if ":" in key else "：", 1)[1].strip()
            limits[category] = float(str(value).replace(",", ""))
            continue
        field = SETTING_LABELS.get(folded) or (folded if folded in Settings.__dataclass_fields__ else None)
        if field is None:
            ignored.append(key)
        elif value not in (None, ""):
            values[field] = value
    if limits:
        values["policy_limits"] = limits
    return values, ignored


def named_sheets_rows(path: str | Path, wanted: Mapping[str, Iterable[str]],
                      book: python_calamine.CalamineWorkbook | None = None) -> dict[str, tuple[str, list[list[Any]]]]:
    """Rows of the sheets named in ``wanted``, reading the workbook once.

    ``wanted`` maps a key to the names that sheet may have (``{"rules": ("分类规则", "Rules")}``);
    names compare trimmed and case-insensitively (:func:`normalize_header`), the first sheet
    matching wins. Returns ``{key: (sheet name, rows from A1)}`` for the keys found; a file
    calamine cannot open (CSV, damaged) has no sheets, as the ledger reader reports it.
    ``book``: ``path`` already open (a workflow opens it once for all its readers, since
    every open parses the shared strings again); it is left open.
    """
    lookup = {normalize_header(name): key for key, names in wanted.items() for name in names}
    own = book is None
    if own:
        try:
            book = python_calamine.CalamineWorkbook.from_path(str(path))
        except Exception:  # noqa: BLE001 — the ledger reader reports unreadable files properly
            return {}
    found: dict[str, tuple[str, list[list[Any]]]] = {}
    try:
        for sheet_name in book.sheet_names:
            key = lookup.get(normalize_header(sheet_name))
            if key is not None and key not in found:
                found[key] = (sheet_name, book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False))
    finally:
        if own:
            book.close()
    return found


def settings_sheet_rows(path: str | Path, book: python_calamine.CalamineWorkbook | None = None
                        ) -> list[list[Any]] | None:
    """The rows of the workbook's ``设置``/``Settings`` sheet, or None when it has none."""
    found = named_sheets_rows(path, {"settings": all_langs("sheet.settings")}, book)
    return found["settings"][1] if "settings" in found else None


def read_settings_sheet(path: str | Path, book: python_calamine.CalamineWorkbook | None = None
                        ) -> tuple[dict[str, Any], list[str]] | None:
    """Key/value pairs from the workbook's Settings sheet, or None when it has none."""
    rows = settings_sheet_rows(path, book)
    return None if rows is None else settings_from_rows(rows)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The whole ``--config`` TOML document (every workflow reads its own table from it)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError("config file not found", "check the --config path", str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config is not valid TOML ({exc})", "fix the line shown", str(path)) from exc


#: Tables of the shared TOML file read by other workflows, not audit settings.
WORKFLOW_TABLES = ("classify",)


def read_settings_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file: keys at top level or under an ``[audit]`` table.

    Other workflows' tables (``[classify]``, see :data:`WORKFLOW_TABLES`) are not settings.
    """
    data = read_toml(path)
    if "audit" in data:
        return dict(data["audit"])
    return {key: value for key, value in data.items() if key not in WORKFLOW_TABLES}


def load_settings(
    workbook: str | Path,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    book: python_calamine.CalamineWorkbook | None = None,
) -> tuple[Settings, dict[str, Any]]:
    """Settings for one run, and where they came from (for the run record).

    Precedence: the workbook's Settings sheet, else the ``config`` TOML file, else defaults;
    ``overrides`` (command-line options such as ``--lang``) win over all of them. ``book``:
    the workbook already open, when the caller has it.
    """
    source: dict[str, Any] = {"source": "defaults", "ignored": []}
    values: dict[str, Any] = {}
    from_sheet = read_settings_sheet(workbook, book)
    if from_sheet is not None:
        values, ignored = from_sheet
        source = {"source": "sheet", "ignored": ignored}
    elif config is not None:
        values = read_settings_toml(config)
        source = {"source": f"config:{Path(config).name}", "ignored": []}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        settings = settings_from_dict(values)
    except SettingsError as exc:
        where = workbook if source["source"] == "sheet" else (config or workbook)
        raise exc.with_path(str(where))
    return settings, source
