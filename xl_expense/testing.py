"""Helpers for tests that compare workbook packages (used by our tests and the corpus benchmark).

The promise of :mod:`xl_expense.io.xlsx_package` is checkable byte for byte: every zip
member of the input other than the sheet-listing parts comes out identical, and
``styles.xml`` only grows at the end of its collections. These functions say where that
promise is broken, in lines a person can read.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from xml.etree.ElementTree import Element, tostring

from defusedxml.ElementTree import fromstring

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

#: Collections of styles.xml whose children are referenced by index from cells and rules.
STYLE_COLLECTIONS = ("numFmts", "fonts", "fills", "borders", "cellStyleXfs", "cellXfs", "cellStyles", "dxfs")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(root: Element, name: str) -> list[Element] | None:
    el = root.find(f"{{{MAIN_NS}}}{name}")
    return None if el is None else list(el)


def styles_differences(original: bytes, new: bytes) -> list[str]:
    """Why ``new`` is not ``original`` with children appended; empty when it is.

    Each original child of the indexed collections must serialise identically at the same
    index in ``new``; a ``count`` attribute must equal the number of children; every other
    top-level element (``tableStyles``, ``colors``, ``extLst`` …) must be unchanged.
    """
    old_root, new_root = fromstring(original), fromstring(new)
    problems: list[str] = []
    for name in STYLE_COLLECTIONS:
        old_kids = _children(old_root, name) or []
        new_kids = _children(new_root, name)
        if new_kids is None:
            if old_kids:
                problems.append(f"{name}: removed")
            continue
        if len(new_kids) < len(old_kids):
            problems.append(f"{name}: {len(old_kids)} children became {len(new_kids)}")
            continue
        for i, (a, b) in enumerate(zip(old_kids, new_kids)):
            if tostring(a) != tostring(b):
                problems.append(f"{name}[{i}]: {tostring(a)[:120]!r} became {tostring(b)[:120]!r}")
        count = new_root.find(f"{{{MAIN_NS}}}{name}").get("count")
        if count is not None and int(count) != len(new_kids):
            problems.append(f"{name}: count={count} but {len(new_kids)} children")
    old_other = [tostring(c) for c in old_root if _local(c.tag) not in STYLE_COLLECTIONS]
    new_other = [tostring(c) for c in new_root if _local(c.tag) not in STYLE_COLLECTIONS]
    if old_other != new_other:
        problems.append("elements outside the indexed collections changed")
    if old_root.attrib != new_root.attrib:
        problems.append("styleSheet attributes changed")
    return problems


def styles_append_only(original_bytes: bytes, new_bytes: bytes) -> bool:
    """True when ``new_bytes`` only appends to ``original_bytes``' style collections."""
    return not styles_differences(original_bytes, new_bytes)


def _key(name: str) -> str:
    """Zip member names compare case-insensitively, with either slash (Windows zippers)."""
    return name.replace("\\", "/").lower()


def _workbook_parts(zf: zipfile.ZipFile) -> tuple[str, str, str | None]:
    """(workbook part, its rels part, styles part) as zip member names, found via ``_rels/.rels``."""
    import posixpath

    names = {_key(n): n for n in zf.namelist()}
    root = fromstring(zf.read(names["_rels/.rels"]))
    target = next(el.get("Target") for el in root if el.get("Type", "").endswith("/officeDocument"))
    wb_key = _key(target.lstrip("/"))
    wb = names.get(wb_key, wb_key)
    folder, name = posixpath.split(wb_key)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    styles = None
    if rels.lower() in names:
        for el in fromstring(zf.read(names[rels.lower()])):
            if el.get("Type", "").endswith("/styles"):
                t = el.get("Target", "")
                p = t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join(folder, t))
                styles = names.get(p.lower(), p)
    return wb, names.get(rels.lower(), rels), styles


def _raw_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's stored (compressed) bytes, read without decompressing or checking its CRC."""
    fp = zf.fp
    fp.seek(info.header_offset + 26)
    name_len, extra_len = struct.unpack("<2H", fp.read(4))
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    return fp.read(info.compress_size)


def package_differences(src: str | Path, dst: str | Path, removed: set[str] = frozenset()) -> list[str]:
    """Members of ``src`` that are not byte-identical in ``dst`` (apart from the sheet-listing
    parts, ``docProps/app.xml`` and an append-only ``styles.xml``); empty when all are.

    ``removed`` lists members the caller expects to be gone (sheets replaced on purpose).
    """
    problems: list[str] = []
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        wb, wb_rels, styles = _workbook_parts(a)
        allowed = {"[content_types].xml", _key(wb), _key(wb_rels), "docprops/app.xml"}
        b_names = {_key(n): n for n in b.namelist()}
        for info in a.infolist():
            key = _key(info.filename)
            if key in removed:
                if key in b_names:
                    problems.append(f"{info.filename}: expected to be removed")
                continue
            if key not in b_names:
                problems.append(f"{info.filename}: missing")
                continue
            if b_names[key] != info.filename:
                problems.append(f"{info.filename}: renamed to {b_names[key]}")
            if key in allowed:
                continue
            try:
                old, new = a.read(info), b.read(b_names[key])
            except (zipfile.BadZipFile, zlib.error) as exc:  # a damaged input member: compare it raw
                if _raw_member(a, info) != _raw_member(b, b.getinfo(b_names[key])):
                    problems.append(f"{info.filename}: damaged in the input ({exc}) and not copied verbatim")
                continue
            if styles and key == _key(styles):
                problems.extend(f"{info.filename}: {p}" for p in styles_differences(old, new))
            elif old != new:
                problems.append(f"{info.filename}: bytes differ")
    return problems


# ----------------------------------------------------------------------------- corpus checks

#: Names of the two sheets the corpus checks add (an audit's findings and summary).
PROBE_SHEETS = ("审计明细", "审计摘要")


def probe_sheets(first_sheet: str) -> list:
    """Two small sheets shaped like an audit's output: a findings Table with a dropdown,
    a hyperlink to ``first_sheet``, conditional formatting and a chart; and a summary."""
    import datetime as dt

    from xl_expense.io.sheet_model import (
        Block, ChartSeries, ChartSpec, CondFormat, Formula, Hyperlink, ListValidation, NewSheet, TableSpec,
    )
    from xl_expense.io.sheet_xml import cell_location

    findings = NewSheet(
        name=PROBE_SHEETS[0],
        blocks=[Block(1, 1, [["编号", "规则", "金额", "日期", "摘要", "状态"]], row_style="header"),
                Block(2, 1, [["F1", "duplicate", 1234.5, dt.date(2026, 3, 5), '=HYPERLINK("http://x","点击")', "待复核"],
                             ["F2", "round_amount", 500, dt.date(2026, 3, 6), "=cmd|' /C calc'!A0", "待复核"]],
                      styles=["text", "text", "money", "date", "wrap", None])],
        freeze="A2",
        tables=[TableSpec("AuditFindings", "A1:F3")],
        validations=[ListValidation("F2:F3", ["待复核", "已解释", "已确认"])],
        hyperlinks=[Hyperlink("A2", cell_location(first_sheet, "A1"))],
        cond_formats=[CondFormat("A2:F3", '$B2="duplicate"', "error")],
        charts=[ChartSpec("col", "金额", [ChartSeries("金额", "C2:C3", "A2:A3")], "H2")],
    )
    summary = NewSheet(name=PROBE_SHEETS[1], blocks=[
        Block(1, 1, [["审计摘要"]], row_style="title"),
        Block(2, 1, [["规则", "条数"], ["duplicate", 1], ["round_amount", 1], ["合计", Formula("SUM(B3:B4)")]],
              styles=["label", "int"]),
    ])
    return [findings, summary]


#: What the probe's findings sheet reads back as with python-calamine.
PROBE_FINDINGS_ROWS = [
    ["编号", "规则", "金额", "日期", "摘要", "状态"],
    ["F1", "duplicate", 1234.5, "2026-03-05", '=HYPERLINK("http://x","点击")', "待复核"],
    ["F2", "round_amount", 500.0, "2026-03-06", "=cmd|' /C calc'!A0", "待复核"],
]


def probe_workbook(src: str | Path, dst: str | Path) -> list[str]:
    """Add the probe sheets to ``src`` as ``dst`` and list what went wrong (empty = fine).

    Raises the :class:`~xl_expense.errors.XlExpenseError` of a refused input unchanged.
    Checks: every other member byte-identical (styles append-only), the new sheets in the
    sheet list and their cells as python-calamine reads them.
    """
    import python_calamine

    from xl_expense.io.xlsx_package import add_sheets, sheet_names

    existing = sheet_names(src)
    add_sheets(src, dst, probe_sheets(existing[0] if existing else PROBE_SHEETS[1]))
    problems = package_differences(src, dst)
    names = sheet_names(dst)
    if names[-2:] != list(PROBE_SHEETS):
        problems.append(f"sheet list ends with {names[-2:]}")
    try:
        book = python_calamine.CalamineWorkbook.from_path(str(dst))
        rows = book.get_sheet_by_name(PROBE_SHEETS[0]).to_python()
    except Exception as exc:
        if _calamine_fails(src):  # calamine cannot read this input either: not ours to judge
            return problems
        return problems + [f"calamine: {type(exc).__name__}: {exc}"]
    got = [[c.isoformat() if hasattr(c, "isoformat") else c for c in r] for r in rows]
    if got != PROBE_FINDINGS_ROWS and _calamine_misreads_styles(dst):
        # calamine counts both branches of mc:AlternateContent in cellXfs, so its style
        # indices drift; the date cells then come back as their serial numbers.
        got = [[{46086.0: "2026-03-05", 46087.0: "2026-03-06"}.get(c, c) for c in r] for r in got]
    if got != PROBE_FINDINGS_ROWS:
        problems.append(f"findings read back as {got!r}")
    return problems


def _calamine_fails(path: str | Path) -> bool:
    import python_calamine

    try:
        book = python_calamine.CalamineWorkbook.from_path(str(path))
        for name in book.sheet_names:
            book.get_sheet_by_name(name).to_python()
    except Exception:
        return True
    return False


def _calamine_misreads_styles(path: str | Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        _, _, styles = _workbook_parts(zf)
        return bool(styles) and b"AlternateContent" in zf.read(styles)


def audit_probe(src: str | Path, dst: str | Path) -> list[str]:
    """Audit ``src`` into ``dst`` with the real workflow and list what went wrong (empty = fine).

    Raises the workflow's XlExpenseError for inputs it refuses (no expense table, not a
    package …); for an audited output, every member other than the sheet-listing parts must
    be byte-identical and the two audit sheets must read back.
    """
    import python_calamine

    from xl_expense.i18n import t
    from xl_expense.workflows import audit_workbook

    from xl_expense.io.plain_copy import PACKAGE_SUFFIXES

    result = audit_workbook(src, dst)
    # A non-package input (.xls, .csv …) gets a new workbook: there is nothing to compare.
    problems = package_differences(src, dst) if Path(src).suffix.lower() in PACKAGE_SUFFIXES else []
    book = python_calamine.CalamineWorkbook.from_path(str(dst))
    try:
        names = list(book.sheet_names)
    finally:
        book.close()
    for key in ("sheet.summary", "sheet.findings"):
        if t(key, result.settings.lang) not in names:
            problems.append(f"{t(key, result.settings.lang)} missing from the output")
    return problems
