"""Readers for the three rpm package database formats and for the rpm header blobs they store.

- `sqlite`: rpm >= 4.16 default (RHEL 9, Fedora 33+, CBL-Mariner, Amazon Linux 2023): table `Packages`.
- `bdb`: Berkeley DB hash database `Packages` (RHEL/CentOS <= 8, Amazon Linux 2, old SUSE).
- `ndb`: rpm's own "new database" `Packages.db` (SUSE Linux Enterprise 15, openSUSE).

Every reader yields `(record number, header blob)` pairs from a seekable binary stream and treats the
bytes as hostile: structural damage raises `AnalyzerFailure`, damage confined to one record is reported
through a `Problems` list and the record is skipped. Work and memory are bounded by the file size.

This package deliberately defines no `ANALYZERS`; the analyzer lives in `hullscan.analyzers.rpm`.
"""

from __future__ import annotations

from typing import IO

MAX_PROBLEMS = 50


class Problems:
    """A bounded list of human-readable warnings about damaged records."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.messages) < self.limit:
            self.messages.append(message)
        else:
            self.dropped += 1

    def summary(self) -> list[str]:
        if self.dropped:
            return [*self.messages, f"... and {self.dropped} more problems"]
        return list(self.messages)

    def __bool__(self) -> bool:
        return bool(self.messages)


def stream_size(content: IO[bytes]) -> int:
    """Size of a seekable stream, leaving the position at the start."""
    size = content.seek(0, 2)
    content.seek(0)
    return size


def read_at(content: IO[bytes], offset: int, length: int) -> bytes:
    """Read up to `length` bytes at `offset` (fewer at end of file)."""
    content.seek(offset)
    return content.read(length)
