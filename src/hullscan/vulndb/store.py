"""The local vulnerability database: one read-only SQLite file, rebuilt whole and swapped in atomically.

Layout (schema version SCHEMA_VERSION, also in `PRAGMA user_version`):

- `meta(key, value)`: JSON values: schema_version, built_at, updated_at (when the data was last confirmed
  current against its sources), sources, inputs (what each source was, for `db update` to tell whether
  anything changed), counts (advisories per ecosystem without release), ecosystems (with release), stats
  (what the import saw), kev (catalogue version), newest_modified, hullscan_version.
- `advisories(rowid, id, withdrawn, kev, doc)`: one row per advisory, its fields minus `affected`.
- `affected(ecosystem, name, adv, seq, doc)`: one row per affected entry, clustered by (ecosystem with
  release, normalised name) so one lookup reads neighbouring pages. Indexes: advisories(id) and
  affected(adv), for fetching one advisory whole (`Store.get`).
- `dictionaries(name, data)`: the zstd dictionaries the `doc` blobs are compressed with (trained on the data
  itself at build time; small JSON documents compress ~3x better with one).
- Enrichment (schema 2), per CVE and independent of the advisories, so it survives an OSV rebuild (it is
  carried over into the new file) and can be imported on its own (`enrich_database`):
  `cve_metrics(cve, origin, modified, doc)` the CVSS metrics and CNA ratings of its CVE JSON 5 record
  (origin "cve5") and of NVD (origin "nvd"), `doc` a JSON list of vulndb.cverecords.CveMetric;
  `epss(cve, score, percentile)` FIRST's EPSS; `kev(cve)` CISA's catalogue. `meta.enrichment` says where
  each came from.

A build writes the new file next to the target (`.hullscan.db.<pid>.<random>.building`), fsyncs it and
os.replace()s it over the target, under a lock file, so a reader sees either the old database or the new
one, never half of one; a reader that already has the old file open keeps reading the old file. A build
that dies leaves its temporary files behind; the next build removes those of dead processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
import zstandard

from hullscan import __version__, safejson
from hullscan.errors import DatabaseError
from hullscan.vulndb.cverecords import CveIntel, CveMetric, CveRecord
from hullscan.vulndb.epss import EpssData
from hullscan.vulndb.model import Advisory, Affected, DatabaseInfo, Range, SeverityScore, normalize_name
from hullscan.vulndb.osv import ImportStats, KevCatalog, OSVImportError, iter_path, load_kev

SCHEMA_VERSION = 2  # 2: enrichment tables (cve_metrics, epss, kev)
DB_FILENAME = "hullscan.db"
ENV_DB = "HULLSCAN_DB"
STALE_AFTER_DAYS = 7
ZSTD_LEVEL = 12
DICT_SAMPLES = 5000
MIN_DICT_SAMPLES = 200  # below this a dictionary does not pay for itself (and zstd may refuse to train one)
DICT_SIZE = {"advisory": 96 * 1024, "affected": 64 * 1024}
# Decoded advisories kept per open Store, bounded: every cached object makes each full garbage
# collection longer; affected entries are not cached at all for that reason (measured).
_CACHE_LIMIT = 16_384
_ZERO_TIME = "0001-01-01"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("hullscan"))


def default_db_path() -> Path:
    """$HULLSCAN_DB, else <user data dir>/hullscan/db/hullscan.db."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return default_data_dir() / "db" / DB_FILENAME


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime | None:
    """An OSV/ISO 8601 timestamp as an aware datetime (None when absent or unreadable)."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ts(value: str) -> float:
    when = parse_time(value)
    if when is None:
        return float("-inf")
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return float("-inf")


# -- documents ----------------------------------------------------------------------------------------------


def _advisory_doc(a: Advisory) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in ("modified", "published", "withdrawn", "summary", "details"):
        if value := getattr(a, key):
            doc[key] = value
    for key in ("aliases", "related", "upstream"):
        if value := getattr(a, key):
            doc[key] = value
    if a.severity:
        doc["severity"] = [[s.type, s.score] for s in a.severity]
    if a.references:
        doc["references"] = [[t, u] for t, u in a.references]
    if a.database_specific:
        doc["database_specific"] = a.database_specific
    return doc


def _advisory_from(rid: str, kev: int, doc: dict[str, Any]) -> Advisory:
    return Advisory(
        id=rid,
        modified=doc.get("modified", ""),
        published=doc.get("published", ""),
        withdrawn=doc.get("withdrawn", ""),
        aliases=doc.get("aliases", []),
        related=doc.get("related", []),
        upstream=doc.get("upstream", []),
        summary=doc.get("summary", ""),
        details=doc.get("details", ""),
        severity=[SeverityScore(t, s) for t, s in doc.get("severity", ())],
        references=[(t, u) for t, u in doc.get("references", ())],
        database_specific=doc.get("database_specific", {}),
        kev=bool(kev),
    )


def _affected_doc(a: Affected) -> dict[str, Any]:
    doc: dict[str, Any] = {"ecosystem": a.ecosystem, "name": a.name}
    if a.purl:
        doc["purl"] = a.purl
    if a.ranges:
        doc["ranges"] = [[r.type, [[k, v] for k, v in r.events]] for r in a.ranges]
    if a.versions:
        doc["versions"] = a.versions
    if a.ecosystem_specific:
        doc["ecosystem_specific"] = a.ecosystem_specific
    if a.database_specific:
        doc["database_specific"] = a.database_specific
    if a.severity:
        doc["severity"] = [[s.type, s.score] for s in a.severity]
    return doc


def _affected_from(doc: dict[str, Any]) -> Affected:
    # Built without __init__ (its default factories cost more than the rest): one per lookup result.
    a = object.__new__(Affected)
    a.__dict__.update(
        ecosystem=doc["ecosystem"],
        name=doc["name"],
        purl=doc.get("purl", ""),
        ranges=[Range(t, list(map(tuple, events))) for t, events in doc.get("ranges", ())],
        versions=doc.get("versions") or [],
        ecosystem_specific=doc.get("ecosystem_specific") or {},
        database_specific=doc.get("database_specific") or {},
        severity=[SeverityScore(t, s) for t, s in doc["severity"]] if "severity" in doc else [],
    )
    return a


_DECODER = json.JSONDecoder()


def _shallow_copy(a: Advisory) -> Advisory:
    # dataclasses.replace() re-runs __init__ and costs ~10x more; lookups make one copy per advisory.
    new = object.__new__(Advisory)
    new.__dict__.update(a.__dict__)
    return new


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Codec:
    """zstd with an optional trained dictionary."""

    def __init__(self, dictionary: bytes | None, level: int = ZSTD_LEVEL) -> None:
        self.dictionary = dictionary
        zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self._c = zstandard.ZstdCompressor(level=level, dict_data=zdict) if zdict else zstandard.ZstdCompressor(
            level=level)
        self._d = zstandard.ZstdDecompressor(dict_data=zdict) if zdict else zstandard.ZstdDecompressor()

    def pack(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data))

    def unpack(self, blob: bytes) -> Any:
        return _DECODER.decode(self._d.decompress(blob).decode("utf-8"))


# -- reading ------------------------------------------------------------------------------------------------


class Store:
    """An open database (implements vulndb.model.AdvisoryStore). Thread-safe; returned objects are shared
    between calls where they are cached, so treat them as read-only."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self._cache: dict[int, Advisory] = {}  # decoded advisories by rowid (without affected entries)
        try:
            self._meta = {k: safejson.loads(v, what=f"metadata {k!r}") for k, v in conn.execute(
                "SELECT key, value FROM meta")}
        except (safejson.DocumentError, TypeError) as exc:  # TypeError: a value that is no text
            raise DatabaseError(f"{path} has invalid metadata: {exc}") from None
        dicts = dict(conn.execute("SELECT name, data FROM dictionaries").fetchall())
        self._adv_codec = _Codec(dicts.get("advisory"))
        self._aff_codec = _Codec(dicts.get("affected"))
        self._ecosystems = frozenset(self._meta.get("ecosystems") or ())

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open read-only; DatabaseError NO_DATABASE when missing, DB_INVALID when not usable."""
        p = Path(path).expanduser().absolute()
        if not p.is_file():
            raise DatabaseError(f"{p} does not exist" if not p.exists() else f"{p} is not a file",
                                code="NO_DATABASE")
        uri = p.as_uri() + "?mode=ro&immutable=1"
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise DatabaseError(f"{p} has database schema {version}; this hullscan reads schema {SCHEMA_VERSION}")
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA mmap_size = 268435456")
            store = cls(p, conn)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise DatabaseError(f"{p} is not a readable hullscan database ({exc})") from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if store._meta.get("schema_version") != SCHEMA_VERSION:
            store.close()
            raise DatabaseError(f"{p} has no valid metadata")
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # AdvisoryStore ----------------------------------------------------------------------------------------

    def lookup(self, ecosystem: str, name: str) -> list[tuple[Advisory, Affected]]:
        """(advisory, affected entry) for every non-withdrawn advisory naming this package, in advisory order.
        Each advisory's `affected` holds only this package's entries."""
        if ecosystem not in self._ecosystems:
            return []
        key = normalize_name(ecosystem, name)
        with self._lock:
            rows = self._conn.execute(
                "SELECT f.adv, f.seq, f.doc, a.id, a.kev, a.doc FROM affected f JOIN advisories a ON a.rowid = f.adv "
                "WHERE f.ecosystem = ? AND f.name = ? AND a.withdrawn = 0 ORDER BY f.adv, f.seq",
                (ecosystem, key)).fetchall()
        out: list[tuple[Advisory, Affected]] = []
        current: Advisory | None = None
        current_rowid = -1
        for rowid, _seq, aff_blob, rid, kev, adv_blob in rows:
            affected = _affected_from(self._aff_codec.unpack(aff_blob))
            if rowid != current_rowid:
                base = self._cache.get(rowid)
                if base is None:
                    base = _advisory_from(rid, kev, self._adv_codec.unpack(adv_blob))
                    if len(self._cache) >= _CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[rowid] = base
                current, current_rowid = _shallow_copy(base), rowid
                current.affected = []
            assert current is not None
            current.affected.append(affected)
            out.append((current, affected))
        return out

    def ecosystems(self) -> set[str]:
        return set(self._ecosystems)

    def info(self) -> DatabaseInfo:
        m = self._meta
        return DatabaseInfo(schema_version=int(m.get("schema_version", 0)), built_at=str(m.get("built_at", "")),
                            updated_at=str(m.get("updated_at", "")), sources=list(m.get("sources") or []),
                            counts=dict(m.get("counts") or {}), path=str(self.path),
                            enrichment=self.enrichment())

    # more -------------------------------------------------------------------------------------------------

    def get(self, advisory_id: str) -> Advisory | None:
        """One advisory by id with all its affected entries (withdrawn ones too: check `.withdrawn`)."""
        with self._lock:
            row = self._conn.execute("SELECT rowid, kev, doc FROM advisories WHERE id = ?", (advisory_id,)).fetchone()
            if row is None:
                return None
            entries = self._conn.execute(
                "SELECT doc FROM affected WHERE adv = ? ORDER BY seq", (row[0],)).fetchall()
        advisory = _advisory_from(advisory_id, row[1], self._adv_codec.unpack(row[2]))
        advisory.affected = [_affected_from(self._aff_codec.unpack(e[0])) for e in entries]
        return advisory

    def meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    # enrichment ---------------------------------------------------------------------------------------------

    def cve_intel(self, cves: Iterable[str]) -> dict[str, CveIntel]:
        """What the enrichment tables know of each CVE (CVSS metrics, EPSS, KEV); CVEs they do not name are
        left out."""
        wanted = sorted({c for c in cves if c.startswith("CVE-")})
        if not wanted:
            return {}
        out: dict[str, CveIntel] = {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            metrics = self._conn.execute(
                f"SELECT cve, origin, doc FROM cve_metrics WHERE cve IN ({marks})", wanted).fetchall()
            epss = self._conn.execute(f"SELECT cve, score, percentile FROM epss WHERE cve IN ({marks})",
                                      wanted).fetchall()
            kev = self._conn.execute(f"SELECT cve FROM kev WHERE cve IN ({marks})", wanted).fetchall()
        for cve, origin, doc in metrics:
            info = out.setdefault(cve, CveIntel(cve))
            info.records.add(origin)
            info.metrics.extend(CveMetric.from_list(m) for m in json.loads(doc))
        for cve, score, percentile in epss:
            info = out.setdefault(cve, CveIntel(cve))
            info.epss, info.epss_percentile = float(score), float(percentile)
        for (cve,) in kev:
            out.setdefault(cve, CveIntel(cve)).kev = True
        return out

    def kev_cves(self) -> frozenset[str]:
        """Every CVE of the KEV catalogue imported as enrichment (empty when none was)."""
        with self._lock:
            return frozenset(r[0] for r in self._conn.execute("SELECT cve FROM kev"))

    def enrichment(self) -> dict[str, Any]:
        """Where each enrichment came from (meta.enrichment): {"cve5": {...}, "nvd": ..., "epss": ..., "kev": ...}."""
        value = self._meta.get("enrichment") or {}
        return dict(value) if isinstance(value, dict) else {}

    def stats(self) -> ImportStats:
        return ImportStats.from_dict(self._meta.get("stats") or {})

    def age_days(self, now: datetime | None = None) -> float | None:
        when = parse_time(str(self._meta.get("updated_at") or ""))
        if when is None:
            return None
        return ((now or datetime.now(UTC)) - when).total_seconds() / 86400

    def is_stale(self, now: datetime | None = None) -> bool:
        age = self.age_days(now)
        return age is None or age > STALE_AFTER_DAYS


def open_default(path: Path | None = None) -> Store:
    """The database at `path` (default: default_db_path()); NO_DATABASE, saying how to get one, when missing."""
    target = path if path is not None else default_db_path()
    if not Path(target).exists():
        raise DatabaseError(f"there is no vulnerability database at {target}", code="NO_DATABASE")
    return Store.open(target)


# -- building -----------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    info: DatabaseInfo
    stats: ImportStats
    seconds: float
    size: int  # bytes on disk


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """An exclusive lock on <dir>/.<name>.lock for the build and swap (another update waits its turn)."""
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Temporary files of builds whose process is gone (a crash or a kill mid-build)."""
    prefix = f".{target.name}."
    for entry in target.parent.glob(f"{prefix}*"):
        parts = entry.name[len(prefix):].split(".")
        if len(parts) >= 3 and parts[0].isdecimal() and parts[-1] in ("building", "staging", "pulling"):
            pid = int(parts[0])
            if pid != os.getpid() and not _pid_alive(pid):
                entry.unlink(missing_ok=True)


def temp_path(target: Path, kind: str) -> Path:
    """A temporary file next to target (same file system, so os.replace is atomic)."""
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def install(tmp: Path, target: Path) -> None:
    """Swap a finished database file in: fsync, rename over the target, fsync the directory. Call under
    `swap_lock(target)` when other writers may run."""
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def swap_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        _remove_stale(target)
        yield


ENRICHMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS cve_metrics (cve TEXT NOT NULL, origin TEXT NOT NULL, modified TEXT NOT NULL,
                                        doc TEXT NOT NULL, PRIMARY KEY (cve, origin)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kev (cve TEXT PRIMARY KEY) WITHOUT ROWID;
"""

_STAGING_SCHEMA = """
CREATE TABLE adv (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, modified TEXT NOT NULL,
                  withdrawn INTEGER NOT NULL, kev INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE aff (adv INTEGER NOT NULL, seq INTEGER NOT NULL, ecosystem TEXT NOT NULL, name TEXT NOT NULL,
                  doc BLOB NOT NULL);
CREATE INDEX aff_adv ON aff(adv);
"""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE dictionaries (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE advisories (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, withdrawn INTEGER NOT NULL,
                         kev INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE affected (ecosystem TEXT NOT NULL, name TEXT NOT NULL, adv INTEGER NOT NULL, seq INTEGER NOT NULL,
                       doc BLOB NOT NULL, PRIMARY KEY (ecosystem, name, adv, seq)) WITHOUT ROWID;
""" + ENRICHMENT_SCHEMA

ENRICHMENT_TABLES = ("cve_metrics", "epss", "kev")


def _fast(conn: sqlite3.Connection) -> None:
    # The files are private until renamed into place and are deleted on failure: no journal needed.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("PRAGMA cache_size = -65536")


class _Staging:
    """Records as they arrive, deduplicated by id (the newest `modified` wins), uncompressed."""

    def __init__(self, path: Path, kev: KevCatalog | None, stats: ImportStats) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        _fast(self.conn)
        self.conn.executescript(_STAGING_SCHEMA)
        self.conn.execute("BEGIN")
        self.kev = kev
        self.stats = stats

    def add(self, a: Advisory) -> None:
        c = self.conn
        kev = int(self.kev is not None and self.kev.marks(a))
        doc = _dumps(_advisory_doc(a))
        row = c.execute("SELECT rowid, modified FROM adv WHERE id = ?", (a.id,)).fetchone()
        if row is not None:
            self.stats.duplicates += 1
            if _ts(a.modified) <= _ts(row[1]):
                return
            rowid = row[0]
            c.execute("UPDATE adv SET modified = ?, withdrawn = ?, kev = ?, doc = ? WHERE rowid = ?",
                      (a.modified, int(bool(a.withdrawn)), kev, doc, rowid))
            c.execute("DELETE FROM aff WHERE adv = ?", (rowid,))
        else:
            cur = c.execute("INSERT INTO adv (id, modified, withdrawn, kev, doc) VALUES (?, ?, ?, ?, ?)",
                            (a.id, a.modified, int(bool(a.withdrawn)), kev, doc))
            rowid = int(cur.lastrowid or 0)
        c.executemany("INSERT INTO aff (adv, seq, ecosystem, name, doc) VALUES (?, ?, ?, ?, ?)",
                      [(rowid, i, e.ecosystem, normalize_name(e.ecosystem, e.name), _dumps(_affected_doc(e)))
                       for i, e in enumerate(a.affected)])

    def finish(self) -> None:
        self.conn.execute("COMMIT")

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM adv").fetchone()[0])

    def sample(self, table: str) -> list[bytes]:
        return [r[0] for r in self.conn.execute(f"SELECT doc FROM {table} ORDER BY random() LIMIT {DICT_SAMPLES}")]

    def close(self) -> None:
        self.conn.close()


def _train(samples: list[bytes], size: int) -> bytes | None:
    if len(samples) < MIN_DICT_SAMPLES or sum(len(s) for s in samples) < 4 * size:
        return None
    try:
        buffers: list[bytes | bytearray | memoryview] = list(samples)
        # Fixed COVER parameters: the default parameter search costs ~10x the time for ~1% smaller output.
        return bytes(zstandard.train_dictionary(size, buffers, k=200, d=8, level=ZSTD_LEVEL).as_bytes())
    except zstandard.ZstdError:
        return None


def _write_final(path: Path, staging: _Staging, meta: dict[str, Any]) -> None:
    dicts = {"advisory": _train(staging.sample("adv"), DICT_SIZE["advisory"]),
             "affected": _train(staging.sample("aff"), DICT_SIZE["affected"])}
    adv_codec, aff_codec = _Codec(dicts["advisory"]), _Codec(dicts["affected"])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _fast(conn)
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO dictionaries VALUES (?, ?)", [(k, v) for k, v in dicts.items() if v])
        src = staging.conn
        batch: list[tuple[Any, ...]] = []
        for rowid, rid, withdrawn, kev, doc in src.execute(
                "SELECT rowid, id, withdrawn, kev, doc FROM adv ORDER BY rowid"):
            batch.append((rowid, rid, withdrawn, kev, adv_codec.pack(doc)))
            if len(batch) >= 2000:
                conn.executemany("INSERT INTO advisories VALUES (?, ?, ?, ?, ?)", batch)
                batch.clear()
        conn.executemany("INSERT INTO advisories VALUES (?, ?, ?, ?, ?)", batch)
        batch.clear()
        for ecosystem, name, adv, seq, doc in src.execute(
                "SELECT ecosystem, name, adv, seq, doc FROM aff ORDER BY ecosystem, name, adv, seq"):
            batch.append((ecosystem, name, adv, seq, aff_codec.pack(doc)))
            if len(batch) >= 2000:
                conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?)", batch)
                batch.clear()
        conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?)", batch)
        conn.execute("CREATE UNIQUE INDEX advisories_id ON advisories(id)")
        conn.execute("CREATE INDEX affected_adv ON affected(adv)")  # for get(id); ~10% of the file
        ecosystems = sorted(r[0] for r in conn.execute(
            "SELECT DISTINCT f.ecosystem FROM affected f JOIN advisories a ON a.rowid = f.adv WHERE a.withdrawn = 0"))
        counts: dict[str, set[int]] = {}
        for ecosystem, adv in conn.execute(
                "SELECT DISTINCT f.ecosystem, f.adv FROM affected f JOIN advisories a ON a.rowid = f.adv "
                "WHERE a.withdrawn = 0"):
            counts.setdefault(ecosystem.split(":", 1)[0], set()).add(adv)
        newest = ""
        for (modified,) in src.execute("SELECT modified FROM adv"):
            if modified and not modified.startswith(_ZERO_TIME) and _ts(modified) > _ts(newest):
                newest = modified
        totals = conn.execute("SELECT COUNT(*), SUM(withdrawn), SUM(kev) FROM advisories").fetchone()
        meta = {**meta, "ecosystems": ecosystems, "counts": {k: len(v) for k, v in sorted(counts.items())},
                "newest_modified": newest, "totals": {"advisories": totals[0], "withdrawn": totals[1] or 0,
                                                      "kev": totals[2] or 0,
                                                      "affected": conn.execute(
                                                          "SELECT COUNT(*) FROM affected").fetchone()[0]}}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def build_database(
    target: Path,
    records: Iterable[Advisory],
    *,
    stats: ImportStats | None = None,
    sources: list[str] | None = None,
    kev: KevCatalog | None = None,
    inputs: list[dict[str, Any]] | None = None,
    updated_at: str | None = None,
    on_record: Callable[[Advisory], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
    finalize: Callable[[], None] | None = None,
) -> BuildResult:
    """Build a new database from `records` and swap it in atomically. If anything fails (including the
    records iterator raising), the previous database is left exactly as it was. `finalize` runs once every record
    was read, before `extra_meta` is written with the rest of the metadata (a caller's summary of the records)."""
    started = time.monotonic()
    target = Path(target).expanduser().absolute()
    stats = stats if stats is not None else ImportStats()
    with swap_lock(target):
        tmp, staging_path = temp_path(target, "building"), temp_path(target, "staging")
        staging: _Staging | None = None
        try:
            staging = _Staging(staging_path, kev, stats)
            for advisory in records:
                staging.add(advisory)
                if on_record is not None:
                    on_record(advisory)
            staging.finish()
            if staging.count() == 0:
                raise OSVImportError("no advisory was found in " + (", ".join(sources or stats.sources) or "the input")
                                     + (f" ({stats.malformed:,} malformed records)" if stats.malformed else ""))
            if finalize is not None:
                finalize()
            built = now_iso()
            meta: dict[str, Any] = {**(extra_meta or {}),
                "schema_version": SCHEMA_VERSION, "built_at": built, "updated_at": updated_at or built,
                "sources": list(sources if sources is not None else stats.sources)
                + ([f"CISA KEV {kev.version} ({kev.source})"] if kev else []),
                "inputs": inputs or [], "stats": stats.to_dict(), "kev": kev.version if kev else "",
                "hullscan_version": __version__,
            }
            _write_final(tmp, staging, meta)
            staging.close()
            staging = None
            carry_enrichment(target, tmp)
            if kev is not None:
                _store_kev(tmp, kev)
            install(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if staging is not None:
                staging.close()
            staging_path.unlink(missing_ok=True)
    with Store.open(target) as store:
        info = store.info()
    return BuildResult(info, stats, time.monotonic() - started, target.stat().st_size)


def _enrichment_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key = 'enrichment'").fetchone()
    value = json.loads(row[0]) if row else {}
    return value if isinstance(value, dict) else {}


def _set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))


def carry_enrichment(old: Path, new: Path) -> None:
    """Copy the enrichment tables of the database at `old` (when it is one of this schema) into `new`: an OSV
    rebuild keeps the CVE metrics, EPSS and KEV imported before."""
    if not old.is_file():
        return
    try:
        with Store.open(old) as previous:
            if not previous.enrichment():
                return
    except DatabaseError:
        return  # another schema, or not a database: nothing to carry
    conn = sqlite3.connect(new, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS old", (old.as_uri() + "?mode=ro",))
        conn.execute("BEGIN")
        for table in ENRICHMENT_TABLES:
            conn.execute(f"DELETE FROM main.{table}")
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM old.{table}")
        row = conn.execute("SELECT value FROM old.meta WHERE key = 'enrichment'").fetchone()
        if row:
            conn.execute("INSERT OR REPLACE INTO main.meta (key, value) VALUES ('enrichment', ?)", (row[0],))
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE old")
    finally:
        conn.close()


def _store_kev(path: Path, kev: KevCatalog) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM kev")
        conn.executemany("INSERT INTO kev VALUES (?)", [(c,) for c in sorted(kev.cves)])
        info = _enrichment_meta(conn)
        info["kev"] = {"source": kev.source, "version": kev.version, "records": len(kev.cves), "at": now_iso()}
        _set_meta(conn, "enrichment", info)
        conn.execute("COMMIT")
    finally:
        conn.close()


@dataclass
class EnrichResult:
    cve_records: int = 0  # CVE records stored (CVE JSON 5 and NVD)
    with_metrics: int = 0
    epss: int = 0
    kev: int = 0
    info: DatabaseInfo | None = None


def enrich_database(
    target: Path,
    *,
    cve_records: Iterable[CveRecord] = (),
    cve_source: str = "",
    epss: EpssData | None = None,
    kev: KevCatalog | None = None,
) -> EnrichResult:
    """Import CVE records, an EPSS snapshot and/or the KEV catalogue into the existing database at `target`,
    next to its OSV data: a copy is changed and swapped in atomically (readers see the old or the new file).
    CVE records replace those of the same CVE and kind; an EPSS or KEV import replaces the previous one."""
    target = Path(target).expanduser().absolute()
    if not target.is_file():
        raise DatabaseError(f"there is no vulnerability database at {target} to add CVE data to; import OSV "
                            f"data first", code="NO_DATABASE")
    Store.open(target).close()  # refuses another schema with DB_INVALID before anything is written
    result = EnrichResult()
    with modified_copy(target) as conn:
        info = _enrichment_meta(conn)
        origins: dict[str, int] = {}
        for record in cve_records:
            conn.execute("INSERT OR REPLACE INTO cve_metrics VALUES (?, ?, ?, ?)",
                         (record.cve, record.origin, record.modified,
                          json.dumps([m.to_list() for m in record.metrics])))
            origins[record.origin] = origins.get(record.origin, 0) + 1
            result.cve_records += 1
            result.with_metrics += bool(record.metrics)
        for origin, count in origins.items():
            total = conn.execute("SELECT COUNT(*) FROM cve_metrics WHERE origin = ?", (origin,)).fetchone()[0]
            info[origin] = {"source": cve_source, "imported": count, "records": total, "at": now_iso()}
        if epss is not None:
            conn.execute("DELETE FROM epss")
            conn.executemany("INSERT INTO epss VALUES (?, ?, ?)", [(c, e, p) for c, (e, p) in epss.scores.items()])
            result.epss = len(epss.scores)
            info["epss"] = {"source": epss.source, "model_version": epss.model_version,
                            "score_date": epss.score_date, "records": len(epss.scores), "at": now_iso()}
        if kev is not None:
            conn.execute("DELETE FROM kev")
            conn.executemany("INSERT INTO kev VALUES (?)", [(c,) for c in sorted(kev.cves)])
            result.kev = len(kev.cves)
            info["kev"] = {"source": kev.source, "version": kev.version, "records": len(kev.cves), "at": now_iso()}
        _set_meta(conn, "enrichment", info)
    with Store.open(target) as store:
        result.info = store.info()
    return result


def build_from_paths(
    target: Path,
    paths: Iterable[Path | tuple[Path, str]],
    *,
    kev_path: Path | None = None,
    inputs: list[dict[str, Any]] | None = None,
    updated_at: str | None = None,
    on_record: Callable[[Advisory], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
    finalize: Callable[[], None] | None = None,
) -> BuildResult:
    """Import OSV zips, directories or files (optionally each with a label naming where it came from)."""
    stats = ImportStats()
    kev = load_kev(kev_path) if kev_path is not None else None
    items = [(p, str(p)) if isinstance(p, Path) else p for p in paths]

    def records() -> Iterator[Advisory]:
        for path, label in items:
            yield from iter_path(path, stats, label)

    return build_database(target, records(), stats=stats, kev=kev, inputs=inputs, updated_at=updated_at,
                          on_record=on_record, extra_meta=extra_meta, finalize=finalize)


@contextlib.contextmanager
def modified_copy(target: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of the database at `target`, in a transaction: on a clean exit the transaction is
    committed and the copy swapped in atomically (under the swap lock); on an error the copy is deleted and
    `target` is left as it was."""
    with swap_lock(target):
        tmp = temp_path(target, "building")
        try:
            shutil.copyfile(target, tmp)
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                _fast(conn)
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
            finally:
                conn.close()
            install(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def refresh(target: Path, updated_at: str | None = None) -> DatabaseInfo:
    """Record that the data was found current (nothing to rebuild): a copy with a new `updated_at`, swapped in."""
    target = Path(target).expanduser().absolute()
    with modified_copy(target) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'updated_at'", (json.dumps(updated_at or now_iso()),))
    with Store.open(target) as store:
        return store.info()


def random_keys(store: Store, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` (ecosystem, name) pairs drawn (with replacement) from the packages the database names."""
    with store._lock:
        keys = store._conn.execute("SELECT DISTINCT ecosystem, name FROM affected").fetchall()
    rng = random.Random(seed)
    pairs = [(str(e), str(n)) for e, n in keys]
    return [rng.choice(pairs) for _ in range(count)] if pairs else []


# -- incremental updates --------------------------------------------------------------------------------------


@dataclass
class ChangeCounts:
    added: int = 0  # advisories the database did not have
    changed: int = 0  # advisories it had, in a newer version
    withdrawn: int = 0  # of those, the ones that are now withdrawn (and were not before)
    removed: int = 0  # advisories no longer published at all
    unchanged: int = 0  # offered again with nothing new

    def total(self) -> int:
        return self.added + self.changed + self.removed

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "changed": self.changed, "withdrawn": self.withdrawn, "removed": self.removed}


def apply_changes(
    target: Path,
    upserts: Iterable[Advisory],
    removals: Iterable[str] = (),
    *,
    meta_updates: dict[str, Any] | None = None,
) -> ChangeCounts:
    """Change the database at `target` in place of a rebuild: add or replace `upserts` (by id; an older or equal
    `modified` than the stored one changes nothing), delete the advisories named in `removals`, recompute the
    summaries, and swap the result in atomically (a copy is changed; readers see the old or the new file)."""
    target = Path(target).expanduser().absolute()
    Store.open(target).close()  # NO_DATABASE / DB_INVALID before anything is written
    counts = ChangeCounts()
    with modified_copy(target) as conn:
        dicts = dict(conn.execute("SELECT name, data FROM dictionaries").fetchall())
        adv_codec, aff_codec = _Codec(dicts.get("advisory")), _Codec(dicts.get("affected"))
        kev = KevCatalog(frozenset(r[0] for r in conn.execute("SELECT cve FROM kev")))
        newest = json.loads((conn.execute("SELECT value FROM meta WHERE key = 'newest_modified'").fetchone()
                             or ['""'])[0])
        next_rowid = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM advisories").fetchone()[0]) + 1
        for a in upserts:
            row = conn.execute("SELECT rowid, withdrawn, doc FROM advisories WHERE id = ?", (a.id,)).fetchone()
            if row is not None:
                old = adv_codec.unpack(row[2])
                if _ts(a.modified) <= _ts(str(old.get("modified", ""))):
                    counts.unchanged += 1
                    continue
                rowid = int(row[0])
                counts.changed += 1
                counts.withdrawn += bool(a.withdrawn) and not row[1]
                conn.execute("DELETE FROM affected WHERE adv = ?", (rowid,))
                conn.execute("DELETE FROM advisories WHERE rowid = ?", (rowid,))
            else:
                rowid, next_rowid = next_rowid, next_rowid + 1
                counts.added += 1
                counts.withdrawn += bool(a.withdrawn)
            conn.execute("INSERT INTO advisories VALUES (?, ?, ?, ?, ?)",
                         (rowid, a.id, int(bool(a.withdrawn)), int(kev.marks(a)),
                          adv_codec.pack(_dumps(_advisory_doc(a)))))
            conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?)",
                             [(e.ecosystem, normalize_name(e.ecosystem, e.name), rowid, i,
                               aff_codec.pack(_dumps(_affected_doc(e)))) for i, e in enumerate(a.affected)])
            if a.modified and not a.modified.startswith(_ZERO_TIME) and _ts(a.modified) > _ts(newest):
                newest = a.modified
        for rid in removals:
            row = conn.execute("SELECT rowid FROM advisories WHERE id = ?", (rid,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM affected WHERE adv = ?", (row[0],))
                conn.execute("DELETE FROM advisories WHERE rowid = ?", (row[0],))
                counts.removed += 1
        _refresh_summaries(conn, newest)
        for key, value in {"updated_at": now_iso(), "last_update": {**counts.to_dict(), "at": now_iso()},
                           **(meta_updates or {})}.items():
            _set_meta(conn, key, value)
    return counts


def _refresh_summaries(conn: sqlite3.Connection, newest: str) -> None:
    """The meta values derived from the tables (as _write_final computes them for a build)."""
    live = "FROM affected f JOIN advisories a ON a.rowid = f.adv WHERE a.withdrawn = 0"
    ecosystems = sorted(r[0] for r in conn.execute(f"SELECT DISTINCT f.ecosystem {live}"))
    counts: dict[str, set[int]] = {}
    for ecosystem, adv in conn.execute(f"SELECT DISTINCT f.ecosystem, f.adv {live}"):
        counts.setdefault(ecosystem.split(":", 1)[0], set()).add(adv)
    totals = conn.execute("SELECT COUNT(*), SUM(withdrawn), SUM(kev) FROM advisories").fetchone()
    _set_meta(conn, "ecosystems", ecosystems)
    _set_meta(conn, "counts", {k: len(v) for k, v in sorted(counts.items())})
    _set_meta(conn, "newest_modified", newest)
    _set_meta(conn, "totals", {"advisories": totals[0], "withdrawn": totals[1] or 0, "kev": totals[2] or 0,
                               "affected": conn.execute("SELECT COUNT(*) FROM affected").fetchone()[0]})


def advisory_versions(target: Path, ecosystem: str | None = None) -> dict[str, str]:
    """id -> modified of the advisories stored (those naming `ecosystem`, without release, when given)."""
    with Store.open(target) as store, store._lock:
        if ecosystem is None:
            rows = store._conn.execute("SELECT id, doc FROM advisories").fetchall()
        else:
            rows = store._conn.execute(
                "SELECT DISTINCT a.id, a.doc FROM advisories a JOIN affected f ON f.adv = a.rowid "
                "WHERE f.ecosystem = ? OR f.ecosystem LIKE ?", (ecosystem, ecosystem + ":%")).fetchall()
        return {rid: str(store._adv_codec.unpack(doc).get("modified", "")) for rid, doc in rows}


def withdrawn_ids(target: Path) -> set[str]:
    with Store.open(target) as store, store._lock:
        return {r[0] for r in store._conn.execute("SELECT id FROM advisories WHERE withdrawn = 1")}


def advisory_ids(target: Path, ecosystem: str, *, exclusive: bool = False) -> set[str]:
    """Ids of the advisories naming `ecosystem` (without release), without decoding them; `exclusive`: only those
    naming no other ecosystem (an advisory about several may be published in another ecosystem's files)."""
    mine = "(f.ecosystem = ? OR f.ecosystem LIKE ?)"
    with Store.open(target) as store, store._lock:
        ids = {r[0] for r in store._conn.execute(
            f"SELECT DISTINCT a.id FROM advisories a JOIN affected f ON f.adv = a.rowid WHERE {mine}",
            (ecosystem, ecosystem + ":%"))}
        if exclusive:
            ids -= {r[0] for r in store._conn.execute(
                f"SELECT DISTINCT a.id FROM advisories a JOIN affected f ON f.adv = a.rowid WHERE NOT {mine}",
                (ecosystem, ecosystem + ":%"))}
        return ids
