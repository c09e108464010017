"""What each ribbon button runs: ``RunPython "import xl_expense.excel.macros as m; m.audit_active()"``.

Every entry point has the same two layers, so that the book the workflow runs on can change
without touching the ribbon:

* ``<action>_book(book, …)`` — **the seam**: takes an xlwings book and returns the
  workflow's result. The audit runs on the live book: :class:`~xl_expense.io.xlwings_book.XlwingsBook`
  reads its current values (unsaved edits included) and draws the audit sheets into it,
  around the same :func:`xl_expense.workflows.audit_ledger` the CLI runs. Classify, Fill
  budget and Monitor still run their file workflows on the book's saved file,
  ``book.fullname``, and write the result next to it (``<name>_classified.xlsx`` …): they
  patch the ledger's own cells and Tables, which the live adapter does not do yet.
* ``<action>_active()`` — gets ``xw.Book.caller()``, calls the seam through :func:`run_action`,
  which shows the outcome in one Excel message box: the CLI's one-line error
  (``Error: <file>: <what> — <how to fix>``) or a short bilingual summary. Nothing ever ends
  in a Python traceback window.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xl_expense.errors import XlExpenseError

TITLE = "xl-expense 销售维护费"


def saved_path(book: Any) -> Path:
    """The file behind ``book``; the file-based workflows read what was last saved."""
    fullname = str(getattr(book, "fullname", "") or "")
    path = Path(fullname)
    if not fullname or not path.is_absolute() or "://" in fullname:
        raise XlExpenseError("the workbook is not saved on this computer",
                             "save it to a local or synced folder first (File › Save As)", fullname or None)
    if not path.is_file():
        raise XlExpenseError("the saved file was not found", "save the workbook again, then retry", fullname)
    return path


# --- the seams: book in, result out ----------------------------------------------------------

def audit_book(book: Any) -> Any:
    """Audit the live book's ledger and add 审计摘要/审计明细 (Audit Summary/Findings) to it.

    The book need not be saved; the user saves (or undoes) as with any edit.
    """
    from xl_expense.io.xlwings_book import XlwingsBook
    from xl_expense.workflows import audit_live_book

    return audit_live_book(XlwingsBook(book))


def classify_book(book: Any) -> Any:
    """Categorise every expense row; writes ``<name>_classified.xlsx`` next to the book."""
    from xl_expense.classify_workflow import classify_workbook

    return classify_workbook(saved_path(book))


def fill_budget_book(book: Any, history: str | Path) -> Any:
    """Fill the book's Budget Table from last year's ledger ``history`` into ``<name>_filled.xlsx``."""
    from xl_expense.budget_workflows import fill_budget_workbook

    return fill_budget_workbook(saved_path(book), history)


def monitor_book(book: Any) -> Any:
    """Budget alerts of the book into ``<name>_monitored.xlsx``."""
    from xl_expense.budget_workflows import monitor_workbook

    return monitor_workbook(saved_path(book))


@dataclass
class SettingsView:
    """The settings a workflow would use for a book, and where they came from."""

    input: Path
    settings: Any
    source: str
    ignored: list[str]
    output: Path | None = None


def settings_book(book: Any) -> SettingsView:
    """Read (never write) the settings the audit would use for this book."""
    from xl_expense.io.settings_io import load_settings

    path = saved_path(book)
    settings, source = load_settings(path)
    return SettingsView(path, settings, str(source.get("source", "defaults")), list(source.get("ignored", [])))


# --- summaries: one short message per action ----------------------------------------------------

def _written(result: Any) -> str:
    return f"\n已写入 / written: {result.output}" if getattr(result, "output", None) else ""


def audit_summary(result: Any) -> str:
    counts = result.counts
    sheets = getattr(result, "sheets", None)  # a live-book run added these sheets to the book
    added = f"\n已添加工作表 / sheets added: {', '.join(sheets)}" if sheets else ""
    notes = "".join(f"\n{note}" for note in getattr(result, "notes", []) or [])
    return (f"{len(result.ledger.df):,} 行 / rows, {len(result.ledger.rejected):,} 无法识别 / unreadable\n"
            f"审计发现 / findings: {len(result.findings):,} (error {counts.get('error', 0):,}, "
            f"warning {counts.get('warning', 0):,}, info {counts.get('info', 0):,})" + _written(result)
            + added + notes)


def classify_summary(result: Any) -> str:
    c = result.counts
    return (f"人工 manual {c['manual']:,}, 规则 rule {c['rule']:,}, 模型 model {c['model']:,}, "
            f"未分类 unclassified {c['unclassified']:,}; 需复核 to review {c['review']:,}" + _written(result))


def fill_budget_summary(result: Any) -> str:
    return f"{len(result.table):,} 预算行已填充 / budget lines filled" + _written(result)


def monitor_summary(result: Any) -> str:
    alerts = result.table
    urgent = int((alerts["status"] != "ok").sum()) if "status" in alerts else 0
    return f"{len(alerts):,} 预算行 / lines, {urgent:,} 需关注 / need attention" + _written(result)


def settings_summary(view: SettingsView) -> str:
    s = view.settings
    where = {"sheet": "设置/Settings 工作表 sheet", "defaults": "默认值 / defaults"}.get(view.source, view.source)
    lines = [f"来源 / from: {where}",
             f"审批限额 approval limit: {s.approval_limit:,}",
             f"发票阈值 receipt threshold: {s.receipt_threshold:,}",
             f"币种 currency: {s.currency}; 语言 language: {s.lang}"]
    if view.ignored:
        lines.append(f"未使用的行 / rows not used: {', '.join(map(str, view.ignored[:5]))}")
    if view.source != "sheet":
        lines.append("修改：添加名为 设置 的工作表（参数 | 值）/ to change: add a sheet 设置 or Settings (key | value)")
    return "\n".join(lines)


# --- running an action inside Excel ----------------------------------------------------------

def error_message(exc: BaseException) -> str:
    """The CLI's line for an error: ``Error: <file>: <what> — <how to fix>``."""
    if isinstance(exc, XlExpenseError):
        return f"Error: {exc.one_line()}"
    return (f"Error: unexpected {type(exc).__name__}: {exc} — "
            "set XL_EXPENSE_DEBUG=1 to see the traceback, and report it")


def _alert(book: Any, message: str, critical: bool) -> None:
    book.app.alert(message, title=TITLE, mode="critical" if critical else "info")


def run_action(book: Any, action: Callable[[Any], Any], summary: Callable[[Any], str]) -> Any:
    """Run ``action(book)`` and tell the user in one message box how it went.

    Returns the result, or None after an error (which has been shown, not raised, so that
    xlwings does not open its traceback window). ``XL_EXPENSE_DEBUG=1`` re-raises bugs.
    """
    try:
        result = action(book)
    except Exception as exc:
        _alert(book, error_message(exc), critical=True)
        if os.environ.get("XL_EXPENSE_DEBUG") and not isinstance(exc, XlExpenseError):
            raise
        return None
    _alert(book, summary(result), critical=False)
    return result


def _caller() -> Any:
    import xlwings as xw

    return xw.Book.caller()


def audit_active() -> Any:
    """Ribbon 一键审计 Audit."""
    return run_action(_caller(), audit_book, audit_summary)


def classify_active() -> Any:
    """Ribbon 分类 Classify."""
    return run_action(_caller(), classify_book, classify_summary)


def fill_budget_active(history: str) -> Any:
    """Ribbon 填充预算 Fill budget; ``history`` is the ledger the user picked in the VBA file dialog."""
    return run_action(_caller(), lambda book: fill_budget_book(book, history), fill_budget_summary)


def monitor_active() -> Any:
    """Ribbon 刷新预警 Monitor."""
    return run_action(_caller(), monitor_book, monitor_summary)


def settings_active() -> Any:
    """Ribbon 设置 Settings."""
    return run_action(_caller(), settings_book, settings_summary)
