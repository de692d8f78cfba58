"""Berkeley DB hash databases (the `Packages` file of rpm < 4.16), read without libdb.

Page 0 is the hash metadata page; its magic (0x061561) tells the byte order of every integer in the
file. Records live on bucket pages, found through the metadata's `spares` table and chained by
`next_pgno`; each page has a 26-byte header, then an array of 16-bit item offsets, with key and data
items alternating. A data item is either on the page (H_KEYDATA) or a reference (H_OFFPAGE) to a chain
of overflow pages, which is where rpm headers almost always are. Keys are 4-byte record numbers
(record 0 is rpm's instance counter, not a package).

Every page is visited at most once, so corrupt chains (cycles, shared pages) cannot loop or multiply
the work: the total effort is bounded by the file size.
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Iterator
from typing import IO

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.rpmdb import Problems, read_at
from hullscan.analyzers.rpmdb.header import MAX_DATA_LENGTH

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162

P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13

H_KEYDATA = 1
H_DUPLICATE = 2
H_OFFPAGE = 3
H_OFFDUP = 4

PAGE_HEADER_SIZE = 26
META_SIZE = 512
_PAGE_SIZES = frozenset(512 << i for i in range(8))  # 512 .. 65536
# The largest blob accepted: a header (index + data) plus generous slack.
MAX_BLOB = MAX_DATA_LENGTH + 16 * 0xFFFF + 16


def is_bdb(prefix: bytes) -> bool:
    if len(prefix) < 16:
        return False
    magics = struct.unpack_from("<I", prefix, 12) + struct.unpack_from(">I", prefix, 12)
    return HASH_MAGIC in magics or BTREE_MAGIC in magics  # btree only to refuse it clearly


class _HashDb:
    def __init__(self, content: IO[bytes], size: int, problems: Problems) -> None:
        self.content = content
        self.size = size
        self.problems = problems
        meta = read_at(content, 0, META_SIZE)
        if len(meta) < META_SIZE:
            raise AnalyzerFailure(f"Berkeley DB: file is {len(meta)} bytes, too short for a metadata page")
        (le_magic,) = struct.unpack_from("<I", meta, 12)
        (be_magic,) = struct.unpack_from(">I", meta, 12)
        if le_magic == HASH_MAGIC:
            self.order = "<"
        elif be_magic == HASH_MAGIC:
            self.order = ">"
        elif BTREE_MAGIC in (le_magic, be_magic):
            raise AnalyzerFailure("Berkeley DB btree database: an rpm Packages database is a hash")
        else:
            raise AnalyzerFailure("not a Berkeley DB hash database (bad magic number)")
        o = self.order
        version, pagesize = struct.unpack_from(o + "II", meta, 16)
        if version not in (8, 9, 10):
            raise AnalyzerFailure(f"Berkeley DB: unsupported hash version {version}")
        if pagesize not in _PAGE_SIZES:
            raise AnalyzerFailure(f"Berkeley DB: invalid page size {pagesize}")
        if meta[24] != 0:
            raise AnalyzerFailure("Berkeley DB: the database is encrypted")
        if meta[25] != P_HASHMETA:
            raise AnalyzerFailure(f"Berkeley DB: page 0 has type {meta[25]}, not hash metadata")
        self.pagesize = pagesize
        (last_pgno,) = struct.unpack_from(o + "I", meta, 32)
        self.max_bucket, _high_mask, _low_mask = struct.unpack_from(o + "III", meta, 72)
        self.spares: tuple[int, ...] = struct.unpack_from(o + "32I", meta, 96)
        whole_pages = size // pagesize
        if whole_pages < 2:
            raise AnalyzerFailure(f"Berkeley DB: file holds {whole_pages} whole page(s), no data")
        if last_pgno >= whole_pages:
            problems.add(
                f"Berkeley DB truncated: last page is {last_pgno} but the file holds "
                f"{whole_pages} pages of {pagesize} bytes"
            )
            last_pgno = whole_pages - 1
        self.last_pgno = last_pgno
        if self.max_bucket > last_pgno:
            raise AnalyzerFailure(
                f"Berkeley DB: {self.max_bucket + 1} hash buckets cannot fit in {last_pgno + 1} pages"
            )
        self.bucket_pages: set[int] = set()
        self.overflow_pages: set[int] = set()

    def page(self, pgno: int) -> bytes | None:
        if pgno < 1 or pgno > self.last_pgno:
            return None
        data = read_at(self.content, pgno * self.pagesize, self.pagesize)
        if len(data) != self.pagesize:
            return None
        (stored,) = struct.unpack_from(self.order + "I", data, 8)
        if stored != pgno:
            return None
        return data

    def bucket_page(self, bucket: int) -> int:
        index = bucket.bit_length()
        if index >= len(self.spares):
            return 0
        return bucket + self.spares[index]

    def records(self) -> Iterator[tuple[int, bytes]]:
        seen: set[int] = set()
        for bucket in range(self.max_bucket + 1):
            pgno = self.bucket_page(bucket)
            while pgno:
                if pgno in self.bucket_pages:
                    self.problems.add(f"Berkeley DB: page {pgno} is reached twice (chain cycle)")
                    break
                self.bucket_pages.add(pgno)
                page = self.page(pgno)
                if page is None:
                    self.problems.add(f"Berkeley DB: bucket {bucket} page {pgno} is missing or corrupt")
                    break
                if page[25] not in (P_HASH, P_HASH_UNSORTED):
                    self.problems.add(f"Berkeley DB: page {pgno} has type {page[25]}, not a hash page")
                    break
                for key, value in self._page_records(pgno, page):
                    if key in seen:
                        self.problems.add(f"Berkeley DB: record {key} appears twice; kept the first")
                        continue
                    seen.add(key)
                    yield key, value
                (pgno,) = struct.unpack_from(self.order + "I", page, 16)

    def _page_records(self, pgno: int, page: bytes) -> Iterator[tuple[int, bytes]]:
        o = self.order
        (count,) = struct.unpack_from(o + "H", page, 20)
        index_end = PAGE_HEADER_SIZE + 2 * count
        if index_end > self.pagesize:
            self.problems.add(f"Berkeley DB: page {pgno} claims {count} items, more than fit")
            return
        offsets = struct.unpack_from(f"{o}{count}H", page, PAGE_HEADER_SIZE)
        # An item runs from its offset to the next item above it (or the page end), whatever order
        # the index array lists them in.
        bounds = sorted({off for off in offsets if index_end <= off < self.pagesize})
        ends = dict(zip(bounds, [*bounds[1:], self.pagesize], strict=False))

        def item(off: int) -> bytes | None:
            end = ends.get(off)
            return None if end is None else page[off:end]

        for i in range(0, count - 1, 2):
            key_item, value_item = item(offsets[i]), item(offsets[i + 1])
            if not key_item or not value_item:
                self.problems.add(f"Berkeley DB: page {pgno} item {i} has an invalid offset")
                continue
            if key_item[0] != H_KEYDATA or len(key_item) != 5:
                self.problems.add(f"Berkeley DB: page {pgno} item {i} is not a record number key")
                continue
            (record,) = struct.unpack_from(o + "I", key_item, 1)
            if record == 0:
                continue  # rpm's "next instance" counter
            value = self._value(pgno, i, value_item)
            if value is not None:
                yield record, value

    def _value(self, pgno: int, index: int, value_item: bytes) -> bytes | None:
        kind = value_item[0]
        if kind == H_KEYDATA:
            return value_item[1:]
        if kind == H_OFFPAGE and len(value_item) >= 12:
            first, total = struct.unpack_from(self.order + "II", value_item, 4)
            return self._overflow(first, total)
        self.problems.add(f"Berkeley DB: page {pgno} item {index + 1} has unsupported type {kind}")
        return None

    def _overflow(self, pgno: int, total: int) -> bytes | None:
        if total == 0 or total > min(self.size, MAX_BLOB):
            self.problems.add(f"Berkeley DB: overflow item at page {pgno} claims {total} bytes")
            return None
        parts: list[bytes] = []
        remaining = total
        start = pgno
        while remaining > 0:
            if pgno in self.overflow_pages:
                self.problems.add(f"Berkeley DB: overflow chain from page {start} reuses page {pgno}")
                return None
            self.overflow_pages.add(pgno)
            page = self.page(pgno)
            if page is None or page[25] != P_OVERFLOW:
                self.problems.add(f"Berkeley DB: overflow chain from page {start} breaks at page {pgno}")
                return None
            (length,) = struct.unpack_from(self.order + "H", page, 22)
            if length == 0 or length > remaining or PAGE_HEADER_SIZE + length > self.pagesize:
                self.problems.add(f"Berkeley DB: overflow page {pgno} holds an invalid length {length}")
                return None
            parts.append(page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + length])
            remaining -= length
            (pgno,) = struct.unpack_from(self.order + "I", page, 16)
        return b"".join(parts)


def read_bdb(content: IO[bytes], size: int, problems: Problems) -> Generator[tuple[int, bytes], None, None]:
    """Yield (record number, header blob) from a Berkeley DB hash `Packages` database."""
    db = _HashDb(content, size, problems)
    yield from db.records()
