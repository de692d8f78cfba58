"""Getting the vulnerability database: download from the OSV bucket, or carry it through a registry.

`update_database` fetches `<base>/<Ecosystem>/all.zip` for each ecosystem with conditional requests (the
ETag and Last-Modified of every download are remembered in a side file next to the cached zip, under
`<db dir>/osv-cache/`), retries throttling, server errors and dropped connections with backoff, treats a
404 as "no data for that ecosystem" (a warning), then rebuilds the database atomically. When every zip is
unchanged since the database was built, nothing is rebuilt: only its `updated_at` is refreshed.

`push_database` / `pull_database` carry the database file as an OCI artifact (an image manifest whose config
is CONFIG_MEDIA_TYPE and whose single layer is the file compressed with zstd) through any registry, for
air-gapped fleets. A pull verifies the layer digest and size, the digest of the decompressed file and its
schema version before swapping it in.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import zstandard

from hullscan import __version__, safejson
from hullscan.errors import DatabaseError, HullscanError
from hullscan.model import Descriptor
from hullscan.oci import media
from hullscan.oci.credentials import resolve_credentials
from hullscan.oci.reference import Reference, parse_reference
from hullscan.oci.registry import RegistryClient
from hullscan.vulndb.cverecords import CveImportStats, CveRecord, iter_cve_path
from hullscan.vulndb.epss import load_epss
from hullscan.vulndb.model import Advisory, DatabaseInfo
from hullscan.vulndb.osv import ImportStats, _records_from_bytes, iter_zip, load_kev
from hullscan.vulndb.sources import DEFAULT_OSV_URL, DataSources
from hullscan.vulndb.store import (
    SCHEMA_VERSION,
    BuildResult,
    ChangeCounts,
    EnrichResult,
    Store,
    advisory_ids,
    advisory_versions,
    apply_changes,
    build_from_paths,
    enrich_database,
    install,
    parse_time,
    refresh,
    swap_lock,
    temp_path,
    withdrawn_ids,
)

DEFAULT_BASE_URL = DEFAULT_OSV_URL  # settings: vulndb.sources
# Every ecosystem hullscan detects, spelled as OSV's bucket folders. CBL-Mariner's data is published as
# "Mariner" and, since the rename, "Azure Linux": both are asked for, a missing one is only a warning.
DEFAULT_ECOSYSTEMS: tuple[str, ...] = (
    "Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard", "Red Hat", "Rocky Linux", "AlmaLinux", "SUSE",
    "openSUSE", "Photon OS", "Mariner", "Azure Linux",
    "PyPI", "npm", "Go", "Maven", "crates.io", "RubyGems", "NuGet", "Packagist", "Bitnami",
)
CACHE_DIRNAME = "osv-cache"
USER_AGENT = f"hullscan/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 256 * 1024

CONFIG_MEDIA_TYPE = "application/vnd.hullscan.db.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.hullscan.db.layer.v1+zstd"
ARTIFACT_TYPE = CONFIG_MEDIA_TYPE
MAX_CONFIG_SIZE = 1 << 20
MAX_DB_SIZE = 64 << 30


def download_failed(detail: str) -> HullscanError:
    return DatabaseError(detail, code="DB_DOWNLOAD_FAILED")


# -- downloads ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        given = _retry_after(retry_after)
        if given is not None:
            return min(given, self.max_retry_after)
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay + random.uniform(0, delay / 10)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


class DownloadProgress(Protocol):
    def started(self, ecosystem: str, total: int | None) -> None: ...

    def advanced(self, ecosystem: str, received: int) -> None: ...

    def finished(self, ecosystem: str, status: str) -> None: ...


class NoProgress:
    def started(self, ecosystem: str, total: int | None) -> None:
        pass

    def advanced(self, ecosystem: str, received: int) -> None:
        pass

    def finished(self, ecosystem: str, status: str) -> None:
        pass


@dataclass
class Download:
    ecosystem: str
    url: str
    status: str  # downloaded | not-modified | missing
    path: Path | None = None
    size: int = 0
    sha256: str = ""
    etag: str = ""
    last_modified: str = ""


_SAFE_DIR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


def _cache_folder(cache_dir: Path, ecosystem: str) -> Path:
    name = ecosystem if _SAFE_DIR.match(ecosystem) else quote(ecosystem, safe="")
    return cache_dir / name


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _Retryable(f"the download is not a valid zip ({exc})") from None


class Downloader:
    """Fetches files into `cache_dir`, conditionally (ETag / Last-Modified of the previous download), e.g.
    `<base>/<ecosystem>/all.zip` into `cache_dir/<ecosystem>/all.zip`."""

    def __init__(self, base_url: str, cache_dir: Path, *, retry: Retry | None = None, timeout: float = 120.0,
                 progress: DownloadProgress | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise download_failed(f"the base URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.cache_dir = cache_dir
        self.retry = retry or Retry()
        self.progress: DownloadProgress = progress or NoProgress()
        self._sleep = sleep
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 20.0)), follow_redirects=True,
                                  headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                                  transport=transport)
        self.requests = 0  # for tests and metrics
        self.bytes = 0  # bytes received in answer bodies
        self._counting = threading.Lock()  # get_bytes runs in several threads

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url_for(self, ecosystem: str, name: str = "all.zip") -> str:
        return f"{self.base_url}/{quote(ecosystem, safe='')}/{quote(name, safe='')}"

    def fetch(self, ecosystem: str) -> Download:
        return self.fetch_url(ecosystem, self.url_for(ecosystem), _cache_folder(self.cache_dir, ecosystem), "all.zip",
                              _check_zip)

    def fetch_url(self, label: str, url: str, folder: Path, filename: str,
                  check: Callable[[Path], None] | None = None) -> Download:
        """`url` into `folder/filename`, conditionally; `check` validates a new download (raise _Retryable)."""
        if not url.startswith(("http://", "https://")):
            raise download_failed(f"{url!r} is not an http(s) URL")
        path, meta_path = folder / filename, folder / f"{filename}.json"
        cached = self._cached_meta(meta_path, path, url)
        result = self._get(label, url, folder, path, cached, check)
        if result.status == "not-modified" and cached is not None:
            sha = _sha256_file(path)
            if sha != cached.get("sha256"):  # the cached copy changed under us: fetch it whole
                result = self._get(label, url, folder, path, None, check)
            else:
                result.path, result.size, result.sha256 = path, path.stat().st_size, sha
                result.etag, result.last_modified = cached.get("etag", ""), cached.get("last_modified", "")
        if result.status == "downloaded":
            meta = {"url": url, "etag": result.etag, "last_modified": result.last_modified, "sha256": result.sha256,
                    "size": result.size, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            meta_path.write_text(json.dumps(meta, indent=2))
        self.progress.finished(label, result.status)
        return result

    def get_bytes(self, url: str, max_size: int = 32 << 20) -> bytes | None:
        """A small file, unconditionally (retried like the rest); None for a 404."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._counting:
                    self.requests += 1
                try:
                    resp = self._http.get(url)
                except httpx.TransportError as exc:
                    raise _Retryable(f"{type(exc).__name__}: {exc or 'connection dropped'}",
                                     connect=isinstance(exc, httpx.ConnectError)) from None
                if resp.status_code == 404:
                    return None
                if resp.status_code in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {resp.status_code}", resp.headers.get("retry-after"))
                if resp.status_code != 200:
                    raise download_failed(f"{url} answered HTTP {resp.status_code}")
                if len(resp.content) > max_size:
                    raise download_failed(f"{url} is larger than {max_size:,} bytes")
                with self._counting:
                    self.bytes += len(resp.content)
                return resp.content
            except _Retryable as exc:
                if attempt >= (min(2, self.retry.attempts) if exc.connect else self.retry.attempts):
                    raise download_failed(f"{url}: {exc.reason} (after {attempt} attempts)") from None
                self._sleep(self.retry.delay(attempt, exc.retry_after))

    @staticmethod
    def _cached_meta(meta_path: Path, path: Path, url: str) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            meta = safejson.loads(meta_path.read_bytes(), what=str(meta_path))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("url") == url else None

    def _get(self, label: str, url: str, folder: Path, path: Path, cached: dict[str, Any] | None,
             check: Callable[[Path], None] | None) -> Download:
        headers: dict[str, str] = {}
        if cached is not None:
            if cached.get("etag"):
                headers["If-None-Match"] = str(cached["etag"])
            if cached.get("last_modified"):
                headers["If-Modified-Since"] = str(cached["last_modified"])
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(label, url, folder, path, headers, check)
            except _Retryable as exc:
                # A refused or unresolvable connection is unlikely to heal within seconds: try it twice only.
                if attempt >= (min(2, self.retry.attempts) if exc.connect else self.retry.attempts):
                    raise download_failed(f"{url}: {exc.reason} (after {attempt} attempts)") from None
                self._sleep(self.retry.delay(attempt, exc.retry_after))

    def _attempt(self, label: str, url: str, folder: Path, path: Path, headers: dict[str, str],
                 check: Callable[[Path], None] | None) -> Download:
        self.requests += 1
        try:
            with self._http.stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                if status == 304:
                    return Download(label, url, "not-modified")
                if status == 404:
                    return Download(label, url, "missing")
                if status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {status}", resp.headers.get("retry-after"))
                if status != 200:
                    raise download_failed(f"{url} answered HTTP {status}")
                return self._save(label, url, folder, path, resp, check)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise download_failed(f"{url}: {exc}") from None
            raise _Retryable(f"{type(exc).__name__}: {exc or 'connection dropped'}",
                             connect=isinstance(exc, httpx.ConnectError)) from None

    def _save(self, label: str, url: str, folder: Path, path: Path, resp: httpx.Response,
              check: Callable[[Path], None] | None) -> Download:
        folder.mkdir(parents=True, exist_ok=True)
        length = resp.headers.get("content-length")
        total = int(length) if length and length.isdecimal() else None
        self.progress.started(label, total)
        h = hashlib.sha256()
        received = 0
        fd, part_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        part = Path(part_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in resp.iter_raw(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    self.progress.advanced(label, received)
            self.bytes += received
            if total is not None and received != total:
                raise _Retryable(f"the download stopped after {received:,} of {total:,} bytes")
            if check is not None:
                check(part)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return Download(label, url, "downloaded", path, received, "sha256:" + h.hexdigest(),
                        resp.headers.get("etag", ""), resp.headers.get("last-modified", ""))


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: str | None = None, *, connect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.connect = connect


@dataclass
class UpdateResult:
    downloads: list[Download]
    warnings: list[str] = field(default_factory=list)
    rebuilt: bool = False
    build: BuildResult | None = None
    info: DatabaseInfo | None = None
    mode: str = "unchanged"  # full (rebuilt from all.zip files) | incremental (changed records applied) | unchanged
    changes: ChangeCounts = field(default_factory=ChangeCounts)
    bytes_downloaded: int = 0
    enriched: EnrichResult | None = None


def _inputs_key(inputs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((str(i.get("label", "")), str(i.get("sha256", ""))) for i in inputs)


FETCH_WORKERS = 8
MAX_INCREMENTAL = 5000  # more changed records than this: the conditional all.zip is cheaper than one GET each


def parse_modified_ids(text: str) -> list[tuple[str, str]]:
    """OSV's `modified_id.csv`: one `<modified>,<id>` per line, newest first (the bucket-wide file writes the id as
    `<Ecosystem>/<id>`; the folder is dropped). Lines that do not fit are skipped."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        stamp, sep, rid = line.strip().partition(",")
        if sep and stamp and rid and parse_time(stamp) is not None:
            out.append((stamp, rid.rsplit("/", 1)[-1].strip()))
    return out


def _newest(stamps: Any) -> str:
    """The latest timestamp (Go's records all carry 0001-01-01: that still marks what was seen)."""
    best = ""
    for stamp in stamps:
        when = parse_time(stamp)
        if when is not None and (not best or when > (parse_time(best) or when)):
            best = stamp
    return best


@dataclass
class _Delta:
    upserts: list[Advisory] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    sync: dict[str, dict[str, str]] = field(default_factory=dict)


def _zip_delta(dl: Downloader, target: Path, ecosystem: str, result: UpdateResult, delta: _Delta) -> None:
    """An ecosystem whose change list is missing or too long: its conditional all.zip, compared with the database."""
    d = dl.fetch(ecosystem)
    result.downloads.append(d)
    if d.status == "missing":
        result.warnings.append(f"no OSV data for ecosystem {ecosystem!r} ({d.url} answered 404); skipped")
        return
    if d.status != "downloaded" or d.path is None:
        return
    stats = ImportStats()
    records = list(iter_zip(d.path, stats, d.url))
    seen = {a.id for a in records}
    delta.upserts += records  # apply_changes skips those not newer than the stored version
    delta.removals += sorted(advisory_ids(target, ecosystem, exclusive=True) - seen)
    delta.sync[ecosystem] = {"newest": _newest(a.modified for a in records), "via": "all.zip"}


def _incremental(dl: Downloader, target: Path, ecosystems: Sequence[str], sync: dict[str, Any],
                 result: UpdateResult, max_changes: int) -> _Delta:
    delta = _Delta()
    for ecosystem in ecosystems:
        since = str((sync.get(ecosystem) or {}).get("newest", ""))
        folder = _cache_folder(dl.cache_dir, ecosystem)
        d = dl.fetch_url(f"{ecosystem} changes", dl.url_for(ecosystem, "modified_id.csv"), folder, "modified_id.csv")
        result.downloads.append(d)
        if d.status == "not-modified":
            continue
        if d.status == "missing" or d.path is None:
            _zip_delta(dl, target, ecosystem, result, delta)
            continue
        listed = parse_modified_ids(d.path.read_text("utf-8", "replace"))
        cutoff = parse_time(since)
        stored = advisory_ids(target, ecosystem)
        # Newer than the last sync, or not stored at all (a record may be published with an older stamp); stored
        # ids the complete list no longer names were taken down.
        changed = [rid for stamp, rid in listed
                   if cutoff is None or rid not in stored or (parse_time(stamp) or cutoff) > cutoff]
        if listed:
            delta.removals += sorted(advisory_ids(target, ecosystem, exclusive=True) - {rid for _, rid in listed})
        if cutoff is None or len(changed) > max_changes:
            _zip_delta(dl, target, ecosystem, result, delta)
            continue
        stats = ImportStats()
        ids = list(dict.fromkeys(changed))
        # One small GET per record: latency-bound, so a few at a time (the client is thread-safe).
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
            bodies = list(pool.map(dl.get_bytes, [dl.url_for(ecosystem, f"{rid}.json") for rid in ids]))
        for rid, data in zip(ids, bodies, strict=True):
            if data is None:
                delta.removals.append(rid)  # listed as changed, no longer published
                continue
            delta.upserts += [a for a in _records_from_bytes(data, f"{ecosystem}/{rid}.json", stats)]
        if stats.malformed:
            result.warnings += [f"skipped a malformed record: {p}" for p in stats.problems]
        delta.sync[ecosystem] = {"newest": _newest([since, *(stamp for stamp, _ in listed)]) or since,
                                 "via": "modified_id.csv"}
    return delta


def _fetch_enrichment(dl: Downloader, sources: DataSources, cache: Path, result: UpdateResult,
                      force: bool) -> tuple[list[Path], list[Path], Path | None, Path | None]:
    """Conditional downloads of the enrichment sources that are on; (CVE inputs, NVD inputs, EPSS, KEV) that
    changed. A source that cannot be fetched is a warning: the OSV update stands on its own."""
    files = {"cve": "cvelist.zip", "nvd": "nvd.data", "epss": "epss.csv.gz", "kev": "kev.json"}
    changed: dict[str, Path] = {}
    for name, url in sources.enrichment().items():
        folder = cache / "enrichment" / name
        if force:
            (folder / f"{files[name]}.json").unlink(missing_ok=True)
        try:
            d = dl.fetch_url(name, url, folder, files[name])
        except HullscanError as exc:
            result.warnings.append(f"{name} data not updated: {exc.detail}")
            continue
        result.downloads.append(d)
        if d.status == "missing":
            result.warnings.append(f"{name} data not updated: {url} answered 404")
        elif d.status == "downloaded" and d.path is not None:
            changed[name] = d.path
    cve = [changed["cve"]] if "cve" in changed else []
    nvd = [changed["nvd"]] if "nvd" in changed else []
    return cve, nvd, changed.get("epss"), changed.get("kev")


def update_database(
    target: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS,
    kev_path: Path | None = None,
    cache_dir: Path | None = None,
    force: bool = False,
    progress: DownloadProgress | None = None,
    retry: Retry | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_phase: Callable[[str], None] | None = None,
    sources: DataSources | None = None,
    incremental: bool = True,
    max_incremental: int = MAX_INCREMENTAL,
) -> UpdateResult:
    """Bring `target` up to date with the OSV bucket at `base_url` (and the enrichment `sources`, when given).

    A database built by a previous update is updated incrementally: per ecosystem, the conditional
    `modified_id.csv` names the records changed since its newest one, and only those are fetched (an ecosystem
    without a change list, or with more than `max_incremental` changes, falls back to its conditional all.zip,
    compared with the database); the changes are applied to a copy that is swapped in atomically. Otherwise (no
    database yet, `force`, `incremental=False`) every all.zip is fetched conditionally and the database rebuilt, or
    only its `updated_at` refreshed when no zip changed. `on_phase("building")` is called before a rebuild."""
    target = Path(target).expanduser().absolute()
    cache = cache_dir or target.parent / CACHE_DIRNAME
    if not ecosystems:
        raise download_failed("no ecosystem was asked for")
    wanted = list(dict.fromkeys(ecosystems))
    result = UpdateResult([])
    sync: dict[str, Any] = {}
    if target.is_file() and not force:
        try:
            with Store.open(target) as store:
                sync = dict(store.meta("sync") or {})
                previous_kev = {str(i.get("sha256", "")) for i in store.meta("inputs") or []
                                if i.get("label") == str(kev_path)}
        except HullscanError:
            sync, previous_kev = {}, set()
        if kev_path is not None and previous_kev != {_sha256_file(kev_path) if kev_path.is_file() else ""}:
            sync = {}  # a new KEV catalogue marks advisories at build time: rebuild
    with Downloader(base_url, cache, retry=retry, progress=progress, transport=transport, sleep=sleep) as dl:
        if incremental and sync and all(e in sync for e in wanted):
            delta = _incremental(dl, target, wanted, sync, result, max_incremental)
            moved = any((sync.get(e) or {}).get("newest") != v.get("newest") for e, v in delta.sync.items())
            if delta.upserts or delta.removals or moved:
                if on_phase is not None:
                    on_phase("applying changes to")
                result.changes = apply_changes(target, delta.upserts, delta.removals,
                                               meta_updates={"sync": {**sync, **delta.sync}})
                result.mode = "incremental"
            else:
                refresh(target)
        else:
            _full(dl, target, wanted, kev_path, force, on_phase, result)
        if sources is not None:
            cve, nvd, epss_path, kev_file = _fetch_enrichment(dl, sources, cache, result, force)
            if cve or nvd or epss_path or kev_file:
                stats = CveImportStats()

                def records() -> Iterator[CveRecord]:
                    for path in [*cve, *nvd]:
                        yield from iter_cve_path(path, stats)

                on = sources.enrichment()
                result.enriched = enrich_database(
                    target, cve_records=records(), cve_source=", ".join(on[k] for k in ("cve", "nvd") if k in on),
                    epss=load_epss(epss_path) if epss_path else None, kev=load_kev(kev_file) if kev_file else None)
        result.bytes_downloaded = dl.bytes
    with Store.open(target) as store:
        result.info = store.info()
    return result


def _full(dl: Downloader, target: Path, ecosystems: list[str], kev_path: Path | None, force: bool,
          on_phase: Callable[[str], None] | None, result: UpdateResult) -> None:
    for ecosystem in ecosystems:
        d = dl.fetch(ecosystem)
        result.downloads.append(d)
        if d.status == "missing":
            result.warnings.append(f"no OSV data for ecosystem {ecosystem!r} ({d.url} answered 404); skipped")
    usable = [d for d in result.downloads if d.path is not None]
    if not usable:
        raise download_failed(f"{dl.base_url} has data for none of the ecosystems asked for "
                              f"({', '.join(ecosystems)})")
    inputs: list[dict[str, Any]] = [{"label": d.url, "sha256": d.sha256, "etag": d.etag,
                                     "last_modified": d.last_modified, "size": d.size} for d in usable]
    if kev_path is not None:
        inputs.append({"label": str(kev_path), "sha256": _sha256_file(kev_path) if kev_path.is_file() else ""})
    previous_inputs: list[dict[str, Any]] | None = None
    before: dict[str, str] = {}
    withdrawn_before: set[str] = set()
    if target.is_file():
        try:
            with Store.open(target) as store:
                previous_inputs = list(store.meta("inputs") or [])
            before = advisory_versions(target)
            withdrawn_before = withdrawn_ids(target)
        except HullscanError:
            previous_inputs = None
    if not force and previous_inputs is not None and _inputs_key(previous_inputs) == _inputs_key(inputs):
        refresh(target)
        return
    if on_phase is not None:
        on_phase("building")
    newest: dict[str, str] = {}
    by_url = {d.url: d.ecosystem for d in usable}

    def seen(advisory: Advisory) -> None:
        for entry in advisory.affected:
            base = entry.ecosystem.split(":", 1)[0]
            if base in newest or base in by_url.values():
                newest[base] = _newest([newest.get(base, ""), advisory.modified])

    extra: dict[str, Any] = {"sync": {}}
    result.build = build_from_paths(target, [(d.path, d.url) for d in usable if d.path is not None],
                                    kev_path=kev_path, inputs=inputs, on_record=seen, extra_meta=extra,
                                    finalize=lambda: extra["sync"].update(
                                        {e: {"newest": newest.get(e, ""), "via": "all.zip"}
                                         for e in by_url.values()}))
    result.rebuilt = True
    result.mode = "full"
    for ecosystem in by_url.values():  # the change lists as of this build: the next update asks only what changed
        folder = _cache_folder(dl.cache_dir, ecosystem)
        try:
            dl.fetch_url(f"{ecosystem} changes", dl.url_for(ecosystem, "modified_id.csv"), folder, "modified_id.csv")
        except HullscanError as exc:
            result.warnings.append(f"the change list of {ecosystem} was not fetched: {exc.detail}")
    after = advisory_versions(target)
    withdrawn_after = withdrawn_ids(target)
    result.changes = ChangeCounts(
        added=len(set(after) - set(before)), removed=len(set(before) - set(after)),
        changed=sum(1 for k, v in after.items() if k in before and before[k] != v),
        withdrawn=len((withdrawn_after - withdrawn_before) & set(after)))


# -- OCI artifact -------------------------------------------------------------------------------------------


@dataclass
class TransferResult:
    reference: str
    manifest_digest: str
    layer_size: int
    db_size: int
    info: DatabaseInfo


def registry_client(ref: Reference, *, username: str | None = None, password: str | None = None,
                    docker_config: Path | None = None, insecure: bool = False,
                    ca_cert: Path | None = None) -> RegistryClient:
    """A client for the reference's registry with credentials found the way `hullscan scan` finds them."""
    creds = resolve_credentials(ref.registry, username=username, password=password, config_path=docker_config)
    return RegistryClient.for_reference(ref, creds, insecure=insecure, ca_cert=ca_cert)


def _parse(reference: str) -> Reference:
    return parse_reference(reference)


def push_database(db_path: Path, reference: str, *, client: RegistryClient | None = None,
                  **client_options: Any) -> TransferResult:
    """Upload the database file as an OCI artifact and tag it."""
    ref = _parse(reference)
    if ref.digest and not ref.tag:
        raise DatabaseError(f"{reference}: give a tag to push to, not a digest", code="INVALID_REFERENCE")
    db_path = Path(db_path).expanduser().absolute()
    with Store.open(db_path) as store:
        info = store.info()
    raw_hash = hashlib.sha256()
    compressor = zstandard.ZstdCompressor(level=10, threads=-1)
    with tempfile.TemporaryFile() as packed:
        db_size = 0
        with open(db_path, "rb") as src, compressor.stream_writer(packed, closefd=False) as writer:
            while chunk := src.read(1 << 20):
                raw_hash.update(chunk)
                db_size += len(chunk)
                writer.write(chunk)
        packed.seek(0)
        layer = packed.read()
    config = {
        "schema_version": info.schema_version, "built_at": info.built_at, "updated_at": info.updated_at,
        "sources": info.sources, "counts": info.counts, "db_digest": "sha256:" + raw_hash.hexdigest(),
        "db_size": db_size, "hullscan_version": __version__,
    }
    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": len(layer),
                    "annotations": {"org.opencontainers.image.title": db_path.name}}],
        "annotations": {"org.opencontainers.image.created": info.built_at,
                        "io.hullscan.db.schema": str(info.schema_version),
                        "io.hullscan.db.updated": info.updated_at},
    }
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    own = client is None
    c = client or registry_client(ref, **client_options)
    try:
        c.put_blob(ref.repository, config_bytes)
        c.put_blob(ref.repository, layer)
        digest = c.put_manifest(ref.repository, ref.tag or "latest", manifest_bytes, media.OCI_MANIFEST)
    finally:
        if own:
            c.close()
    return TransferResult(str(ref), digest, len(layer), db_size, info)


def _artifact_error(reference: str, detail: str) -> DatabaseError:
    return DatabaseError(f"{reference} is not a hullscan database artifact: {detail}")


def pull_database(reference: str, target: Path, *, client: RegistryClient | None = None,
                  **client_options: Any) -> TransferResult:
    """Download a database pushed by push_database, verify it and swap it in atomically."""
    ref = _parse(reference)
    target = Path(target).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    own = client is None
    c = client or registry_client(ref, **client_options)
    tmp = temp_path(target, "pulling")
    try:
        fetched = c.get_manifest(ref.repository, ref.ref)
        try:
            doc = safejson.loads(fetched.data, what="its manifest")
        except safejson.DocumentError as exc:
            raise _artifact_error(reference, str(exc)) from None
        if not isinstance(doc, dict) or (doc.get("mediaType") or fetched.media_type) != media.OCI_MANIFEST:
            raise _artifact_error(reference, f"it is a {fetched.media_type or 'manifest of unknown type'}, "
                                             f"not an OCI image manifest")
        cfg_raw = doc.get("config")
        cfg: dict[str, Any] = cfg_raw if isinstance(cfg_raw, dict) else {}
        if cfg.get("mediaType") != CONFIG_MEDIA_TYPE:
            raise _artifact_error(reference, f"its config type is {cfg.get('mediaType')!r}, not {CONFIG_MEDIA_TYPE}")
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict) and d.get("mediaType") == LAYER_MEDIA_TYPE]
        if len(layers) != 1:
            raise _artifact_error(reference, f"it has {len(layers)} layers of type {LAYER_MEDIA_TYPE}; one is expected")
        config_desc = _descriptor(reference, cfg)
        layer_desc = _descriptor(reference, layers[0])
        raw_config = c.read_blob(ref.repository, config_desc, max_size=MAX_CONFIG_SIZE, what="database config")
        try:
            config = safejson.loads(raw_config, what="its config")
        except safejson.DocumentError as exc:
            raise _artifact_error(reference, str(exc)) from None
        if not isinstance(config, dict):
            raise _artifact_error(reference, "its config is not a JSON object")
        if config.get("schema_version") != SCHEMA_VERSION:
            raise DatabaseError(f"{reference} holds a database of schema {config.get('schema_version')}; this "
                                f"hullscan reads schema {SCHEMA_VERSION}")
        db_digest, db_size = str(config.get("db_digest", "")), config.get("db_size")
        if not db_digest.startswith("sha256:") or not isinstance(db_size, int) or not 0 < db_size <= MAX_DB_SIZE:
            raise _artifact_error(reference, "its config does not give the database's digest and size")
        _fetch_layer(c, ref, layer_desc, tmp, db_digest, db_size)
        with Store.open(tmp) as store:
            info = store.info()
        with swap_lock(target):
            install(tmp, target)
        info.path = str(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if own:
            c.close()
    return TransferResult(str(ref), fetched.digest, layer_desc.size, db_size, info)


def _descriptor(reference: str, d: dict[str, Any]) -> Descriptor:
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not isinstance(size, int) or size < 0:
        raise _artifact_error(reference, "a descriptor lacks a sha256 digest or a size")
    return Descriptor(str(d.get("mediaType", "")), digest, size)


def _fetch_layer(c: RegistryClient, ref: Reference, desc: Descriptor, out_path: Path, db_digest: str,
                 db_size: int) -> None:
    packed_hash, raw_hash = hashlib.sha256(), hashlib.sha256()
    received = written = 0
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    with c.get_blob(ref.repository, desc.digest) as stream, open(out_path, "wb") as out:
        while chunk := stream.read(CHUNK):
            received += len(chunk)
            if received > desc.size:
                raise DatabaseError(f"the registry sent more than the {desc.size:,} bytes the manifest declares",
                                    code="DIGEST_MISMATCH")
            packed_hash.update(chunk)
            try:
                data = decompressor.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise DatabaseError(f"the database layer of {ref} is not valid zstd: {exc}") from None
            written += len(data)
            if written > db_size:
                raise DatabaseError(f"the database in {ref} is larger than the {db_size:,} bytes its config declares")
            raw_hash.update(data)
            out.write(data)
    if "sha256:" + packed_hash.hexdigest() != desc.digest or received != desc.size:
        raise DatabaseError(f"layer {desc.digest} of {ref}: received {received:,} bytes hashing to "
                            f"sha256:{packed_hash.hexdigest()}", code="DIGEST_MISMATCH")
    if "sha256:" + raw_hash.hexdigest() != db_digest or written != db_size:
        raise DatabaseError(f"the database in {ref} decompressed to {written:,} bytes with digest "
                            f"sha256:{raw_hash.hexdigest()}, not {db_digest}", code="DIGEST_MISMATCH")
