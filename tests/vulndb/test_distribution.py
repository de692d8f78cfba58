"""Database distribution through the fleet's PostgreSQL store (a real server): the scheduler publishes a build once,
a running worker takes it between two scans without a restart, a scan that has the old file open keeps reading
the old build, and a damaged or partial build never replaces a good one. Data: real OSV records (tests/vulndb/data,
see its PROVENANCE.md)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hullscan.errors import DatabaseError
from hullscan.imagebuild import Image, Layer, layer_tar, write_oci_layout
from hullscan.pipeline import Engine, ScanRequest
from hullscan.settings import Settings
from hullscan.sharedstore import engine_for
from hullscan.vulndb.distribution import (
    BUILDS,
    CHUNKS,
    KEEP,
    installed_build,
    newest_build,
    publish_database,
    refresh_database,
)
from hullscan.vulndb.store import Store, apply_changes, build_from_paths
from tests.layers._support import dist_info

from .osvserver import OSV_EXTRACT

pytestmark = pytest.mark.timeout(300)
SPAWN = multiprocessing.get_context("spawn")
REQUESTS_ADVISORY = "CVE-2023-32681"  # PYSEC-2023-74: requests >= 2.3.0, < 2.31.0


def node(root: Path, store_url: str) -> Settings:
    return Settings(data_dir=root / "data", cache_dir=root / "cache", work_dir=root / "work", pool_workers=0,
                    store_url=store_url)


def build(settings: Settings, ecosystem: str) -> None:
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    build_from_paths(settings.db_path, [OSV_EXTRACT / ecosystem])


def rows(store_url: str, table: str) -> int:
    engine = engine_for(store_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)
    finally:
        engine.dispose()


def test_a_published_build_reaches_a_worker_and_an_open_scan_keeps_the_old_one(store_url: str, tmp_path: Path) -> None:
    scheduler, worker = node(tmp_path / "scheduler", store_url), node(tmp_path / "worker", store_url)
    assert not refresh_database(worker)  # nothing published yet
    build(scheduler, "PyPI")
    first = publish_database(scheduler)
    assert first is not None and publish_database(scheduler) == first  # the same build is published once
    assert rows(store_url, BUILDS) == 1
    assert refresh_database(worker) and not refresh_database(worker)
    assert installed_build(worker) == first.digest
    assert worker.db_path.read_bytes() == scheduler.db_path.read_bytes()

    in_progress = Store.open(worker.db_path)  # a scan that started on the first build
    counts = in_progress.info().counts
    assert set(counts) == {"PyPI"}
    try:
        build(scheduler, "Go")
        second = publish_database(scheduler)
        assert second is not None and second.id != first.id and newest_build(worker) == second
        assert refresh_database(worker)
        assert in_progress.lookup("PyPI", "requests") and in_progress.info().counts == counts
        with Store.open(worker.db_path) as current:  # the next scan opens the new build
            assert not current.lookup("PyPI", "requests") and "Go" in current.info().counts
    finally:
        in_progress.close()
    assert sorted(p.name for p in worker.db_path.parent.iterdir() if not p.name.startswith(".hullscan.db.lock")) == [
        "hullscan.db", "hullscan.db.published"]  # no temporary file left behind


def test_old_builds_are_pruned_and_a_hand_made_change_is_replaced(store_url: str, tmp_path: Path) -> None:
    scheduler, worker = node(tmp_path / "scheduler", store_url), node(tmp_path / "worker", store_url)
    for ecosystem in ("PyPI", "Go", "npm", "Maven"):
        build(scheduler, ecosystem)
        publish_database(scheduler)
    assert rows(store_url, BUILDS) == KEEP and rows(store_url, CHUNKS) == KEEP  # small files: one chunk each
    assert refresh_database(worker)
    # someone put an older database on the worker by hand: the fleet's build wins again
    build_from_paths(worker.db_path, [OSV_EXTRACT / "PyPI"], updated_at="2026-01-01T00:00:00Z")
    assert installed_build(worker) is None
    assert refresh_database(worker)
    assert worker.db_path.read_bytes() == scheduler.db_path.read_bytes()


def test_a_newer_file_on_a_shared_path_is_not_put_back_to_the_published_build(store_url: str,
                                                                               tmp_path: Path) -> None:
    # Scheduler and worker share one database file (one machine): the scheduler's update lands in the file before
    # it is published; a worker refreshing in between keeps the newer data rather than installing the old build.
    scheduler = node(tmp_path / "scheduler", store_url)
    worker = node(tmp_path / "worker", store_url).model_copy(update={"db": scheduler.db_path})
    scheduler.db_path.parent.mkdir(parents=True)
    build_from_paths(scheduler.db_path, [OSV_EXTRACT / "PyPI"], updated_at="2026-01-01T00:00:00Z")
    first = publish_database(scheduler)
    assert first is not None and not refresh_database(worker)
    apply_changes(scheduler.db_path, [], removals=["PYSEC-2023-74"])  # the update, not yet published
    updated = scheduler.db_path.read_bytes()
    assert not refresh_database(worker)
    assert worker.db_path.read_bytes() == updated
    second = publish_database(scheduler)
    assert second is not None and second.id != first.id and not refresh_database(worker)


def test_a_damaged_build_never_replaces_the_worker_database(store_url: str, tmp_path: Path) -> None:
    scheduler, worker = node(tmp_path / "scheduler", store_url), node(tmp_path / "worker", store_url)
    build(scheduler, "PyPI")
    publish_database(scheduler)
    assert refresh_database(worker)
    before = worker.db_path.read_bytes()
    build(scheduler, "Go")
    second = publish_database(scheduler)
    assert second is not None
    engine = engine_for(store_url)
    with engine.begin() as conn:  # a build that lost its data (or was tampered with): the digest says so
        conn.execute(sa.text(f"UPDATE {BUILDS} SET digest = :d WHERE id = :i"), {"d": "sha256:" + "0" * 64,
                                                                                  "i": second.id})
    engine.dispose()
    with pytest.raises(DatabaseError, match="does not match its digest"):
        refresh_database(worker)
    assert worker.db_path.read_bytes() == before
    assert not [p for p in worker.db_path.parent.iterdir() if p.name.endswith(".pulling")]


def test_without_a_shared_store_nothing_is_published(tmp_path: Path) -> None:
    alone = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/service.db")
    build(alone, "PyPI")
    assert publish_database(alone) is None and not refresh_database(alone)


def worker_loop(root: str, store_url: str, target: str, jobs: Any, results: Any) -> None:
    """A long-running worker: before each scan it takes the newest published database, then scans."""
    settings = node(Path(root), store_url)
    with Engine(settings) as engine:
        while jobs.get() is not None:
            swapped = refresh_database(settings)
            report = engine.scan(ScanRequest(target, items=("vuln",)))
            assert report.database is not None
            results.put((swapped, report.database.counts, sorted(v.id for v in report.vulnerabilities)))


def test_a_running_worker_picks_up_a_new_build_between_scans(store_url: str, tmp_path: Path) -> None:
    layout = tmp_path / "img"
    write_oci_layout(layout, Image([Layer(layer_tar([dist_info("requests", "2.30.0")]))]))
    scheduler = node(tmp_path / "scheduler", store_url)
    build(scheduler, "PyPI")
    publish_database(scheduler)
    jobs, results = SPAWN.Queue(), SPAWN.Queue()
    worker = SPAWN.Process(target=worker_loop, args=(str(tmp_path / "worker"), store_url, f"oci:{layout}:latest",
                                                     jobs, results))
    worker.start()
    try:
        jobs.put("scan")
        swapped, counts, found = results.get(timeout=120)
        assert swapped and set(counts) == {"PyPI"} and found == [REQUESTS_ADVISORY]
        jobs.put("scan")
        assert results.get(timeout=120) == (False, counts, [REQUESTS_ADVISORY])  # nothing new: no download
        build(scheduler, "Go")
        publish_database(scheduler)
        jobs.put("scan")
        swapped, counts, found = results.get(timeout=120)
        assert swapped and "PyPI" not in counts and found == []  # the same process, the new build
        jobs.put(None)
        worker.join(60)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()


def test_a_machine_with_an_older_file_does_not_take_the_fleet_back(store_url: str, tmp_path: Path) -> None:
    stale, scheduler = node(tmp_path / "stale", store_url), node(tmp_path / "scheduler", store_url)
    stale.db_path.parent.mkdir(parents=True, exist_ok=True)
    build_from_paths(stale.db_path, [OSV_EXTRACT / "PyPI"], updated_at="2026-01-01T00:00:00Z")  # last confirmed then
    build(scheduler, "Go")  # current now
    newest = publish_database(scheduler)
    assert newest is not None and publish_database(stale) == newest
    assert rows(store_url, BUILDS) == 1
    assert refresh_database(stale)  # the stale machine takes the fleet's build instead
    assert stale.db_path.read_bytes() == scheduler.db_path.read_bytes()


def test_worker_threads_refreshing_at_once_install_the_build_once(store_url: str, tmp_path: Path) -> None:
    scheduler, worker = node(tmp_path / "scheduler", store_url), node(tmp_path / "worker", store_url)
    build(scheduler, "PyPI")
    publish_database(scheduler)
    start = threading.Barrier(4)
    results: list[bool] = []

    def refresh() -> None:
        start.wait()
        results.append(refresh_database(worker))

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert worker.db_path.read_bytes() == scheduler.db_path.read_bytes()
