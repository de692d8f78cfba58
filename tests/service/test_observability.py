"""Logs, metrics and the audit log.

The logs of a whole journey (a registry with a password, users, Basic auth, console sessions, API tokens, a scan
of an image holding a secret) are captured as the service writes them, at DEBUG, every logger included, and none
of the secret strings appears. Metrics are read with Prometheus' own parser, from scans of known durations, on both
databases. The audit log records every change a person made.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hullscan.service.api.app import create_app
from hullscan.service.core import Service
from hullscan.service.logs import JsonFormatter, scrub
from hullscan.service.storage.models import Image, Scan
from tests.service.conftest import ADMIN, make_settings, wait_for, wait_sync
from tests.service.world import GHP, app_image, seed_namespace
from tests.support.registry import basic_auth_registry

pytestmark = pytest.mark.timeout(300)
REGISTRY_PASSWORD = "Reg1stry-Pa55word-xyzzy"


@contextmanager
def captured_logs() -> Iterator[tuple[io.StringIO, list[logging.LogRecord]]]:
    """Everything logged, by any logger at any level, as the service's formatter writes it (and the raw records)."""
    out = io.StringIO()
    records: list[logging.LogRecord] = []
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    keep = logging.Filter()
    keep.filter = lambda record: records.append(record) or True  # type: ignore[method-assign, func-returns-value]
    handler.addFilter(keep)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out, records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_whole_journey_logs_no_secret(tmp_path: Path) -> None:
    registry = basic_auth_registry(tmp_path / "registry", {"pusher": REGISTRY_PASSWORD})
    secrets: list[str] = [REGISTRY_PASSWORD, ADMIN[1], GHP]
    try:
        registry.push_images(app_image("1.0"), "team/app:1.0", tmp_path)
        with captured_logs() as (out, records), TestClient(create_app(make_settings(
                tmp_path, f"sqlite:///{tmp_path / 'service.db'}"))) as api:
            api.auth = ADMIN
            made = api.post("/api/v1/registries", json={"name": "private", "type": "distribution",
                                                        "url": registry.url, "username": "pusher",
                                                        "password": REGISTRY_PASSWORD, "insecure": True})
            assert made.status_code == 201
            reg = made.json()["id"]
            secrets.append(made.json()["hook_token"])
            assert api.post(f"/api/v1/registries/{reg}/test").json()["ok"] is True
            api.patch(f"/api/v1/registries/{reg}", json={"password": REGISTRY_PASSWORD})
            assert api.post(f"/api/v1/registries/{reg}/sync").status_code == 202
            assert wait_sync(api, reg)["last_sync"]["state"] == "succeeded"

            api.post("/api/v1/users", json={"username": "jane", "password": "jane-secret-pw1"})
            secrets += ["jane-secret-pw1", "jane-secret-pw2"]
            assert api.get("/api/v1/users/me", auth=("jane", "wrong-password-9")).status_code == 401
            secrets.append("wrong-password-9")
            login = api.post("/api/v1/session", json={"username": "jane", "password": "jane-secret-pw1"}, auth=None)
            secrets += [login.cookies["hullscan_session"], login.json()["csrf_token"]]
            assert api.put("/api/v1/users/me/password", auth=None, headers={"X-CSRF-Token": login.json()[
                "csrf_token"]}, json={"current_password": "jane-secret-pw1",
                                      "new_password": "jane-secret-pw2"}).status_code == 204
            api.cookies.clear()
            token = api.post("/api/v1/tokens", json={"name": "ci"}).json()["token"]
            secrets.append(token)
            bearer = {"Authorization": f"Bearer {token}"}
            image = api.get("/api/v1/images", auth=None, headers=bearer).json()[0]["id"]
            scan = api.post("/api/v1/scans", json={"image_id": image}, auth=None, headers=bearer).json()
            done = wait_for(api, scan["id"])
            assert done["state"] == "succeeded", done
            report = api.get(f"/api/v1/scans/{scan['id']}/report", auth=None, headers=bearer).json()
            assert [c["id"] for c in report["checks"] if c["item"] == "secret"] == ["github-pat"]
            assert api.get("/api/v1/scans/999999", auth=None, headers=bearer).status_code == 404
            audit = api.get("/api/v1/audit").text
    finally:
        registry.stop()
    logged = out.getvalue()
    assert len(records) > 20 and "scan 1 succeeded" in logged  # the journey was logged, in JSON lines
    assert any(r.name == "hullscan.service.access" for r in records)
    leaked = [s for s in secrets if s in logged or s in audit]
    assert not leaked, f"secrets in the logs or the audit log: {leaked}"
    # The code itself never hands a secret to a logger: the formatter's scrubbing is a second line, not the first.
    raw = "\n".join(r.getMessage() + " " + str(r.args) for r in records if r.name.startswith("hullscan"))
    assert not [s for s in secrets if s in raw]


def test_scrub_masks_what_looks_like_a_credential() -> None:
    token = "hs_" + "Ab1" * 14
    line = scrub(f"GET http://bob:hunter22@registry:5000/v2/ Authorization: Basic Ym9iOmh1bnRlcjIy {token} "
                 f"password=hunter22 'x-jfrog-event-auth': 'abcdefgh12345' Bearer {token[3:]}")
    for secret in ("hunter22", "Ym9iOmh1bnRlcjIy", token, "abcdefgh12345", token[3:]):
        assert secret not in line, line
    assert "registry:5000/v2/" in line  # and nothing else


class IdleExecutor:
    """Runs nothing: queued scans stay queued, so the queue can be counted."""

    def start(self) -> None: ...
    def wake(self) -> None: ...
    def stop_scan(self, scan_id: int) -> None: ...
    def shutdown(self) -> None: ...


def test_metrics_count_scans_by_state_cause_and_duration(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url)
    svc = Service(settings, executor=IdleExecutor())
    with TestClient(create_app(settings, svc)) as api:
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        with svc.db.session() as session:
            ns = seed_namespace(session, registry="reg")
            image = Image(registry_id=ns.registry_id, namespace_id=ns.id, repository="team/app", reference="1",
                          tag="1")
            session.add(image)
            session.flush()
            for state, cause, seconds in (("succeeded", None, 3.0), ("succeeded", None, 90.0),
                                          ("succeeded", None, 4000.0), ("failed", "TIMEOUT", 10800.5),
                                          ("queued", None, None), ("queued", None, None), ("running", None, None)):
                session.add(Scan(image_id=image.id, registry_id=ns.registry_id, trigger="manual", priority=0,
                                 state=state, items=["vuln"], cause_code=cause,
                                 started_at=start if state != "queued" else None,
                                 finished_at=start + dt.timedelta(seconds=seconds) if seconds else None))
        text = api.get("/metrics", auth=None).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("hullscan_scans", (("cause", ""), ("registry", "reg"), ("state", "succeeded")))] == 3
    assert samples[("hullscan_scans", (("cause", "TIMEOUT"), ("registry", "reg"), ("state", "failed")))] == 1
    assert samples[("hullscan_queue_depth", (("registry", "reg"),))] == 2
    assert samples[("hullscan_scans_running", (("registry", "reg"),))] == 1

    def bucket(le: str, state: str = "succeeded") -> float:
        return samples[("hullscan_scan_duration_seconds_bucket", (("kind", "scan"), ("le", le), ("state", state)))]

    assert [bucket("1.0"), bucket("5.0"), bucket("60.0"), bucket("120.0"), bucket("3600.0"), bucket("10800.0"),
            bucket("+Inf")] == [0, 1, 1, 2, 2, 3, 3]
    assert bucket("10800.0", "failed") == 0 and bucket("+Inf", "failed") == 1
    total = samples[("hullscan_scan_duration_seconds_sum", (("kind", "scan"), ("state", "succeeded")))]
    assert total == pytest.approx(4093.0, abs=0.01)
    assert samples[("hullscan_vulndb_present", ())] == 1
    built = samples[("hullscan_vulndb_built_timestamp_seconds", ())]
    assert abs(built + samples[("hullscan_vulndb_age_seconds", ())] - dt.datetime.now(dt.UTC).timestamp()) < 600


def test_metrics_say_when_there_is_no_vulnerability_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    settings.db_path.unlink()
    with TestClient(create_app(settings, Service(settings, executor=IdleExecutor()))) as api:
        text = api.get("/metrics").text
    assert "hullscan_vulndb_present 0.0" in text and "hullscan_vulndb_age_seconds" not in text


def test_the_audit_log_records_changes_and_manual_scans(api: TestClient) -> None:
    with api.app.state.service.db.session() as session:  # type: ignore[attr-defined]
        reg = seed_namespace(session, registry="audited").registry_id
    before = dt.datetime.now(dt.UTC)
    api.patch(f"/api/v1/registries/{reg}", json={"insecure": True, "password": "s3cret-reg-pass"})
    api.put(f"/api/v1/registries/{reg}/namespaces/team", json={
        "auto_scan": True, "block": {"enabled": True, "severity": "HIGH"},
        "allowlist": [{"id": "CVE-2020-1747", "reason": "not reachable"}]})
    api.put("/api/v1/allowlist", json={"allowlist": [{"id": "CVE-2018-18074", "reason": "everywhere"}]})
    api.post("/api/v1/users", json={"username": "kim", "password": "kim-password-1"})
    api.delete(f"/api/v1/registries/{reg}")
    log = api.get("/api/v1/audit")
    assert log.status_code == 200
    entries = log.json()
    assert [e["action"] for e in entries] == ["registry.delete", "user.create", "allowlist.update",
                                             "namespace.update", "registry.update"]
    assert all(e["actor"] == "admin" for e in entries)
    assert "s3cret-reg-pass" not in log.text and "kim-password-1" not in log.text
    assert entries[-1]["details"]["fields"] == ["insecure", "password"]
    ns_change = entries[3]["details"]
    assert ns_change["before"]["auto_scan"] is False and ns_change["after"]["allowlist"][0]["id"] == "CVE-2020-1747"
    assert [e["action"] for e in api.get("/api/v1/audit", params={"action": "registry."}).json()] == [
        "registry.delete", "registry.update"]
    assert api.get("/api/v1/audit", params={"since": before.isoformat()}).headers["X-Total-Count"] == "5"
    assert api.get("/api/v1/audit", params={"until": before.isoformat()}).json() == []
    assert api.get("/api/v1/audit", params={"since": "2026-01-01T00:00:00"}).status_code == 422  # no time zone
