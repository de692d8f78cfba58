"""Outbound notifications: webhooks posted to a real HTTP receiver started by the test, signed with HMAC-SHA256,
retried with backoff, given up with a reason, and logged; events from real scans through the real registry, from
real refused pulls through the gate (`skopeo`), and from a re-evaluation after a real database update."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hullscan.service.core import Service
from hullscan.service.jobs.queue import JobStore
from hullscan.service.notify import policies
from hullscan.service.notify.signing import verify
from hullscan.service.storage.models import Delivery, Image, Scan, Webhook
from hullscan.settings import Settings
from hullscan.vulndb.store import apply_changes, build_from_paths
from tests.service.conftest import (
    OSV_EXTRACT,
    make_settings,
    running,
    scan_repository,
    seed_images,
    synced_registry,
    wait_for,
    wait_update,
)
from tests.service.images import lodash_image as vulnerable
from tests.service.images import push
from tests.service.live import GateProcess, skopeo_pull
from tests.support.receiver import Receiver
from tests.support.registry import RegistryServer, free_port
from tests.vulndb.osvserver import OSVBucket, bucket_from_extract

pytestmark = pytest.mark.timeout(600)
SECRET = "whsec-" + "k3y-0f-th3-r3ce1ver-9f8e7d"  # made up: must never come back from the API nor reach a log
AUTH = "Bearer hook-" + "t0ken-5a4b3c"
SCAN_EVENTS = ["SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def quick(tmp_path: Path, database_url: str, **kw: Any) -> Settings:
    """Settings whose retries come quickly, so the tests wait little (no assertion depends on how long)."""
    return make_settings(tmp_path, database_url, scan_attempts=1, retry_delay=0, webhook_retry_delay=0.05,
                         webhook_attempts=3, **kw)


def hook(api: TestClient, url: str, events: list[str], **kw: Any) -> dict[str, Any]:
    made = api.post("/api/v1/webhooks", json={"name": "ci", "url": url, "event_types": events, "secret": SECRET,
                                              **kw})
    assert made.status_code == 201, made.text
    return dict(made.json())


def signed(r: Any) -> dict[str, Any]:
    """The body, once its signature and its delivery headers are checked as a receiver should."""
    assert verify(SECRET, r.body, r.headers["x-hullscan-signature"]), r.headers
    doc: dict[str, Any] = r.json()
    assert str(doc["delivery_id"]) == r.headers["x-hullscan-delivery"]
    assert doc["type"] == r.headers["x-hullscan-event"]
    assert SECRET.encode() not in r.body and b"t0ken" not in r.body
    return doc


def wait_delivery(api: TestClient, webhook_id: int, states: tuple[str, ...] = ("delivered", "failed"),
                  count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()
        if sum(1 for d in rows if d["state"] in states) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_scans_that_complete_and_fail_are_posted_signed(tmp_path: Path, database_url: str, receiver: Receiver,
                                                        own_registry: RegistryServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    digest = push(own_registry, "web/shop", "1.0", vulnerable())
    push(own_registry, "tools/clean", "1", vulnerable())
    caplog.set_level("DEBUG")
    with running(quick(tmp_path, database_url)) as api:
        reg = synced_registry(api, own_registry.url)
        web = hook(api, receiver.url, SCAN_EVENTS, registry=reg["id"], namespace="web", auth_header=AUTH)
        # another namespace's webhook hears nothing of web's scans
        tools = hook(api, receiver.url + "/tools", SCAN_EVENTS, registry=reg["id"], namespace="tools")
        image, scan = scan_repository(api, "web/shop")
        assert scan["state"] == "succeeded", scan

        assert receiver.wait(lambda r: len(r.of("SCANNING_COMPLETED")) >= 1)
        got = receiver.of("SCANNING_COMPLETED")
        assert len(got) == 1 and got[0].path == "/hook"
        assert got[0].headers["authorization"] == AUTH
        doc = signed(got[0])
        assert doc["operator"] == "admin" and doc["event_data"]["repository"] == {
            "name": "shop", "namespace": "web", "repo_full_name": "web/shop"}
        resource = doc["event_data"]["resources"][0]
        assert (resource["digest"], resource["tag"]) == (digest, "1.0")
        assert resource["resource_url"].endswith("/web/shop:1.0")
        overview = resource["scan_overview"]
        assert (overview["scan_id"], overview["scan_status"], overview["cause"]) == (scan["id"], "Success", None)
        assert overview["summary"]["vulnerabilities"] == scan["counts"]["vulnerabilities"]
        assert overview["summary"]["vulnerabilities"]["CRITICAL"] >= 1

        log = wait_delivery(api, web["id"])
        assert [(d["event_type"], d["state"], d["attempts"], d["last_status"]) for d in log] == [
            ("SCANNING_COMPLETED", "delivered", 1, 200)]
        assert api.get(f"/api/v1/webhooks/{tools['id']}/deliveries").json() == []

        # A registry that is down: the scan fails, and the event says why and what to do.
        svc: Service = api.app.state.service  # type: ignore[attr-defined]
        seed_images(svc)  # registry "r" at 127.0.0.1:9, where nothing listens
        system = hook(api, receiver.url + "/all", ["SCANNING_FAILED"])
        down = api.get("/api/v1/images", params={"repository": "team/a"}).json()[0]
        failed = wait_for(api, api.post("/api/v1/scans", json={"image_id": down["id"]}).json()["id"])
        assert failed["state"] == "failed" and failed["cause"]["code"] == "REGISTRY_UNREACHABLE", failed
        assert receiver.wait(lambda r: len(r.of("SCANNING_FAILED")) >= 1)
        [event] = receiver.of("SCANNING_FAILED")
        assert event.path == "/hook/all" and "authorization" not in event.headers
        cause = signed(event)["event_data"]["resources"][0]["scan_overview"]["cause"]
        assert cause["code"] == "REGISTRY_UNREACHABLE" and cause["solution"] and cause["message"]
        assert wait_delivery(api, system["id"])[0]["state"] == "delivered"

        # the secrets are write-only: never in an answer, the audit log or a log line
        shown = api.get(f"/api/v1/webhooks/{web['id']}")
        assert shown.json()["has_secret"] is True and shown.json()["has_auth_header"] is True
        for text in (shown.text, api.get("/api/v1/webhooks").text, api.get("/api/v1/audit").text,
                     api.get(f"/api/v1/webhooks/{web['id']}/deliveries").text):
            assert SECRET not in text and "t0ken" not in text
    assert caplog.records and not [r for r in caplog.records if SECRET in r.getMessage() or "t0ken" in r.getMessage()]


# -- the outbox and the notifier, driven directly ---------------------------------------------------------------


@pytest.fixture
def quiet_service(tmp_path: Path, database_url: str) -> Iterator[Service]:
    """A service with its database ready and nothing running: the test drives the queue and the notifier."""
    svc = Service(quick(tmp_path, database_url), scheduler=False)
    svc.db.migrate()
    try:
        yield svc
    finally:
        svc.notifier.stop()
        svc.db.close()


def _webhook(svc: Service, url: str, events: list[str]) -> int:
    with svc.db.session() as session:
        return policies.create(session, svc.box, namespace_id=None, name="t", url=url, event_types=events,
                               secret=SECRET, auth_header=None, skip_cert_verify=False, enabled=True,
                               description="", by="test").id


def _stop_a_queued_scan(svc: Service) -> int:
    """Queue a scan of a seeded image and stop it before it starts (nothing runs scans here)."""
    jobs = JobStore(svc.db)
    with svc.db.session() as session:
        image = session.scalars(select(Image).where(Image.repository == "team/a", Image.tag == "1")).one()
        scan, _ = jobs.enqueue(session, image, "manual", ["vuln"], requested_by="alice")
        jobs.request_stop(session, scan, "alice")
        return scan.id


def _deliveries(svc: Service) -> list[Delivery]:
    with svc.db.session() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_an_event_is_stored_with_its_change_or_not_at_all(quiet_service: Service, receiver: Receiver) -> None:
    seed_images(quiet_service)
    _webhook(quiet_service, receiver.url, ["SCANNING_STOPPED"])
    jobs = JobStore(quiet_service.db)
    with pytest.raises(RuntimeError), quiet_service.db.session() as session:  # the change is rolled back ...
        image = session.scalars(select(Image).where(Image.repository == "team/a", Image.tag == "1")).one()
        scan, _ = jobs.enqueue(session, image, "manual", ["vuln"])
        jobs.request_stop(session, scan, "alice")
        raise RuntimeError("the request failed after the stop")
    assert _deliveries(quiet_service) == []  # ... and so is its event
    with quiet_service.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Scan)) == 0

    scan_id = _stop_a_queued_scan(quiet_service)
    [pending] = _deliveries(quiet_service)
    assert (pending.event_type, pending.state, pending.attempts) == ("SCANNING_STOPPED", "pending", 0)
    assert receiver.received == []  # stored, not yet posted: the notifier posts it
    assert quiet_service.notifier.deliver_due() == 1
    [event] = receiver.of("SCANNING_STOPPED")
    overview = signed(event)["event_data"]["resources"][0]["scan_overview"]
    assert (overview["scan_id"], overview["scan_status"], overview["cause"]["code"]) == (scan_id, "Stopped",
                                                                                         "STOPPED")
    assert "stopped by alice" in overview["cause"]["message"]
    assert quiet_service.notifier.deliver_due() == 0  # delivered once


def test_a_receiver_that_fails_then_recovers_gets_the_event_retried(quiet_service: Service,
                                                                    receiver: Receiver) -> None:
    seed_images(quiet_service)
    _webhook(quiet_service, receiver.url, ["SCANNING_STOPPED"])
    receiver.statuses = [500, 503]
    quiet_service.notifier.start()
    _stop_a_queued_scan(quiet_service)
    quiet_service.notifier.wake()
    assert receiver.wait(lambda r: len(r.received) >= 3)
    deadline = time.monotonic() + 30
    while _deliveries(quiet_service)[0].state == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    [delivery] = _deliveries(quiet_service)
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.last_error) == ("delivered", 3, 200,
                                                                                               None)
    bodies = [r.json() for r in receiver.received]
    assert [b["attempt"] for b in bodies] == [1, 2, 3] and len({b["delivery_id"] for b in bodies}) == 1
    assert all(verify(SECRET, r.body, r.headers["x-hullscan-signature"]) for r in receiver.received)


def test_a_receiver_that_is_down_is_given_up_on_with_the_reason(quiet_service: Service) -> None:
    seed_images(quiet_service)
    _webhook(quiet_service, f"http://127.0.0.1:{free_port()}/hook", ["SCANNING_STOPPED"])
    _stop_a_queued_scan(quiet_service)
    for _ in range(10):  # each round posts what is due; the backoff is short in these settings
        quiet_service.notifier.deliver_due()
        if _deliveries(quiet_service)[0].state != "pending":
            break
        time.sleep(0.3)
    [delivery] = _deliveries(quiet_service)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 3, None)
    assert delivery.last_error is not None and delivery.last_error.startswith(
        "gave up after 3 attempts; the last: cannot reach the receiver: ConnectError"), delivery.last_error


def test_a_receiver_that_refuses_the_event_is_not_asked_again(quiet_service: Service, receiver: Receiver) -> None:
    seed_images(quiet_service)
    _webhook(quiet_service, receiver.url, ["SCANNING_STOPPED"])
    receiver.statuses = [401]
    _stop_a_queued_scan(quiet_service)
    assert quiet_service.notifier.deliver_due() == 1
    assert quiet_service.notifier.deliver_due() == 0
    [delivery] = _deliveries(quiet_service)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 1, 401)
    assert delivery.last_error == "the receiver answered HTTP 401"
    assert len(receiver.received) == 1


def test_the_test_ping_and_redelivery(tmp_path: Path, database_url: str, receiver: Receiver) -> None:
    with running(quick(tmp_path, database_url)) as api:
        made = hook(api, receiver.url, ["PULL_BLOCKED"])
        ping = api.post(f"/api/v1/webhooks/{made['id']}/test")
        assert ping.status_code == 200, ping.text
        assert (ping.json()["event_type"], ping.json()["state"], ping.json()["last_status"]) == ("PING", "delivered",
                                                                                                 200)
        [got] = receiver.of("PING")
        assert signed(got)["event_data"]["webhook"] == {"id": made["id"], "name": "ci"}

        receiver.statuses = [500]  # a ping is tried once: the answer is the receiver's, now
        failed = api.post(f"/api/v1/webhooks/{made['id']}/test").json()
        assert (failed["state"], failed["attempts"], failed["last_status"]) == ("failed", 1, 500)
        assert failed["last_error"] == "the receiver answered HTTP 500"

        again = api.post(f"/api/v1/webhooks/{made['id']}/deliveries/{failed['id']}/redeliver")
        assert again.status_code == 202 and again.json()["id"] != failed["id"]
        assert receiver.wait(lambda r: len(r.of("PING")) >= 3)
        log = wait_delivery(api, made["id"], ("delivered",), count=2)
        assert [(d["id"], d["state"]) for d in log] == [(again.json()["id"], "delivered"), (failed["id"], "failed"),
                                                       (ping.json()["id"], "delivered")]
        assert [d["id"] for d in api.get(f"/api/v1/webhooks/{made['id']}/deliveries",
                                         params={"state": "failed"}).json()] == [failed["id"]]

        # an unknown event type, a namespace without its registry, a URL that is not http(s)
        for body in ({"event_types": ["PUSH_ARTIFACT"]}, {"namespace": "web"}, {"url": "ftp://x/y"},
                     {"url": "http://[::1/hook"}):
            refused = api.post("/api/v1/webhooks", json={"name": "bad", "url": receiver.url,
                                                         "event_types": ["PULL_BLOCKED"], **body})
            assert refused.status_code == 422, (body, refused.text)
        listed = {e: [h["id"] for h in api.get("/api/v1/webhooks", params={"event_type": e}).json()]
                  for e in ("PULL_BLOCKED", "SCANNING_FAILED")}
        assert listed == {"PULL_BLOCKED": [made["id"]], "SCANNING_FAILED": []}
        patched = api.patch(f"/api/v1/webhooks/{made['id']}", json={"secret": "", "enabled": False}).json()
        assert (patched["has_secret"], patched["enabled"]) == (False, False)
        assert api.delete(f"/api/v1/webhooks/{made['id']}").status_code == 204
        assert api.get(f"/api/v1/webhooks/{made['id']}/deliveries").status_code == 404


# -- the gate's refusals -------------------------------------------------------------------------------------


def test_a_pull_refused_by_the_gate_is_posted_once(tmp_path: Path, database_url: str, receiver: Receiver,
                                                   own_registry: RegistryServer) -> None:
    digest = push(own_registry, "web/shop", "1.0", vulnerable())
    settings = quick(tmp_path, database_url)
    with running(settings) as api:
        reg = synced_registry(api, own_registry.url)
        image, scan = scan_repository(api, "web/shop")
        assert scan["state"] == "succeeded", scan
        policy = {"auto_scan": False, "block": {"enabled": True, "severity": "HIGH"}, "allowlist": []}
        assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy).status_code == 200
        made = hook(api, receiver.url, ["PULL_BLOCKED"], registry=reg["id"], namespace="web")

        gate = GateProcess(settings.data_dir, "local", {"HULLSCAN_SECRET_KEY": "test key",
                                                         "HULLSCAN_DATABASE_URL": settings.service_database_url})
        gate.start()
        try:
            for _ in range(2):  # a client trying twice: one event (the same refusal within the window)
                refused = skopeo_pull(f"{gate.listen}/web/shop:1.0", tmp_path / "out")
                assert refused.returncode != 0 and "cannot be pulled" in refused.stderr, refused.stderr
        finally:
            gate.stop()
        assert receiver.wait(lambda r: len(r.of("PULL_BLOCKED")) >= 1)
        log = wait_delivery(api, made["id"])
        assert [(d["event_type"], d["state"]) for d in log] == [("PULL_BLOCKED", "delivered")]
        doc = signed(receiver.of("PULL_BLOCKED")[0])
        data = doc["event_data"]
        assert doc["operator"] == "gate" and data["repository"]["repo_full_name"] == "web/shop"
        assert (data["resources"][0]["digest"], data["resources"][0]["tag"]) == (digest, "1.0")
        assert data["scan_id"] == scan["id"] and data["blocking_findings"] >= 1
        assert data["policy"]["severity"] == "HIGH" and "cannot be pulled" in data["reasons"][0]


# -- re-evaluation after a database update ---------------------------------------------------------------------


def _reevaluations(api: TestClient, registry_id: int, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        scans: list[dict[str, Any]] = api.get("/api/v1/scans", params={"registry": registry_id,
                                                                      "trigger": "reevaluate"}).json()
        if (len(scans) >= count and all(s["state"] in ("succeeded", "failed") for s in scans)) \
                or time.monotonic() > deadline:
            return scans
        time.sleep(0.1)


def test_new_critical_findings_after_a_database_update_are_posted_once(
        tmp_path: Path, database_url: str, receiver: Receiver, own_registry: RegistryServer,
        request: pytest.FixtureRequest) -> None:
    """The first database lacks the npm records; the update brings them (lodash's critical GHSA among them)."""
    bucket = OSVBucket(bucket_from_extract(tmp_path / "bucket")).start()
    request.addfinalizer(bucket.stop)
    without_npm = tmp_path / "extract"
    for folder in OSV_EXTRACT.iterdir():
        if folder.name != "npm":
            shutil.copytree(folder, without_npm / folder.name)
    settings = quick(tmp_path, database_url, osv_url=bucket.url, cve_url="", epss_url="", kev_url="",
                     scheduler_interval=0.5)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.db_path.exists():
        settings.db_path.unlink()
    build_from_paths(settings.db_path, [without_npm])
    push(own_registry, "web/shop", "1.0", vulnerable())

    with running(settings) as api:
        reg = synced_registry(api, own_registry.url)
        made = hook(api, receiver.url, ["NEW_VULNERABILITIES"], registry=reg["id"], namespace="web")
        _, first = scan_repository(api, "web/shop")
        assert first["state"] == "succeeded" and sum(first["counts"]["vulnerabilities"].values()) == 0, first

        api.post("/api/v1/database/update", json={"base_url": bucket.url})
        assert wait_update(api)["update"]["state"] == "succeeded"
        [again] = _reevaluations(api, reg["id"], 1)
        assert again["state"] == "succeeded" and again["counts"]["vulnerabilities"]["CRITICAL"] >= 1, again
        assert receiver.wait(lambda r: len(r.of("NEW_VULNERABILITIES")) >= 1)
        [event] = receiver.of("NEW_VULNERABILITIES")
        data = signed(event)["event_data"]
        assert data["previous_scan_id"] == first["id"]
        assert data["resources"][0]["scan_overview"]["scan_id"] == again["id"]
        found = {v["id"]: v for v in data["vulnerabilities"]}
        lodash = [v for v in found.values() if "GHSA-jf85-cpcp-j695" in [v["id"], *v["aliases"]]]
        assert len(lodash) == 1 and lodash[0]["severity"] == "CRITICAL" and lodash[0]["package"] == "lodash"
        assert {v["severity"] for v in found.values()} <= {"CRITICAL", "HIGH"}

        # The same data again: nothing re-evaluated, nothing posted.
        api.post("/api/v1/database/update", json={"base_url": bucket.url})
        assert wait_update(api)["update"]["mode"] == "unchanged"
        # Changed in place (a record withdrawn): re-evaluated again, but nothing new is critical or high.
        apply_changes(settings.db_path, [], removals=["GHSA-29mw-wpgm-hmr9"])
        scans = _reevaluations(api, reg["id"], 2)
        assert len(scans) == 2 and scans[0]["state"] == "succeeded", scans
        svc: Service = api.app.state.service  # type: ignore[attr-defined]
        with svc.db.session() as session:
            hooks = session.scalar(select(func.count()).select_from(Webhook))
            events = session.scalars(select(Delivery.event_type).where(Delivery.webhook_id == made["id"])).all()
        assert hooks == 1 and events == ["NEW_VULNERABILITIES"]
        assert len(receiver.of("NEW_VULNERABILITIES")) == 1
