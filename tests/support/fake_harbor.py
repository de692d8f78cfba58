"""A fake Harbor, the client side of the Scanner Adapter API, for driving hullscan's adapter the way Harbor does.

Built from ../shared/specs/harbor-api: a scanner registration is a `ScannerRegistrationReq` (name, url, auth
`Basic` | `Bearer` | `X-ScannerAdapter-API-Key`, access_credential), completed into a `ScannerRegistration` with
the adapter's metadata (adapter, vendor, version, capabilities `support_vulnerability` / `support_sbom`); each scan
job gets a fresh project robot (`RobotCreated`, named `robot$<project>+<name>` as that README says robots are) and
ends by deleting it; a finished vulnerability report becomes the `NativeReportSummary` / `VulnerabilitySummary`
that Harbor attaches to the artifact (`scan_overview`). The job itself follows Harbor's scan job: the robot's
credentials as `Basic base64(name:secret)` in `registry.authorization` (or, in Bearer mode, a pull token for the
repository fetched from the registry's token service with those credentials), the scan request posted with
`Content-Type: ...scan.request+json; version=1.1`, then each wanted report polled with its MIME type in `Accept`,
waiting `Refresh-After` seconds after each 302, until 200 (done) or anything else (the job fails with the error
body's message). Like Harbor's client it never follows redirects.

The robots must exist where the artifact lives: the test provisions their names and secrets in the real registry
(htpasswd or token service) and hands them to the fake, which gives them out one per job.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

METADATA = "application/vnd.scanner.adapter.metadata+json; version=1.1"
SCAN_REQUEST = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
SCAN_RESPONSE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
HARBOR_REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
VULN_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
DEFAULT_REFRESH = 5  # Harbor's wait when a 302 names none
MAX_POLLS = 600  # a guard against an adapter that never finishes, not a timing bound


class ScanJobFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


@dataclass
class Robot:
    """`RobotCreated`: what Harbor hands a scan job (the secret is the robot's password)."""

    id: int
    name: str
    secret: str = field(repr=False)
    creation_time: str = ""
    expires_at: int = -1


@dataclass
class ScanJob:
    request_id: str
    robot: Robot
    reports: dict[str, str]  # MIME type -> the report as returned
    waits: list[int]  # the Refresh-After of every 302 met, in order
    request: dict[str, Any] = field(repr=False)


class FakeHarbor:
    def __init__(self, registry_url: str, robots: list[tuple[str, str]], *, pull_auth: str = "Basic",
                 token_service: tuple[str, str] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        """`registry_url`: where Harbor says its registry is (registry.url of every request); `robots`: (name,
        secret) pairs the registry accepts; `pull_auth`: how scan jobs hand them over (Basic, or Bearer with
        `token_service` = (realm URL, service name))."""
        self.registry_url = registry_url
        self._robots = list(robots)
        self.pull_auth = pull_auth
        self.token_service = token_service
        self.sleep = sleep
        self.http = httpx.Client(timeout=30, follow_redirects=False)
        self.responses: list[httpx.Response] = []  # every answer the adapter gave, for validation
        self.deleted_robots: list[str] = []
        self._next_robot_id = 1

    def close(self) -> None:
        self.http.close()

    # -- scanner registrations (POST /scanners, POST /scanners/ping) -------------------------------------------

    def create_scanner(self, req: dict[str, Any]) -> dict[str, Any]:
        """A `ScannerRegistrationReq` made into a `ScannerRegistration`, after pinging the adapter as Harbor does."""
        if not req.get("name") or not req.get("url"):
            raise ValueError("ScannerRegistrationReq requires name and url")
        if req.get("auth", "") not in ("", "Basic", "Bearer", "X-ScannerAdapter-API-Key"):
            raise ValueError(f"unsupported auth type {req['auth']!r}")
        now = _now()
        registration = {"uuid": str(uuid.uuid4()), "name": req["name"], "description": req.get("description", ""),
                        "url": req["url"].rstrip("/"), "disabled": bool(req.get("disabled", False)),
                        "is_default": False, "auth": req.get("auth", ""),
                        "access_credential": req.get("access_credential", ""),
                        "skip_certVerify": bool(req.get("skip_certVerify", False)),
                        "use_internal_addr": bool(req.get("use_internal_addr", False)),
                        "create_time": now, "update_time": now}
        meta = self.metadata(registration)
        types = {c.get("type", "vulnerability") for c in meta["capabilities"]}
        registration.update(adapter=meta["scanner"]["name"], vendor=meta["scanner"]["vendor"],
                            version=meta["scanner"]["version"], health="healthy",
                            capabilities={"support_vulnerability": "vulnerability" in types,
                                          "support_sbom": "sbom" in types})
        return registration

    def metadata(self, registration: dict[str, Any]) -> dict[str, Any]:
        response = self._send(registration, "GET", "/metadata", headers={"Accept": METADATA})
        if response.status_code != 200:
            raise ScanJobFailed(response.status_code, _message(response))
        meta: dict[str, Any] = response.json()
        return meta

    # -- robots (POST /robots, DELETE /robots/{id}) -------------------------------------------------------------

    def create_robot(self, project: str) -> Robot:
        for i, (name, secret) in enumerate(self._robots):
            if name.startswith(f"robot${project}+"):
                del self._robots[i]
                robot = Robot(self._next_robot_id, name, secret, _now())
                self._next_robot_id += 1
                return robot
        raise LookupError(f"no robot provisioned for project {project}")

    def delete_robot(self, robot: Robot) -> None:
        self.deleted_robots.append(robot.name)

    # -- the scan job ---------------------------------------------------------------------------------------------

    def scan_artifact(self, registration: dict[str, Any], artifact: dict[str, Any], mime_types: list[str], *,
                      capability: str = "vulnerability", sbom_media_type: str | None = None) -> ScanJob:
        """One scan job: a robot, the scan request, every wanted report polled to its end; the robot deleted."""
        project = artifact["repository"].split("/", 1)[0]
        robot = self.create_robot(project)
        try:
            enabled: dict[str, Any] = {"type": capability, "produces_mime_types": mime_types}
            if sbom_media_type:
                enabled["parameters"] = {"sbom_media_types": [sbom_media_type]}
            request = {
                "registry": {"url": self.registry_url, "authorization": self.pull_authorization(robot, artifact)},
                "artifact": {"repository": artifact["repository"], "digest": artifact["digest"],
                             "tag": artifact.get("tag", ""), "mime_type": artifact["mime_type"]},
                "enabled_capabilities": [enabled],
            }
            request_id = self.submit(registration, request)
            reports: dict[str, str] = {}
            waits: list[int] = []
            for mime in mime_types:
                reports[mime] = self.poll(registration, request_id, mime, waits, sbom_media_type)
            return ScanJob(request_id, robot, reports, waits, request)
        finally:
            self.delete_robot(robot)

    def pull_authorization(self, robot: Robot, artifact: dict[str, Any]) -> str:
        basic = "Basic " + base64.b64encode(f"{robot.name}:{robot.secret}".encode()).decode()
        if self.pull_auth == "Basic":
            return basic
        assert self.token_service is not None, "Bearer mode needs the registry's token service"
        realm, service = self.token_service
        scope = f"repository:{artifact['repository']}:pull"
        answer = self.http.get(realm, params={"service": service, "scope": scope}, headers={"Authorization": basic})
        answer.raise_for_status()
        return f"Bearer {answer.json()['token']}"

    def submit(self, registration: dict[str, Any], request: dict[str, Any]) -> str:
        response = self._send(registration, "POST", "/scan", json=request,
                              headers={"Content-Type": SCAN_REQUEST, "Accept": SCAN_RESPONSE})
        if response.status_code != 202:
            raise ScanJobFailed(response.status_code, _message(response))
        request_id: str = response.json()["id"]
        return request_id

    def poll(self, registration: dict[str, Any], request_id: str, mime: str, waits: list[int],
             sbom_media_type: str | None = None) -> str:
        params = {"sbom_media_type": sbom_media_type} if mime == SBOM_REPORT and sbom_media_type else None
        for _ in range(MAX_POLLS):
            response = self._send(registration, "GET", f"/scan/{request_id}/report", params=params,
                                  headers={"Accept": mime})
            if response.status_code == 302:
                wait = _refresh_after(response)
                waits.append(wait)
                self.sleep(wait)
                continue
            if response.status_code != 200:
                raise ScanJobFailed(response.status_code, _message(response))
            return response.text
        raise ScanJobFailed(0, f"the report of {request_id} was still not ready after {MAX_POLLS} polls")

    # -- what Harbor keeps: the artifact's scan overview -----------------------------------------------------------

    @staticmethod
    def summarize(request_id: str, report: dict[str, Any], job_started: str, job_ended: str) -> dict[str, Any]:
        """`NativeReportSummary` of a vulnerability report: overall severity and per-severity counts."""
        vulns = report.get("vulnerabilities") or []
        return {"report_id": request_id, "scan_status": "Success", "severity": report.get("severity", "Unknown"),
                "duration": 0, "start_time": job_started, "end_time": job_ended, "complete_percent": 100,
                "scanner": report.get("scanner", {}),
                "summary": {"total": len(vulns), "fixable": sum(1 for v in vulns if v.get("fix_version")),
                            "summary": dict(Counter(v.get("severity", "Unknown") for v in vulns))}}

    # -- HTTP ----------------------------------------------------------------------------------------------------

    def _send(self, registration: dict[str, Any], method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        auth, credential = registration["auth"], registration["access_credential"]
        # As Harbor's authorizers do: Basic encodes "user:password", Bearer and the API key go as written.
        if auth == "Basic":
            headers["Authorization"] = "Basic " + base64.b64encode(credential.encode()).decode()
        elif auth == "Bearer":
            headers["Authorization"] = f"Bearer {credential}"
        elif auth == "X-ScannerAdapter-API-Key":
            headers["X-ScannerAdapter-API-Key"] = credential
        response = self.http.request(method, f"{registration['url']}/api/v1{path}", headers=headers, **kwargs)
        self.responses.append(response)
        return response


def _refresh_after(response: httpx.Response) -> int:
    value = response.headers.get("Refresh-After", "")
    return int(value) if value.strip().isdigit() else DEFAULT_REFRESH


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
