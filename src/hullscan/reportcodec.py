"""A scan report as bytes and back, losslessly, so a stored report renders in every format later.

Left out before storing: the image's file tree (large, and only `--list-files` shows it, from its own field), the
text of configuration files (detectors have already read it) and the private facts (password hashes: never kept);
secret-named ENV values and build arguments in the image config are masked (redact.redact_config).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import zstandard

from hullscan.findings import ScanReport
from hullscan.redact import redact_config

MAX_REPORT_BYTES = 1 << 30


@cache
def _adapter() -> Any:
    from pydantic import TypeAdapter  # loaded on first use: the CLI never stores reports

    return TypeAdapter(ScanReport)


def to_document(report: ScanReport) -> dict[str, Any]:
    facts = dataclasses.replace(report.facts, files=[], config_files={}, private={},
                                config=redact_config(report.facts.config))
    kept = dataclasses.replace(report, facts=facts)
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
