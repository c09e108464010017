"""Bombs, truncated, encrypted and random files are refused before any parser runs."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

from ledger_fixtures import CN_HEADER, replace_member, write_rows
from xl_expense.errors import UnreadableWorkbook, UnsafeWorkbook, XlExpenseError
from xl_expense.io import safety
from xl_expense.io.safety import check_package


@pytest.fixture
def small_xlsx(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "ok.xlsx", [CN_HEADER, ["2026-03-01", "全家", "餐", 12, "餐费"]])


def test_valid_workbook_and_csv_pass(small_xlsx: Path, tmp_path: Path):
    assert check_package(small_xlsx) is None
    csv = tmp_path / "a.csv"
    csv.write_text("日期,金额\n2026-03-01,5\n", encoding="utf-8")
    assert check_package(csv) is None


def _claimed_size_bomb(path: Path, claimed: int) -> Path:
    """A zip whose central directory *claims* a huge member: decompressing it would fail
    (sizes mismatch), so refusing it with UnsafeWorkbook proves we refuse before reading."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<worksheet/>" * 100)
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02", data.find(b"xl/worksheets/sheet1.xml") - 46 - 30)
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        name = bytes(data[central + 46: central + 46 + name_len])
        if name == b"xl/worksheets/sheet1.xml":
            struct.pack_into("<I", data, central + 24, claimed)  # uncompressed size
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    return path


def test_claimed_size_bomb_is_refused_before_decompressing(tmp_path: Path):
    bomb = _claimed_size_bomb(tmp_path / "claimed.xlsx", 0xFFFF_FFF0)  # ~4 GiB claimed
    assert zipfile.ZipFile(bomb).getinfo("xl/worksheets/sheet1.xml").file_size == 0xFFFF_FFF0
    with pytest.raises(UnsafeWorkbook, match=r"expand to 4\.0 GiB \(limit 2 GiB\)"):
        check_package(bomb)


def test_high_ratio_member_is_refused(tmp_path: Path):
    bomb = tmp_path / "ratio.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))
    with pytest.raises(UnsafeWorkbook, match=r"part xl/worksheets/sheet1\.xml expands .*× \(limit 200×\)"):
        check_package(bomb)


def test_small_parts_may_compress_well(tmp_path: Path):
    """Small parts compress 300× legitimately (repeated tags); only big ones are judged."""
    path = tmp_path / "small.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("xl/styles.xml", b"<a/>" + b" " * (512 * 1024))
    assert check_package(path) is None


def test_too_many_members(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(safety, "MAX_MEMBERS", 50)
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(51):
            archive.writestr(f"xl/media/{i}.bin", b"x")
    with pytest.raises(UnsafeWorkbook, match="51 parts"):
        check_package(path)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol3;</t></si></sst>"""


def test_billion_laughs_in_shared_strings_is_refused(small_xlsx: Path, tmp_path: Path):
    bomb = replace_member(small_xlsx, tmp_path / "laughs.xlsx", "xl/sharedStrings.xml", BILLION_LAUGHS)
    with pytest.raises(UnsafeWorkbook, match="sharedStrings.xml declares a DTD"):
        check_package(bomb)


def test_dtd_hidden_behind_padding_is_refused(small_xlsx: Path, tmp_path: Path):
    padded = b"<?xml version='1.0'?><!--" + b"x" * (80 * 1024) + b"-->" + BILLION_LAUGHS[21:]
    bomb = replace_member(small_xlsx, tmp_path / "padded.xlsx", "xl/workbook.xml", padded)
    with pytest.raises(UnsafeWorkbook, match="no XML element in its first 64 KB"):
        check_package(bomb)


def test_truncated_workbook(small_xlsx: Path, tmp_path: Path):
    data = small_xlsx.read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableWorkbook, match="truncated or not a valid workbook") as info:
        check_package(cut)
    assert "re-export it from Excel" in str(info.value)
    assert str(info.value).startswith(str(cut))


def test_random_bytes_and_empty_file(tmp_path: Path):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(os.urandom(4096).replace(b"PK", b"pk"))
    with pytest.raises(UnreadableWorkbook, match="not a zip package"):
        check_package(junk)
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableWorkbook, match="the file is empty"):
        check_package(empty)
    with pytest.raises(UnreadableWorkbook, match="file not found"):
        check_package(tmp_path / "missing.xlsx")


def _ole(path: Path, stream_names: list[str]) -> Path:
    """An OLE compound-file header followed by directory entries with these names."""
    entries = b"".join(name.encode("utf-16-le").ljust(64, b"\0") + b"\0" * 64 for name in stream_names)
    path.write_bytes(safety.OLE_MAGIC + b"\0" * 504 + entries)
    return path


def test_encrypted_ooxml_is_unreadable_with_a_fix(tmp_path: Path):
    locked = _ole(tmp_path / "locked.xlsx", ["Root Entry", "EncryptionInfo", "EncryptedPackage"])
    with pytest.raises(UnreadableWorkbook, match="password-protected — remove the password in Excel"):
        check_package(locked)


def test_legacy_xls_passes_to_calamine(tmp_path: Path):
    assert check_package(_ole(tmp_path / "old.xls", ["Root Entry", "Workbook"])) is None


@pytest.mark.corpus
def test_corpus_known_bad_files(corpus_dir: Path):
    expectations = {
        "poi/poc-xmlbomb.xlsx": (UnsafeWorkbook, "DTD"),
        "poi/54764.xlsx": (UnsafeWorkbook, "DTD"),  # XXE test file
        "calamine/pass_protected.xlsx": (UnreadableWorkbook, "password"),
        "excelize/test_encryptAES.xlsx": (UnreadableWorkbook, "password"),
        "openpyxl_old/reader_tests_data_null_file.xlsx": (UnreadableWorkbook, "empty"),
        "calamine/issue252.xlsx": (UnreadableWorkbook, "damaged"),
    }
    for name, (error, words) in expectations.items():
        path = corpus_dir / name
        if not path.exists():
            continue
        with pytest.raises(error, match=words):
            check_package(path)


@pytest.mark.corpus
def test_every_corpus_file_passes_or_is_refused_clearly(corpus_dir: Path):
    """The whole corpus takes about a second: it reads directories and XML heads only."""
    refused, passed = 0, 0
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.suffix.lower() == ".csv":
            continue
        try:
            check_package(path)
            passed += 1
        except XlExpenseError as exc:
            refused += 1
            assert exc.fix, f"{path}: error without a fix: {exc}"
    assert passed > 1500  # real workbooks from Excel, POI, XlsxWriter… must not trip the limits
    assert 0 < refused < 60
