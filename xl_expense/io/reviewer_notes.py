"""Read the Status and Comment a reviewer typed into an earlier audit output.

Running the audit again on its own output must keep every note for findings that still
exist. Finding ids are stable across runs (the rules engine guarantees it), so this module
only has to find the findings sheet and its id/status/comment columns — by their labels in
either language, since a team may switch ``--lang`` between runs — and return the notes.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import pandas as pd

from xl_expense import i18n
from xl_expense.errors import UnreadableWorkbook

NOTE_COLUMNS = ("finding_id", "status", "comment")

#: Status keys in i18n; the order is the dropdown's order.
STATUS_KEYS = ("status.open", "status.explained", "status.confirmed")

#: Any label of a status (either language, folded) → its i18n key.
_STATUS_LOOKUP: dict[str, str] = {
    i18n.t(key, lang).strip().casefold(): key for key in STATUS_KEYS for lang in i18n.LANGS
}


def our_sheet_names() -> set[str]:
    """Every sheet name the audit writes, in both languages (the writer replaces these on a re-run)."""
    return {*i18n.all_langs("sheet.summary"), *i18n.all_langs("sheet.findings")}


def status_options(lang: str) -> list[str]:
    """The dropdown choices in ``lang``: open, explained, confirmed."""
    return [i18n.t(key, lang) for key in STATUS_KEYS]


def normalize_status(value: object, lang: str) -> str:
    """A status in ``lang``: ``已确认`` → ``Confirmed`` for an English run; blank → Open.

    Text that is no known status (a reviewer typed over the dropdown) is kept as typed:
    dropping it would lose the reviewer's work.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return i18n.t("status.open", lang)
    text = str(value).strip()
    if not text:
        return i18n.t("status.open", lang)
    key = _STATUS_LOOKUP.get(text.casefold())
    return i18n.t(key, lang) if key else text


def empty_notes() -> pd.DataFrame:
    """A notes DataFrame without rows (no earlier output, or no findings sheet in it)."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in NOTE_COLUMNS})


def read_reviewer_notes(path: str | PathLike[str], book: Any = None) -> pd.DataFrame:
    """Notes (``finding_id, status, comment``) from the findings sheet of an earlier output.

    Returns an empty DataFrame when the workbook has no findings sheet in either language
    or the sheet lacks an id column. Blank cells become ``None``; numbers a reviewer typed
    into Comment become text. ``book``: ``path`` already open as a calamine workbook (a
    workflow opens it once for all its readers); it is left open.
    """
    from python_calamine import CalamineWorkbook

    own = book is None
    if own:
        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own error types for corrupt files
            raise UnreadableWorkbook(f"cannot read reviewer notes: {exc}",
                                     "open the earlier audit output in Excel and save it again",
                                     path=str(path)) from exc
    try:
        names = set(i18n.all_langs("sheet.findings"))
        sheet_name = next((name for name in book.sheet_names if name in names), None)
        if sheet_name is None:
            return empty_notes()
        # skip_empty_area=False: row 0 must be the header row 1 even if A1 were blank.
        rows = book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    finally:
        if own:
            book.close()
    return notes_from_rows(rows)


def notes_from_rows(rows: list[list[object]]) -> pd.DataFrame:
    """Notes from the cell values of a findings sheet whose first row is the header."""
    if not rows:
        return empty_notes()
    positions = _note_columns(rows[0])
    if positions.get("finding_id") is None:
        return empty_notes()
    out = {}
    for name in NOTE_COLUMNS:
        index = positions.get(name)
        out[name] = [_cell_text(row[index]) if index is not None and index < len(row) else None
                     for row in rows[1:]]
    notes = pd.DataFrame(out, dtype=object)
    notes = notes[notes["finding_id"].notna()].reset_index(drop=True)
    return notes


def _note_columns(header: list[object]) -> dict[str, int | None]:
    """Column positions of id, status and comment, by their label in either language."""
    folded = [str(cell).strip().casefold() if cell is not None else "" for cell in header]
    positions: dict[str, int | None] = {}
    for name in NOTE_COLUMNS:
        labels = {label.casefold() for label in i18n.all_langs(f"col.{name}")}
        positions[name] = next((i for i, cell in enumerate(folded) if cell in labels), None)
    return positions


def _cell_text(value: object) -> str | None:
    """A cell as text; blank → None; 12.0 typed in a comment → "12"."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None
