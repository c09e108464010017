"""Describe the two sheets a reviewer works through: 审计摘要/Audit Summary and 审计明细/Audit Findings.

This module only lays out DataFrames the core already computed; it decides nothing about
what is suspicious. The result is a list of :class:`~xl_expense.io.sheet_model.NewSheet`
that :mod:`xl_expense.io.xlsx_package` (files) or an xlwings adapter (live books) writes.

Findings sheet: one Excel Table row per finding with a link to the source cell, a Status
dropdown and a Comment column. Status and Comment from an earlier run are carried over by
finding id (ids are stable across runs), translated when the run's language changed; notes
whose finding disappeared are listed on the summary instead of being dropped silently.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from xl_expense import i18n
from xl_expense.errors import OutputError
from xl_expense.io.reviewer_notes import empty_notes, normalize_status, status_options
from xl_expense.io.sheet_model import (
    Block,
    ChartSeries,
    ChartSpec,
    CondFormat,
    Hyperlink,
    ListValidation,
    NewSheet,
    TableSpec,
)
from xl_expense.io.sheet_xml import parse_range
from xl_expense.schema import SEVERITIES

#: Excel's last row; a sheet cannot hold more (header + 1,048,575 findings).
EXCEL_MAX_ROWS = 1_048_576

#: Table name of the findings (Excel names: letters, digits, underscore; unique in the book).
FINDINGS_TABLE = "XE_Findings"


@dataclass(frozen=True)
class _Column:
    key: str            # finding column or a derived one (rule_title, link, status, comment)
    style: str | None   # sheet_model style key
    width: float


#: Findings sheet columns, in order. The header is i18n "col.<key>".
FINDINGS_LAYOUT: tuple[_Column, ...] = (
    _Column("finding_id", "text", 18),
    _Column("severity", "text", 9),
    _Column("rule", "text", 18),
    _Column("rule_title", "text", 22),
    _Column("sheet", "text", 14),
    _Column("row", None, 7),       # General, not #,##0: "Row 1,234" reads oddly
    _Column("date", "date", 11),
    _Column("person", "text", 10),
    _Column("department", "text", 12),
    _Column("vendor", "text", 18),
    _Column("category", "text", 12),
    _Column("amount", "money", 13),
    _Column("score", "score", 8),
    _Column("message", "text", 60),
    _Column("link", "link", 9),
    _Column("status", "text", 10),
    _Column("comment", "text", 36),
)


def column_letter(index: int) -> str:
    """Excel column letters of a 1-based index: 1 → A, 27 → AA."""
    letters = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def findings_column(key: str) -> str:
    """Letter of a findings-sheet column by key, e.g. ``"status"`` → ``"P"``."""
    keys = [c.key for c in FINDINGS_LAYOUT]
    return column_letter(keys.index(key) + 1)


def sheet_reference(sheet: str) -> str:
    """A sheet name quoted for a cell reference: ``O'Brien`` → ``'O''Brien'`` (Excel doubles quotes)."""
    return "'" + str(sheet).replace("'", "''") + "'"


# --------------------------------------------------------------------------- reviewer notes

def _clean_notes(notes: pd.DataFrame | None) -> pd.DataFrame:
    """Notes with text ids, one line per id (the last wins, as in the sheet read last)."""
    if notes is None or notes.empty:
        return empty_notes()
    notes = notes.loc[notes["finding_id"].notna(), ["finding_id", "status", "comment"]].astype(object)
    notes["finding_id"] = notes["finding_id"].map(str)
    return notes.drop_duplicates("finding_id", keep="last").reset_index(drop=True)


def _carries_information(notes: pd.DataFrame, lang: str) -> pd.Series:
    """True for notes a reviewer touched: a status other than Open, or any comment."""
    open_label = i18n.t("status.open", lang)
    status = notes["status"].map(lambda v: normalize_status(v, lang))
    comment = notes["comment"].map(lambda v: v is not None and not pd.isna(v) and str(v).strip() != "")
    return (status != open_label) | comment


def find_orphan_notes(findings: pd.DataFrame, notes: pd.DataFrame | None, lang: str) -> pd.DataFrame:
    """Reviewer notes whose finding is gone this run (``finding_id, status, comment``).

    Untouched notes (Open, no comment) are not listed: they carry nothing a reviewer wrote.
    """
    notes = _clean_notes(notes)
    if notes.empty:
        return notes
    current = set(findings["finding_id"].map(str))
    gone = notes[~notes["finding_id"].isin(current)]
    gone = gone[_carries_information(gone, lang)].copy()
    gone["status"] = gone["status"].map(lambda v: normalize_status(v, lang))
    return gone.reset_index(drop=True)


def _merge_notes(findings: pd.DataFrame, notes: pd.DataFrame | None, lang: str) -> tuple[list, list]:
    """Status and Comment per finding: kept from ``notes`` by id, else Open and blank."""
    notes = _clean_notes(notes)
    ids = findings["finding_id"].map(str)
    by_id = notes.set_index("finding_id")
    raw_status = ids.map(by_id["status"]) if not notes.empty else pd.Series(None, index=ids.index, dtype=object)
    # None for every kind of missing (NaN is not equal to itself, so it cannot be a dict key)
    raw_status = _cells(raw_status)
    # normalise each distinct value once: thousands of findings share three statuses
    distinct = {v: normalize_status(v, lang) for v in set(raw_status)}
    status = [distinct[v] for v in raw_status]
    comment = ids.map(by_id["comment"]) if not notes.empty else pd.Series(None, index=ids.index, dtype=object)
    return status, _cells(comment)


# --------------------------------------------------------------------------- cell conversion

def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _plain(value: Any) -> Any:
    """A plain Python cell value (None for any kind of missing, datetimes as datetime)."""
    if _is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar → Python scalar
    return value


def _cells(series: pd.Series) -> list:
    """A column as plain cell values, vectorised (this runs over every finding).

    float64/Int64/str columns cast to object already hold Python scalars; datetimes become
    ``datetime.datetime``; every kind of missing (NaN, NA, NaT) becomes None.
    """
    missing = series.isna().to_numpy()
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        values = series.array.to_pydatetime()
    elif series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        # mixed objects may hold numpy scalars or Timestamps: convert one by one (text columns,
        # the usual case, are all str and missing values: taken as they are, below)
        return [_plain(v) for v in series]
    else:
        values = series.to_numpy(dtype=object)
    values = values.copy()
    values[missing] = None
    return values.tolist()


def _date_cells(series: pd.Series) -> list:
    """Dates as datetime (Excel date cells); unparseable text stays text rather than vanish."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _cells(series)
    parsed = pd.to_datetime(series, errors="coerce")
    return [_plain(p) if not _is_missing(p) else _plain(v) for p, v in zip(parsed.astype(object), series.astype(object))]


def _number_cells(series: pd.Series) -> list:
    return _cells(pd.to_numeric(series, errors="coerce"))


def _row_cells(series: pd.Series) -> list:
    rows = pd.to_numeric(series, errors="coerce")
    return [None if _is_missing(v) else int(v) for v in rows.astype(object)]


# --------------------------------------------------------------------------- findings sheet

def build_findings_sheet(
    findings: pd.DataFrame,
    *,
    lang: str,
    ledger_sheet: str,
    columns: Mapping[str, str],
    notes: pd.DataFrame | None = None,
    rule_titles: Mapping[str, str] | None = None,
) -> NewSheet:
    """The 审计明细/Audit Findings sheet: a Table of findings a reviewer works through.

    ``columns`` maps canonical ledger columns to their letters in the source sheet; links go
    to the amount cell when the amount column is known (that is the number a reviewer
    checks), else to column A of the row. Group findings (no row) get no link.
    """
    if len(findings) > EXCEL_MAX_ROWS - 1:
        raise OutputError(f"{len(findings):,} findings do not fit on one sheet (Excel's limit is "
                          f"{EXCEL_MAX_ROWS - 1:,})", "raise the thresholds or export with --findings-csv")
    rule_titles = rule_titles or {}
    n = len(findings)
    last_row = n + 1
    layout = FINDINGS_LAYOUT
    link_col = findings_column("link")
    target_col = columns.get("amount") or "A"

    rows = _row_cells(findings["row"])
    sheets = [s if s is not None else ledger_sheet for s in _cells(findings["sheet"])]
    status, comment = _merge_notes(findings, notes, lang)
    severity_labels = {sev: i18n.t(f"severity.{sev}", lang) for sev in SEVERITIES}

    values_by_key: dict[str, list] = {
        "finding_id": [str(v) for v in _cells(findings["finding_id"])],
        "severity": [severity_labels.get(v, v) for v in _cells(findings["severity"])],
        "rule": _cells(findings["rule"]),
        "rule_title": [rule_titles.get(r, r) for r in _cells(findings["rule"])],
        # a group finding's sheet stays blank rather than borrow the ledger sheet
        "sheet": [sheet if row is not None else source for sheet, row, source in
                  zip(sheets, rows, _cells(findings["sheet"]))],
        "row": rows,
        "date": _date_cells(findings["date"]),
        "person": _cells(findings["person"]),
        "department": _cells(findings["department"]),
        "vendor": _cells(findings["vendor"]),
        "category": _cells(findings["category"]),
        "amount": _number_cells(findings["amount"]),
        "score": _number_cells(findings["score"]),
        "message": _cells(findings["message"]),
        "link": [f"→ {target_col}{row}" if row is not None else None for row in rows],
        "status": status,
        "comment": comment,
    }
    header = [i18n.t(f"col.{c.key}", lang) for c in layout]
    body = list(zip(*(values_by_key[c.key] for c in layout))) if n else []
    # Excel needs at least one data row under a Table header: leave it blank when there
    # are no findings, so the Table (and its filter) still exists for the next run.
    table_last = max(last_row, 2)
    last_col = column_letter(len(layout))

    quoted = {sheet: sheet_reference(sheet) for sheet in set(sheets) if sheet is not None}
    hyperlinks = [
        Hyperlink(cell=f"{link_col}{i + 2}", location=f"{quoted[sheet]}!{target_col}{row}")
        for i, (sheet, row) in enumerate(zip(sheets, rows)) if row is not None
    ]
    status_col = findings_column("status")
    severity_col = findings_column("severity")
    return NewSheet(
        name=i18n.t("sheet.findings", lang),
        blocks=[
            Block(row=1, col=1, values=[header], row_style="header"),
            Block(row=2, col=1, values=body, styles=[c.style for c in layout]),
        ],
        col_widths={i + 1: c.width for i, c in enumerate(layout)},
        freeze="A2",
        tables=[TableSpec(name=FINDINGS_TABLE, ref=f"A1:{last_col}{table_last}")],
        # The dropdown covers the whole column below the header, so rows a reviewer adds
        # (or the Table grows into) get it too.
        validations=[ListValidation(sqref=f"{status_col}2:{status_col}{EXCEL_MAX_ROWS}",
                                    options=status_options(lang), prompt=i18n.t("status.prompt", lang))],
        hyperlinks=hyperlinks,
        cond_formats=[
            CondFormat(sqref=f"{severity_col}2:{severity_col}{table_last}",
                       formula=f'${severity_col}2="{severity_labels[sev]}"', highlight=sev)
            for sev in SEVERITIES
        ],
    )


# --------------------------------------------------------------------------- summary sheet

class _Cursor:
    """Stacks titled blocks down column A with a blank row between them."""

    def __init__(self) -> None:
        self.row = 1
        self.blocks: list[Block] = []

    def title(self, text: str) -> int:
        """A block title; returns its row (charts anchor next to it)."""
        row = self.row
        self.blocks.append(Block(row=row, col=1, values=[[text]], row_style="title"))
        self.row += 1
        return row

    def header(self, labels: Sequence[str]) -> None:
        self.blocks.append(Block(row=self.row, col=1, values=[list(labels)], row_style="header"))
        self.row += 1

    def rows(self, values: Sequence[Sequence[Any]], styles: Sequence[str | None] | None = None) -> int:
        """Data rows; returns the first row they occupy."""
        first = self.row
        if values:
            self.blocks.append(Block(row=first, col=1, values=[list(v) for v in values], styles=styles))
            self.row += len(values)
        return first

    def pair(self, label: str, value: Any, style: str | None = None) -> None:
        self.blocks.append(Block(row=self.row, col=1, values=[[label, value]], styles=["label", style]))
        self.row += 1

    def gap(self) -> None:
        self.row += 1


def _label_or_blank(value: Any, lang: str) -> Any:
    value = _plain(value)
    return i18n.t("summary.blank", lang) if value is None or value == "" else value


def _records(df: pd.DataFrame, cols: Sequence[str]) -> list[list]:
    return [list(r) for r in zip(*(_cells(df[c]) for c in cols))] if len(df) else []


def _fmt_date(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    return value.date().isoformat() if isinstance(value, dt.datetime) else str(value)


def _headline(cur: _Cursor, summary: Mapping[str, pd.DataFrame], rejected: pd.DataFrame,
              totals_rows: Sequence[int], lang: str) -> None:
    cur.title(i18n.t("summary.headline", lang))
    totals = summary["totals"].iloc[0]
    by_sev = summary["by_severity"].set_index("severity")
    date_min, date_max = _fmt_date(totals["date_min"]), _fmt_date(totals["date_max"])
    cur.pair(i18n.t("summary.rows_read", lang), int(totals["rows"]), "int")
    cur.pair(i18n.t("summary.total_amount", lang), float(totals["amount"]), "money")
    cur.pair(i18n.t("summary.date_range", lang), f"{date_min} ~ {date_max}" if date_min else "")
    cur.pair(i18n.t("summary.findings_total", lang), int(totals["findings"]), "int")
    for sev in SEVERITIES:
        count = int(by_sev.loc[sev, "findings"]) if sev in by_sev.index else 0
        cur.pair(i18n.t(f"summary.findings_{sev}", lang), count, "int")
    cur.pair(i18n.t("summary.rows_flagged", lang), int(totals["flagged_rows"]), "int")
    cur.pair(i18n.t("summary.amount_at_risk", lang), float(totals["amount_at_risk"]), "money")
    cur.pair(i18n.t("summary.rejected_count", lang), int(len(rejected)), "int")
    cur.pair(i18n.t("summary.totals_count", lang), int(len(totals_rows)), "int")


def _table_block(cur: _Cursor, title: str, header: Sequence[str], values: list[list],
                 styles: Sequence[str | None], lang: str) -> int:
    """Title, header and rows (or one "(none)" line); returns the first data row."""
    cur.title(title)
    cur.header(header)
    if not values:
        return cur.rows([[i18n.t("summary.none", lang)]])
    return cur.rows(values, styles)


def _count_labels(lang: str) -> list[str]:
    return [i18n.t(k, lang) for k in ("col.findings", "col.rows_flagged", "col.amount_at_risk")]


def _by_rule_block(cur: _Cursor, by_rule: pd.DataFrame, rule_titles: Mapping[str, str], lang: str) -> None:
    values = [[rule_titles.get(rule, rule), rule, i18n.t(f"severity.{sev}", lang), f, r, a]
              for rule, sev, f, r, a in _records(by_rule, ["rule", "severity", "findings", "rows", "amount"])]
    header = [i18n.t("col.rule_title", lang), i18n.t("col.rule", lang), i18n.t("col.severity", lang),
              *_count_labels(lang)]
    _table_block(cur, i18n.t("summary.by_rule", lang), header, values,
                 ["text", "text", "text", "int", "int", "money"], lang)


def _by_key_block(cur: _Cursor, df: pd.DataFrame, key: str, title_key: str, lang: str, limit: int | None) -> None:
    df = df.head(limit) if limit else df
    values = [[_label_or_blank(k, lang), f, r, a]
              for k, f, r, a in _records(df, [key, "findings", "rows", "amount"])]
    header = [i18n.t(f"col.{key}", lang), *_count_labels(lang)]
    _table_block(cur, i18n.t(title_key, lang), header, values, ["text", "int", "int", "money"], lang)


def _group_label(value: Any, lang: str) -> Any:
    """The population group (no person) reads "全部/All"."""
    value = _plain(value)
    if value is None or str(value).strip().lower() in ("", "all", "__all__", "population", "*"):
        return i18n.t("summary.group_population", lang)
    return value


def _conformity_label(value: Any, lang: str) -> Any:
    value = _plain(value)
    if value is None:
        return i18n.t("benford.not_judged", lang)
    key = "benford." + str(value).strip().lower().replace(" ", "_").replace("-", "")
    return i18n.t(key, lang) if key in i18n.LABELS["en"] else value


def _benford_blocks(cur: _Cursor, benford: Any, lang: str) -> list[ChartSpec]:
    """The digit table with a native column chart beside it, then MAD/conformity by group."""
    digits = benford.digits
    header = [i18n.t(k, lang) for k in ("col.digit", "col.count", "col.actual", "col.expected")]
    title_row = cur.title(i18n.t("summary.benford", lang))
    cur.header(header)
    values = _records(digits, ["digit", "count", "actual", "expected"])
    values = [[None if d is None else int(d), c, a, e] for d, c, a, e in values]
    first = cur.rows(values, [None, "int", "percent", "percent"])
    charts: list[ChartSpec] = []
    if values:
        last = first + len(values) - 1
        categories = f"A{first}:A{last}"
        charts.append(ChartSpec(
            kind="col",
            title=i18n.t("summary.benford_chart", lang),
            series=[ChartSeries(header[2], f"C{first}:C{last}", categories),
                    ChartSeries(header[3], f"D{first}:D{last}", categories)],
            # right of the tables (they use columns A–F), so no block runs under the chart
            anchor=f"H{title_row}",
            width=9,
            height=16,
            y_axis_format="0%",
        ))
    groups = getattr(benford, "groups", None)
    if groups is not None:
        cur.gap()
        yes, no = i18n.t("summary.yes", lang), i18n.t("summary.no", lang)
        rows = [[_group_label(g, lang), n, mad, _conformity_label(c, lang), yes if j else no]
                for g, n, mad, c, j in _records(groups, ["group", "n", "mad", "conformity", "judged"])]
        header = [i18n.t(k, lang) for k in ("col.group", "col.n", "col.mad", "col.conformity", "col.judged")]
        _table_block(cur, i18n.t("summary.benford_groups", lang), header, rows,
                     ["text", "int", "score", "text", "text"], lang)
    return charts


def _preview_block(cur: _Cursor, preview: pd.DataFrame, rule_titles: Mapping[str, str], lang: str) -> None:
    """One line per (rule, setting, value); the value in use is marked so the team sees where it stands."""
    current = _cells(preview["current"]) if "current" in preview else [None] * len(preview)
    mark = i18n.t("summary.current_mark", lang)
    values = [[rule_titles.get(rule, rule), setting, value, flagged, mark if now else None]
              for (rule, setting, value, flagged), now in
              zip(_records(preview, ["rule", "setting", "value", "flagged"]), current)]
    header = [i18n.t(k, lang) for k in ("col.rule", "col.setting", "col.value", "col.flagged", "col.current")]
    _table_block(cur, i18n.t("summary.preview", lang), header, values, ["text", "text", None, "int", "text"], lang)


def _orphans_block(cur: _Cursor, orphans: pd.DataFrame, lang: str) -> None:
    gone = i18n.t("note.orphaned", lang)
    values = [[fid, status, comment, gone]
              for fid, status, comment in _records(orphans, ["finding_id", "status", "comment"])]
    header = [i18n.t(k, lang) for k in ("col.finding_id", "col.status", "col.comment", "col.note_state")]
    _table_block(cur, i18n.t("summary.orphans", lang), header, values, ["text", "text", "text", "text"], lang)


def _setting_text(value: Any) -> Any:
    """A setting as one cell, in the form a Settings sheet accepts back (``k=v; k2=v2``, ``a, b``)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    if value is None:
        return ""
    return value


#: Run-record keys shown first, with their labels; other keys follow as given.
_RUN_KEYS = ("tool_version", "input_file", "input_sha256", "time", "lang", "ledger_sheet")


def _run_record_block(cur: _Cursor, run_record: Mapping[str, Any], lang: str) -> None:
    cur.title(i18n.t("summary.run_record", lang))
    ordered = [k for k in _RUN_KEYS if k in run_record]
    ordered += [k for k in run_record if k not in _RUN_KEYS and k != "settings"]
    for key in ordered:
        value = run_record[key]
        label = i18n.t(f"run.{key}", lang) if f"run.{key}" in i18n.LABELS["en"] else str(key)
        style = None
        if isinstance(value, dt.datetime):
            # Excel has no time zones: keep aware times as ISO text so the offset is not lost
            style = "datetime" if value.tzinfo is None else None
            value = value if value.tzinfo is None else value.isoformat(timespec="seconds")
        cur.pair(label, _setting_text(value), style)
    settings = run_record.get("settings") or {}
    if settings:
        cur.gap()
        cur.header([i18n.t("col.setting", lang), i18n.t("col.value", lang)])
        cur.rows([[str(k), _setting_text(v)] for k, v in settings.items()], ["text", "text"])


def _rejected_blocks(cur: _Cursor, rejected: pd.DataFrame, totals_rows: Sequence[int], lang: str) -> None:
    """Every unreadable row and every totals row: none of the input may vanish unexplained."""
    values = [[s, None if r is None else int(r), why]
              for s, r, why in _records(rejected, ["sheet", "row", "reason"])]
    header = [i18n.t(k, lang) for k in ("col.sheet", "col.row", "col.reason")]
    _table_block(cur, i18n.t("summary.rejected", lang), header, values, ["text", None, "wrap"], lang)
    cur.gap()
    _table_block(cur, i18n.t("summary.totals_rows", lang), [i18n.t("col.row", lang)],
                 [[int(r)] for r in totals_rows], [None], lang)


def build_summary_sheet(
    summary: Mapping[str, pd.DataFrame],
    *,
    lang: str,
    benford: Any = None,
    preview: pd.DataFrame | None = None,
    rejected: pd.DataFrame | None = None,
    totals_rows: Iterable[int] = (),
    run_record: Mapping[str, Any] | None = None,
    orphan_notes: pd.DataFrame | None = None,
    rule_titles: Mapping[str, str] | None = None,
) -> NewSheet:
    """The 审计摘要/Audit Summary sheet: titled blocks stacked down the sheet.

    Order: headline, by rule, by department, by person (top 50), Benford (table, chart,
    groups), threshold preview, orphaned reviewer notes, run record, and last the unreadable
    and totals rows — last because that list can be long and must not push the rest away.
    """
    rule_titles = rule_titles or {}
    rejected = rejected if rejected is not None else pd.DataFrame(columns=["sheet", "row", "reason"])
    totals_rows = list(totals_rows)
    cur = _Cursor()
    cur.title(i18n.t("summary.title", lang))
    cur.gap()
    steps: list[Callable[[], Any]] = [
        lambda: _headline(cur, summary, rejected, totals_rows, lang),
        lambda: _by_rule_block(cur, summary["by_rule"], rule_titles, lang),
        lambda: _by_key_block(cur, summary["by_department"], "department", "summary.by_department", lang, None),
        lambda: _by_key_block(cur, summary["by_person"], "person", "summary.by_person", lang, 50),
    ]
    charts: list[ChartSpec] = []
    if benford is not None:
        steps.append(lambda: charts.extend(_benford_blocks(cur, benford, lang)))
    if preview is not None:
        steps.append(lambda: _preview_block(cur, preview, rule_titles, lang))
    if orphan_notes is not None and len(orphan_notes):
        steps.append(lambda: _orphans_block(cur, orphan_notes, lang))
    if run_record:
        steps.append(lambda: _run_record_block(cur, run_record, lang))
    steps.append(lambda: _rejected_blocks(cur, rejected, totals_rows, lang))
    for step in steps:
        step()
        cur.gap()
    return NewSheet(
        name=i18n.t("sheet.summary", lang),
        blocks=cur.blocks,
        col_widths={1: 34, 2: 20, 3: 14, 4: 14, 5: 16, 6: 16},
        charts=charts,
    )


def _side_record(sheet: NewSheet, run_record: Mapping[str, Any], lang: str) -> Block:
    """The run record beside the findings Table (one gap column), so this sheet alone also says
    which tool, input (SHA-256) and settings produced it."""
    _, _, _, last_col = parse_range(sheet.tables[0].ref)
    keys = [k for k in _RUN_KEYS if k in run_record]
    rows = [[i18n.t(f"run.{k}", lang), _setting_text(run_record[k])] for k in keys]
    if run_record.get("settings"):
        rows.append([i18n.t("run.settings", lang), _setting_text(run_record["settings"])])
    sheet.col_widths.setdefault(last_col + 2, 18.0)
    return Block(1, last_col + 2, rows, styles=["label", "text"])


def build_audit_sheets(
    findings: pd.DataFrame,
    summary: Mapping[str, pd.DataFrame],
    *,
    lang: str | None = None,
    ledger: Any = None,
    settings: Any = None,
    ledger_sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
    rule_titles: Mapping[str, str] | None = None,
    notes: pd.DataFrame | None = None,
    benford: Any = None,
    preview: pd.DataFrame | None = None,
    rejected: pd.DataFrame | None = None,
    totals_rows: Iterable[int] | None = None,
    run_record: Mapping[str, Any] | None = None,
) -> list[NewSheet]:
    """``[summary, findings]`` sheets for one run, with reviewer notes carried over.

    ``summary`` is :func:`xl_expense.core.audit.summary.summarize_findings` of ``findings``
    (computed by the workflow: io does not import core). ``ledger`` (a
    :class:`~xl_expense.io.ledger_reader.Ledger`) supplies the sheet, column letters,
    rejected and totals rows, and ``settings`` the language, unless given explicitly.
    """
    lang = lang or getattr(settings, "lang", None) or "zh"
    if ledger is not None:
        ledger_sheet = ledger_sheet if ledger_sheet is not None else ledger.sheet
        if columns is None:
            columns = {key: ref.letter for key, ref in ledger.columns.items()}
        rejected = rejected if rejected is not None else ledger.rejected
        totals_rows = totals_rows if totals_rows is not None else ledger.totals_rows
    findings_sheet = build_findings_sheet(findings, lang=lang, ledger_sheet=ledger_sheet or "", columns=columns or {},
                                          notes=notes, rule_titles=rule_titles)
    if run_record:
        findings_sheet.blocks.append(_side_record(findings_sheet, run_record, lang))
    summary_sheet = build_summary_sheet(summary, lang=lang, benford=benford, preview=preview,
                                        rejected=rejected, totals_rows=totals_rows or (), run_record=run_record,
                                        orphan_notes=find_orphan_notes(findings, notes, lang),
                                        rule_titles=rule_titles)
    return [summary_sheet, findings_sheet]
