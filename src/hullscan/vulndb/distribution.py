"""A fleet's vulnerability database: built once, published through the shared PostgreSQL store, taken by workers.

The scheduler (the one process that runs `db update` in a fleet) calls `publish_database` after each update: the
SQLite file goes into the store as one build, zstd-compressed in chunks, with its sha256, size, schema and times,
in one transaction, so no worker ever sees part of a build. Workers call `refresh_database` between scans: when
the newest build of their schema is not the one they have, they download it to a temporary file beside their
database, check its size, digest and that it opens, and rename it over the old one. A scan that has the old file
open keeps reading the old file (the rename does not touch it); the next scan opens the new one. No restart.

Builds are kept in the store's own tables (made on first use, as `hullscan.sharedstore` explains); the newest
`KEEP` are kept, older ones deleted. A worker's last installed build is recorded beside its database
(`<db>.published`, with the file's identity), written after the rename: a crash in between only means the same
build is fetched again, and a file changed since (a `db update` by hand) is no longer taken for the build: it is
replaced by the newest build unless its data is at least as recent (the scheduler's own file between its update
and its publication, when scheduler and workers share a database file, is never put back to the older build).
For fleets that share no database, `vulndb.update.push_database`/`pull_database` move a build as an OCI artifact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Engine

from hullscan.errors import DatabaseError
from hullscan.settings import Settings
from hullscan.sharedstore import create_tables, engine_for, failure
from hullscan.vulndb.store import SCHEMA_VERSION, Store, install, swap_lock, temp_path

BUILDS = "hullscan_vulndb_builds"
CHUNKS = "hullscan_vulndb_chunks"
CHUNK = 8 << 20  # bytes of database file per stored chunk (compressed separately, so memory stays bounded)
_PUBLISH_LOCK = 0x6875_6C6C_7364_6231  # one publisher at a time
KEEP = 3  # builds kept in the store: a worker still downloading an older one reads it from its snapshot anyway

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {BUILDS} (
        id bigserial PRIMARY KEY,
        digest text NOT NULL,
        size bigint NOT NULL,
        schema_version integer NOT NULL,
        built_at text NOT NULL,
        updated_at text NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE IF NOT EXISTS {CHUNKS} (
        build_id bigint NOT NULL REFERENCES {BUILDS}(id) ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (build_id, seq))""",
)


@dataclass(frozen=True)
class PublishedBuild:
    id: int
    digest: str  # "sha256:<hex>" of the SQLite file
    size: int
    built_at: str
    updated_at: str


def _shared(settings: Settings) -> Engine | None:
    url = settings.shared_store_url
    if url is None:
        return None
    engine = engine_for(url)
    try:
        create_tables(engine, *_DDL)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot reach the shared store ({failure(exc)})") from None
    return engine


def publish_database(settings: Settings) -> PublishedBuild | None:
    """Publish the local database (`settings.db_path`) to the fleet; the newest build in the store afterwards, or
    None when there is no shared store (a single machine). Cheap to call often: a file this machine already
    published or installed is not read again, the newest build is never published twice, and a build older than
    the newest (a machine with a stale file) is not published at all, so the fleet never goes back in time."""
    engine = _shared(settings)
    if engine is None:
        return None
    path = settings.db_path.expanduser().absolute()
    try:
        # Publishers take turns (the fleet's lock first, then this machine's: never the other way round), and the
        # local file is not swapped while it is read (an update waits for us).
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PUBLISH_LOCK})
            with swap_lock(path):
                return _publish(conn, settings, path)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"cannot publish the database to the shared store ({failure(exc)})") from None
    finally:
        engine.dispose()


def _publish(conn: sa.Connection, settings: Settings, path: Path) -> PublishedBuild:
    newest = _newest(conn)
    if newest is not None and newest.digest == installed_build(settings):
        return newest
    with Store.open(path) as store:  # only a sound database is published (NO_DATABASE, DB_INVALID)
        info = store.info()
    digest, size = _digest(path)
    if newest is not None and (newest.digest == digest or info.updated_at < newest.updated_at):
        if newest.digest == digest:
            _write_marker(path, newest)
        return newest
    build = PublishedBuild(_insert(conn, path, digest, size, info.built_at, info.updated_at), digest, size,
                           info.built_at, info.updated_at)
    _write_marker(path, build)
    return build


def _insert(conn: sa.Connection, path: Path, digest: str, size: int, built_at: str, updated_at: str) -> int:
    build_id = int(conn.execute(sa.text(
        f"INSERT INTO {BUILDS} (digest, size, schema_version, built_at, updated_at) "
        "VALUES (:d, :s, :v, :b, :u) RETURNING id"),
        {"d": digest, "s": size, "v": SCHEMA_VERSION, "b": built_at, "u": updated_at}).scalar_one())
    compressor = zstandard.ZstdCompressor(level=3)
    with open(path, "rb") as f:
        for seq, block in enumerate(iter(lambda: f.read(CHUNK), b"")):
            conn.execute(sa.text(f"INSERT INTO {CHUNKS} (build_id, seq, data) VALUES (:i, :n, :x)"),
                         {"i": build_id, "n": seq, "x": compressor.compress(block)})
    conn.execute(sa.text(f"DELETE FROM {BUILDS} WHERE id NOT IN "
                         f"(SELECT id FROM {BUILDS} ORDER BY id DESC LIMIT {KEEP})"))
    return build_id


def newest_build(settings: Settings) -> PublishedBuild | None:
    """The newest published build this hullscan can read, or None (none yet, or no shared store)."""
    engine = _shared(settings)
    if engine is None:
        return None
    try:
        with engine.connect() as conn:
            return _newest(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the shared store ({failure(exc)})") from None
    finally:
        engine.dispose()


def installed_build(settings: Settings) -> str | None:
    """The digest of the published build this machine has in place, or None (none, or the file was changed
    since, e.g. by a `db update` run here by hand)."""
    target = settings.db_path.expanduser().absolute()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        doc = json.loads(_marker(target).read_text())
        digest = doc.get("digest")
        if isinstance(digest, str) and doc.get("file") == _identity(target):
            return digest
    return None


def refresh_database(settings: Settings) -> bool:
    """Install the newest published build when this machine does not have it yet (call between scans); whether a
    new build was installed. A download that fails its checks changes nothing and raises DB_INVALID."""
    engine = _shared(settings)
    if engine is None:
        return False
    target = settings.db_path.expanduser().absolute()
    try:
        # This machine's swap lock for the whole check and download: a second caller (another worker thread)
        # waits, then finds the build installed. One snapshot of the store: a build pruned meanwhile is read whole.
        with swap_lock(target), engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
                conn.begin():
            build, installed = _newest(conn), installed_build(settings)
            if build is None or build.digest == installed or (installed is None and _as_new_here(target, build)):
                return False
            tmp = temp_path(target, "pulling")  # removed by the next swap if this process dies mid-download
            try:
                _download(conn, build, tmp)
                with Store.open(tmp):
                    pass  # it opens and has this hullscan's schema
                install(tmp, target)
                _write_marker(target, build)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return True
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the shared store ({failure(exc)})") from None
    finally:
        engine.dispose()


def _as_new_here(target: Path, build: PublishedBuild) -> bool:
    """Whether this machine's own file (not a published build: updated here, or by hand) holds data at least as
    recent as the build. Such a file is kept: on the scheduler's machine it is the update about to be published,
    and replacing it with the older build would take the data back in time."""
    with contextlib.suppress(DatabaseError, OSError), Store.open(target) as store:
        return store.info().updated_at >= build.updated_at
    return False


def _newest(conn: sa.Connection) -> PublishedBuild | None:
    row = conn.execute(sa.text(f"SELECT id, digest, size, built_at, updated_at FROM {BUILDS} "
                               "WHERE schema_version = :v ORDER BY id DESC LIMIT 1"), {"v": SCHEMA_VERSION}).first()
    return None if row is None else PublishedBuild(int(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4]))


def _download(conn: sa.Connection, build: PublishedBuild, tmp: Path) -> None:
    digest, written = hashlib.sha256(), 0
    rows = conn.execution_options(stream_results=True, yield_per=1).execute(
        sa.text(f"SELECT data FROM {CHUNKS} WHERE build_id = :i ORDER BY seq"), {"i": build.id})
    decompressor = zstandard.ZstdDecompressor()
    with open(tmp, "wb") as f:
        for (data,) in rows:
            block = _inflate(decompressor, bytes(data))
            written += len(block)
            if len(block) > CHUNK or written > build.size:
                raise DatabaseError(f"published build {build.id} is larger than it says ({build.size} bytes)")
            digest.update(block)
            f.write(block)
    if written != build.size or f"sha256:{digest.hexdigest()}" != build.digest:
        raise DatabaseError(f"published build {build.id} does not match its digest {build.digest}")


def _inflate(decompressor: zstandard.ZstdDecompressor, data: bytes) -> bytes:
    """One chunk, read in bounded steps (a frame header's claimed size is not trusted)."""
    out = bytearray()
    with decompressor.stream_reader(data) as reader:
        while len(out) <= CHUNK:
            block = reader.read(CHUNK + 1 - len(out))
            if not block:
                break
            out += block
    return bytes(out)


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return f"sha256:{digest.hexdigest()}", size


def _marker(target: Path) -> Path:
    return target.parent / f"{target.name}.published"


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _write_marker(target: Path, build: PublishedBuild) -> None:
    marker = _marker(target)
    tmp = marker.parent / f".{marker.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"id": build.id, "digest": build.digest, "built_at": build.built_at,
                               "file": _identity(target)}))
    os.replace(tmp, marker)
