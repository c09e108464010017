"""The live-book path: XlwingsBook reads a workbook open in Excel and draws the audit into it.

Two kinds of tests:

* plain ones, over :class:`FakeBook` — a small stand-in for the part of xlwings' API the
  adapter uses (cells, used range, sheets, tables, formats, validation, links) — for the
  reading and writing logic;
* ``xlwings_license`` ones, over xlwings' own remote engine (``xw.Book(json=payload)``, the
  engine behind xlwings Server/Lite), asserting on the actions it would send to Excel
  (``book.json()["actions"]``). They need ``XLWINGS_LICENSE_KEY`` (``noncommercial`` will
  do); the product never does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from xl_expense import i18n
from xl_expense.excel import macros
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.reviewer_notes import NOTE_COLUMNS
from xl_expense.io.sheet_model import (
    Block,
    ChartSeries,
    ChartSpec,
    CondFormat,
    Formula,
    Hyperlink,
    ListValidation,
    NewSheet,
    TableSpec,
)
from xl_expense.io.sheet_xml import parse_cell, parse_range
from xl_expense.io.xlwings_book import XlwingsBook, safe_text
from xl_expense.workflows import audit_live_book, audit_workbook

NOW = dt.datetime(2026, 3, 1, 9, 0, 0)
LEDGER_SHEET = "费用明细"
HEADER = ["日期", "报销人", "部门", "供应商", "费用类别", "金额"]
FORMULA_TEXT = '=HYPERLINK("http://evil.example","点我")'


def ledger_rows() -> list[list[Any]]:
    """A ledger as finance staff keep it: a title row, the header, expenses and a 合计 row.

    Row 3 and 4 are an exact duplicate (a finding on both), rows 5–6 a pair over the approval
    limit, one vendor is text that looks like a formula.
    """
    rows: list[list[Any]] = [["2026年1月 销售维护费台账", None, None, None, None, None], list(HEADER)]
    rows.append([dt.datetime(2026, 1, 5), "张伟", "华东", "海底捞", "客户招待", 880.0])
    rows.append([dt.datetime(2026, 1, 5), "张伟", "华东", "海底捞", "客户招待", 880.0])
    rows.append([dt.datetime(2026, 1, 9), "李娜", "华南", FORMULA_TEXT, "礼品", 12000.0])
    rows.append([dt.datetime(2026, 1, 10), "李娜", "华南", "京东", "礼品", 9999.0])
    for i in range(24):
        rows.append([dt.datetime(2026, 1, 2 + i), ["王强", "赵敏", "刘洋"][i % 3], ["华北", "华东"][i % 2],
                     ["全家", "星巴克", "滴滴出行", "中国石化"][i % 4], ["交通", "餐饮"][i % 2], round(50.0 + 13.7 * i, 2)])
    rows.append(["合计", None, None, None, None, round(sum(r[5] for r in rows[2:]), 2)])
    return rows


# ============================================================================ a fake xlwings book

class FakeFont:
    def __init__(self, rng: FakeRange) -> None:
        self._rng = rng

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            return super().__setattr__(key, value)
        self._rng.sheet.log("font", self._rng.address, key, value)


class FakeValidation:
    def __init__(self, rng: FakeRange) -> None:
        self._rng = rng

    def set_list(self, options: list[str]) -> None:
        self._rng.sheet.log("validation", self._rng.address, tuple(options))


class FakeCondFormats:
    def __init__(self, rng: FakeRange) -> None:
        self._rng = rng

    def add_custom(self, formula: str, *, fill_color: str, font_color: str) -> None:
        self._rng.sheet.log("cond_format", self._rng.address, formula, fill_color, font_color)


class FakeRange:
    """A rectangle of a FakeSheet; reads and writes go to the sheet's cell dict."""

    def __init__(self, sheet: FakeSheet, r1: int, c1: int, r2: int, c2: int) -> None:
        self.sheet, self.row, self.column, self._r2, self._c2 = sheet, r1, c1, r2, c2

    @property
    def shape(self) -> tuple[int, int]:
        return self._r2 - self.row + 1, self._c2 - self.column + 1

    @property
    def address(self) -> str:
        from xl_expense.io.sheet_xml import range_ref

        return range_ref(self.row, self.column, self._r2, self._c2)

    def options(self, ndim: int | None = None) -> FakeRange:
        assert ndim == 2
        return self

    @property
    def value(self) -> list[list[Any]]:
        return [[self.sheet.cells.get((r, c)) for c in range(self.column, self._c2 + 1)]
                for r in range(self.row, self._r2 + 1)]

    @value.setter
    def value(self, grid: list[list[Any]]) -> None:
        from xl_expense.io.sheet_xml import range_ref

        # like xlwings: a 2-D list set on a cell fills the rectangle below and right of it
        written = range_ref(self.row, self.column, self.row + len(grid) - 1, self.column + len(grid[0]) - 1)
        self.sheet.log("values", written, len(grid), len(grid[0]))
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                self.sheet.cells[(self.row + i, self.column + j)] = v

    @property
    def formula(self) -> list[list[str]]:
        return [[self.sheet.formulas.get((r, c), "") for c in range(self.column, self._c2 + 1)]
                for r in range(self.row, self._r2 + 1)]

    @property
    def font(self) -> FakeFont:
        return FakeFont(self)

    @property
    def data_validation(self) -> FakeValidation:
        return FakeValidation(self)

    @property
    def conditional_formats(self) -> FakeCondFormats:
        return FakeCondFormats(self)

    def add_hyperlink(self, address: str, text_to_display: str, screen_tip: str) -> None:
        self.sheet.log("hyperlink", self.address, address, text_to_display)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("number_format", "color", "wrap_text", "column_width"):
            self.sheet.log(key, self.address, value)
        else:
            super().__setattr__(key, value)


class FakeTable:
    def __init__(self, sheet: FakeSheet, name: str, ref: str) -> None:
        self.parent, self.name = sheet, name
        r1, c1, r2, c2 = parse_range(ref)
        self.range = FakeRange(sheet, r1, c1, r2, c2)
        self.header_row_range = FakeRange(sheet, r1, c1, r1, c2)
        self.data_body_range = FakeRange(sheet, r1 + 1, c1, r2, c2) if r2 > r1 else None


class FakeTables(list):
    def __init__(self, sheet: FakeSheet) -> None:
        super().__init__()
        self._sheet = sheet

    def add(self, source: FakeRange, name: str, table_style_name: str) -> FakeTable:
        self._sheet.log("table", source.address, name, table_style_name)
        table = FakeTable(self._sheet, name, source.address)
        self.append(table)
        return table


class FakeCharts:
    def __init__(self, sheet: FakeSheet) -> None:
        self._sheet = sheet

    def add(self, **kwargs: Any) -> Any:
        raise NotImplementedError("charts are not supported by this engine")


class FakeFreeze:
    def __init__(self, sheet: FakeSheet) -> None:
        self._sheet = sheet

    def freeze_at(self, cell: str) -> None:
        self._sheet.log("freeze", cell)


class FakeSheet:
    def __init__(self, book: FakeBook, name: str, rows: list[list[Any]] | None = None) -> None:
        self.book, self.name = book, name
        self.cells: dict[tuple[int, int], Any] = {}
        self.formulas: dict[tuple[int, int], str] = {}
        self.tables = FakeTables(self)
        self.charts = FakeCharts(self)
        self.freeze_panes = FakeFreeze(self)
        for i, row in enumerate(rows or []):
            for j, v in enumerate(row):
                if v is not None:
                    self.cells[(i + 1, j + 1)] = v

    def log(self, *entry: Any) -> None:
        self.book.log.append((self.name, *entry))

    @property
    def used_range(self) -> FakeRange:
        filled = [k for k, v in self.cells.items() if v is not None]
        if not filled:
            return FakeRange(self, 1, 1, 1, 1)
        rows, cols = [r for r, _ in filled], [c for _, c in filled]
        return FakeRange(self, min(rows), min(cols), max(rows), max(cols))

    def range(self, first: Any, last: Any = None) -> FakeRange:
        if isinstance(first, str):
            return FakeRange(self, *parse_range(first))
        r1, c1 = first
        r2, c2 = last if last is not None else first
        return FakeRange(self, r1, c1, r2, c2)

    def delete(self) -> None:
        self.book.log.append((self.name, "delete"))
        self.book.sheets.items.remove(self)


class FakeSheets:
    def __init__(self, book: FakeBook) -> None:
        self.book, self.items = book, []

    def __iter__(self):
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | str) -> FakeSheet:
        if isinstance(key, int):
            return self.items[key]
        return next(s for s in self.items if s.name == key)

    def add(self, name: str, after: FakeSheet) -> FakeSheet:
        sheet = FakeSheet(self.book, name)
        self.items.insert(self.items.index(after) + 1, sheet)
        self.book.log.append((name, "add"))
        return sheet


class FakeApp:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str | None]] = []

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok", mode: str | None = None) -> str:
        self.alerts.append((prompt, mode))
        return "ok"


class FakeBook:
    """What XlwingsBook and the macros use of an ``xw.Book``."""

    def __init__(self, name: str = "台账.xlsx", sheets: dict[str, list[list[Any]]] | None = None) -> None:
        self.name, self.fullname = name, name  # never saved
        self.app = FakeApp()
        self.log: list[tuple] = []
        self.sheets = FakeSheets(self)
        for sheet_name, rows in (sheets or {}).items():
            self.sheets.items.append(FakeSheet(self, sheet_name, rows))

    def cell(self, sheet: str, ref: str) -> Any:
        return self.sheets[sheet].cells.get(parse_cell(ref))


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for cells in ws.iter_rows():
            for c in cells:
                if isinstance(c.value, str) and c.value.startswith("="):
                    c.data_type = "s"  # text that looks like a formula, as a user typed it ('=…)
    wb.save(path)
    return path


def comparable(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[["finding_id", "rule", "severity", "sheet", "row", "amount"]].reset_index(drop=True)


# ============================================================================ reading

def test_ledger_is_read_with_the_file_readers_parser(tmp_path: Path) -> None:
    rows = ledger_rows()
    live = XlwingsBook(FakeBook(sheets={"说明": [["本工作簿记录销售维护费"]], LEDGER_SHEET: rows})).ledger()
    from_file = load_ledger(write_xlsx(tmp_path / "台账.xlsx", {"说明": [["本工作簿记录销售维护费"]],
                                                                 LEDGER_SHEET: rows}))
    pd.testing.assert_frame_equal(live.df, from_file.df)
    assert (live.sheet, live.header_row, live.totals_rows) == (LEDGER_SHEET, 2, [len(rows)])
    assert live.data_rows == (3, len(rows)) and live.path == "台账.xlsx"
    assert live.df["vendor"].iloc[2] == FORMULA_TEXT and len(live.df) == len(rows) - 3


def test_our_own_sheets_are_never_taken_for_the_ledger() -> None:
    findings_like = [[i18n.t("col.date", "zh"), i18n.t("col.amount", "zh")], [dt.datetime(2026, 1, 1), 1.0]]
    book = FakeBook(sheets={i18n.t("sheet.findings", "zh"): findings_like, LEDGER_SHEET: ledger_rows()})
    assert XlwingsBook(book).ledger().sheet == LEDGER_SHEET
    with pytest.raises(Exception, match="there is no sheet named '不存在'"):
        XlwingsBook(book).ledger(sheet="不存在")


def test_an_unlabelled_sum_row_is_a_totals_row_through_its_formula() -> None:
    rows = ledger_rows()
    rows[-1][0] = None  # no 合计 label: only the SUM formula says it is a total
    book = FakeBook(sheets={LEDGER_SHEET: rows})
    book.sheets[LEDGER_SHEET].formulas[(len(rows), 6)] = f"=SUM(F3:F{len(rows) - 1})"
    ledger = XlwingsBook(book).ledger()
    assert ledger.totals_rows == [len(rows)] and len(ledger.df) == len(rows) - 3


def test_a_table_with_an_expense_header_wins() -> None:
    rows = [["备注"], *[[None] * 6] * 3, *ledger_rows()[1:-1]]
    book = FakeBook(sheets={LEDGER_SHEET: rows})
    sheet = book.sheets[LEDGER_SHEET]
    sheet.tables.append(FakeTable(sheet, "费用表", f"A5:F{len(rows)}"))
    ledger = XlwingsBook(book).ledger()
    assert (ledger.table_name, ledger.header_row, ledger.data_rows) == ("费用表", 5, (6, len(rows)))


def test_settings_and_reviewer_notes_come_from_the_book() -> None:
    findings_sheet = [[i18n.t("col.finding_id", "zh"), i18n.t("col.status", "zh"), i18n.t("col.comment", "zh")],
                      ["F-1", "已确认", 12.0], ["F-2", None, None]]
    book = XlwingsBook(FakeBook(sheets={LEDGER_SHEET: ledger_rows(), "设置": [["参数", "值"], ["审批限额", 3000]],
                                        i18n.t("sheet.findings", "zh"): findings_sheet}))
    assert book.settings_rows() == [["参数", "值"], ["审批限额", 3000]]
    notes = book.reviewer_notes()
    assert list(notes.columns) == list(NOTE_COLUMNS)
    assert notes.to_dict("records") == [{"finding_id": "F-1", "status": "已确认", "comment": "12"},
                                        {"finding_id": "F-2", "status": None, "comment": None}]
    assert XlwingsBook(FakeBook(sheets={LEDGER_SHEET: ledger_rows()})).settings_rows() is None


# ============================================================================ writing

def test_text_is_never_written_as_a_formula() -> None:
    assert safe_text(FORMULA_TEXT) == "'" + FORMULA_TEXT
    assert [safe_text(t) for t in ("+86 138", "-5", "@sum", "00123", "2026-01-05", "'quoted", "true", "海底捞")] == \
        ["'+86 138", "'-5", "'@sum", "'00123", "'2026-01-05", "''quoted", "'true", "海底捞"]
    book = FakeBook(sheets={"A": [[1]]})
    XlwingsBook(book).write_sheets([NewSheet("新", blocks=[Block(1, 1, [[FORMULA_TEXT, Formula("SUM(B1:B2)"), 3.5]])])])
    assert [book.cell("新", c) for c in ("A1", "B1", "C1")] == ["'" + FORMULA_TEXT, "=SUM(B1:B2)", 3.5]


def test_a_sheet_description_is_drawn_with_formats_table_dropdown_links_and_highlights() -> None:
    spec = NewSheet(
        name="审计明细",
        blocks=[Block(1, 1, [["编号", "金额", "状态", "链接"]], row_style="header"),
                Block(2, 1, [["F-1", 880.0, "待处理", "→ F3"], ["F-2", pd.NA, "待处理", None]],
                      styles=["text", "money", None, "link"]),
                Block(1, 6, [["标题"]], row_style="title")],
        col_widths={1: 12.0, 2: 14.0},
        freeze="A2",
        tables=[TableSpec("XE_Findings", "A1:D3")],
        validations=[ListValidation("C2:C100", ["待处理", "已解释", "已确认"], prompt="选择状态")],
        hyperlinks=[Hyperlink("D2", "'费用明细'!F3")],
        cond_formats=[CondFormat("B2:B3", '$B2>500', "error")],
        charts=[ChartSpec("col", "金额", [ChartSeries("金额", "B2:B3", "A2:A3")], anchor="H1")],
    )
    book = FakeBook(sheets={LEDGER_SHEET: [["x"]]})
    notes = XlwingsBook(book).write_sheets([spec])
    assert notes == ["审计明细: chart '金额' not drawn (NotImplementedError)"]
    log = [entry[1:] for entry in book.log if entry[0] == "审计明细"]
    assert log == [
        ("add",),
        ("values", "A1:D1", 1, 4), ("font", "A1:D1", "bold", True), ("color", "A1:D1", "#DDEBF7"),
        ("values", "A2:D3", 2, 4), ("number_format", "B2:B3", "#,##0.00"), ("font", "D2:D3", "color", "#0563C1"),
        ("values", "F1", 1, 1), ("font", "F1", "bold", True), ("font", "F1", "size", 14),
        ("column_width", "A1", 12.0), ("column_width", "B1", 14.0),
        ("table", "A1:D3", "XE_Findings", "TableStyleMedium2"),
        ("validation", "C2:C100", ("待处理", "已解释", "已确认")),
        ("hyperlink", "D2", "#'费用明细'!F3", "→ F3"),
        ("cond_format", "B2:B3", "=$B2>500", "#FFC7CE", "#9C0006"),
        ("freeze", "A2"),
    ]
    assert book.cell("审计明细", "B3") is None  # pd.NA is a blank cell


def test_rerun_replaces_our_sheets_and_refuses_to_overwrite_others() -> None:
    book = FakeBook(sheets={LEDGER_SHEET: [["x"]], "审计明细": [["old"]], "Mine": [["keep"]]})
    XlwingsBook(book).write_sheets([NewSheet("审计明细", blocks=[Block(1, 1, [["new"]])])], replace={"审计明细"})
    assert [s.name for s in book.sheets] == [LEDGER_SHEET, "Mine", "审计明细"]
    assert book.cell("审计明细", "A1") == "new"
    with pytest.raises(Exception, match="already has a sheet named 'Mine'"):
        XlwingsBook(book).write_sheets([NewSheet("Mine")], replace={"审计明细"})
    assert [s.name for s in book.sheets] == [LEDGER_SHEET, "Mine", "审计明细"]  # refused before deleting anything


# ============================================================================ the workflow and the macro

def test_live_audit_finds_what_the_file_audit_finds(tmp_path: Path) -> None:
    rows = ledger_rows()
    book = FakeBook(sheets={LEDGER_SHEET: rows})
    live = audit_live_book(XlwingsBook(book), now=NOW)
    from_file = audit_workbook(write_xlsx(tmp_path / "台账.xlsx", {LEDGER_SHEET: rows}), now=NOW)
    assert len(live.findings) > 0
    pd.testing.assert_frame_equal(comparable(live.findings), comparable(from_file.findings))
    assert live.sheets == ["审计摘要", "审计明细"] and live.output is None
    assert live.run_record["input_file"] == "台账.xlsx" and live.run_record["input_sha256"] == ""
    # the findings sheet: header, one row per finding, the formula-like vendor as text
    header = [i18n.t(f"col.{k}", "zh") for k in ("finding_id", "severity", "rule")]
    assert [book.cell("审计明细", c) for c in ("A1", "B1", "C1")] == header
    ids = [book.cell("审计明细", f"A{r}") for r in range(2, len(live.findings) + 2)]
    assert ids == list(live.findings["finding_id"]) and book.cell("审计明细", f"A{len(ids) + 2}") is None
    vendors = {v for v in book.sheets["审计明细"].cells.values() if isinstance(v, str) and "HYPERLINK" in v}
    assert vendors == {"'" + FORMULA_TEXT}


def test_reviewer_notes_survive_a_live_rerun() -> None:
    book = FakeBook(sheets={LEDGER_SHEET: ledger_rows()})
    first = audit_live_book(XlwingsBook(book), now=NOW)
    status_col = next(c for (r, c), v in book.sheets["审计明细"].cells.items() if r == 1 and v == i18n.t("col.status", "zh"))
    book.sheets["审计明细"].cells[(2, status_col)] = "已确认"
    second = audit_live_book(XlwingsBook(book), now=NOW)
    assert list(second.findings["finding_id"]) == list(first.findings["finding_id"])
    assert [s.name for s in book.sheets] == [LEDGER_SHEET, "审计摘要", "审计明细"]
    assert book.sheets["审计明细"].cells[(2, status_col)] == "已确认"


def test_audit_button_runs_on_the_live_book_and_reports_in_one_box(monkeypatch) -> None:
    book = FakeBook(sheets={LEDGER_SHEET: ledger_rows(), "设置": [["审批限额", 10000]]})
    monkeypatch.setattr(macros, "_caller", lambda: book)
    result = macros.audit_active()
    assert result.settings.approval_limit == 10000
    [(message, mode)] = book.app.alerts
    assert mode == "info"
    assert f"findings: {len(result.findings):,}" in message and "sheets added: 审计摘要, 审计明细" in message
    assert "chart" in message  # the fake engine has no charts: said, not hidden


def test_a_book_without_a_ledger_shows_the_cli_error_line() -> None:
    book = FakeBook(sheets={"Sheet1": [["hello"]]})
    assert macros.run_action(book, macros.audit_book, macros.audit_summary) is None
    [(line, mode)] = book.app.alerts
    assert mode == "critical" and "\n" not in line
    assert line.startswith("Error: 台账.xlsx: no expense table found in sheets 'Sheet1' ")
    assert line.endswith("— name the sheet with --sheet and the columns with --map date=… amount=…")


# ============================================================================ xlwings' remote engine

def remote_payload(sheets: dict[str, list[list[Any]]], name: str = "台账.xlsx") -> dict[str, Any]:
    """A book as xlwings' Office.js client sends it: values per sheet, dates as ISO text."""
    import xlwings as xw

    def cell(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return "" if v is None else v

    width = {n: max(len(r) for r in rows) for n, rows in sheets.items()}
    return {
        "client": "Office.js", "version": xw.__version__,
        "book": {"name": name, "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": [{"name": n, "values": [[cell(v) for v in r] + [""] * (width[n] - len(r)) for r in rows],
                    "pictures": [], "tables": [], "charts": [], "shapes": [], "notes": []}
                   for n, rows in sheets.items()],
    }


def actions_on(actions: list[dict], sheet_index: int, func: str) -> list[dict]:
    return [a for a in actions if a["func"] == func and a["sheet_position"] == sheet_index]


@pytest.mark.xlwings_license
def test_remote_engine_gets_the_audit_sheets_added_and_filled(tmp_path: Path) -> None:
    import xlwings as xw

    rows = ledger_rows()
    book = xw.Book(json=remote_payload({LEDGER_SHEET: rows}))
    result = audit_live_book(XlwingsBook(book), now=NOW)
    from_file = audit_workbook(write_xlsx(tmp_path / "台账.xlsx", {LEDGER_SHEET: rows}), now=NOW)
    pd.testing.assert_frame_equal(comparable(result.findings), comparable(from_file.findings))
    n = len(result.findings)
    assert n == len(from_file.findings) > 0

    actions = book.json()["actions"]
    assert [a["args"] for a in actions if a["func"] == "addSheet"] == [[1, "审计摘要"], [2, "审计明细"]]
    summary_values = actions_on(actions, 1, "setValues")
    assert summary_values[0]["values"] == [[i18n.t("summary.title", "zh")]]
    # the findings sheet: a header row, then exactly one row per finding, ids in order
    header, body = actions_on(actions, 2, "setValues")[:2]
    assert (header["start_row"], header["values"][0][:3]) == (0, [i18n.t(f"col.{k}", "zh")
                                                                  for k in ("finding_id", "severity", "rule")])
    assert (body["start_row"], body["row_count"]) == (1, n)
    assert [r[0] for r in body["values"]] == list(result.findings["finding_id"])
    assert ["'" + FORMULA_TEXT in r for r in body["values"]].count(True) >= 1
    assert not any(isinstance(v, str) and v.startswith("=") for r in body["values"] for v in r)
    [table] = actions_on(actions, 2, "addTable")
    assert table["args"][1:] == [True, "TableStyleMedium2", "XE_Findings"] and table["args"][0].endswith(f"${n + 1}")
    links = actions_on(actions, 2, "addHyperlink")
    first_row = int(result.findings["row"].dropna().iloc[0])
    assert len(links) == int(result.findings["row"].notna().sum())
    assert links[0]["args"][:2] == [f"#'{LEDGER_SHEET}'!F{first_row}", f"→ F{first_row}"]
    [dropdown] = actions_on(actions, 2, "setDataValidationList")
    status = [i18n.t(k, "zh") for k in ("status.open", "status.explained", "status.confirmed")]
    assert dropdown["args"] == [{"type": "literal", "values": status}, True]
    assert (dropdown["start_row"], dropdown["row_count"]) == (1, 1_048_575)  # the whole column below the header
    assert len(actions_on(actions, 2, "addConditionalFormat")) == 3
    assert actions_on(actions, 2, "freezePaneAtRange")
    assert actions_on(actions, 1, "addChart")  # Benford: the remote engine draws charts


@pytest.mark.xlwings_license
def test_remote_engine_rerun_replaces_the_old_sheets_and_keeps_the_status() -> None:
    import xlwings as xw

    rows = ledger_rows()
    first = audit_live_book(XlwingsBook(xw.Book(json=remote_payload({LEDGER_SHEET: rows}))), now=NOW)
    fid = first.findings["finding_id"].iloc[0]
    old = [[i18n.t("col.finding_id", "zh"), i18n.t("col.status", "zh"), i18n.t("col.comment", "zh")],
           [fid, "已确认", "客户年会，已核实"]]
    book = xw.Book(json=remote_payload({LEDGER_SHEET: rows, "审计明细": old}))
    audit_live_book(XlwingsBook(book), now=NOW)
    actions = book.json()["actions"]
    assert [a["func"] for a in actions[:2]] == ["setScreenUpdating", "sheetDelete"]
    assert actions[0]["args"] == [False] and actions[1]["sheet_position"] == 1
    assert actions[-1]["func"] == "setScreenUpdating" and actions[-1]["args"] == [True]
    body = actions_on(actions, 2, "setValues")[1]["values"]
    row = next(r for r in body if r[0] == fid)
    assert "已确认" in row and "客户年会，已核实" in row
