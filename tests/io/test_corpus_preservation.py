"""Adding audit sheets to real third-party workbooks damages nothing (../shared/corpus).

Sample (deterministic, documented so a failure can be reproduced): for each feature column
of FEATURES.csv that openpyxl is known to lose or that makes packages tricky — charts,
chartsheets, pivots, VBA, images, comments, threaded comments, Tables, data validation,
ActiveX/form controls, external links, rich data, sparklines — up to
``PER_FEATURE`` files spread evenly over the sorted list, plus a few known-broken inputs.
The whole corpus runs in ``benchmarks/corpus_check.py``.

For each sampled file: add a findings-like sheet (Table, dropdown, hyperlink to the first
sheet, conditional formatting, chart) and a summary sheet, then check that every other
member is byte-identical (styles.xml append-only), that python-calamine reads the new
sheet back, and that openpyxl loads the output whenever it loaded the input. Inputs we
cannot extend must raise an XlExpenseError, never anything else. LibreOffice opens a
handful of the outputs and exports the new sheet.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.libreoffice import CSV_ALL_SHEETS, convert, needs_soffice
from xl_expense.errors import XlExpenseError
from xl_expense.testing import PROBE_SHEETS, probe_workbook

pytestmark = pytest.mark.corpus

FEATURES = ("chart", "chartsheet", "pivot", "vba", "image", "comments", "threadedComments", "table",
            "dataValidation", "activeX/ctrlProps", "externalLink", "richData", "sparkline")
PER_FEATURE = 8
BROKEN_PATTERN = re.compile(r"clusterfuzz|xmlbomb|corrupt|duplicate-filename|BadWorkbook|strict", re.I)
BROKEN_COUNT = 8
LIBREOFFICE_COUNT = 10
LIBREOFFICE_MAX_BYTES = 300_000
#: Files openpyxl itself needs minutes to load (measured: 111 s): only its load check is skipped.
OPENPYXL_TOO_SLOW = {"closedxml/TryToLoad_DrawingSizeInPx.xlsx"}


def _spread(items: list[str], k: int) -> list[str]:
    """k items evenly spaced over a sorted list (all of them when there are fewer)."""
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def corpus_sample() -> tuple[list[str], list[str]]:
    """(feature-rich files, broken files) as paths relative to the corpus folder."""
    table = CORPUS / "FEATURES.csv"
    if not table.is_file():
        return [], []
    with open(table, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen: set[str] = set()
    for feature in FEATURES:
        having = sorted(f"{r['source']}/{r['file']}" for r in rows
                        if r.get(feature, "0") not in ("", "0") and not r.get("error"))
        chosen.update(_spread(having, PER_FEATURE))
    errors = sorted(f"{r['source']}/{r['file']}" for r in rows if r.get("error"))
    named = sorted(f"{r['source']}/{r['file']}" for r in rows if BROKEN_PATTERN.search(r["file"]))
    broken = _spread(sorted(set(errors) | set(named)), BROKEN_COUNT)
    return sorted(chosen - set(broken)), broken


SAMPLE, BROKEN = corpus_sample()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus_out")


def _output_path(outputs: Path, rel: str) -> Path:
    suffix = ".xlsm" if rel.lower().endswith((".xlsm", ".xltm")) else ".xlsx"
    return outputs / (re.sub(r"[^\w.-]", "_", rel) + suffix)


def _openpyxl_loads(path: Path) -> Exception | None:
    from openpyxl import load_workbook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_workbook(path).close()
        except Exception as exc:  # openpyxl's own limits: recorded, compared below
            return exc
    return None


def test_sample_is_documented_and_not_empty(corpus_dir):
    assert len(SAMPLE) >= 60, f"sample has {len(SAMPLE)} files"
    assert any("vba" in p or p.endswith(".xlsm") for p in SAMPLE)
    assert BROKEN


@pytest.mark.parametrize("rel", SAMPLE or ["(corpus absent)"])
def test_adding_sheets_preserves_every_other_part(corpus_dir, outputs, rel):
    src = corpus_dir / rel
    dst = _output_path(outputs, rel)
    try:
        problems = probe_workbook(src, dst)
    except XlExpenseError as exc:
        pytest.skip(f"refused with a clear error: {exc}")  # counted by benchmarks/corpus_check.py
    assert problems == []
    if rel not in OPENPYXL_TOO_SLOW and _openpyxl_loads(src) is None:
        assert _openpyxl_loads(dst) is None


@pytest.mark.parametrize("rel", BROKEN or ["(corpus absent)"])
def test_broken_inputs_fail_with_a_clear_error(corpus_dir, outputs, rel):
    dst = _output_path(outputs, rel)
    try:
        problems = probe_workbook(corpus_dir / rel, dst)
    except XlExpenseError as exc:
        assert exc.what and exc.fix and str(exc).startswith(str(corpus_dir / rel))
        assert not dst.exists()
        return
    assert problems == []  # damaged only where we do not look: still extended faithfully


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_outputs(corpus_dir, tmp_path):
    small = [rel for rel in SAMPLE if (corpus_dir / rel).stat().st_size <= LIBREOFFICE_MAX_BYTES]
    checked = 0
    for rel in _spread(small, LIBREOFFICE_COUNT):
        dst = tmp_path / Path(_output_path(tmp_path, rel)).name
        try:
            assert probe_workbook(corpus_dir / rel, dst) == []
        except XlExpenseError:
            continue
        produced = convert(dst, CSV_ALL_SHEETS, tmp_path / f"csv{checked}", timeout=120)
        findings = [p for p in produced if p.stem.endswith("-" + PROBE_SHEETS[0])]
        assert findings, f"{rel}: LibreOffice exported {[p.name for p in produced]}"
        text = findings[0].read_text(encoding="utf-8")
        assert "F1,duplicate,1234.5" in text and "=cmd|' /C calc'!A0" in text, f"{rel}: {text[:300]}"
        checked += 1
    assert checked >= min(LIBREOFFICE_COUNT, len(small)) - 2
