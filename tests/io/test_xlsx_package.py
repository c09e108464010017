"""add_sheets: new sheets read back right, and nothing else in the package changes."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest
import python_calamine
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.table import Table

from xl_expense.errors import OutputError, UnreadableWorkbook
from xl_expense.io.sheet_model import (
    Block, ChartSeries, ChartSpec, CondFormat, Formula, Hyperlink, ListValidation, NewSheet, TableSpec,
)
from xl_expense.io.sheet_xml import cell_location, escape_texts, xml_text, clean_text, MAX_CELL_TEXT
from xl_expense.io.xlsx_package import add_sheets, sheet_names
from xl_expense.testing import package_differences, styles_append_only, styles_differences

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice

INJECTIONS = [
    '=HYPERLINK("http://x","点击")',
    "+1",
    "-2",
    "@SUM(A1)",
    "=cmd|' /C calc'!A0",
    "=1+1",
]
STATUS = ["待复核", "已解释", "已确认"]


# ----------------------------------------------------------------------------- fixtures

def ledger_book(path: Path, sheets: tuple[str, ...] = ("费用明细",), table: str | None = None) -> Path:
    """A small ledger made with openpyxl; optionally a Table on the first sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheets[0]
    ws.append(["日期", "金额", "摘要"])
    ws.append([dt.date(2026, 3, 5), 1234.5, "午餐"])
    ws.append([dt.date(2026, 3, 6), 88, "出租车"])
    if table:
        ws.add_table(Table(displayName=table, ref="A1:C3"))
    for name in sheets[1:]:
        wb.create_sheet(name)["A1"] = name
    wb.save(path)
    return path


def findings_sheet(name: str = "审计明细", rows: list[list] | None = None) -> NewSheet:
    rows = rows if rows is not None else [
        ["F1", "duplicate", 1234.5, dt.date(2026, 3, 5), INJECTIONS[0], "待复核"],
        ["F2", "round_amount", 100, dt.datetime(2026, 3, 6, 12, 30), INJECTIONS[4], "待复核"],
    ]
    last = len(rows) + 1
    return NewSheet(
        name=name,
        blocks=[Block(1, 1, [["编号", "规则", "金额", "日期", "摘要", "状态"]], row_style="header"),
                Block(2, 1, rows, styles=["text", "text", "money", "date", "wrap", None])],
        col_widths={1: 10, 5: 40},
        freeze="A2",
        tables=[TableSpec("Findings", f"A1:F{last}")],
        validations=[ListValidation(f"F2:F{last}", STATUS, prompt="请选择")],
        hyperlinks=[Hyperlink("A2", cell_location("费用明细", "B2"), tooltip="跳到来源")],
        cond_formats=[CondFormat(f"A2:F{last}", '$B2="duplicate"', "error")],
        charts=[ChartSpec("col", "金额", [ChartSeries("金额", f"C2:C{last}", f"A2:A{last}")], "H2")],
        tab_color="C00000",
    )


def summary_sheet(name: str = "审计摘要") -> NewSheet:
    return NewSheet(name=name, blocks=[
        Block(1, 1, [["审计摘要"]], row_style="title"),
        Block(3, 1, [["规则", "条数"], ["duplicate", 1], ["round_amount", 1]], styles=["label", "int"]),
        Block(3, 4, [["合计"], [Formula("SUM(B4:B5)")]]),
    ], charts=[ChartSpec("line", "趋势", [ChartSeries("条数", "B4:B5", "A4:A5")], "F3", y_axis_format="0")])


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rewrite_zip(src: Path, dst: Path, changes: dict[str, bytes | None]) -> Path:
    """Copy a zip, replacing (bytes) or deleting (None) members, adding new ones."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in changes:
                if changes[info.filename] is not None:
                    zout.writestr(info.filename, changes[info.filename])
                continue
            zout.writestr(info, zin.read(info))
        for name, data in changes.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)
    return dst


@pytest.fixture
def audited(tmp_path: Path) -> tuple[Path, Path]:
    src = ledger_book(tmp_path / "ledger.xlsx")
    dst = tmp_path / "ledger_audited.xlsx"
    add_sheets(src, dst, [findings_sheet(), summary_sheet()])
    return src, dst


# ----------------------------------------------------------------------------- reading back

def test_new_sheets_are_appended_and_read_back_with_calamine(audited):
    _, dst = audited
    book = python_calamine.CalamineWorkbook.from_path(str(dst))
    assert book.sheet_names == ["费用明细", "审计明细", "审计摘要"]
    rows = book.get_sheet_by_name("审计明细").to_python()
    assert rows[0] == ["编号", "规则", "金额", "日期", "摘要", "状态"]
    assert rows[1] == ["F1", "duplicate", 1234.5, dt.date(2026, 3, 5), INJECTIONS[0], "待复核"]
    assert rows[2] == ["F2", "round_amount", 100.0, dt.datetime(2026, 3, 6, 12, 30), INJECTIONS[4], "待复核"]


def test_new_sheet_cells_read_back_with_openpyxl(audited):
    _, dst = audited
    wb = load_workbook(dst)
    ws = wb["审计明细"]
    assert ws["C2"].value == 1234.5 and ws["C2"].number_format == "#,##0.00"
    assert ws["D2"].value == dt.datetime(2026, 3, 5) and ws["D2"].number_format == "yyyy-mm-dd"
    assert ws["D3"].number_format == "yyyy-mm-dd"  # the column's style wins over the time of day
    assert ws["A1"].font.b and ws["A1"].fill.fgColor.rgb == "FFDDEBF7"
    assert ws["E2"].alignment.wrap_text
    assert ws.sheet_properties.tabColor.rgb == "FFC00000"
    assert ws.column_dimensions["E"].width == 40
    summary = wb["审计摘要"]
    assert summary["A1"].font.b and summary["A1"].font.sz == 14
    assert summary["D4"].value == "=SUM(B4:B5)"  # Formula values, and only those, are formulas
    assert summary["B4"].value == 1 and summary["B4"].number_format == "#,##0"


def test_table_validation_hyperlink_freeze_and_conditional_format(audited):
    _, dst = audited
    wb = load_workbook(dst)
    ws = wb["审计明细"]
    table = ws.tables["Findings"]
    assert table.ref == "A1:F3"
    assert table.autoFilter.ref == "A1:F3"
    assert [c.name for c in table.tableColumns] == ["编号", "规则", "金额", "日期", "摘要", "状态"]
    assert ws.freeze_panes == "A2"
    (dv,) = ws.data_validations.dataValidation
    assert dv.type == "list" and dv.formula1 == '"待复核,已解释,已确认"' and str(dv.sqref) == "F2:F3"
    assert dv.prompt == "请选择"
    assert ws["A2"].hyperlink.location == "'费用明细'!B2"
    rules = [r for cf in ws.conditional_formatting for r in cf.rules]
    assert [r.formula for r in rules] == [['$B2="duplicate"']]
    dxf = wb._differential_styles[rules[0].dxfId]
    assert dxf.fill.bgColor.rgb == "FFFFC7CE"


def test_charts_have_drawing_chart_and_relationships(audited):
    _, dst = audited
    parts = members(dst)
    charts = sorted(n for n in parts if n.startswith("xl/charts/"))
    assert charts == ["xl/charts/chart1.xml", "xl/charts/chart2.xml"]
    assert b"<c:barChart><c:barDir val=\"col\"/><c:grouping val=\"clustered\"/>" in parts["xl/charts/chart1.xml"]
    assert "<c:f>'审计明细'!$C$2:$C$3</c:f>".encode() in parts["xl/charts/chart1.xml"]
    assert b"<c:lineChart>" in parts["xl/charts/chart2.xml"]
    sheet_rels = parts["xl/worksheets/_rels/sheet2.xml.rels"].decode()
    assert 'Target="../drawings/drawing1.xml"' in sheet_rels and 'Target="../tables/table1.xml"' in sheet_rels
    assert b'Target="../charts/chart1.xml"' in parts["xl/drawings/_rels/drawing1.xml.rels"]
    types = parts["[Content_Types].xml"].decode()
    for part in ("/xl/charts/chart1.xml", "/xl/drawings/drawing1.xml", "/xl/tables/table1.xml"):
        assert f'PartName="{part}"' in types
    wb = load_workbook(dst)
    assert len(wb["审计明细"]._charts) == 1 and len(wb["审计摘要"]._charts) == 1


@pytest.mark.parametrize("text", INJECTIONS)
def test_formula_like_text_stays_text(tmp_path, text):
    src = ledger_book(tmp_path / "in.xlsx")
    add_sheets(src, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1, 1, [[text], [1]])])])
    cell = load_workbook(tmp_path / "out.xlsx")["S"]["A1"]
    assert cell.value == text and cell.data_type == "s"
    xml = members(tmp_path / "out.xlsx")["xl/worksheets/sheet2.xml"].decode()
    assert "<f>" not in xml


def test_control_characters_are_dropped_and_markup_escaped(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    nasty = "a\x00b\x01c\x0bd\x1fe\ufffe <b>&amp;</b>\ttab\nline _x0041_"
    add_sheets(src, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1, 1, [[nasty], ["ok\x07"]])])])
    rows = python_calamine.CalamineWorkbook.from_path(str(tmp_path / "out.xlsx")).get_sheet_by_name("S").to_python()
    assert rows == [["abcde <b>&amp;</b>\ttab\nline _x0041_"], ["ok"]]


def test_escaping_many_texts_equals_escaping_each():
    texts = ["plain", "a<b", "x\x00y", "_x0041_", "\r\n", "é\ud800"]
    assert escape_texts(texts) == [xml_text(clean_text(t)) for t in texts]
    assert escape_texts(["ok", "\x03bad"]) == ["ok", "bad"]


def test_long_text_is_cut_to_excels_cell_limit(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    add_sheets(src, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1, 1, [["x" * 40_000, "y"]])])])
    ws = load_workbook(tmp_path / "out.xlsx")["S"]
    assert len(ws["A1"].value) == MAX_CELL_TEXT == 32_767 and ws["B1"].value == "y"


def test_values_of_every_supported_type(tmp_path):
    import numpy as np
    import pandas as pd

    src = ledger_book(tmp_path / "in.xlsx")
    frame = pd.DataFrame({"t": ["x", None], "n": [1.5, np.nan], "d": pd.to_datetime(["2026-01-02", None])})
    sheet = NewSheet("S", blocks=[
        Block(1, 1, [[True, np.int64(7), np.float64(2.5), float("inf"), dt.time(12, 0), dt.date(1899, 1, 1), None, ""]]),
        Block(3, 1, frame),
    ])
    add_sheets(src, tmp_path / "out.xlsx", [sheet])
    rows = python_calamine.CalamineWorkbook.from_path(str(tmp_path / "out.xlsx")).get_sheet_by_name("S").to_python()
    assert rows[0][:6] == [True, 7.0, 2.5, "", "12:00:00", "1899-01-01"]
    assert rows[2][:3] == ["x", 1.5, dt.date(2026, 1, 2)]
    assert len(rows) == 3  # the all-blank frame row holds only empty cells


def test_date1904_workbooks_get_1904_serials(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    wb_xml = members(src)["xl/workbook.xml"].decode().replace("<workbookPr />", '<workbookPr date1904="1"/>')
    assert 'date1904="1"' in wb_xml
    src1904 = rewrite_zip(src, tmp_path / "in1904.xlsx", {"xl/workbook.xml": wb_xml.encode()})
    add_sheets(src1904, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1, 1, [[dt.date(2026, 3, 5)]])])])
    xml = members(tmp_path / "out.xlsx")["xl/worksheets/sheet2.xml"].decode()
    assert "<v>44624</v>" in xml  # 46086 − 1462 days between the two epochs


# ----------------------------------------------------------------------------- preservation

def test_every_other_member_is_byte_identical_and_styles_only_grow(audited):
    src, dst = audited
    assert package_differences(src, dst) == []
    before, after = members(src), members(dst)
    assert styles_append_only(before["xl/styles.xml"], after["xl/styles.xml"])
    assert before["xl/styles.xml"] != after["xl/styles.xml"]
    assert before["xl/worksheets/sheet1.xml"] == after["xl/worksheets/sheet1.xml"]
    assert list(after)[:len(before)] == list(before)  # original members keep their order


def test_unchanged_members_keep_their_compressed_bytes(audited):
    src, dst = audited
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        for name in ("xl/worksheets/sheet1.xml", "xl/theme/theme1.xml", "docProps/core.xml"):
            ia, ib = a.getinfo(name), b.getinfo(name)
            assert (ia.CRC, ia.compress_size, ia.compress_type) == (ib.CRC, ib.compress_size, ib.compress_type)


def test_styles_checker_catches_a_changed_or_reordered_style():
    original = (b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<fonts count="1"><font><sz val="11"/></font></fonts>'
                b'<cellXfs count="1"><xf numFmtId="0" fontId="0"/></cellXfs></styleSheet>')
    appended = original.replace(b'<cellXfs count="1"><xf numFmtId="0" fontId="0"/>',
                                b'<cellXfs count="2"><xf numFmtId="0" fontId="0"/><xf numFmtId="4" fontId="0"/>')
    changed = original.replace(b'<sz val="11"/>', b'<sz val="12"/>')
    inserted = original.replace(b'<cellXfs count="1"><xf', b'<cellXfs count="2"><xf numFmtId="4" fontId="0"/><xf')
    stale_count = appended.replace(b'count="2"', b'count="1"')
    assert styles_append_only(original, appended)
    assert not styles_append_only(original, changed)
    assert not styles_append_only(original, inserted)
    assert styles_differences(original, stale_count) == ["cellXfs: count=1 but 2 children"]


def test_workbook_without_styles_gets_one(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    parts = members(src)
    rels = re.sub(r'<Relationship[^>]*styles\.xml"[^>]*/>', "", parts["xl/_rels/workbook.xml.rels"].decode())
    nostyle = rewrite_zip(src, tmp_path / "nostyle.xlsx", {"xl/styles.xml": None,
                                                           "xl/_rels/workbook.xml.rels": rels.encode()})
    add_sheets(nostyle, tmp_path / "out.xlsx", [findings_sheet()])
    out = members(tmp_path / "out.xlsx")
    assert "xl/styles.xml" in out and b'PartName="/xl/styles.xml"' in out["[Content_Types].xml"]
    assert load_workbook(tmp_path / "out.xlsx")["审计明细"]["C2"].number_format == "#,##0.00"


def test_xlsm_keeps_vba_project_and_macro_content_type(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    parts = members(src)
    vba = bytes(range(256)) * 40
    types = parts["[Content_Types].xml"].decode().replace(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml").replace(
        "</Types>", '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>')
    rels = parts["xl/_rels/workbook.xml.rels"].decode().replace(
        "</Relationships>", '<Relationship Id="rId99" Type="http://schemas.microsoft.com/office/2006/relationships/'
                            'vbaProject" Target="vbaProject.bin"/></Relationships>')
    xlsm = rewrite_zip(src, tmp_path / "macro.xlsm", {"[Content_Types].xml": types.encode(),
                                                      "xl/_rels/workbook.xml.rels": rels.encode(),
                                                      "xl/vbaProject.bin": vba})
    add_sheets(xlsm, tmp_path / "out.xlsm", [findings_sheet()])
    out = members(tmp_path / "out.xlsm")
    assert out["xl/vbaProject.bin"] == vba
    assert ('PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"'
            in out["[Content_Types].xml"].decode())
    assert 'Id="rId99"' in out["xl/_rels/workbook.xml.rels"].decode()
    assert package_differences(xlsm, tmp_path / "out.xlsm") == []
    assert load_workbook(tmp_path / "out.xlsm", keep_vba=True).sheetnames == ["费用明细", "审计明细"]


def test_part_names_table_ids_and_names_do_not_collide(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx", sheets=("费用明细", "b", "c", "d", "e"), table="Findings")
    assert "xl/worksheets/sheet5.xml" in members(src) and "xl/tables/table1.xml" in members(src)
    add_sheets(src, tmp_path / "out.xlsx", [findings_sheet()])
    out = members(tmp_path / "out.xlsx")
    assert "xl/worksheets/sheet6.xml" in out and "xl/tables/table2.xml" in out
    table = out["xl/tables/table2.xml"].decode()
    assert 'id="2"' in table and 'name="Findings_2"' in table
    assert out["xl/tables/table1.xml"] == members(src)["xl/tables/table1.xml"]
    wb = load_workbook(tmp_path / "out.xlsx")
    assert set(wb["审计明细"].tables) == {"Findings_2"} and set(wb["费用明细"].tables) == {"Findings"}


def test_table_header_cells_become_unique_non_empty_column_names(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    sheet = NewSheet("S", blocks=[Block(1, 1, [["金额", None, "金额", 3], ["x", "y", "z", "w"]])],
                     tables=[TableSpec("T", "A1:D2")])
    add_sheets(src, tmp_path / "out.xlsx", [sheet])
    ws = load_workbook(tmp_path / "out.xlsx")["S"]
    names = [c.name for c in ws.tables["T"].tableColumns]
    assert names == ["金额", "Column2", "金额2", "3"]
    assert [c.value for c in ws[1]] == names  # header cells equal the column names, as Excel requires
    assert ws["A2"].value == "x"


def test_numeric_table_header_is_written_as_text(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    sheet = NewSheet("S", blocks=[Block(1, 1, [["月份", 2026], ["一月", 5]])], tables=[TableSpec("T", "A1:B2")])
    add_sheets(src, tmp_path / "out.xlsx", [sheet])
    ws = load_workbook(tmp_path / "out.xlsx")["S"]
    assert ws["B1"].value == "2026" and ws["B1"].data_type == "s"
    assert [c.name for c in ws.tables["T"].tableColumns] == ["月份", "2026"]


# ----------------------------------------------------------------------------- replace

def test_replace_three_times_gives_the_same_parts_and_a_valid_book(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    current, seen = src, []
    for run in range(3):
        out = tmp_path / f"run{run}.xlsx"
        add_sheets(current, out, [findings_sheet(), summary_sheet()], replace=["审计明细", "审计摘要"])
        parts = members(out)
        seen.append(sorted(parts))
        assert sheet_names(out) == ["费用明细", "审计明细", "审计摘要"]
        assert load_workbook(out)["审计明细"].tables["Findings"].ref == "A1:F3"
        current = out
    assert seen[0] == seen[1] == seen[2]
    assert members(tmp_path / "run1.xlsx")["xl/styles.xml"] == members(tmp_path / "run2.xlsx")["xl/styles.xml"]
    assert package_differences(src, tmp_path / "run2.xlsx") == []


def test_replace_removes_only_the_parts_the_sheet_used(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    first = tmp_path / "first.xlsx"
    add_sheets(src, first, [findings_sheet()])
    add_sheets(first, tmp_path / "second.xlsx", [], replace=["审计明细"])
    out = members(tmp_path / "second.xlsx")
    assert sorted(out) == sorted(members(src))
    assert sheet_names(tmp_path / "second.xlsx") == ["费用明细"]
    assert "sheet2" not in out["[Content_Types].xml"].decode() and "table1" not in out["[Content_Types].xml"].decode()


def test_removing_every_sheet_is_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    with pytest.raises(OutputError, match="no sheets left"):
        add_sheets(src, tmp_path / "out.xlsx", [], replace=["费用明细"])


def test_replacing_a_middle_sheet_renumbers_sheet_scoped_names(tmp_path):
    wb = Workbook()
    wb.active.title = "A"
    for name in ("Old", "B"):
        wb.create_sheet(name)
    wb.save(tmp_path / "raw.xlsx")
    wb_xml = members(tmp_path / "raw.xlsx")["xl/workbook.xml"].decode()
    names = ('<definedNames><definedName name="onOld" localSheetId="1">Old!$A$1</definedName>'
             '<definedName name="onB" localSheetId="2">B!$A$1</definedName>'
             '<definedName name="global">A!$A$1</definedName></definedNames>')
    wb_xml = re.sub(r"<definedNames\s*/>", names, wb_xml).replace('activeTab="0"', 'activeTab="1"')
    src = rewrite_zip(tmp_path / "raw.xlsx", tmp_path / "in.xlsx", {"xl/workbook.xml": wb_xml.encode()})
    add_sheets(src, tmp_path / "out.xlsx", [NewSheet("New", blocks=[Block(1, 1, [["x"]])])], replace=["old"])
    out_xml = members(tmp_path / "out.xlsx")["xl/workbook.xml"].decode()
    assert "onOld" not in out_xml
    assert '<definedName name="onB" localSheetId="1">B!$A$1</definedName>' in out_xml
    assert '<definedName name="global">A!$A$1</definedName>' in out_xml
    assert 'activeTab="2"' in out_xml  # the active sheet was replaced: the first new sheet is active
    wb2 = load_workbook(tmp_path / "out.xlsx")
    assert wb2.sheetnames == ["A", "B", "New"] and wb2.active.title == "New"
    assert wb2["B"].defined_names["onB"].attr_text == "B!$A$1"


# ----------------------------------------------------------------------------- package shapes

def test_workbook_part_found_through_package_relationships(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    parts = members(src)
    moved = rewrite_zip(src, tmp_path / "moved.xlsx", {
        "xl/workbook.xml": None, "xl/_rels/workbook.xml.rels": None,
        "xl/book.xml": parts["xl/workbook.xml"],
        "xl/_rels/book.xml.rels": parts["xl/_rels/workbook.xml.rels"],
        "_rels/.rels": parts["_rels/.rels"].replace(b"xl/workbook.xml", b"xl/book.xml"),
        "[Content_Types].xml": parts["[Content_Types].xml"].replace(b"/xl/workbook.xml", b"/xl/book.xml"),
    })
    add_sheets(moved, tmp_path / "out.xlsx", [findings_sheet()])
    assert load_workbook(tmp_path / "out.xlsx").sheetnames == ["费用明细", "审计明细"]
    assert package_differences(moved, tmp_path / "out.xlsx") == []


def test_prefixed_spreadsheetml_workbook(tmp_path):
    """Some generators (the Open XML SDK) write ``<x:workbook xmlns:x=…>``."""
    src = ledger_book(tmp_path / "in.xlsx")
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    prefixed = (f'<x:workbook xmlns:x="{main}" xmlns:r="{rel}"><x:bookViews><x:workbookView/></x:bookViews>'
                '<x:sheets><x:sheet name="费用明细" sheetId="1" r:id="rId1"/></x:sheets></x:workbook>')
    src2 = rewrite_zip(src, tmp_path / "prefixed.xlsx", {"xl/workbook.xml": prefixed.encode()})
    add_sheets(src2, tmp_path / "out.xlsx", [summary_sheet()])
    out_xml = members(tmp_path / "out.xlsx")["xl/workbook.xml"].decode()
    assert '<x:sheet name="审计摘要" sheetId="2" r:id="rId4"/></x:sheets>' in out_xml
    assert python_calamine.CalamineWorkbook.from_path(str(tmp_path / "out.xlsx")).sheet_names == ["费用明细", "审计摘要"]


def test_in_place_update(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    add_sheets(src, src, [findings_sheet()])
    assert sheet_names(src) == ["费用明细", "审计明细"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xlsx"]  # no temp file left behind


@pytest.mark.parametrize("name, why", [
    ("x" * 32, "32 characters"), ("a/b", "contains /"), ("Q1[1]", "contains"), ("  ", "blank"),
    ("'quoted", "apostrophe"), ("History", "reserved"), ("费用明细", "already has"), ("费用明细".upper(), "already has"),
])
def test_bad_sheet_names_are_refused_and_nothing_is_written(tmp_path, name, why):
    src = ledger_book(tmp_path / "in.xlsx")
    before = src.read_bytes()
    with pytest.raises(OutputError, match=re.escape(why)):
        add_sheets(src, tmp_path / "out.xlsx", [NewSheet(name)])
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xlsx"]


def test_two_new_sheets_differing_only_in_case_are_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    with pytest.raises(OutputError, match="already has a sheet named 'audit'"):
        add_sheets(src, tmp_path / "out.xlsx", [NewSheet("Audit"), NewSheet("audit")])


def test_dropdown_longer_than_255_characters_is_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    sheet = NewSheet("S", validations=[ListValidation("A1", ["选项" * 20] * 7)])
    with pytest.raises(OutputError, match="Excel allows at most 255"):
        add_sheets(src, tmp_path / "out.xlsx", [sheet])


def test_too_many_rows_are_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    with pytest.raises(OutputError, match="1,048,577 rows do not fit"):
        add_sheets(src, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1_048_577, 1, [["x"]])])])


@pytest.mark.parametrize("content, why", [
    (b"not a zip at all", "not an Excel .xlsx/.xlsm package"),
    (b"PK\x03\x04" + b"\x00" * 40, "not an Excel .xlsx/.xlsm package"),
])
def test_non_packages_are_refused_with_a_clear_error(tmp_path, content, why):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(content)
    with pytest.raises(UnreadableWorkbook, match=re.escape(why)) as err:
        add_sheets(bad, tmp_path / "out.xlsx", [NewSheet("S")])
    assert str(err.value).startswith(str(bad))


def test_truncated_workbook_is_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    data = src.read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableWorkbook):
        add_sheets(tmp_path / "cut.xlsx", tmp_path / "out.xlsx", [NewSheet("S")])


def test_zip_that_is_not_a_workbook_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "doc.xlsx", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(UnreadableWorkbook, match="not an Excel workbook package"):
        add_sheets(tmp_path / "doc.xlsx", tmp_path / "out.xlsx", [NewSheet("S")])


def test_strict_open_xml_is_refused(tmp_path):
    src = ledger_book(tmp_path / "in.xlsx")
    rels = members(src)["_rels/.rels"].replace(
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
        b"http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument")
    strict = rewrite_zip(src, tmp_path / "strict.xlsx", {"_rels/.rels": rels})
    with pytest.raises(UnreadableWorkbook, match="Strict Open XML is not supported — save as Excel Workbook"):
        add_sheets(strict, tmp_path / "out.xlsx", [NewSheet("S")])


def test_large_sheet_round_trips(tmp_path):
    """20k findings × 13 columns through the vectorised path (timings: benchmarks/)."""
    src = ledger_book(tmp_path / "in.xlsx")
    rows = [[f"F{i}", dt.date(2026, 1, 1 + i % 28), i * 1.25, "通讯费", "=x", None, i, "a", "b", "c", "d", "e", "f"]
            for i in range(20_000)]
    add_sheets(src, tmp_path / "out.xlsx", [NewSheet("S", blocks=[Block(1, 1, rows)])])
    book = python_calamine.CalamineWorkbook.from_path(str(tmp_path / "out.xlsx"))
    data = book.get_sheet_by_name("S").to_python()
    assert len(data) == 20_000 and data[19_999][:3] == ["F19999", dt.date(2026, 1, 1 + 19_999 % 28), 24998.75]


# ----------------------------------------------------------------------------- LibreOffice

@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_output_and_reads_injections_as_text(tmp_path):
    import csv

    src = ledger_book(tmp_path / "in.xlsx")
    rows = [[f"F{i}", "rule", i, dt.date(2026, 3, 5), text, "待复核"] for i, text in enumerate(INJECTIONS, start=1)]
    dst = tmp_path / "out.xlsx"
    add_sheets(src, dst, [findings_sheet(rows=rows), summary_sheet()])
    produced = convert(dst, CSV_ALL_SHEETS, tmp_path / "csv")
    by_sheet = {p.stem.split("-", 1)[1]: p for p in produced}
    assert set(by_sheet) == {"费用明细", "审计明细", "审计摘要"}
    with open(by_sheet["审计明细"], encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["编号", "规则", "金额", "日期", "摘要", "状态"]
    assert [r[4] for r in table[1:]] == INJECTIONS  # literal text, not formula results
    assert table[1][3] == "2026-03-05"
    with open(by_sheet["审计摘要"], encoding="utf-8", newline="") as fh:
        summary = list(csv.reader(fh))
    assert summary[2] == ["规则", "条数", "", "合计"]
    assert summary[3] == ["duplicate", "1", "", "2"]  # D4 = SUM(B4:B5), computed by LibreOffice
