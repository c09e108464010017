"""The budget workbook template: rebuilt identically, readable by everyone, right in LibreOffice.

The strongest check is the recalculation oracle: LibreOffice (a real spreadsheet
application) computes the Actuals sheet's SUMIFS formulas over the Ledger Table, and every
actual, variance, used % and remaining cell must equal what pandas computes from the same
rows, to the cent; then more rows are added to the Table and the check runs again.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import python_calamine
from click.testing import CliRunner
from defusedxml import ElementTree

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.cli import cli
from xl_expense.core.budget import MONTHS, UNIT_COLUMNS
from xl_expense.demo import INJECTION_TEXT
from xl_expense.errors import SettingsError
from xl_expense.io import budget_template as bt
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.settings_io import load_settings, read_settings_sheet

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "workbook_templates"
YEAR = 2027


# --- helpers ----------------------------------------------------------------------------------

def snapshot(path: Path) -> dict:
    """Everything the template promises, as plain data: cells, formulas, Tables, names, checks."""
    book = openpyxl.load_workbook(path)
    out: dict = {"sheets": book.sheetnames,
                 "names": {n: d.attr_text for n, d in book.defined_names.items()}}
    for ws in book.worksheets:
        out[ws.title] = {
            "state": ws.sheet_state,
            "freeze": ws.freeze_panes,
            "cells": {c.coordinate: (c.value, c.data_type, c.number_format)
                      for row in ws.iter_rows() for c in row if c.value is not None},
            "tables": {t.displayName: (t.ref, [c.name for c in t.tableColumns]) for t in ws.tables.values()},
            "validations": sorted((str(v.sqref), v.type, v.formula1) for v in ws.data_validations.dataValidation),
            "cond": sorted((str(r.sqref), tuple(rule.formula)) for r in ws.conditional_formatting
                           for rule in r.rules),
            "widths": {k: d.width for k, d in ws.column_dimensions.items()},
        }
    return out


def sample_budget(lines: list[tuple[str, str]], seed: int = 3) -> pd.DataFrame:
    """Known monthly amounts with cents, including one line with no budget at all."""
    rng = np.random.default_rng(seed)
    amounts = np.round(rng.uniform(100, 2000, size=(len(lines), 12)), 2)
    amounts[-1, :] = 0.0  # an unbudgeted line: any spend on it is an overrun
    frame = pd.DataFrame(amounts, columns=list(MONTHS))
    frame.insert(0, "unit", [u for _, u in lines])
    frame.insert(0, "category", [c for c, _ in lines])
    return frame


def sample_ledger(budget: pd.DataFrame, n: int, seed: int, unit_field: str) -> pd.DataFrame:
    """``n`` expenses on the budget's lines, plus the awkward rows a real ledger has.

    Includes rows of the year before (not counted), an unknown category, a refund, a blank
    date and a formula-looking description; amounts have cents so rounding errors would show.
    """
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(budget), size=n)
    dates = pd.Timestamp(f"{YEAR}-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D")
    frame = pd.DataFrame({
        "date": dates,
        "amount": np.round(rng.uniform(10, 6000, size=n), 2),
        "category": budget["category"].to_numpy()[pick],
        "person": rng.choice(["张伟", "李娜", "王芳"], size=n),
        "description": [f"expense {i}" for i in range(n)],
    })
    frame[unit_field] = budget["unit"].to_numpy()[pick]
    frame.loc[0, "date"] = pd.Timestamp(f"{YEAR - 1}-12-31")  # last year: excluded
    frame.loc[1, "category"] = "未列明类别"                       # no budget line: excluded
    frame.loc[2, "amount"] = -123.45                              # a refund reduces the actual
    frame.loc[3, "date"] = pd.NaT                                 # undated: not in the year
    frame.loc[4, "description"] = INJECTION_TEXT
    frame.loc[5, "date"] = pd.Timestamp(f"{YEAR}-12-31 18:30")    # last evening of the year counts
    return frame


def expected_actuals(budget: pd.DataFrame, ledger: pd.DataFrame, unit_field: str,
                     warn: float = 0.8, stop: float = 1.0) -> pd.DataFrame:
    """What the Actuals sheet must show, computed by pandas from the same rows."""
    in_year = ledger[ledger["date"].dt.year == YEAR]
    keyed = in_year.assign(unit=in_year[unit_field], month=in_year["date"].dt.month)
    total = keyed.groupby(["category", "unit"])["amount"].sum()
    by_month = keyed.pivot_table(index=["category", "unit"], columns="month", values="amount",
                                 aggfunc="sum").reindex(columns=range(1, 13))
    index = pd.MultiIndex.from_frame(budget[["category", "unit"]])
    out = budget[["category", "unit"]].copy()
    out["budget"] = budget[list(MONTHS)].sum(axis=1).to_numpy()
    out["actual"] = total.reindex(index).fillna(0.0).to_numpy()
    out["variance"] = out["budget"] - out["actual"]
    out["used"] = np.where(out["budget"] > 0, out["actual"] / out["budget"].where(out["budget"] > 0, 1), 0.0)
    out["remaining"] = out["variance"].clip(lower=0)
    over = ((out["budget"] > 0) & (out["used"] >= stop)) | ((out["budget"] <= 0) & (out["actual"] > 0))
    warned = (out["budget"] > 0) & (out["used"] >= warn)
    out["status"] = np.where(over, "stop", np.where(warned, "warn", "ok"))
    for m in range(1, 13):
        out[f"a{m}"] = by_month[m].reindex(index).fillna(0.0).to_numpy()
    return out


def read_sheet(path: Path, sheet: str) -> pd.DataFrame:
    """A recalculated sheet as a DataFrame (header in row 1), read with calamine."""
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        rows = book.get_sheet_by_name(sheet).to_python()
    finally:
        book.close()
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=object)


def assert_actuals_match(recalculated: Path, budget: pd.DataFrame, ledger: pd.DataFrame, lang: str,
                         budget_by: str) -> None:
    text = bt._TEXT[lang]
    got = read_sheet(recalculated, text["sheets"]["actuals"])
    want = expected_actuals(budget, ledger, UNIT_COLUMNS[budget_by])
    assert len(got) == len(want)
    a = text["actuals"]
    assert list(got[text["category"]]) == list(want["category"])
    assert list(got[text["unit"][budget_by]]) == list(want["unit"])
    money = {"budget": a["budget"], "actual": a["actual"], "variance": a["variance"], "remaining": a["remaining"]}
    money.update({f"a{m}": text["month_actual"][m - 1] for m in range(1, 13)})
    for key, header in money.items():
        diff = np.abs(got[header].astype(float).to_numpy() - want[key].to_numpy())
        assert diff.max() < 0.005, f"{header}: off by {diff.max()} (row {int(diff.argmax()) + 2})"
    np.testing.assert_allclose(got[a["used"]].astype(float), want["used"], rtol=0, atol=1e-9)
    assert list(got[a["status"]]) == [text["status"][s] for s in want["status"]]
    # The test data must exercise every status, else the colour thresholds are untested.
    assert set(want["status"]) == {"ok", "warn", "stop"}


def lines_for(lang: str, budget_by: str) -> list[tuple[str, str]]:
    cats = bt.DEFAULT_CATEGORIES[lang][:4]
    units = bt.DEFAULT_UNITS[budget_by][lang][:3]
    return [(c, u) for c in cats for u in units]


def tuned_budget(lines: list[tuple[str, str]], ledger_seed: int, unit_field: str, n: int) -> pd.DataFrame:
    """A budget whose lines land in every status: some at 90 % used, some over, one unbudgeted."""
    budget = sample_budget(lines)
    ledger = sample_ledger(budget, n, ledger_seed, unit_field)
    spent = expected_actuals(budget, ledger, unit_field).set_index(["category", "unit"])["actual"]
    for i, share in ((0, 0.9), (1, 1.2), (2, 1.0)):  # amber, red (over), red (exactly at the line)
        key = (budget.loc[i, "category"], budget.loc[i, "unit"])
        if spent[key] > 0:
            budget.loc[i, list(MONTHS)] = 0.0
            budget.loc[i, "m12"] = round(spent[key] / share, 2) if share != 1.0 else spent[key]
    return budget


# --- regeneration ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_committed_templates_are_what_the_code_makes(tmp_path: Path, lang: str) -> None:
    committed = COMMITTED / f"budget_template_{lang}.xlsx"
    fresh = bt.regenerate_templates(tmp_path)[("zh", "en").index(lang)]
    stale = "workbook_templates/ is stale: run python -m xl_expense.io.budget_template"
    assert snapshot(fresh) == snapshot(committed), stale
    with zipfile.ZipFile(fresh) as a, zipfile.ZipFile(committed) as b:
        assert a.namelist() == b.namelist(), stale
        for name in a.namelist():  # byte-stable: fixed document and zip times
            assert a.read(name) == b.read(name), f"{name} differs — {stale}"


def test_regenerating_gives_the_same_bytes(tmp_path: Path) -> None:
    one = bt.make_budget_template(tmp_path / "a.xlsx", year=YEAR)
    two = bt.make_budget_template(tmp_path / "b.xlsx", year=YEAR)
    assert one.read_bytes() == two.read_bytes()


# --- structure: the contract of workbook_templates/README.md -------------------------------------

def test_zh_template_defines_the_contract_names() -> None:
    snap = snapshot(COMMITTED / "budget_template_zh.xlsx")
    assert snap["sheets"] == ["预算", "费用明细", "执行", "设置", "列表"]
    assert snap["列表"]["state"] == "hidden"
    assert snap["names"] == {
        "XE_Categories": "'列表'!$A$2:$A$11", "XE_Units": "'列表'!$B$2:$B$6",
        "XE_Year": "'设置'!$B$2", "XE_BudgetBy": "'设置'!$B$3",
        "XE_WarnPct": "'设置'!$B$4", "XE_StopPct": "'设置'!$B$5",
    }
    budget_ref, budget_cols = snap["预算"]["tables"]["XE_Budget"]
    assert budget_ref == "A1:O51"  # 10 categories × 5 departments
    assert budget_cols == ["费用类别", "部门", *[f"{m}月" for m in range(1, 13)], "全年合计"]
    assert snap["预算"]["cells"]["O2"][0] == "=SUM(XE_Budget[[#This Row],[1月]:[12月]])"
    assert snap["预算"]["cells"]["A2"][0] == "售后服务" and snap["预算"]["cells"]["B51"][0] == "大客户部"
    assert snap["预算"]["cells"]["C2"] == (0, "n", "#,##0.00")
    assert snap["费用明细"]["tables"]["XE_Ledger"] == (
        "A1:J2", ["日期", "报销人", "部门", "客户", "费用类别", "摘要", "供应商", "发票号", "金额（元）", "项目"])
    assert ("E2:E20001", "list", "XE_Categories") in snap["费用明细"]["validations"]
    assert ("C2:C20001", "list", "XE_Units") in snap["费用明细"]["validations"]
    assert snap["费用明细"]["cells"] == {c: snap["费用明细"]["cells"][c] for c in
                                    [f"{col}1" for col in "ABCDEFGHIJ"]}  # headers only
    actual_d2 = snap["执行"]["cells"]["D2"][0]
    assert actual_d2.startswith("=SUMIFS(XE_Ledger[金额（元）],XE_Ledger[费用类别],XE_Actuals[[#This Row],[费用类别]],"
                                "XE_Ledger[部门],XE_Actuals[[#This Row],[部门]],XE_Ledger[日期],\">=\"&DATE(XE_Year,1,1)")
    assert snap["执行"]["tables"]["XE_Actuals"][0] == "A1:T51"
    assert ("F2:F51 H2:H51", ("OR(AND($C2>0,$F2>=XE_StopPct),AND($C2<=0,$D2>0))",)) in snap["执行"]["cond"]
    assert ("F2:F51 H2:H51", ("AND($C2>0,$F2>=XE_WarnPct)",)) in snap["执行"]["cond"]
    assert snap["执行"]["cells"]["F2"][2] == "0.0%"
    assert snap["设置"]["tables"]["XE_Controls"] == ("E1:G11", ["费用类别", "年度控制", "月度控制"])
    assert snap["设置"]["cells"]["F2"][0] == "Stop" and snap["设置"]["cells"]["G2"][0] == "Warn"
    assert ("F2:G11", "list", '"Stop,Warn,Ignore"') in snap["设置"]["validations"]
    assert all(s["freeze"] for name, s in snap.items() if name in ("预算", "费用明细", "执行", "设置"))


def test_every_xml_part_is_well_formed() -> None:
    for lang in ("zh", "en"):
        with zipfile.ZipFile(COMMITTED / f"budget_template_{lang}.xlsx") as package:
            assert package.testzip() is None
            for name in package.namelist():
                if name.endswith((".xml", ".rels")):
                    ElementTree.fromstring(package.read(name))  # raises on malformed XML


def test_settings_sheet_feeds_the_audit_settings() -> None:
    path = COMMITTED / "budget_template_en.xlsx"
    _, ignored = read_settings_sheet(path)
    assert ignored == ["Budget year", "Budget by", "Budget warn threshold", "Budget stop threshold"]
    settings, source = load_settings(path)
    assert source["source"] == "sheet"
    assert (settings.approval_limit, settings.receipt_threshold, settings.currency, settings.lang) == \
        (5000.0, 1000.0, "CNY", "en")
    assert (str(settings.period_start), str(settings.period_end)) == ("2027-01-01", "2027-12-31")
    assert {bt.BUDGET_SETTING_LABELS[k.lower()] for k in ignored} == {"year", "budget_by", "warn_pct", "stop_pct"}


def test_stage_budget_uses_the_stage_column(tmp_path: Path) -> None:
    path = bt.make_budget_template(tmp_path / "s.xlsx", year=YEAR, lang="zh", budget_by="stage")
    snap = snapshot(path)
    assert snap["费用明细"]["tables"]["XE_Ledger"][1][-1] == "销售阶段"  # an alias of the project column
    assert snap["预算"]["tables"]["XE_Budget"][1][1] == "销售阶段"
    assert "XE_Ledger[销售阶段],XE_Actuals[[#This Row],[销售阶段]]" in snap["执行"]["cells"]["D2"][0]
    assert ("J2:J20001", "list", "XE_Units") in snap["费用明细"]["validations"]
    assert snap["设置"]["cells"]["B3"][0] == "stage"


@pytest.mark.parametrize("kwargs, message", [
    ({"lang": "fr"}, "language must be zh or en"),
    ({"budget_by": "team"}, "budget_by must be one of"),
    ({"year": 27}, "calendar year"),
    ({"categories": ["差旅费", "差旅费"]}, "listed twice"),
    ({"departments": [" ", ""]}, "no departments"),
    ({"categories": ["招待*"]}, "cannot be used"),
])
def test_bad_arguments_say_how_to_fix(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        bt.make_budget_template(tmp_path / "x.xlsx", **{"year": YEAR, **kwargs})
    assert not (tmp_path / "x.xlsx").exists()


# --- the spine reads and audits the template ----------------------------------------------------

def test_ledger_reader_finds_the_table_and_the_audit_runs(tmp_path: Path) -> None:
    from xl_expense.workflows import audit_workbook

    lines = lines_for("zh", "department")
    budget = sample_budget(lines)
    ledger = sample_ledger(budget, 12, seed=5, unit_field="department")
    path = bt.make_budget_template(tmp_path / "book.xlsx", year=YEAR, budget=budget, ledger=ledger)
    read = load_ledger(path)
    assert (read.table_name, read.sheet, read.header_row) == ("XE_Ledger", "费用明细", 1)
    assert len(read.df) == 12 and len(read.rejected) == 0
    np.testing.assert_allclose(read.df["amount"], ledger["amount"])
    assert list(read.df["department"]) == list(ledger["department"])
    assert read.df.loc[4, "description"] == INJECTION_TEXT
    result = audit_workbook(path, tmp_path / "audited.xlsx")
    assert result.output.is_file() and result.settings.approval_limit == 5000.0
    assert result.run_record["table"] == "XE_Ledger"
    # The row dated last year lies outside the Settings sheet's period.
    assert 2 in set(result.findings.loc[result.findings["rule"] == "out_of_period", "row"])


def test_empty_template_reads_as_an_empty_ledger() -> None:
    read = load_ledger(COMMITTED / "budget_template_zh.xlsx")
    assert read.table_name == "XE_Ledger" and len(read.df) == 0


def test_ledger_text_is_never_a_formula(tmp_path: Path) -> None:
    ledger = pd.DataFrame({"date": [pd.Timestamp("2027-03-01")] * 3, "amount": [1.0, 2.0, 3.0],
                           "category": ["=1+1", "差旅费", "@SUM(A1)"], "description": [INJECTION_TEXT, "+cmd", "-2"]})
    path = bt.make_budget_template(tmp_path / "x.xlsx", year=YEAR, ledger=ledger)
    ws = openpyxl.load_workbook(path)["费用明细"]
    cells = [(ws[f"E{r}"], ws[f"F{r}"]) for r in (2, 3, 4)]
    assert [c.value for pair in cells for c in pair] == ["=1+1", INJECTION_TEXT, "差旅费", "+cmd", "@SUM(A1)", "-2"]
    assert {c.data_type for pair in cells for c in pair} == {"s"}
    with zipfile.ZipFile(path) as package:
        sheet_xml = package.read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml  # no formula anywhere on the Ledger sheet
    assert '<c r="F2" t="inlineStr"><is><t>=HYPERLINK(' in sheet_xml  # a string cell holding the text


# --- LibreOffice: loads, recalculates, renders ----------------------------------------------------

@needs_soffice
def test_libreoffice_loads_both_templates(tmp_path: Path) -> None:
    copies = [shutil.copy(COMMITTED / f"budget_template_{lang}.xlsx", tmp_path / f"{lang}.xlsx") for lang in ("zh", "en")]
    produced = convert([Path(p) for p in copies], CSV_ALL_SHEETS, tmp_path / "csv")
    stems = {p.stem for p in produced}
    assert {"zh-预算", "zh-费用明细", "zh-执行", "zh-设置", "en-Budget", "en-Ledger", "en-Actuals", "en-Settings"} <= stems
    actuals = (tmp_path / "csv" / "en-Actuals.csv").read_text(encoding="utf-8").splitlines()
    assert len(actuals) == 51 and actuals[1].startswith("After-sales service,East,0,0,0,")
    assert actuals[1].split(",")[7] == "OK"
    # What LibreOffice saves back still has every Table, name, dropdown, colour rule and format.
    resaved = openpyxl.load_workbook(convert(Path(copies[1]), "xlsx", tmp_path / "xlsx")[0])
    assert set(resaved.defined_names.keys()) == {"XE_Year", "XE_BudgetBy", "XE_WarnPct", "XE_StopPct",
                                                 "XE_Categories", "XE_Units"}
    assert [list(ws.tables) for ws in resaved.worksheets] == [["XE_Budget"], ["XE_Ledger"], ["XE_Actuals"],
                                                               ["XE_Controls"], []]
    assert [len(ws.data_validations.dataValidation) for ws in resaved.worksheets] == [2, 2, 0, 3, 0]
    assert len(resaved["Actuals"].conditional_formatting) == 1
    assert (resaved["Actuals"]["D2"].number_format, resaved["Actuals"]["F2"].number_format) == ("#,##0.00", "0.0%")


@needs_soffice
@pytest.mark.parametrize("lang, budget_by", [("zh", "department"), ("en", "stage")])
def test_libreoffice_recalculation_matches_pandas(tmp_path: Path, lang: str, budget_by: str) -> None:
    unit_field = UNIT_COLUMNS[budget_by]
    lines = lines_for(lang, budget_by)
    budget = tuned_budget(lines, ledger_seed=11, unit_field=unit_field, n=30)
    ledger = sample_ledger(budget, 30, seed=11, unit_field=unit_field)
    book = bt.make_budget_template(tmp_path / "book.xlsx", year=YEAR, lang=lang, budget_by=budget_by,
                                   budget=budget, ledger=ledger)

    recalculated = convert(book, "xlsx", tmp_path / "lo1")[0]
    assert_actuals_match(recalculated, budget, ledger, lang, budget_by)
    ledger_sheet = read_sheet(recalculated, bt._TEXT[lang]["sheets"]["ledger"])
    assert ledger_sheet.iloc[4, bt.LEDGER_FIELDS.index("description")] == INJECTION_TEXT  # not evaluated

    # A user adds expenses below the Table in Excel: the Table grows and the formulas follow.
    more = sample_ledger(budget, 20, seed=12, unit_field=unit_field).iloc[6:]  # no repeat of the odd rows
    wb = openpyxl.load_workbook(book)
    ws = wb[bt._TEXT[lang]["sheets"]["ledger"]]
    last = bt.write_ledger_rows(ws, more, first_row=2 + len(ledger))
    bt.extend_table(ws, bt.TABLE_LEDGER, last)
    wb.save(book)
    recalculated = convert(book, "xlsx", tmp_path / "lo2")[0]
    assert_actuals_match(recalculated, budget, pd.concat([ledger, more], ignore_index=True), lang, budget_by)


def _nonwhite_share(pgm: Path) -> float:
    """Share of pixels darker than near-white in a binary PGM (P5) from pdftoppm -gray."""
    data = pgm.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval separated by whitespace
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    pixels = np.frombuffer(data[pos + 1:], dtype=np.uint8)
    return float((pixels < 200).mean())


@needs_soffice
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed (pdftoppm)")
def test_budget_and_actuals_render_to_pdf(tmp_path: Path) -> None:
    lines = lines_for("zh", "department")
    budget = tuned_budget(lines, ledger_seed=11, unit_field="department", n=30)
    ledger = sample_ledger(budget, 30, seed=11, unit_field="department")
    book = bt.make_budget_template(tmp_path / "budget_2027.xlsx", year=YEAR, budget=budget, ledger=ledger)
    pdf = convert(book, "pdf", tmp_path / "pdf")[0]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    for word in ("售后服务", "华东销售部", "全年合计", "实际发生", "使用率", "超限", "预警"):
        assert word in text, f"{word!r} missing from the PDF"
    png_root = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(png_root)],
                   check=True, timeout=60)
    png = png_root.with_suffix(".png")
    assert png.stat().st_size > 5_000
    subprocess.run(["pdftoppm", "-gray", "-r", "40", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(png_root)],
                   check=True, timeout=60)
    assert _nonwhite_share(png_root.with_suffix(".pgm")) > 0.01, "page 1 is blank"
    print(f"budget page 1 rendered for review: {png}")


# --- command line -------------------------------------------------------------------------------

def test_cli_writes_the_template(tmp_path: Path) -> None:
    out = tmp_path / "X.xlsx"
    result = CliRunner().invoke(cli, ["template", "budget", "--year", "2027", "--lang", "en", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and str(out) in result.output
    assert out.read_bytes() == (COMMITTED / "budget_template_en.xlsx").read_bytes()


def test_cli_takes_lists_and_by(tmp_path: Path) -> None:
    out = tmp_path / "p.xlsx"
    result = CliRunner().invoke(cli, ["template", "budget", "--year", "2026", "--by", "project",
                                      "--departments", "甲项目，乙项目", "--categories", "差旅费,通讯费", "-o", str(out)])
    assert result.exit_code == 0, result.output
    snap = snapshot(out)
    assert snap["预算"]["tables"]["XE_Budget"][0] == "A1:O5"
    assert [snap["预算"]["cells"][f"B{r}"][0] for r in (2, 3)] == ["甲项目", "乙项目"]
    assert snap["设置"]["cells"]["B2"][0] == 2026


def test_cli_bad_by_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["template", "budget", "--year", "2027", "--by", "team", "-o",
                                      str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2
    assert "Invalid value for '--by'" in result.output
    assert not (tmp_path / "x.xlsx").exists()


def test_cli_bad_name_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["template", "budget", "--year", "2027", "--categories", "a?b", "-o",
                                      str(tmp_path / "x.xlsx")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        ("Error: categories name 'a?b' cannot be used in the workbook — "
         "use names up to 255 characters without control characters or * ? ~")]
