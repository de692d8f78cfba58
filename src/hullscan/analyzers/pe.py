"""Version resources of Windows PE files (.NET assemblies): the VS_VERSIONINFO block, read with bounds checks.

Layout (PE/COFF spec, "The .rsrc Section"; VS_VERSIONINFO in the Windows SDK docs): the optional header's
data directory 2 locates the resource tree; type 16 (RT_VERSION) -> name -> language leads to a data entry
whose bytes are a tree of blocks ``{wLength, wValueLength, wType, szKey (UTF-16, NUL), pad to 4, Value, pad,
children}``. The StringFileInfo/<lang-codepage> table holds ``ProductName``, ``ProductVersion``, ``FileVersion``,
``InternalName``, ``OriginalFilename``, ``CompanyName``...
"""

from __future__ import annotations

import struct
from typing import IO

from hullscan.analyzers.base import read_within

RT_VERSION = 16
_MAX_RESOURCE = 1 << 20
_MAX_ENTRIES = 4096


class PEError(Exception):
    """The file starts like a PE image but its headers do not hold together."""


class PEImage:
    def __init__(self, fp: IO[bytes]) -> None:
        fp.seek(0, 2)
        self.size = fp.tell()
        self.fp = fp
        if self.read(0, 2) != b"MZ":
            raise PEError("no MZ header")
        (pe_offset,) = struct.unpack("<I", self.read(0x3C, 4))
        if self.read(pe_offset, 4) != b"PE\0\0":
            raise PEError("no PE signature")
        _machine, sections, _ts, _sym, _nsym, opt_size, _chars = struct.unpack("<HHIIIHH", self.read(pe_offset + 4, 20))
        opt = pe_offset + 24
        (magic,) = struct.unpack("<H", self.read(opt, 2))
        if magic not in (0x10B, 0x20B):
            raise PEError(f"unknown optional header magic {magic:#x}")
        dirs = opt + (96 if magic == 0x10B else 112)
        (count,) = struct.unpack("<I", self.read(dirs - 4, 4))
        self.directories = [struct.unpack("<II", self.read(dirs + 8 * i, 8)) for i in range(min(count, 16))]
        self.sections: list[tuple[int, int, int, int]] = []  # (rva, virtual size, raw offset, raw size)
        table = opt + opt_size
        for i in range(min(sections, 96)):
            _name, vsize, rva, raw_size, raw_ptr = struct.unpack("<8sIIII", self.read(table + 40 * i, 24))
            self.sections.append((rva, max(vsize, raw_size), raw_ptr, raw_size))

    def read(self, offset: int, size: int) -> bytes:
        try:
            return read_within(self.fp, self.size, offset, size)
        except ValueError as exc:
            raise PEError(str(exc)) from None

    def offset(self, rva: int) -> int:
        for start, vsize, raw, raw_size in self.sections:
            if start <= rva < start + vsize and rva - start < raw_size:
                return raw + rva - start
        raise PEError(f"RVA {rva:#x} is in no section")

    @property
    def is_dotnet(self) -> bool:
        """A CLI (COM descriptor, directory 14) header: a .NET assembly, not a native DLL."""
        return len(self.directories) > 14 and self.directories[14][0] != 0

    def version_resource(self) -> bytes | None:
        if len(self.directories) < 3 or not self.directories[2][0]:
            return None
        base = self.offset(self.directories[2][0])
        node = self._child(base, base, RT_VERSION)
        for _level in range(2):  # name, then language: take the first
            if node is None or not node[1]:
                return None
            node = self._child(base, node[0], None)
        if node is None or node[1]:
            return None
        rva, size = struct.unpack("<II", self.read(node[0], 8))
        if size > _MAX_RESOURCE:
            raise PEError("version resource too large")
        return self.read(self.offset(rva), size)

    def _child(self, base: int, directory: int, wanted: int | None) -> tuple[int, bool] | None:
        """(offset, is a directory) of the entry with id `wanted` (or the first entry) in a resource directory."""
        named, ids = struct.unpack("<HH", self.read(directory + 12, 4))
        for i in range(min(named + ids, _MAX_ENTRIES)):
            ident, target = struct.unpack("<II", self.read(directory + 16 + 8 * i, 8))
            if wanted is None or (not ident & 0x80000000 and ident == wanted):
                return base + (target & 0x7FFFFFFF), bool(target & 0x80000000)
        return None


def _blocks(data: bytes, start: int, end: int) -> list[tuple[str, bytes, int, int]]:
    """The blocks between start and end: (key, value bytes, children start, block end)."""
    out: list[tuple[str, bytes, int, int]] = []
    pos = start
    while pos + 6 <= end and len(out) < _MAX_ENTRIES:
        length, value_length, kind = struct.unpack_from("<HHH", data, pos)
        if length < 6 or pos + length > end:
            break
        key_end = pos + 6
        while key_end + 1 < pos + length and data[key_end:key_end + 2] != b"\0\0":
            key_end += 2
        key = data[pos + 6:key_end].decode("utf-16-le", "replace")
        value_start = (key_end + 2 + 3) & ~3
        value_bytes = value_length * 2 if kind == 1 else value_length  # text values count WCHARs
        value = data[value_start:min(value_start + value_bytes, pos + length)]
        children = (value_start + value_bytes + 3) & ~3
        out.append((key, value, children, pos + length))
        pos = (pos + length + 3) & ~3
    return out


def version_strings(resource: bytes) -> dict[str, str]:
    """The StringFileInfo strings of a VS_VERSIONINFO resource (the first string table)."""
    top = _blocks(resource, 0, len(resource))
    if not top or top[0][0] != "VS_VERSION_INFO":
        return {}
    _key, _value, children, end = top[0]
    for key, _v, table_start, table_end in _blocks(resource, children, end):
        if key != "StringFileInfo":
            continue
        for _lang, _v2, strings_start, strings_end in _blocks(resource, table_start, table_end)[:1]:
            found = {}
            for name, value, _c, _e in _blocks(resource, strings_start, strings_end):
                found[name] = value.decode("utf-16-le", "replace").split("\0", 1)[0].strip()
            return found
    return {}
