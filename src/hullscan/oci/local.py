"""Local image sources: OCI layouts (directory or tar) and `docker save` archives."""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path
from typing import IO, Any

from hullscan import safejson
from hullscan.errors import LimitExceeded, ManifestError, NotFoundError, SourceError
from hullscan.layers.paths import PathEscape, normalize
from hullscan.model import Descriptor, LayerInfo, Platform
from hullscan.oci import manifest as mf
from hullscan.oci import media
from hullscan.oci.source import BlobStream, Limits, ResolvedImage, VerifyingReader, hasher_for

MAX_JSON = 32 << 20  # manifests, indexes and configs are small; anything bigger is hostile
MAX_LINKS = 16  # links followed inside an archive before giving up (loops)


class _Files:
    """Read-only access to files of a directory or of a tar, by relative path, never escaping it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_file():
            try:
                self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
                for m in self._tar.getmembers():
                    try:
                        self._members[normalize(m.name)] = m
                    except PathEscape:
                        continue  # a member outside the archive root can never be a blob we look up
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"{path} is not a readable tar archive: {exc}") from None
        elif not path.is_dir():
            raise SourceError(f"{path} does not exist")

    def exists(self, rel: str) -> bool:
        try:
            if self._tar is not None:
                self._regular(rel)
            else:
                self._safe(rel)
        except NotFoundError:
            return False
        return True

    def size(self, rel: str) -> int:
        if self._tar is not None:
            return self._regular(rel).size
        return self._safe(rel).stat().st_size

    def open(self, rel: str) -> IO[bytes]:
        if self._tar is not None:
            f = self._tar.extractfile(self._regular(rel))
            if f is None:
                raise SourceError(f"{rel} in {self.path} is not a regular file")
            return f
        return self._safe(rel).open("rb")

    def read(self, rel: str, limit: int = MAX_JSON) -> bytes:
        with self.open(rel) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ManifestError(f"{rel} is larger than {limit:,} bytes")
        return data

    def _member(self, rel: str) -> tarfile.TarInfo:
        try:
            return self._members[normalize(rel)]
        except (KeyError, PathEscape):
            raise NotFoundError(f"{rel} is missing from {self.path}") from None

    def _regular(self, rel: str) -> tarfile.TarInfo:
        """The regular file a name stands for. Links are followed inside the archive only (older
        `docker save` links a layer that two images share); tarfile's own lookup would recurse forever
        on a loop and fail with a KeyError on a link to a missing member."""
        m = self._member(rel)
        for _ in range(MAX_LINKS):
            if m.isreg():
                return m
            if not (m.issym() or m.islnk()):
                raise SourceError(f"{rel} in {self.path} is not a regular file")
            target = m.linkname
            if m.issym():
                target = posixpath.join(posixpath.dirname(normalize(m.name)), target)
            m = self._member(target)
        raise SourceError(f"{rel} in {self.path}: too many levels of links")

    def _safe(self, rel: str) -> Path:
        try:
            clean = normalize(rel)
        except PathEscape:
            raise SourceError(f"path {rel!r} escapes {self.path}") from None
        p = self.path / clean
        try:
            resolved = p.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise SourceError(f"{rel} in {self.path} cannot be resolved: {exc}") from None
        if not resolved.is_relative_to(self.path.resolve()):
            raise SourceError(f"{rel} resolves outside {self.path}")
        if not resolved.is_file():
            raise NotFoundError(f"{rel} is missing from {self.path}")
        return resolved

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _blob_path(digest: str) -> str:
    hasher_for(digest)  # validates algorithm and hex, so the digest is safe as a path
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


class OCILayoutSource:
    """An OCI image layout, as a directory or packed in a tar (`oci-archive`)."""

    def __init__(self, path: Path, tag: str | None = None, limits: Limits | None = None) -> None:
        self.files = _Files(path)
        self.tag = tag
        self.limits = limits or Limits()
        self.label = f"{path}:{tag}" if tag else str(path)
        if not self.files.exists("index.json"):
            self.files.close()
            raise SourceError(f"{path} is not an OCI layout (no index.json)")

    def _read_blob(self, desc: Descriptor, limit: int = MAX_JSON) -> bytes:
        if desc.size > limit:
            raise ManifestError(f"blob {desc.digest} claims {desc.size:,} bytes, over {limit:,}")
        reader = VerifyingReader(self.files.open(_blob_path(desc.digest)), desc, limit, "blob")
        chunks = []
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def resolve(self, platform: Platform | None) -> ResolvedImage:
        index = mf.load_json(self.files.read("index.json"), "index.json")
        entries = index.get("manifests")
        if not isinstance(entries, list) or not entries:
            raise ManifestError("index.json lists no manifests")
        number, chosen = self._pick(entries)
        desc = mf._descriptor(chosen, f"index.json entry {number}")
        doc = mf.load_json(self._read_blob(desc), f"manifest {desc.digest}")
        mt = mf.detect_media_type(doc, desc.media_type)
        mf.check_not_schema1(mt)
        if mt in media.INDEXES:
            desc = mf.choose_platform(doc, platform)
            doc = mf.load_json(self._read_blob(desc), f"manifest {desc.digest}")
            mt = mf.detect_media_type(doc, desc.media_type)
            if mt in media.INDEXES:
                raise ManifestError("nested indexes are not supported")
        return mf.resolve_manifest(self.label, desc.digest, doc, mt, self._read_blob, self.limits)

    def _pick(self, entries: list[Any]) -> tuple[int, Any]:
        if self.tag is None:
            if len(entries) == 1:
                return 0, entries[0]
            names = [self._ref_name(e, i) or "?" for i, e in enumerate(entries)]
            raise SourceError(f"the layout holds {len(entries)} images; name one as PATH:TAG "
                              f"(tags: {', '.join(names)})")
        for i, e in enumerate(entries):
            if self._ref_name(e, i) == self.tag:
                return i, e
        raise NotFoundError(f"tag {self.tag!r} is not in the layout")

    @staticmethod
    def _ref_name(entry: Any, index: int) -> str:
        """The tag an index.json entry carries (its ref.name annotation); a malformed entry is refused."""
        return mf._descriptor(entry, f"index.json entry {index}").annotations.get(
            "org.opencontainers.image.ref.name", "")

    def open_layer(self, layer: LayerInfo) -> BlobStream:
        d = layer.descriptor
        return VerifyingReader(self.files.open(_blob_path(d.digest)), d, self.limits.max_layer_size)

    def close(self) -> None:
        self.files.close()


class _Limited:
    """A stream cut at a byte limit (for archives, whose layers carry no blob digest)."""

    def __init__(self, raw: IO[bytes], limit: int, what: str) -> None:
        self._raw, self._limit, self._what, self.count = raw, limit, what, 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.count += len(data)
        if self.count > self._limit:
            raise LimitExceeded(f"{self._what} is larger than {self._limit:,} bytes", code="LAYER_TOO_LARGE")
        return data

    def close(self) -> None:
        self._raw.close()


def _repo_tags(entry: dict[str, Any], index: int) -> list[str]:
    tags = entry.get("RepoTags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SourceError(f"manifest.json entry {index}: RepoTags is not a list of strings")
    return tags


class DockerArchiveSource:
    """A `docker save` tar: manifest.json naming a config and layer tars (diff_ids are verified)."""

    def __init__(self, path: Path, tag: str | None = None, limits: Limits | None = None) -> None:
        self.files = _Files(path)
        self.tag = tag
        self.limits = limits or Limits()
        self.path = path
        self._chosen = ""

    def resolve(self, platform: Platform | None) -> ResolvedImage:
        doc = None
        if self.files.exists("manifest.json"):
            try:
                doc = safejson.loads(self.files.read("manifest.json"), what=f"manifest.json in {self.path}")
            except safejson.DocumentError as exc:
                raise SourceError(str(exc)) from None
        if not isinstance(doc, list) or not doc:
            raise SourceError(f"{self.path} is not a docker archive (no manifest.json)")
        for i, e in enumerate(doc):
            if not isinstance(e, dict):
                raise SourceError(f"manifest.json entry {i} in {self.path} is not an object")
        index, entry = self._pick(doc)
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise SourceError(f"the manifest.json entry in {self.path} lacks Config or Layers")
        if not all(isinstance(n, str) for n in layer_names):
            raise SourceError(f"the manifest.json entry in {self.path}: Layers is not a list of file names")
        descs = [Descriptor(media.DOCKER_LAYER, "", self.files.size(n), {"path": n}) for n in layer_names]
        mf.check_limits(descs, self.limits)
        raw_config = self.files.read(config_name)
        config = mf.load_json(raw_config, "image config")
        found = mf.check_config(config)
        if platform is not None and (platform.architecture, platform.os) != (found.architecture, found.os):
            raise SourceError(f"the archive holds a {found} image, not {platform}")
        layers = mf.layers_from_config(config, descs)
        tags = _repo_tags(entry, index)
        reference = self._chosen if self._chosen else tags[0] if tags else str(self.path)
        h = hasher_for("sha256:" + "0" * 64)
        h.update(raw_config)
        return ResolvedImage(reference, "", media.DOCKER_MANIFEST, f"sha256:{h.hexdigest()}", config, found, layers)

    def _pick(self, doc: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        if self.tag is None:
            if len(doc) > 1:
                tags = [t for i, e in enumerate(doc) for t in _repo_tags(e, i)]
                raise SourceError(f"the archive holds {len(doc)} images; name one as PATH:TAG "
                                  f"(tags: {', '.join(tags)})")
            return 0, doc[0]
        # `name` means `name:latest`, as everywhere in Docker
        wanted = [self.tag] if ":" in self.tag.rsplit("/", 1)[-1] else [self.tag, f"{self.tag}:latest"]
        for i, e in enumerate(doc):
            for tag in wanted:
                if tag in _repo_tags(e, i):
                    self._chosen = tag
                    return i, e
        raise NotFoundError(f"{self.tag!r} is not in the archive")

    def open_layer(self, layer: LayerInfo) -> BlobStream:
        path = layer.descriptor.annotations["path"]
        return _Limited(self.files.open(path), self.limits.max_layer_size, f"layer {path}")

    def close(self) -> None:
        self.files.close()
