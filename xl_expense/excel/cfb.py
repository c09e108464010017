"""Write a small Compound File Binary ([MS-CFB], "OLE2") file from a dict of streams.

``vbaProject.bin`` is a compound file; ``olefile`` and ``oletools`` only read them, so the
add-in builder writes its own. This writer covers what a VBA project needs and nothing more:
version 3 (512-byte sectors), streams under 4096 bytes in the mini stream, storages given by
``/`` in the stream paths, at most 109 FAT sectors (≈ 6.8 MB; a VBA project is ~100 KB), no
DIFAT sectors, no timestamps or CLSIDs. Output is deterministic.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
_HEADER_DIFAT = 109
_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[_Entry] = field(default_factory=list)
    index: int = 0
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    black: bool = True
    start: int = ENDOFCHAIN
    size: int = 0


def _sort_key(name: str) -> tuple[int, str]:
    """CFB orders siblings by name length first, then by upper-cased name (MS-CFB 2.6.4)."""
    return len(name), name.upper()


def _tree(entries: list[_Entry], depth: int, deepest: int) -> int:
    """Link sorted siblings into a balanced tree; returns the index of its root.

    Halving keeps every missing child at depth ``deepest`` or ``deepest + 1``; colouring the
    nodes on the deepest level red then gives every path the same number of black nodes, so
    the tree is a valid red-black tree as the format requires.
    """
    if not entries:
        return NOSTREAM
    mid = (len(entries) - 1) // 2
    node = entries[mid]
    node.black = not (depth == deepest and depth > 0)
    node.left = _tree(entries[:mid], depth + 1, deepest)
    node.right = _tree(entries[mid + 1:], depth + 1, deepest)
    return node.index


def _depth(count: int) -> int:
    """Depth of the deepest node of the halving tree over ``count`` nodes."""
    return count.bit_length() - 1


def _entries(streams: dict[str, bytes]) -> list[_Entry]:
    root = _Entry("Root Entry", 5)
    flat = [root]
    storages = {"": root}
    for path in sorted(streams):
        parts = path.split("/")
        parent = root
        for depth in range(1, len(parts)):
            key = "/".join(parts[:depth])
            if key not in storages:
                storages[key] = _Entry(parts[depth - 1], 1)
                parent.children.append(storages[key])
                flat.append(storages[key])
            parent = storages[key]
        entry = _Entry(parts[-1], 2, streams[path])
        if len(entry.name) > 31:
            raise ValueError(f"compound file names are at most 31 characters: {entry.name}")
        parent.children.append(entry)
        flat.append(entry)
    for i, entry in enumerate(flat):
        entry.index = i
    for entry in flat:
        siblings = sorted(entry.children, key=lambda e: _sort_key(e.name))
        entry.child = _tree(siblings, 0, _depth(len(siblings)))
    return flat


def _directory_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\x00\x00"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name, len(name), entry.kind, 1 if entry.black else 0, entry.left, entry.right, entry.child,
        b"\x00" * 16, 0, 0, 0, entry.start, entry.size,
    )


def _chain(fat: list[int], first: int, count: int) -> None:
    for i in range(first, first + count - 1):
        fat[i] = i + 1
    fat[first + count - 1] = ENDOFCHAIN


def _sectors(size: int, unit: int) -> int:
    return -(-size // unit)


def write_compound_file(streams: dict[str, bytes]) -> bytes:
    """Bytes of a compound file holding ``streams`` (``{"VBA/dir": b"...", "PROJECT": b"..."}``)."""
    entries = _entries(streams)
    # Small streams go into the mini stream, each in whole 64-byte mini sectors.
    mini_stream = bytearray()
    mini_fat: list[int] = []
    for entry in entries:
        if entry.kind == 2:
            entry.size = len(entry.data)
            if 0 < entry.size < MINI_CUTOFF:
                entry.start = len(mini_fat)
                count = _sectors(entry.size, MINI_SECTOR)
                mini_fat += [0] * count
                _chain(mini_fat, entry.start, count)
                mini_stream += entry.data.ljust(count * MINI_SECTOR, b"\x00")
    # Regular sectors, in order: directory, mini FAT, mini stream, big streams; then the FAT.
    blocks: list[tuple[str, bytes]] = []
    dir_bytes_len = _sectors(len(entries), SECTOR // 128) * SECTOR
    blocks.append(("dir", b"\x00" * dir_bytes_len))  # filled in once start sectors are known
    minifat_bytes = b"".join(struct.pack("<I", v) for v in mini_fat)
    minifat_bytes += struct.pack("<I", FREESECT) * (_sectors(len(minifat_bytes), SECTOR) * 128 - len(mini_fat))
    blocks.append(("minifat", minifat_bytes))
    blocks.append(("ministream", bytes(mini_stream)))
    for entry in entries:
        if entry.kind == 2 and entry.size >= MINI_CUTOFF:
            blocks.append((f"stream:{entry.index}", entry.data))
    data_sectors = sum(_sectors(len(b), SECTOR) for _, b in blocks)
    fat_sectors = 1
    while fat_sectors * (SECTOR // 4) < data_sectors + fat_sectors:
        fat_sectors += 1
    if fat_sectors > _HEADER_DIFAT:
        raise ValueError("stream set too large for this writer (needs DIFAT sectors)")
    fat = [FREESECT] * (fat_sectors * SECTOR // 4)
    for i in range(fat_sectors):
        fat[i] = FATSECT
    starts: dict[str, int] = {}
    next_sector = fat_sectors
    for name, block in blocks:
        count = _sectors(len(block), SECTOR)
        if count:
            starts[name] = next_sector
            _chain(fat, next_sector, count)
            next_sector += count
    root = entries[0]
    root.start = starts.get("ministream", ENDOFCHAIN)
    root.size = len(mini_stream)
    for entry in entries:
        if entry.kind == 2 and entry.size >= MINI_CUTOFF:
            entry.start = starts[f"stream:{entry.index}"]
    directory = b"".join(_directory_entry(e) for e in entries)
    empty = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"", 0, 0, 0, 0, 0)
    directory += empty * ((dir_bytes_len - len(directory)) // 128)
    blocks[0] = ("dir", directory)

    difat = list(range(fat_sectors)) + [FREESECT] * (_HEADER_DIFAT - fat_sectors)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        _SIGNATURE, b"\x00" * 16, 0x003E, 0x0003, 0xFFFE, 9, 6, b"\x00" * 6,
        0,  # directory sectors: must be 0 in version 3
        fat_sectors, starts["dir"], 0, MINI_CUTOFF,
        starts.get("minifat", ENDOFCHAIN) if mini_fat else ENDOFCHAIN,
        _sectors(len(minifat_bytes), SECTOR) if mini_fat else 0,
        ENDOFCHAIN, 0,
    ) + struct.pack(f"<{_HEADER_DIFAT}I", *difat)
    assert len(header) == SECTOR
    out = bytearray(header)
    out += b"".join(struct.pack("<I", v) for v in fat)
    for _, block in blocks:
        out += block.ljust(_sectors(len(block), SECTOR) * SECTOR, b"\x00")
    return bytes(out)
