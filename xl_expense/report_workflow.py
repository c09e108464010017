"""The report workflow: read a workbook → audit and analyse it → add the dashboard sheets.

``xl-expense report BOOK`` (and :func:`report_workbook`) reads the ledger as the audit does,
runs the audit core for the headline and the scorecards (with the reviewers' statuses from an
earlier audit's findings sheet), computes the analysis of :mod:`xl_expense.core.analysis` for
the audit period, and adds 看板/Dashboard, 客户/Customers, 绩效/Scorecards, 对标/Benchmark,
优化建议/Proposals (budget workbooks) and 评估/Evaluation with the package writer: nothing
else in the workbook changes, and the sheets an earlier report wrote (in either language)
are replaced. Each run appends its findings to the history Table on 评估/Evaluation, so the
next run can say what was opened, resolved or recurs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xl_expense.core import analysis
from xl_expense.core.audit import run_audit
from xl_expense.core.budget_monitor import budget_overrun_findings, monitor_budget
from xl_expense.core.settings import Settings
from xl_expense.errors import XlExpenseError
from xl_expense.io.budget_book import BudgetBook, read_budget_book
from xl_expense.io.ledger_reader import Ledger, load_ledger
from xl_expense.io.plain_copy import PACKAGE_SUFFIXES
from xl_expense.io.report_sheets import (
    HISTORY_COLUMNS,
    ReportData,
    build_report_sheets,
    empty_history,
    read_history,
    read_revenue_sheet,
    report_sheet_names,
    tiers_from_settings_rows,
)
from xl_expense.io.reviewer_notes import read_reviewer_notes
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import load_settings, settings_sheet_rows
from xl_expense.workflows import _run_record, resolve_output, write_into_copy

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class ReportResult:
    """What one report run produced; the CLI prints it."""

    input: Path
    output: Path
    ledger: Ledger
    findings: pd.DataFrame
    settings: Settings
    data: ReportData
    run_record: dict[str, Any]
    sheets: list[str] = field(default_factory=list)
    seconds: float = 0.0
    has_budget: bool = False
    has_revenue: bool = False


def report_workbook(
    path: str | Path,
    output: str | Path | None = None,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    config: str | Path | None = None,
    lang: str | None = None,
    dayfirst: bool = False,
    in_place: bool = False,
    revenue_sheet: str | None = None,
    profile: str | None = None,
    now: dt.datetime | None = None,
) -> ReportResult:
    """Add the dashboard, customer view, scorecards, benchmark, proposals and evaluation sheets.

    Parameters mirror :func:`xl_expense.workflows.audit_workbook`; ``revenue_sheet`` names the
    sheet with maintenance-fee income (default: a sheet called 收入/Revenue), ``profile`` reads
    the ledger through an import profile (:func:`xl_expense.io.profiles.read_with_profile`;
    ``"auto"`` detects it) instead of the header search, and ``now`` fixes the run's clock
    (its date is "today" when the settings give no ``as_of``). The input is never modified
    unless ``in_place`` (then a ``.bak`` copy is kept).
    """
    started = time.perf_counter()
    path = Path(path)
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        if not path.is_file():
            raise XlExpenseError("file not found", "check the path and the file name")
        out = resolve_output(path, output, in_place, tag="report")
        check_package(path)
        settings, source = load_settings(path, config, {"lang": lang})
        ledger = _read_ledger(path, sheet, mapping, dayfirst, profile)
        is_package = path.suffix.lower() in PACKAGE_SUFFIXES
        as_of = settings.as_of or now.date()
        book = read_budget_book(path) if is_package else None
        alerts = _alerts(book, ledger, settings, as_of)
        findings = _findings(path, ledger, settings, alerts, book, is_package)
        revenue = read_revenue_sheet(path, revenue_sheet) if is_package else None
        if revenue_sheet and revenue is None:
            raise XlExpenseError(f"no sheet '{revenue_sheet}' with customer and amount columns",
                                 "name the income sheet with --revenue-sheet, headed 客户 | 日期 | 金额")
        # A CSV cannot hold a history Table: its first report is its first run.
        history = read_history(path) if is_package else empty_history()
        run_record = _run_record(path, ledger, settings, source, now)
        data = report_data(ledger.df, findings, settings, as_of=as_of, run=_run_label(now, history),
                           revenue=revenue, alerts=alerts, book=book, history=history, book_name=out.name,
                           tiers=tiers_from_settings_rows(settings_sheet_rows(path) if is_package else None))
        sheets = build_report_sheets(data)
        _write(path, out, sheets, in_place)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    return ReportResult(input=path, output=out, ledger=ledger, findings=findings, settings=settings, data=data,
                        run_record=run_record, sheets=[s.name for s in sheets],
                        seconds=time.perf_counter() - started, has_budget=book is not None,
                        has_revenue=revenue is not None)


# --------------------------------------------------------------------------- reading

def _read_ledger(path: Path, sheet: str | None, mapping: Mapping[str, str] | None, dayfirst: bool,
                 profile: str | None) -> Ledger:
    """The ledger by the audit's header search, or through an import profile when one is named."""
    if profile is None:
        return load_ledger(path, sheet=sheet, mapping=dict(mapping or {}), dayfirst=dayfirst)
    from xl_expense.io.profiles import read_with_profile

    return read_with_profile(path, None if profile == "auto" else profile)


def _alerts(book: BudgetBook | None, ledger: Ledger, settings: Settings, as_of: dt.date) -> pd.DataFrame | None:
    """The budget monitor's table when the workbook is a budget workbook (has ``XE_Budget``)."""
    if book is None or book.budget.empty:
        return None
    return monitor_budget(book.budget, ledger.df, as_of=as_of, year=book.year, unit_by=book.budget_by,
                          policy=book.policy, lang=settings.lang)


def _findings(path: Path, ledger: Ledger, settings: Settings, alerts: pd.DataFrame | None,
              book: BudgetBook | None, is_package: bool) -> pd.DataFrame:
    """This run's audit findings (with budget overruns) and the reviewers' status of each.

    The status a reviewer chose on an earlier audit's findings sheet (审计明细) follows the
    finding by its stable id; findings nobody reviewed yet are open.
    """
    findings = run_audit(ledger.df, settings)
    if alerts is not None and book is not None:
        extra = budget_overrun_findings(alerts, settings.lang, policy=book.policy)
        if not extra.empty:
            findings = pd.concat([findings, extra], ignore_index=True)
            order = findings["severity"].map(_SEVERITY_ORDER)
            findings = findings.iloc[order.argsort(kind="stable")].reset_index(drop=True)
    notes = read_reviewer_notes(path) if is_package else None
    status = pd.Series([None] * len(findings), index=findings.index, dtype=object)
    if notes is not None and len(notes):
        lookup = dict(zip(notes["finding_id"].astype(str), notes["status"]))
        status = findings["finding_id"].astype(str).map(lookup).astype(object)
    return findings.assign(status=status.where(status.notna(), None))


# --------------------------------------------------------------------------- analysis

def _period(settings: Settings, as_of: dt.date) -> tuple[dt.date | None, dt.date]:
    """The analysed period: the audit period, never past "today" (future-dated claims are not spend yet).

    Without a period the analysis runs up to ``as_of``: one mistyped year (2062) would
    otherwise stretch the monthly trend over decades of empty months.
    """
    end = min(settings.period_end, as_of) if settings.period_end else as_of
    return settings.period_start, end


def _previous_period(ledger_df: pd.DataFrame, start: dt.date | None, end: dt.date) -> pd.DataFrame | None:
    """The period of the same length just before this one, when the ledger reaches back that far."""
    if start is None:
        return None
    length = (end - start).days + 1
    before = analysis.period_rows(ledger_df, start - dt.timedelta(days=length), start - dt.timedelta(days=1))
    return before if len(before) else None


def _revenue_in_period(revenue: pd.DataFrame | None, start: dt.date | None, end: dt.date) -> pd.DataFrame | None:
    """Income of the period; an income list without any dates (annual fees) is taken whole."""
    if revenue is None:
        return None
    if revenue["date"].notna().any():
        return analysis.period_rows(revenue, start, end)
    return revenue


def _run_label(now: dt.datetime, history: pd.DataFrame) -> str:
    """The run's name in the history: its time; a second run in the same second gets a suffix."""
    label = now.isoformat(timespec="seconds")
    taken = set(history["run"].dropna().astype(str))
    n, candidate = 2, label
    while candidate in taken:
        candidate, n = f"{label} #{n}", n + 1
    return candidate


def _history_rows(run: str, findings: pd.DataFrame) -> pd.DataFrame:
    """This run's findings as history lines (language-free keys); one id-less line if none."""
    if findings.empty:
        return pd.DataFrame([{c: (run if c == "run" else None) for c in HISTORY_COLUMNS}], dtype=object)
    rows = pd.DataFrame({c: findings.get(c) for c in HISTORY_COLUMNS if c != "run"})
    rows.insert(0, "run", run)
    rows["row"] = pd.to_numeric(rows["row"], errors="coerce").astype("Int64")
    return rows[list(HISTORY_COLUMNS)]


def _runs(history: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Earlier runs, oldest first (the order they were appended), each as a findings frame."""
    runs = []
    for label in pd.unique(history["run"]):
        frame = history.loc[history["run"] == label]
        runs.append((str(label), frame.loc[frame["finding_id"].notna()].reset_index(drop=True)))
    return runs


def _score_config(tiers: Mapping[str, tuple[float, float]]) -> analysis.ScoreConfig:
    return analysis.ScoreConfig(tiers=dict(tiers)) if tiers else analysis.ScoreConfig()


def report_data(ledger_df: pd.DataFrame, findings: pd.DataFrame, settings: Settings, *, as_of: dt.date,
                run: str, revenue: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None,
                book: BudgetBook | None = None, history: pd.DataFrame | None = None,
                tiers: Mapping[str, tuple[float, float]] | None = None, book_name: str = "BOOK.xlsx"
                ) -> ReportData:
    """Every frame the report sheets show, from the core (no IO: the ribbon and tests call it too).

    The ledger is cut to the analysed period first (:func:`_period`); ``findings`` carry the
    reviewers' ``status``; ``history`` holds earlier runs' findings (the Evaluation Table) and
    ``run`` names this one; ``alerts`` and ``book`` come with a budget workbook.
    """
    history = empty_history() if history is None else history
    tiers = tiers or {}
    start, end = _period(settings, as_of)
    rows = analysis.period_rows(ledger_df, start, end)
    income = _revenue_in_period(revenue, start, end)
    config = _score_config(tiers)
    lang = settings.lang
    earlier = _runs(history)
    changes = analysis.finding_changes(findings, [f for _, f in earlier])
    trend = analysis.evaluation_trend([*earlier, (run, findings)])
    budget_cat = budget_dept = moves = lines = None
    if alerts is not None and book is not None:
        budget_cat = analysis.budget_vs_actual(alerts, by="category")
        budget_dept = analysis.budget_vs_actual(alerts, by="unit")
        proposal = analysis.propose_reallocation(book.budget, ledger_df, year=book.year, as_of=as_of,
                                                 unit_by=book.budget_by, lang=lang)
        moves, lines = proposal.moves, proposal.lines
    has_region = "region" in rows and rows["region"].notna().any()
    previous = _previous_period(ledger_df, start, end)
    return ReportData(
        lang=lang, currency=settings.currency, period_start=start, period_end=end, as_of=as_of,
        generated=run, has_revenue=income is not None,
        headline=analysis.audit_headline(findings, ledger_df),
        shares=analysis.category_shares(rows),
        trend=analysis.monthly_trend(ledger_df, income, start=start, end=end),
        ratios=analysis.efficiency_ratios(rows, income),
        ratios_by_department=analysis.efficiency_ratios(rows, income, by="department"),
        vendors=analysis.pareto_table(rows, "vendor"),
        customers_pareto=analysis.pareto_table(rows, "customer"),
        pareto_summary=analysis.pareto_summary(rows),
        customers=analysis.customer_view(rows, income, as_of=end),
        customer_categories=analysis.customer_costs_by_category(rows),
        scorecards_person=analysis.scorecards(rows, findings, level="person", alerts=alerts,
                                              previous=previous, config=config, lang=lang),
        scorecards_department=analysis.scorecards(rows, findings, level="department", alerts=alerts,
                                                  previous=previous, config=config, lang=lang),
        tiers=config.tier_table(lang), weights=dict(config.weights),
        benchmark_department=analysis.benchmark(rows, findings, income, alerts, by="department"),
        benchmark_region=analysis.benchmark(rows, findings, income, alerts, by="region") if has_region else None,
        history=pd.concat([history, _history_rows(run, findings)], ignore_index=True) if len(history)
        else _history_rows(run, findings),
        evaluation_trend=trend, evaluation_by=analysis.evaluation_by(changes), changes=changes,
        budget_by_category=budget_cat, budget_by_department=budget_dept,
        proposal_moves=moves, proposal_lines=lines, budget_book_name=book_name,
    )


# --------------------------------------------------------------------------- writing

def _write(path: Path, out: Path, sheets: list, in_place: bool) -> None:
    """Add the report sheets, replacing an earlier report's (either language)."""
    write_into_copy(path, out, sheets, in_place, replace=report_sheet_names())


__all__ = ["ReportResult", "report_data", "report_workbook"]
