"""Workflows: read → core → write, written once and called by the CLI, the ribbon and batch.

Each workflow takes paths and plain options, does the IO through :mod:`xl_expense.io`,
the thinking through :mod:`xl_expense.core`, and returns a result object the caller can
print, show in a message box or add to a batch summary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from xl_expense import __version__
from xl_expense.core.audit import RULES, audit_and_preview, benford_analysis
from xl_expense.core.audit.summary import summarize_findings
from xl_expense.core.budget_monitor import RULE_ID as BUDGET_RULE_ID
from xl_expense.core.budget_monitor import budget_overrun_findings, monitor_budget
from xl_expense.core.settings import Settings, settings_from_dict
from xl_expense.errors import OutputError, XlExpenseError
from xl_expense.io.audit_sheets import build_audit_sheets
from xl_expense.io.budget_book import BudgetBook, read_budget_book
from xl_expense.io.csv_export import write_findings_csv
from xl_expense.io.ledger_reader import Ledger, load_ledger, prescan_sum_formulas, shared_workbook
from xl_expense.io.plain_copy import PACKAGE_SUFFIXES, copy_values_to_xlsx
from xl_expense.io.prefetch import prefetch_running
from xl_expense.io.reviewer_notes import our_sheet_names, read_reviewer_notes
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import load_settings, settings_from_rows
from xl_expense.io.sheet_model import NewSheet
from xl_expense.io.xlsx_package import add_sheets

#: Titles of findings that come from outside the rule registry.
EXTRA_RULE_TITLES = {BUDGET_RULE_ID: {"zh": "超出预算", "en": "Over budget"}}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

Progress = Callable[[int, int], None]


@dataclass
class AuditResult:
    """What one audit run produced; the CLI prints it, the ribbon shows it."""

    input: Path
    output: Path
    ledger: Ledger
    findings: pd.DataFrame
    settings: Settings
    run_record: dict[str, Any]
    findings_csv: Path | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    #: :func:`summarize_findings` of the findings, as the summary sheet shows it.
    summary: dict[str, pd.DataFrame] = field(default_factory=dict)


def default_output(path: Path, tag: str = "audited") -> Path:
    """``<name>_<tag>.xlsx`` next to the input; ``.xlsm`` stays ``.xlsm`` (its macros survive)."""
    suffix = path.suffix.lower() if path.suffix.lower() in PACKAGE_SUFFIXES else ".xlsx"
    return path.with_name(f"{path.stem}_{tag}{suffix}")


def file_sha256(path: Path) -> str:
    """SHA-256 of the input, recorded so a reviewer can prove which file was audited."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_output(path: Path, output: str | Path | None, in_place: bool, tag: str = "audited") -> Path:
    """Where a workflow writes: the input itself only when asked, else ``output`` or the default.

    Shared by every workflow so that "the input is never modified unless asked" holds in one place.
    """
    if in_place:
        if path.suffix.lower() not in PACKAGE_SUFFIXES:
            raise OutputError(f"--in-place works only for {'/'.join(PACKAGE_SUFFIXES)} files",
                              "drop --in-place; the result is written to a new .xlsx", str(path))
        return path
    out = Path(output) if output else default_output(path, tag)
    if out.exists() and out.resolve() == path.resolve():
        raise OutputError("the output would overwrite the input",
                          "choose another -o, or pass --in-place (keeps a .bak)", str(path))
    if path.suffix.lower() in PACKAGE_SUFFIXES and out.suffix.lower() != path.suffix.lower():
        raise OutputError(f"output must keep the input's type ({path.suffix})",
                          f"name the output …{path.suffix}", str(out))
    return out


def audit_workbook(
    path: str | Path,
    output: str | Path | None = None,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    config: str | Path | None = None,
    lang: str | None = None,
    dayfirst: bool = False,
    in_place: bool = False,
    findings_csv: str | Path | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    ledger: Ledger | None = None,
) -> AuditResult:
    """Audit the expense ledger in a workbook and write the audit sheets into a copy of it.

    The input is never modified unless ``in_place`` (then a ``.bak`` copy is kept). Status
    and Comment a reviewer typed into an earlier audit's findings sheet are carried over to
    the findings that still exist. Raises :class:`~xl_expense.errors.XlExpenseError` with a
    message that says how to fix the problem. ``ledger`` is the ledger of ``path`` already
    read with these ``sheet``/``mapping``/``dayfirst`` (a batch has it from classify).
    """
    started = time.perf_counter()
    path = Path(path)
    try:
        if not path.is_file():
            raise XlExpenseError("file not found", "check the path and the file name")
        out = resolve_output(path, output, in_place)
        check_package(path)
        sha256 = _while_the_parse_runs(path) if ledger is None else None
        # One calamine open for settings, ledger, reviewer notes and budget: each open
        # parses the shared strings and styles again.
        with shared_workbook(path) as book:
            settings, settings_source = load_settings(path, config, {"lang": lang}, book=book)
            if ledger is None:
                ledger = load_ledger(path, sheet=sheet, mapping=dict(mapping or {}), dayfirst=dayfirst,
                                     progress=progress, book=book)
            # A CSV cannot hold an earlier audit's sheets, so it has no reviewer notes to carry over.
            notes = None if path.suffix.lower() == ".csv" else read_reviewer_notes(path, book=book)
            budget = read_budget_book(path, book=book)
            run = audit_ledger(ledger, settings, settings_source, notes=notes, budget=budget, now=now,
                               input_name=path.name, input_sha256=sha256 or file_sha256(path))
        findings, run_record, sheets, summary = run.findings, run.run_record, run.sheets, run.summary
        _write(path, out, sheets, in_place)
        csv_path = None
        if findings_csv:
            csv_path = Path(findings_csv)
            write_findings_csv(findings, csv_path, lang=settings.lang, ledger_df=ledger.df)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    counts = findings["severity"].value_counts().to_dict() if len(findings) else {}
    return AuditResult(
        input=path, output=out, ledger=ledger, findings=findings, settings=settings,
        run_record=run_record, findings_csv=csv_path, seconds=time.perf_counter() - started,
        counts={k: int(v) for k, v in counts.items()}, summary=summary,
    )


class LiveBook(Protocol):
    """What the live-book audit needs of a workbook open in Excel (see ``XlwingsBook``)."""

    name: str

    def ledger(self, sheet: str | None = None, mapping: Mapping[str, str] | None = None,
               dayfirst: bool = False) -> Ledger: ...

    def settings_rows(self) -> list[list[Any]] | None: ...

    def reviewer_notes(self) -> pd.DataFrame: ...

    def saved_file(self) -> Path | None: ...

    def table_names(self) -> list[str]: ...

    def write_sheets(self, sheets: list[NewSheet], replace: Iterable[str] = ()) -> list[str]: ...


@dataclass
class BookAuditResult:
    """What an audit of a live workbook produced: the sheets were added to the book itself."""

    book: str
    ledger: Ledger
    findings: pd.DataFrame
    settings: Settings
    run_record: dict[str, Any]
    sheets: list[str]
    #: What the book's engine could not draw (e.g. charts), one line each, for the message box.
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    output: Path | None = None  # nothing is written to a file


def audit_live_book(
    book: LiveBook,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    lang: str | None = None,
    dayfirst: bool = False,
    now: dt.datetime | None = None,
) -> BookAuditResult:
    """Audit the ledger of a workbook open in Excel and add the audit sheets to it.

    The ribbon's 一键审计: the same :func:`audit_ledger` as :func:`audit_workbook`, fed from
    the book's current cell values (unsaved edits included) instead of its file, and drawn
    into the book instead of a copy. The settings come from the book's Settings sheet only
    (there is no ``--config`` in Excel). A budget workbook's budget is read from its saved
    file, the one source the budget reader understands; ``notes`` says so. Raises
    :class:`~xl_expense.errors.XlExpenseError` with the book's name as the path.
    """
    started = time.perf_counter()
    notes: list[str] = []
    try:
        settings, settings_source = _live_settings(book.settings_rows(), lang)
        ledger = book.ledger(sheet=sheet, mapping=dict(mapping or {}), dayfirst=dayfirst)
        budget = None
        if BUDGET_TABLE in book.table_names():
            saved = book.saved_file()
            if saved is not None:
                budget = read_budget_book(saved)
                notes.append("预算取自已保存的文件 / budget read from the saved file")
            else:
                notes.append("预算检查需先保存工作簿 / save the workbook to include the budget check")
        run = audit_ledger(ledger, settings, settings_source, input_name=book.name, input_sha256="",
                           notes=book.reviewer_notes(), budget=budget, now=now)
        notes += book.write_sheets(run.sheets, replace=our_sheet_names())
    except XlExpenseError as exc:
        raise exc.with_path(book.name)
    counts = run.findings["severity"].value_counts().to_dict() if len(run.findings) else {}
    return BookAuditResult(
        book=book.name, ledger=ledger, findings=run.findings, settings=settings, run_record=run.run_record,
        sheets=[s.name for s in run.sheets], notes=notes, seconds=time.perf_counter() - started,
        counts={str(k): int(v) for k, v in counts.items()},
    )


#: The budget template's Table name (``xl_expense.io.budget_template.TABLE_BUDGET``; that
#: module imports openpyxl, so the name is repeated here rather than imported).
BUDGET_TABLE = "XE_Budget"


def _live_settings(rows: list[list[Any]] | None, lang: str | None) -> tuple[Settings, dict[str, Any]]:
    """Settings from a live book's Settings sheet rows, with :func:`load_settings`' precedence
    (the sheet, else defaults; ``lang`` wins) and the same run-record source."""
    values, ignored = settings_from_rows(rows) if rows is not None else ({}, [])
    source = {"source": "sheet" if rows is not None else "defaults", "ignored": ignored}
    if lang is not None:
        values["lang"] = lang
    return settings_from_dict(values), source


@dataclass
class AuditRun:
    """The middle of an audit, whatever book it came from: findings, their sheets, the record."""

    findings: pd.DataFrame
    sheets: list[NewSheet]
    run_record: dict[str, Any]
    summary: dict[str, pd.DataFrame] = field(default_factory=dict)


def audit_ledger(
    ledger: Ledger,
    settings: Settings,
    settings_source: Mapping[str, Any],
    *,
    input_name: str,
    input_sha256: str = "",
    notes: pd.DataFrame | None = None,
    budget: BudgetBook | None = None,
    now: dt.datetime | None = None,
) -> AuditRun:
    """Ledger + settings + reviewer notes (+ budget) → findings → sheet descriptions and run record.

    Why one function: the CLI (a file) and the ribbon (a live workbook through
    :class:`~xl_expense.io.xlwings_book.XlwingsBook`) must produce the same findings and the
    same sheets, so everything between reading and writing happens here and nowhere else.
    ``input_name``/``input_sha256`` identify the input in the run record (a live book that was
    never saved has no file to hash: ``""``).
    """
    benford = benford_analysis(ledger.df, settings)
    findings, preview = audit_and_preview(ledger.df, settings)
    findings = _with_budget_findings(Path(input_name), ledger, findings, settings, now, budget)
    run_record = _record(input_name, input_sha256, ledger, settings, settings_source, now)
    summary = summarize_findings(findings, ledger.df)
    sheets = build_audit_sheets(
        findings,
        ledger=ledger,
        settings=settings,
        summary=summary,
        benford=benford,
        preview=preview,
        notes=notes,
        run_record=run_record,
        rule_titles={**{rule_id: r.title(settings.lang) for rule_id, r in RULES.items()},
                     **{rule_id: titles[settings.lang] for rule_id, titles in EXTRA_RULE_TITLES.items()}},
    )
    return AuditRun(findings=findings, sheets=sheets, run_record=run_record, summary=summary)


def _with_budget_findings(path: Path, ledger: Ledger, findings: pd.DataFrame, settings: Settings,
                          now: dt.datetime | None, book: BudgetBook | None) -> pd.DataFrame:
    """Add ``budget_overrun`` findings when the workbook is a budget workbook (has ``XE_Budget``).

    Lines whose category is controlled with ``Stop`` and that spent past their limit are
    errors, ``Warn`` lines warnings (ERPNext's budget control); the order stays by severity.
    ``book``: the workbook's budget as :func:`read_budget_book` read it (None: not a budget
    workbook).
    """
    if book is None or book.budget.empty:
        return findings
    as_of = settings.as_of or (now or dt.datetime.now()).date()
    alerts = monitor_budget(book.budget, ledger.df, as_of=as_of, year=book.year, unit_by=book.budget_by,
                            policy=book.policy, lang=settings.lang)
    extra = budget_overrun_findings(alerts, settings.lang, policy=book.policy)
    if extra.empty:
        return findings
    merged = pd.concat([findings, extra], ignore_index=True)
    order = merged["severity"].map(_SEVERITY_ORDER)
    return merged.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def _while_the_parse_runs(path: Path) -> str | None:
    """Work on the file that does not need its parsed sheets, done while calamine parses them.

    The command line starts the parse before its imports (see :mod:`xl_expense.io.prefetch`);
    on a big workbook it is still running when the imports are done, and this thread would
    only wait. Returns the input's SHA-256 when it was computed here.
    """
    if not prefetch_running(path):
        return None
    sha256 = file_sha256(path)
    prescan_sum_formulas(path, busy=lambda: prefetch_running(path))
    return sha256


def _write(path: Path, out: Path, sheets: list, in_place: bool) -> None:
    """Add the audit sheets, replacing an earlier audit's (either language)."""
    write_into_copy(path, out, sheets, in_place, replace=our_sheet_names())


def write_into_copy(path: Path, out: Path, sheets: list, in_place: bool, replace: Iterable[str]) -> None:
    """Add ``sheets`` to a copy of the package at ``out``, replacing the sheets named ``replace``.

    Non-package inputs (CSV, .xls, .ods) get a plain .xlsx base with their values first;
    ``in_place`` keeps a ``.bak`` of the input.
    """
    replace = list(replace)
    if in_place:
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    if path.suffix.lower() in PACKAGE_SUFFIXES:
        add_sheets(path, out, sheets, replace=replace)
        return
    base = out.with_name(f".{out.stem}.base.xlsx")
    try:
        copy_values_to_xlsx(path, base)
        add_sheets(base, out, sheets, replace=replace)
    finally:
        base.unlink(missing_ok=True)


def _run_record(path: Path, ledger: Ledger, settings: Settings, source: dict[str, Any],
                now: dt.datetime | None) -> dict[str, Any]:
    """Everything needed to reproduce or trust this run, written on the summary sheet."""
    return _record(path.name, file_sha256(path), ledger, settings, source, now)


def _record(input_name: str, input_sha256: str, ledger: Ledger, settings: Settings,
            source: Mapping[str, Any], now: dt.datetime | None) -> dict[str, Any]:
    """The run record of :func:`_run_record` for an input known by name and hash (or none)."""
    return {
        "tool_version": f"xl-expense {__version__}",
        "input_file": input_name,
        "input_sha256": input_sha256,
        "time": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "lang": settings.lang,
        "ledger_sheet": ledger.sheet,
        "header_row": ledger.header_row,
        "table": ledger.table_name or "",
        "rows_read": len(ledger.df),
        "rows_rejected": len(ledger.rejected),
        "settings_source": source["source"],
        "settings_ignored": ", ".join(source.get("ignored", [])),
        "settings": settings.to_dict(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
