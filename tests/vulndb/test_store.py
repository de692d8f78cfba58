"""The SQLite store: lookups, metadata, read-only opening, atomic swaps and crashes mid-build."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hullscan.errors import HullscanError
from hullscan.vulndb import store as store_mod
from hullscan.vulndb.model import Advisory, AdvisoryStore
from hullscan.vulndb.osv import ImportStats, OSVImportError, iter_path, load_kev, parse_record
from hullscan.vulndb.store import (
    SCHEMA_VERSION,
    Store,
    build_database,
    build_from_paths,
    default_db_path,
    open_default,
    refresh,
)

from .osvserver import KEV_EXTRACT, OSV_EXTRACT

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "hullscan.db"
    build_from_paths(path, [OSV_EXTRACT], kev_path=KEV_EXTRACT)
    return path


@pytest.fixture
def db(built: Path) -> Iterator[Store]:
    with Store.open(built) as s:
        yield s


def ids(pairs: list[tuple[Advisory, object]]) -> list[str]:
    return [a.id for a, _ in pairs]


def test_store_implements_the_protocol(db: Store) -> None:
    s: AdvisoryStore = db
    assert s.lookup("PyPI", "requests")


def test_lookup_by_ecosystem_with_release_and_normalised_name(db: Store) -> None:
    assert ids(db.lookup("PyPI", "requests")) == ["PYSEC-2018-28", "PYSEC-2023-74"]
    assert ids(db.lookup("PyPI", "Requests")) == ["PYSEC-2018-28", "PYSEC-2023-74"]  # PEP 503
    assert ids(db.lookup("PyPI", "PyYAML")) == ["PYSEC-2020-96"]
    assert ids(db.lookup("Debian:11", "xorg-server")) == ["DSA-5380-1"]
    assert ids(db.lookup("Debian:10", "xorg-server")) == ["DLA-3372-1"]
    assert db.lookup("Debian", "xorg-server") == []  # the release is part of the key
    assert db.lookup("Debian:12", "xorg-server") == []
    assert "ALPINE-CVE-2019-1551" in ids(db.lookup("Alpine:v3.11", "openssl"))
    assert ids(db.lookup("Go", "github.com/gin-gonic/gin")) == ["GO-2020-0001", "GO-2021-0052"]
    assert db.lookup("Nope", "x") == [] and db.lookup("PyPI", "no-such-package") == []


def test_lookup_returns_only_the_entries_naming_the_package(db: Store) -> None:
    pairs = db.lookup("Debian:3.0", "libpng")
    assert ids(pairs) == ["DSA-140"]
    advisory, affected = pairs[0]
    assert affected.name == "libpng" and affected.ecosystem == "Debian:3.0"
    assert advisory.affected == [affected]
    full = db.get("DSA-140")
    assert full is not None and len(full.affected) > 1  # libpng and libpng3
    assert affected.ranges[0].events[-1][0] == "fixed"


def test_withdrawn_is_stored_flagged_never_returned(db: Store) -> None:
    assert db.lookup("PyPI", "aiohttp") == []
    w = db.get("PYSEC-2022-43059")
    assert w is not None and w.withdrawn and w.affected
    go = db.get("GO-2022-0617")
    assert go is not None and go.withdrawn
    assert all(db.lookup(e.ecosystem, e.name) == [] or all(a.id != go.id for a, _ in db.lookup(e.ecosystem, e.name))
               for e in go.affected)


def test_advisory_fields_round_trip(db: Store) -> None:
    original = parse_record(json.loads((OSV_EXTRACT / "npm" / "GHSA-jf85-cpcp-j695.json").read_text()))
    stored = db.get("GHSA-jf85-cpcp-j695")
    assert stored is not None
    for f in ("id", "modified", "published", "aliases", "summary", "details", "severity", "references",
              "database_specific", "affected"):
        assert getattr(stored, f) == getattr(original, f), f


def test_kev_marks_by_alias_and_upstream(db: Store) -> None:
    pairs = db.lookup("Maven", "org.apache.logging.log4j:log4j-core")
    log4shell = next(a for a, _ in pairs if a.id == "GHSA-jfh8-c2jp-5v3q")
    assert log4shell.kev
    assert len(log4shell.affected) == sum(a.id == log4shell.id for a, _ in pairs)  # one pair per entry
    assert all(a.kev for a, _ in db.lookup("Maven", "org.apache.logging.log4j:log4j-core"))  # both are in KEV
    samba = db.get("ALPINE-CVE-2017-7494")
    assert samba is not None and samba.kev
    assert not any(a.kev for a, _ in db.lookup("PyPI", "requests"))
    assert db.meta("totals")["kev"] == 4  # log4j x2, samba, exim (DLA-1274-1)


def test_ecosystems_and_info(db: Store, built: Path) -> None:
    ecos = db.ecosystems()
    assert {"PyPI", "Go", "npm", "Maven", "Debian:11", "Debian:3.0", "Alpine:v3.11"} <= ecos
    info = db.info()
    assert info.schema_version == SCHEMA_VERSION
    assert info.built_at and info.updated_at == info.built_at
    assert info.path == str(built)
    assert info.counts["Debian"] == 5  # the 6 Debian records less DSA-177, which has no affected entry
    assert info.counts["PyPI"] == 4  # 5 records, one withdrawn
    assert any("CISA KEV 2025.08.25" in s for s in info.sources)
    assert str(OSV_EXTRACT) in info.sources


def test_schema_version_and_meta_in_the_file(built: Path) -> None:
    conn = sqlite3.connect(built)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    finally:
        conn.close()
    assert meta["schema_version"] == SCHEMA_VERSION
    for key in ("built_at", "updated_at", "sources", "counts", "ecosystems", "stats", "inputs"):
        assert key in meta
    assert meta["stats"]["git_ranges"] > 0


def test_opened_read_only(db: Store) -> None:
    with pytest.raises(sqlite3.OperationalError):
        db._conn.execute("DELETE FROM advisories")


def test_missing_corrupt_and_foreign_schema(tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HullscanError) as missing:
        Store.open(tmp_path / "none.db")
    assert missing.value.code == "NO_DATABASE"
    monkeypatch.setenv("HULLSCAN_DB", str(tmp_path / "env.db"))
    assert default_db_path() == tmp_path / "env.db"
    with pytest.raises(HullscanError) as err:
        open_default(None)
    assert err.value.code == "NO_DATABASE"
    rendered = err.value.render()
    assert "hullscan db update" in rendered and "hullscan db import PATH" in rendered
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HullscanError) as bad:
        Store.open(junk)
    assert bad.value.code == "DB_INVALID"
    other = tmp_path / "other.db"
    shutil.copyfile(built, other)
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(HullscanError, match="schema 99") as foreign:
        Store.open(other)
    assert foreign.value.code == "DB_INVALID"


def test_default_location_is_the_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HULLSCAN_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "hullscan" / "db" / "hullscan.db"


def test_duplicate_ids_keep_the_newest(tmp_path: Path) -> None:
    doc = json.loads((OSV_EXTRACT / "PyPI" / "PYSEC-2018-28.json").read_text())
    newer = dict(doc, modified="2030-01-01T00:00:00Z", summary="newer copy")
    older = dict(doc, modified="2000-01-01T00:00:00Z", summary="older copy")
    stats = ImportStats()
    path = tmp_path / "d.db"
    build_database(path, [parse_record(doc), parse_record(newer), parse_record(older)], stats=stats,
                   sources=["test"])
    with Store.open(path) as s:
        [(a, _)] = s.lookup("PyPI", "requests")
        assert a.summary == "newer copy"
        assert s.meta("totals")["advisories"] == 1
    assert stats.duplicates == 2


def test_an_import_with_no_advisory_fails_and_keeps_the_old_file(tmp_path: Path, built: Path) -> None:
    target = tmp_path / "keep.db"
    shutil.copyfile(built, target)
    before = target.read_bytes()
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    with pytest.raises(OSVImportError, match="no advisory"):
        build_from_paths(target, [garbage])
    assert target.read_bytes() == before


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".building", ".staging")))


def test_reader_keeps_the_old_file_across_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "swap.db"
    build_from_paths(path, [OSV_EXTRACT / "PyPI"])
    old = Store.open(path)
    try:
        assert ids(old.lookup("PyPI", "requests"))
        build_from_paths(path, [OSV_EXTRACT / "Go"])  # a different database replaces the file
        assert ids(old.lookup("PyPI", "requests")) == ["PYSEC-2018-28", "PYSEC-2023-74"]  # still the old data
        assert old.get("PYSEC-2020-96") is not None
        with Store.open(path) as new:
            assert new.lookup("PyPI", "requests") == []
            assert ids(new.lookup("Go", "github.com/gin-gonic/gin"))
    finally:
        old.close()
    assert _leftovers(tmp_path) == []


def test_a_failure_mid_build_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    build_from_paths(path, [OSV_EXTRACT / "PyPI"])
    before, inode = path.read_bytes(), path.stat().st_ino

    def records() -> Iterator[Advisory]:
        stats = ImportStats()
        for i, a in enumerate(iter_path(OSV_EXTRACT / "Debian", stats)):
            if i == 2:
                raise RuntimeError("disk on fire")
            yield a

    with pytest.raises(RuntimeError, match="disk on fire"):
        build_database(path, records(), sources=["x"])
    assert path.read_bytes() == before and path.stat().st_ino == inode
    assert _leftovers(tmp_path) == []
    with Store.open(path) as s:
        assert ids(s.lookup("PyPI", "requests"))


def test_a_killed_build_leaves_the_old_file_and_its_litter_is_swept(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    build_from_paths(path, [OSV_EXTRACT / "PyPI"])
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from hullscan.vulndb.osv import ImportStats, iter_path
        from hullscan.vulndb.store import build_database
        def records():
            for i, a in enumerate(iter_path(Path({str(OSV_EXTRACT / 'Debian')!r}), ImportStats())):
                if i == 2:
                    print("mid-build", flush=True)
                    time.sleep(60)
                yield a
        build_database(Path({str(path)!r}), records(), sources=["x"])
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"mid-build"
        assert [n for n in _leftovers(tmp_path) if n.endswith(".staging")]  # the build was under way
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert path.read_bytes() == before
    with Store.open(path) as s:
        assert ids(s.lookup("PyPI", "requests"))
    build_from_paths(path, [OSV_EXTRACT / "Go"])  # the next build sweeps the dead build's files
    assert _leftovers(tmp_path) == []


def test_refresh_only_moves_updated_at(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    build_from_paths(path, [OSV_EXTRACT / "npm"], updated_at="2020-01-01T00:00:00Z")
    with Store.open(path) as s:
        built_at = s.info().built_at
        assert s.is_stale() and s.info().updated_at == "2020-01-01T00:00:00Z"
    info = refresh(path, "2031-05-05T00:00:00Z")
    assert info.updated_at == "2031-05-05T00:00:00Z" and info.built_at == built_at
    with Store.open(path) as s:
        assert ids(s.lookup("npm", "lodash"))


def test_dictionary_compression_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "MIN_DICT_SAMPLES", 10)
    monkeypatch.setattr(store_mod, "DICT_SIZE", {"advisory": 2048, "affected": 1024})
    path = tmp_path / "dict.db"
    build_from_paths(path, [OSV_EXTRACT], kev_path=KEV_EXTRACT)
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM dictionaries")}
    conn.close()
    assert names == {"advisory", "affected"}
    with Store.open(path) as s:
        assert ids(s.lookup("Debian:11", "xorg-server")) == ["DSA-5380-1"]
        full = s.get("GHSA-jf85-cpcp-j695")
        assert full is not None and full.severity


def test_kev_file_loader_is_used_by_build(tmp_path: Path) -> None:
    kev = load_kev(KEV_EXTRACT)
    path = tmp_path / "k.db"
    stats = ImportStats()
    build_database(path, iter_path(OSV_EXTRACT / "Maven", stats), stats=stats, kev=kev)
    with Store.open(path) as s:
        assert s.meta("kev") == "2025.08.25"
        assert all(a.kev for a, _ in s.lookup("Maven", "org.apache.logging.log4j:log4j-core"))
