"""Decompression of layer blobs as bounded, hashed streams.

Hand-written rather than gzip.GzipFile/tarfile's own compression so that one reader can sniff the
format, hash the decompressed bytes (the diff_id) and stop a decompression bomb early.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import zstandard
from isal import isal_zlib  # ISA-L inflate: same API as zlib, about 3x faster on layer-sized streams

from hullscan.errors import DigestMismatch, LayerError
from hullscan.oci.source import BlobStream, Limits

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
BOMB_GRACE = Limits.bomb_grace  # default decompressed bytes before the ratio test applies


class CountingReader:
    """Counts what the decompressor pulls from the raw (compressed) stream."""

    def __init__(self, raw: BlobStream, prefix: bytes = b"") -> None:
        self._raw = raw
        self._prefix = prefix
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = (self._prefix, b"") if n < 0 or n >= len(self._prefix) else (
                self._prefix[:n], self._prefix[n:])
        else:
            data = self._raw.read(n if n >= 0 else CHUNK)
        self.count += len(data)
        return data


class _GzipReader:
    """Multi-member gzip decompression, incremental, with truncation detection."""

    def __init__(self, src: CountingReader) -> None:
        self._src = src
        self._d = isal_zlib.decompressobj(wbits=31)
        self._buf = b""  # compressed input not yet consumed
        self._done = False

    def read(self, n: int) -> bytes:
        while not self._done:
            if not self._buf:
                self._buf = self._src.read(CHUNK // 4)
                if not self._buf:
                    if not self._d.eof:
                        raise LayerError("layer is truncated: the gzip stream ended early")
                    self._done = True
                    break
            if self._d.eof:
                # After a member: zero padding, or the next member of a multi-member stream.
                rest = self._buf.lstrip(b"\0")
                if not rest:
                    self._buf = b""
                    continue
                if not rest.startswith(GZIP_MAGIC[: len(rest)]):
                    raise LayerError("layer has trailing garbage after the gzip stream")
                self._d = isal_zlib.decompressobj(wbits=31)
                self._buf = rest
            try:
                out = self._d.decompress(self._buf, n)
            except (zlib.error, isal_zlib.error) as exc:  # type: ignore[misc]
                raise LayerError(f"layer is not valid gzip: {exc}") from None
            self._buf = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if out:
                return out
        return b""


class _ZstdReader:
    def __init__(self, src: CountingReader) -> None:
        self._r = zstandard.ZstdDecompressor().stream_reader(
            src, read_across_frames=True, read_size=CHUNK // 4)  # type: ignore[arg-type]

    def read(self, n: int) -> bytes:
        try:
            return bytes(self._r.read(n))
        except zstandard.ZstdError as exc:
            raise LayerError(f"layer is not valid zstd: {exc}") from None


class _PlainReader:
    def __init__(self, src: CountingReader) -> None:
        self._src = src

    def read(self, n: int) -> bytes:
        return self._src.read(n)


class LayerStream:
    """The decompressed tar stream of one layer: hashed (diff_id), bounded against bombs."""

    def __init__(self, raw: BlobStream, diff_id: str, limits: Limits, compression: str = "auto") -> None:
        head = raw.read(4)
        self.compressed = CountingReader(raw, head)
        if head.startswith(GZIP_MAGIC):
            self.compression = "gzip"
        elif head.startswith(ZSTD_MAGIC):
            self.compression = "zstd"
        else:
            self.compression = "none"
        del compression  # the declared type is advisory; the bytes decide (media types are often wrong)
        self._inner: Any = {"gzip": _GzipReader, "zstd": _ZstdReader, "none": _PlainReader}[self.compression](
            self.compressed)
        self._diff_id = diff_id
        algo = diff_id.split(":", 1)[0] if ":" in diff_id else "sha256"
        self._hash = hashlib.new(algo if algo in ("sha256", "sha512") else "sha256")
        self._limits = limits
        self.size = 0
        self._ended = False
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        # tarfile asks for 10 KiB at a time; inflating in 1 MiB steps and slicing is far cheaper.
        if n is None or n < 0:
            n = CHUNK
        if self._pos >= len(self._buf):
            self._refill()
            if not self._buf:
                return b""
        data = self._buf[self._pos:self._pos + n]
        self._pos += len(data)
        return data

    def _refill(self) -> None:
        self._buf, self._pos = b"", 0
        if self._ended:
            return
        data = self._inner.read(CHUNK)
        if not data:
            self._ended = True
            return
        self._buf = data
        self.size += len(data)
        self._hash.update(data)
        if self.size > self._limits.max_layer_uncompressed:
            raise LayerError(
                f"layer expands beyond {self._limits.max_layer_uncompressed:,} bytes (decompression bomb?)")
        if (self.compression != "none" and self.size > BOMB_GRACE
                and self.size > self._limits.max_ratio * max(self.compressed.count, 1)):
            raise LayerError(
                f"layer expands more than {self._limits.max_ratio}x ({self.compressed.count:,} -> "
                f"{self.size:,} bytes so far): refusing a likely decompression bomb")

    def finish(self) -> None:
        """Read what the tar reader left (padding) and check the diff_id."""
        while not self._ended and self.read(CHUNK):
            pass
        if not self._diff_id:
            return
        got = f"{self._diff_id.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if got != self._diff_id:
            raise DigestMismatch(f"layer content does not match diff_id {self._diff_id} (got {got})")
