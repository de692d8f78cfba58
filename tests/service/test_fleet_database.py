"""The service's database update in a fleet: after `db update` the build is published through the shared store (a
real PostgreSQL) for the workers; on one machine (SQLite) nothing is published. Data: real OSV records served by a
local bucket (tests/vulndb/data, see its PROVENANCE.md)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hullscan.service.reevaluation import DatabaseUpdater, reevaluate_if_changed
from hullscan.service.storage.db import Database
from hullscan.settings import Settings
from hullscan.vulndb.distribution import newest_build, publish_database, refresh_database
from hullscan.vulndb.store import apply_changes, build_from_paths
from tests.service.conftest import make_settings, running, wait_for
from tests.service.images import openssl_image, push
from tests.service.test_lifecycle import connect
from tests.support.postgres import PostgresServer
from tests.support.registry import RegistryServer
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


def test_the_service_takes_each_published_build_before_a_scan_without_a_restart(postgres: PostgresServer,
                                                                                registry: RegistryServer,
                                                                                tmp_path: Path) -> None:
    # The service's own database (no Alpine records, last confirmed long ago) and two builds the fleet's scheduler
    # publishes one after the other: with Alpine's records (ALPINE-CVE-2019-1551 applies to the image), then
    # without. Each scan of the same running service matches against the build published before it started.
    url = postgres.create_database()
    without_alpine = tmp_path / "extract"
    for folder in OSV_EXTRACT.iterdir():
        if folder.name != "Alpine":
            shutil.copytree(folder, without_alpine / folder.name)
    settings = make_settings(tmp_path / "service", url)
    build_from_paths(settings.db_path, [without_alpine], updated_at="2026-01-01T00:00:00Z")
    scheduler = Settings(data_dir=tmp_path / "scheduler", store_url=url)
    scheduler.db_path.parent.mkdir(parents=True)
    push(registry, "fleetdb/openssl", "3.11", openssl_image())

    def scan_once(api: TestClient, image_id: int) -> tuple[list[str], list[str]]:
        done = wait_for(api, api.post("/api/v1/scans", json={"image_id": image_id}).json()["id"])
        assert done["state"] == "succeeded", done
        report = api.get(f"/api/v1/scans/{done['id']}/report").json()
        return [v["id"] for v in report["vulnerabilities"]], sorted(report["database"]["counts"])

    with running(settings) as api:
        _, images = connect(api, registry.url, "local")
        image_id = images["fleetdb/openssl:3.11"]
        build_from_paths(scheduler.db_path, [OSV_EXTRACT])
        assert publish_database(scheduler) is not None
        found, ecosystems = scan_once(api, image_id)
        assert found == ["CVE-2019-1551"] and "Alpine" in ecosystems
        assert settings.db_path.read_bytes() == scheduler.db_path.read_bytes()
        build_from_paths(scheduler.db_path, [without_alpine])
        assert publish_database(scheduler) is not None
        found, ecosystems = scan_once(api, image_id)
        assert found == [] and "Alpine" not in ecosystems
