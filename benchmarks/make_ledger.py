"""Write large synthetic ledgers fast, for benchmarks (not part of the package).

openpyxl needs minutes for a million rows, so the sheet XML is written directly: a
title row, a Chinese header, shared strings as Excel itself writes them, dates as serials
with a date style, and a 合计 row at the end.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

HEADERS = ["日期", "报销人", "部门", "客户", "费用类别", "摘要", "供应商", "发票号", "金额（元）", "项目"]
CATEGORIES = ["售后服务", "技术支持", "备件维修", "差旅费", "客户招待", "通讯费", "培训费", "市场活动", "物流费", "办公费"]

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"""
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="费用明细" sheetId="1" r:id="rId1"/></sheets></workbook>"""
_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"""
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"""


def _col(i: int) -> str:
    return "ABCDEFGHIJ"[i]


def write_big_ledger(path: str | Path, rows: int, seed: int = 1) -> Path:
    """A ledger of ``rows`` expense rows (1 title + 1 header + rows + 1 合计 ≤ 1,048,576 rows)."""
    rng = np.random.default_rng(seed)
    people = [f"员工{i:03d}" for i in range(200)]
    depts = [f"销售{i}部" for i in range(8)]
    customers = [f"客户{i:04d}有限公司" for i in range(3000)]
    vendors = [f"供应商{i:04d}" for i in range(2000)]
    descs = [f"{c}相关服务{i}" for i in range(50) for c in CATEGORIES]
    projects = [f"MT-{i:03d}" for i in range(60)]
    strings = [*HEADERS, "2025年度销售维护费明细", "合计", *people, *depts, *customers, *vendors, *CATEGORIES, *descs, *projects]
    index = {s: i for i, s in enumerate(strings)}

    p = rng.integers(len(people), size=rows)
    # Claims fall on working days, as in real ledgers; 3 % on weekends (to keep that rule busy).
    days = 45658 + np.arange(365)  # 2025-01-01 … 2025-12-31 as Excel serials
    weekday = (days - 2) % 7 < 5  # serial 45658 (2025-01-01) is a Wednesday
    serial = np.where(rng.random(rows) < 0.97, rng.choice(days[weekday], size=rows),
                      rng.choice(days[~weekday], size=rows))
    amount = np.round(rng.lognormal(6.5, 1.0, size=rows), 2)
    cat = rng.integers(len(CATEGORIES), size=rows)
    cust = rng.integers(len(customers), size=rows)
    vend = rng.integers(len(vendors), size=rows)
    desc = cat + len(CATEGORIES) * rng.integers(50, size=rows)
    proj = rng.integers(len(projects), size=rows)
    receipt = rng.integers(10_000_000, 99_999_999, size=rows)

    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        sst = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
        zf.writestr("xl/sharedStrings.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
                    f'uniqueCount="{len(strings)}">{sst}</sst>')
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.'
                      b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            out.write(f'<row r="1"><c r="A1" t="s"><v>{index["2025年度销售维护费明细"]}</v></c></row>'.encode())
            header = "".join(f'<c r="{_col(i)}2" t="s"><v>{index[h]}</v></c>' for i, h in enumerate(HEADERS))
            out.write(f'<row r="2">{header}</row>'.encode())
            chunk = []
            for k in range(rows):
                r = k + 3
                s = lambda col, value: f'<c r="{col}{r}" t="s"><v>{value}</v></c>'  # noqa: E731
                chunk.append(
                    f'<row r="{r}"><c r="A{r}" s="1"><v>{serial[k]}</v></c>{s("B", index[people[p[k]]])}'
                    f'{s("C", index[depts[p[k] % len(depts)]])}{s("D", index[customers[cust[k]]])}'
                    f'{s("E", index[CATEGORIES[cat[k]]])}{s("F", index[descs[desc[k]]])}{s("G", index[vendors[vend[k]]])}'
                    f'<c r="H{r}"><v>{receipt[k]}</v></c><c r="I{r}" s="2"><v>{amount[k]}</v></c>'
                    f'{s("J", index[projects[proj[k]]])}</row>')
                if len(chunk) == 10000:
                    out.write("".join(chunk).encode())
                    chunk = []
            last = rows + 3
            chunk.append(f'<row r="{last}"><c r="A{last}" t="s"><v>{index["合计"]}</v></c>'
                         f'<c r="I{last}"><f>SUM(I3:I{last - 1})</f></c></row>')
            out.write("".join(chunk).encode())
            out.write(b"</sheetData></worksheet>")
    return path


if __name__ == "__main__":
    import sys

    write_big_ledger(sys.argv[1], int(sys.argv[2]))
