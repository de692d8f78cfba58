"""Parsing helpers for the RFC 822-style stanza files that dpkg and apk keep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from hullscan.analyzers.base import AnalyzerFailure

MAX_DB = 256 << 20


def read_text(content: IO[bytes], limit: int = MAX_DB) -> str:
    data = content.read(limit + 1)
    if len(data) > limit:
        raise AnalyzerFailure(f"database larger than {limit:,} bytes")
    return data.decode("utf-8", "replace")


def deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of `Field: value` lines; continuation lines start with a space or tab."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # malformed line: dpkg would refuse the file; we keep what parses
        last = key.strip()
        fields[last] = value.strip()
    if fields:
        yield fields
