"""rpm's SQLite package database (`rpmdb.sqlite`, rpm >= 4.16): table `Packages(hnum, blob)`.

sqlite3 needs a file, so the stream is copied to a private temporary file (next to the stream's own
file when it has one, so it lands in the scan's work directory), opened read-only and immutable (no
locks, no journal, no WAL replay, nothing written), and deleted afterwards. rpm checkpoints its WAL
when it closes the database, so an image normally holds an empty `rpmdb.sqlite-wal`.

A hostile file gets no say in what runs: `Packages` must be a real table (a view could hide an
endless recursive query) without generated columns, the schema is untrusted (`trusted_schema=OFF`),
values are capped in length, rows are fetched one at a time and a progress handler aborts any
statement that runs past a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
import urllib.parse
from collections.abc import Generator
from typing import IO

from hullscan.analyzers.base import AnalyzerFailure, scratch_dir
from hullscan.analyzers.rpmdb import Problems

SQLITE_MAGIC = b"SQLite format 3\x00"
QUERY_SECONDS = 120.0
# Longest value sqlite may return; real rpm headers stay well below 32 MiB.
MAX_VALUE = 128 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024


def is_sqlite(prefix: bytes) -> bool:
    return prefix.startswith(SQLITE_MAGIC)


def _copy_to_temp(content: IO[bytes]) -> str:
    fd, path = tempfile.mkstemp(prefix=".hullscan-rpmdb-", suffix=".sqlite", dir=scratch_dir())
    try:
        with os.fdopen(fd, "wb") as out:
            content.seek(0)
            shutil.copyfileobj(content, out, _COPY_CHUNK)
    except BaseException:
        os.unlink(path)
        raise
    return path


def read_sqlite(content: IO[bytes], size: int, problems: Problems) -> Generator[tuple[int, bytes], None, None]:
    """Yield (hnum, header blob) from an rpm SQLite database, in hnum order."""
    try:
        path = _copy_to_temp(content)
    except OSError as exc:
        raise AnalyzerFailure(f"rpm SQLite: cannot write a temporary copy: {exc}") from exc
    try:
        yield from _query(path, problems)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _query(path: str, problems: Problems) -> Generator[tuple[int, bytes], None, None]:
    uri = f"file:{urllib.parse.quote(path)}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise AnalyzerFailure(f"rpm SQLite: cannot open the database: {exc}") from exc
    try:
        deadline = time.monotonic() + QUERY_SECONDS
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
        row = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE").fetchone()
        if row is None:
            raise AnalyzerFailure("rpm SQLite: the database has no Packages table")
        if row[0] != "table":
            raise AnalyzerFailure(f"rpm SQLite: Packages is a {row[0]}, not a table")
        # Generated columns would let the file compute values on read; rpm never makes them.
        for column in conn.execute("PRAGMA table_xinfo(Packages)"):
            if column[-1] not in (0, 1):
                raise AnalyzerFailure(f"rpm SQLite: Packages column {column[1]!r} is a generated column")
        # One row at a time: a value is at most MAX_VALUE bytes, so memory stays bounded.
        for hnum, blob in conn.execute("SELECT hnum, blob FROM Packages"):
            if not isinstance(blob, bytes) or not isinstance(hnum, int):
                problems.add(f"rpm SQLite: row {hnum!r} holds no header blob")
                continue
            yield hnum, blob
    except sqlite3.Error as exc:
        if "interrupted" in str(exc):
            raise AnalyzerFailure(f"rpm SQLite: reading took longer than {QUERY_SECONDS:.0f}s") from exc
        raise AnalyzerFailure(f"rpm SQLite: {exc}") from exc
    finally:
        conn.close()
