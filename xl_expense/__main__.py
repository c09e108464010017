"""``python -m xl_expense`` and the ``xl-expense`` console script.

On a big workbook ``xl-expense audit`` spends its first ~0.7 s in python-calamine's parse of
the ledger sheet, which runs in a background thread beside the command's imports (see
:mod:`xl_expense.io.prefetch`). Every millisecond before that thread starts is on the
critical path, so this entry point starts it before importing click and the command line
(about 45 ms of imports); the ``audit`` command then finds the prefetch already pending.
"""

from __future__ import annotations

import sys

#: Options of ``xl-expense audit`` that take a value (the next argument, or ``--opt=value``).
#: A test keeps this in step with the command's own options.
AUDIT_VALUE_OPTIONS = frozenset({"-o", "--output", "--sheet", "--map", "--config", "--lang", "--findings-csv"})


def audit_input(argv: list[str]) -> str | None:
    """The INPUT argument of an ``audit`` command line, or None for any other command.

    Only a guess to start reading early: click parses the real command line later, and a
    wrong guess costs nothing but the parse of a file the command then does not take.
    """
    if not argv or argv[0] != "audit":
        return None
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            return next(args, None)
        if arg in AUDIT_VALUE_OPTIONS:
            next(args, None)
        elif not arg.startswith("-") or arg == "-":
            return arg
    return None


def main() -> None:
    """Start reading the audit's workbook, then run the command line."""
    path = audit_input(sys.argv[1:])
    if path is not None:
        from xl_expense.io.prefetch import prefetch_workbook

        prefetch_workbook(path)
    from xl_expense.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
