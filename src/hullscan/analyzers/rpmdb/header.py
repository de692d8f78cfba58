"""The rpm header blob, as every rpm database stores it.

Layout (all integers big-endian):

    il (u32)  number of index entries
    dl (u32)  length of the data store
    il x 16-byte entries: tag (u32), type (u32), offset (u32, into the data store), count (u32)
    dl bytes of data store

A header read from a package file is preceded by an 8-byte intro (magic 8e ad e8 01 + 4 reserved);
that is accepted and skipped. Region tags (61-63) describe signed sub-ranges and are ignored; when a
tag occurs twice the later entry wins, as rpm's own import does for entries appended after the region.
Entries are validated lazily, when a tag is read: a bad entry reads as absent.
"""

from __future__ import annotations

import struct

# Limits from rpm's header.c (hdrchkTags / HEADER_DATA_MAX).
MAX_INDEX_ENTRIES = 0xFFFF
MAX_DATA_LENGTH = 256 * 1024 * 1024

HEADER_MAGIC = b"\x8e\xad\xe8\x01"

# Tag types.
T_NULL, T_CHAR, T_INT8, T_INT16, T_INT32, T_INT64 = 0, 1, 2, 3, 4, 5
T_STRING, T_BIN, T_STRING_ARRAY, T_I18NSTRING = 6, 7, 8, 9
_INT_SIZES = {T_CHAR: 1, T_INT8: 1, T_INT16: 2, T_INT32: 4, T_INT64: 8}
_INT_FORMATS = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}

# Tags hullscan reads.
TAG_SHA1HEADER = 269
TAG_SHA256HEADER = 273
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_BUILDTIME = 1006
TAG_INSTALLTIME = 1008
TAG_SIZE = 1009
TAG_DISTRIBUTION = 1010
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_PACKAGER = 1015
TAG_URL = 1020
TAG_OS = 1021
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_LONGSIZE = 5009
TAG_MODULARITYLABEL = 5096

_REGION_TAGS = frozenset({61, 62, 63})
_INDEX = struct.Struct(">IIII")


class HeaderError(ValueError):
    """The blob is not a usable rpm header."""


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Old packages carry Latin-1 vendor and licence strings.
        return raw.decode("latin-1")


class Header:
    """A parsed index over one header blob; values are decoded on demand."""

    __slots__ = ("_blob", "_base", "_dl", "_entries")

    def __init__(self, blob: bytes) -> None:
        start = 8 if blob[:4] == HEADER_MAGIC else 0
        if len(blob) < start + 8:
            raise HeaderError(f"header blob too short ({len(blob)} bytes)")
        il, dl = struct.unpack_from(">II", blob, start)
        if il == 0:
            raise HeaderError("header has no index entries")
        if il > MAX_INDEX_ENTRIES:
            raise HeaderError(f"header claims {il} index entries (limit {MAX_INDEX_ENTRIES})")
        if dl > MAX_DATA_LENGTH:
            raise HeaderError(f"header claims {dl} bytes of data (limit {MAX_DATA_LENGTH})")
        index_start = start + 8
        base = index_start + 16 * il
        if len(blob) < base + dl:
            raise HeaderError(
                f"header truncated: {il} entries and {dl} data bytes need {base + dl} bytes, blob has {len(blob)}"
            )
        entries: dict[int, tuple[int, int, int]] = {}
        for tag, typ, offset, count in _INDEX.iter_unpack(blob[index_start:base]):
            if tag in _REGION_TAGS:
                continue
            entries[tag] = (typ, offset, count)
        self._blob = blob
        self._base = base
        self._dl = dl
        self._entries = entries

    def __contains__(self, tag: int) -> bool:
        return tag in self._entries

    def strings(self, tag: int) -> list[str]:
        """All strings of a STRING, STRING_ARRAY or I18NSTRING entry; [] when absent or malformed."""
        entry = self._entries.get(tag)
        if entry is None:
            return []
        typ, offset, count = entry
        if typ not in (T_STRING, T_STRING_ARRAY, T_I18NSTRING) or count == 0:
            return []
        if typ == T_STRING:
            count = 1
        if offset >= self._dl or count > self._dl - offset:
            return []  # each string needs at least its terminating NUL
        end = self._base + self._dl
        pos = self._base + offset
        out: list[str] = []
        for _ in range(count):
            nul = self._blob.find(b"\0", pos, end)
            if nul < 0:
                return []  # unterminated: the entry is malformed
            out.append(_decode(self._blob[pos:nul]))
            pos = nul + 1
        return out

    def string(self, tag: int) -> str | None:
        """The (first) string value of a tag, or None when absent or malformed."""
        entry = self._entries.get(tag)
        if entry is None:
            return None
        typ, offset, count = entry
        if typ not in (T_STRING, T_STRING_ARRAY, T_I18NSTRING) or count == 0 or offset >= self._dl:
            return None
        pos = self._base + offset
        nul = self._blob.find(b"\0", pos, self._base + self._dl)
        if nul < 0:
            return None
        return _decode(self._blob[pos:nul])

    def integers(self, tag: int) -> list[int]:
        """All values of an integer array entry; [] when absent or malformed."""
        entry = self._entries.get(tag)
        if entry is None:
            return []
        typ, offset, count = entry
        width = _INT_SIZES.get(typ)
        if width is None or count == 0 or offset + width * count > self._dl:
            return []
        fmt = _INT_FORMATS[width]
        start = self._base + offset
        return [v for (v,) in struct.iter_unpack(fmt, self._blob[start : start + width * count])]

    def integer(self, tag: int) -> int | None:
        """The first value of an integer entry, or None when absent or malformed."""
        entry = self._entries.get(tag)
        if entry is None:
            return None
        typ, offset, count = entry
        width = _INT_SIZES.get(typ)
        if width is None or count == 0 or offset + width > self._dl:
            return None
        value: int = struct.unpack_from(_INT_FORMATS[width], self._blob, self._base + offset)[0]
        return value
