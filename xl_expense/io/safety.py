"""Refuse zip bombs, XML bombs, truncated and encrypted workbooks before any parser sees them.

Ledgers arrive by e-mail from people we do not control. An ``.xlsx`` is a zip of XML parts,
so a 40 KB file can expand to terabytes (zip bomb) or ask an XML parser to expand entities
exponentially ("billion laughs"). :func:`check_package` reads only the zip's central
directory (the sizes each member *claims*) and the first kilobytes of the XML parts we will
parse, so a bomb is refused before anything is decompressed in bulk. The sizes are checked
again while streaming the XML heads: a member that lies about its size in the directory
cannot make us read more than :data:`XML_HEAD_BYTES` of it here.

Legacy ``.xls`` (an OLE compound file) and text files (CSV) pass through: calamine reads
``.xls`` record by record and CSV has no expansion.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from pathlib import Path

from xl_expense.errors import UnreadableWorkbook, UnsafeWorkbook

#: Refuse a package whose members add up to more than this once decompressed. The largest
#: sheet Excel can hold (1,048,576 rows × 16,384 columns) is never filled in a ledger; a
#: million-row, 20-column ledger is about 400 MB of XML.
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
#: Refuse any member that expands more than this many times…
MAX_COMPRESSION_RATIO = 200
#: …but only members at least this big once decompressed: small XML parts legitimately
#: compress 300× and more (a styles part of repeated tags), large ones that do are bombs.
RATIO_CHECK_MIN_BYTES = 1024**2
#: Real workbooks have hundreds of parts at most (one per sheet, drawing, image …).
MAX_MEMBERS = 10_000
#: How much of each XML part is scanned for a DTD (a DTD must come before the root element).
XML_HEAD_BYTES = 64 * 1024

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK"
_ROOT_TAG = re.compile(rb"<[A-Z_]")  # first element start tag (text upper-cased)
ZIP_EXTENSIONS = {".xlsx", ".xlsm", ".xltx", ".xltm", ".xlsb", ".xlam", ".ods"}

_RE_EXPORT = "re-export it from Excel (File ▸ Save As ▸ Excel Workbook) and try again"
_PASSWORD_FIX = ("remove the password in Excel (File ▸ Info ▸ Protect Workbook ▸ "
                 "Encrypt with Password, clear it) and save again")


def check_package(path: str | os.PathLike) -> None:
    """Raise unless ``path`` is safe to hand to a workbook parser.

    Raises :class:`~xl_expense.errors.UnsafeWorkbook` for zip/XML bombs and
    :class:`~xl_expense.errors.UnreadableWorkbook` for missing, empty, truncated, corrupt or
    password-protected files. Returns ``None`` for anything that may be parsed (zip
    packages within the limits, unencrypted ``.xls``, text files such as CSV).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise UnreadableWorkbook("file not found", "check the path and file name", str(path)) from None
    except IsADirectoryError:
        raise UnreadableWorkbook("is a folder, not a workbook", "give the path of an .xlsx file",
                                 str(path)) from None
    except OSError as exc:
        raise UnreadableWorkbook(f"cannot open the file ({exc.strerror})",
                                 "close it in other programs and check permissions", str(path)) from None
    if not head:
        raise UnreadableWorkbook("the file is empty", _RE_EXPORT, str(path))
    if head.startswith(OLE_MAGIC):
        _check_ole(path)
    elif head.startswith(ZIP_MAGIC):
        _check_zip(path)
    elif path.suffix.lower() in ZIP_EXTENSIONS:
        raise UnreadableWorkbook(f"not a valid {path.suffix.lower()} file (it is not a zip package)",
                                 f"the file is damaged or was renamed — {_RE_EXPORT}", str(path))
    # Anything else (CSV, text) is parsed as text later; no expansion risk.


def _check_ole(path: Path) -> None:
    """An OLE compound file is either a legacy .xls or an encrypted OOXML package.

    Excel stores a password-protected .xlsx inside OLE with streams named
    ``EncryptionInfo`` and ``EncryptedPackage``; the directory entries hold those names in
    UTF-16, which is enough to recognise them without an OLE parser.
    """
    with open(path, "rb") as handle:
        data = handle.read(4 * 1024 * 1024)
    if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
        raise UnreadableWorkbook("the workbook is password-protected", _PASSWORD_FIX, str(path))


def _check_zip(path: Path) -> None:
    """Apply the size, ratio and member-count limits to the central directory, then scan
    the XML parts for DTDs."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise UnreadableWorkbook(f"the file is truncated or not a valid workbook ({exc})",
                                 _RE_EXPORT, str(path)) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise UnsafeWorkbook(f"the package has {len(members):,} parts (limit {MAX_MEMBERS:,}); "
                                 "it looks like a zip bomb and was not opened",
                                 "if the file is genuine, save it again from Excel", str(path))
        total = sum(m.file_size for m in members)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise UnsafeWorkbook(f"the package would expand to {total / 1024**3:.1f} GiB "
                                 f"(limit {MAX_UNCOMPRESSED_BYTES / 1024**3:.0f} GiB); "
                                 "it looks like a zip bomb and was not opened",
                                 "split the ledger into smaller workbooks", str(path))
        for member in members:
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size >= RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
                raise UnsafeWorkbook(f"part {member.filename} expands {ratio:,.0f}× "
                                     f"(limit {MAX_COMPRESSION_RATIO}×); it looks like a zip bomb "
                                     "and was not opened",
                                     "if the file is genuine, save it again from Excel", str(path))
        for member in members:
            if _is_parsed_xml(member.filename):
                _check_xml_head(archive, member, path)


def _is_parsed_xml(name: str) -> bool:
    """XML parts a reader may parse (worksheets, shared strings, workbook, tables, rels…)."""
    lower = name.lower()
    return lower.endswith((".xml", ".rels")) or lower == "content.xml"


def _check_xml_head(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path) -> None:
    """Refuse a DTD in an XML part: SpreadsheetML never has one, and a DTD is what entity
    expansion bombs ("billion laughs", external entities) need."""
    try:
        with archive.open(member) as stream:
            head = stream.read(XML_HEAD_BYTES)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise UnreadableWorkbook(f"part {member.filename} is damaged ({exc}); "
                                 "the file is truncated or not a valid workbook",
                                 _RE_EXPORT, str(path)) from None
    except RuntimeError as exc:  # zipfile: "File … is encrypted, password required"
        raise UnreadableWorkbook(f"part {member.filename} is encrypted ({exc})", _PASSWORD_FIX,
                                 str(path)) from None
    sample = head.replace(b"\x00", b"").upper()  # also catches a UTF-16 encoded DTD
    root = _ROOT_TAG.search(sample)
    if root is None and len(head) == XML_HEAD_BYTES:
        # A DTD may only come before the root element; padding it out of our sight with
        # comments is itself a sign of a crafted file.
        raise UnsafeWorkbook(f"part {member.filename} has no XML element in its first "
                             f"{XML_HEAD_BYTES // 1024} KB; the file was not opened",
                             "if the file is genuine, save it again from Excel", str(path))
    prolog = sample[: root.start()] if root else sample
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise UnsafeWorkbook(f"part {member.filename} declares a DTD/entities, which no real workbook "
                             "has (an XML bomb); the file was not opened",
                             "if the file is genuine, save it again from Excel", str(path))
