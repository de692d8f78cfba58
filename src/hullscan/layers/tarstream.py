"""A forward-only tar reader for layer streams.

Written by hand because the stdlib's tarfile spent a third of a whole scan on bookkeeping the walker
never uses (a TarInfo per member, checksums through struct, PAX records through regexes, a buffered
file object per member). This one reads only the fields a scan needs, from one buffer, and follows
tarfile's rules for everything image builders write: ustar and its prefix field, GNU long names and
links, PAX local and global records, base-256 numbers, old-style directories, sparse headers (skipped).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
CHUNK = 1 << 20
ZERO_BLOCK = bytes(BLOCK)
# A PAX record set or a GNU long name is held in memory whole: bound it (real ones are a few hundred bytes).
MAX_META = 1 << 20

# Types whose header is not followed by data (tarfile skips data only for regular and unknown types).
NO_DATA = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
GNU_META = frozenset((b"L", b"K", b"S"))


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class TarFormatError(Exception):
    """The bytes are not a valid tar archive here; `offset` is where the bad header starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class TarTruncated(TarFormatError):
    pass


@dataclass(slots=True)
class TarMember:
    name: str
    type: bytes  # the typeflag, as tarfile's constants (b"0", b"5", ...)
    size: int
    mode: int
    uid: int
    gid: int
    linkname: str
    sparse: bool = False  # GNU sparse (type S or PAX GNU.sparse.*): stored data is not the file's bytes


class TarReader:
    """Members of a tar stream, in order; `read` gives the current member's bytes until `next` moves on."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._buf = b""
        self._pos = 0
        self.offset = 0  # bytes consumed from the tar stream
        self._left = 0  # data bytes of the current member not read yet
        self._pad = 0  # padding after them
        self._globals: dict[str, bytes] = {}

    def __iter__(self) -> Iterator[TarMember]:
        while (member := self.next()) is not None:
            yield member

    # -- bytes ---------------------------------------------------------------------------------------

    def _take(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the stream)."""
        buf, pos = self._buf, self._pos
        if pos + n <= len(buf):
            self._pos = pos + n
            self.offset += n
            return buf[pos:pos + n]
        parts = [buf[pos:]]
        have = len(buf) - pos
        self._buf, self._pos = b"", 0
        while have < n:
            chunk = self._src.read(CHUNK)
            if not chunk:
                break
            need = n - have
            if len(chunk) > need:
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                have = n
            else:
                parts.append(chunk)
                have += len(chunk)
        self.offset += have
        return b"".join(parts)

    def _skip(self, n: int) -> int:
        """Pass over n bytes without copying them; the number actually skipped."""
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            self.offset += n
            return n
        done = avail
        self._buf, self._pos = b"", 0
        while done < n:
            chunk = self._src.read(CHUNK)
            if not chunk:
                break
            if done + len(chunk) > n:
                self._buf, self._pos = chunk, n - done
                done = n
            else:
                done += len(chunk)
        self.offset += done
        return done

    def read(self, n: int = -1) -> bytes:
        """The current member's next bytes (all that are left when n < 0)."""
        want = self._left if n < 0 else min(n, self._left)
        if want <= 0:
            return b""
        data = self._take(want)
        self._left -= len(data)
        if len(data) < want:
            raise TarTruncated(f"the tar archive ends inside a member after {self.offset:,} bytes", self.offset)
        return data

    # -- headers -------------------------------------------------------------------------------------

    def next(self) -> TarMember | None:
        """The next member, or None at the end of the archive (a zero block or the end of the stream)."""
        if self._left or self._pad:
            want = self._left + self._pad
            if self._skip(want) < want:
                raise TarTruncated(f"the tar archive ends inside a member after {self.offset:,} bytes",
                                   self.offset)
            self._left = self._pad = 0
        local: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        pending = False  # a PAX or long-name header was read: a member must follow
        while True:
            start = self.offset
            header = self._take(BLOCK)
            if len(header) < BLOCK:
                if header or pending:
                    raise TarTruncated(f"the tar archive ends inside a header at offset {start:,}", start)
                return None
            if header == ZERO_BLOCK:
                if pending:
                    raise TarFormatError(f"an extended header at offset {start:,} is followed by no member",
                                         start)
                return None
            _check_sum(header, start)
            typeflag = header[156:157]
            size = _number(header[124:136], start)
            if size < 0:
                raise TarFormatError(f"negative size in the header at offset {start:,}", start)
            if typeflag in (b"x", b"g", b"L", b"K"):
                data = self._meta(size, start)
                if typeflag == b"x":
                    local.update(_pax_records(data, start))
                elif typeflag == b"g":
                    self._globals.update(_pax_records(data, start))
                elif typeflag == b"L":
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link = data.split(b"\0", 1)[0]
                pending = typeflag != b"g"
                continue
            return self._member(header, typeflag, size, start, local, long_name, long_link)

    def _meta(self, size: int, start: int) -> bytes:
        if size > MAX_META:
            raise TarFormatError(f"an extended header of {size:,} bytes at offset {start:,} "
                                 f"(more than {MAX_META:,})", start)
        data = self._take(size)
        if len(data) < size or self._skip(-size % BLOCK) < -size % BLOCK:
            raise TarTruncated(f"the tar archive ends inside the extended header at offset {start:,}", start)
        return data

    def _member(self, header: bytes, typeflag: bytes, size: int, start: int, local: dict[str, bytes],
                long_name: bytes | None, long_link: bytes | None) -> TarMember:
        name = long_name if long_name is not None else header[0:100].partition(b"\0")[0]
        if long_name is None and typeflag not in GNU_META:
            prefix = header[345:500].partition(b"\0")[0]
            if prefix:
                name = prefix + b"/" + name
        link = long_link if long_link is not None else header[157:257].partition(b"\0")[0]
        mode = _number(header[100:108], start)
        uid = _number(header[108:116], start)
        gid = _number(header[116:124], start)
        sparse = typeflag == b"S"
        if sparse and header[482]:
            self._skip_sparse_extensions(start)
        pax = {**self._globals, **local} if self._globals else local
        if pax:
            name = pax.get("path", name)
            link = pax.get("linkpath", link)
            size = _pax_int(pax, "size", size)
            uid = _pax_int(pax, "uid", uid)
            gid = _pax_int(pax, "gid", gid)
            sparse = sparse or any(k.startswith("GNU.sparse.") for k in pax)
        if typeflag == b"\0" and name.endswith(b"/"):
            typeflag = b"5"  # pre-POSIX tars mark directories only by the trailing slash
        if typeflag == b"5":
            name = name.rstrip(b"/")
        has_data = typeflag not in NO_DATA
        self._left = size if has_data else 0
        self._pad = -size % BLOCK if has_data else 0
        return TarMember(name.decode("utf-8", "surrogateescape"), typeflag, size, mode, uid, gid,
                         link.decode("utf-8", "surrogateescape"), sparse)

    def _skip_sparse_extensions(self, start: int) -> None:
        while True:
            block = self._take(BLOCK)
            if len(block) < BLOCK:
                raise TarTruncated(f"the tar archive ends inside the sparse map at offset {start:,}", start)
            if not block[504]:
                return


def _number(field: bytes, start: int) -> int:
    first = field[0]
    if first == 0x80 or first == 0xFF:  # base-256 (GNU): big-endian, 0xFF marks a negative number
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if first == 0xFF else n
    digits = field.partition(b"\0")[0].strip()  # a field ends at its first NUL
    if not digits:
        return 0
    try:
        return int(digits, 8)
    except ValueError:
        raise TarFormatError(f"invalid number {field!r} in the header at offset {start:,}", start) from None


def _check_sum(header: bytes, start: int) -> None:
    stored = _number(header[148:156], start)
    # The byte sum, through Adler-32: its low half is 1 + the sum of the bytes mod 65521, exact for 256 bytes
    # (at most 65,280), and 4x faster than sum() over the header. The checksum field counts as eight spaces.
    total = (zlib.adler32(header[:256]) & 0xFFFF) + (zlib.adler32(header[256:]) & 0xFFFF) - 2
    unsigned = total - sum(header[148:156]) + 256
    if stored == unsigned:
        return
    # Some old writers summed signed chars: accept that too, as tarfile does.
    high = sum(1 for b in header[:148] + header[156:] if b > 127)
    if stored != unsigned - 256 * high:
        raise TarFormatError(f"bad tar header at offset {start:,} (checksum mismatch)", start)


def _pax_records(data: bytes, start: int) -> dict[str, bytes]:
    """`<length> <key>=<value>\\n` records; the length counts the whole record."""
    out: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end and data[pos] != 0:
        space = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[space + 1:pos + length] if length > space - pos + 2 else b""
        key, eq, value = record[:-1].partition(b"=")
        if pos + length > end or not eq or not record.endswith(b"\n"):
            raise TarFormatError(f"invalid PAX record in the extended header at offset {start:,}", start)
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


def _pax_int(pax: dict[str, bytes], key: str, default: int) -> int:
    value = pax.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return 0  # as tarfile: a malformed number is taken as 0, not fatal
