"""Image configs kept in memory, for the re-scans of a long-running engine (a service, a worker).

A config is content-addressed: the bytes a digest names never change, so re-scanning an unchanged image needs only
its manifest from the registry, one round trip fewer (against a remote registry, latency is most of a warm
re-scan). Only bytes already checked against their digest are kept, under a key the caller chooses (the registry
source uses registry, repository and digest). Bounded by total size; the least recently used go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

DEFAULT_MAX_BYTES = 16 << 20  # a config is a few KB: thousands of images


class BlobMemo:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # scans of one engine run in several threads

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._blobs.get(key)
            if data is not None:
                self._blobs.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        """Keep `data`, which the caller has verified against the digest in `key`."""
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._blobs.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._blobs[key] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, gone = self._blobs.popitem(last=False)
                self._size -= len(gone)
