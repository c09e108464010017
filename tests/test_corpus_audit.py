"""The whole audit workflow over every workbook of ../shared/corpus.

Most corpus files are not expense ledgers (they come from other projects' test suites): for
them the audit must stop with the reader's clear "no expense table found" error, and the
broken ones with a clear error of their own — never another exception. Where the audit
does find a ledger (20-odd files with date/amount columns), every member of the input
other than the sheet-listing parts must come out byte-identical (styles.xml append-only),
and LibreOffice must open the output. The whole corpus takes about 20 s.
``benchmarks/corpus_check.py --audit`` prints the same counts by reason.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.errors import LedgerNotFound, XlExpenseError
from xl_expense.i18n import t
from xl_expense.testing import audit_probe

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def audited(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Audit every corpus file once; outcomes by file."""
    out_dir = tmp_path_factory.mktemp("corpus-audit")
    files = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.name != "FEATURES.csv")
    outcome: dict[str, object] = {}
    for i, path in enumerate(files):
        suffix = path.suffix if path.suffix.lower() in (".xlsx", ".xlsm") else ".xlsx"
        dst = out_dir / f"{i:04d}{suffix}"
        try:
            problems = audit_probe(path, dst)
        except LedgerNotFound as exc:
            outcome[str(path)] = exc
            continue
        except XlExpenseError as exc:
            outcome[str(path)] = exc
            continue
        outcome[str(path)] = (dst, problems)
    return outcome


def test_every_corpus_workbook_is_audited_or_refused_clearly(audited: dict) -> None:
    assert len(audited) > 1500
    kinds = collections.Counter(type(v).__name__ for v in audited.values())
    refused = [v for v in audited.values() if isinstance(v, XlExpenseError)]
    for exc in refused:
        assert exc.path and exc.what and exc.fix, f"unclear refusal: {exc}"
        assert "\n" not in str(exc)
    ok = {k: v for k, v in audited.items() if isinstance(v, tuple)}
    assert len(ok) >= 15, f"expected the corpus's ledger-like files to be audited: {kinds}"
    assert kinds["LedgerNotFound"] > 1000


def test_audited_corpus_outputs_keep_every_other_part(audited: dict) -> None:
    broken = {k: v[1] for k, v in audited.items() if isinstance(v, tuple) and v[1]}
    assert not broken, broken


@needs_soffice
def test_libreoffice_opens_every_audited_corpus_output(audited: dict, tmp_path: Path) -> None:
    outputs = [v[0] for v in audited.values() if isinstance(v, tuple)]
    produced = convert(outputs, CSV_ALL_SHEETS, tmp_path, timeout=600)
    for dst in outputs:
        sheets = {p.stem.split("-", 1)[1] for p in produced if p.stem.split("-", 1)[0] == dst.stem}
        assert t("sheet.findings", "zh") in sheets and t("sheet.summary", "zh") in sheets, dst
