"""Who holds a scan, on the real service database (SQLite and PostgreSQL): a dispatcher's claim, a worker's take,
a duplicate delivery, a holder given up on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hullscan.service.core import Service
from hullscan.service.jobs.queue import Limits
from hullscan.service.storage.models import QUEUED, RUNNING, Image, Namespace, Registry, Scan
from tests.service.conftest import make_settings, seed_images
from tests.support.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
    service = Service(make_settings(tmp_path, url), scheduler=False)
    service.db.migrate()
    seed_images(service)
    try:
        yield service
    finally:
        service.db.close()


def queue_one(svc: Service, trigger: str = "manual") -> int:
    with svc.db.session() as session:
        image = session.scalars(select(Image).where(Image.tag.is_not(None)).order_by(Image.id).limit(1)).one()
        scan, _ = svc.jobs.enqueue(session, image, trigger, ["secret"])
        return scan.id


def test_one_take_wins_and_a_duplicate_delivery_is_refused(svc: Service) -> None:
    scan_id = queue_one(svc)
    assert svc.jobs.claim("dispatch@a", Limits(), slots=5) == [scan_id]
    assert svc.jobs.take(scan_id, "dispatch@a", "east@w1")
    assert not svc.jobs.take(scan_id, "dispatch@a", "east@w2")  # the same task delivered again
    assert not svc.jobs.take(scan_id, "dispatch@other", "east@w2")
    with svc.db.session() as session:
        row = session.get(Scan, scan_id)
        assert row is not None and (row.state, row.worker) == (RUNNING, "east@w1")


def test_a_held_scan_someone_stops_is_not_taken(svc: Service) -> None:
    scan_id = queue_one(svc)
    svc.jobs.claim("dispatch@a", Limits(), slots=5)
    with svc.db.session() as session:
        row = session.get(Scan, scan_id)
        assert row is not None
        svc.jobs.request_stop(session, row, "admin")
    assert svc.jobs.heartbeat_owned("dispatch@a") == {scan_id}
    assert not svc.jobs.take(scan_id, "dispatch@a", "east@w1")


def test_a_worker_given_up_on_is_told_to_stop_its_scan(svc: Service) -> None:
    """A worker whose heartbeats came too late (a busy machine) finds its scan queued again: it must stop running
    it, or the scan would run twice and the caps would not hold."""
    scan_id = queue_one(svc)
    svc.jobs.claim("dispatch@a", Limits(), slots=5)
    assert svc.jobs.take(scan_id, "dispatch@a", "east@w1")
    assert svc.jobs.heartbeat([scan_id], "east@w1") == set()
    with svc.db.session() as session:  # its heartbeat is old: the sweep gives up on it
        row = session.get(Scan, scan_id)
        assert row is not None
        row.heartbeat_at = row.heartbeat_at - dt.timedelta(minutes=5)  # type: ignore[operator]
    assert svc.jobs.recover(stale_after=dt.timedelta(seconds=60), attempts=3) == 1
    with svc.db.session() as session:
        assert session.get(Scan, scan_id).state == QUEUED  # type: ignore[union-attr]
    assert svc.jobs.heartbeat([scan_id], "east@w1") == {scan_id}


def test_routes_name_the_cluster_and_the_priority(svc: Service) -> None:
    from hullscan.service.storage.models import Registry

    with svc.db.session() as session:
        for registry in session.scalars(select(Registry)):
            registry.cluster = "west"
    scan_id = queue_one(svc, "scheduled")
    assert svc.jobs.routes([scan_id]) == [(scan_id, "west", 3)]


def test_a_registry_with_a_long_queue_does_not_hold_back_the_others(svc: Service) -> None:
    """600 scans of one registry queued first (more than a claim looks at) and 3 of another: one claim takes its
    cap of the first and the second's 3 at once, not the first's cap alone (head-of-line blocking)."""
    with svc.db.session() as session:
        busy_id = session.scalars(select(Registry.id).where(Registry.name == "r")).one()  # the fixture's
        quiet = Registry(name="quiet", type="distribution", url="http://127.0.0.1:9")
        session.add(quiet)
        session.flush()
        quiet_id = quiet.id
        for registry_id, count in ((busy_id, 600), (quiet_id, 3)):
            ns = Namespace(registry_id=registry_id, name="load")
            session.add(ns)
            session.flush()
            for n in range(count):
                image = Image(registry_id=registry_id, namespace_id=ns.id, repository=f"load/app{n}", present=True,
                              reference="1", tag="1", digest=f"sha256:{registry_id:032d}{n:032d}")
                session.add(image)
                session.flush()
                svc.jobs.enqueue(session, image, "sync", ["secret"])
    claimed = svc.jobs.claim("dispatch@a", Limits(per_registry=4, total=20), slots=20)
    with svc.db.session() as session:
        by_registry = [session.get(Scan, i).registry_id for i in claimed]  # type: ignore[union-attr]
    assert (by_registry.count(busy_id), by_registry.count(quiet_id)) == (4, 3)
