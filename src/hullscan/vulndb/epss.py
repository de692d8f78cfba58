"""FIRST's EPSS scores (https://www.first.org/epss/): the daily CSV, plain or gzipped.

    #model_version:v2023.03.01,score_date:2025-01-01T00:00:00+0000
    cve,epss,percentile
    CVE-1999-0001,0.00383,0.72779

The comment line is optional (files before 2022-02-04 have none); the header names the columns, so their order
is read from it. A row that is not a CVE id with two numbers in [0, 1] is counted and skipped; a file without
the header is refused as a whole (it is not an EPSS file).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from hullscan.vulndb.osv import OSVImportError

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
MAX_SIZE = 256 << 20  # the whole daily file is ~10 MB uncompressed


@dataclass
class EpssData:
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # cve -> (probability, percentile)
    model_version: str = ""
    score_date: str = ""
    bad_rows: int = 0
    source: str = ""


def _comment(line: str, data: EpssData) -> None:
    for part in line.lstrip("#").split(","):
        key, _, value = part.partition(":")
        if key.strip() == "model_version":
            data.model_version = value.strip()
        elif key.strip() == "score_date":
            data.score_date = value.strip()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def parse_epss(raw: bytes, source: str = "EPSS") -> EpssData:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(MAX_SIZE + 1)
        except (OSError, EOFError) as exc:
            raise OSVImportError(f"{source} is not a readable gzip file: {exc}") from None
    if len(raw) > MAX_SIZE:
        raise OSVImportError(f"{source} is larger than {MAX_SIZE:,} bytes; it is not an EPSS file")
    text = raw.decode("utf-8", "replace")
    data = EpssData(source=source)
    lines = text.splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith("#")):
        _comment(lines.pop(0), data)
    header = [h.strip().lower() for h in lines[0].split(",")] if lines else []
    if not {"cve", "epss", "percentile"} <= set(header):
        raise OSVImportError(f"{source} is not an EPSS CSV: its header is not 'cve,epss,percentile'")
    ci, ei, pi = header.index("cve"), header.index("epss"), header.index("percentile")
    for row in csv.reader(lines[1:]):
        if not row:
            continue
        cve = row[ci].strip() if len(row) > ci else ""
        epss = _number(row[ei]) if len(row) > ei else None
        pct = _number(row[pi]) if len(row) > pi else None
        if not _CVE.match(cve) or epss is None or pct is None:
            data.bad_rows += 1
            continue
        data.scores[cve] = (epss, pct)
    return data


def load_epss(path: Path) -> EpssData:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OSVImportError(f"cannot read the EPSS file {path}: {exc.strerror or exc}") from None
    return parse_epss(raw, str(path))


def sniff_epss(path: Path) -> bool:
    """Whether a file looks like an EPSS CSV (by name, or by its first bytes)."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")) and "epss" in name:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        try:
            head = gzip.GzipFile(fileobj=io.BytesIO(path.read_bytes())).read(512)
        except (OSError, EOFError):
            return False
    return b"cve,epss,percentile" in head.lower() or head.startswith(b"#model_version")
