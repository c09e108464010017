"""xl-expense: read, classify, audit and budget sales maintenance expenses (销售维护费) in Excel.

The public Python API mirrors the command line (``xl-expense audit`` ↔ :func:`audit_workbook`).
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    """Import the API lazily so ``import xl_expense`` stays fast for UDFs and the CLI (the
    command line starts reading the workbook before anything heavy is imported)."""
    if name == "Settings":
        from xl_expense.core.settings import Settings

        return Settings
    if name == "XlExpenseError":
        from xl_expense.errors import XlExpenseError

        return XlExpenseError
    if name in ("audit_workbook", "AuditResult"):
        from xl_expense import workflows

        return getattr(workflows, name)
    if name in ("read_ledger", "load_ledger"):
        from xl_expense.io import ledger_reader

        return getattr(ledger_reader, name)
    if name == "run_audit":
        from xl_expense.core.audit import run_audit

        return run_audit
    if name in ("fill_budget_workbook", "monitor_workbook", "transfer_workbook"):
        from xl_expense import budget_workflows

        return getattr(budget_workflows, name)
    if name == "make_budget_template":
        from xl_expense.io.budget_template import make_budget_template

        return make_budget_template
    lazy = {
        "classify_workbook": "xl_expense.classify_workflow", "ClassifyResult": "xl_expense.classify_workflow",
        "report_workbook": "xl_expense.report_workflow", "convert_file": "xl_expense.convert",
        "run_batch": "xl_expense.batch", "classify_ledger": "xl_expense.core.classify_ledger",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    if name == "write_demo_workbook":
        from xl_expense.demo import write_demo_workbook

        return write_demo_workbook
    raise AttributeError(f"module 'xl_expense' has no attribute {name!r}")


__all__ = [
    "AuditResult",
    "ClassifyResult",
    "classify_ledger",
    "classify_workbook",
    "convert_file",
    "report_workbook",
    "run_batch",
    "Settings",
    "XlExpenseError",
    "__version__",
    "audit_workbook",
    "fill_budget_workbook",
    "make_budget_template",
    "monitor_workbook",
    "transfer_workbook",
    "load_ledger",
    "read_ledger",
    "run_audit",
    "write_demo_workbook",
]
