"""rpm's NDB package database (`Packages.db`, SUSE), read without librpm.

All integers are little-endian. The file starts with a 32-byte header (magic "RpmP", version 0,
generation, number of slot pages, next package index), followed by slot pages of 4096 bytes holding
16-byte slots: magic "Slot", package index, block offset, block count (blocks are 16 bytes; a zero
offset marks a free slot). A slot points at a blob: a 16-byte head (magic "BlbS", package index,
timestamp, length), the header blob itself, then a 12-byte tail (adler32, length, magic "BlbE"),
padded to whole blocks.

Blobs whose slots overlap are skipped, so the bytes read never exceed the file size.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import IO

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.rpmdb import Problems, read_at

NDB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_HEAD_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"

FILE_HEADER_SIZE = 32
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
BLOB_HEAD_SIZE = 16
BLOB_TAIL_SIZE = 12
# Thousands of packages need a handful of slot pages; more than this is damage, not a database.
MAX_SLOT_PAGES = 1024


def is_ndb(prefix: bytes) -> bool:
    return prefix[:4] == NDB_MAGIC


def _blocks_for(bloblen: int) -> int:
    return (BLOB_HEAD_SIZE + bloblen + BLOB_TAIL_SIZE + BLOCK_SIZE - 1) // BLOCK_SIZE


def read_ndb(content: IO[bytes], size: int, problems: Problems) -> Generator[tuple[int, bytes], None, None]:
    """Yield (package index, header blob) from an NDB `Packages.db`, in file order."""
    head = read_at(content, 0, FILE_HEADER_SIZE)
    if len(head) < FILE_HEADER_SIZE or head[:4] != NDB_MAGIC:
        raise AnalyzerFailure("not an rpm NDB database (bad magic or short file)")
    version, _generation, slot_pages, _next_index = struct.unpack_from("<IIII", head, 4)
    if version != 0:
        raise AnalyzerFailure(f"rpm NDB: unsupported version {version}")
    if slot_pages == 0:
        raise AnalyzerFailure("rpm NDB: header declares no slot pages")
    if slot_pages > MAX_SLOT_PAGES:
        raise AnalyzerFailure(f"rpm NDB: header declares {slot_pages} slot pages (limit {MAX_SLOT_PAGES})")
    available = size // PAGE_SIZE
    if available < slot_pages:
        if available == 0:
            raise AnalyzerFailure(f"rpm NDB truncated: {size} bytes, not even one slot page")
        problems.add(f"rpm NDB truncated: {slot_pages} slot pages declared, {available} present")
    first_data_block = slot_pages * (PAGE_SIZE // BLOCK_SIZE)
    file_blocks = size // BLOCK_SIZE

    slots: list[tuple[int, int, int]] = []
    for page_no in range(min(slot_pages, available)):
        page = read_at(content, page_no * PAGE_SIZE, PAGE_SIZE)
        start = FILE_HEADER_SIZE if page_no == 0 else 0
        for offset in range(start, PAGE_SIZE, SLOT_SIZE):
            magic, index, block_off, block_count = struct.unpack_from("<4sIII", page, offset)
            slot_no = (page_no * PAGE_SIZE + offset) // SLOT_SIZE
            if magic != SLOT_MAGIC:
                problems.add(f"rpm NDB: slot {slot_no} has a bad magic number")
                continue
            if block_off == 0:
                continue  # free slot
            if index == 0 or block_count == 0 or block_off < first_data_block:
                problems.add(f"rpm NDB: slot {slot_no} is invalid")
                continue
            if block_off + block_count > file_blocks:
                problems.add(f"rpm NDB: blob of package {index} lies beyond the end of the file")
                continue
            slots.append((block_off, block_count, index))

    slots.sort()
    end_of_previous = 0
    seen: set[int] = set()
    for block_off, block_count, index in slots:
        if block_off < end_of_previous:
            problems.add(f"rpm NDB: blob of package {index} overlaps another blob")
            continue
        end_of_previous = block_off + block_count
        if index in seen:
            problems.add(f"rpm NDB: package index {index} appears in two slots; kept the first")
            continue
        seen.add(index)
        blob = _read_blob(content, index, block_off, block_count, problems)
        if blob is not None:
            yield index, blob


def _read_blob(content: IO[bytes], index: int, block_off: int, block_count: int, problems: Problems) -> bytes | None:
    offset = block_off * BLOCK_SIZE
    head = read_at(content, offset, BLOB_HEAD_SIZE)
    if len(head) < BLOB_HEAD_SIZE:
        problems.add(f"rpm NDB: blob of package {index} is truncated")
        return None
    magic, stored_index, _timestamp, length = struct.unpack_from("<4sIII", head)
    if magic != BLOB_HEAD_MAGIC or stored_index != index:
        problems.add(f"rpm NDB: blob of package {index} has a bad head")
        return None
    if _blocks_for(length) != block_count:
        problems.add(f"rpm NDB: blob of package {index} has length {length}, its slot {block_count} blocks")
        return None
    # The tail closes the last block; zero padding sits between the blob and the tail.
    body = block_count * BLOCK_SIZE - BLOB_HEAD_SIZE
    data = read_at(content, offset + BLOB_HEAD_SIZE, body)
    if len(data) < body:
        problems.add(f"rpm NDB: blob of package {index} is truncated")
        return None
    _adler, tail_length, tail_magic = struct.unpack_from("<II4s", data, body - BLOB_TAIL_SIZE)
    if tail_magic != BLOB_TAIL_MAGIC or tail_length != length:
        problems.add(f"rpm NDB: blob of package {index} has a bad tail")
        return None
    # rpm itself does not verify the adler32 on read, so neither do we: a blob rpm lists, we list.
    return data[:length]
