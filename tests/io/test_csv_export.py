"""Findings CSV: BOM, contract columns, atomic write, and no formula injection."""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tests.libreoffice import SOFFICE, needs_soffice
from xl_expense.errors import OutputError
from xl_expense.io.csv_export import neutralize_formulas, write_findings_csv
from xl_expense.schema import FINDING_COLUMNS

EVIL = [
    '=HYPERLINK("http://evil","点击")',
    "=cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "+1",
    "\t=1+1",
]


def make_findings() -> pd.DataFrame:
    n = len(EVIL)
    df = pd.DataFrame({
        "finding_id": [f"f{i}" for i in range(n)] + ["grp"],
        "rule": ["duplicate"] * n + ["benford"],
        "severity": ["error"] * n + ["warning"],
        "sheet": ["费用明细"] * n + [None],
        "row": pd.array(list(range(2, n + 2)) + [None], dtype="Int64"),
        "date": pd.to_datetime(["2026-03-05"] * n + [None]),
        "person": ["张三"] * n + ["李四"],
        "department": ["华东"] * (n + 1),
        "vendor": EVIL + [None],
        "category": ["礼品"] * (n + 1),
        "amount": [-120.5] + [1000.0] * (n - 1) + [45000.0],
        "score": [1.0] * n + [0.25],
        "message": ["重复报销"] * n + ["=1+1 looks odd"],
    })
    return df[list(FINDING_COLUMNS)]


def read_back(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bom_and_contract_columns(tmp_path):
    path = write_findings_csv(make_findings(), tmp_path / "f.csv", lang="zh")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.splitlines()[0].decode("utf-8-sig").split(",")[:8] == [
        "finding_id", "sheet", "row", "rule", "severity", "amount", "score", "message"]
    assert b"\r\n" in raw


def test_values_and_group_row(tmp_path):
    rows = read_back(write_findings_csv(make_findings(), tmp_path / "f.csv", lang="en"))
    first, group = rows[0], rows[-1]
    assert (first["finding_id"], first["sheet"], first["row"], first["rule"]) == ("f0", "费用明细", "2", "duplicate")
    assert (first["severity"], first["severity_label"], first["date"]) == ("error", "Error", "2026-03-05")
    assert first["amount"] == "-120.5"  # a real negative number stays a number
    assert (group["row"], group["sheet"], group["amount"], group["score"]) == ("", "", "45000.0", "0.25")


def test_formula_injection_is_neutralised(tmp_path):
    rows = read_back(write_findings_csv(make_findings(), tmp_path / "f.csv", lang="zh"))
    assert [r["vendor"] for r in rows[:len(EVIL)]] == ["'" + text for text in EVIL]
    assert rows[-1]["message"] == "'=1+1 looks odd"
    assert rows[0]["person"] == "张三"  # ordinary text untouched


def test_neutralize_formulas_leaves_numbers_and_missing():
    series = pd.Series(["=1", "ok", None, -5, "－1", "\r=2", "a=b"], dtype=object)
    assert neutralize_formulas(series).tolist() == ["'=1", "ok", None, -5, "'－1", "'\r=2", "a=b"]


def test_atomic_replace_keeps_no_temp_files(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, 0o640)
    write_findings_csv(make_findings(), target, lang="zh")
    assert target.read_bytes().startswith(b"\xef\xbb\xbffinding_id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.csv"
    target.write_text("old", encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match="No space left on device"):
        write_findings_csv(make_findings(), target, lang="zh")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(OutputError, match="--findings-csv"):
        write_findings_csv(make_findings(), tmp_path / "nope" / "f.csv", lang="zh")


def _soffice_csv_to_xlsx(csv_path: Path, outdir: Path) -> Path:
    """Open the CSV as a user would (UTF-8, comma) and save it as xlsx, with a throw-away profile."""
    outdir.mkdir()
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        subprocess.run(
            ["setsid", "timeout", "-k", "10", "180", SOFFICE, f"-env:UserInstallation=file://{profile}",
             "--headless", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
             # 44 = comma, 34 = double quote, 76 = UTF-8, 1 = start at line 1
             "--infilter=CSV:44,34,76,1", "--convert-to", "xlsx", "--outdir", str(outdir), str(csv_path)],
            check=False, capture_output=True, timeout=200, env={**os.environ, "HOME": profile})
    produced = outdir / (csv_path.stem + ".xlsx")
    assert produced.exists(), "LibreOffice did not convert the CSV"
    return produced


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_text_not_formulas(tmp_path):
    # control: the same text without the quote does become a formula in LibreOffice
    raw = tmp_path / "raw.csv"
    raw.write_text("vendor\r\n=1+1\r\n", encoding="utf-8-sig")
    control = openpyxl.load_workbook(_soffice_csv_to_xlsx(raw, tmp_path / "control")).active
    assert control["A2"].data_type == "f"

    path = write_findings_csv(make_findings(), tmp_path / "findings.csv", lang="zh")
    ws = openpyxl.load_workbook(_soffice_csv_to_xlsx(path, tmp_path / "lo")).active
    header = [c.value for c in ws[1]]
    assert header[:8] == ["finding_id", "sheet", "row", "rule", "severity", "amount", "score", "message"]
    vendor = header.index("vendor") + 1
    cells = [ws.cell(row=r, column=vendor) for r in range(2, len(EVIL) + 2)]
    assert all(c.data_type == "s" for c in cells), [(c.value, c.data_type) for c in cells]
    assert cells[0].value.endswith('=HYPERLINK("http://evil","点击")')
    amount = ws.cell(row=2, column=header.index("amount") + 1)
    assert (amount.value, amount.data_type) == (-120.5, "n")


def test_ledger_text_is_joined_and_neutralised(tmp_path):
    findings = make_findings()
    ledger = pd.DataFrame({
        "sheet": ["费用明细", "费用明细", "其他"], "row": [2, 3, 2],
        "description": ['=HYPERLINK("http://evil","点击")', "客户晚餐", "wrong sheet"],
        "customer": ["华为", None, "x"], "receipt": ["INV1", "INV2", "INV3"],
    })
    rows = read_back(write_findings_csv(findings, tmp_path / "f.csv", lang="zh", ledger_df=ledger))
    assert [(r["row"], r["description"], r["customer"], r["receipt"]) for r in rows[:3]] == [
        ("2", '\'=HYPERLINK("http://evil","点击")', "华为", "INV1"), ("3", "客户晚餐", "", "INV2"), ("4", "", "", "")]
    assert rows[-1]["description"] == ""  # group finding: no row to join
    assert len(rows) == len(findings)
