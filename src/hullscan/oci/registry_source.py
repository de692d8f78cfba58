"""An ImageSource that pulls from a registry: manifest (choosing a platform from an index), config, layers.

Limits are checked from the manifest before any blob is fetched; while streaming, a layer may not exceed
the size its manifest declares (a registry can lie) nor the layer size limit, and its digest is verified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, cast

from hullscan.errors import DigestMismatch, ManifestError
from hullscan.model import Descriptor, LayerInfo, Platform
from hullscan.oci import manifest as mf
from hullscan.oci import media
from hullscan.oci.blobmemo import BlobMemo
from hullscan.oci.credentials import Credentials, resolve_credentials
from hullscan.oci.reference import Reference, parse_reference
from hullscan.oci.registry import BlobStream, RegistryClient
from hullscan.oci.source import Limits, ResolvedImage, VerifyingReader

MAX_CONFIG_SIZE = 32 << 20


class _GuardedBlob:
    """The raw blob stream, refusing bytes beyond the declared size and reporting progress."""

    def __init__(self, stream: BlobStream, descriptor: Descriptor, on_bytes: Callable[[int], None] | None) -> None:
        self._stream = stream
        self._desc = descriptor
        self._on_bytes = on_bytes
        self._received = 0
        if stream.length is not None and descriptor.size and stream.length > descriptor.size:
            stream.close()
            raise DigestMismatch(
                f"the registry announces {stream.length:,} bytes for layer {descriptor.digest}, "
                f"but the manifest declares {descriptor.size:,}")

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._received += len(data)
            if self._desc.size and self._received > self._desc.size:
                self._stream.close()
                raise DigestMismatch(
                    f"the registry sent more than the {self._desc.size:,} bytes the manifest declares for "
                    f"layer {self._desc.digest}")
            if self._on_bytes is not None:
                self._on_bytes(len(data))
        return data

    def close(self) -> None:
        self._stream.close()


class RegistrySource:
    """Pull one image from a registry. `on_bytes` is called with the size of every layer chunk read."""

    def __init__(
        self,
        ref: Reference,
        client: RegistryClient,
        limits: Limits | None = None,
        *,
        on_bytes: Callable[[int], None] | None = None,
        owns_client: bool = False,
        config_memo: BlobMemo | None = None,
    ) -> None:
        self.ref = ref
        self.client = client
        self.limits = limits or Limits()
        self.on_bytes = on_bytes
        self.config_memo = config_memo  # configs already fetched by this process (see oci/blobmemo.py)
        self.index_digest = ""  # set when the reference named a multi-platform index
        self._owns_client = owns_client

    @classmethod
    def open(
        cls,
        reference: str | Reference,
        *,
        credentials: Credentials | None = None,
        username: str | None = None,
        password: str | None = None,
        docker_config: str | Path | None = None,
        insecure: bool = False,
        ca_cert: str | Path | None = None,
        limits: Limits | None = None,
        on_bytes: Callable[[int], None] | None = None,
        env: Mapping[str, str] | None = None,
        use_docker_config: bool = True,
        config_memo: BlobMemo | None = None,
        **client_kwargs: Any,
    ) -> RegistrySource:
        """Parse the reference, find credentials (flags, `env`, Docker config) and build the client."""
        ref = reference if isinstance(reference, Reference) else parse_reference(reference)
        if credentials is None:
            credentials = resolve_credentials(ref.registry, username=username, password=password,
                                              config_path=docker_config, env=env, use_docker_config=use_docker_config)
        client = RegistryClient.for_reference(ref, credentials, insecure=insecure, ca_cert=ca_cert, **client_kwargs)
        return cls(ref, client, limits, on_bytes=on_bytes, owns_client=True, config_memo=config_memo)

    def resolve(self, platform: Platform | None) -> ResolvedImage:
        repo = self.ref.repository
        fetched = self.client.get_manifest(repo, self.ref.ref)
        doc = mf.load_json(fetched.data, "manifest")
        media_type = mf.detect_media_type(doc, fetched.media_type)
        mf.check_not_schema1(media_type)
        digest = fetched.digest
        if media_type in media.INDEXES:
            self.index_digest = digest
            chosen = mf.choose_platform(doc, platform)
            child = self.client.get_manifest(repo, chosen.digest)
            if chosen.size and len(child.data) != chosen.size:
                raise DigestMismatch(
                    f"manifest {chosen.digest}: the index declares {chosen.size} bytes, received {len(child.data)}")
            doc = mf.load_json(child.data, f"manifest {chosen.digest}")
            media_type = mf.detect_media_type(doc, child.media_type or chosen.media_type)
            mf.check_not_schema1(media_type)
            if media_type in media.INDEXES:
                raise ManifestError(f"the index entry {chosen.digest} for {chosen.platform} is itself an index")
            digest = chosen.digest

        def load_config(desc: Descriptor) -> bytes:
            memo = self.config_memo
            # Per repository: a manifest elsewhere naming the same digest gets the bytes only from its own
            # registry, so a scan never sees a config its registry would not serve it.
            key = f"{self.ref.registry}/{repo}@{desc.digest}"
            known = memo.get(key) if memo is not None else None
            if known is not None and len(known) == desc.size:
                return known
            data = self.client.read_blob(repo, desc, max_size=MAX_CONFIG_SIZE, what="image config")
            if memo is not None:
                memo.put(key, data)  # read_blob checked it against the digest and the size
            return data

        return mf.resolve_manifest(str(self.ref), digest, doc, media_type, load_config, self.limits)

    def open_layer(self, layer: LayerInfo) -> IO[bytes]:
        desc = layer.descriptor
        stream = self.client.get_blob(self.ref.repository, desc.digest)
        guarded = _GuardedBlob(stream, desc, self.on_bytes)
        reader = VerifyingReader(cast(IO[bytes], guarded), desc, self.limits.max_layer_size,
                                 what=f"layer {layer.index}")
        return cast(IO[bytes], reader)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
