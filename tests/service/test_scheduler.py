"""Scheduled scans: cron in a time zone, fired once per due run (even by two schedulers), scanning the present
tagged images of a registry or namespace; the schedules API and who may use it; and a schedule that fires in the
running service and scans images of the real registry."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hullscan.service.core import Service
from hullscan.service.passwords import hash_password
from hullscan.service.scheduler import Scheduler, next_run
from hullscan.service.storage.models import Image, Membership, Scan, Schedule, User
from tests.service.conftest import make_settings, running, seed_images, wait_for, wait_sync
from tests.service.images import app_image, push
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(300)
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_next_run_reads_the_cron_in_its_zone() -> None:
    assert next_run("0 2 * * *", "UTC", at("2026-07-01T10:00:00")) == at("2026-07-02T02:00:00")
    assert next_run("0 2 * * *", "Europe/Paris", at("2026-07-01T10:00:00")) == at("2026-07-02T00:00:00")  # CEST
    assert next_run("0 2 * * *", "Europe/Paris", at("2026-12-01T10:00:00")) == at("2026-12-02T01:00:00")  # CET
    assert next_run("0 2 * * *", "UTC", at("2026-07-02T02:00:00")) == at("2026-07-03T02:00:00")  # strictly after
    assert next_run("*/10 * * * * 30", "UTC", at("2026-07-01T10:00:00")) == at("2026-07-01T10:00:30")
    for bad, zone in (("0 2 * *", "UTC"), ("61 2 * * *", "UTC"), ("daily", "UTC"), ("0 2 * * *", "Mars/Olympus")):
        with pytest.raises(ValueError):
            next_run(bad, zone, at("2026-07-01T10:00:00"))


def test_a_daily_schedule_fires_once_per_run_in_its_zone(idle_service: Service) -> None:
    svc = idle_service
    registry_id, team_id = seed_images(svc)
    created = at("2026-07-01T10:00:00")
    with svc.db.session() as session:
        schedule = Schedule(registry_id=registry_id, namespace_id=team_id, action="scan", cron="0 2 * * *",
                            timezone="Europe/Paris", next_run_at=next_run("0 2 * * *", "Europe/Paris", created))
        session.add(schedule)
        session.flush()
        schedule_id = schedule.id
    scheduler = Scheduler(svc.db, svc.box, svc.settings)
    assert scheduler.tick(at("2026-07-01T23:59:59")) == []  # 01:59:59 in Paris
    assert scheduler.tick(at("2026-07-02T00:00:20")) == [schedule_id]
    # Claimed: neither this scheduler nor a second one (another process) fires the same run again.
    assert scheduler.tick(at("2026-07-02T00:00:25")) == []
    assert Scheduler(svc.db, svc.box, svc.settings).tick(at("2026-07-02T00:00:30")) == []
    with svc.db.session() as session:
        row = session.get(Schedule, schedule_id)
        assert row is not None
        assert (row.last_run_at, row.next_run_at) == (at("2026-07-02T00:00:20"), at("2026-07-03T00:00:00"))
        assert row.last_outcome is not None
        assert (row.last_outcome["state"], row.last_outcome["images"], row.last_outcome["queued"]) == \
            ("succeeded", 3, 3)
        scans = session.execute(select(Image.repository, Image.tag, Scan.trigger, Scan.priority, Scan.state)
                                .join(Image, Scan.image_id == Image.id).order_by(Image.repository, Image.tag)).all()
    # Present, tagged, in the namespace: not the absent tag, not the untagged digest, not the other namespace.
    assert scans == [("team/a", "1", "scheduled", 3, "queued"), ("team/a", "2", "scheduled", 3, "queued"),
                     ("team/b", "1", "scheduled", 3, "queued")]
    # The next day, while those still wait, the same images are not queued twice.
    assert scheduler.tick(at("2026-07-03T00:00:05")) == [schedule_id]
    with svc.db.session() as session:
        row = session.get(Schedule, schedule_id)
        assert row is not None and row.last_outcome is not None and row.last_outcome["queued"] == 0
        assert len(session.scalars(select(Scan.id)).all()) == 3


def test_a_disabled_schedule_and_a_registry_wide_one(idle_service: Service) -> None:
    svc = idle_service
    registry_id, _ = seed_images(svc)
    with svc.db.session() as session:
        # A zone this machine's time-zone database does not know (saved when it did): disabled, the others go on.
        unknown = Schedule(registry_id=registry_id, action="scan", cron="0 * * * *", timezone="Mars/Olympus",
                           next_run_at=at("2026-07-01T10:00:00"))
        session.add_all([Schedule(registry_id=registry_id, action="scan", cron="0 * * * *", enabled=False,
                                  next_run_at=at("2026-07-01T10:00:00")), unknown,
                         Schedule(registry_id=registry_id, action="scan", cron="0 * * * *")])  # next run not set yet
    scheduler = Scheduler(svc.db, svc.box, svc.settings)
    assert scheduler.tick(at("2026-07-01T10:30:00")) == []  # the disabled one never fires; the other gets 11:00
    fired = scheduler.tick(at("2026-07-01T11:00:00"))
    assert len(fired) == 1 and unknown.id not in fired
    with svc.db.session() as session:
        assert len(session.scalars(select(Scan.id)).all()) == 4  # every namespace's present tagged images
        broken = session.get(Schedule, unknown.id)
        assert broken is not None and broken.enabled is False and broken.last_outcome is not None
        assert broken.last_outcome["state"] == "failed" and "Mars/Olympus" in broken.last_outcome["cause"]["message"]


def test_manual_scans_go_first(idle_service: Service) -> None:
    svc = idle_service
    """Whatever the order they were queued in: manual, push, sync, scheduled, re-evaluation."""
    registry_id, _ = seed_images(svc)
    jobs = svc.jobs
    with svc.db.session() as session:
        images = session.scalars(select(Image).order_by(Image.id)).all()[:5]
        for image, trigger in zip(images, ["reevaluate", "scheduled", "sync", "push", "manual"], strict=True):
            jobs.enqueue(session, image, trigger, ["secret"])
        # Asked for by hand while it waits as scheduled: it moves up, and is not queued twice.
        again, created = jobs.enqueue(session, images[1], "manual", ["secret"])
        assert not created and again.priority == 0
    from hullscan.service.jobs.queue import Limits

    order = []
    for _ in range(5):
        (claimed,) = jobs.claim("test@worker", Limits(per_registry=1, total=1), slots=5)
        with svc.db.session() as session:
            scan = session.get(Scan, claimed)
            assert scan is not None
            order.append((scan.trigger, scan.priority))
        jobs.finish(claimed, "test@worker", "succeeded")
    assert order == [("scheduled", 0), ("manual", 0), ("push", 1), ("sync", 2), ("reevaluate", 4)]


# -- the API -------------------------------------------------------------------------------------------------------


def _user(client: TestClient, name: str, roles: dict[int, str]) -> tuple[str, str]:
    svc: Service = client.app.state.service  # type: ignore[attr-defined]
    with svc.db.session() as session:
        user = User(username=name, password_hash=hash_password(f"{name} password"))
        session.add(user)
        session.flush()
        session.add_all([Membership(user_id=user.id, namespace_id=ns, role=role) for ns, role in roles.items()])
    return name, f"{name} password"


def test_schedules_api_and_who_may_use_it(api: TestClient) -> None:
    svc: Service = api.app.state.service  # type: ignore[attr-defined]
    registry_id, team_id = seed_images(svc)
    maintainer = _user(api, "maya", {team_id: "maintainer"})
    viewer = _user(api, "vic", {team_id: "viewer"})
    outsider = _user(api, "olga", {})

    daily = {"registry": registry_id, "namespace": "team", "cron": "0 2 * * *", "timezone": "Europe/Paris"}
    mine = api.post("/api/v1/schedules", json=daily, auth=maintainer)
    assert mine.status_code == 201, mine.text
    body = mine.json()
    assert (body["action"], body["namespace"], body["created_by"], body["last_run_at"]) == ("scan", "team", "maya",
                                                                                            None)
    assert dt.datetime.fromisoformat(body["next_run_at"]).astimezone(ZoneInfo("Europe/Paris")).hour == 2

    for who, payload in ((maintainer, {"registry": registry_id, "cron": "0 3 * * *"}),
                         (maintainer, {"registry": registry_id, "action": "sync", "cron": "0 3 * * *"}),
                         (maintainer, {"action": "db-update", "cron": "0 3 * * *"}),
                         (viewer, daily)):
        assert api.post("/api/v1/schedules", json=payload, auth=who).status_code == 403, (who, payload)
    assert api.post("/api/v1/schedules", json=daily, auth=None).status_code == 401

    wide = api.post("/api/v1/schedules", json={"registry": registry_id, "action": "sync", "cron": "30 1 * * 0"})
    nightly_db = api.post("/api/v1/schedules", json={"action": "db-update", "cron": "0 4 * * *"})
    assert wide.status_code == 201 and nightly_db.status_code == 201, (wide.text, nightly_db.text)
    for bad, why in (({**daily, "cron": "0 2 * *"}, "five fields"), ({**daily, "timezone": "Mars/Olympus"}, "zone"),
                     ({**daily, "namespace": "nope"}, "namespace"),
                     ({"registry": registry_id, "namespace": "team", "action": "sync", "cron": "0 2 * * *"},
                      "namespace"), ({"action": "db-update", "registry": registry_id, "cron": "0 2 * * *"}, "no "),
                     ({"cron": "0 2 * * *"}, "registry")):
        refused = api.post("/api/v1/schedules", json=bad)
        assert refused.status_code in (404, 422) and why in refused.json()["error"]["message"], (bad, refused.text)

    listed = api.get("/api/v1/schedules")
    assert listed.headers["X-Total-Count"] == "3" and len(listed.json()) == 3
    assert [s["id"] for s in api.get("/api/v1/schedules", auth=viewer).json()] == [body["id"]]
    assert api.get("/api/v1/schedules", auth=outsider).json() == []
    assert api.get(f"/api/v1/schedules/{wide.json()['id']}", auth=maintainer).status_code == 404
    assert api.delete(f"/api/v1/schedules/{body['id']}", auth=viewer).status_code == 403

    paused = api.patch(f"/api/v1/schedules/{body['id']}", json={"enabled": False}, auth=maintainer).json()
    assert paused["enabled"] is False and paused["next_run_at"] is None
    assert api.post(f"/api/v1/schedules/{body['id']}/run", auth=maintainer).status_code == 409
    assert api.delete(f"/api/v1/schedules/{body['id']}", auth=maintainer).status_code == 204
    assert api.get(f"/api/v1/schedules/{body['id']}").status_code == 404
    actions = [e.action for e in _audit(svc)]
    assert actions.count("schedule.create") == 3 and "schedule.delete" in actions


def _audit(svc: Service) -> list[object]:
    from hullscan.service.storage.models import AuditEvent

    with svc.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _wait_schedule(client: TestClient, schedule_id: int, states: tuple[str, ...], timeout: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        schedule = client.get(f"/api/v1/schedules/{schedule_id}").json()
        outcome = schedule["last_outcome"] or {}
        if outcome.get("state") in states or time.monotonic() > deadline:
            return schedule  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_schedules_fire_in_the_running_service(registry: RegistryServer, tmp_path: Path) -> None:
    ns = "nightly"
    digests = {push(registry, f"{ns}/app", str(n), app_image(200 + n)) for n in range(2)}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", scheduler_interval=0.2)
    with running(settings) as api:
        reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                                   "insecure": True}).json()
        # A synchronisation schedule, run now: the images and the namespace appear.
        sync = api.post("/api/v1/schedules", json={"registry": reg["id"], "action": "sync", "cron": "0 3 * * *"})
        assert api.post(f"/api/v1/schedules/{sync.json()['id']}/run").status_code == 202
        synced = _wait_schedule(api, sync.json()["id"], ("succeeded", "failed"))
        assert synced["last_outcome"]["state"] == "succeeded" and synced["last_run_at"] is not None
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"

        # A scan schedule every two seconds (a sixth cron field), left to the scheduler's clock.
        every = api.post("/api/v1/schedules", json={"registry": reg["id"], "namespace": ns,
                                                     "cron": "* * * * * */2"}).json()
        fired = _wait_schedule(api, every["id"], ("succeeded", "failed"))
        assert fired["last_outcome"]["state"] == "succeeded" and fired["last_outcome"]["images"] == 2
        assert api.delete(f"/api/v1/schedules/{every['id']}").status_code == 204
        scans = api.get("/api/v1/scans", params={"registry": reg["id"], "trigger": "scheduled"}).json()
        assert {s["digest"] for s in scans} == digests
        for scan in scans:
            assert wait_for(api, scan["id"])["state"] == "succeeded"
