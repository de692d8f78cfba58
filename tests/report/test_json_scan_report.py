from __future__ import annotations

import json
from typing import Any

from hullscan.report import json_report

from . import DIFF, ESCAPE_TITLE, HTML_TITLE, MARKUP_NAME, MARKUP_TITLE, VENV1, empty_report, sample_report

FINDING_KEYS = {
    "id", "aliases", "advisory_ids", "package", "installed_version", "fixed_versions", "status", "severity",
    "severity_source", "cvss", "title", "description", "references", "published", "modified", "data_source", "kev",
    "epss",
}


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json_report.render_report(sample_report()))
    return doc


def test_keeps_the_inventory_document() -> None:
    report = sample_report()
    doc = _doc()
    inventory = json_report.to_dict(report.facts)
    assert doc["schema"] == "hullscan/report/v2" and inventory["schema"] == "hullscan/report/v1"
    for key in ("tool", "artifact", "layers", "packages"):
        assert doc[key] == inventory[key]
    assert doc["summary"]["packages"] == 17 and doc["summary"]["by_ecosystem"] == inventory["summary"]["by_ecosystem"]


def test_vulnerabilities_sorted_with_every_field() -> None:
    vulns = _doc()["vulnerabilities"]
    assert [(v["severity"], v["id"]) for v in vulns] == [
        ("CRITICAL", "CVE-2023-5678"), ("CRITICAL", "CVE-2021-45046"), ("HIGH", "CVE-2024-6666"),
        ("HIGH", "CVE-2024-35195"), ("HIGH", "CVE-2024-35195"), ("MEDIUM", "CVE-2022-0001"),
        ("LOW", "CVE-2011-3374"), ("UNKNOWN", "CVE-2023-45288"),
    ]
    assert all(set(v) == FINDING_KEYS for v in vulns)
    assert vulns[0] == {
        "id": "CVE-2023-5678",
        "aliases": ["DSA-5600-1"],
        "advisory_ids": ["DSA-5600-1"],
        "package": {
            "name": "openssl",
            "version": "3.0.11-1~deb12u2",
            "ecosystem": "deb",
            "purl": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
            "path": "var/lib/dpkg/status",
            "layer": {
                "index": 1, "diff_id": DIFF[1],
                "created_by": "RUN /bin/sh -c apt-get update && apt-get install -y openssl # buildkit",
            },
        },
        "installed_version": "3.0.11-1~deb12u2",
        "fixed_versions": ["3.0.13-1~deb12u1"],
        "status": "fixed",
        "severity": "CRITICAL",
        "severity_source": "cvss:3.1",
        "cvss": {"score": 9.8, "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
        "title": "OpenSSL: excessive time spent in DH check / generation with large Q parameter value",
        "description": "Generating excessively long X9.42 DH keys may be very slow.",
        "references": ["https://security-tracker.debian.org/tracker/CVE-2023-5678",
                       "https://www.openssl.org/news/secadv/20231106.txt"],
        "published": "2023-11-06T16:15:00Z",
        "modified": "2024-02-01T00:00:00Z",
        "data_source": "Debian:12",
        "kev": True,
        "epss": {"score": None, "percentile": None},
    }


def test_unfixed_unscored_and_unattributed_findings() -> None:
    vulns = {(v["id"], v["package"]["path"]): v for v in _doc()["vulnerabilities"]}
    bash = vulns[("CVE-2011-3374", "var/lib/dpkg/status")]
    assert bash["status"] == "affected" and bash["fixed_versions"] == []
    assert bash["severity_source"] == "vendor:Debian" and bash["cvss"]["score"] == 4.3
    stdlib = vulns[("CVE-2023-45288", "usr/local/bin/app")]
    assert stdlib["cvss"] == {"score": None, "vector": ""}
    assert stdlib["package"]["layer"] == {"index": None, "diff_id": "", "created_by": ""}
    assert stdlib["fixed_versions"] == ["1.21.9", "1.22.2"]
    requests = vulns[("CVE-2024-35195", VENV1)]
    assert requests["aliases"] == ["GHSA-9wx4-h78v-vm56"] and requests["package"]["layer"]["index"] == 2


def test_ignored_with_reason_and_expiry() -> None:
    ignored = _doc()["ignored"]
    assert [(e["id"], e["reason"], e["expires"]) for e in ignored] == [
        ("CVE-2023-9999", "", ""),  # CRITICAL first
        ("CVE-2024-0727", "no PKCS12 parsing in this image", "2099-12-31"),
    ]
    assert set(ignored[1]) == FINDING_KEYS | {"reason", "expires"}
    assert ignored[1]["package"]["name"] == "openssl"


def test_database_scanners_and_notes() -> None:
    doc = _doc()
    assert doc["database"] == {
        "schema_version": 1,
        "built_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-02T10:00:00Z",
        "sources": ["osv:Debian", "osv:PyPI"],
        "counts": {"Debian": 20, "PyPI": 10},
    }  # no local path
    assert doc["scanners"] == ["vuln"]
    codes = [n["code"] for n in doc["notes"]]
    assert codes == ["layer.too_big", "path.escape", "db.corrupt", "OS_NOT_CHECKED", "IGNORE_EXPIRED"]
    assert doc["notes"][4] == {
        "code": "IGNORE_EXPIRED",
        "message": "ignore entry CVE-2020-0001 expired on 2024-01-01; it no longer applies (legacy)",
        "path": "line 3",
        "layer": None,
    }
    report = sample_report()
    report.database = None
    assert json_report.report_to_dict(report)["database"] is None


def test_summary_counts() -> None:
    assert _doc()["summary"]["vulnerabilities"] == {
        "total": 8,
        "by_severity": {"CRITICAL": 2, "HIGH": 3, "MEDIUM": 1, "LOW": 1, "UNKNOWN": 1},
        "fixable": 6,
        "fixable_by_severity": {"CRITICAL": 2, "HIGH": 2, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 1},
        "kev": 1,
        "ignored": 2,
        "suppressed": 0,
    }


def test_hostile_strings_round_trip() -> None:
    report = sample_report()
    text = json_report.render_report(report)
    assert json.loads(text) == json_report.report_to_dict(report)
    assert json.dumps(HTML_TITLE, ensure_ascii=False) in text  # JSON needs no HTML escaping, and gets none
    assert "<script>alert(" in text
    assert "\x1b" not in text and "\\u001b" in text  # control characters are JSON-escaped
    titles = {v["title"] for v in json.loads(text)["vulnerabilities"]}
    assert {HTML_TITLE, MARKUP_TITLE, ESCAPE_TITLE} <= titles
    assert MARKUP_NAME in {v["package"]["name"] for v in json.loads(text)["vulnerabilities"]}


def test_stable_whatever_the_input_order() -> None:
    report = sample_report()
    report.vulnerabilities.reverse()
    report.ignored.reverse()
    assert json_report.render_report(report) == json_report.render_report(sample_report())


def test_severity_spelling_is_normalised() -> None:
    report = sample_report()
    report.vulnerabilities[0].severity = "low"
    report.vulnerabilities[1].severity = "moderate"  # not a hullscan severity: counted as UNKNOWN
    counts = json_report.report_to_dict(report)["summary"]["vulnerabilities"]["by_severity"]
    assert counts == {"CRITICAL": 2, "HIGH": 2, "MEDIUM": 1, "LOW": 1, "UNKNOWN": 2}


def test_empty_report() -> None:
    doc = json.loads(json_report.render_report(empty_report()))
    assert doc["vulnerabilities"] == [] and doc["ignored"] == []
    assert doc["summary"]["vulnerabilities"]["total"] == 0
    assert doc["summary"]["vulnerabilities"]["by_severity"] == dict.fromkeys(
        ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"), 0
    )
