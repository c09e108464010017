"""The ribbon add-in (xl_expense/excel), checked from its built file as Excel would read it.

No Excel here, so the built ``.xlam`` is opened with independent readers: ``zipfile`` and
defusedxml for the package and ribbon, ``olefile`` (strict) for the compound file, ``olevba``
(oletools) for the VBA source, LibreOffice for the whole file. What only Excel can show is
the manual checklist in docs/excel.md.
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import olefile
import pytest
from click.testing import CliRunner
from defusedxml import ElementTree

from tests.libreoffice import SOFFICE, needs_soffice
from xl_expense.errors import XlExpenseError
from xl_expense.excel import addin, macros, ovba
from xl_expense.excel.cfb import write_compound_file
from xl_expense.excel.cli import excel_group
from xl_expense.excel.install import install_addin, read_xlwings_conf

with warnings.catch_warnings():
    # oletools 0.60 calls pyparsing's old enablePackrat name at import; not our code, not a bug.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools.olevba import VBA_Parser, decompress_stream

REPO = Path(__file__).resolve().parents[1]
UDFS = REPO / "udfs"
CUI = "{http://schemas.microsoft.com/office/2006/01/customui}"

BUTTONS = {  # label → (onAction, Python function its RunPython calls)
    "一键审计 Audit": ("XE_RunAudit", "audit_active"),
    "分类 Classify": ("XE_RunClassify", "classify_active"),
    "填充预算 Fill budget": ("XE_RunFillBudget", "fill_budget_active"),
    "刷新预警 Monitor": ("XE_RunMonitor", "monitor_active"),
    "设置 Settings": ("XE_RunSettings", "settings_active"),
}
SUB = re.compile(r"^[ \t]*(?:(Public|Private|Friend)[ \t]+)?Sub[ \t]+(\w+)[ \t]*\(([^)]*)\)", re.MULTILINE | re.IGNORECASE)
RUNPYTHON = re.compile(r'RunPython\s+"import\s+([\w.]+)\s+as\s+(\w+);\s*\2\.(\w+)\((\)?)')
# VBA keywords that cannot name a parameter (the generated UDF wrappers use Python's names).
VBA_RESERVED = {
    "and", "as", "boolean", "byref", "byte", "byval", "call", "case", "const", "currency", "date", "dim", "do",
    "double", "each", "else", "elseif", "empty", "end", "enum", "eqv", "erase", "event", "exit", "false", "for",
    "friend", "function", "get", "global", "gosub", "goto", "if", "imp", "implements", "in", "integer", "is",
    "let", "like", "long", "longlong", "loop", "lset", "me", "mod", "new", "next", "not", "nothing", "null", "on",
    "option", "optional", "or", "paramarray", "preserve", "private", "public", "raiseevent", "redim", "rem",
    "resume", "return", "rset", "select", "set", "single", "static", "step", "stop", "string", "sub", "then",
    "to", "true", "type", "typeof", "until", "variant", "wend", "while", "with", "withevents", "xor",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return addin.build_addin(tmp_path_factory.mktemp("addin") / "xl_expense.xlam",
                             {"INTERPRETER_WIN": r"C:\Users\张三\venv\Scripts\python.exe"})


@pytest.fixture(scope="module")
def vba(built: Path) -> dict[str, str]:
    """Module name → source, as olevba decodes it from the built add-in."""
    parser = VBA_Parser(str(built))
    try:
        assert parser.detect_vba_macros()
        modules = {Path(name).stem: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()
    return {name: code.replace("\r\n", "\n") for name, code in modules.items()}


def ribbon(built: Path):
    with zipfile.ZipFile(built) as archive:
        return ElementTree.fromstring(archive.read("customUI/customUI.xml"))


# --------------------------------------------------------------------------- the package

def test_package_has_the_addin_parts_and_links_the_ribbon(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        types = ElementTree.fromstring(archive.read("[Content_Types].xml"))
        rels = ElementTree.fromstring(archive.read("_rels/.rels"))
        wb_rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        workbook = archive.read("xl/workbook.xml").decode()
    assert names[0] == "[Content_Types].xml"
    overrides = {o.get("PartName"): o.get("ContentType") for o in types}
    assert overrides["/xl/workbook.xml"] == "application/vnd.ms-excel.addin.macroEnabled.main+xml"
    targets = {r.get("Type").rsplit("/", 1)[-1]: r.get("Target") for r in rels}
    assert targets["extensibility"] == "customUI/customUI.xml"
    assert {r.get("Target") for r in wb_rels} == {"worksheets/sheet1.xml", "styles.xml", "vbaProject.bin"}
    assert 'codeName="ThisWorkbook"' in workbook and 'name="xl_expense.conf"' in workbook


def test_build_is_reproducible(built: Path, tmp_path: Path) -> None:
    again = addin.build_addin(tmp_path, {"INTERPRETER_WIN": r"C:\Users\张三\venv\Scripts\python.exe"})
    assert again.name == "xl_expense.xlam"
    assert again.read_bytes() == built.read_bytes()


def test_config_sheet_holds_the_settings(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rows = [[t.text for t in row.iter(f"{ns}t")] for row in sheet.iter(f"{ns}row")]
    assert rows == [["ADD_WORKBOOK_TO_PYTHONPATH", "False"],
                    ["INTERPRETER_WIN", r"C:\Users\张三\venv\Scripts\python.exe"]]
    assert sheet.find(f"{ns}sheetPr").get("codeName") == "Sheet1"


# --------------------------------------------------------------------------- the ribbon

def test_ribbon_tab_and_buttons(built: Path) -> None:
    root = ribbon(built)
    tabs = list(root.iter(f"{CUI}tab"))
    assert [t.get("label") for t in tabs] == ["销售维护费 Expenses"]
    buttons = {b.get("label"): b.get("onAction") for b in root.iter(f"{CUI}button")}
    assert buttons == {label: action for label, (action, _) in BUTTONS.items()}
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))


def test_every_on_action_names_a_ribbon_callback(built: Path, vba: dict[str, str]) -> None:
    subs: dict[str, list[tuple[str, str | None, str]]] = {}
    for module, code in vba.items():
        for scope, name, params in SUB.findall(code):
            subs.setdefault(name.lower(), []).append((module, scope or None, params.strip()))
    for button in ribbon(built).iter(f"{CUI}button"):
        action = button.get("onAction")
        found = subs.get(action.lower())
        assert found and len(found) == 1, f"{action}: {found}"
        module, scope, params = found[0]
        assert module == "XE_Ribbon" and scope != "Private"
        assert re.fullmatch(r"(ByRef\s+)?control\s+As\s+IRibbonControl", params, re.IGNORECASE), params


def test_every_run_python_target_imports(vba: dict[str, str]) -> None:
    calls = RUNPYTHON.findall(vba["XE_Ribbon"])
    assert len(calls) == len(BUTTONS) == len(re.findall(r"^\s*RunPython\b", vba["XE_Ribbon"], re.MULTILINE))
    for module_name, _alias, function, closed in calls:
        function_object = getattr(importlib.import_module(module_name), function)
        required = [p for p in inspect.signature(function_object).parameters.values()
                    if p.default is inspect.Parameter.empty]
        # "m.audit_active()" passes nothing; "m.fill_budget_active(" & PyString(path) & ")" one argument.
        assert len(required) == (0 if closed else 1), function
    assert sorted(c[2] for c in calls) == sorted(f for _, f in BUTTONS.values())


def test_each_callback_runs_its_own_function(vba: dict[str, str]) -> None:
    bodies = dict(re.findall(r"Sub (XE_\w+)\(control As IRibbonControl\)(.*?)End Sub", vba["XE_Ribbon"], re.DOTALL))
    for action, function in BUTTONS.values():
        assert f"m.{function}(" in bodies[action], action


def test_fill_budget_command_quotes_a_windows_path() -> None:
    """What XE_RunFillBudget builds for a path with backslashes and a quote is valid Python that gives it back."""
    path = 'C:\\预算\\去年 "final"\\ledger.xlsx'
    literal = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'  # PyString() of XE_Ribbon.bas
    command = f"import xl_expense.excel.macros as m; m.fill_budget_active({literal})"
    call = compile(command, "<RunPython>", "exec").co_consts
    assert path in call
    assert 'Replace(Replace(text, "\\", "\\\\"), """", "\\""")' in (addin.VBA_DIR / "XE_Ribbon.bas").read_text()


# --------------------------------------------------------------------------- the VBA project

def test_olevba_decodes_every_module_to_its_source(vba: dict[str, str]) -> None:
    assert set(vba) == {"ThisWorkbook", "Sheet1", "xlwings", "Dictionary", "XE_Ribbon"}
    ours = (addin.VBA_DIR / "XE_Ribbon.bas").read_text(encoding="utf-8")
    assert vba["XE_Ribbon"].strip() == ours.strip()
    assert 'Public Const PROJECT_NAME As String = "xl_expense"' in vba["xlwings"]
    assert re.search(r"Public Function RunPython\(PythonCommand As String\)", vba["xlwings"])
    assert "Public Sub Add(Key As Variant, Item As Variant)" in vba["Dictionary"]


def test_compound_file_is_valid_for_a_strict_reader(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        data = archive.read("xl/vbaProject.bin")
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    assert sorted("/".join(e) for e in ole.listdir()) == [
        "PROJECT", "PROJECTwm", "VBA/Dictionary", "VBA/Sheet1", "VBA/ThisWorkbook", "VBA/XE_Ribbon",
        "VBA/_VBA_PROJECT", "VBA/dir", "VBA/xlwings"]
    assert ole.openstream("VBA/_VBA_PROJECT").read() == bytes.fromhex("CC61FFFF000100")
    _assert_red_black(ole)


RED, BLACK = 0, 1  # colour byte of a CFB directory entry


def _assert_red_black(ole: olefile.OleFileIO) -> None:
    """Each storage's children form a binary search tree in CFB order with red-black colours."""
    entries = ole.direntries

    def walk(sid: int) -> tuple[list[str], int]:
        if sid == olefile.NOSTREAM:
            return [], 1
        node = entries[sid]
        left, black_left = walk(node.sid_left)
        right, black_right = walk(node.sid_right)
        assert black_left == black_right, f"unequal black height under {node.name}"
        if node.color == RED:
            for child in (node.sid_left, node.sid_right):
                assert child == olefile.NOSTREAM or entries[child].color == BLACK
        return left + [node.name] + right, black_left + (node.color == BLACK)

    for entry in entries:
        if entry is not None and entry.entry_type in (olefile.STGTY_ROOT, olefile.STGTY_STORAGE):
            names, _ = walk(entry.sid_child)
            assert names == sorted(names, key=lambda n: (len(n), n.upper()))
            if entry.sid_child != olefile.NOSTREAM:
                assert entries[entry.sid_child].color == BLACK


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 17])
def test_sibling_trees_of_any_size_are_red_black(count: int) -> None:
    streams = {f"S/s{i:02d}": bytes([i]) * (i * 700) for i in range(count)}
    ole = olefile.OleFileIO(io.BytesIO(write_compound_file(streams)), raise_defects=olefile.DEFECT_INCORRECT)
    for path, data in streams.items():
        assert ole.openstream(path).read() == data
    _assert_red_black(ole)


def test_project_stream_protection_values() -> None:
    streams = ovba.vba_project_streams(addin.PROJECT_NAME, addin.addin_modules())
    text = streams["PROJECT"].decode("cp1252")
    values = dict(re.findall(r'^(\w+)="?([^"\r\n]*)"?\r$', text, re.MULTILINE))
    pid = values["ID"]
    assert ovba.decrypt_data(pid, values["CMG"]) == b"\0\0\0\0"  # not protected
    assert ovba.decrypt_data(pid, values["DPB"]) == b"\0"  # no password
    assert ovba.decrypt_data(pid, values["GC"]) == b"\xff"  # visible
    assert "Module=XE_Ribbon" in text and "Class=Dictionary" in text and "Document=ThisWorkbook/&H00000000" in text
    with pytest.raises(ValueError, match="another project"):
        ovba.decrypt_data("{00000000-0000-0000-0000-000000000000}", values["CMG"])


def test_decryption_matches_a_project_excel_wrote() -> None:
    """xlwings' quickstart add-in was saved by Excel: our decoder reads its values as Excel wrote them."""
    template = addin.xlwings_dir() / "quickstart_addin_ribbon.xlam"
    with zipfile.ZipFile(template) as archive:
        ole = olefile.OleFileIO(io.BytesIO(archive.read("xl/vbaProject.bin")))
    values = dict(re.findall(r'^(\w+)="?([^"\r\n]*)"?\r$', ole.openstream("PROJECT").read().decode("cp1252"), re.MULTILINE))
    assert ovba.decrypt_data(values["ID"], values["CMG"]) == b"\0\0\0\0"
    assert ovba.decrypt_data(values["ID"], values["GC"]) == b"\xff"
    ours = ovba.encrypt_data(values["ID"], b"\0\0\0\0", int(values["CMG"][:2], 16))
    assert ours[:6] == values["CMG"][:6] and len(ours) == len(values["CMG"])  # same seed, version, key bytes


@pytest.mark.parametrize("size", [0, 1, 3, 4095, 4096, 4097, 12_000])
def test_compression_round_trips_through_oletools(size: int) -> None:
    rng = random.Random(size)
    text = bytes(rng.choice(b"Sub End If x = 1\r\n") for _ in range(size))
    assert bytes(decompress_stream(bytearray(ovba.compress(text)))) == text
    noise = bytes(rng.randrange(256) for _ in range(4096 * 2))
    assert bytes(decompress_stream(bytearray(ovba.compress(noise)))) == noise


def test_vba_source_must_be_ascii() -> None:
    with pytest.raises(ValueError, match="non-ASCII"):
        ovba.VbaModule("Bad", "module", 'Attribute VB_Name = "Bad"\nSub A()\n MsgBox "审计"\nEnd Sub')
    for path in addin.VBA_DIR.glob("*.bas"):
        assert path.read_bytes().isascii(), path.name


# --------------------------------------------------------------------------- UDF wrappers

_GENERATE = """
import io, sys, types
# xlwings.udfs imports pywin32 at the top; stub it: generating the VBA text needs none of it.
for name in ("pythoncom", "pywintypes", "win32com", "win32com.client"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["pythoncom"].CoInitialize = lambda: None
sys.modules["pywintypes"].com_error = type("com_error", (Exception,), {})
sys.modules["win32com.client"].Dispatch = lambda *a, **k: None
sys.modules["win32com"].client = sys.modules["win32com.client"]
import xlwings as xw
import xlwings.udfs as xu
# On Windows xw.func/arg/ret are these decorators; elsewhere pass-throughs. Use the real ones.
xw.func, xw.arg, xw.ret, xw.sub = xu.xlfunc, xu.xlarg, xu.xlret, xu.xlsub
sys.path.insert(0, sys.argv[1])
import xl_expense_udfs
class Workbook:
    Name = sys.argv[2]
out = io.StringIO()
xu.generate_vba_wrapper("xl_expense_udfs", xl_expense_udfs, out, Workbook())
sys.stdout.write(out.getvalue())
"""


@pytest.fixture(scope="module")
def udf_module():
    sys.path.insert(0, str(UDFS))
    try:
        return importlib.import_module("xl_expense_udfs")
    finally:
        sys.path.remove(str(UDFS))


def generated_wrappers(workbook_name: str) -> str:
    done = subprocess.run([sys.executable, "-c", _GENERATE, str(UDFS), workbook_name], capture_output=True,
                          text=True, timeout=300, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def xe_functions(module) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(module, name)) for name in dir(module)
            if name.startswith("XE_") and callable(getattr(module, name))}


@pytest.fixture(scope="module")
def wrappers() -> str:
    return generated_wrappers("Book1.xlsm")


def test_import_functions_wraps_every_xe_function(wrappers: str, udf_module) -> None:
    functions = xe_functions(udf_module)
    assert len(functions) >= 8
    blocks = {name: body for name, _, body in
              re.findall(r"^Function (XE_\w+)\((.*?)\)\n(.*?)^End Function", wrappers, re.MULTILINE | re.DOTALL)}
    assert set(blocks) == set(functions)
    for name, signature in functions.items():
        params = list(signature.parameters.values())
        expected = ", ".join(("Optional " if p.default is not inspect.Parameter.empty else "") + p.name
                             for p in params)
        header = re.search(rf"^Function {name}\((.*?)\)$", wrappers, re.MULTILINE).group(1)
        assert header == expected, name
        args = ", ".join(p.name for p in params)
        assert (f'{name} = XLPy.CallUDF("xl_expense_udfs", "{name}", Array({args}), ThisWorkbook, '
                "Application.Caller)") in wrappers
    assert wrappers.isascii()  # imported into a code-page project: must survive any code page


def test_import_functions_into_an_addin_uses_the_active_workbook() -> None:
    text = generated_wrappers("xl_expense.xlam")
    assert "ActiveWorkbook, Application.Caller)" in text and "ThisWorkbook, Application" not in text


def test_udf_names_do_not_collide_with_ribbon_callbacks(udf_module, vba: dict[str, str]) -> None:
    """VBA names are case-insensitive and every loaded project shares one namespace for Run."""
    callbacks = {name.lower() for _, name, _ in SUB.findall(vba["XE_Ribbon"])}
    assert not callbacks & {name.lower() for name in xe_functions(udf_module)}


def test_udf_parameter_names_are_legal_in_vba(udf_module) -> None:
    bad = {name: [p for p in signature.parameters if p.lower() in VBA_RESERVED]
           for name, signature in xe_functions(udf_module).items()}
    assert not {name: params for name, params in bad.items() if params}


# --------------------------------------------------------------------------- LibreOffice

def _to_ods(path: Path, outdir: Path) -> Path:
    """LibreOffice needs to be told an .xlam is OOXML (its type detection does not know add-ins)."""
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        cmd = ["setsid", "timeout", "-k", "10", "180", SOFFICE, f"-env:UserInstallation=file://{profile}",
               "--headless", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
               "--infilter=Calc MS Excel 2007 VBA XML", "--convert-to", "ods", "--outdir", str(outdir), str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=220, check=False,
                              env={**os.environ, "HOME": profile})
    out = outdir / (path.stem + ".ods")
    assert out.is_file(), done.stdout + done.stderr
    return out


@needs_soffice
@pytest.mark.libreoffice
def test_libreoffice_opens_the_addin_and_reads_its_vba(built: Path, tmp_path: Path) -> None:
    ods = _to_ods(built, tmp_path)
    with zipfile.ZipFile(ods) as archive:
        library = ElementTree.fromstring(archive.read("Basic/XlExpense/script-lb.xml"))
        modules = {e.get("{http://openoffice.org/2000/library}name") for e in library}
        ribbon_module = ElementTree.fromstring(archive.read("Basic/XlExpense/XE_Ribbon.xml")).text
        content = archive.read("content.xml").decode()
    assert modules == {"ThisWorkbook", "Sheet1", "xlwings", "Dictionary", "XE_Ribbon"}
    for action, function in BUTTONS.values():
        assert f"Sub {action}(control As IRibbonControl)" in ribbon_module
        assert f"m.{function}(" in ribbon_module
    assert 'table:name="xl_expense.conf"' in content and "INTERPRETER_WIN" in content


# --------------------------------------------------------------------------- macros

class FakeApp:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str | None]] = []

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok", mode: str | None = None) -> str:
        self.alerts.append((prompt, mode))
        return "ok"


class FakeBook:
    """What the macros use of ``xw.Book.caller()``: ``fullname`` and ``app.alert``."""

    def __init__(self, fullname: str | Path) -> None:
        self.fullname = str(fullname)
        self.app = FakeApp()


@pytest.fixture
def ledger(demo_workbook: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(demo_workbook, tmp_path / "台账.xlsx"))


# The audit button runs on the live book (XlwingsBook), not on the saved file: its tests, with a
# fake live book and with xlwings' remote engine, are in tests/test_xlwings_book.py.


def test_user_errors_show_the_cli_line(tmp_path: Path) -> None:
    missing = FakeBook(tmp_path / "gone.xlsx")
    assert macros.run_action(missing, macros.classify_book, macros.classify_summary) is None
    assert missing.app.alerts == [((f"Error: {tmp_path / 'gone.xlsx'}: the saved file was not found — "
                                   "save the workbook again, then retry"), "critical")]
    unsaved = FakeBook("Book1")
    macros.run_action(unsaved, macros.monitor_book, macros.monitor_summary)
    assert unsaved.app.alerts[0][0].startswith("Error: Book1: the workbook is not saved on this computer — ")
    not_a_budget = FakeBook(Path(shutil.copy(REPO / "pyproject.toml", tmp_path / "x.xlsx")))
    macros.run_action(not_a_budget, macros.monitor_book, macros.monitor_summary)
    [(line, mode)] = not_a_budget.app.alerts
    assert mode == "critical" and line.startswith("Error: ") and "\n" not in line


def test_bugs_are_one_line_too(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XL_EXPENSE_DEBUG", raising=False)
    book = FakeBook(tmp_path / "a.xlsx")
    macros.run_action(book, lambda b: 1 / 0, str)
    assert book.app.alerts == [(("Error: unexpected ZeroDivisionError: division by zero — set XL_EXPENSE_DEBUG=1 "
                                "to see the traceback, and report it"), "critical")]


def test_settings_shows_the_sheet_values(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "s.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["日期", "金额"])
    settings = wb.create_sheet("设置")
    settings.append(["参数", "值"])
    settings.append(["审批限额", 3000])
    wb.save(path)
    book = FakeBook(path)
    view = macros.run_action(book, macros.settings_book, macros.settings_summary)
    assert view.source == "sheet" and view.settings.approval_limit == 3000
    assert "审批限额 approval limit: 3,000" in book.app.alerts[0][0]


def test_budget_buttons_fill_then_monitor(ledger: Path, tmp_path: Path) -> None:
    from xl_expense.io.budget_template import make_budget_template

    template = make_budget_template(tmp_path / "预算2026.xlsx", year=2026, lang="zh")
    book = FakeBook(template)
    filled = macros.run_action(book, lambda b: macros.fill_budget_book(b, str(ledger)), macros.fill_budget_summary)
    assert filled is not None, book.app.alerts
    assert filled.output == template.with_name("预算2026_filled.xlsx") and filled.output.is_file()
    monitored = macros.run_action(FakeBook(filled.output), macros.monitor_book, macros.monitor_summary)
    assert monitored.output.name == "预算2026_filled_monitored.xlsx"


# --------------------------------------------------------------------------- install

def test_install_dry_run_writes_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "xlwings.conf"
    plan = install_addin(tmp_path / "XLSTART", config_file=conf, interpreter="/opt/py/bin/python",
                         platform="win32", dry_run=True)
    assert not (tmp_path / "XLSTART").exists() and not conf.exists()
    assert plan.addin_path == tmp_path / "XLSTART" / "xl_expense.xlam"
    assert plan.changed == {"UDF MODULES": "xl_expense_udfs", "PYTHONPATH": str(UDFS),
                            "INTERPRETER_WIN": "/opt/py/bin/python"}
    assert any("Import Functions" in step for step in plan.steps)


def test_install_builds_the_addin_and_merges_the_user_config(tmp_path: Path) -> None:
    conf = tmp_path / "home" / ".xlwings" / "xlwings.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text('"LICENSE_KEY","noncommercial"\n"PYTHONPATH","C:\\mine"\n"UDF MODULES","my_udfs"\n')
    for _ in range(2):  # a second install changes nothing more
        plan = install_addin(tmp_path / "XLSTART", config_file=conf, interpreter="/opt/py/bin/python3",
                             platform="darwin")
    assert read_xlwings_conf(conf.read_text()) == {
        "LICENSE_KEY": "noncommercial", "PYTHONPATH": f"C:\\mine;{UDFS}", "UDF MODULES": "my_udfs;xl_expense_udfs",
        "INTERPRETER_MAC": "/opt/py/bin/python3"}
    with zipfile.ZipFile(plan.addin_path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "INTERPRETER_MAC" in sheet and "/opt/py/bin/python3" in sheet
    assert any("xlwings runpython install" in step for step in plan.steps)


def test_install_needs_a_target_where_excel_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(XlExpenseError, match="Excel does not run on this system"):
        install_addin(config_file=tmp_path / "c.conf", platform="linux", dry_run=True)
    with pytest.raises(XlExpenseError, match="xl_expense_udfs.py not found"):
        install_addin(tmp_path, config_file=tmp_path / "c.conf", udfs_dir=tmp_path, platform="win32")


def test_cli_install_dry_run_and_build(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(excel_group, ["install", "--dry-run", "--target-dir", str(tmp_path / "t"),
                                       "--config-file", str(tmp_path / "x.conf"), "--interpreter", "py"])
    assert done.exit_code == 0, done.output
    assert "would write" in done.output and "UDF MODULES = xl_expense_udfs" in done.output
    assert "Import Functions" in done.output or "runpython" in done.output
    assert not (tmp_path / "t").exists()
    built = runner.invoke(excel_group, ["build", str(tmp_path / "out.xlam")])
    assert built.exit_code == 0, built.output
    assert (tmp_path / "out.xlam").is_file()
    bad = runner.invoke(excel_group, ["build", str(tmp_path / "out.xlsx")])
    assert bad.exit_code == 1 and "Error:" in bad.output
