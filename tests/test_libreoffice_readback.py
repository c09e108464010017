"""A real spreadsheet application opens the audited workbook and reads the findings back."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.demo import INJECTION_TEXT
from xl_expense.workflows import audit_workbook


@needs_soffice
def test_libreoffice_reads_back_the_findings(tmp_path: Path, demo_workbook: Path) -> None:
    src = tmp_path / "ledger.xlsx"
    shutil.copy(demo_workbook, src)
    result = audit_workbook(src, tmp_path / "audited.xlsx", lang="en")
    produced = convert(result.output, CSV_ALL_SHEETS, tmp_path / "csv")
    by_sheet = {p.stem.split("-", 1)[1]: p for p in produced}
    assert {"费用明细", "月度汇总", "设置", "Audit Summary", "Audit Findings"} <= set(by_sheet)

    with open(by_sheet["Audit Findings"], encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [r for r in rows[1:] if any(r)]
    assert len(body) == len(result.findings)
    ids = [r[header.index("Finding ID")] for r in body]
    assert ids == list(result.findings["finding_id"])
    # The hostile description arrives as its literal text: LibreOffice did not evaluate it.
    messages = [cell for r in body for cell in r]
    ledger_cells = by_sheet["费用明细"].read_text(encoding="utf-8")
    assert INJECTION_TEXT.replace('"', '""') in ledger_cells
    assert all("点击查看明细" not in c or c.count("HYPERLINK") for c in messages)
