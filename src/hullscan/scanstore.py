"""Stored image facts, so a new vulnerability database can be applied without re-scanning.

Each scan saves its ImageFacts (the SBOM and image config, not the file listing) with the keys of
the findings it produced; `hullscan rescan` reloads them, matches again and tells what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zstandard

from hullscan import safejson
from hullscan.findings import VulnFinding
from hullscan.model import Descriptor, ImageFacts, LayerInfo, Note, OSInfo, Package, Platform
from hullscan.redact import redact_config

FORMAT = 1


def finding_key(f: VulnFinding) -> str:
    p = f.package
    return f"{f.id}|{p.ecosystem}|{p.name}|{p.version}|{p.path}"


def facts_to_dict(facts: ImageFacts) -> dict[str, Any]:
    # Left out before asdict deep-copies them: the file listing is large and nothing re-evaluates it, config files
    # are only for the checks, and `private` (password hashes) is never kept; re-evaluation needs only the packages.
    d = dataclasses.asdict(dataclasses.replace(facts, files=[], file_hashes={}, config_files={}, config_digests={},
                                               private={}))
    for left_out in ("files", "file_hashes", "config_files", "config_digests", "private"):
        d.pop(left_out)
    d["config"] = redact_config(d.get("config"))
    return d



def facts_from_dict(d: dict[str, Any]) -> ImageFacts:
    def descriptor(x: dict[str, Any]) -> Descriptor:
        plat = Platform(**x["platform"]) if x.get("platform") else None
        return Descriptor(x["media_type"], x["digest"], x["size"], dict(x.get("annotations") or {}), plat,
                          list(x.get("urls") or []))

    return ImageFacts(
        reference=d["reference"], manifest_digest=d.get("manifest_digest", ""),
        config_digest=d.get("config_digest", ""), platform=Platform(**d["platform"]),
        config=d.get("config") or {}, config_size=int(d.get("config_size") or 0),
        layers=[LayerInfo(x["index"], descriptor(x["descriptor"]), x["diff_id"], x.get("created_by", ""))
                for x in d.get("layers", [])],
        os=OSInfo(**d["os"]) if d.get("os") else None,
        packages=[Package(**p) for p in d.get("packages", [])],
        notes=[Note(**n) for n in d.get("notes", [])],
        annotations={str(k): str(v) for k, v in (d.get("annotations") or {}).items()},
    )


@dataclass
class StoredScan:
    key: str
    facts: ImageFacts
    finding_keys: list[str] = field(default_factory=list)
    database_built_at: str = ""
    scanned_at: str = ""


def scan_key(facts: ImageFacts) -> str:
    ident = f"{facts.reference}@{facts.manifest_digest or facts.config_digest}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class ScanStoreBackend(Protocol):
    """Where the facts of finished scans are kept (for rescans and base-image identification)."""

    def save(self, scan: StoredScan) -> None: ...

    def all(self) -> Iterator[StoredScan]: ...


class ScanStore:
    """The filesystem store: one zstd-compressed JSON document per image reference and digest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    key_for = staticmethod(scan_key)

    def save(self, scan: StoredScan) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, "key": scan.key, "facts": facts_to_dict(scan.facts),
               "findings": scan.finding_keys, "database_built_at": scan.database_built_at,
               "scanned_at": scan.scanned_at}
        data = zstandard.ZstdCompressor(level=3).compress(json.dumps(doc).encode())
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.root / f"{scan.key}.json.zst")

    def load(self, path: Path) -> StoredScan:
        doc = safejson.loads(zstandard.ZstdDecompressor().decompress(path.read_bytes()), what=str(path))
        return StoredScan(doc["key"], facts_from_dict(doc["facts"]), list(doc.get("findings", [])),
                          doc.get("database_built_at", ""), doc.get("scanned_at", ""))

    def all(self) -> Iterator[StoredScan]:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("*.json.zst")):
            try:
                scan = self.load(path)
            except (OSError, ValueError, KeyError, TypeError, zstandard.ZstdError):
                continue  # a damaged entry is skipped; the next scan of that image rewrites it
            yield scan
