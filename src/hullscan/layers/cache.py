"""The per-layer facts cache: LayerFacts stored by diff_id + analyzer-set key.

A layer's facts are a pure function of its bytes and the analyzer versions, so a base layer shared
by many images is analysed once, and a warm re-scan downloads nothing but manifests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import zstandard

from hullscan.errors import HullscanError
from hullscan.model import Detection, FileEntry, FileFacts, LayerFacts, Note, OSInfo, Package

FORMAT = 2  # bump when the serialised shape changes
_HEX = "0123456789abcdef"
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


def default_cache_dir() -> Path:
    env = os.environ.get("HULLSCAN_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("hullscan"))


class LayerCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, diff_id: str, key: str) -> Path | None:
        """Where an entry lives; None for a diff_id that is no well-formed digest (it comes from the
        image config: such a layer cannot be cached, and its digest check will refuse it anyway)."""
        algo, _, hexpart = diff_id.partition(":")
        if algo not in _HEX_LENGTHS or len(hexpart) != _HEX_LENGTHS[algo] or hexpart.strip(_HEX):
            return None
        if not key or key.strip(_HEX):
            return None
        return self.root / "layers" / algo / hexpart[:2] / f"{hexpart}-{key}-v{FORMAT}.json.zst"

    def has(self, diff_id: str, key: str) -> bool:
        """Whether an entry exists (cheap: a stat; `get` may still find it damaged)."""
        path = self._path(diff_id, key)
        return path is not None and path.is_file()

    def get(self, diff_id: str, key: str) -> LayerFacts | None:
        path = self._path(diff_id, key)
        if path is None:
            return None
        try:
            raw = path.read_bytes()
            doc = json.loads(zstandard.ZstdDecompressor().decompress(raw))
            return _facts_from(doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zstandard.ZstdError):
            # A damaged entry is a miss, not a failure: the layer is analysed again and rewritten.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return None

    def put(self, facts: LayerFacts) -> None:
        path = self._path(facts.diff_id, facts.analyzers_key)
        if path is None:
            return
        data = zstandard.ZstdCompressor(level=3).compress(json.dumps(_facts_to(facts)).encode())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise HullscanError(f"cannot write to the layer cache in {self.root}: {exc}", code="CACHE_ERROR") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old entry or the new one
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise HullscanError(f"cannot write to the layer cache in {self.root}: {exc}",
                                    code="CACHE_ERROR") from None
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
        files[path] = FileFacts([Package(**p) for p in ff["packages"]], os_info, ff.get("hints") or {},
                                [Detection(**d) for d in ff.get("detections", [])])
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
