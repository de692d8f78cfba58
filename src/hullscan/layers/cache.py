"""The per-layer facts cache: LayerFacts stored by diff_id + analyzer-set key.

A layer's facts are a pure function of its bytes and the analyzer versions, so a base layer shared by many
images is analysed once, and a warm re-scan downloads nothing but manifests. `LayerStore` is the interface
the scanner uses; `LayerCache` keeps entries as files (the default); a fleet puts them in PostgreSQL
(`pgcache.PostgresLayerStore`, a `SharedLayerStore`).

What is cached is never sensitive: `FileFacts.private` (password hashes and the like) stays out of every store.
A damaged entry is a miss, removed and rebuilt; decompression is bounded, so a forged frame header cannot make
a warm scan allocate what it claims.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import zstandard

from hullscan import safejson
from hullscan.cancel import CancelToken
from hullscan.errors import HullscanError
from hullscan.model import Detection, FileEntry, FileFacts, LayerFacts, Note, OSInfo, Package

FORMAT = 3  # bump when the serialised shape or meaning changes (3: a hard link points at its target's record)
_HEX = "0123456789abcdef"
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
MAX_ENTRY_BYTES = 2 << 30  # decompressed; a layer of a million files stays far below this


class LayerStore(Protocol):
    """Where per-layer facts are kept between scans."""

    def has(self, diff_id: str, key: str) -> bool:
        """Whether an entry exists (cheap; `get` may still find it damaged)."""
        ...

    def get(self, diff_id: str, key: str) -> LayerFacts | None: ...

    def put(self, facts: LayerFacts) -> None:
        """Keep `facts`; raises a CACHE_ERROR HullscanError when the store cannot be written."""
        ...

    def clean(self) -> int:
        """Remove every entry; returns how many were removed."""
        ...


@runtime_checkable
class SharedLayerStore(LayerStore, Protocol):
    """A store several processes share: a layer one of them is analysing is not analysed by another."""

    def flight(self, diff_id: str, key: str, cancel: CancelToken) -> AbstractContextManager[None]:
        """Held while the layer is walked; waits, cancellably, while another process holds it."""
        ...

    def close(self) -> None: ...


def valid_key(diff_id: str, key: str) -> bool:
    """A diff_id that is a well-formed digest and an analyzer key in hex: anything else is never cached (it
    comes from the image config, and such a layer's digest check refuses it anyway)."""
    algo, _, hexpart = diff_id.partition(":")
    if algo not in _HEX_LENGTHS or len(hexpart) != _HEX_LENGTHS[algo] or hexpart.strip(_HEX):
        return False
    return bool(key) and not key.strip(_HEX)


class LayerCache:
    """The filesystem store: one zstd-compressed JSON file per layer and analyzer set."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, diff_id: str, key: str) -> Path | None:
        if not valid_key(diff_id, key):
            return None
        algo, _, hexpart = diff_id.partition(":")
        return self.root / "layers" / algo / hexpart[:2] / f"{hexpart}-{key}-v{FORMAT}.json.zst"

    def has(self, diff_id: str, key: str) -> bool:
        path = self._path(diff_id, key)
        return path is not None and path.is_file()

    def get(self, diff_id: str, key: str) -> LayerFacts | None:
        path = self._path(diff_id, key)
        if path is None:
            return None
        try:
            return decode(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError,
                zstandard.ZstdError):
            # A damaged entry is a miss, not a failure: the layer is analysed again and rewritten.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return None

    def put(self, facts: LayerFacts) -> None:
        path = self._path(facts.diff_id, facts.analyzers_key)
        if path is None:
            return
        data = encode(facts)
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
        layers = self.root / "layers"
        if not layers.exists():
            return 0
        count = sum(1 for p in layers.rglob("*") if p.is_file())
        shutil.rmtree(layers)
        return count


def encode(facts: LayerFacts) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(json.dumps(_facts_to(facts)).encode())


def decode(raw: bytes) -> LayerFacts:
    """Raises ValueError (or another parsing error) for anything that is not a sound entry."""
    # A streaming read, capped: `decompress()` would trust the frame header's content size.
    with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        text = reader.read(MAX_ENTRY_BYTES + 1)
    if len(text) > MAX_ENTRY_BYTES:
        raise ValueError("cache entry decompresses beyond its bound")
    doc = safejson.loads(text, what="cache entry")
    if not isinstance(doc, dict):
        raise ValueError("cache entry is not an object")
    return _facts_from(doc)


def _facts_to(f: LayerFacts) -> dict[str, Any]:
    return {
        "diff_id": f.diff_id,
        "key": f.analyzers_key,
        "files": {p: _file_doc(ff) for p, ff in f.files.items() if _kept(ff)},
        "whiteouts": f.whiteouts,
        "opaque": f.opaque_dirs,
        # Entries as compact rows: they are the bulk of the cache for big layers.
        "entries": [[e.path, e.type, e.size, e.mode, e.uid, e.gid, e.linkname] for e in f.entries],
        "notes": [dataclasses.asdict(n) for n in f.notes],
        "size": f.uncompressed_size,
    }


def _kept(ff: FileFacts) -> bool:
    return bool(ff.packages or ff.os is not None or ff.hints or ff.detections)


def _file_doc(ff: FileFacts) -> dict[str, Any]:
    # `private` is left out on purpose: see the module docstring.
    return {"packages": [dataclasses.asdict(p) for p in ff.packages],
            "os": dataclasses.asdict(ff.os) if ff.os is not None else None,
            "hints": ff.hints, "detections": [dataclasses.asdict(d) for d in ff.detections]}


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
