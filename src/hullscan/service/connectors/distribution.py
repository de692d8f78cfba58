"""Any OCI / Docker registry (CNCF Distribution, registry:2, Quay, ...): `_catalog`, `tags/list`, manifests.

The catalog and tag lists follow `Link: rel="next"` pages (hullscan.oci.registry); each tag's manifest gives its
digest, media type and size (its config and layers; for an index, its platforms). Repositories are listed
concurrently, a bounded number at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from hullscan.errors import HullscanError
from hullscan.safejson import loads
from hullscan.service.connectors.base import ClientHolder, ConnectionInfo, RemoteImage, first_segment, image_reference

PAGE = 1000  # catalog entries per page (distribution's catalog.maxentries default)
CONCURRENCY = 16  # requests in flight while listing


def manifest_size(data: bytes) -> tuple[int | None, str | None]:
    """An image's size (config and layers, as its manifest declares them) and, for an index, its platforms."""
    try:
        doc = loads(data, what="a manifest")
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    if isinstance(doc.get("manifests"), list):
        platforms = sorted({f"{p.get('os')}/{p.get('architecture')}" for m in doc["manifests"] if isinstance(m, dict)
                            for p in [m.get("platform")] if isinstance(p, dict)})
        return None, ",".join(platforms) or None
    layers = doc.get("layers")
    parts = [doc.get("config"), *(layers if isinstance(layers, list) else [])]
    sizes = [p.get("size") for p in parts if isinstance(p, dict)]
    return (sum(s for s in sizes if isinstance(s, int) and s >= 0), None) if sizes else (None, None)


class DistributionConnector:
    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self._holder = ClientHolder(info)
        self.client = self._holder.client

    def test(self) -> str:
        scheme = self.client.ping()
        try:
            self.client.catalog(page_size=1, at_most=1)  # sync needs listing, which a pull-only account may lack
        except HullscanError as exc:
            if exc.code == "AUTH_FAILED" and self.info.credentials is None:
                raise HullscanError(f"{self.info.host} requires credentials to list its repositories; none are set",
                                    code="AUTH_REQUIRED") from None
            raise
        return f"{self.info.host} answers the registry API and lists its repositories (authentication: {scheme})"

    def namespace_of(self, repository: str) -> str:
        return first_segment(repository)

    def reference(self, repository: str, ref: str) -> str:
        return image_reference(self.info.host, repository, ref)

    def images(self) -> Iterator[RemoteImage]:
        repositories = self.client.catalog(page_size=PAGE)
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="hullscan-sync") as pool:
            for found in pool.map(self._repository, repositories):
                yield from found

    def _repository(self, repository: str) -> list[RemoteImage]:
        try:
            tags = self.client.list_tags(repository, page_size=PAGE)
        except HullscanError as exc:
            if exc.code == "NOT_FOUND":  # deleted between the catalog and now
                return []
            raise
        out = []
        for tag in tags:
            try:
                fetched = self.client.get_manifest(repository, tag)
            except HullscanError as exc:
                if exc.code == "NOT_FOUND":
                    continue
                raise
            size, platform = manifest_size(fetched.data)
            out.append(RemoteImage(self.namespace_of(repository), repository, tag, fetched.digest, size,
                                   fetched.media_type, platform=platform))
        return out

    def close(self) -> None:
        self._holder.close()
