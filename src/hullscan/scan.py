"""The pipeline for one image: source -> layers -> per-layer facts (cached) -> merged image facts."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import Analyzer
from hullscan.cancel import CancelToken
from hullscan.errors import HullscanError, LayerError, ScanStopped, SourceError
from hullscan.layers.cache import LayerCache, LayerStore, SharedLayerStore
from hullscan.layers.merge import merge
from hullscan.layers.pool import WorkerPool
from hullscan.layers.walker import LayerWalker
from hullscan.model import Descriptor, ImageFacts, LayerFacts, LayerInfo, Platform
from hullscan.oci.blobmemo import BlobMemo
from hullscan.oci.credentials import Credentials
from hullscan.oci.local import DockerArchiveSource, OCILayoutSource
from hullscan.oci.source import ImageSource, Limits

if TYPE_CHECKING:
    from hullscan.oci.registry import TransferPolicy


@dataclass
class RegistryOptions:
    username: str | None = None
    password: str | None = None
    insecure: bool = False
    ca_cert: Path | None = None
    docker_config: Path | None = None
    # Where HULLSCAN_USERNAME/PASSWORD and DOCKER_CONFIG are looked up: the CLI passes its environment; a
    # service passes nothing, so one user's credentials never leak into another's scan.
    environ: Mapping[str, str] = field(default_factory=dict)
    use_docker_config: bool = True
    transfer: TransferPolicy | None = None  # deadlines and minimum rate [default: the client's]
    # Given whole, these are used as they are and nothing is looked up (a service's per-scan credentials).
    credentials: Credentials | None = None


PoolProvider = Callable[[list[Analyzer], int], WorkerPool | None]


class _Flight:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0  # the walker and those waiting for it


class LayerFlights:
    """One walk of a layer at a time in a process: concurrent scans of images that share a base layer would
    otherwise all miss the cache and all walk it. The others wait, then read the first one's cache entry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, str], _Flight] = {}

    @contextmanager
    def hold(self, key: tuple[str, str], cancel: CancelToken) -> Iterator[None]:
        with self._lock:
            flight = self._flights.setdefault(key, _Flight())
            flight.users += 1
        try:
            while not flight.lock.acquire(timeout=0.25):
                cancel.check()  # a stopped or timed-out scan does not wait for another's walk
            try:
                yield
            finally:
                flight.lock.release()
        finally:
            with self._lock:
                flight.users -= 1
                if not flight.users:
                    del self._flights[key]

    def waiting(self) -> int:
        """Scans waiting for another's walk right now."""
        with self._lock:
            return sum(f.users - 1 for f in self._flights.values())


@dataclass
class ScanOptions:
    platform: Platform | None = None
    limits: Limits = field(default_factory=Limits)
    cache_dir: Path | None = None  # a filesystem layer cache here, unless `cache` names a store
    use_cache: bool = True
    workdir: Path | None = None
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    analyzers: list[Analyzer] | None = None
    cache: LayerStore | None = None
    # Given the analyzers and the compressed bytes left to walk, the worker pool to use (None: analyse here).
    pool: PoolProvider | None = None
    layer_concurrency: int = 1  # layers fetched, inflated and walked at once
    flights: LayerFlights | None = None  # shared by the scans of a process (see Engine)
    config_memo: BlobMemo | None = None  # registry image configs already fetched (see Engine, oci/blobmemo.py)


class Progress(Protocol):
    """What a caller shows while a scan runs. Layer callbacks may come from several threads at once."""

    def phase(self, name: str) -> None:
        """A step of the scan other than reading layers starts (opening the database, each item's checks)."""

    def phase_progress(self, detail: str, done: float | None = None, total: float | None = None,
                       unit: str = "") -> None:
        """The current phase says what it is doing and how far it is (`done` of `total` `unit`s, when it knows)."""

    def warning(self, message: str) -> None:
        """Something went wrong without failing the scan (a stale database, a cache that cannot be written)."""

    def image_resolved(self, layers: list[LayerInfo]) -> None: ...

    def layer_started(self, layer: LayerInfo, cached: bool) -> None: ...

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None: ...

    def layer_finished(self, layer: LayerInfo) -> None: ...


class NoProgress:
    """Shows nothing; subclass it to show only some events."""

    def phase(self, name: str) -> None:
        pass

    def phase_progress(self, detail: str, done: float | None = None, total: float | None = None,
                       unit: str = "") -> None:
        pass

    def warning(self, message: str) -> None:
        pass

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


def open_target(target: str, options: ScanOptions, *, on_wait: Callable[[str], None] | None = None,
                sleep: Callable[[float], None] | None = None) -> Target:
    """Decide what `target` names: a registry image, an archive, an OCI layout or a root filesystem.

    Explicit prefixes (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`, `rootfs:`, `docker://`,
    `registry:`, and `http://` or `https://`, which also fix how the registry is reached) win; otherwise an
    existing path is sniffed, and anything else is a registry reference.
    """
    kind, _, rest = target.partition(":")
    if kind in ("oci", "oci-archive", "docker-archive", "dir", "rootfs") and rest and not rest.startswith("//"):
        spec = rest
    elif kind in ("http", "https") and rest.startswith("//"):
        # A registry written as a URL (http://registry:5000/team/app:1.0): the scheme says how to reach it.
        return _registry_source(rest[2:].rstrip("/"), options, on_wait, sleep, scheme=kind)
    elif target.startswith("docker://") or kind == "registry":
        return _registry_source(target.split("://", 1)[1] if "://" in target else rest, options, on_wait, sleep)
    else:
        spec, kind = target, ""
    path_text, tag = _split_tag(spec)
    path = Path(path_text)
    if not kind:
        if not path.exists():
            return _registry_source(target, options, on_wait, sleep)
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


def _registry_source(ref: str, options: ScanOptions, on_wait: Callable[[str], None] | None,
                     sleep: Callable[[float], None] | None, scheme: str | None = None) -> ImageSource:
    from hullscan.oci.registry_source import RegistrySource  # httpx and TLS set-up only when needed

    r = options.registry
    extra: dict[str, Any] = {"on_wait": on_wait}
    if r.transfer is not None:
        extra["transfer"] = r.transfer
    if sleep is not None:  # the scan's own clock: a stop or its deadline ends a wait for the registry at once
        extra["sleep"] = sleep
    return RegistrySource.open(ref, username=r.username, password=r.password, docker_config=r.docker_config,
                               insecure=r.insecure, ca_cert=r.ca_cert, limits=options.limits, env=r.environ,
                               use_docker_config=r.use_docker_config, credentials=r.credentials, scheme=scheme,
                               config_memo=options.config_memo, **extra)


SIGNAL_POLL = 0.25  # seconds the main thread waits on layer threads at a time (see Scanner._walk_all)


class Scanner:
    """Source -> layers -> per-layer facts (cached) -> merged image facts; one instance can scan many images."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.analyzers = options.analyzers if options.analyzers is not None else default_analyzers()
        cache = options.cache
        if cache is None and options.use_cache and options.cache_dir is not None:
            cache = LayerCache(options.cache_dir)
        self.cache: LayerStore | None = cache if options.use_cache else None
        self.warnings: list[str] = []  # what went wrong without failing the scan (an unwritable cache, ...)
        self.worker_pids: set[int] = set()  # processes that analysed files (see layers/pool.py)

    def scan(self, target: str, progress: Progress | None = None, cancel: CancelToken | None = None) -> ImageFacts:
        cancel = cancel or CancelToken()
        shown = progress or NoProgress()
        opened = open_target(target, self.options, on_wait=shown.phase, sleep=cancel.sleep)
        if isinstance(opened, Path):
            return self.scan_rootfs(opened, target, cancel)
        try:
            return self.scan_source(opened, progress, cancel)
        finally:
            opened.close()

    def _workdir(self) -> Path:
        base = self.options.workdir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="hullscan-", dir=base))

    def _walker(self, work: Path, cancel: CancelToken) -> LayerWalker:
        walker = LayerWalker(self.analyzers, self.options.limits, work)
        walker.cancel = cancel
        return walker

    def scan_rootfs(self, path: Path, label: str, cancel: CancelToken | None = None) -> ImageFacts:
        work = self._workdir()
        try:
            facts = self._walker(work, cancel or CancelToken()).walk_dir(path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        layer = LayerInfo(0, Descriptor("application/x-directory", "", 0), "", f"root filesystem {path}")
        image = merge(label, [layer], [facts])
        image.platform = Platform("linux", "")
        return image

    def scan_source(self, source: ImageSource, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> ImageFacts:
        progress = progress or NoProgress()
        cancel = cancel or CancelToken()
        resolved = source.resolve(self.options.platform)
        cancel.check()
        progress.image_resolved(resolved.layers)
        work = self._workdir()
        try:
            walker = self._walker(work, cancel)
            walker.pool = self._pool(walker, resolved.layers)
            all_facts = self._layers(source, walker, resolved.layers, progress, cancel)
            self.worker_pids |= walker.worker_pids
        finally:
            shutil.rmtree(work, ignore_errors=True)
        image = merge(resolved.reference, resolved.layers, all_facts)
        image.manifest_digest = resolved.manifest_digest
        image.config_digest = resolved.config_digest
        image.platform = resolved.platform
        image.config = resolved.config
        image.config_size = resolved.config_size
        image.annotations = dict(resolved.annotations)
        return image

    def _layers(self, source: ImageSource, walker: LayerWalker, layers: list[LayerInfo], progress: Progress,
                cancel: CancelToken) -> list[LayerFacts]:
        """Every layer's facts, in layer order: cached ones read here, the others walked, up to
        `layer_concurrency` at once."""
        out: list[LayerFacts | None] = []
        for layer in layers:
            cancel.check()
            # On this thread: reading an entry is all Python (decompress aside), so threads would only take turns.
            out.append(self._cached(layer, walker, progress) if self.cache is not None else None)
        todo = [i for i, facts in enumerate(out) if facts is None]
        walked = self._walk_all(source, walker, [layers[i] for i in todo], progress, cancel)
        for i, facts in zip(todo, walked, strict=True):
            out[i] = facts
        return [facts for facts in out if facts is not None]

    def _walk_all(self, source: ImageSource, walker: LayerWalker, layers: list[LayerInfo], progress: Progress,
                  cancel: CancelToken) -> list[LayerFacts]:
        width = max(1, min(self.options.layer_concurrency, len(layers)))
        if width == 1:
            out = []
            for layer in layers:
                cancel.check()
                out.append(self._layer(source, walker, layer, progress))
            return out
        # A failing layer stops its siblings (through the walker's token); its own error is the one reported.
        siblings = _Siblings(cancel)
        walker.cancel = siblings
        try:
            with ThreadPoolExecutor(width, thread_name_prefix="hullscan-layer") as pool:
                futures = [pool.submit(self._sibling, source, walker, layer, progress, siblings) for layer in layers]
                try:
                    pending = set(futures)
                    while pending:
                        # In short waits: a signal the kernel hands to another thread only flags it for this one,
                        # whose handler (SIGTERM, Ctrl-C) runs once it is back in Python, not while it blocks.
                        pending = wait(pending, timeout=SIGNAL_POLL).not_done
                except BaseException:  # interrupted (SIGTERM, Ctrl-C): stop the layers instead of waiting for them
                    siblings.stop("the scan was interrupted")
                    raise
        finally:
            walker.cancel = cancel
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, _SiblingFailed)), errors[0])
        return [f.result() for f in futures]

    def _sibling(self, source: ImageSource, walker: LayerWalker, layer: LayerInfo, progress: Progress,
                 siblings: _Siblings) -> LayerFacts:
        siblings.check()
        try:
            return self._layer(source, walker, layer, progress)
        except BaseException:
            siblings.stop("another layer failed")
            raise

    def read_private(self, target: str, image: ImageFacts, path: str,
                     cancel: CancelToken | None = None) -> dict[str, Any] | None:
        """The private facts (FileFacts.private: password hashes and the like, never cached) of one file of the
        final `image`, by reading again the layer that holds it, with only the analyzers that claim that file.
        None when the file is not in the image, or `target` now names another image (a moved tag)."""
        node = next(((e, i) for e, i in image.files if e.path == path), None)
        if node is None:
            return None
        entry, index = node
        analyzers = [a for a in self.analyzers if a.claims(path, entry)]
        if not analyzers:
            return None
        opened = open_target(target, self.options)
        work = self._workdir()
        try:
            walker = LayerWalker(analyzers, self.options.limits, work)
            walker.cancel = cancel or CancelToken()
            if isinstance(opened, Path):
                facts = walker.walk_dir(opened)
            else:
                resolved = opened.resolve(self.options.platform)
                if resolved.manifest_digest != image.manifest_digest or index >= len(resolved.layers):
                    return None
                layer = resolved.layers[index]
                stream = opened.open_layer(layer)
                try:
                    facts = walker.walk_tar(stream, layer.diff_id, layer.index)
                finally:
                    stream.close()
        finally:
            if not isinstance(opened, Path):
                opened.close()
            shutil.rmtree(work, ignore_errors=True)
        found = facts.files.get(path)
        return dict(found.private) if found is not None else None

    def _pool(self, walker: LayerWalker, layers: list[LayerInfo]) -> WorkerPool | None:
        """Worker processes for the heavy analyzers, when the provider thinks the walk left is worth it."""
        if self.options.pool is None:
            return None
        todo = sum(la.descriptor.size for la in layers
                   if self.cache is None or not self.cache.has(la.diff_id, walker.key))
        return self.options.pool(walker.analyzers, todo)

    def _layer(self, source: ImageSource, walker: LayerWalker, layer: LayerInfo, progress: Progress) -> LayerFacts:
        """A layer the cache did not have when the scan looked (see _layers)."""
        if self.cache is None or not layer.diff_id:
            return self._walk(source, walker, layer, progress)
        with self._flight(layer.diff_id, walker):
            # Whoever held the layer before us has cached it by now (unless its walk failed).
            cached = self._cached(layer, walker, progress)
            return cached if cached is not None else self._walk(source, walker, layer, progress)

    @contextmanager
    def _flight(self, diff_id: str, walker: LayerWalker) -> Iterator[None]:
        """One walk of a layer at a time: among this process's scans, then (a shared store) across processes."""
        with ExitStack() as held:
            if self.options.flights is not None:
                held.enter_context(self.options.flights.hold((diff_id, walker.key), walker.cancel))
            if isinstance(self.cache, SharedLayerStore):
                held.enter_context(self.cache.flight(diff_id, walker.key, walker.cancel))
            yield

    def _cached(self, layer: LayerInfo, walker: LayerWalker, progress: Progress) -> LayerFacts | None:
        assert self.cache is not None
        cached = self.cache.get(layer.diff_id, walker.key)
        if cached is not None:
            progress.layer_started(layer, True)
            progress.layer_finished(layer)
        return cached

    def _walk(self, source: ImageSource, walker: LayerWalker, layer: LayerInfo, progress: Progress) -> LayerFacts:
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
            try:
                self.cache.put(facts)
            except HullscanError as exc:  # the scan itself succeeded: keep its result, say what was not kept
                self.warnings.append(f"layer {layer.index + 1} not cached: {exc.detail}")
        progress.layer_finished(layer)
        return facts


class _SiblingFailed(ScanStopped):
    pass


class _Siblings(CancelToken):
    """The scan's token, plus a stop of its own for sibling layers when one of them fails."""

    def __init__(self, parent: CancelToken) -> None:
        super().__init__()
        self.parent = parent

    def check(self) -> None:
        self.parent.check()
        if self.stopped:
            raise _SiblingFailed("another layer of the image failed")

    @property
    def expired(self) -> bool:
        return self.parent.expired or self.stopped

    def remaining(self) -> float | None:
        return self.parent.remaining()
