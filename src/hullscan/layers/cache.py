"""The per-layer facts cache: LayerFacts stored by diff_id + analyzer-set key.

A layer's facts are a pure function of its bytes and the analyzer versions, so a base layer shared
by many images is analysed once, and a warm re-scan downloads nothing but manifests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import zstandard

from hullscan.model import FileEntry, FileFacts, LayerFacts, Note, OSInfo, Package

FORMAT = 1  # bump when the serialised shape changes


def default_cache_dir() -> Path:
    env = os.environ.get("HULLSCAN_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("hullscan"))


class LayerCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, diff_id: str, key: str) -> Path:
        algo, _, hexpart = diff_id.partition(":")
        if not hexpart or not hexpart.isalnum() or not algo.isalnum():
            raise ValueError(f"bad diff_id {diff_id!r}")
        return self.root / "layers" / algo / hexpart[:2] / f"{hexpart}-{key}-v{FORMAT}.json.zst"

    def get(self, diff_id: str, key: str) -> LayerFacts | None:
        if not diff_id:
            return None
        path = self._path(diff_id, key)
        try:
            raw = path.read_bytes()
            doc = json.loads(zstandard.ZstdDecompressor().decompress(raw))
            return _facts_from(doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, zstandard.ZstdError):
            # A damaged entry is a miss, not a failure: the layer is analysed again and rewritten.
            path.unlink(missing_ok=True)
            return None

    def put(self, facts: LayerFacts) -> None:
        if not facts.diff_id:
            return
        path = self._path(facts.diff_id, facts.analyzers_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = zstandard.ZstdCompressor(level=3).compress(json.dumps(_facts_to(facts)).encode())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old entry or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clean(self) -> int:
        """Remove every cached entry; returns how many files were removed."""
        layers = self.root / "layers"
        if not layers.exists():
            return 0
        count = sum(1 for p in layers.rglob("*") if p.is_file())
        shutil.rmtree(layers)
        return count


def _facts_to(f: LayerFacts) -> dict[str, Any]:
    return {
        "diff_id": f.diff_id,
        "key": f.analyzers_key,
        "files": {p: dataclasses.asdict(ff) for p, ff in f.files.items()},
        "whiteouts": f.whiteouts,
        "opaque": f.opaque_dirs,
        # Entries as compact rows: they are the bulk of the cache for big layers.
        "entries": [[e.path, e.type, e.size, e.mode, e.uid, e.gid, e.linkname] for e in f.entries],
        "notes": [dataclasses.asdict(n) for n in f.notes],
        "size": f.uncompressed_size,
    }


def _facts_from(d: dict[str, Any]) -> LayerFacts:
    files = {}
    for path, ff in d["files"].items():
        os_info = OSInfo(**ff["os"]) if ff.get("os") else None
        files[path] = FileFacts([Package(**p) for p in ff["packages"]], os_info, ff.get("hints") or {})
    return LayerFacts(
        diff_id=d["diff_id"],
        analyzers_key=d["key"],
        files=files,
        whiteouts=list(d["whiteouts"]),
        opaque_dirs=list(d["opaque"]),
        entries=[FileEntry(*row) for row in d["entries"]],
        notes=[Note(**n) for n in d["notes"]],
        uncompressed_size=int(d["size"]),
    )
