"""Names of the report's sheets (``xl-expense report``), in both languages.

Apart from :mod:`xl_expense.io.report_sheets` so that the ledger reader, which must skip these
sheets, does not import the whole report writer: an audit's start-up is spent beside the
workbook parse, and every module it imports counts (see ``xl_expense.__main__``).
"""

from __future__ import annotations

SHEET_KEYS = ("dashboard", "customers", "scorecards", "benchmark", "proposals", "evaluation")
SHEET_NAMES = {
    "zh": {"dashboard": "看板", "customers": "客户", "scorecards": "绩效", "benchmark": "对标",
           "proposals": "优化建议", "evaluation": "评估"},
    "en": {"dashboard": "Dashboard", "customers": "Customers", "scorecards": "Scorecards", "benchmark": "Benchmark",
           "proposals": "Proposals", "evaluation": "Evaluation"},
}


def sheet_name(key: str, lang: str) -> str:
    """The name of report sheet ``key`` in ``lang``."""
    return SHEET_NAMES.get(lang, SHEET_NAMES["en"])[key]


def report_sheet_names() -> set[str]:
    """Every sheet name the report writes, in both languages (replaced on a re-run)."""
    return {name for names in SHEET_NAMES.values() for name in names.values()}
