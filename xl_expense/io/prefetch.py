"""Parse a workbook's sheets in a background thread while the command is still starting.

``xl-expense audit big.xlsx`` spends its first half second importing pandas, numpy and the
audit rules, and then python-calamine spends about as long parsing the ledger sheet. calamine
releases the GIL while it parses, so the two can overlap: the command starts
:func:`prefetch_workbook` before its heavy imports, and the ledger reader later takes the
opened book and the parsed sheets with :func:`take_prefetched` instead of parsing again.

Only what the reader would parse anyway is prefetched: the worksheets of a workbook without
Excel Tables (a Table ledger is read through the table, not the sheet), minus the sheets our
own audit writes. Nothing here decides anything: a file that fails here (unsafe, damaged,
password) is simply not prefetched, and the reader then opens it itself and reports the
problem as it always does. This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from xl_expense.i18n import all_langs

#: The audit's own sheets, in every language: never the ledger (the reader skips them too), so not parsed.
AUDIT_SHEETS = frozenset(name for key in ("sheet.summary", "sheet.findings", "sheet.settings")
                         for name in all_langs(key))
_SUFFIXES = (".xlsx", ".xlsm")


class Prefetched:
    """A workbook opened in the background, with the worksheets parsed so far by name.

    A plain class, not a dataclass: importing ``dataclasses`` would delay the start of the
    parse by several milliseconds (see ``xl_expense.__main__``); nor is ``typing``.
    """

    __slots__ = ("book", "sheets")

    def __init__(self, book: object, sheets: dict[str, object] | None = None) -> None:
        self.book = book  # a python_calamine CalamineWorkbook
        self.sheets: dict[str, object] = {} if sheets is None else sheets  # name → CalamineSheet


_lock = threading.Lock()
_pending: dict[tuple, tuple[threading.Thread, list[Prefetched | None]]] = {}


def file_key(path: Path) -> tuple | None:
    """Path, size and modification time: a file changed since the prefetch is read afresh."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def prefetch_workbook(path: str | os.PathLike) -> bool:
    """Start opening and parsing ``path`` in a daemon thread; False when it is not worth it.

    Only ``.xlsx``/``.xlsm`` packages are prefetched (CSV and legacy formats are read other
    ways). At most one prefetch per file is pending.
    """
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        return False
    key = file_key(path)
    if key is None:
        return False
    with _lock:
        if key in _pending:
            return True
        box: list[Prefetched | None] = [None]
        thread = threading.Thread(target=_load, args=(path, box), name="xl-expense-prefetch", daemon=True)
        _pending[key] = (thread, box)
    thread.start()
    return True


def _load(path: Path, box: list[Prefetched | None]) -> None:
    """Open ``path`` and parse its candidate worksheets; any failure leaves ``box`` empty."""
    try:
        import python_calamine as calamine

        from xl_expense.io.safety import check_package

        check_package(path)  # bombs are refused before any parser sees them
        book = calamine.CalamineWorkbook.from_path(str(path), load_tables=True)
        fetched = Prefetched(book)
        box[0] = fetched
        if book.table_names:
            return
        for meta in book.sheets_metadata:
            if meta.typ == calamine.SheetTypeEnum.WorkSheet and meta.name not in AUDIT_SHEETS:
                fetched.sheets[meta.name] = book.get_sheet_by_name(meta.name)
    except BaseException:  # noqa: BLE001 - the reader reopens the file and reports the problem itself
        box[0] = None


def prefetch_running(path: str | os.PathLike) -> bool:
    """Is a prefetch of ``path`` still parsing? The caller may use the wait for other work
    on the file (``audit_workbook`` hashes it and scans its formulas meanwhile)."""
    key = file_key(Path(path))
    with _lock:
        entry = _pending.get(key) if key is not None else None
    return entry is not None and entry[0].is_alive()


def take_prefetched(path: str | os.PathLike) -> Prefetched | None:
    """The prefetched workbook for ``path`` (waiting for the thread), or None.

    A prefetch is taken once; a file changed since it started is not taken.
    """
    key = file_key(Path(path))
    with _lock:
        entry = _pending.pop(key, None) if key is not None else None
    if entry is None:
        return None
    thread, box = entry
    thread.join()
    return box[0]


def discard_prefetched() -> None:
    """Forget prefetches nobody took (a command that failed before reading)."""
    with _lock:
        entries = list(_pending.values())
        _pending.clear()
    for thread, _ in entries:
        thread.join()
