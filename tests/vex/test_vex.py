"""VEX: OpenVEX and CycloneDX VEX documents read, matched to findings by id/alias and purl, and written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hullscan.findings import IgnoredFinding, ScanReport, VulnFinding
from hullscan.model import ImageFacts, Package
from hullscan.report import openvex
from hullscan.vex.apply import apply_vex, product_matches
from hullscan.vex.parse import VexError, load_vex, parse_vex

OPENSSL = Package(name="libssl1.1", version="1.1.1n-0+deb11u3", ecosystem="deb",
                  purl="pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11")
CURL = Package(name="curl", version="7.74.0-1.3+deb11u6", ecosystem="deb",
               purl="pkg:deb/debian/curl@7.74.0-1.3%2Bdeb11u6?arch=amd64&distro=debian-11")


def finding(vid: str, pkg: Package, advisory: str = "DSA-5343-1", aliases: tuple[str, ...] = ()) -> VulnFinding:
    return VulnFinding(id=vid, package=pkg, advisory_ids=[advisory], aliases=list(aliases),
                       installed_version=pkg.version, severity="HIGH")


def openvex_doc(*statements: dict[str, object], timestamp: str = "2024-01-01T00:00:00Z") -> str:
    return json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex-1",
                       "author": "test", "timestamp": timestamp, "version": 1, "statements": list(statements)})


def test_openvex_not_affected_suppresses_by_id_and_purl_with_its_justification() -> None:
    doc = parse_vex(openvex_doc({
        "vulnerability": {"name": "CVE-2023-0286"},
        "products": [{"@id": "pkg:oci/app@sha256:abc", "subcomponents": [{"@id": "pkg:deb/debian/libssl1.1"}]}],
        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
        "impact_statement": "CRL checking is never enabled"}), "app.vex.json")
    kept, suppressed = apply_vex([finding("CVE-2023-0286", OPENSSL), finding("CVE-2023-0286", CURL),
                                  finding("CVE-2022-4450", OPENSSL)], doc.statements)
    assert [(f.id, f.package.name) for f in kept] == [("CVE-2023-0286", "curl"), ("CVE-2022-4450", "libssl1.1")]
    (s,) = suppressed
    assert (s.finding.id, s.finding.package.name, s.status) == ("CVE-2023-0286", "libssl1.1", "not_affected")
    assert s.justification == "vulnerable_code_not_in_execute_path" and s.impact == "CRL checking is never enabled"
    assert s.source == "app.vex.json"


def test_statement_matches_an_alias_and_an_advisory_id() -> None:
    doc = parse_vex(openvex_doc({"vulnerability": {"name": "GHSA-xxxx-yyyy-zzzz", "aliases": ["CVE-2023-23916"]},
                                 "products": [{"@id": "pkg:deb/debian/curl@7.74.0-1.3%2Bdeb11u6"}],
                                 "status": "fixed"},
                                {"vulnerability": "DSA-5343-1", "products": ["pkg:deb/debian/libssl1.1"],
                                 "status": "not_affected", "justification": "component_not_present"}), "v")
    kept, suppressed = apply_vex([finding("CVE-2023-23916", CURL, "DSA-5365-1"), finding("CVE-2022-2097", OPENSSL)],
                                 doc.statements)
    assert kept == [] and [s.status for s in suppressed] == ["fixed", "not_affected"]


def test_a_version_in_the_product_purl_must_equal_the_package_version() -> None:
    assert product_matches("pkg:deb/debian/curl@7.74.0-1.3%2Bdeb11u6", CURL.purl)
    assert not product_matches("pkg:deb/debian/curl@7.74.0-1.3%2Bdeb11u7", CURL.purl)
    assert not product_matches("pkg:deb/debian/libcurl4", CURL.purl)
    assert product_matches("pkg:pypi/PyYAML", "pkg:pypi/pyyaml@5.3")
    assert not product_matches("not a purl", CURL.purl)


def test_under_investigation_and_affected_change_nothing_and_the_latest_statement_wins() -> None:
    older = {"vulnerability": {"name": "CVE-2023-0286"}, "products": ["pkg:deb/debian/libssl1.1"],
             "status": "not_affected", "justification": "inline_mitigations_already_exist",
             "timestamp": "2024-01-01T00:00:00Z"}
    newer = {**older, "status": "affected", "timestamp": "2024-06-01T00:00:00Z"}
    doc = parse_vex(openvex_doc(older, newer), "v")
    kept, suppressed = apply_vex([finding("CVE-2023-0286", OPENSSL)], doc.statements)
    assert len(kept) == 1 and not suppressed
    doc = parse_vex(openvex_doc({**older, "status": "under_investigation"}), "v")
    assert apply_vex([finding("CVE-2023-0286", OPENSSL)], doc.statements)[1] == []
    # the reverse order: the later not_affected wins
    doc = parse_vex(openvex_doc({**older, "timestamp": "2025-01-01T00:00:00Z"}, newer), "v")
    assert len(apply_vex([finding("CVE-2023-0286", OPENSSL)], doc.statements)[1]) == 1


def test_cyclonedx_vex_with_bom_refs_and_urns() -> None:
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
           "components": [{"type": "library", "name": "libssl1.1", "bom-ref": "ssl",
                           "purl": "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3"}],
           "vulnerabilities": [
               {"id": "CVE-2023-0286", "analysis": {"state": "not_affected", "justification": "code_not_reachable",
                                                    "detail": "no X.400 names are parsed"},
                "affects": [{"ref": "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#ssl"}]},
               {"id": "CVE-2022-4450", "analysis": {"state": "resolved"}, "affects": [{"ref": "ssl"}]},
               {"id": "CVE-2023-23916", "analysis": {"state": "in_triage"}, "affects": [{"ref": CURL.purl}]},
               {"id": "CVE-2022-2097", "analysis": {"state": "not_affected"}, "affects": [{"ref": "unknown-ref"}]},
           ]}
    doc = parse_vex(json.dumps(bom), "bom.json")
    assert doc.format == "cyclonedx" and doc.skipped == 1  # the statement about nothing identifiable
    kept, suppressed = apply_vex([finding("CVE-2023-0286", OPENSSL), finding("CVE-2022-4450", OPENSSL),
                                  finding("CVE-2023-23916", CURL), finding("CVE-2022-2097", OPENSSL)], doc.statements)
    assert [(s.finding.id, s.status, s.justification) for s in suppressed] == [
        ("CVE-2023-0286", "not_affected", "code_not_reachable"), ("CVE-2022-4450", "fixed", "")]
    assert [f.id for f in kept] == ["CVE-2023-23916", "CVE-2022-2097"]


def test_bad_documents_are_refused_with_a_cause(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"statements": [')
    with pytest.raises(VexError) as err:
        load_vex(bad)
    assert err.value.code == "VEX_INVALID" and "not valid JSON" in err.value.detail
    bad.write_text('{"hello": 1}')
    with pytest.raises(VexError, match="neither an OpenVEX"):
        load_vex(bad)
    with pytest.raises(VexError, match="cannot read"):
        load_vex(tmp_path / "missing.json")
    # a statement without a status is skipped, never half-applied
    doc = parse_vex(openvex_doc({"vulnerability": {"name": "CVE-2023-0286"}, "products": ["pkg:deb/debian/x"]}), "v")
    assert doc.statements == [] and doc.skipped == 1


def test_openvex_output_states_the_ignore_file_triage_and_reads_back() -> None:
    facts = ImageFacts(reference="registry.example.com/team/app:1", manifest_digest="sha256:" + "a" * 64)
    report = ScanReport(facts=facts, ignored=[IgnoredFinding(finding("CVE-2023-0286", OPENSSL), "no CRL checks",
                                                             "2099-12-31")],
                        vulnerabilities=[finding("CVE-2022-4450", OPENSSL)])
    doc = json.loads(openvex.render(report))
    assert doc["@context"] == "https://openvex.dev/ns/v0.2.0" and doc["@id"].startswith("https://openvex.dev/docs/")
    (st,) = doc["statements"]
    assert st["vulnerability"] == {"name": "CVE-2023-0286"}  # not the DSA, which names four more CVEs
    assert st["status"] == "not_affected" and st["impact_statement"] == "no CRL checks"
    assert st["products"][0]["@id"].startswith("pkg:oci/app@sha256:")
    assert st["products"][0]["subcomponents"] == [{"@id": OPENSSL.purl}]
    # what hullscan writes, hullscan reads: the statement suppresses the same finding in the next scan
    again = parse_vex(openvex.render(report), "out.vex.json")
    kept, suppressed = apply_vex([finding("CVE-2023-0286", OPENSSL), finding("CVE-2022-4450", OPENSSL)],
                                 again.statements)
    assert [s.finding.id for s in suppressed] == ["CVE-2023-0286"] and [f.id for f in kept] == ["CVE-2022-4450"]
    assert openvex.render(report) == openvex.render(report)  # deterministic
