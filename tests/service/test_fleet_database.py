"""The service's database update in a fleet: after `db update` the build is published through the shared store (a
real PostgreSQL) for the workers; on one machine (SQLite) nothing is published. Data: real OSV records served by a
local bucket (tests/vulndb/data, see its PROVENANCE.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hullscan.service.reevaluation import DatabaseUpdater, reevaluate_if_changed
from hullscan.service.storage.db import Database
from hullscan.settings import Settings
from hullscan.vulndb.distribution import newest_build, refresh_database
from hullscan.vulndb.store import apply_changes, build_from_paths
from tests.support.postgres import PostgresServer
from tests.vulndb.osvserver import OSV_EXTRACT, OSVBucket, bucket_from_extract

pytestmark = pytest.mark.timeout(300)


def settings(root: Path, database_url: str, bucket: str) -> Settings:
    return Settings(data_dir=root / "data", cache_dir=root / "cache", database_url=database_url, osv_url=bucket,
                    cve_url="", epss_url="", kev_url="", pool_workers=0)


def update(settings: Settings) -> dict[str, object]:
    db = Database(settings.service_database_url)
    try:
        db.migrate()
        updater = DatabaseUpdater(db, settings)
        updater.start(requested_by="test")
        updater.wait(240)
        status = updater.status()
    finally:
        db.close()
    assert status is not None and status["state"] == "succeeded", status
    return status


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_update_is_published_to_the_fleet(kind: str, postgres: PostgresServer, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    bucket = OSVBucket(bucket_from_extract(tmp_path / "bucket", ["PyPI", "Go"])).start()
    request.addfinalizer(bucket.stop)
    url = postgres.create_database() if kind == "postgresql" else f"sqlite:///{tmp_path / 'service.db'}"
    scheduler = settings(tmp_path / "scheduler", url, bucket.url)
    status = update(scheduler)
    build = newest_build(scheduler)
    if kind == "sqlite":
        assert status["published"] is None and build is None
        return
    assert build is not None and status["published"] == build.id
    assert build.digest == "sha256:" + hashlib.sha256(scheduler.db_path.read_bytes()).hexdigest()
    worker = settings(tmp_path / "worker", url, bucket.url)
    assert refresh_database(worker)
    assert worker.db_path.read_bytes() == scheduler.db_path.read_bytes()


def test_a_database_changed_by_hand_is_published_before_its_reevaluations(postgres: PostgresServer,
                                                                          tmp_path: Path) -> None:
    url = postgres.create_database()
    scheduler = Settings(data_dir=tmp_path / "data", database_url=url, pool_workers=0)
    scheduler.db_path.parent.mkdir(parents=True, exist_ok=True)
    build_from_paths(scheduler.db_path, [OSV_EXTRACT / "PyPI"])
    db = Database(url)
    try:
        db.migrate()
        reevaluate_if_changed(db, scheduler)  # the scheduler's tick sees a database: it is published
        first = newest_build(scheduler)
        assert first is not None
        apply_changes(scheduler.db_path, [], removals=["PYSEC-2023-74"])  # an incremental `db update` by hand
        assert newest_build(scheduler) == first
        reevaluate_if_changed(db, scheduler)
        second = newest_build(scheduler)
    finally:
        db.close()
    assert second is not None and second.id != first.id
    assert second.digest == "sha256:" + hashlib.sha256(scheduler.db_path.read_bytes()).hexdigest()
