"""Findings as CSV (``--findings-csv``): one row per finding, safe to open in Excel.

Why the care:

* UTF-8 **with BOM**: without it Excel on a Chinese Windows reads the file as GBK and shows
  mojibake for 张三.
* **CSV injection**: unlike our xlsx writer, a CSV cell has no type — Excel and LibreOffice
  evaluate any cell starting with ``=``, ``+``, ``-`` or ``@`` (and tab/CR, which some
  versions strip first) as a formula. Ledger text is untrusted (``=HYPERLINK(…)``,
  ``=cmd|' /C calc'!A0``), so such text cells get a leading ``'`` as OWASP recommends.
  Numeric columns are written as numbers, so a refund of -120.5 stays a number.
* **Atomic**: written to a temporary file in the target folder and renamed over the target,
  so a crash or a full disk never leaves half a CSV where the last good one was.
"""

from __future__ import annotations

import os
import tempfile
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from xl_expense import i18n
from xl_expense.errors import OutputError
from xl_expense.schema import FINDING_COLUMNS, SEVERITIES

#: The contract columns first (CLI docs promise them), then the rest of the finding.
CSV_COLUMNS = ("finding_id", "sheet", "row", "rule", "severity", "amount", "score", "message",
               "severity_label", "date", "person", "department", "vendor", "category")

NUMERIC_COLUMNS = ("row", "amount", "score")

#: First characters that make a spreadsheet treat a text cell as a formula. The full-width
#: forms are included because some IMEs and Excel builds fold them to ASCII on input.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralize_formulas(series: pd.Series) -> pd.Series:
    """Text cells starting with a formula trigger get a leading ``'``; other values unchanged.

    Works on the distinct values (findings repeat rule, person, vendor… thousands of times),
    so the cost follows the number of different texts, not of cells.
    """
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    fixed = np.empty(len(uniques), dtype=object)
    fixed[:] = [_inert(value) for value in uniques]
    out = np.full(len(series), None, dtype=object)
    present = codes >= 0
    out[present] = fixed[codes[present]]
    return pd.Series(out, index=series.index, dtype=object)


def _inert(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


#: Ledger text joined onto row findings when the ledger is given: what a reviewer reads first.
LEDGER_EXTRA_COLUMNS = ("description", "customer", "receipt", "project", "region")


def findings_csv_frame(findings: pd.DataFrame, *, lang: str, ledger_df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table written to CSV: contract columns, numbers as numbers, text made inert."""
    findings = _with_ledger_text(findings, ledger_df)
    out = pd.DataFrame(index=findings.index)
    for col in CSV_COLUMNS:
        if col == "severity_label":
            labels = {sev: i18n.t(f"severity.{sev}", lang) for sev in SEVERITIES}
            out[col] = findings["severity"].astype(object).map(labels)
        elif col == "row":
            # Excel row number; blank for group findings (no row)
            out[col] = pd.to_numeric(findings["row"], errors="coerce").astype("Int64")
        elif col in NUMERIC_COLUMNS:
            out[col] = pd.to_numeric(findings[col], errors="coerce").astype("float64")
        elif col == "date":
            dates = pd.to_datetime(findings["date"], errors="coerce")
            out[col] = dates.dt.strftime("%Y-%m-%d").astype(object).where(dates.notna(), None)
        else:
            out[col] = neutralize_formulas(findings[col]) if col in findings else None
    # Any further columns a future rules engine adds travel along (made inert the same way).
    for col in findings.columns:
        if col not in out and col not in FINDING_COLUMNS:
            out[col] = neutralize_formulas(findings[col])
    return out.reset_index(drop=True)


def _with_ledger_text(findings: pd.DataFrame, ledger_df: pd.DataFrame | None) -> pd.DataFrame:
    """Findings plus the ledger's description, customer, receipt… of their row (by sheet and row)."""
    if ledger_df is None or not {"sheet", "row"} <= set(ledger_df.columns):
        return findings
    extra = [c for c in LEDGER_EXTRA_COLUMNS if c in ledger_df.columns and c not in findings.columns]
    if not extra:
        return findings
    right = ledger_df[["sheet", "row", *extra]].copy()
    right["row"] = pd.to_numeric(right["row"], errors="coerce").astype("Int64")
    right["sheet"] = right["sheet"].astype(object)
    right = right.drop_duplicates(["sheet", "row"])
    left = findings.assign(_sheet=findings["sheet"].astype(object),
                           _row=pd.to_numeric(findings["row"], errors="coerce").astype("Int64"))
    merged = left.merge(right.rename(columns={"sheet": "_sheet", "row": "_row"}), on=["_sheet", "_row"], how="left")
    merged.index = findings.index
    return merged.drop(columns=["_sheet", "_row"])


def write_findings_csv(findings: pd.DataFrame, path: str | PathLike[str], *, lang: str = "zh",
                       ledger_df: pd.DataFrame | None = None) -> Path:
    """Write ``findings`` to ``path`` as UTF-8-with-BOM CSV, atomically; returns the path.

    Columns start with ``finding_id,sheet,row,rule,severity,amount,score,message`` (``row``
    is the Excel row in the source sheet, empty for group findings); ``severity_label`` is the
    severity in ``lang``. With ``ledger_df`` (the canonical ledger) each row finding also
    carries its row's description, customer, receipt, project and region.
    """
    frame = findings_csv_frame(findings, lang=lang, ledger_df=ledger_df)
    return write_csv(frame, path, what="findings CSV", option="--findings-csv")


def write_csv(frame: pd.DataFrame, path: str | PathLike[str], *, what: str = "CSV",
              option: str = "-o") -> Path:
    """Write ``frame`` (already made formula-safe by the caller) as UTF-8-with-BOM CSV, atomically.

    UTF-8 with a BOM because Excel opens a BOM-less UTF-8 CSV as the local code page and
    garbles Chinese text. ``what``/``option`` name the file and the option in error messages.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8-sig", newline="", dir=folder,
                                             prefix=f".{target.name}.", suffix=".tmp", delete=False)
    except OSError as exc:
        raise OutputError(f"cannot write the {what}: {exc.strerror or exc}",
                          f"choose a folder you can write to with {option}", path=str(target)) from exc
    temp = Path(handle.name)
    try:
        with handle:
            # \r\n as RFC 4180 and Excel expect; repr-style floats keep -120.5 exact
            frame.to_csv(handle, index=False, lineterminator="\r\n")
        # mkstemp creates the file 0600; give it the mode a normal save would have
        os.chmod(temp, _file_mode(target))
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the {what}: {exc.strerror or exc}",
                          "close the file if it is open in Excel, or choose another path",
                          path=str(target)) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _file_mode(target: Path) -> int:
    """The mode of the file being replaced, else 0666 minus the umask (as ``open`` would give)."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
