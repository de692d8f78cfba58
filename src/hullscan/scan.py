"""The pipeline for one image: source -> layers -> per-layer facts (cached) -> merged image facts."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import Analyzer
from hullscan.errors import LayerError, SourceError
from hullscan.layers.cache import LayerCache, default_cache_dir
from hullscan.layers.merge import merge
from hullscan.layers.pool import AnalysisPool, worker_count
from hullscan.layers.walker import LayerWalker
from hullscan.model import Descriptor, ImageFacts, LayerFacts, LayerInfo, Platform
from hullscan.oci.local import DockerArchiveSource, OCILayoutSource
from hullscan.oci.source import ImageSource, Limits


@dataclass
class RegistryOptions:
    username: str | None = None
    password: str | None = None
    insecure: bool = False
    ca_cert: Path | None = None
    docker_config: Path | None = None


@dataclass
class ScanOptions:
    platform: Platform | None = None
    limits: Limits = field(default_factory=Limits)
    cache_dir: Path | None = None
    use_cache: bool = True
    workdir: Path | None = None
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    analyzers: list[Analyzer] | None = None


class Progress(Protocol):
    """What the CLI shows while a scan runs; every method is optional to implement meaningfully."""

    def image_resolved(self, layers: list[LayerInfo]) -> None: ...

    def layer_started(self, layer: LayerInfo, cached: bool) -> None: ...

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None: ...

    def layer_finished(self, layer: LayerInfo) -> None: ...


class NoProgress:
    def image_resolved(self, layers: list[LayerInfo]) -> None:
        pass

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        pass

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None:
        pass

    def layer_finished(self, layer: LayerInfo) -> None:
        pass


def _split_tag(spec: str) -> tuple[str, str | None]:
    """`path[:tag]`: the shortest prefix at a colon that exists as a path is the path (tags may hold colons,
    as in `app.tar:repo/name:1.0`); a colon inside an existing path is part of the path."""
    if Path(spec).exists() or ":" not in spec:
        return spec, None
    for i, ch in enumerate(spec):
        if ch == ":" and Path(spec[:i]).exists():
            return spec[:i], spec[i + 1:] or None
    path, _, tag = spec.rpartition(":")
    return path, tag or None


def _sniff_tar(path: Path) -> str:
    try:
        with tarfile.open(path, "r:*") as tf:
            names = {n.lstrip("./") for n in tf.getnames()}
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f"{path} is neither a directory nor a readable tar archive: {exc}") from None
    if "manifest.json" in names:
        return "docker-archive"
    if "index.json" in names:
        return "oci"
    raise SourceError(f"{path} is a tar but neither a docker archive (manifest.json) nor an OCI layout (index.json)")


Target = ImageSource | Path


def open_target(target: str, options: ScanOptions) -> Target:
    """Decide what `target` names: a registry image, an archive, an OCI layout or a root filesystem.

    Explicit prefixes (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`, `rootfs:`, `docker://`,
    `registry:`) win; otherwise an existing path is sniffed, and anything else is a registry reference.
    """
    kind, _, rest = target.partition(":")
    if kind in ("oci", "oci-archive", "docker-archive", "dir", "rootfs") and rest and not rest.startswith("//"):
        spec = rest
    elif target.startswith("docker://") or kind == "registry":
        return _registry_source(target.split("://", 1)[1] if "://" in target else rest, options)
    else:
        spec, kind = target, ""
    path_text, tag = _split_tag(spec)
    path = Path(path_text)
    if not kind:
        if not path.exists():
            return _registry_source(target, options)
        if path.is_dir():
            kind = "oci" if (path / "index.json").is_file() and (path / "oci-layout").is_file() else "dir"
        else:
            kind = _sniff_tar(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if kind in ("dir", "rootfs"):
        if not path.is_dir():
            raise SourceError(f"{path} is not a directory")
        return path
    if kind == "docker-archive":
        return DockerArchiveSource(path, tag, options.limits)
    return OCILayoutSource(path, tag, options.limits)


def _registry_source(ref: str, options: ScanOptions) -> ImageSource:
    from hullscan.oci.registry_source import RegistrySource  # httpx and TLS set-up only when needed

    r = options.registry
    return RegistrySource.open(ref, username=r.username, password=r.password, docker_config=r.docker_config,
                               insecure=r.insecure, ca_cert=r.ca_cert, limits=options.limits)


class Scanner:
    """Runs the pipeline; one instance can scan many images and shares the layer cache."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.analyzers = options.analyzers if options.analyzers is not None else default_analyzers()
        cache_root = options.cache_dir or default_cache_dir()
        self.cache = LayerCache(cache_root) if options.use_cache else None

    def scan(self, target: str, progress: Progress | None = None) -> ImageFacts:
        opened = open_target(target, self.options)
        if isinstance(opened, Path):
            return self.scan_rootfs(opened, target)
        try:
            return self.scan_source(opened, progress)
        finally:
            opened.close()

    def _workdir(self) -> Path:
        base = self.options.workdir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="hullscan-", dir=base))

    def scan_rootfs(self, path: Path, label: str) -> ImageFacts:
        work = self._workdir()
        try:
            walker = LayerWalker(self.analyzers, self.options.limits, work)
            facts = walker.walk_dir(path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        layer = LayerInfo(0, Descriptor("application/x-directory", "", 0), "", f"root filesystem {path}")
        image = merge(label, [layer], [facts])
        image.platform = Platform("linux", "")
        return image

    def scan_source(self, source: ImageSource, progress: Progress | None = None) -> ImageFacts:
        progress = progress or NoProgress()
        resolved = source.resolve(self.options.platform)
        progress.image_resolved(resolved.layers)
        work = self._workdir()
        try:
            walker = LayerWalker(self.analyzers, self.options.limits, work)
            walker.pool = self._pool(walker, resolved.layers, work)
            try:
                all_facts = [self._layer(source, walker, layer, progress) for layer in resolved.layers]
            finally:
                if walker.pool is not None:
                    walker.pool.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        image = merge(resolved.reference, resolved.layers, all_facts)
        image.manifest_digest = resolved.manifest_digest
        image.config_digest = resolved.config_digest
        image.platform = resolved.platform
        image.config = resolved.config
        image.annotations = dict(resolved.annotations)
        return image

    def _pool(self, walker: LayerWalker, layers: list[LayerInfo], work: Path) -> AnalysisPool | None:
        """Worker processes for the heavy analyzers, when the layers left to walk are big enough to pay."""
        todo = sum(la.descriptor.size for la in layers
                   if self.cache is None or not self.cache.has(la.diff_id, walker.key))
        workers = worker_count(walker.analyzers, todo)
        return AnalysisPool(walker.analyzers, workers, work) if workers else None

    def _layer(self, source: ImageSource, walker: LayerWalker, layer: LayerInfo, progress: Progress) -> LayerFacts:
        if self.cache is not None:
            cached = self.cache.get(layer.diff_id, walker.key)
            if cached is not None:
                progress.layer_started(layer, True)
                progress.layer_finished(layer)
                return cached
        progress.layer_started(layer, False)
        on_bytes: Callable[[int], None] = lambda n: progress.layer_advanced(layer, n)  # noqa: E731
        stream = source.open_layer(layer)
        try:
            facts = walker.walk_tar(stream, layer.diff_id, layer.index, on_bytes)
        except LayerError:
            # A blob that fails to decompress may simply be corrupt in transit: when its digest is wrong,
            # that is the cause to report (and the one with the right remedy).
            drain = getattr(stream, "drain", None)
            if drain is not None:
                drain()
            raise
        finally:
            stream.close()
        if self.cache is not None:
            self.cache.put(facts)
        progress.layer_finished(layer)
        return facts
