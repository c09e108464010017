"""Budget workflows: fill a budget workbook, monitor it, transfer budget between lines.

Each reads the workbook (``workbook_templates/`` contract: the ``XE_Budget`` Table and the
Settings rows), calls the pure core (:mod:`xl_expense.core.budget_fill`,
:mod:`~xl_expense.core.budget_monitor`, :mod:`~xl_expense.core.budget_transfer`) and writes
the result back the way the audit does: new numbers go into the Budget Table's cells with
:func:`~xl_expense.io.cell_patch.patch_cells`, new sheets (预警/Alerts, 测算依据/Basis,
调整记录/Adjustments) are added with :func:`~xl_expense.io.xlsx_package.add_sheets`; every
other part of the workbook stays byte for byte. The input is never modified unless
``in_place``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd
import python_calamine

from xl_expense.core.budget import MONTHS, BudgetError, line_key
from xl_expense.core.budget_fill import fill_budget
from xl_expense.core.budget_monitor import actuals_to_date, budget_overrun_findings, monitor_budget
from xl_expense.core.budget_transfer import (
    LOG_COLUMNS,
    Transfer,
    apply_transfers,
    carry_forward,
    preview_transfer,
    replay,
    spread_transfer,
)
from xl_expense.errors import XlExpenseError
from xl_expense.i18n import all_langs, t
from xl_expense.io.budget_book import BudgetBook, read_budget_book, table_rows
from xl_expense.io.cell_patch import patch_cells
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.plain_copy import PACKAGE_SUFFIXES
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import load_settings
from xl_expense.io.sheet_model import Formula, NewSheet
from xl_expense.io.sheet_xml import col_letter
from xl_expense.io.table_sheet import table_sheet
from xl_expense.io.xlsx_package import add_sheets
from xl_expense.workflows import resolve_output

ALERT_HEADERS = {
    "zh": {"line": "预算行", "category": "费用类别", "unit": "单元", "planned_year": "全年预算",
           "planned_to_date": "按进度应用", "actual_to_date": "已用", "used_pct": "使用率", "remaining": "剩余",
           "mtd_planned": "本月预算", "mtd_actual": "本月已用", "forecast_run_rate": "按速度预测全年",
           "forecast_seasonal": "按季节预测全年", "projected_overrun_date": "预计超支日",
           "annual_action": "年度控制", "monthly_action": "月度控制", "status": "状态", "urgency": "紧急度",
           "message": "说明"},
    "en": {"line": "Line", "category": "Category", "unit": "Unit", "planned_year": "Budget",
           "planned_to_date": "Expected to date", "actual_to_date": "Actual", "used_pct": "Used %",
           "remaining": "Remaining", "mtd_planned": "Month budget", "mtd_actual": "Month actual",
           "forecast_run_rate": "Run-rate forecast", "forecast_seasonal": "Seasonal forecast",
           "projected_overrun_date": "Projected overrun", "annual_action": "Annual control",
           "monthly_action": "Monthly control", "status": "Status", "urgency": "Urgency", "message": "Message"},
}
STATUS_LABELS = {"zh": {"ok": "正常", "warn": "预警", "over": "超支", "stop": "超支（停止）"},
                 "en": {"ok": "OK", "warn": "Warning", "over": "Over", "stop": "Over (stop)"}}
LOG_HEADERS = {
    "zh": dict(zip(LOG_COLUMNS, ("时间", "调出行", "调入行", "金额", "调出月", "调入月", "原因", "审批人",
                                 "调出行调整前", "调出行调整后", "调入行调整前", "调入行调整后"))),
    "en": dict(zip(LOG_COLUMNS, ("Time", "From line", "To line", "Amount", "From month", "To month", "Reason",
                                 "Approver", "From before", "From after", "To before", "To after"))),
}
BASIS_HEADERS = {
    "zh": {"category": "费用类别", "unit": "单元", "method": "测算方法", "history_total": "历史实际",
           "budget_total": "预算合计", "text_zh": "测算依据"},
    "en": {"category": "Category", "unit": "Unit", "method": "Method", "history_total": "History",
           "budget_total": "Budget", "text_en": "Basis"},
}
_MONEY = {"planned_year", "planned_to_date", "actual_to_date", "remaining", "mtd_planned", "mtd_actual",
          "forecast_run_rate", "forecast_seasonal", "amount", "from_before", "from_after", "to_before",
          "to_after", "history_total", "budget_total"}


@dataclass
class BudgetRunResult:
    """What a budget workflow did; the CLI prints it."""

    input: Path
    output: Path | None
    table: pd.DataFrame  # alerts, transfer log rows, preview or basis, depending on the workflow
    findings: pd.DataFrame | None = None


# --- shared plumbing -----------------------------------------------------------------------

def _output_for(path: Path, output: str | Path | None, in_place: bool, tag: str) -> Path:
    """Budget workbooks are packages we patch; the output rule is the audit's."""
    if path.suffix.lower() not in PACKAGE_SUFFIXES:
        raise XlExpenseError("a budget workbook must be .xlsx or .xlsm", "make one with: xl-expense template budget")
    return resolve_output(path, output, in_place, tag)


def _open_budget(path: Path) -> BudgetBook:
    if not path.is_file():
        raise XlExpenseError("file not found", "check the path and the file name")
    check_package(path)
    book = read_budget_book(path)
    if book is None:
        raise XlExpenseError("no budget Table (XE_Budget) in this workbook",
                             "start from a budget template: xl-expense template budget --year …")
    return book


def _lang(path: Path, lang: str | None) -> str:
    settings, _ = load_settings(path, None, {"lang": lang})
    return settings.lang


def _money_styles(columns) -> dict[str, str]:
    styles = {c: "money" for c in columns if c in _MONEY}
    styles.update({c: "percent" for c in columns if c.endswith("_pct")})
    styles.update({c: "date" for c in columns if c.endswith("_date")})
    styles.update({"time": "datetime"} if "time" in columns else {})
    return styles


def _budget_cells(book: BudgetBook, budget: pd.DataFrame) -> tuple[dict[str, object], dict[str, str]]:
    """Cell values for ``budget`` in the Budget Table; new lines go below it (Table ref grown)."""
    cells: dict[str, object] = {}
    row_of = dict(zip(line_key(book.budget), book.rows))
    next_row = book.last_row + 1
    first = book.first_col
    for record, key in zip(budget.itertuples(index=False), line_key(budget)):
        row = row_of.get(key)
        if row is None:  # a line the workbook does not have yet
            row, next_row = next_row, next_row + 1
            cells[f"{col_letter(first)}{row}"] = record.category
            cells[f"{col_letter(first + 1)}{row}"] = record.unit
            months = f"{col_letter(first + 2)}{row}:{col_letter(first + 13)}{row}"
            cells[f"{col_letter(first + 14)}{row}"] = Formula(f"SUM({months})")
        for i, month in enumerate(MONTHS):
            cells[f"{col_letter(first + 2 + i)}{row}"] = round(float(getattr(record, month)), 2)
    tables = {}
    if next_row - 1 > book.last_row:
        last_col = col_letter(first + book.width - 1)
        tables = {"XE_Budget": f"{col_letter(first)}{book.header_row}:{last_col}{next_row - 1}"}
    return cells, tables


def _write(path: Path, out: Path, book: BudgetBook, budget: pd.DataFrame | None, sheets: list[NewSheet],
           replace: set[str]) -> None:
    """Budget numbers into their cells, then the added sheets; atomic, input untouched unless out == path.

    Writing in place keeps a ``.bak`` copy of the workbook as it was, as the audit does.
    """
    if out.exists() and out.resolve() == path.resolve():
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".xl-expense-") as tmp:
        stage = Path(tmp, f"stage{path.suffix}")
        if budget is not None:
            cells, tables = _budget_cells(book, budget)
            patch_cells(path, stage, book.sheet, cells, tables=tables, style_from_above=True)
        else:
            shutil.copy2(path, stage)
        add_sheets(stage, out, sheets, replace=replace)


# --- monitor ---------------------------------------------------------------------------------

def monitor_workbook(path: str | Path, output: str | Path | None = None, *, as_of: dt.date | None = None,
                     lang: str | None = None, in_place: bool = False) -> BudgetRunResult:
    """For each budget line: actual to date, used %, remaining, forecasts, overrun date, control.

    Writes a 预警/Alerts sheet sorted by urgency; ``Stop`` overruns are error findings
    (rule ``budget_overrun``), which the audit of the same workbook reports too.
    """
    path = Path(path)
    try:
        out = _output_for(path, output, in_place, "monitored")
        book = _open_budget(path)
        lang = _lang(path, lang)
        ledger = load_ledger(path)
        as_of = as_of or dt.date.today()
        alerts = monitor_budget(book.budget, ledger.df, as_of=as_of, year=book.year, unit_by=book.budget_by,
                                policy=book.policy, lang=lang)
        shown = alerts.assign(status=alerts["status"].map(STATUS_LABELS[lang]).fillna(alerts["status"]))
        headers = ALERT_HEADERS[lang]
        stop, over = STATUS_LABELS[lang]["stop"], STATUS_LABELS[lang]["over"]
        warn = STATUS_LABELS[lang]["warn"]
        sheet = table_sheet(t("sheet.alerts", lang), shown, headers=headers, table_name="XE_Alerts",
                            styles=_money_styles(headers), tab_color="C00000",
                            highlights=[("status", f'OR(${{col}}2="{stop}",${{col}}2="{over}")', "error"),
                                        ("status", f'${{col}}2="{warn}"', "warning")])
        _write(path, out, book, None, [sheet], set(all_langs("sheet.alerts")))
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    return BudgetRunResult(path, out, alerts, budget_overrun_findings(alerts, lang, policy=book.policy))


# --- transfers -------------------------------------------------------------------------------

def _read_table(path: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A Table we wrote earlier (log, original budget) back as a DataFrame, by column position."""
    book = python_calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
    try:
        found = table_rows(book, name)
    finally:
        book.close()
    if found is None:
        return None
    rows = [r for r in found if any(v not in ("", None) for v in r)]
    frame = pd.DataFrame([r[: len(columns)] for r in rows], columns=list(columns))
    return frame.replace({"": None})


def _original_budget(path: Path, book: BudgetBook) -> pd.DataFrame:
    """The budget before the first transfer: kept on its own sheet so the log can be replayed."""
    frame = _read_table(path, "XE_OriginalBudget", ("category", "unit", *MONTHS))
    if frame is None:
        return book.budget.copy()
    for month in MONTHS:
        frame[month] = pd.to_numeric(frame[month]).fillna(0.0)
    return frame


def _log(path: Path) -> pd.DataFrame:
    frame = _read_table(path, "XE_Adjustments", LOG_COLUMNS)
    if frame is None:
        return pd.DataFrame(columns=list(LOG_COLUMNS))
    return frame


def _budget_sheet_headers(lang: str) -> dict[str, str]:
    months = [f"{m}月" for m in range(1, 13)] if lang == "zh" else \
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return {"category": "费用类别" if lang == "zh" else "Category", "unit": "单元" if lang == "zh" else "Unit",
            **dict(zip(MONTHS, months))}


def transfer_workbook(
    path: str | Path,
    output: str | Path | None = None,
    *,
    from_line: str | None = None,
    to_line: str | None = None,
    amount: float | None = None,
    month: int | None = None,
    reason: str = "",
    approver: str = "",
    carry_forward_unused: bool = False,
    dry_run: bool = False,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
    lang: str | None = None,
    in_place: bool = False,
) -> BudgetRunResult:
    """Move budget between lines (or carry unused budget forward) and log it in 调整记录/Adjustments.

    A transfer that would make a month negative or take more than the line has left is
    refused with a clear error; the log is replayed on the original budget after every
    transfer, so a log that no longer balances is refused too. ``dry_run`` returns the
    before/after of the affected lines and writes nothing.
    """
    path = Path(path)
    try:
        out = _output_for(path, output, in_place, "adjusted")
        book = _open_budget(path)
        lang = _lang(path, lang)
        now = now or dt.datetime.now().replace(microsecond=0)
        as_of = as_of or now.date()
        ledger = load_ledger(path)
        actuals = actuals_to_date(ledger.df, year=book.year, as_of=as_of, unit_by=book.budget_by)
        if carry_forward_unused:
            transfers = carry_forward(book.budget, actuals, as_of=as_of, reason=reason or "carry forward",
                                      approver=approver, time=now)
        else:
            if not (from_line and to_line and amount):
                raise BudgetError("a transfer needs --from, --to and --amount",
                                  "name the lines as 类别|单元, e.g. --from '差旅费|华东销售部'")
            if month:
                transfers = [Transfer(from_line=from_line, to_line=to_line, amount=amount, from_month=month,
                                      reason=reason, approver=approver, time=now)]
            else:
                open_months = range(as_of.month if as_of.year == book.year else 1, 13)
                transfers = spread_transfer(book.budget, from_line, to_line, amount, months=list(open_months),
                                            actuals=actuals, reason=reason, approver=approver, time=now)
        if dry_run:
            return BudgetRunResult(path, None, preview_transfer(book.budget, transfers, actuals=actuals))
        new_budget, new_log = apply_transfers(book.budget, transfers, actuals=actuals)
        original = _original_budget(path, book)
        earlier = _log(path)
        log = pd.concat([earlier, new_log], ignore_index=True) if len(earlier) else new_log
        _check_replay(original, log, new_budget)
        sheets = [
            table_sheet(t("sheet.adjustments", lang), log, headers=LOG_HEADERS[lang], table_name="XE_Adjustments",
                        styles=_money_styles(LOG_COLUMNS)),
            table_sheet(t("sheet.original_budget", lang), original, headers=_budget_sheet_headers(lang),
                        table_name="XE_OriginalBudget", styles={m: "money" for m in MONTHS}),
        ]
        replace = set(all_langs("sheet.adjustments")) | set(all_langs("sheet.original_budget"))
        _write(path, out, book, new_budget, sheets, replace)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    return BudgetRunResult(path, out, new_log)


def _check_replay(original: pd.DataFrame, log: pd.DataFrame, current: pd.DataFrame) -> None:
    """The whole log applied to the original budget must give the new budget, to the cent."""
    replayed = replay(original, log)
    keys = line_key(current)
    got = replayed.set_index(line_key(replayed))[list(MONTHS)].reindex(keys).fillna(0.0)
    want = current.set_index(keys)[list(MONTHS)]
    if ((got.to_numpy() - want.to_numpy()).__abs__() > 0.005).any():
        raise BudgetError("the adjustments log does not reproduce the budget",
                          "someone edited the Budget or the log by hand; restore the .bak or fix the log")


# --- fill ------------------------------------------------------------------------------------

#: Headers of the small tables fill-budget reads (targets, historical revenue, weights).
_TABLE_ALIASES = {
    "unit": ("部门", "项目", "销售阶段", "单元", "department", "project", "stage", "unit"),
    "revenue": ("目标收入", "销售目标", "收入", "目标", "营业收入", "revenue", "target", "sales target"),
    "month": ("月份", "月", "month"),
    "category": ("费用类别", "类别", "category"),
    "weight": ("权重", "分配权重", "weight"),
}
_NUMERIC = ("revenue", "month", "weight")


def _read_unit_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A small per-unit table (sales targets, last year's revenue, allocation weights).

    The first sheet (or the CSV) with a header row naming at least the ``required``
    columns, in Chinese or English; optional columns (month, category) are used when present.
    """
    from xl_expense.io.ledger_reader import csv_rows

    if path.suffix.lower() == ".csv":
        rows = csv_rows(path)
    else:
        check_package(path)
        book = python_calamine.CalamineWorkbook.from_path(str(path))
        try:
            rows = book.get_sheet_by_index(0).to_python()
        finally:
            book.close()
    header = [str(h).strip().lower() for h in rows[0]] if rows else []
    index = {key: next((i for i, h in enumerate(header) if h in names), None)
             for key, names in _TABLE_ALIASES.items()}
    missing = [key for key in required if index[key] is None]
    if missing:
        wanted = " and ".join(f"{_TABLE_ALIASES[k][0]}/{_TABLE_ALIASES[k][-1]}" for k in missing)
        raise BudgetError(f"no {wanted} column (found: {', '.join(header) or 'nothing'})",
                          f"head the columns {wanted}", str(path))
    body = [r for r in rows[1:] if str(r[index["unit"]]).strip()]
    frame = pd.DataFrame({key: [r[i] for r in body] for key, i in index.items() if i is not None})
    frame["unit"] = frame["unit"].astype(str).str.strip()
    for key in _NUMERIC:
        if key in frame:
            frame[key] = pd.to_numeric(frame[key], errors="coerce")
    if "month" in frame:
        frame["month"] = frame["month"].astype("Int64")
    return frame


def fill_budget_workbook(
    template: str | Path,
    history: str | Path,
    output: str | Path | None = None,
    *,
    targets: str | Path | None = None,
    growth: float = 0.0,
    expense_ratio: float | Mapping[str, float] | None = None,
    revenue: str | Path | None = None,
    weights: str | Path | None = None,
    round_to: float = 100.0,
    lang: str | None = None,
    in_place: bool = False,
) -> BudgetRunResult:
    """Fill the Budget Table from last year's ledger (× growth, or sales targets × expense ratio).

    ``targets`` (unit, revenue [, month]) are this year's sales targets; the expense ratio
    (费用率) is ``expense_ratio`` or last year's spend ÷ ``revenue`` (unit, revenue);
    ``weights`` (unit, weight [, category]) allocate across projects or sales stages. Every
    line's basis is written on 测算依据/Basis; months follow last year's seasonality and
    are rounded to ``round_to`` with line and grand totals kept exactly.
    """
    path = Path(template)
    try:
        out = _output_for(path, output, in_place, "filled")
        book = _open_budget(path)
        lang = _lang(path, lang)
        history_ledger = load_ledger(history).df
        tables = {name: _read_unit_table(Path(source), required) if source else None
                  for name, source, required in (("targets", targets, ("unit", "revenue")),
                                                 ("revenue", revenue, ("unit", "revenue")),
                                                 ("weights", weights, ("unit", "weight")))}
        budget, basis = fill_budget(history_ledger, year=book.year, unit_by=book.budget_by, growth=growth,
                                    expense_ratio=expense_ratio, round_to=round_to, **tables)
        # Lines of the template that history does not know keep their place, at zero.
        missing = book.budget[~line_key(book.budget).isin(set(line_key(budget)))].copy()
        missing[list(MONTHS)] = 0.0
        full = pd.concat([budget, missing], ignore_index=True)
        headers = BASIS_HEADERS[lang]
        sheet = table_sheet(t("sheet.basis", lang), basis, headers=headers, table_name="XE_Basis",
                            styles=_money_styles(headers))
        _write(path, out, book, full, [sheet], set(all_langs("sheet.basis")))
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    return BudgetRunResult(path, out, basis)
