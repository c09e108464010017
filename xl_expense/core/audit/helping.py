"""A thread that would only wait takes part in the work it waits for.

On a big ledger the anomaly rule runs in a second thread while the audit's thread runs the
other rules (see :func:`xl_expense.core.audit.run_audit`). The forest's scoring splits into
blocks of rows that any thread can score. While the other rules run, the rule's own thread
scores alone: two busy threads on a two-core machine. Once the audit's thread is done with
its own work it would only wait for the forest; instead it takes blocks too. So the work
never has more threads than cores, and no core sits idle while there is work.

The help is offered through a context variable: only code running in the aside thread's
context (which :func:`offering_help` sets up) can offer work, so a rule run inline never
waits for a helper that does not exist.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future

#: How often a waiting helper looks whether the work it waits for is done (seconds).
_POLL = 0.002


class HelpDesk:
    """Jobs offered by a thread running aside, taken by the thread waiting for it."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def offer(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def help_until(self, future: Future) -> None:
        """Run offered jobs until ``future`` is done (its result is then ready)."""
        while not future.done():
            try:
                job = self._jobs.get(timeout=_POLL)
            except queue.Empty:
                continue
            job()


_DESK: contextvars.ContextVar[HelpDesk | None] = contextvars.ContextVar("xl_expense_help_desk", default=None)


def offering_help(context: contextvars.Context, desk: HelpDesk) -> contextvars.Context:
    """``context`` in which :func:`offer_help` hands jobs to ``desk`` (the aside thread's)."""
    context.run(_DESK.set, desk)
    return context


def offer_help(job: Callable[[], None]) -> bool:
    """Offer ``job`` to a thread that waits for this one; False when none will take it."""
    desk = _DESK.get()
    if desk is None:
        return False
    desk.offer(job)
    return True


class SharedBlocks:
    """Independent pieces of work (``work(item)`` for each item) that several threads take
    one at a time; :meth:`wait` returns when all are done, and re-raises a failure."""

    def __init__(self, items: Iterable, work: Callable[[object], None]) -> None:
        self._items = iter(items)
        self._work = work
        self._lock = threading.Lock()
        self._taken = 0
        self._done = 0
        self._exhausted = False
        self._all_done = threading.Event()
        self._error: BaseException | None = None

    def take_part(self) -> None:
        """Do pieces until none are left to take."""
        while True:
            with self._lock:
                item = next(self._items, _NONE)
                if item is _NONE:
                    self._exhausted = True
                    if self._done == self._taken:
                        self._all_done.set()
                    return
                self._taken += 1
            try:
                self._work(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
                self._error = self._error or exc
            finally:
                with self._lock:
                    self._done += 1
                    if self._exhausted and self._done == self._taken:
                        self._all_done.set()

    def wait(self) -> None:
        self._all_done.wait()
        if self._error is not None:
            raise self._error


_NONE = object()
