"""A scan report as bytes and back, losslessly, so a stored report renders in every format later.

Left out before storing: the image's file tree (large, and only `--list-files` shows it, from its own field) and
the text of configuration files (it may hold password hashes; detectors have already read it).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import zstandard

from hullscan.findings import ScanReport

MAX_REPORT_BYTES = 1 << 30


@cache
def _adapter() -> Any:
    from pydantic import TypeAdapter  # loaded on first use: the CLI never stores reports

    return TypeAdapter(ScanReport)


def to_document(report: ScanReport) -> dict[str, Any]:
    kept = dataclasses.replace(report, facts=dataclasses.replace(report.facts, files=[], config_files={}))
    doc: dict[str, Any] = _adapter().dump_python(kept, mode="json")
    return doc


def from_document(doc: dict[str, Any]) -> ScanReport:
    report: ScanReport = _adapter().validate_python(doc)
    return report


def encode(report: ScanReport) -> bytes:
    return zstandard.ZstdCompressor(level=6).compress(json.dumps(to_document(report)).encode())


def decode(data: bytes) -> ScanReport:
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        text = reader.read(MAX_REPORT_BYTES + 1)
    if len(text) > MAX_REPORT_BYTES:
        raise ValueError("stored report decompresses beyond its bound")
    return from_document(json.loads(text))
