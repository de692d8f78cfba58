from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft4Validator, FormatChecker
from rfc3986_validator import validate_rfc3986

from hullscan import __version__
from hullscan.findings import ScanReport
from hullscan.report import sarif, web_uri

from . import ESCAPE_TITLE, HTML_TITLE, MANIFEST, MARKUP_NAME, VENV1, VENV2, empty_report, sample_report

SCHEMA = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"  # see schemas/README.md


@cache
def _validator() -> Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=FormatChecker())


def _errors(doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(doc)]


def _doc(report: ScanReport | None = None) -> dict[str, Any]:
    text = sarif.render(report or sample_report())
    doc: dict[str, Any] = json.loads(text)
    assert _errors(doc) == []
    return doc


def _run(doc: dict[str, Any] | None = None) -> dict[str, Any]:
    run: dict[str, Any] = (doc or _doc())["runs"][0]
    return run


def _rules(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}


def test_schema_file_is_the_recorded_one() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def test_validates_against_the_sarif_2_1_0_schema() -> None:
    doc = _doc()
    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == sarif.SARIF_SCHEMA
    assert len(doc["runs"]) == 1
    _doc(empty_report())


def test_the_validator_does_reject_broken_logs() -> None:
    doc = _doc()
    for path, value in (
        (("runs", 0, "results", 0, "level"), "fatal"),
        (("runs", 0, "results", 0, "locations", 0, "physicalLocation", "artifactLocation", "uri"), "a b/c"),
        (("runs", 0, "tool", "driver", "rules", 0, "helpUri"), "not a uri"),
        (("runs", 0, "tool", "driver", "name"), None),
    ):
        broken = copy.deepcopy(doc)
        target: Any = broken
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        assert _errors(broken), path


def test_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _run()["tool"]["driver"]
    assert driver["name"] == "hullscan" and driver["version"] == __version__
    monkeypatch.setattr(sarif, "information_uri", lambda: "https://hullscan.example/docs")
    driver = _run()["tool"]["driver"]
    assert driver["informationUri"] == "https://hullscan.example/docs"
    monkeypatch.setattr(sarif, "information_uri", lambda: "")
    assert "informationUri" not in _run()["tool"]["driver"]


def test_one_rule_per_vulnerability_id_most_severe_first() -> None:
    run = _run()
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [
        "CVE-2023-5678", "CVE-2021-45046", "CVE-2024-6666", "CVE-2024-35195", "CVE-2022-0001", "CVE-2011-3374",
        "CVE-2023-45288",
    ]
    openssl = rules[0]
    assert openssl["shortDescription"] == {
        "text": "OpenSSL: excessive time spent in DH check / generation with large Q parameter value"
    }
    assert openssl["fullDescription"] == {"text": "Generating excessively long X9.42 DH keys may be very slow."}
    assert openssl["helpUri"] == "https://security-tracker.debian.org/tracker/CVE-2023-5678"
    assert openssl["properties"] == {"tags": ["security", "vulnerability", "CRITICAL"], "security-severity": "9.8"}
    assert openssl["defaultConfiguration"] == {"level": "error"}
    help_text = openssl["help"]["text"]
    assert "fixed in 3.0.13-1~deb12u1" in help_text and "openssl 3.0.11-1~deb12u2 at var/lib/dpkg/status" in help_text
    assert "Known exploited" in help_text
    assert "- https://www.openssl.org/news/secadv/20231106.txt" in help_text


def test_a_rule_lists_every_affected_package() -> None:
    rule = _rules(_run())["CVE-2024-35195"]
    assert rule["shortDescription"]["text"] == HTML_TITLE
    for path in (VENV1, VENV2):
        assert f"requests 2.31.0 at {path}: fixed in 2.32.0" in rule["help"]["text"]
    # The first usable reference; the one with a space and the one that is no URL are dropped.
    assert rule["helpUri"] == "https://github.com/psf/requests/security/advisories/GHSA-9wx4-h78v-vm56"
    assert "example.com/a" not in rule["help"]["text"] and "not a url" not in rule["help"]["text"]


def test_security_severity_follows_the_reported_severity() -> None:
    rules = _rules(_run())
    severity = {rid: rule["properties"].get("security-severity") for rid, rule in rules.items()}
    assert severity == {
        "CVE-2023-5678": "9.8",  # CVSS score, in the CRITICAL band
        "CVE-2021-45046": "9.0",
        "CVE-2024-6666": "7.5",
        "CVE-2024-35195": "8.0",  # vendor says HIGH, CVSS 5.6 says MEDIUM: the middle of the HIGH band
        "CVE-2022-0001": "5.3",
        "CVE-2011-3374": "2.0",  # vendor LOW, CVSS 4.3
        "CVE-2023-45288": None,  # UNKNOWN: no claim
    }
    for rid, rule in rules.items():
        assert rule["properties"]["tags"][:2] == ["security", "vulnerability"], rid
        assert isinstance(rule["properties"].get("security-severity", ""), str)


def test_one_result_per_finding_with_levels() -> None:
    run = _run()
    results = run["results"]
    levels = [(r["ruleId"], r["level"]) for r in results]
    assert levels == [
        ("CVE-2023-5678", "error"), ("CVE-2021-45046", "error"), ("CVE-2024-6666", "error"),
        ("CVE-2024-35195", "error"), ("CVE-2024-35195", "error"), ("CVE-2022-0001", "warning"),
        ("CVE-2011-3374", "note"), ("CVE-2023-45288", "note"),
    ]
    rules = run["tool"]["driver"]["rules"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["kind"] == "fail"
    fingerprints = [r["partialFingerprints"][sarif.FINGERPRINT] for r in results]
    assert len(set(fingerprints)) == len(results)
    assert fingerprints == [r["partialFingerprints"][sarif.FINGERPRINT] for r in _run()["results"]]


def test_messages_name_package_installed_and_fixed_versions() -> None:
    messages = [r["message"]["text"] for r in _run()["results"]]
    assert messages[0] == (
        "openssl 3.0.11-1~deb12u2 is affected by CVE-2023-5678 (CRITICAL), a known exploited vulnerability; "
        "fixed in 3.0.13-1~deb12u1."
    )
    assert messages[6] == (
        "bash 5.2.15-2+b2 is affected by CVE-2011-3374 (LOW); no fixed version is available yet."
    )
    assert messages[7].endswith("fixed in 1.21.9, 1.22.2.")


def test_locations_image_and_layer() -> None:
    run = _run()
    first = run["results"][0]
    location = first["locations"][0]
    assert location["physicalLocation"]["artifactLocation"] == {"uri": "var/lib/dpkg/status", "uriBaseId": "IMAGEROOT"}
    assert location["logicalLocations"] == [{
        "name": "openssl",
        "fullyQualifiedName": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
        "kind": "package",
    }]
    assert location["message"] == {"text": "installed by layer 1"}
    props = first["properties"]
    assert props["image"] == "registry.example.com:5000/team/app:1.4" and props["imageDigest"] == MANIFEST
    assert props["layer"]["index"] == 1 and props["layer"]["diffId"].startswith("sha256:2222")
    assert props["fixedVersions"] == ["3.0.13-1~deb12u1"] and props["kev"] is True
    assert props["cvss"] == {"score": 9.8, "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
    stdlib = run["results"][7]
    assert stdlib["properties"]["layer"]["index"] is None and "message" not in stdlib["locations"][0]
    assert run["originalUriBaseIds"]["IMAGEROOT"]["uri"] == "file:///"
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert validate_rfc3986(uri, rule="URI_reference"), uri


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("var/lib/dpkg/status", "var/lib/dpkg/status"),
        ("opt/my app/lib/x y.jar", "opt/my%20app/lib/x%20y.jar"),
        ("app/ünï/café.py", "app/%C3%BCn%C3%AF/caf%C3%A9.py"),
        ("a/b#c?d%e[f]:g@h.txt", "a/b%23c%3Fd%25e%5Bf%5D%3Ag%40h.txt"),
        ("c:/x", "c%3A/x"),  # no scheme can be read into it
        ("/abs/path", "abs/path"),
        ("bad\udcffname", "bad%FFname"),  # a name that was not UTF-8 gets its bytes back
    ],
)
def test_artifact_uri_percent_encodes(path: str, uri: str) -> None:
    assert sarif.artifact_uri(path) == uri
    assert validate_rfc3986(uri, rule="URI_reference")
    if "\udcff" not in path:
        assert unquote(uri) == path.lstrip("/")


def test_awkward_paths_still_validate() -> None:
    report = sample_report()
    by_id = {f.id: f for f in report.vulnerabilities}
    by_id["CVE-2023-5678"].package.path = "usr/lib/x y/ünï#?%/[METADATA]"
    by_id["CVE-2011-3374"].package.path = ""  # no file: only the logical location
    doc = _doc(report)
    results = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    uri = results["CVE-2023-5678"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert unquote(uri) == "usr/lib/x y/ünï#?%/[METADATA]"
    assert "physicalLocation" not in results["CVE-2011-3374"]["locations"][0]


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("https://example.com/a", "https://example.com/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://example.com/a b", ""),
        ("not a url", ""),
        ("javascript:alert(1)", ""),
        ("ftp://example.com/x", ""),
        ("https:///nohost", ""),
        ("https://example.com/ü?q=ö", "https://example.com/%C3%BC?q=%C3%B6"),
        ("https://example.com/advisory?id=1&x=[y]#frag#more", "https://example.com/advisory?id=1&x=%5By%5D#frag%23more"),
        ("https://example.com/100%/%41", "https://example.com/100%25/%41"),
        ('https://example.com/<script>"', "https://example.com/%3Cscript%3E%22"),
        ("https://[::1/", ""),
        ("https://[::1]:8080/x", "https://[::1]:8080/x"),
        ("HTTPS://Example.com:443/a:b@c", "https://Example.com:443/a:b@c"),
        ("https://user@ex.com/", "https://user@ex.com/"),
        ("https://ex.com:8a/", ""),
        ("https://bücher.example/x", "https://b%C3%BCcher.example/x"),
        ("https://ex.com/\x00", ""),
        ("https://", ""),
    ],
)
def test_web_uri(url: str, uri: str) -> None:
    assert web_uri(url) == uri
    if uri:
        assert validate_rfc3986(uri, rule="URI")


def test_notifications_carry_every_note() -> None:
    invocation = _run()["invocations"][0]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == [
        "layer.too_big", "path.escape", "db.corrupt", "OS_NOT_CHECKED", "IGNORE_EXPIRED",
    ]
    assert all(n["level"] == "warning" for n in notes)
    assert notes[3]["message"]["text"] == "OS packages not checked: no vulnerability data for rocky 9"


def test_run_properties_and_ignored_findings_are_not_results() -> None:
    run = _run()
    props = run["properties"]
    assert props["image"]["reference"] == "registry.example.com:5000/team/app:1.4"
    assert props["image"]["os"]["codename"] == "bookworm"
    assert props["database"]["updatedAt"] == "2024-05-02T10:00:00Z"
    assert props["summary"] == {
        "total": 8, "bySeverity": {"CRITICAL": 2, "HIGH": 3, "MEDIUM": 1, "LOW": 1, "UNKNOWN": 1}, "fixable": 6,
        "ignored": 2, "suppressed": 0,
    }
    assert [(i["id"], i["reason"], i["expires"]) for i in props["ignored"]] == [
        ("CVE-2023-9999", "", ""), ("CVE-2024-0727", "no PKCS12 parsing in this image", "2099-12-31"),
    ]
    assert {r["ruleId"] for r in run["results"]}.isdisjoint({"CVE-2023-9999", "CVE-2024-0727"})


def test_markdown_help_escapes_image_strings() -> None:
    rules = _rules(_run())
    markdown = rules["CVE-2022-0001"]["help"]["markdown"]
    assert "\\[bold red\\]boom\\[/\\]" in markdown and MARKUP_NAME not in markdown
    requests = rules["CVE-2024-35195"]["help"]["markdown"]
    assert "<script>" not in requests and "\\<script\\>" in requests
    assert "| requests | 2.31.0 | 2.32.0 |" in requests
    escape = rules["CVE-2024-6666"]["help"]["markdown"]
    assert "\n" not in escape.split("\n\n")[0]  # the title stays on its line
    link = rules["CVE-2022-0001"]["help"]["markdown"].rsplit("\n", 1)[-1]
    assert link.endswith("(https://example.com/advisory?id=1&x=%5By%5D#frag%23more)")


def test_hostile_strings_round_trip() -> None:
    report = sample_report()
    text = sarif.render(report)
    assert json.loads(text) == sarif.to_dict(report)
    doc = json.loads(text)
    assert doc["runs"][0]["tool"]["driver"]["rules"][2]["shortDescription"]["text"] == " ".join(ESCAPE_TITLE.split())
    assert "\x1b" not in text
    names = {r["properties"]["package"]["name"] for r in doc["runs"][0]["results"]}
    assert MARKUP_NAME in names


def test_empty_report() -> None:
    run = _run(_doc(empty_report()))
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["properties"]["summary"]["total"] == 0
