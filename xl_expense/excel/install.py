"""``xl-expense excel install``: put the ribbon add-in where Excel loads it and configure xlwings.

Two xlwings configurations are written, because two add-ins are involved:

* **our add-in** (``xl_expense.xlam``, the 销售维护费 Expenses tab) carries its own xlwings VBA
  module, which reads its settings from the ``xl_expense.conf`` sheet inside the add-in: the
  build writes the interpreter there (``INTERPRETER_WIN`` / ``INTERPRETER_MAC`` =
  ``sys.executable``, where xl-expense is installed);
* **the xlwings add-in** (``xlwings addin install``) provides the worksheet functions: its
  "Import Functions" button reads ``UDF MODULES`` and ``PYTHONPATH`` from the user's
  ``xlwings.conf`` (``~/.xlwings/xlwings.conf``; on macOS
  ``~/Library/Containers/com.microsoft.Excel/Data/xlwings.conf``). We merge our keys into
  that file and keep every other line; existing PYTHONPATH / UDF MODULES entries are kept
  and ours appended (``;``-separated, as xlwings reads them).

The add-in is built here, not copied from the repo, so its xlwings module matches the xlwings
version of this interpreter (xlwings refuses a mismatched DLL on Windows).
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from xl_expense.errors import XlExpenseError
from xl_expense.excel.addin import ADDIN_NAME, addin_settings, build_addin

UDF_MODULE = "xl_expense_udfs"


def interpreter_key(platform: str) -> str:
    """xlwings reads the interpreter from INTERPRETER_MAC on macOS and INTERPRETER_WIN elsewhere."""
    return "INTERPRETER_MAC" if platform == "darwin" else "INTERPRETER_WIN"


def default_addin_dir(platform: str) -> Path:
    """Excel's per-user startup folder: an add-in there loads with every Excel start."""
    if platform == "win32":
        appdata = os.environ.get("APPDATA")
        if not appdata:
            raise XlExpenseError("%APPDATA% is not set", "pass --target-dir with Excel's XLSTART folder")
        return Path(appdata) / "Microsoft" / "Excel" / "XLSTART"
    if platform == "darwin":
        return (Path.home() / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content.localized"
                / "Startup.localized" / "Excel")
    raise XlExpenseError(f"Excel does not run on this system ({platform})",
                         "pass --target-dir (and --config-file) to write the files somewhere anyway")


def default_config_file(platform: str) -> Path:
    """Where the xlwings add-in looks for the user's settings (xlwings.USER_CONFIG_FILE)."""
    if platform == "darwin":
        return Path.home() / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / "xlwings.conf"
    return Path.home() / ".xlwings" / "xlwings.conf"


def default_udfs_dir() -> Path:
    """The ``udfs/`` folder of the xl-expense checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "udfs"


def read_xlwings_conf(text: str) -> dict[str, str]:
    """``"KEY","VALUE"`` lines (what VBA's ``Input #`` reads) → dict; keys upper-cased, order kept."""
    values: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0].strip():
            values[row[0].strip().upper()] = row[1]
    return values


def write_xlwings_conf(values: dict[str, str]) -> str:
    for key, value in values.items():
        if '"' in key or '"' in value:
            raise XlExpenseError(f"xlwings.conf cannot hold a double quote ({key})", "remove the quote")
    return "".join(f'"{key}","{value}"\n' for key, value in values.items())


def _append(existing: str | None, item: str) -> str:
    """``a;b`` + ``c`` → ``a;b;c``; an item already there is not repeated."""
    parts = [p for p in (existing or "").split(";") if p]
    if item not in parts:
        parts.append(item)
    return ";".join(parts)


@dataclass
class InstallPlan:
    """What the install writes (or, with ``dry_run``, would write) and what is left to the user."""

    addin_path: Path
    addin_config: dict[str, str]
    config_file: Path
    user_config: dict[str, str]  # the whole xlwings.conf after the merge
    changed: dict[str, str]  # the keys we set, with their merged values
    steps: list[str] = field(default_factory=list)
    dry_run: bool = False


def _steps(platform: str, plan_addin: Path) -> list[str]:
    steps = []
    if platform == "darwin":
        steps.append("Run `xlwings runpython install` once: Excel for Mac needs it to call Python.")
    steps += [
        ("Quit and restart Excel: the tab 销售维护费 Expenses appears (the add-in loads from "
        f"{plan_addin.parent})."),
        "Open a saved ledger and click 一键审计 Audit; the audited copy <name>_audited.xlsx is written next to it.",
    ]
    if platform == "darwin":
        steps.append("Worksheet functions (=XE_…) need Excel for Windows; the ribbon works on macOS.")
    else:
        steps += [
            ("For the worksheet functions (=XE_CATEGORY …): run `xlwings addin install` once, then in Excel "
            "File › Options › Trust Center › Trust Center Settings › Macro Settings tick "
            "'Trust access to the VBA project object model'."),
            ("In a workbook saved as .xlsm, click Import Functions on the xlwings tab: the XE_ functions "
            "appear under the category xl-expense in the function wizard."),
        ]
    return steps


def install_addin(
    target_dir: str | Path | None = None,
    *,
    config_file: str | Path | None = None,
    interpreter: str | None = None,
    udfs_dir: str | Path | None = None,
    platform: str | None = None,
    dry_run: bool = False,
) -> InstallPlan:
    """Build ``xl_expense.xlam`` into ``target_dir`` (default: Excel's startup folder) and merge
    the UDF settings into the user's ``xlwings.conf``; with ``dry_run`` nothing is written.
    """
    platform = platform or sys.platform
    interpreter = interpreter or sys.executable
    key = interpreter_key(platform)
    target = Path(target_dir) if target_dir else default_addin_dir(platform)
    conf = Path(config_file) if config_file else default_config_file(platform)
    udfs = Path(udfs_dir) if udfs_dir else default_udfs_dir()
    if not (udfs / f"{UDF_MODULE}.py").is_file():
        raise XlExpenseError(f"{UDF_MODULE}.py not found in {udfs}",
                             "install xl-expense from its source folder (pip install -e .) or pass --udfs-dir")

    existing = read_xlwings_conf(conf.read_text(encoding=_conf_encoding())) if conf.is_file() else {}
    changed = {
        "UDF MODULES": _append(existing.get("UDF MODULES"), UDF_MODULE),
        "PYTHONPATH": _append(existing.get("PYTHONPATH"), str(udfs)),
        key: interpreter,
    }
    merged = {**existing, **changed}
    addin_config = addin_settings({key: interpreter})
    plan = InstallPlan(target / ADDIN_NAME, addin_config, conf, merged, changed, _steps(platform, target / ADDIN_NAME),
                       dry_run)
    if dry_run:
        return plan
    try:
        build_addin(plan.addin_path, {key: interpreter})
    except OSError as exc:
        raise XlExpenseError(f"cannot write the add-in ({exc.strerror or exc})",
                             "quit Excel (it locks a loaded add-in) and run the install again",
                             str(plan.addin_path)) from exc
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(write_xlwings_conf(merged), encoding=_conf_encoding())
    return plan


def _conf_encoding() -> str:
    # VBA's Input # reads the file in the system's ANSI code page on Windows (cp936 on Chinese
    # Windows), as xlwings itself writes it; elsewhere UTF-8.
    return "mbcs" if sys.platform == "win32" else "utf-8"
