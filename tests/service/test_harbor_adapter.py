"""hullscan as Harbor's scanner: a fake Harbor (tests/support/fake_harbor.py, built from ../shared/specs/harbor-api:
scanner registrations, robot accounts, the scan overview it keeps) drives full scan request cycles over HTTP
against the service under uvicorn; the images live in REAL local registries (Debian's docker-registry) that accept
only the robots' credentials. Every answer of the adapter is checked against the Scanner Adapter OpenAPI v1.2
document (tests/support/adapter_spec.py)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hullscan.errors import CATALOGUE
from hullscan.service.storage.models import Registry, Scan
from tests.service.conftest import ADMIN, make_settings
from tests.service.harbor_support import EXPECTED, Served, serve, vulnerable_image
from tests.support.adapter_spec import SPEC
from tests.support.fake_harbor import HARBOR_REPORT, SBOM_REPORT, VULN_REPORT, FakeHarbor, ScanJobFailed
from tests.support.registry import RegistryServer, basic_auth_registry, token_auth_registry
from tests.support.tokenissuer import SERVICE

pytestmark = pytest.mark.timeout(300)
RAW_REPORT = "application/vnd.scanner.adapter.vuln.report.raw"
PUSHER = ("ci", "push-" + secrets.token_hex(8))
REPO = "library/webapp"
Pushed = tuple[RegistryServer, dict[str, str]]  # the registry and the artifact Harbor names


def robots(n: int, project: str = "library") -> list[tuple[str, str]]:
    """Robot accounts as Harbor names them, with random secrets."""
    return [(f"robot${project}+hullscan-{secrets.token_hex(3)}", secrets.token_urlsafe(18)) for _ in range(n)]


ROBOTS = robots(6)


def digest_of(registry: RegistryServer, repo: str, tag: str) -> tuple[str, str]:
    with registry.client() as client:
        fetched = client.get_manifest(repo, tag)
    return fetched.digest, fetched.media_type


@pytest.fixture(scope="module")
def harbor_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    """Harbor's registry stand-in: htpasswd Basic auth knowing a pusher and the robots; the image pushed once."""
    server = basic_auth_registry(tmp_path_factory.mktemp("harbor-registry"), {PUSHER[0]: PUSHER[1], **dict(ROBOTS)})
    try:
        server.push_images(vulnerable_image(), f"{REPO}:1.0", tmp_path_factory.mktemp("layouts"))
        digest, media_type = digest_of(server, REPO, "1.0")
        yield server, {"repository": REPO, "digest": digest, "tag": "1.0", "mime_type": media_type}
    finally:
        server.stop()


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[Served]:
    with serve(make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", harbor_refresh_after=1)) as served:
        yield served


def scan_rows(served: Served) -> list[Scan]:
    with served.service.db.session() as session:
        return list(session.scalars(select(Scan).order_by(Scan.id)))


def checked(harbor: FakeHarbor) -> list[httpx.Response]:
    """Every answer the fake Harbor received, each validated against the OpenAPI document."""
    return [SPEC.check(r) for r in harbor.responses]


def test_full_scan_request_cycle(adapter: Served, harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    seen_queued: list[Scan] = []

    def wait(seconds: float) -> None:
        # The first 302 comes while scans are held back; then they may run. Look at the row Harbor waits on.
        if not seen_queued:
            seen_queued.extend(scan_rows(adapter))
            adapter.executor.release()
        time.sleep(seconds)

    harbor = FakeHarbor(registry.url, ROBOTS[:2], sleep=wait)
    try:
        registration = harbor.create_scanner({"name": "hullscan", "url": adapter.url, "auth": "Bearer",
                                              "access_credential": adapter.token})
        assert registration["capabilities"] == {"support_vulnerability": True, "support_sbom": True}
        assert (registration["adapter"], registration["vendor"]) == ("hullscan", "hullscan")

        job = harbor.scan_artifact(registration, artifact, [VULN_REPORT, HARBOR_REPORT, RAW_REPORT])
        responses = checked(harbor)
    finally:
        harbor.close()

    # Harbor was told to come back after Refresh-After (the setting: 1 s) until the report was ready.
    assert job.waits and set(job.waits) == {1}
    polls = [r for r in responses if r.request.url.path.endswith("/report")]
    assert [r.status_code for r in polls] == [302] * len(job.waits) + [200, 200, 200]
    assert all(r.headers["refresh-after"] == "1" for r in polls if r.status_code == 302)
    assert [r.headers["content-type"] for r in polls[-3:]] == [VULN_REPORT, HARBOR_REPORT, RAW_REPORT]

    report = json.loads(job.reports[VULN_REPORT])
    assert json.loads(job.reports[HARBOR_REPORT]) == report  # one schema, two MIME types
    assert report["artifact"] == artifact
    assert report["scanner"]["name"] == "hullscan"
    assert report["severity"] == "Critical"
    assert {(v["id"], v["package"], v["version"], v.get("fix_version"), v["severity"])
            for v in report["vulnerabilities"]} == EXPECTED
    lodash = next(v for v in report["vulnerabilities"] if v["id"] == "CVE-2019-10744")
    assert lodash["preferred_cvss"] == {"vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H", "score_v3": 9.1}
    assert "https://nvd.nist.gov/vuln/detail/CVE-2019-10744" in lodash["links"]
    assert "GHSA-jf85-cpcp-j695" in lodash["vendor_attributes"]["hullscan"]["advisory_ids"]
    assert lodash["vendor_attributes"]["hullscan"]["path"] == "srv/app/node_modules/lodash/package.json"

    # What Harbor keeps on the artifact (NativeReportSummary): counts per severity and fixable findings.
    overview = FakeHarbor.summarize(job.request_id, report, "", "")
    assert overview["severity"] == "Critical"
    assert overview["summary"] == {"total": 3, "fixable": 3, "summary": {"Critical": 1, "Medium": 1, "Unknown": 1}}

    raw = json.loads(job.reports[RAW_REPORT])  # hullscan's own JSON report
    assert {v["id"] for v in raw["vulnerabilities"]} == {e[0] for e in EXPECTED}
    assert raw["summary"]["vulnerabilities"]["total"] == 3

    # The scan was an ordinary queued scan of the service, under a registry made for this Harbor, and Harbor's
    # robot credentials were on its row only sealed, only while it was not finished.
    robot_name, robot_secret = job.robot.name, job.robot.secret
    assert len(seen_queued) == 1 and seen_queued[0].state == "queued" and seen_queued[0].trigger == "harbor"
    sealed = seen_queued[0].pull_authorization
    assert sealed is not None and robot_secret.encode() not in sealed and robot_name.encode() not in sealed
    assert adapter.service.box.open(sealed) == job.request["registry"]["authorization"]
    [scan] = scan_rows(adapter)
    assert (scan.state, scan.pull_authorization, scan.items, scan.digest) == ("succeeded", None, ["vuln"],
                                                                              artifact["digest"])
    assert job.request_id.startswith(f"{scan.id}-")
    with adapter.service.db.session() as session:
        made = session.get(Registry, scan.registry_id)
        assert made is not None
        assert (made.type, made.url, made.managed_by, made.password_encrypted) == \
            ("harbor", registry.url, "harbor-adapter", None)
    assert harbor.deleted_robots == [robot_name]

    # The rest of the API sees it like any scan.
    with httpx.Client(base_url=adapter.url, auth=ADMIN) as api:
        listed = api.get("/api/v1/scans", params={"trigger": "harbor"}).json()
        assert [(s["id"], s["state"], s["repository"], s["tag"]) for s in listed] == \
            [(scan.id, "succeeded", REPO, "1.0")]
        # ... but its registry record says who made it, and has nothing to synchronise or scan on a schedule with.
        assert api.get(f"/api/v1/registries/{scan.registry_id}").json()["managed_by"] == "harbor-adapter"
        for refused in (api.post(f"/api/v1/registries/{scan.registry_id}/sync"),
                        api.post("/api/v1/schedules", json={"action": "scan", "registry": scan.registry_id,
                                                            "cron": "0 2 * * *"})):
            assert refused.status_code == 409, refused.text
            assert "managed by the harbor-adapter" in refused.json()["error"]["message"]


def test_sbom_reports_in_spdx_and_cyclonedx(adapter: Served,
                                            harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    adapter.executor.release()
    harbor = FakeHarbor(registry.url, ROBOTS[2:3])
    try:
        registration = harbor.create_scanner({"name": "hullscan", "url": adapter.url, "auth": "Basic",
                                              "access_credential": f"{ADMIN[0]}:{ADMIN[1]}"})
        job = harbor.scan_artifact(registration, artifact, [SBOM_REPORT], capability="sbom",
                                   sbom_media_type="application/spdx+json")
        # The CycloneDX form of the same scan, asked for as Harbor asks for the other format.
        cyclonedx = harbor.poll(registration, job.request_id, SBOM_REPORT, [], "application/vnd.cyclonedx+json")
        missing = harbor.http.get(f"{adapter.url}/api/v1/scan/{job.request_id}/report", auth=ADMIN,
                                  headers={"Accept": SBOM_REPORT})
        harbor.responses.append(missing)
        checked(harbor)
    finally:
        harbor.close()

    spdx_report = json.loads(job.reports[SBOM_REPORT])
    assert spdx_report["media_type"] == "application/spdx+json" and spdx_report["artifact"] == artifact
    spdx = spdx_report["sbom"]
    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert {(p["name"], p.get("versionInfo")) for p in spdx["packages"]} >= {("lodash", "4.17.11"),
                                                                              ("libcrypto1.1", "1.1.1d-r2")}
    cdx_report = json.loads(cyclonedx)
    assert cdx_report["media_type"] == "application/vnd.cyclonedx+json"
    components = {(c["name"], c.get("version")) for c in cdx_report["sbom"]["components"]}
    assert {("lodash", "4.17.11"), ("libcrypto1.1", "1.1.1d-r2")} <= components
    assert cdx_report["sbom"]["bomFormat"] == "CycloneDX"
    # Without the format the spec's answer is 400.
    assert missing.status_code == 400 and "sbom_media_type" in missing.json()["error"]["message"]


def test_bearer_registry_token_from_harbors_token_service(adapter: Served, tmp_path: Path) -> None:
    """Harbor's Bearer mode: the job trades the robot's credentials for a pull token of the repository at the
    registry's token service and sends that; hullscan pulls with the token as it is."""
    token_robots = robots(1)
    registry = token_auth_registry(tmp_path / "token-registry", {PUSHER[0]: PUSHER[1], **dict(token_robots)})
    try:
        registry.push_images(vulnerable_image(), f"{REPO}:2.0", tmp_path)
        digest, media_type = digest_of(registry, REPO, "2.0")
        assert registry.issuer is not None
        registry.issuer.reset()
        adapter.executor.release()
        harbor = FakeHarbor(registry.url, token_robots, pull_auth="Bearer",
                            token_service=(registry.issuer.url, SERVICE))
        try:
            registration = harbor.create_scanner({"name": "hullscan", "url": adapter.url, "auth": "Bearer",
                                                  "access_credential": adapter.token})
            artifact = {"repository": REPO, "digest": digest, "tag": "2.0", "mime_type": media_type}
            job = harbor.scan_artifact(registration, artifact, [VULN_REPORT])
            checked(harbor)
        finally:
            harbor.close()
        assert job.request["registry"]["authorization"].startswith("Bearer ")
        report = json.loads(job.reports[VULN_REPORT])
        assert {v["id"] for v in report["vulnerabilities"]} == {e[0] for e in EXPECTED}
        # One token, fetched by Harbor for the robot; hullscan asked the token service for nothing.
        assert [(r.user, r.scopes) for r in registry.issuer.requests] == \
            [(token_robots[0][0], [f"repository:{REPO}:pull"])]
    finally:
        registry.stop()


def test_a_failed_scan_answers_500_with_the_catalogue_cause(
        adapter: Served, harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    adapter.executor.release()
    wrong = [(ROBOTS[3][0], "not-the-secret")]  # a robot the registry knows, with a wrong secret
    harbor = FakeHarbor(registry.url, wrong)
    try:
        registration = harbor.create_scanner({"name": "hullscan", "url": adapter.url, "auth": "Bearer",
                                              "access_credential": adapter.token})
        with pytest.raises(ScanJobFailed) as failed:
            harbor.scan_artifact(registration, artifact, [VULN_REPORT])
        checked(harbor)
    finally:
        harbor.close()
    assert failed.value.status == 500
    cause = CATALOGUE["AUTH_FAILED"]
    assert failed.value.message.startswith(cause.title + ":")
    assert failed.value.message.endswith(f"Solution: {cause.solution}")
    assert registry.host in failed.value.message and "not-the-secret" not in failed.value.message
    body = harbor.responses[-1].json()["error"]
    assert (body["code"], body["solution"]) == ("AUTH_FAILED", cause.solution)
    [scan] = scan_rows(adapter)
    assert (scan.state, scan.cause_code, scan.pull_authorization) == ("failed", "AUTH_FAILED", None)


def test_requests_for_one_digest_share_a_scan_and_the_newest_credentials(
        adapter: Served, harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    harbor = FakeHarbor(registry.url, [])
    registration = {"url": adapter.url, "auth": "Bearer", "access_credential": adapter.token}

    def request(robot: tuple[str, str]) -> dict[str, Any]:
        auth = "Basic " + b64encode(f"{robot[0]}:{robot[1]}".encode()).decode()
        return {"registry": {"url": registry.url, "authorization": auth}, "artifact": artifact}

    try:
        stale = (ROBOTS[4][0], "deleted-with-its-job")  # what a robot's secret is worth after Harbor deleted it
        first = harbor.submit(registration, request(stale))
        second = harbor.submit(registration, request(ROBOTS[4]))
        assert first == second  # queued once
        [queued] = scan_rows(adapter)
        assert adapter.service.box.open(queued.pull_authorization or b"") == request(ROBOTS[4])["registry"][
            "authorization"]
        adapter.executor.release()
        report = json.loads(harbor.poll(registration, first, VULN_REPORT, []))
        checked(harbor)
    finally:
        harbor.close()
    assert {v["id"] for v in report["vulnerabilities"]} == {e[0] for e in EXPECTED}


def test_answers_the_spec_gives_for_bad_requests(adapter: Served,
                                                 harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    good = {"registry": {"url": registry.url, "authorization": "Basic " + "cm9ib3Q6c2VjcmV0"}, "artifact": artifact}
    scan_type = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
    error_type = "application/vnd.scanner.adapter.error+json; version=1.0"
    headers = {"Authorization": f"Bearer {adapter.token}"}

    with httpx.Client(base_url=adapter.url, headers=headers, follow_redirects=False) as http:
        def post(body: bytes | dict[str, Any], content_type: str = scan_type) -> httpx.Response:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            return SPEC.check(http.post("/api/v1/scan", content=content, headers={"Content-Type": content_type}))

        def problem(response: httpx.Response, status: int, words: str) -> None:
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == error_type
            assert words in response.json()["error"]["message"], response.json()

        problem(post(b"{not json"), 400, "not valid JSON")
        problem(post({**good, "registry": "http://x"}), 400, "registry")
        problem(post({**good, "artifact": {**artifact, "digest": 7}}), 400, "artifact.digest")
        problem(post(b"<scan/>", "application/xml"), 400, "Content-Type")
        problem(post({"artifact": artifact}), 422, "registry")
        problem(post({**good, "registry": {"url": "INVALID_REGISTRY_URL://x"}}), 422, "invalid registry.url")
        problem(post({**good, "registry": {"url": f"{registry.url}/v2"}}), 422, "leave out any path")
        problem(post({**good, "artifact": {**artifact, "digest": "sha256:1234"}}), 422, "64 lowercase hexadecimal")
        problem(post({**good, "artifact": {**artifact, "repository": "Library/WebApp"}}), 422, "lowercase")
        problem(post({**good, "artifact": {k: v for k, v in artifact.items() if k != "digest"}}), 422, "digest")
        problem(post({**good, "registry": {"url": registry.url, "authorization": "Basic !!"}}), 422, "base64")
        problem(post({**good, "registry": {"url": registry.url, "authorization": "Negotiate x"}}), 422, "Negotiate")
        problem(post({**good, "enabled_capabilities": [{"type": "malware"}]}), 422, "enabled_capabilities")
        problem(post({**good, "enabled_capabilities": []}), 422, "empty")
        problem(post({**good, "artifact": {**artifact, "mime_type": "application/vnd.cncf.helm.config.v1+json"}}),
                501, "not scanned")
        problem(post({**good, "enabled_capabilities": [{"type": "sbom", "produces_mime_types": [VULN_REPORT]}]}),
                501, "does not produce")
        assert scan_rows(adapter) == []  # nothing was queued by any of them

        accepted = post(good)
        assert accepted.status_code == 202
        assert accepted.headers["content-type"] == "application/vnd.scanner.adapter.scan.response+json; version=1.0"
        rid = accepted.json()["id"]

        def report(rid: str, accept: str | None = VULN_REPORT, **params: str) -> httpx.Response:
            return SPEC.check(http.get(f"/api/v1/scan/{rid}/report", params=params,
                                       headers={"Accept": accept} if accept else {}))

        waiting = report(rid)  # the executor is held: the scan waits in the queue
        assert waiting.status_code == 302 and waiting.headers["refresh-after"] == "1" and not waiting.content
        assert "location" not in waiting.headers
        problem(report(rid, "text/html"), 501, "no report in 'text/html'")
        problem(report(rid, SBOM_REPORT), 400, "sbom_media_type")
        problem(report(rid, SBOM_REPORT, sbom_media_type="text/csv"), 400, "sbom_media_type")
        scan_id, _, check = rid.partition("-")
        for unknown in (f"{int(scan_id) + 1}-{check}", f"{scan_id}-{'0' * 16}", "nope", "9" * 40):
            missing = report(unknown)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"

        metadata = SPEC.check(http.get("/api/v1/metadata"))
        assert metadata.headers["content-type"] == "application/vnd.scanner.adapter.metadata+json; version=1.1"
        older = SPEC.check(http.get("/api/v1/metadata", headers={
            "Accept": "application/vnd.scanner.adapter.metadata+json; version=1.0"}))
        assert older.headers["content-type"] == "application/vnd.scanner.adapter.metadata+json; version=1.0"
        props = metadata.json()["properties"]
        assert props["harbor.scanner-adapter/scanner-type"] == "os-package-vulnerability"
        assert props["harbor.scanner-adapter/vulnerability-database-updated-at"].startswith("20")

        adapter.executor.release()
        for _ in range(600):  # polls Harbor would make; a hang guard, not a timing bound
            answer = report(rid, None)  # no Accept: Harbor's original report type
            if answer.status_code != 302:
                break
            time.sleep(0.2)
        # The robot in `good` does not exist: the scan fails with the registry's refusal, as Harbor would see it.
        problem(answer, 500, CATALOGUE["AUTH_FAILED"].title)


def test_adapter_calls_need_an_admin(adapter: Served) -> None:
    with httpx.Client(base_url=adapter.url) as http:
        assert http.get("/api/v1/metadata").status_code == 401
        assert http.post("/api/v1/scan", json={}).status_code == 401
        assert http.get("/api/v1/scan/1-00/report", headers={"Authorization": "Bearer hs_wrong"}).status_code == 401
        ok = http.get("/api/v1/metadata", headers={"Authorization": f"Bearer {adapter.token}"})
        assert ok.status_code == 200


def test_a_stopped_scan_drops_its_credentials_and_answers_500(
        adapter: Served, harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    harbor = FakeHarbor(registry.url, ROBOTS[5:6])
    registration = {"url": adapter.url, "auth": "Bearer", "access_credential": adapter.token}
    try:
        robot = harbor.create_robot("library")
        rid = harbor.submit(registration, {"registry": {"url": registry.url,
                                                        "authorization": harbor.pull_authorization(robot, artifact)},
                                           "artifact": artifact})
        [queued] = scan_rows(adapter)
        assert queued.pull_authorization is not None
        with httpx.Client(base_url=adapter.url, auth=ADMIN) as api:
            assert api.post(f"/api/v1/scans/{queued.id}/stop").json()["state"] == "stopped"
        with pytest.raises(ScanJobFailed) as failed:
            harbor.poll(registration, rid, VULN_REPORT, [])
        checked(harbor)
    finally:
        harbor.close()
    assert failed.value.status == 500 and failed.value.message.startswith(CATALOGUE["STOPPED"].title)
    [stopped] = scan_rows(adapter)
    assert (stopped.state, stopped.pull_authorization) == ("stopped", None)


def test_first_requests_at_once_make_one_registry_record(tmp_path: Path, database_url: str,
                                                         harbor_registry: Pushed) -> None:
    registry, artifact = harbor_registry
    with serve(make_settings(tmp_path, database_url)) as served:
        body = {"registry": {"url": registry.url}, "artifact": artifact}
        barrier = threading.Barrier(6)

        def submit(_: int) -> httpx.Response:
            with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}) as http:
                barrier.wait(timeout=30)
                return http.post("/api/v1/scan", json=body)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(submit, range(6)))
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        with served.service.db.session() as session:
            made = session.scalars(select(Registry)).all()
            assert [(r.url, r.managed_by) for r in made] == [(registry.url, "harbor-adapter")]
            assert [len(r.namespaces) for r in made] == [1]
        assert len(scan_rows(served)) == 1
