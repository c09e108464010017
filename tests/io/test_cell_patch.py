"""patch_cells: values land where asked, styles stay, and nothing else in the package changes."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import python_calamine
from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from openpyxl.worksheet.table import Table

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.errors import OutputError
from xl_expense.io.cell_patch import patch_cells
from xl_expense.io.sheet_model import Formula
from xl_expense.testing import package_differences

REPO = Path(__file__).resolve().parents[2]
BUDGET_ZH = REPO / "workbook_templates" / "budget_template_zh.xlsx"
SHEET1 = "xl/worksheets/sheet1.xml"
MONTH_COLS = "CDEFGHIJKLMN"  # 1月…12月 of XE_Budget; O is 全年合计
INJECTIONS = ['=HYPERLINK("http://x","点击")', "+1", "-2", "@SUM(A1)", "=cmd|' /C calc'!A0"]


# ----------------------------------------------------------------------------- fixtures

def styled_book(path: Path, *, epoch_1904: bool = False) -> Path:
    """Rows 1–3 and 6 with styled cells, a gap at rows 4–5, and a formula in D2."""
    wb = Workbook()
    if epoch_1904:
        wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.title = "数据"
    ws.append(["名称", "比例", "日期", "合计"])
    ws["A2"], ws["C2"], ws["D2"] = "甲", dt.date(2026, 1, 2), "=B2*2"
    ws["A3"], ws["B3"] = "乙", 0.5
    ws["A6"] = "末行"
    ws["B2"].number_format = ws["B3"].number_format = "0.00%"
    ws["C2"].number_format = "yyyy-mm-dd"
    ws["C3"].number_format = "yyyy-mm-dd"  # styled but empty: patched cells keep it
    wb.save(path)
    return path


def sheet_xml(path: Path, member: str = SHEET1) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read(member).decode("utf-8")


def calamine_rows(path: Path, sheet: str) -> list[list]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return book.get_sheet_by_name(sheet).to_python()
    finally:
        book.close()


def changed_members(src: Path, dst: Path, removed: set[str] = frozenset()) -> set[str]:
    """Names of the members package_differences reports as changed (nothing else may differ).

    It never reports the sheet-listing parts (content types, workbook part and its rels):
    tests that care compare those directly.
    """
    problems = package_differences(src, dst, removed=set(removed))
    names = set()
    for p in problems:
        name, _, why = p.partition(": ")
        assert why == "bytes differ", p
        names.add(name)
    return names


def handmade_book(path: Path, sheet_data: str, *, prefix: str = "", extra_wb: str = "<calcPr calcId=\"1\"/>",
                  before_sheet_data: str = "", calc_chain: bool = False) -> Path:
    """A minimal package written by hand, to reach XML shapes openpyxl never writes
    (``x:`` prefixes, rows/cells without ``r``, self-closing rows, shared/array formulas)."""
    x = prefix
    ns = f'xmlns{":" + x[:-1] if x else ""}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    r_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    chain_ct = ('<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                'spreadsheetml.calcChain+xml"/>') if calc_chain else ""
    chain_rel = f'<Relationship Id="rId9" Type="{rel}/calcChain" Target="calcChain.xml"/>' if calc_chain else ""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            f'spreadsheetml.styles+xml"/>{chain_ct}</Types>'),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<{x}workbook {ns} {r_ns}><{x}sheets><{x}sheet name="S" sheetId="1" r:id="rId1"/></{x}sheets>'
            f'{extra_wb.replace("<", "<" + x).replace("<" + x + "/", "</" + x)}</{x}workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/>{chain_rel}</Relationships>'),
        "xl/styles.xml": (
            f'<{x}styleSheet {ns}><{x}numFmts count="1"><{x}numFmt numFmtId="164" formatCode="0.000"/></{x}numFmts>'
            f'<{x}fonts count="1"><{x}font><{x}sz val="11"/><{x}name val="Calibri"/></{x}font></{x}fonts>'
            f'<{x}fills count="2"><{x}fill><{x}patternFill patternType="none"/></{x}fill><{x}fill>'
            f'<{x}patternFill patternType="gray125"/></{x}fill></{x}fills>'
            f'<{x}borders count="1"><{x}border/></{x}borders>'
            f'<{x}cellStyleXfs count="1"><{x}xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></{x}cellStyleXfs>'
            f'<{x}cellXfs count="2"><{x}xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            f'<{x}xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></{x}cellXfs>'
            f'</{x}styleSheet>'),
        SHEET1: (f'<{x}worksheet {ns}>{before_sheet_data}<{x}sheetData>{sheet_data}</{x}sheetData></{x}worksheet>'
                 if sheet_data else f'<{x}worksheet {ns}>{before_sheet_data}<{x}sheetData/></{x}worksheet>'),
    }
    if calc_chain:
        parts["xl/calcChain.xml"] = ('<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                     '<c r="B1" i="1"/></calcChain>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return path


# ----------------------------------------------------------------------------- values and styles

def test_values_styles_and_order_read_back(tmp_path: Path) -> None:
    src = styled_book(tmp_path / "in.xlsx")
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "数据", {
        "B2": 0.25,                      # number into a styled cell that had a value
        "C3": dt.date(2026, 3, 5),       # date into a styled empty cell
        "B3": None,                      # clears the value, keeps the % style
        "A2": INJECTIONS[0],             # text that looks like a formula stays text
        "E2": "新列",                    # new cell at the end of a row
        "B6": 7,                         # new cell in the middle of … a row with only A6
        "A4": "插入行", "C4": 1.5,        # new row between rows 3 and 6
        "A5": "+1",                      # another new row, right after it
        "C8": dt.datetime(2026, 3, 5, 12, 30),  # new row after the last one
        "F1": True,
    })
    wb = load_workbook(dst)
    ws = wb["数据"]
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=1, max_row=8, max_col=6)] == [
        ["名称", "比例", "日期", "合计", None, True],
        [INJECTIONS[0], 0.25, dt.datetime(2026, 1, 2), "=B2*2", "新列", None],
        ["乙", None, dt.datetime(2026, 3, 5), None, None, None],
        ["插入行", None, 1.5, None, None, None],
        ["+1", None, None, None, None, None],
        ["末行", 7, None, None, None, None],
        [None] * 6,
        [None, None, 46086.520833333336, None, None, None],  # no style on a new cell: a plain number
    ]
    assert ws["B2"].number_format == "0.00%" and ws["B3"].number_format == "0.00%"
    assert ws["C3"].number_format == "yyyy-mm-dd"
    assert ws["A2"].data_type == "s" and ws["A5"].data_type == "s"
    rows = calamine_rows(dst, "数据")
    assert rows[1][:2] == [INJECTIONS[0], 0.25] and rows[2][2] == dt.date(2026, 3, 5)
    assert rows[3][0] == "插入行" and rows[4][0] == "+1" and rows[5][:2] == ["末行", 7]
    xml = sheet_xml(dst)
    assert [int(n) for n in re.findall(r'<row r="(\d+)"', xml)] == [1, 2, 3, 4, 5, 6, 8]
    assert re.search(r'<c r="B3" s="\d+"/>', xml)  # cleared: style kept, no value, no type
    assert re.search(r'<dimension ref="A1:F8" ?/>', xml)


def test_dates_follow_the_1904_system(tmp_path: Path) -> None:
    src = styled_book(tmp_path / "mac.xlsx", epoch_1904=True)
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "数据", {"C3": dt.date(2026, 3, 5), "C4": dt.date(1850, 1, 1)})
    xml = sheet_xml(dst)
    assert re.search(r'<c r="C3" s="\d+"><v>44624</v></c>', xml)  # 46086 − 1462 days
    assert load_workbook(dst)["数据"]["C3"].value == dt.datetime(2026, 3, 5)
    assert calamine_rows(dst, "数据")[3][2] == "1850-01-01"  # no serial before the epoch: ISO text


def test_style_from_above_for_new_lines(tmp_path: Path) -> None:
    src = styled_book(tmp_path / "in.xlsx")
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "数据", {"B4": 0.1, "C4": dt.date(2026, 5, 1), "D4": 3}, style_from_above=True)
    ws = load_workbook(dst)["数据"]
    assert ws["B4"].number_format == "0.00%" and ws["C4"].number_format == "yyyy-mm-dd"
    assert ws["D4"].number_format == "General"  # D3 does not exist: nothing to copy
    assert ws["C4"].value == dt.datetime(2026, 5, 1)


def test_handmade_shapes_prefixed_namespace(tmp_path: Path) -> None:
    """``x:`` prefix, rows and cells without ``r``, self-closing rows and cells, rich text."""
    data = ('<x:row><x:c t="inlineStr"><x:is><x:r><x:rPr><x:b/></x:rPr><x:t>粗</x:t></x:r>'
            '<x:r><x:t>体</x:t></x:r></x:is></x:c><x:c s="1"><x:v>1</x:v></x:c></x:row>'
            '<x:row r="3" spans="1:3"/>'
            '<x:row><x:c r="C4" s="1"/></x:row>'
            '<x:row r="7"><x:c r="A7"><x:v>7</x:v></x:c></x:row>')
    src = handmade_book(tmp_path / "x.xlsx", data, prefix="x:",
                        before_sheet_data='<x:dimension ref="A1:C7"/><x:cols><x:col min="2" max="2" style="1"/></x:cols>')
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "S", {"A1": "纯文本", "B1": 2.5, "C1": 3, "B3": 4, "A4": 5, "C4": 6, "A5": "新",
                                "B5": 8})
    xml = sheet_xml(dst)
    assert '<x:c r="A1" t="inlineStr"><x:is><x:t xml:space="preserve">纯文本</x:t></x:is></x:c>' in xml
    assert '<x:c r="B1" s="1"><x:v>2.5</x:v></x:c>' in xml
    assert '<x:row r="3" spans="1:3"><x:c r="B3" s="1"><x:v>4</x:v></x:c></x:row>' in xml  # column style
    assert '<x:row r="5"><x:c r="A5" t="inlineStr">' in xml
    assert '<x:row r="4"><x:c r="A4"><x:v>5</x:v></x:c><x:c r="C4" s="1"><x:v>6</x:v></x:c></x:row>' in xml
    # the row after the inserted row 5 kept its number explicitly
    assert '<x:row r="7">' in xml
    ws = load_workbook(dst)["S"]
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=1, max_row=7, max_col=3)] == [
        ["纯文本", 2.5, 3], [None] * 3, [None, 4, None], [5, None, 6], ["新", 8, None], [None] * 3,
        [7, None, None]]
    assert ws["B1"].number_format == "0.000" and ws["B5"].number_format == "0.000"
    assert calamine_rows(dst, "S")[3] == [5.0, "", 6.0]


def test_rows_without_r_after_an_inserted_row_keep_their_number(tmp_path: Path) -> None:
    data = '<row r="1"><c r="A1"><v>1</v></c></row><row r="3"><c r="A3"><v>3</v></c></row><row><c><v>4</v></c></row>'
    src = handmade_book(tmp_path / "implicit.xlsx", data)
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "S", {"A2": 2, "B4": 44})
    ws = load_workbook(dst)["S"]
    assert [ws.cell(r, 1).value for r in range(1, 5)] == [1, 2, 3, 4] and ws["B4"].value == 44


def test_new_cells_take_the_row_style_excel_shows(tmp_path: Path) -> None:
    data = '<row r="1" s="1" customFormat="1"/><row r="2" s="1"><c r="A2"><v>1</v></c></row>'
    src = handmade_book(tmp_path / "rowstyle.xlsx", data)
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "S", {"B1": 0.5, "B2": 0.5})
    xml = sheet_xml(dst)
    assert '<row r="1" s="1" customFormat="1"><c r="B1" s="1"><v>0.5</v></c></row>' in xml
    assert '<c r="B2"><v>0.5</v></c>' in xml  # s without customFormat is not applied by Excel


def test_tables_only_and_totals_row(tmp_path: Path) -> None:
    from xl_expense.io.cell_patch import _retarget_table

    text = ('<table xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" id="1" name="T" '
            'displayName="T" ref="A1:B4" totalsRowCount="1"><autoFilter ref="A1:B3"><sortState ref="A2:B3">'
            '<sortCondition ref="B2:B3"/></sortState></autoFilter><tableColumns count="2"/></table>')
    attrib = {"ref": "A1:B4", "totalsRowCount": "1"}
    assert _retarget_table(text, attrib, (1, 1, 6, 2)) == text.replace('ref="A1:B4"', 'ref="A1:B6"').replace(
        'ref="A1:B3"', 'ref="A1:B5"').replace('ref="A2:B3"', 'ref="A2:B5"').replace('ref="B2:B3"', 'ref="B2:B5"')
    src = BUDGET_ZH
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "预算", {}, tables={"XE_Budget": "A1:O40"})  # a Table may shrink too
    assert load_workbook(dst)["预算"].tables["XE_Budget"].ref == "A1:O40"
    assert changed_members(src, dst) == {"xl/tables/table1.xml"}


def test_empty_sheet_data(tmp_path: Path) -> None:
    src = handmade_book(tmp_path / "empty.xlsx", "")
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "S", {"B2": 1, "A1": "a"})
    assert calamine_rows(dst, "S") == [["a", ""], ["", 1.0]]


def test_numbers_formulas_and_types(tmp_path: Path) -> None:
    import numpy as np

    src = styled_book(tmp_path / "in.xlsx")
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "数据", {"B2": np.int64(3), "B3": float("nan"), "B6": Formula("=B2+1"),
                                   "B7": 12345678901.25, "B8": -0.0001})
    xml = sheet_xml(dst)
    assert re.search(r'<c r="B2" s="\d+"><v>3</v></c>', xml)
    assert '<c r="B6"><f>B2+1</f></c>' in xml
    assert "<v>12345678901.25</v>" in xml and "<v>-0.0001</v>" in xml
    assert load_workbook(dst)["数据"]["B3"].value is None
    with pytest.raises(TypeError):
        patch_cells(src, dst, "数据", {"B2": object()})
    with pytest.raises(OutputError, match="infinite"):
        patch_cells(src, dst, "数据", {"B2": float("inf")})


# ----------------------------------------------------------------------------- package promise

def test_other_members_byte_identical_and_full_calc_on_load(tmp_path: Path) -> None:
    src = tmp_path / "in.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "预算"
    ws.append(["类别", "金额"])
    ws.append(["差旅", 1])
    ws.add_table(Table(displayName="T1", ref="A1:B2"))
    wb.create_sheet("其他")["A1"] = "不动"
    wb.save(src)
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "预算", {"B2": 5, "A3": "招待", "B3": 6}, tables={"t1": "A1:B3"})
    # openpyxl already wrote fullCalcOnLoad="1": the workbook part is untouched too
    assert changed_members(src, dst) == {SHEET1, "xl/tables/table1.xml"}
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        assert a.read("xl/workbook.xml") == b.read("xl/workbook.xml")
        table = b.read("xl/tables/table1.xml").decode()
    assert 'ref="A1:B3"' in table and '<autoFilter ref="A1:B3"' in table
    assert load_workbook(dst)["预算"].tables["T1"].ref == "A1:B3"
    assert calamine_rows(dst, "预算") == [["类别", "金额"], ["差旅", 5.0], ["招待", 6.0]]


@pytest.mark.parametrize("calc_pr, expected", [
    ('<definedNames><definedName name="n">S!$A$1</definedName></definedNames>',
     '</definedNames><calcPr fullCalcOnLoad="1"/>'),
    ('<calcPr calcId="1"/><oleSize ref="A1:B2"/>', '<calcPr calcId="1" fullCalcOnLoad="1"/><oleSize'),
    ('<calcPr calcId="1" fullCalcOnLoad="0"></calcPr>', '<calcPr calcId="1" fullCalcOnLoad="1"></calcPr>'),
    ("", '</sheets><calcPr fullCalcOnLoad="1"/>'),
])
def test_full_calc_on_load_is_set_in_schema_order(tmp_path: Path, calc_pr: str, expected: str) -> None:
    src = handmade_book(tmp_path / "in.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>', extra_wb=calc_pr)
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "S", {"A1": 2})
    assert expected in sheet_xml(dst, "xl/workbook.xml")
    assert changed_members(src, dst) == {SHEET1}
    assert load_workbook(dst)["S"]["A1"].value == 2


def test_calc_chain_dropped_only_when_a_formula_is_overwritten(tmp_path: Path) -> None:
    data = '<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>A1*2</f><v>2</v></c></row>'
    src = handmade_book(tmp_path / "in.xlsx", data, calc_chain=True)
    kept = tmp_path / "kept.xlsx"
    patch_cells(src, kept, "S", {"A1": 5, "C1": Formula("A1+1")})  # a new formula is not an overwrite
    assert changed_members(src, kept) == {SHEET1}
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(kept) as b:
        for name in ("[Content_Types].xml", "xl/_rels/workbook.xml.rels", "xl/calcChain.xml"):
            assert a.read(name) == b.read(name), name
    dropped = tmp_path / "dropped.xlsx"
    patch_cells(src, dropped, "S", {"B1": 10})
    assert changed_members(src, dropped, removed={"xl/calcchain.xml"}) == {SHEET1}
    with zipfile.ZipFile(dropped) as zf:
        assert "xl/calcChain.xml" not in zf.namelist()
        assert b"calcChain" not in zf.read("[Content_Types].xml")
        assert b"calcChain" not in zf.read("xl/_rels/workbook.xml.rels")
    assert load_workbook(dropped)["S"]["B1"].value == 10
    cleared = tmp_path / "cleared.xlsx"
    patch_cells(src, cleared, "S", {"B1": None})
    with zipfile.ZipFile(cleared) as zf:
        assert "xl/calcChain.xml" not in zf.namelist()


def test_in_place_write_leaves_no_temp_file(tmp_path: Path) -> None:
    book = styled_book(tmp_path / "book.xlsx")
    original = tmp_path / "original.xlsx"
    shutil.copy(book, original)
    patch_cells(book, book, "数据", {"B3": 0.75})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx", "original.xlsx"]
    assert load_workbook(book)["数据"]["B3"].value == 0.75
    assert changed_members(original, book) == {SHEET1}


# ----------------------------------------------------------------------------- refusals

def test_errors_name_what_to_fix(tmp_path: Path) -> None:
    src = BUDGET_ZH
    dst = tmp_path / "out.xlsx"
    with pytest.raises(OutputError, match="no sheet named 'Budget'.*'预算'"):
        patch_cells(src, dst, "Budget", {"C2": 1})
    with pytest.raises(OutputError, match="no Table named 'XE_Ledger' on sheet '预算'.*XE_Budget"):
        patch_cells(src, dst, "预算", {"C2": 1}, tables={"XE_Ledger": "A1:J3"})
    for bad in ("2C", "C0", "ZZZZ1", "C", ""):
        with pytest.raises(OutputError, match="cell reference"):
            patch_cells(src, dst, "预算", {bad: 1})
    with pytest.raises(OutputError, match="only its last row can change"):
        patch_cells(src, dst, "预算", {"C2": 1}, tables={"XE_Budget": "A1:P60"})
    with pytest.raises(OutputError, match="bad Table range"):
        patch_cells(src, dst, "预算", {"C2": 1}, tables={"XE_Budget": "A1:O"})
    with pytest.raises(OutputError, match="at least one data row"):
        patch_cells(src, dst, "预算", {"C2": 1}, tables={"XE_Budget": "A1:O1"})
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp files left behind


def test_shared_formula_master_and_array_formulas_are_refused(tmp_path: Path) -> None:
    data = ('<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f t="shared" ref="B1:B3" si="0">A1*2</f><v>2</v></c>'
            '<c r="C1"><f t="array" ref="C1:C2">A1:A2*3</f><v>3</v></c></row>'
            '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f t="shared" si="0"/><v>4</v></c><c r="C2"><v>6</v></c></row>'
            '<row r="3"><c r="B3"><f t="shared" si="0"/><v>0</v></c></row>')
    src = handmade_book(tmp_path / "in.xlsx", data)
    dst = tmp_path / "out.xlsx"
    with pytest.raises(OutputError, match=r"B1 of sheet 'S' holds a shared formula .* B1:B3"):
        patch_cells(src, dst, "S", {"B1": 1})
    with pytest.raises(OutputError, match="C2 of sheet 'S' is part of the array formula C1:C2"):
        patch_cells(src, dst, "S", {"C2": 1})
    patch_cells(src, dst, "S", {"B2": 9})  # a dependant of a shared formula is an ordinary cell
    assert load_workbook(dst)["S"]["B2"].value == 9


# ----------------------------------------------------------------------------- the budget template

def _budget_patch() -> tuple[dict[str, object], dict[tuple[str, str], float]]:
    """Every month of lines 2–4, and two new lines 52–53 (52 repeats line 2's key)."""
    cells: dict[str, object] = {}
    totals: dict[int, float] = {}
    for row in (2, 3, 4, 52, 53):
        months = [round(100.25 * row + 7.5 * i, 2) for i in range(12)]
        cells.update({f"{c}{row}": v for c, v in zip(MONTH_COLS, months)})
        totals[row] = sum(months)
    cells.update({"A52": "售后服务", "B52": "华东销售部", "A53": "差旅费", "B53": "大客户部"})
    for row in (52, 53):
        cells[f"O{row}"] = Formula("SUM(XE_Budget[[#This Row],[1月]:[12月]])")
    return cells, totals


def test_budget_template_patch_keeps_the_package(tmp_path: Path) -> None:
    cells, _ = _budget_patch()
    dst = tmp_path / "budget.xlsx"
    patch_cells(BUDGET_ZH, dst, "预算", cells, tables={"XE_Budget": "A1:O53"}, style_from_above=True)
    assert changed_members(BUDGET_ZH, dst) == {SHEET1, "xl/tables/table1.xml"}
    ws = load_workbook(dst)["预算"]
    assert ws.tables["XE_Budget"].ref == "A1:O53"
    assert ws["C2"].value == cells["C2"] and ws["C53"].value == cells["C53"]
    assert ws["C52"].number_format == ws["C2"].number_format == "#,##0.00"
    assert ws["O2"].value == "=SUM(XE_Budget[[#This Row],[1月]:[12月]])"  # untouched formula cell


@needs_soffice
def test_budget_template_recalculates_in_libreoffice(tmp_path: Path) -> None:
    cells, totals = _budget_patch()
    dst = tmp_path / "budget.xlsx"
    patch_cells(BUDGET_ZH, dst, "预算", cells, tables={"XE_Budget": "A1:O53"}, style_from_above=True)
    recalculated = convert(dst, "xlsx", tmp_path / "lo")[0]
    budget = calamine_rows(recalculated, "预算")
    for row in (2, 3, 4, 52, 53):
        assert budget[row - 1][14] == pytest.approx(totals[row], abs=0.005), row
    assert budget[4][14] == 0  # line 5 untouched: months 0
    actuals = {(r[0], r[1]): r[2] for r in calamine_rows(recalculated, "执行")[1:]}
    key2 = (budget[1][0], budget[1][1])
    assert key2 == ("售后服务", "华东销售部")
    # The Actuals budget sums every XE_Budget line of the key, including the new row 52,
    # which only counts because the Table's ref grew.
    assert actuals[key2] == pytest.approx(totals[2] + totals[52], abs=0.005)
    assert actuals[(budget[2][0], budget[2][1])] == pytest.approx(totals[3], abs=0.005)
    assert actuals[(budget[3][0], budget[3][1])] == pytest.approx(totals[4], abs=0.005)
    assert actuals[("差旅费", "大客户部")] == pytest.approx(totals[53], abs=0.005)


# ----------------------------------------------------------------------------- scale

def test_thousand_cells_in_a_100k_row_sheet(tmp_path: Path) -> None:
    """Patching streams a large sheet correctly (timings belong in benchmarks/, not here)."""
    rows = "".join(f'<row r="{r}"><c r="A{r}" s="1"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>行{r}</t></is></c>'
                   f'<c r="C{r}"><f>A{r}*2</f><v>{2 * r}</v></c></row>' for r in range(1, 100_001))
    src = handmade_book(tmp_path / "big.xlsx", rows)
    dst = tmp_path / "out.xlsx"
    cells = {f"A{r}": r + 0.5 for r in range(50, 100_000, 100)}          # 1,000 existing cells
    cells.update({f"D{r}": "备注" for r in range(75, 100_000, 1000)})     # 100 new cells
    patch_cells(src, dst, "S", cells)
    got = calamine_rows(dst, "S")
    assert len(got) == 100_000
    assert got[49][0] == 50.5 and got[50][0] == 51 and got[74][3] == "备注" and got[99_949][0] == 99_950.5
    assert changed_members(src, dst) == {SHEET1}


def _table_book(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "明细"
    ws.append(["日期", "金额"])
    ws.append([dt.date(2026, 1, 5), 12.5])
    ws.append([dt.date(2026, 1, 6), 30.0])
    ws.add_table(Table(displayName="Ledger", ref="A1:B3"))
    wb.save(path)
    return path


def test_new_columns_grow_a_table_to_the_right(tmp_path: Path) -> None:
    src = _table_book(tmp_path / "t.xlsx")
    dst = tmp_path / "out.xlsx"
    cells = {"C1": "置信度", "D1": "来源", "C2": 0.9, "D2": "model", "D3": "=not a formula"}
    patch_cells(src, dst, "明细", cells, new_columns={"ledger": ["置信度", "来源"]})
    table = load_workbook(dst)["明细"].tables["Ledger"]
    assert table.ref == "A1:D3"
    assert [c.name for c in table.tableColumns] == ["日期", "金额", "置信度", "来源"]
    assert [c.id for c in table.tableColumns] == [1, 2, 3, 4]
    assert table.autoFilter.ref == "A1:D3"
    assert calamine_rows(dst, "明细")[2][3] == "=not a formula"  # text, not a formula
    assert changed_members(src, dst) == {SHEET1, "xl/tables/table1.xml"}


def test_new_columns_refuse_a_duplicate_name_and_an_unknown_table(tmp_path: Path) -> None:
    src = _table_book(tmp_path / "t.xlsx")
    with pytest.raises(OutputError, match="already has a column named '金额'"):
        patch_cells(src, tmp_path / "o.xlsx", "明细", {"C1": "金额"}, new_columns={"Ledger": ["金额"]})
    with pytest.raises(OutputError, match="no Table named 'nope'"):
        patch_cells(src, tmp_path / "o.xlsx", "明细", {"C1": "x"}, new_columns={"nope": ["x"]})


@needs_soffice
def test_grown_table_opens_in_libreoffice(tmp_path: Path) -> None:
    src = _table_book(tmp_path / "t.xlsx")
    dst = tmp_path / "out.xlsx"
    patch_cells(src, dst, "明细", {"C1": "来源", "C2": "rule", "C3": "model"}, new_columns={"Ledger": ["来源"]})
    [csv] = convert(dst, CSV_ALL_SHEETS, tmp_path / "lo")
    assert csv.read_text(encoding="utf-8").splitlines()[:2] == ["日期,金额,来源", "2026-01-05,12.5,rule"]
