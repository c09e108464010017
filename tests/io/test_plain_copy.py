"""Values copies of non-package ledgers: sheet names an .xlsx can hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import python_calamine

from xl_expense.io.plain_copy import xlsx_sheet_name
from xl_expense.io.xlsx_package import check_sheet_name
from xl_expense.workflows import audit_workbook


@pytest.mark.parametrize(("name", "expected"), [
    ("APR 2014", "APR 2014"),           # valid names are kept, so findings link to them
    (" ", "Sheet2"),                    # a blank .xls sheet name
    ("Q1/Q2 [draft]", "Q1_Q2 _draft_"),
    ("'quoted'", "quoted"),
    ("History", "History_"),
    ("费用明细" * 10, "费用明细" * 7 + "费用明"),  # 31 characters at most
])
def test_names_excel_refuses_are_made_valid(name: str, expected: str) -> None:
    made = xlsx_sheet_name(name, set(), 2)
    assert made == expected
    check_sheet_name(made)


def test_names_made_alike_stay_distinct() -> None:
    taken: set[str] = set()
    names = [xlsx_sheet_name(n, taken, i) for i, n in enumerate(["a/b", "a:b", "A?B", "x" * 40, "x" * 35], start=1)]
    assert names == ["a_b", "a_b_2", "A_B_3", "x" * 31, "x" * 29 + "_2"]
    for name in names:
        check_sheet_name(name)


def test_an_xls_with_a_blank_sheet_name_is_audited(shared_data: Path, tmp_path: Path) -> None:
    """Birmingham's April 2014 export has a second sheet named ' ' (Excel 97 allowed it)."""
    source = shared_data / "messy" / "birmingham_raw" / "purchasecardtransactionsapril2014.xls"
    if not source.is_file():
        pytest.skip(f"{source} absent")
    result = audit_workbook(source, tmp_path / "out.xlsx")
    assert len(result.ledger.df) > 0
    names = python_calamine.CalamineWorkbook.from_path(str(result.output)).sheet_names
    assert names[:2] == ["APR 2014", "Sheet2"]
