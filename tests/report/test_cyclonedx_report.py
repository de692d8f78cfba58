from __future__ import annotations

import copy
import json
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from hullscan.findings import ScanReport, VulnFinding
from hullscan.model import Package
from hullscan.report import cyclonedx

from . import HTML_TITLE, MARKUP_NAME, VENV1, VENV2, empty_report, sample_report


def _valid(text: str) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    assert errors is None, [str(e) for e in errors]


def _doc(report: ScanReport | None = None) -> dict[str, Any]:
    text = cyclonedx.render_report(report or sample_report(), deterministic=True)
    _valid(text)
    doc: dict[str, Any] = json.loads(text)
    return doc


def _vuln(doc: dict[str, Any], vid: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [v for v in doc["vulnerabilities"] if v["id"] == vid]
    assert len(matches) == 1, vid
    return matches[0]


def _props(item: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties", [])}


def _ref_of(doc: dict[str, Any], name: str, path: str = "") -> str:
    for c in doc["components"]:
        if c["name"] == name and (not path or _props(c).get("hullscan:package:path") == path):
            return str(c["bom-ref"])
    raise AssertionError(name)


def test_validates_with_a_vulnerabilities_section() -> None:
    doc = _doc()
    assert doc["specVersion"] == "1.6"
    # one entry per (id, data source): the two requests findings share theirs
    assert sorted(v["id"] for v in doc["vulnerabilities"]) == sorted([
        "CVE-2023-5678", "CVE-2021-45046", "CVE-2024-6666", "CVE-2024-35195", "CVE-2022-0001", "CVE-2011-3374",
        "CVE-2023-45288",
    ])
    refs = [v["bom-ref"] for v in doc["vulnerabilities"]] + [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    _valid(cyclonedx.render_report(empty_report()))


def test_the_inventory_is_unchanged() -> None:
    report = sample_report()
    doc = _doc(report)
    inventory = json.loads(cyclonedx.render(report.facts, deterministic=True))
    assert doc["components"] == inventory["components"]
    assert doc["dependencies"] == inventory["dependencies"]
    assert "vulnerabilities" not in inventory


def test_every_affects_ref_is_a_component() -> None:
    doc = _doc()
    components = {c["bom-ref"] for c in doc["components"]}
    for vuln in doc["vulnerabilities"]:
        assert vuln["affects"], vuln["id"]
        for target in vuln["affects"]:
            assert target["ref"] in components, (vuln["id"], target["ref"])


def test_a_critical_known_exploited_finding() -> None:
    doc = _doc()
    openssl = _vuln(doc, "CVE-2023-5678")
    assert openssl["source"] == {"name": "Debian:12", "url": "https://osv.dev/vulnerability/DSA-5600-1"}
    assert openssl["ratings"] == [{
        "source": {"name": "Debian:12"}, "score": 9.8, "severity": "critical", "method": "CVSSv31",
        "vector": "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    }]
    assert openssl["description"] == (
        "OpenSSL: excessive time spent in DH check / generation with large Q parameter value"
    )
    assert openssl["detail"] == "Generating excessively long X9.42 DH keys may be very slow."
    assert openssl["recommendation"] == "Upgrade openssl to 3.0.13-1~deb12u1."
    assert [a["url"] for a in openssl["advisories"]] == [
        "https://security-tracker.debian.org/tracker/CVE-2023-5678", "https://www.openssl.org/news/secadv/20231106.txt",
    ]
    assert openssl["references"] == [
        {"id": "DSA-5600-1", "source": {"name": "OSV", "url": "https://osv.dev/vulnerability/DSA-5600-1"}}
    ]
    assert openssl["published"].startswith("2023-11-06T16:15:00")
    assert openssl["updated"].startswith("2024-02-01T00:00:00")
    assert openssl["affects"] == [
        {"ref": _ref_of(doc, "openssl"), "versions": [{"version": "3.0.11-1~deb12u2", "status": "affected"}]}
    ]
    assert _props(openssl) == {
        "hullscan:kev": "true", "hullscan:advisory_ids": "DSA-5600-1", "hullscan:status": "fixed",
        "hullscan:severity_source": "cvss:3.1",
    }


def test_one_vulnerability_on_two_packages() -> None:
    doc = _doc()
    requests = _vuln(doc, "CVE-2024-35195")
    assert sorted(t["ref"] for t in requests["affects"]) == sorted(
        [_ref_of(doc, "requests", VENV1), _ref_of(doc, "requests", VENV2)]
    )
    assert requests["description"] == HTML_TITLE  # JSON: kept as it is
    # a vendor severity is a rating of its own; the CVSS score is another, without a severity
    assert requests["ratings"] == [
        {"source": {"name": "GitHub"}, "severity": "high", "method": "other"},
        {"source": {"name": "PyPI"}, "score": 5.6, "method": "CVSSv31",
         "vector": "AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"},
    ]
    assert requests["recommendation"] == "Upgrade requests to 2.32.0."
    assert [r["id"] for r in requests["references"]] == ["GHSA-9wx4-h78v-vm56", "PYSEC-2024-0001"]
    # unusable references are dropped
    assert [a["url"] for a in requests["advisories"]] == [
        "https://github.com/psf/requests/security/advisories/GHSA-9wx4-h78v-vm56"
    ]
    assert "kev" not in json.dumps(requests["properties"])


def test_unfixed_cvss2_and_unknown_findings() -> None:
    doc = _doc()
    bash = _vuln(doc, "CVE-2011-3374")
    assert bash["recommendation"] == "No fixed version is available yet."
    assert bash["ratings"][0] == {"source": {"name": "Debian"}, "severity": "low", "method": "other"}
    assert bash["ratings"][1]["method"] == "CVSSv2" and bash["ratings"][1]["score"] == 4.3
    assert _props(bash)["hullscan:status"] == "affected"
    stdlib = _vuln(doc, "CVE-2023-45288")
    assert stdlib["ratings"] == [{"source": {"name": "Go"}, "severity": "unknown"}]
    assert stdlib["recommendation"] == "Upgrade stdlib to 1.21.9 or 1.22.2."
    markup = _vuln(doc, "CVE-2022-0001")
    assert markup["affects"][0]["ref"] == _ref_of(doc, MARKUP_NAME)
    # a second '#' and brackets are percent-encoded, so the URL is still an iri-reference
    assert markup["advisories"] == [{"url": "https://example.com/advisory?id=1&x=%5By%5D#frag%23more"}]


def test_ignored_findings_are_left_out() -> None:
    ids = {v["id"] for v in _doc()["vulnerabilities"]}
    assert ids.isdisjoint({"CVE-2024-0727", "CVE-2023-9999"})


def test_deterministic_and_order_independent() -> None:
    a = cyclonedx.render_report(sample_report(), deterministic=True)
    report = sample_report()
    report.vulnerabilities.reverse()
    assert cyclonedx.render_report(report, deterministic=True) == a


def test_findings_on_packages_outside_the_inventory() -> None:
    report = sample_report()
    openssl = next(p for p in report.facts.packages if p.name == "openssl")
    twin = copy.deepcopy(openssl)  # an equal object (e.g. from a stored SBOM): the same component
    stray = Package("left-pad", "1.0.0", "npm", path="srv/node_modules/left-pad/package.json",
                    purl="pkg:npm/left-pad@1.0.0")
    report.vulnerabilities = [
        VulnFinding("CVE-2024-0001", twin, installed_version=twin.version, severity="HIGH", data_source="Debian:12"),
        VulnFinding("CVE-2024-0002", stray, installed_version="1.0.0", severity="LOW", data_source="npm"),
    ]
    doc = _doc(report)
    assert _vuln(doc, "CVE-2024-0001")["affects"][0]["ref"] == _ref_of(doc, "openssl")
    assert _vuln(doc, "CVE-2024-0002")["affects"][0]["ref"] == "pkg:npm/left-pad@1.0.0"
    assert len([c for c in doc["components"] if c["type"] == "library"]) == len(report.facts.packages) + 1


def test_odd_findings_still_validate() -> None:
    report = empty_report()
    pkg = Package("x", "", "npm")
    report.facts.packages = [pkg]
    report.vulnerabilities = [
        VulnFinding("", pkg, severity="bogus", cvss_score=11.0, cvss_vector="garbage", published="not a date",
                    references=["%%%", "https://ex.com/%zz", "mailto:a@b"], title="\n\n", description="  "),
        VulnFinding("X-1", pkg, aliases=["X-1", ""], severity="CRITICAL", severity_source="vendor:",
                    fixed_versions=["2"], status="fixed"),
    ]
    doc = _doc(report)
    odd = _vuln(doc, "X-1")
    assert odd["recommendation"] == "Upgrade x to 2."
    assert "references" not in odd
