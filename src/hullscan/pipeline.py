"""The one engine call: `run_scan(request, settings) -> ScanReport`.

A request names the target, the scan items and their options; the settings say where data lives and how long a
scan may take. The pipeline reads the image once (source -> layers -> cached per-layer facts -> merged facts),
runs every chosen item's detector over the merged facts, applies the severity filter and the ignore file, and
keeps the facts for rescans. It prints nothing, reads no environment variable and never exits the process: the
CLI, the service and the workers are thin callers of it.

`Engine` holds what outlives one scan (the layer cache, the scan store, the pool of worker processes), so a
long-running process creates one and runs many scans through it, from as many threads as it likes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from hullscan import heap, items
from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import Analyzer
from hullscan.cancel import CancelToken
from hullscan.detect import ReportFilter, match
from hullscan.errors import OptionError
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem
from hullscan.layers.cache import LayerCache, LayerStore, SharedLayerStore
from hullscan.layers.pool import WorkerPool, default_workers, worth_a_pool
from hullscan.model import Platform
from hullscan.oci.blobmemo import BlobMemo
from hullscan.oci.source import Limits
from hullscan.scan import LayerFlights, NoProgress, Progress, RegistryOptions, Scanner, ScanOptions
from hullscan.scanstore import ScanStore, ScanStoreBackend, StoredScan, finding_key, scan_key
from hullscan.settings import Settings


@dataclass
class ScanRequest:
    target: str  # a registry reference, docker-archive tar, OCI layout or root filesystem
    items: tuple[str, ...] = items.DEFAULT  # scan items to run ((): the inventory alone)
    options: dict[str, Any] = field(default_factory=dict)  # item name -> that item's options object
    platform: Platform | None = None
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    limits: Limits = field(default_factory=Limits)
    use_cache: bool = True
    filters: ReportFilter = field(default_factory=ReportFilter)
    list_files: bool = False  # the final file tree with sha256, in the report
    remember: bool = True  # keep the facts for `rescan` and base identification (when vulnerabilities ran)
    timeout: float | None = None  # seconds; None: the settings' scan_timeout
    kind: Literal["scan", "sbom"] = "scan"


@dataclass
class RescanChange:
    image: str
    digest: str
    total: int
    new: list[str]
    gone: list[str]


PoolMode = Literal["auto", "always", "never"]


class Engine:
    """What outlives one scan. `pool="auto"` starts worker processes only for a scan big enough to pay for them
    (a one-off CLI run); `"always"` starts them at once and keeps them for every scan (a service, a worker).

    `resident`: the process runs scan after scan (the service, a worker). The first time a scan succeeds with no
    other running, what the process then holds (modules, compiled rules, caches the first scan filled) is left out of
    later garbage collections (`hullscan.heap`): full collections over it cost re-scans 20-40 ms each."""

    def __init__(self, settings: Settings, *, pool: PoolMode = "auto", resident: bool = False) -> None:
        self.settings = settings
        self.cache: LayerStore | None = layer_store(settings)
        self.scans: ScanStoreBackend = ScanStore(settings.scans_dir)
        self.flights = LayerFlights()  # concurrent scans sharing a layer walk it once
        self.configs = BlobMemo()  # a re-scan of an unchanged registry image fetches only its manifest
        self._workers = default_workers() if settings.pool_workers is None else settings.pool_workers
        self._pool_mode: PoolMode = pool if self._workers > 0 else "never"
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()
        self._resident = resident
        self._running = 0  # scans in progress (resident engines: the heap is settled when none is)
        if self._pool_mode == "always":
            self._pool = WorkerPool(self._workers, parent_dir=settings.work_dir)

    @property
    def pool(self) -> WorkerPool | None:
        return self._pool

    def _pool_for(self, analyzers: list[Analyzer], walk_bytes: int) -> WorkerPool | None:
        if self._pool is not None or self._pool_mode != "auto" or not worth_a_pool(analyzers, walk_bytes):
            return self._pool
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self._workers, parent_dir=self.settings.work_dir)
        return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if isinstance(self.cache, SharedLayerStore):
            self.cache.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one scan ------------------------------------------------------------------------------------

    def scan(self, request: ScanRequest, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> ScanReport:
        with self._lock:
            self._running += 1
        try:
            report = self._scan(request, progress, cancel)
        finally:
            with self._lock:
                self._running -= 1
                quiet = self._running == 0
        if quiet and self._resident:  # reached only by a scan that succeeded
            heap.settle_collected()  # once per process; a scan starting meanwhile only waits for the GIL
        return report

    def _scan(self, request: ScanRequest, progress: Progress | None, cancel: CancelToken | None) -> ScanReport:
        progress = progress or NoProgress()
        cancel = (cancel or CancelToken()).with_deadline(request.timeout or self.settings.scan_timeout)
        bad = items.unknown(request.items)
        if bad:
            raise OptionError(f"unknown scan item {', '.join(bad)}; choose from {', '.join(items.NAMES)}")
        chosen = [(items.get(name), name) for name in items.NAMES if name in request.items]
        ctx = ItemContext(self.settings, cancel, progress.warning, self.scans, progress=progress,
                          use_cache=request.use_cache)
        options = {name: item.options(request.options.get(name)) for item, name in chosen}
        for item, name in chosen:
            cancel.check()
            item.prepare(options[name], ctx)

        analyzers = list(default_analyzers())
        for item, name in chosen:
            analyzers.extend(item.analyzers(options[name], ctx))
        if request.list_files:
            from hullscan.checks.files import file_hash_analyzer

            analyzers.append(file_hash_analyzer())
        scanner = Scanner(ScanOptions(
            platform=request.platform, limits=request.limits, workdir=self.settings.work_dir,
            registry=request.registry, analyzers=analyzers, cache=self.cache, use_cache=request.use_cache,
            pool=self._pool_for, layer_concurrency=self.settings.layer_concurrency, flights=self.flights,
            config_memo=self.configs))
        try:
            facts = scanner.scan(request.target, progress, cancel)
        finally:
            for warning in scanner.warnings:
                progress.warning(warning)

        ctx.read_private = lambda path: scanner.read_private(request.target, facts, path, cancel)
        report = ScanReport(facts=facts, kind=request.kind)
        for item, name in chosen:
            cancel.check()
            progress.phase(item.title)
            item.detect(report, options[name], ctx)
        report.scanners = [name for _, name in chosen]
        if request.remember and "vuln" in request.items:
            self._remember(report, progress)
        request.filters.apply(report)
        if request.list_files:
            from hullscan.checks.files import file_inventory

            report.file_inventory = [dataclasses.asdict(row) for row in file_inventory(facts, with_sha256=True)]
        return report

    def _remember(self, report: ScanReport, progress: Progress) -> None:
        """Keep the image facts so a newer database can be applied without downloading a layer."""
        built = report.database.built_at if report.database else ""
        stored = StoredScan(scan_key(report.facts), report.facts,
                            [finding_key(f) for f in report.vulnerabilities], built, _now())
        try:
            self.scans.save(stored)
        except OSError as exc:
            progress.warning(f"could not store the scan for rescan: {exc}")

    # -- rescans ---------------------------------------------------------------------------------------

    def rescan(self, references: list[str] | None = None) -> list[RescanChange]:
        """Re-evaluate stored scans (all, or those of `references`) against the current database: per image, the
        findings that are new and those that are gone since the last evaluation. No layer is downloaded."""
        from hullscan.vulndb.store import open_default

        store = open_default(self.settings.db_path)
        wanted = set(references or [])
        changes = []
        with store:
            for stored in self.scans.all():
                if wanted and stored.facts.reference not in wanted:
                    continue
                report = match(stored.facts, store)
                keys = {finding_key(f) for f in report.vulnerabilities}
                before = set(stored.finding_keys)
                changes.append(RescanChange(stored.facts.reference, stored.facts.manifest_digest, len(keys),
                                            [_described(k) for k in sorted(keys - before)],
                                            [_described(k) for k in sorted(before - keys)]))
                self.scans.save(StoredScan(stored.key, stored.facts, sorted(keys), store.info().built_at, _now()))
        return changes


def layer_store(settings: Settings) -> LayerStore | None:
    """The layer-facts cache the settings choose (`Settings.layer_cache`)."""
    backend = settings.layer_cache
    if backend == "postgres":
        url = settings.shared_store_url
        if url is None:
            raise OptionError("the postgres layer cache needs a PostgreSQL store_url (or database_url)")
        from hullscan.layers.pgcache import PostgresLayerStore  # SQLAlchemy only where a fleet needs it

        return PostgresLayerStore(url)
    return LayerCache(settings.cache_dir) if backend == "fs" else None


def run_scan(request: ScanRequest, settings: Settings, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> ScanReport:
    """One scan with an engine of its own (a process running many scans keeps an `Engine` instead)."""
    with Engine(settings) as engine:
        return engine.scan(request, progress, cancel)


def _described(key: str) -> str:
    parts = key.split("|")
    return f"{parts[0]} in {parts[2]}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


__all__ = ["Engine", "RescanChange", "ScanItem", "ScanRequest", "run_scan"]
