"""The adapter's pieces on their own: content negotiation, reading Harbor's credentials and registry URLs, the
report shape for edge cases, and the OpenAPI check itself (it must reject what the spec does not allow, or the
service tests that lean on it prove nothing)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hullscan.errors import HullscanError
from hullscan.findings import ScanReport, VulnFinding
from hullscan.model import ImageFacts, Package
from hullscan.oci.credentials import from_authorization
from hullscan.service.api.app import create_app
from hullscan.service.harbor_adapter import mediatypes as mt
from hullscan.service.harbor_adapter.errors import AdapterError
from hullscan.service.harbor_adapter.reports import Artifact, vulnerability_report
from hullscan.service.harbor_adapter.request import parse, registry_of
from hullscan.settings import Settings
from tests.support.adapter_spec import SPEC

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("accept", "expected"), [
    (None, mt.HARBOR_REPORT),  # no header: the original Harbor report, as the spec keeps
    ("*/*", mt.HARBOR_REPORT),
    ("application/vnd.security.vulnerability.report; version=1.1", mt.VULN_REPORT),
    ('application/vnd.security.vulnerability.report;version="1.1"', mt.VULN_REPORT),
    ("APPLICATION/VND.SCANNER.ADAPTER.VULN.REPORT.RAW", mt.RAW_REPORT),
    ("application/vnd.security.sbom.report+json", mt.SBOM_REPORT),
    ("text/html;q=0.9, application/vnd.scanner.adapter.vuln.report.raw;q=0.5", mt.RAW_REPORT),
    (f"{mt.RAW_REPORT};q=0.2, {mt.VULN_REPORT}", mt.VULN_REPORT),
    ("application/vnd.security.vulnerability.report; version=1.0", None),  # a version not produced
    (f"{mt.VULN_REPORT};q=0", None),
    ("text/html", None),
])
def test_report_negotiation(accept: str | None, expected: str | None) -> None:
    assert mt.negotiate(accept, mt.REPORTS, mt.HARBOR_REPORT) == expected


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_harbor_credentials_become_registry_credentials() -> None:
    robot = from_authorization(_basic("robot$library+scan-1:s3cr:et"), "test")
    assert (robot.username, robot.password, robot.registry_token) == ("robot$library+scan-1", "s3cr:et", "")
    for written in ("Bearer eyJ.x.y", "Bearer: eyJ.x.y", "bearer   eyJ.x.y"):
        token = from_authorization(written, "test")
        assert (token.username, token.password, token.registry_token) == ("", "", "eyJ.x.y")
    assert "eyJ" not in repr(token) and "s3cr" not in repr(robot)
    for bad in ("Basic !!!", _basic("no-colon"), _basic(":only-password"), "Bearer", "Bearer a b", "Digest x", ""):
        with pytest.raises(HullscanError) as info:
            from_authorization(bad, "test")
        assert info.value.code == "AUTH_FAILED"


@pytest.mark.parametrize(("url", "normalised", "host", "insecure"), [
    ("https://core.harbor.domain", "https://core.harbor.domain", "core.harbor.domain", False),
    ("http://harbor-core:8080/", "http://harbor-core:8080", "harbor-core:8080", True),
    ("harbor-harbor-registry:5000", "https://harbor-harbor-registry:5000", "harbor-harbor-registry:5000", False),
    # a bare service name would read as a Docker Hub path in an image reference: its scheme's port makes it a host
    ("http://harbor-core", "http://harbor-core:80", "harbor-core:80", True),
    ("https://Registry.Example.COM", "https://registry.example.com", "registry.example.com", False),
])
def test_registry_urls(url: str, normalised: str, host: str, insecure: bool) -> None:
    registry = registry_of(url)
    assert (registry.url, registry.host, registry.insecure) == (normalised, host, insecure)


@pytest.mark.parametrize("url", ["", "ftp://x", "http://user:pw@x:5000", "http://x:port", "https://x/v2/",
                                 "https://x?y=1"])
def test_registry_urls_refused(url: str) -> None:
    with pytest.raises(AdapterError) as info:
        registry_of(url)
    assert info.value.status == 422


def test_unknown_fields_are_ignored_and_capabilities_default_to_all() -> None:
    body = (b'{"registry": {"url": "http://harbor-core:8080", "authorization": ""}, "artifact": {"namespace_id": 3,'
            b' "repository": "library/mongo", "digest": "' + DIGEST.encode() + b'", "tag": "", "size": 10,'
            b' "mime_type": "application/vnd.docker.distribution.manifest.v2+json"}, "future": true}')
    target = parse(body)
    assert (target.repository, target.digest, target.tag, target.authorization) == ("library/mongo", DIGEST, None,
                                                                                     None)
    assert target.capabilities == ("vulnerability", "sbom")


def _finding(vuln_id: str, severity: str, vector: str = "", score: float | None = None) -> VulnFinding:
    return VulnFinding(vuln_id, Package("pkg", "1.0", "npm"), installed_version="1.0", severity=severity,
                       cvss_vector=vector, cvss_score=score, status="affected",
                       references=["https://example.org/\u00e4", "not a link"])


def test_report_shapes_for_edge_cases() -> None:
    artifact = Artifact("library/x", DIGEST)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    empty = vulnerability_report(ScanReport(facts=ImageFacts(reference="x")), artifact, when)
    assert (empty["severity"], empty["vulnerabilities"], empty["generated_at"]) == ("Unknown", [],
                                                                                    "2026-01-02T03:04:05Z")
    report = ScanReport(facts=ImageFacts(reference="x"), vulnerabilities=[
        _finding("CVE-1", "LOW", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
        _finding("CVE-2", "weird", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3)])
    doc = vulnerability_report(report, artifact, when)
    by_id = {v["id"]: v for v in doc["vulnerabilities"]}
    assert doc["severity"] == "Low"
    assert by_id["CVE-1"]["preferred_cvss"] == {"vector_v2": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "score_v2": 7.5}
    assert "preferred_cvss" not in by_id["CVE-2"] and by_id["CVE-2"]["severity"] == "Unknown"
    assert by_id["CVE-2"]["vendor_attributes"]["hullscan"]["cvss"]["vector"].startswith("CVSS:4.0")
    assert by_id["CVE-1"]["links"] == ["https://example.org/%C3%A4"] and "fix_version" not in by_id["CVE-1"]
    SPEC.check(httpx.Response(200, json=doc, headers={"content-type": mt.VULN_REPORT},
                              request=httpx.Request("GET", "http://h/api/v1/scan/1-ab/report")))


def _answer(status: int, path: str, content_type: str | None = None, body: bytes = b"",
            headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
    all_headers = {**(headers or {}), **({"content-type": content_type} if content_type else {})}
    return httpx.Response(status, headers=all_headers, content=body,
                          request=httpx.Request(method, f"http://h/api/v1{path}"))


@pytest.mark.parametrize("response", [
    _answer(200, "/metadata", mt.METADATA_V11, b'{"scanner": {"name": "x"}}'),  # capabilities missing
    _answer(200, "/metadata", "application/json", b'{"scanner": {}, "capabilities": []}'),  # not the spec's type
    _answer(302, "/scan/1-ab/report", headers={"Refresh-After": "soon"}),  # not an integer
    _answer(200, "/scan/1-ab/report", mt.VULN_REPORT, b'{"severity": "Severe"}'),  # not in the enum
    _answer(200, "/scan/1-ab/report", mt.VULN_REPORT, b'{"vulnerabilities": [{"links": ["no uri"]}]}'),
    _answer(200, "/scan/1-ab/report", mt.SBOM_REPORT, b'{"media_type": "text/csv"}'),
    _answer(409, "/scan/1-ab/report", mt.ERROR, b'{"error": {"message": "x"}}'),  # a status the spec lacks
    _answer(202, "/scan", mt.SCAN_RESPONSE, b'{"ident": "x"}', method="POST"),  # id missing
], ids=["no-capabilities", "plain-json", "refresh-after", "severity", "link", "sbom-type", "409", "no-id"])
def test_the_spec_check_rejects_what_the_spec_does_not_allow(response: httpx.Response) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - openapi-core raises a family of validation errors
        SPEC.check(response)
    assert type(info.value).__module__.startswith("openapi_core")


def test_the_apps_openapi_document_describes_the_scan_request_without_dangling_references(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache", secret_key="k"))
    body = app.openapi()["paths"]["/api/v1/scan"]["post"]["requestBody"]["content"]
    schema = body["application/vnd.scanner.adapter.scan.request+json; version=1.1"]["schema"]
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    assert schema["required"] == ["registry", "artifact"]
    assert set(schema["properties"]["artifact"]["properties"]) == {"repository", "digest", "tag", "mime_type"}


def test_metadata_without_a_vulnerability_database_says_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache", secret_key="k", admin_password="p" * 12,
                        pool_workers=0)
    with TestClient(create_app(settings)) as client:
        answer = SPEC.check(client.get("/api/v1/metadata", auth=("admin", "p" * 12)))
    props = answer.json()["properties"]
    assert props["hullscan/vulnerability-database-error"] == "NO_DATABASE"
    assert "harbor.scanner-adapter/vulnerability-database-updated-at" not in props


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 60_000, "nests deeper than"),  # within the size cap; the stdlib decoder would overflow its stack
    (b"\xff\xfe{", "not valid JSON"),
    (b'{"registry": {"url": "http://x:1"}, "artifact": ' + b"1" * 5000 + b"}", "not valid JSON"),
])
def test_hostile_scan_request_bodies_are_refused_with_400(body: bytes, words: str) -> None:
    with pytest.raises(AdapterError) as info:
        parse(body)
    assert info.value.status == 400 and words in info.value.detail
