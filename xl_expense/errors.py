"""Errors a user can fix. Each message says what is wrong and how to fix it.

The CLI turns any :class:`XlExpenseError` into one line on stderr,
``Error: <file>: <what> — <how to fix>``, and exit code 1; an Excel macro shows
the same line in a message box.
"""

from __future__ import annotations


class XlExpenseError(Exception):
    """Base of every error caused by the input or the settings, not by a bug."""

    def __init__(self, what: str, fix: str = "", path: str | None = None):
        self.what = what
        self.fix = fix
        self.path = path
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message without the ``Error:`` prefix: ``<file>: <what> — <fix>``."""
        text = self.what
        if self.fix:
            text = f"{text} — {self.fix}"
        if self.path:
            text = f"{self.path}: {text}"
        return text

    def with_path(self, path: str) -> "XlExpenseError":
        """Attach the file name once it is known (inner code often does not know it)."""
        if not self.path:
            self.path = str(path)
            self.args = (self.one_line(),)
        return self


class UnreadableWorkbook(XlExpenseError):
    """The file is not a workbook we can open (corrupt, truncated, encrypted, wrong format)."""


class UnsafeWorkbook(XlExpenseError):
    """The file looks like a zip or XML bomb and was refused before parsing."""


class LedgerNotFound(XlExpenseError):
    """No expense table (header with date/amount columns) was found."""


class SettingsError(XlExpenseError):
    """A setting in the Settings sheet or TOML file is missing or invalid."""


class OutputError(XlExpenseError):
    """The output could not be written (locked file, permissions, same path as input)."""
