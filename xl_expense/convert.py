"""Convert any export or workbook into the standard ledger workbook (``xl-expense convert``).

Month end brings Alipay/WeChat CSVs in GBK with a preamble, bank ``.xls`` files, Fxiaoke
``.xlsx`` exports and hand-kept ledgers. :func:`convert_file` turns each into one workbook of
the same shape, which every other workflow (and a person with a filter) reads the same way:

* ``费用明细``/``Ledger`` — the canonical columns of :mod:`xl_expense.schema` as the Excel Table
  ``XE_Ledger`` (zh or en headers the spine's reader maps back, dates and amounts formatted),
  plus where each row came from (source sheet and row);
* ``未导入行``/``Rows not imported`` — every row that is not an expense, with the reason:
  unreadable (rejected), left out by the import profile (income, transfers …) or a totals row.
  Nothing vanishes;
* ``导入信息``/``Import info`` — file, SHA-256, profile, encoding, counts, notes;
* the input's ``设置``/``Settings``, ``类别``/``Categories`` and ``分类规则``/``Rules`` sheets, copied
  as values, so audit and classify of the converted ledger use the team's own settings.

How a file is read: with ``profile`` when given; else the import profile whose headers match
(:func:`xl_expense.io.profiles.detect_profile`: payment, bank and CRM exports need its sign
rules and preamble search); else the spine's own reader (:func:`~xl_expense.io.ledger_reader.load_ledger`)
for hand-kept ledgers. Every format is read with python-calamine (CSV with the profile's
encodings), so no converter is needed to *read* ``.xls``/``.xlsb``/``.ods``.

Decision for ``.xlsx``/``.xlsm`` whose ledger the spine reads without a profile: they are
standardised like every other input (the converted ledger is what batch consolidates), but
:attr:`ConvertResult.step_source` is the *original* workbook, so classify and audit in a batch
write into a copy of the user's own workbook (formatting, charts, macros and the findings'
links to their rows kept). Files read through a profile, CSVs and legacy formats have only the
converted ledger as step source.

LibreOffice headless is needed only for ``keep_format=True`` on ``.xls``/``.xlsb``/``.ods``:
calamine reads values, not formatting, so to audit such a workbook *with* its formatting it is
first converted to ``<name>_converted.xlsx`` by LibreOffice, which then becomes the step source.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_expense import __version__
from xl_expense.errors import (
    LedgerNotFound,
    OutputError,
    UnreadableWorkbook,
    XlExpenseError,
)
from xl_expense.i18n import all_langs
from xl_expense.io.ledger_reader import Ledger, load_ledger
from xl_expense.io.profiles import open_book, read_detected, read_with_profile
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import named_sheets_rows
from xl_expense.io.sheet_model import Block, NewSheet
from xl_expense.io.table_sheet import table_sheet
from xl_expense.io.xlsx_package import add_sheets
from xl_expense.schema import LEDGER_COLUMNS
from xl_expense.workflows import file_sha256

#: Inputs ``convert`` and ``batch`` accept (``.csv.gz`` too: big public exports come gzipped).
INPUT_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv", ".tsv", ".txt", ".csv.gz")
#: Zip packages our writer adds sheets to; classify and audit write into a copy of them.
PACKAGE_SUFFIXES = (".xlsx", ".xlsm")
#: Formats whose formatting only LibreOffice can carry into an .xlsx (calamine reads values).
LIBREOFFICE_SUFFIXES = (".xls", ".xlsb", ".ods")
LIBREOFFICE_TIMEOUT = 180

LEDGER_TABLE = "XE_Ledger"
NOT_IMPORTED_TABLE = "XE_NotImported"
SHEETS = {
    "ledger": {"zh": "费用明细", "en": "Ledger"},
    "not_imported": {"zh": "未导入行", "en": "Rows not imported"},
    "info": {"zh": "导入信息", "en": "Import info"},
}
#: Provenance columns after the canonical ones; ``source_file`` only in a consolidated ledger.
EXTRA_COLUMNS = ("source_file", "source_sheet", "source_row")
#: Column headers. The canonical ones are aliases the spine's reader maps back (schema.HEADER_ALIASES);
#: the provenance headers are deliberately *not* aliases, so they are never taken for ledger data.
HEADERS = {
    "zh": {"date": "日期", "amount": "金额", "category": "费用类别", "description": "摘要", "person": "报销人",
           "department": "部门", "customer": "客户", "vendor": "供应商", "receipt": "发票号", "project": "项目",
           "region": "地区", "card": "卡号", "source_file": "来源文件", "source_sheet": "来源工作表",
           "source_row": "来源行号", "kind": "类型", "reason": "原因"},
    "en": {"date": "Date", "amount": "Amount", "category": "Category", "description": "Description",
           "person": "Person", "department": "Department", "customer": "Customer", "vendor": "Vendor",
           "receipt": "Receipt", "project": "Project", "region": "Region", "card": "Card",
           "source_file": "Source file", "source_sheet": "Source sheet", "source_row": "Source row",
           "kind": "Kind", "reason": "Reason"},
}
KIND_LABELS = {
    "zh": {"rejected": "无法读取", "excluded": "非费用（按导入配置排除）", "total": "合计行"},
    "en": {"rejected": "unreadable", "excluded": "not an expense (import profile)", "total": "totals row"},
}
TOTAL_REASON = {"zh": "合计/小计行，不计入费用", "en": "totals/subtotal row, not an expense"}
#: Sheets of the input carried over as values: they steer audit and classify of the ledger.
CARRIED_SHEETS = {"settings": all_langs("sheet.settings"), "taxonomy": ("类别", "Categories"),
                  "rules": ("分类规则", "Rules")}
#: Excel's last row is 1,048,576; one is the header.
EXCEL_MAX_DATA_ROWS = 1_048_575
_PLACEHOLDER = "xl-expense placeholder"


@dataclass
class ConvertResult:
    """What one conversion produced; the CLI prints it, batch adds it to its summary."""

    input: Path
    output: Path
    ledger: Ledger
    #: Import profile used, or None when the spine's own reader read the file.
    profile: str | None
    #: The workbook classify/audit should read next (see the module docstring).
    step_source: Path
    input_sha256: str
    formatted_copy: Path | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return len(self.ledger.df)

    @property
    def rows_rejected(self) -> int:
        return len(self.ledger.rejected)

    @property
    def rows_excluded(self) -> int:
        excluded = getattr(self.ledger, "excluded", None)
        return 0 if excluded is None else len(excluded)


def input_stem(path: Path) -> str:
    """The file name without its format suffix (``a.csv.gz`` → ``a``)."""
    name = path.name
    lower = name.lower()
    for suffix in sorted(INPUT_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def default_convert_output(path: Path, out_dir: Path) -> Path:
    """``<out_dir>/<name>_ledger.xlsx``: never the input's own name, so it cannot overwrite it."""
    return out_dir / f"{input_stem(path)}_ledger.xlsx"


def convert_file(
    input: str | Path,
    out_dir: str | Path,
    *,
    profile: str | None = None,
    lang: str | None = None,
    output: str | Path | None = None,
    keep_format: bool = False,
) -> ConvertResult:
    """Read one export or workbook and write it as the standard ledger workbook in ``out_dir``.

    ``profile`` (a name or a .toml path) forces an import profile; by default one is detected
    from the headers, else the spine's reader is used. ``lang`` ("zh"/"en", default zh) picks
    the sheet names and headers. ``output`` overrides the default ``<name>_ledger.xlsx``.
    ``keep_format`` also converts ``.xls``/``.xlsb``/``.ods`` to ``<name>_converted.xlsx`` with
    LibreOffice (formatting kept) for the later steps. Raises
    :class:`~xl_expense.errors.XlExpenseError` with a message that says how to fix the input.
    """
    started = time.perf_counter()
    path = Path(input)
    lang = lang or "zh"
    try:
        if lang not in HEADERS:
            raise XlExpenseError(f"--lang must be zh or en, not {lang!r}", "use --lang zh or --lang en")
        if not path.is_file():
            raise UnreadableWorkbook("file not found", "check the path and the file name")
        out_dir = Path(out_dir)
        out = Path(output) if output else default_convert_output(path, out_dir)
        if out.suffix.lower() != ".xlsx":
            raise OutputError("the standard ledger is an .xlsx workbook", "name the output …_ledger.xlsx", str(out))
        if out.exists() and out.resolve() == path.resolve():
            raise OutputError("the output would overwrite the input", "choose another output folder", str(path))
        check_package(path)
        ledger, book = _read_input(path, profile)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = file_sha256(path)
            sheets = standard_sheets(ledger, lang, info=_import_info(path, ledger, digest, lang))
            sheets += _carried_sheets(path, {s.name for s in sheets}, book)
        finally:
            if book is not None:
                book.close()
        write_workbook(out, sheets)
        formatted = None
        step_source = out
        used_profile = getattr(ledger, "profile", None) or None
        if used_profile is None and path.suffix.lower() in PACKAGE_SUFFIXES:
            step_source = path
        elif keep_format and used_profile is None and path.suffix.lower() in LIBREOFFICE_SUFFIXES:
            formatted = libreoffice_to_xlsx(path, out.parent / f"{input_stem(path)}_converted.xlsx")
            step_source = formatted
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    result = ConvertResult(input=path, output=out, ledger=ledger, profile=used_profile, step_source=step_source,
                           input_sha256=digest, formatted_copy=formatted, seconds=time.perf_counter() - started)
    result.counts = {"rows": result.rows_read, "rejected": result.rows_rejected,
                     "excluded": result.rows_excluded, "totals": len(ledger.totals_rows)}
    return result


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def read_any(path: str | Path, profile: str | None = None) -> Ledger:
    """The ledger in ``path``: through ``profile``, else a detected profile, else the spine's reader.

    A profile is tried first because an export read by the generic reader would look fine
    and be wrong (Alipay's unsigned 金额 makes income look like spending).
    """
    ledger, book = _read_input(Path(path), profile)
    if book is not None:
        book.close()
    return ledger


def _read_input(path: Path, profile: str | None) -> tuple[Ledger, Any]:
    """:func:`read_any`, and the workbook it opened (None for text or a named profile), left
    open for the caller's other reads of the same file.

    The workbook is opened once and each sheet parsed once for profile detection and for the
    spine's reader alike: for a thousand-row ledger, opening (shared strings) and parsing
    cost as much as reading the rows.
    """
    if profile:
        return read_with_profile(path, profile), None
    book = open_book(path)
    try:
        sheets: dict[str, Any] = {}
        ledger = read_detected(path, book=book, sheets=sheets)
        if ledger is None:
            ledger = load_ledger(path, book=book, sheets=sheets)
    except BaseException:
        if book is not None:
            book.close()
        raise
    return ledger, book


# ---------------------------------------------------------------------------------------------
# the standard workbook
# ---------------------------------------------------------------------------------------------

def ledger_frame(ledger_df: pd.DataFrame, source_file: str | pd.Series | None = None) -> pd.DataFrame:
    """The canonical columns plus provenance (``source_sheet``/``source_row``, optional ``source_file``)."""
    frame = pd.DataFrame({c: ledger_df[c] for c in LEDGER_COLUMNS})
    if source_file is not None:
        frame["source_file"] = source_file
    frame["source_sheet"] = ledger_df["sheet"].astype(object)
    frame["source_row"] = ledger_df["row"].astype("int64")
    return frame


def ledger_sheet(frame: pd.DataFrame, lang: str) -> NewSheet:
    """The ``XE_Ledger`` Table: one row per expense, formatted, headers in ``lang``."""
    if len(frame) > EXCEL_MAX_DATA_ROWS:
        raise OutputError(f"the ledger has {len(frame):,} rows; an Excel sheet holds {EXCEL_MAX_DATA_ROWS:,} "
                          "below its header", "split the input into smaller files")
    columns = [c for c in (*LEDGER_COLUMNS, *EXTRA_COLUMNS) if c in frame.columns]
    headers = {c: HEADERS[lang][c] for c in columns}
    styles = {"amount": "money", "date": _date_style(frame["date"]), "source_row": "int"}
    return table_sheet(SHEETS["ledger"][lang], frame, headers=headers, table_name=LEDGER_TABLE, styles=styles)


def _date_style(dates: pd.Series) -> str:
    """``datetime`` when any row has a time of day (payment exports do), else ``date``."""
    if dates.dtype == "datetime64[ns]":  # the reader's dates: nanoseconds since midnight, in numpy
        values = dates.to_numpy()
        nanos = values[~np.isnat(values)].view("int64")
        return "datetime" if bool((nanos % _NANOS_PER_DAY != 0).any()) else "date"
    values = pd.to_datetime(dates, errors="coerce").dropna()
    return "datetime" if len(values) and bool((values != values.dt.normalize()).any()) else "date"


_NANOS_PER_DAY = 86_400 * 1_000_000_000


def not_imported_frame(ledger: Ledger, lang: str) -> pd.DataFrame:
    """Rejected, excluded and totals rows, by source row, with their reason."""
    parts = []
    for kind, frame in (("rejected", ledger.rejected), ("excluded", getattr(ledger, "excluded", None))):
        if frame is not None and len(frame):
            parts.append(pd.DataFrame({"source_sheet": frame["sheet"].astype(object),
                                       "source_row": frame["row"].astype("int64"),
                                       "kind": KIND_LABELS[lang][kind], "reason": frame["reason"].astype(object)}))
    if ledger.totals_rows:
        parts.append(pd.DataFrame({"source_sheet": ledger.sheet, "source_row": np.asarray(ledger.totals_rows, "int64"),
                                   "kind": KIND_LABELS[lang]["total"], "reason": TOTAL_REASON[lang]}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("source_sheet", "source_row", "kind", "reason")})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["source_sheet", "source_row"], kind="stable").reset_index(drop=True)


def standard_sheets(ledger: Ledger, lang: str, *, info: list[tuple[str, Any]] | None = None,
                    source_file: str | pd.Series | None = None) -> list[NewSheet]:
    """The sheets of a standard ledger workbook (ledger, rows not imported, import info)."""
    frame = ledger_frame(ledger.df, source_file)
    rest = not_imported_frame(ledger, lang)
    headers = {c: HEADERS[lang][c] for c in ("source_sheet", "source_row", "kind", "reason")}
    sheets = [ledger_sheet(frame, lang),
              table_sheet(SHEETS["not_imported"][lang], rest, headers=headers, table_name=NOT_IMPORTED_TABLE,
                          styles={"source_row": "int"})]
    if info:
        sheets.append(info_sheet(SHEETS["info"][lang], info))
    return sheets


def info_sheet(name: str, items: list[tuple[str, Any]]) -> NewSheet:
    """Key/value rows (bold keys), values as values: provenance a reviewer can read."""
    rows = [[key, value] for key, value in items]
    return NewSheet(name, blocks=[Block(1, 1, rows, styles=["label", None])], col_widths={1: 22.0, 2: 70.0})


def _import_info(path: Path, ledger: Ledger, digest: str, lang: str) -> list[tuple[str, Any]]:
    zh = lang == "zh"
    items: list[tuple[str, Any]] = [
        ("来源文件" if zh else "Source file", path.name),
        ("SHA-256", digest),
        ("导入配置" if zh else "Import profile", getattr(ledger, "profile", None) or ("通用读取" if zh else "generic reader")),
        ("文本编码" if zh else "Text encoding", getattr(ledger, "encoding", None) or ""),
        ("来源工作表" if zh else "Source sheet", ledger.sheet),
        ("表头行" if zh else "Header row", ledger.header_row),
        ("费用行数" if zh else "Expense rows", len(ledger.df)),
        ("无法读取的行" if zh else "Rows rejected", len(ledger.rejected)),
        ("排除的行" if zh else "Rows excluded", len(getattr(ledger, "excluded", ()))),
        ("合计行" if zh else "Totals rows", len(ledger.totals_rows)),
        ("空行" if zh else "Blank rows", int(ledger.blank_rows)),
        ("转换时间" if zh else "Converted at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        ("工具版本" if zh else "Tool version", f"xl-expense {__version__}"),
    ]
    items += [("说明" if zh else "Note", note) for note in ledger.notes]
    return items


def _carried_sheets(path: Path, taken: set[str], book: Any = None) -> list[NewSheet]:
    """The input's settings, categories and rules sheets as values (their names kept).

    ``book``: ``path`` already open (not closed here), else it is opened for this.
    """
    if path.suffix.lower() not in (*PACKAGE_SUFFIXES, *LIBREOFFICE_SUFFIXES):
        return []
    found = named_sheets_rows(path, CARRIED_SHEETS, book)
    sheets = []
    for key in CARRIED_SHEETS:
        if key in found and found[key][0] not in taken:
            name, rows = found[key]
            rows = [[None if v == "" else v for v in row] for row in rows]
            sheets.append(NewSheet(name, blocks=[Block(1, 1, rows)] if rows else []))
    return sheets


@lru_cache(maxsize=1)
def _empty_workbook() -> bytes:
    """An empty .xlsx package to add our sheets to (built once per process with openpyxl)."""
    import io

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = _PLACEHOLDER
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def write_workbook(out: Path, sheets: list[NewSheet]) -> Path:
    """A new workbook holding ``sheets``, written atomically (temp file + ``os.replace``)."""
    out = Path(out)
    fd, start = tempfile.mkstemp(prefix=f".{out.stem[:40]}.", suffix=".start.xlsx", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_empty_workbook())
        # mkstemp makes the file 0600 and add_sheets gives the output the source's mode:
        # a new workbook gets what a normal save would give (0666 minus the umask).
        os.chmod(start, 0o666 & ~_umask())
        add_sheets(start, out, sheets, replace=[_PLACEHOLDER])
    finally:
        Path(start).unlink(missing_ok=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------
# reading a standard ledger back (batch consolidation)
# ---------------------------------------------------------------------------------------------

def read_standard_ledger(path: str | Path) -> pd.DataFrame:
    """The ledger sheet of a workbook written by :func:`convert_file`, provenance included.

    Returns the canonical columns plus ``source_sheet`` and ``source_row`` (the row in the
    *original* file, which the spine's reader would replace by the row in this workbook).
    """
    import python_calamine

    path = Path(path)
    lookup = {header: key for lang in HEADERS for key, header in HEADERS[lang].items()}
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        name = next((n for n in book.sheet_names if n in all_sheet_names("ledger")), None)
        if name is None:
            raise LedgerNotFound("not a standard ledger workbook (no 费用明细/Ledger sheet)",
                                 "convert the file first with xl-expense convert", str(path))
        rows = book.get_sheet_by_name(name).to_python()
    finally:
        book.close()
    header = [lookup.get(str(h), str(h)) for h in rows[0]] if rows else []
    body = rows[1:]
    if len(body) == 1 and all(v == "" for v in body[0]):  # the Table's placeholder row of an empty ledger
        body = []
    columns = {key: _blank_to_none([r[i] if i < len(r) else "" for r in body]) for i, key in enumerate(header)}
    missing = pd.Series([None] * len(body), dtype=object)
    frame = pd.DataFrame({
        "date": pd.to_datetime(columns.get("date", missing), errors="coerce").astype("datetime64[ns]"),
        "amount": pd.to_numeric(columns.get("amount", missing), errors="coerce").astype("float64"),
    })
    for key in (*LEDGER_COLUMNS[2:], "source_sheet"):
        frame[key] = columns.get(key, missing).map(_as_text).astype(object)
    frame["source_row"] = pd.to_numeric(columns.get("source_row", missing), errors="coerce").astype("Int64")
    return frame


def _blank_to_none(values: list) -> pd.Series:
    return pd.Series([None if v == "" else v for v in values], dtype=object)


def _as_text(value: object) -> str | None:
    """Text cells as they are; a number in a text column (a receipt no.) as Excel shows it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def all_sheet_names(key: str) -> tuple[str, ...]:
    """A sheet's name in every language (a re-run finds sheets an earlier run wrote in the other)."""
    return tuple(SHEETS[key].values())


# ---------------------------------------------------------------------------------------------
# LibreOffice (formatting of legacy formats)
# ---------------------------------------------------------------------------------------------

def libreoffice_to_xlsx(src: Path, dst: Path, timeout: int = LIBREOFFICE_TIMEOUT) -> Path:
    """Convert ``src`` to ``dst`` (.xlsx) with LibreOffice headless, formatting kept.

    Each call uses a throw-away LibreOffice profile (two conversions at once would otherwise
    fight over the user's profile lock) and a timeout; soffice exits 0 even when it converted
    nothing, so the output's existence is checked.
    """
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise XlExpenseError("LibreOffice is needed to keep the formatting of " + src.suffix + " files",
                             "install LibreOffice (soffice) or leave out --keep-format", str(src))
    with tempfile.TemporaryDirectory(prefix=".xl-expense-lo-", dir=dst.parent) as work:
        cmd = [soffice, f"-env:UserInstallation=file://{work}/profile", "--headless", "--norestore",
               "--nolockcheck", "--nodefault", "--nologo", "--convert-to", "xlsx", "--outdir", work, str(src)]
        _run_soffice(cmd, work, timeout, src)
        produced = Path(work) / f"{src.stem}.xlsx"
        if not produced.is_file():
            raise UnreadableWorkbook("LibreOffice could not convert the file",
                                     "open it in Excel and save it as .xlsx", str(src))
        os.replace(produced, dst)
    return dst


def _run_soffice(cmd: list[str], work: str, timeout: int, src: Path) -> None:
    """Run soffice in its own process group, so a hung conversion is killed with its helpers
    (soffice starts oosplash and soffice.bin; killing only the first leaves the others running)."""
    posix = os.name == "posix"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=posix,
                            env={**os.environ, "HOME": work})
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        raise XlExpenseError(f"LibreOffice did not finish converting within {timeout} s",
                             "open the file in Excel and save it as .xlsx", str(src)) from None


__all__ = [
    "INPUT_SUFFIXES",
    "ConvertResult",
    "convert_file",
    "libreoffice_to_xlsx",
    "read_any",
    "read_standard_ledger",
    "standard_sheets",
    "write_workbook",
]
