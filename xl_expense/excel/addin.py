"""Build the ribbon add-in ``xl_expense.xlam`` from the sources in this folder.

Inputs, all text so that changes show in diffs:

* ``customUI.xml``: the ribbon (tab 销售维护费 Expenses, one button per workflow);
* ``vba/*.bas``: our VBA modules (the ribbon callbacks);
* the xlwings package installed next to us: its custom-add-in VBA module (``RunPython`` and
  the configuration reader) and its ``Dictionary`` class (a Scripting.Dictionary stand-in
  that module needs on macOS). Taking them from the installed xlwings, rather than from a
  copy in this repo, keeps the module's DLL version equal to the Python package's, which
  xlwings checks on Windows; ``xl-expense excel install`` therefore rebuilds the add-in on
  the user's machine.

The VBA project is written by :mod:`xl_expense.excel.ovba` and :mod:`xl_expense.excel.cfb`
(source only, compiled by Excel on first load); the workbook part is a minimal SpreadsheetML
package with one sheet, ``xl_expense.conf``, where the add-in's xlwings module looks for its
settings (interpreter, PYTHONPATH …). The zip is deterministic: fixed timestamps and order.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

from xl_expense.errors import XlExpenseError
from xl_expense.excel.cfb import write_compound_file
from xl_expense.excel.ovba import (
    WORKBOOK_BASE,
    VbaModule,
    class_module_from_export,
    document_module,
    vba_project_streams,
)

HERE = Path(__file__).resolve().parent
CUSTOM_UI = HERE / "customUI.xml"
VBA_DIR = HERE / "vba"

ADDIN_NAME = "xl_expense.xlam"
#: VBA project name (shown in the VBA editor as "XlExpense (xl_expense.xlam)").
PROJECT_NAME = "XlExpense"
#: xlwings' custom-add-in module reads ``<CONFIG_NAME>.conf``: a sheet of that name in the active
#: workbook or in the add-in, a file of that name next to the workbook, or the user's file.
CONFIG_NAME = "xl_expense"
CONFIG_SHEET = f"{CONFIG_NAME}.conf"
SHEET_CODENAME = "Sheet1"

#: Settings every build writes into the add-in's config sheet. The workbook's own folder is
#: kept off PYTHONPATH: our code is installed, and a stray ``xl_expense.py`` beside a ledger
#: must not shadow it.
BASE_SETTINGS: dict[str, str] = {"ADD_WORKBOOK_TO_PYTHONPATH": "False"}

_XLWINGS_NAME_CONST = re.compile(r'^(Public Const PROJECT_NAME As String = )"[^"]*"', re.MULTILINE)


def xlwings_dir() -> Path:
    import xlwings

    return Path(xlwings.__file__).resolve().parent


def xlwings_module() -> VbaModule:
    """xlwings' custom-add-in VBA module, pointed at our config name instead of ``myaddin``."""
    text = (xlwings_dir() / "xlwings_custom_addin.bas").read_text(encoding="utf-8")
    text, count = _XLWINGS_NAME_CONST.subn(rf'\1"{CONFIG_NAME}"', text)
    if count != 1:
        raise RuntimeError("xlwings_custom_addin.bas changed: PROJECT_NAME constant not found once")
    return VbaModule("xlwings", "module", text)


def dictionary_class() -> VbaModule:
    return class_module_from_export((xlwings_dir() / "addin" / "Dictionary.cls").read_text(encoding="utf-8"))


def our_modules() -> list[VbaModule]:
    """The ``.bas`` files of ``vba/``, each named by its ``Attribute VB_Name`` line."""
    modules = []
    for path in sorted(VBA_DIR.glob("*.bas")):
        text = path.read_text(encoding="utf-8")
        match = re.match(r'Attribute VB_Name = "(\w+)"', text)
        if not match:
            raise ValueError(f"{path.name}: must start with Attribute VB_Name = \"…\"")
        modules.append(VbaModule(match.group(1), "module", text))
    return modules


def addin_modules() -> list[VbaModule]:
    """Every module of the add-in's VBA project, in project order."""
    return [document_module("ThisWorkbook", WORKBOOK_BASE), document_module(SHEET_CODENAME),
            xlwings_module(), dictionary_class(), *our_modules()]


def vba_project_bin(modules: list[VbaModule] | None = None) -> bytes:
    return write_compound_file(vba_project_streams(PROJECT_NAME, modules or addin_modules()))


# --- the SpreadsheetML package ------------------------------------------------------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_CONTENT_TYPES = _XML + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.addin.macroEnabled.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '</Types>'
)

# The ribbon is found through a package relationship of this type (Office 2007 schema, which
# every Excel since 2007 on Windows and 2016 on macOS reads).
_ROOT_RELS = _XML + (
    f'<Relationships xmlns="{_PKG_REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.microsoft.com/office/2006/relationships/ui/extensibility" '
    'Target="customUI/customUI.xml"/>'
    '</Relationships>'
)

_WORKBOOK_RELS = _XML + (
    f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
    'Target="vbaProject.bin"/>'
    '</Relationships>'
)

_STYLES = _XML + (
    f'<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>'
)


def _core_props(version: str) -> str:
    return _XML + (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:title>xl-expense {escape(version)}</dc:title>'
        '<dc:description>销售维护费 Expenses: ribbon add-in of xl-expense</dc:description>'
        '</cp:coreProperties>'
    )


def _workbook_xml() -> str:
    # codeName binds the workbook to the ThisWorkbook document module of the VBA project.
    return _XML + (
        f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        '<workbookPr codeName="ThisWorkbook"/>'
        '<bookViews><workbookView/></bookViews>'
        f'<sheets><sheet name="{CONFIG_SHEET}" sheetId="1" r:id="rId1"/></sheets>'
        '</workbook>'
    )


def _cell(ref: str, text: str) -> str:
    # Inline strings: the values are settings text, never formulas, whatever they start with.
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def _config_sheet_xml(settings: Mapping[str, str]) -> str:
    """Key in column A, value in column B, from A1 down: what xlwings' GetConfigFromSheet reads."""
    rows = "".join(f'<row r="{i}">{_cell(f"A{i}", key)}{_cell(f"B{i}", value)}</row>'
                   for i, (key, value) in enumerate(settings.items(), start=1))
    return _XML + (
        f'<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f'<sheetPr codeName="{SHEET_CODENAME}"/>'
        f'<sheetData>{rows}</sheetData>'
        '</worksheet>'
    )


def addin_settings(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The rows of the add-in's config sheet: the base settings, then ``settings`` (upper-cased keys)."""
    merged = dict(BASE_SETTINGS)
    merged.update({key.upper(): str(value) for key, value in (settings or {}).items()})
    return merged


def addin_parts(settings: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Every part of the add-in package, by name, in the order they are zipped."""
    from xl_expense import __version__

    return {
        "[Content_Types].xml": _CONTENT_TYPES.encode(),
        "_rels/.rels": _ROOT_RELS.encode(),
        "docProps/core.xml": _core_props(__version__).encode(),
        "customUI/customUI.xml": CUSTOM_UI.read_bytes(),
        "xl/workbook.xml": _workbook_xml().encode(),
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS.encode(),
        "xl/styles.xml": _STYLES.encode(),
        "xl/worksheets/sheet1.xml": _config_sheet_xml(addin_settings(settings)).encode(),
        "xl/vbaProject.bin": vba_project_bin(),
    }


def build_addin(path: str | Path, settings: Mapping[str, str] | None = None) -> Path:
    """Write the add-in to ``path`` (a ``.xlam`` file, or a folder to put ``xl_expense.xlam`` in).

    ``settings`` (e.g. ``{"INTERPRETER_WIN": sys.executable}``) go into the add-in's
    ``xl_expense.conf`` sheet, where its RunPython looks first after the active workbook.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / ADDIN_NAME
    if path.suffix.lower() != ".xlam":
        raise XlExpenseError("an Excel add-in must be named .xlam", "name the output …/xl_expense.xlam", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in addin_parts(settings).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    tmp.replace(path)
    return path
