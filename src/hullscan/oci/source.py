"""The image source interface and what every source shares: limits and verified blob streams."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from hullscan.errors import DigestMismatch, LimitExceeded
from hullscan.model import Descriptor, LayerInfo, Platform

GB = 1000**3


@dataclass(frozen=True)
class Limits:
    max_image_size: int = 50 * GB
    max_layers: int = 126  # "fewer than 127 layers"
    max_layer_size: int = 10 * GB
    # Decompressed bytes read of one layer at most (checked while streaming and against each member's size):
    # the bound on the work a layer can cause, whatever its compression ratio (see layers/streams.py).
    max_layer_uncompressed: int = 4 * 10 * GB
    max_entries: int = 1_000_000


@dataclass
class ResolvedImage:
    """An image manifest resolved to one platform, with its config."""

    reference: str
    manifest_digest: str
    manifest_media_type: str
    config_digest: str
    config: dict[str, Any]
    platform: Platform
    layers: list[LayerInfo] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    config_size: int = 0  # the config blob's size, as the manifest declares it


class BlobStream(Protocol):
    """What a source hands out for a layer: a byte stream, read once."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class ImageSource(Protocol):
    """Where an image comes from: a registry, a docker-archive tar, an OCI layout."""

    def resolve(self, platform: Platform | None) -> ResolvedImage:
        """Fetch and validate the manifest (choosing a platform from an index) and the config."""
        ...

    def open_layer(self, layer: LayerInfo) -> BlobStream:
        """A stream of the layer blob as stored (compressed), verified against its digest and size."""
        ...

    def close(self) -> None: ...


def hasher_for(digest: str) -> Any:
    algo, _, hexpart = digest.partition(":")
    if algo not in ("sha256", "sha512") or not hexpart:
        raise DigestMismatch(f"unsupported or malformed digest {digest!r}")
    expected_len = 64 if algo == "sha256" else 128
    if len(hexpart) != expected_len or any(c not in "0123456789abcdef" for c in hexpart):
        raise DigestMismatch(f"malformed digest {digest!r}")
    return hashlib.new(algo)


class VerifyingReader:
    """Wraps a raw blob stream: counts bytes against a limit and checks the digest at EOF.

    Registries can lie about sizes, so the limit is enforced on the bytes actually received.
    """

    def __init__(self, raw: IO[bytes], descriptor: Descriptor, max_size: int, what: str = "layer") -> None:
        self._raw = raw
        self._desc = descriptor
        self._hash = hasher_for(descriptor.digest)
        self._max = max_size
        self._what = what
        self.read_bytes = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        data = self._raw.read(n if n is not None and n >= 0 else 1 << 20)
        if not data:
            self._finish()
            return b""
        self.read_bytes += len(data)
        if self.read_bytes > self._max:
            raise LimitExceeded(
                f"{self._what} {self._desc.digest} is larger than the limit of {self._max:,} bytes",
                code="LAYER_TOO_LARGE",
            )
        self._hash.update(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read to EOF so the digest is checked even when the consumer stopped early."""
        while self.read(1 << 20):
            pass

    def _finish(self) -> None:
        self._done = True
        got = f"{self._desc.digest.split(':')[0]}:{self._hash.hexdigest()}"
        if got != self._desc.digest:
            raise DigestMismatch(f"{self._what} expected {self._desc.digest}, received {got}")
        if self._desc.size and self.read_bytes != self._desc.size:
            raise DigestMismatch(
                f"{self._what} {self._desc.digest}: expected {self._desc.size} bytes, received {self.read_bytes}"
            )

    def close(self) -> None:
        self._raw.close()
