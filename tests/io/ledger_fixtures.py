"""Build messy ledger workbooks in a test's tmp_path, the way people really lay them out.

Every builder returns the path it wrote. Strings starting with ``=`` become formulas
(openpyxl's rule), which is how the fixtures plant ``SUM`` totals rows.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Sequence

import openpyxl
from openpyxl.utils.cell import coordinate_from_string, column_index_from_string
from openpyxl.worksheet.table import Table

CN_HEADER = ["日期", "支出对象", "摘要", "金额", "费用类别"]
EN_HEADER = ["Date", "Merchant", "Description", "Amount", "Category", "Employee"]


def write_rows(path: Path, rows: Sequence[Sequence[object]], *, sheet: str = "费用明细",
               start: str = "A1", merges: Sequence[str] = (), table: str | None = None,
               other_sheets: dict[str, Sequence[Sequence[object]]] | None = None) -> Path:
    """Write ``rows`` with their top-left cell at ``start``; optionally merge ranges and
    turn the block into an Excel Table named ``table``. ``other_sheets`` come first."""
    book = openpyxl.Workbook()
    first = book.active
    for name, other in (other_sheets or {}).items():
        ws = book.create_sheet(name)
        for r, row in enumerate(other, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(r, c, value)
    ws = book.create_sheet(sheet)
    book.remove(first)
    letters, row0 = coordinate_from_string(start)
    col0 = column_index_from_string(letters)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                ws.cell(row0 + r, col0 + c, value)
    for rng in merges:
        ws.merge_cells(rng)
    if table:
        from openpyxl.utils import get_column_letter
        width = max(len(r) for r in rows)
        ref = f"{start}:{get_column_letter(col0 + width - 1)}{row0 + len(rows) - 1}"
        ws.add_table(Table(displayName=table, ref=ref))
    book.save(path)
    return path


def chinese_ledger(path: Path) -> Path:
    """A typical hand-made 销售维护费 sheet: merged title, a note, header in row 4,
    messy amounts and dates, blank rows, a bad row, a 合计 row with a SUM formula.

    Excel rows (as Excel shows them):
      1 title (merged A1:E1)   2 blank   3 note   4 header
      5–9 expenses            10 blank  11 bad amount  12 bad date  13 amount missing
      14 expense              15 小计 label row (no formula)   16 合计 with =SUM(D5:D14)
    """
    rows = [
        ["华东区销售维护费明细 2026年3月", None, None, None, None],
        [None] * 5,
        ["单位：元", None, None, None, None],
        CN_HEADER,
        [dt.date(2026, 3, 2), "海底捞", "宴请客户张总", 1234.5, "业务招待费"],
        ["2026/3/3", "滴滴出行", "拜访客户打车", "¥88.00", "交通费"],
        ["2026年3月4日", "中国移动", "话费", "1,200.00元", "通讯费"],
        [46086, "京东", "礼品  退货", "（120.00）", "礼品"],
        ["2026-03-06", "全家", "加班餐", "￥３５．５０", "餐费"],
        [None] * 5,
        ["2026-03-07", "星巴克", "咖啡", "abc", "餐费"],
        ["三月七号", "星巴克", "咖啡", 30, "餐费"],
        ["2026-03-08", "顺丰", "寄样品", None, "快递费"],
        ["20260309", "如家", "出差住宿", "RMB 300", "住宿费"],
        [None, None, "小计", 2768.0, None],
        ["合 计", None, None, "=SUM(D5:D14)", None],
    ]
    return write_rows(path, rows, merges=["A1:E1"])


def replace_member(src: Path, dst: Path, member: str, data: bytes) -> Path:
    """Copy a zip package, replacing (or adding) one member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != member:
                zout.writestr(info, zin.read(info.filename))
        zout.writestr(member, data)
    return dst
