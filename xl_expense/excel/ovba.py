"""Write a VBA project (the streams of ``xl/vbaProject.bin``) from VBA source text, per [MS-OVBA].

Excel keeps macros in a compound file whose ``VBA`` storage holds one stream per module
(source compressed with the MS-OVBA run-length/LZ77 scheme), a ``dir`` stream describing the
project (code page, references, modules) and a ``_VBA_PROJECT`` stream that may carry
compiled p-code. We write **source only**: ``_VBA_PROJECT`` has version ``0xFFFF`` and no
performance cache, every module's text offset is 0, so Excel, which cannot use p-code it did
not compile itself, compiles the modules from source the first time the add-in loads. (The
xlwings quickstart add-ins ship in that same source-only form.)

What this writer does not do, on purpose: forms (``.frm``), digital signatures, password
protection, p-code. The source must be ASCII (checked): it is stored in code page 1252, which
every Excel decodes the same way; Chinese text belongs in ``customUI.xml`` or in Python.

Everything here is deterministic: the same modules give the same bytes, so a rebuilt add-in
shows no spurious diff.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

CODE_PAGE = 1252
LCID_EN_US = 0x0409

#: References every Excel project carries besides the implicit VBA and Excel libraries.
#: Office is needed for ``IRibbonControl`` in the ribbon callbacks' signatures. Excel resolves
#: a reference by GUID and version through the registry (on macOS by GUID); the path is a hint.
REFERENCES: tuple[tuple[str, str], ...] = (
    ("stdole", r"*\G{00020430-0000-0000-C000-000000000046}#2.0#0#C:\Windows\System32\stdole2.tlb#OLE Automation"),
    ("Office", (r"*\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#C:\Program Files\Common Files\Microsoft Shared"
               r"\OFFICE16\MSO.DLL#Microsoft Office 16.0 Object Library")),
)

# Document modules: the codename Excel binds to the workbook or a sheet, and its base class.
WORKBOOK_BASE = "0{00020819-0000-0000-C000-000000000046}"
WORKSHEET_BASE = "0{00020820-0000-0000-C000-000000000046}"
CLASS_BASE = "0{FCFB3D2A-A0FA-1068-A738-08002B3371B5}"


@dataclass(frozen=True)
class VbaModule:
    """One module of the project: its name, kind and full stored source (``Attribute`` lines first)."""

    name: str
    kind: str  # "module" (standard .bas), "class" (.cls) or "document" (ThisWorkbook, a sheet)
    source: str

    def __post_init__(self) -> None:
        if self.kind not in ("module", "class", "document"):
            raise ValueError(f"{self.name}: unknown module kind {self.kind!r}")
        if not self.name.isascii() or not self.name.replace("_", "a").isalnum():
            raise ValueError(f"{self.name!r} is not a VBA identifier")
        bad = sorted({c for c in self.source if not c.isascii()})
        if bad:
            raise ValueError(f"VBA module {self.name} has non-ASCII characters {bad[:5]}: "
                             "keep VBA source ASCII (use ChrW or put the text in customUI.xml / Python)")

    def stored_source(self) -> bytes:
        """The text as VBA stores it: CRLF line ends, code page 1252, a final line end."""
        text = self.source.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"
        return text.replace("\n", "\r\n").encode(f"cp{CODE_PAGE}")


def document_module(name: str, base: str = WORKSHEET_BASE) -> VbaModule:
    """The (empty) code-behind module Excel expects for ThisWorkbook and for each sheet's codename."""
    attributes = [f'Attribute VB_Name = "{name}"', f'Attribute VB_Base = "{base}"',
                  "Attribute VB_GlobalNameSpace = False", "Attribute VB_Creatable = False",
                  "Attribute VB_PredeclaredId = True", "Attribute VB_Exposed = True",
                  "Attribute VB_TemplateDerived = False", "Attribute VB_Customizable = True"]
    return VbaModule(name, "document", "\n".join(attributes))


def class_module_from_export(text: str) -> VbaModule:
    """A ``.cls`` file as the VBA editor exports it → the module as the project stores it.

    The export starts with a ``VERSION 1.0 CLASS`` / ``BEGIN`` … ``END`` header that the editor
    strips on import; the stored source gains the ``VB_Base`` of a class and two attributes.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("VERSION"):
        end = lines.index("END")
        lines = lines[end + 1:]
    if not lines or not lines[0].startswith("Attribute VB_Name"):
        raise ValueError("a .cls export must start with Attribute VB_Name after its header")
    name = lines[0].split("=", 1)[1].strip().strip('"')
    out = [lines[0], f'Attribute VB_Base = "{CLASS_BASE}"']
    rest = lines[1:]
    for line in rest:
        out.append(line)
        if line.startswith("Attribute VB_Exposed"):
            out += ["Attribute VB_TemplateDerived = False", "Attribute VB_Customizable = False"]
    return VbaModule(name, "class", "\n".join(out))


# --- MS-OVBA 2.4.1: compression -----------------------------------------------------------

_CHUNK = 4096


def _copy_token_split(offset_in_chunk: int) -> int:
    """Bits of a copy token used for the offset: grows with the position in the chunk (min 4)."""
    bits = max((offset_in_chunk - 1).bit_length(), 4)
    return bits


def _compress_chunk(data: bytes) -> bytes:
    """One ≤4096-byte chunk: flag bytes, each followed by up to 8 literal or copy tokens."""
    out = bytearray()
    pos = 0
    heads: dict[bytes, list[int]] = {}
    while pos < len(data):
        flag_at = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= len(data):
                break
            bits = _copy_token_split(pos)
            max_len = (0xFFFF >> bits) + 3
            best_len, best_off = 0, 0
            key = data[pos:pos + 3]
            if len(key) == 3:
                limit = min(max_len, len(data) - pos)
                # The 64 nearest candidates are plenty for source text and keep this linear.
                for start in reversed(heads.get(key, ())[-64:]):
                    length = 3
                    while length < limit and data[start + length] == data[pos + length]:
                        length += 1
                    if length > best_len:
                        best_len, best_off = length, pos - start
                        if length == limit:
                            break
            if best_len >= 3:
                token = ((best_off - 1) << (16 - bits)) | (best_len - 3)
                out += struct.pack("<H", token)
                flags |= 1 << bit
                step = best_len
            else:
                out.append(data[pos])
                step = 1
            for i in range(pos, pos + step):
                heads.setdefault(data[i:i + 3], []).append(i)
            pos += step
        out[flag_at] = flags
    return bytes(out)


def compress(data: bytes) -> bytes:
    """MS-OVBA CompressedContainer: signature byte 0x01, then chunks of ≤4096 decompressed bytes."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), _CHUNK):
        raw = data[start:start + _CHUNK]
        packed = _compress_chunk(raw)
        if len(packed) > _CHUNK:
            # Incompressible: a raw chunk, allowed only for a full 4096 bytes (VBA text never gets here).
            if len(raw) < _CHUNK:
                raise ValueError("cannot store an incompressible final chunk without padding")
            out += struct.pack("<H", 0x3000 | (_CHUNK - 1)) + raw
        else:
            # Header: size-3 in 12 bits, signature 0b011, flag 1 = compressed.
            out += struct.pack("<H", 0xB000 | (len(packed) + 2 - 3)) + packed
    return bytes(out)


# --- MS-OVBA 2.4.3: the "encryption" of the PROJECT stream's CMG/DPB/GC values ----------------

def encrypt_data(project_id: str, data: bytes, seed: int) -> str:
    """Obfuscate ``data`` the way VBA stores protection state, password and visibility (hex text)."""
    version = 2
    proj_key = sum(project_id.encode("ascii")) & 0xFF
    out = bytearray([seed, seed ^ version, seed ^ proj_key])
    unencrypted1, encrypted1, encrypted2 = proj_key, seed ^ proj_key, seed ^ version
    payload = bytes([0] * ((seed & 6) // 2)) + struct.pack("<I", len(data)) + data
    for byte in payload:
        enc = byte ^ ((encrypted2 + unencrypted1) & 0xFF)
        out.append(enc)
        encrypted2, encrypted1, unencrypted1 = encrypted1, enc, byte
    return out.hex().upper()


def decrypt_data(project_id: str, text: str) -> bytes:
    """Inverse of :func:`encrypt_data`; checks the project key so a wrong ID is noticed."""
    raw = bytes.fromhex(text)
    seed, version_enc, key_enc = raw[0], raw[1], raw[2]
    if seed ^ version_enc != 2:
        raise ValueError("not a VBA-encrypted value (version is not 2)")
    proj_key = seed ^ key_enc
    if proj_key != sum(project_id.encode("ascii")) & 0xFF:
        raise ValueError("the value was encrypted for another project ID")
    unencrypted1, encrypted1, encrypted2 = proj_key, key_enc, version_enc
    plain = bytearray()
    for enc in raw[3:]:
        byte = enc ^ ((encrypted2 + unencrypted1) & 0xFF)
        plain.append(byte)
        encrypted2, encrypted1, unencrypted1 = encrypted1, enc, byte
    ignored = (seed & 6) // 2
    length = struct.unpack("<I", plain[ignored:ignored + 4])[0]
    return bytes(plain[ignored + 4:ignored + 4 + length])


# --- MS-OVBA 2.3.4.2: the dir stream ----------------------------------------------------------

def _rec(record_id: int, payload: bytes) -> bytes:
    return struct.pack("<HI", record_id, len(payload)) + payload


def _mbcs(text: str) -> bytes:
    return text.encode(f"cp{CODE_PAGE}")


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _dir_stream(project_name: str, modules: Iterable[VbaModule]) -> bytes:
    modules = list(modules)
    out = bytearray()
    out += _rec(0x0001, struct.pack("<I", 1))  # SysKind: 32-bit Windows, as Excel writes on any platform
    out += _rec(0x0002, struct.pack("<I", LCID_EN_US))
    out += _rec(0x0014, struct.pack("<I", LCID_EN_US))
    out += _rec(0x0003, struct.pack("<H", CODE_PAGE))
    out += _rec(0x0004, _mbcs(project_name))
    out += _rec(0x0005, b"") + _rec(0x0040, b"")  # doc string, and its Unicode twin
    out += _rec(0x0006, b"") + _rec(0x003D, b"")  # help file path, twice
    out += _rec(0x0007, struct.pack("<I", 0))  # help context
    out += _rec(0x0008, struct.pack("<I", 0))  # lib flags
    out += struct.pack("<HIIH", 0x0009, 4, 1, 0)  # version: Reserved=4 is a size that lies, per spec
    out += _rec(0x000C, b"") + _rec(0x003C, b"")  # conditional-compilation constants
    for name, libid in REFERENCES:
        out += _rec(0x0016, _mbcs(name)) + _rec(0x003E, _utf16(name))
        encoded = _mbcs(libid)
        out += _rec(0x000D, struct.pack("<I", len(encoded)) + encoded + struct.pack("<IH", 0, 0))
    out += _rec(0x000F, struct.pack("<H", len(modules)))
    out += _rec(0x0013, struct.pack("<H", 0xFFFF))  # project cookie: 0xFFFF on write
    for module in modules:
        out += _rec(0x0019, _mbcs(module.name)) + _rec(0x0047, _utf16(module.name))
        out += _rec(0x001A, _mbcs(module.name)) + _rec(0x0032, _utf16(module.name))  # stream name
        out += _rec(0x001C, b"") + _rec(0x0048, b"")  # module doc string
        out += _rec(0x0031, struct.pack("<I", 0))  # text offset 0: no p-code before the source
        out += _rec(0x001E, struct.pack("<I", 0))  # help context
        out += _rec(0x002C, struct.pack("<H", 0xFFFF))  # module cookie
        out += struct.pack("<HI", 0x0021 if module.kind == "module" else 0x0022, 0)
        out += struct.pack("<HI", 0x002B, 0)  # module terminator
    out += struct.pack("<HI", 0x0010, 0)  # end of dir
    return bytes(out)


# --- MS-OVBA 2.3.1: the PROJECT and PROJECTwm streams ----------------------------------------

def project_id(project_name: str, modules: Iterable[VbaModule]) -> str:
    """A stable GUID for the project: derived from its name and module names, not random."""
    names = ",".join(m.name for m in modules)
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"xl-expense:{project_name}:{names}")).upper() + "}"


_NOT_PROTECTED = struct.pack("<I", 0)  # CMG: no user, host or VBE protection
_NO_PASSWORD = b"\x00"  # DPB: a single zero byte means "no password"
_VISIBLE = b"\xff"  # GC: the project shows in the VBA editor


def _project_stream(project_name: str, modules: list[VbaModule], pid: str) -> bytes:
    kinds = {"document": "Document={}/&H00000000", "module": "Module={}", "class": "Class={}"}
    lines = [f'ID="{pid}"'] + [kinds[m.kind].format(m.name) for m in modules]
    seed = sum(pid.encode("ascii")) & 0xFF  # any byte works; derived so that builds are reproducible
    lines += [f'Name="{project_name}"', 'HelpContextID="0"', 'VersionCompatible32="393222000"',
              f'CMG="{encrypt_data(pid, _NOT_PROTECTED, seed)}"',
              f'DPB="{encrypt_data(pid, _NO_PASSWORD, seed ^ 0x5A)}"',
              f'GC="{encrypt_data(pid, _VISIBLE, seed ^ 0xA5)}"',
              "", "[Host Extender Info]", "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
              "", "[Workspace]"]
    lines += [f"{m.name}=0, 0, 0, 0, C" for m in modules]
    return ("\r\n".join(lines) + "\r\n").encode(f"cp{CODE_PAGE}")


def _project_wm_stream(modules: list[VbaModule]) -> bytes:
    out = bytearray()
    for module in modules:
        out += _mbcs(module.name) + b"\x00" + _utf16(module.name) + b"\x00\x00"
    return bytes(out + b"\x00\x00")


def vba_project_streams(project_name: str, modules: Iterable[VbaModule]) -> dict[str, bytes]:
    """Every stream of a source-only VBA project, keyed by its path in the compound file."""
    modules = list(modules)
    if not project_name.replace("_", "a").isalnum() or not project_name.isascii():
        raise ValueError(f"{project_name!r} is not a VBA project name")
    names = [m.name.lower() for m in modules]
    if len(set(names)) != len(names):
        raise ValueError("module names must be unique (VBA compares them case-insensitively)")
    pid = project_id(project_name, modules)
    streams = {
        "PROJECT": _project_stream(project_name, modules, pid),
        "PROJECTwm": _project_wm_stream(modules),
        # Reserved1 0x61CC, Version 0xFFFF (= "recompile from source"), Reserved2/3, no cache.
        "VBA/_VBA_PROJECT": bytes.fromhex("CC61FFFF000100"),
        "VBA/dir": compress(_dir_stream(project_name, modules)),
    }
    for module in modules:
        streams[f"VBA/{module.name}"] = compress(module.stored_source())
    return streams
