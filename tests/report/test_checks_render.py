"""Every scan item beyond vulnerabilities (secret, malware, file, baseline, compliance, base) as a section of the
table, JSON and SARIF reports, with the base image and which findings come from it."""

from __future__ import annotations

import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator, FormatChecker
from rfc3986_validator import validate_rfc3986
from rich.console import Console

from hullscan.findings import ITEMS, BaseImage, CheckFinding, ScanReport
from hullscan.report import ITEM_TITLES, html, json_report, sarif, table

from . import CREATED_BY, DIFF, SCRIPT_NAME, assert_fits, report_tokens, sample_report

SCHEMA = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json"

HOSTILE_PATH = f"app/{SCRIPT_NAME}.env"  # app/<script>alert(1)</script>.env
MARKUP_PATH = "/usr/bin/[bold red]boom[/]"
SECRET = "AKIAIOSFODNN7EXAMPLE"  # what the image held; only the redacted form reaches the report
REDACTED = "AKIA************MPLE"
ESCAPE_DESCRIPTION = "USER is \x1b[2Jroot\x07\nsecond line"
BASE = BaseImage("docker.io/library/debian:12", "sha256:" + "ef" * 32, "annotation", 1,
                 "docker.io/library/debian:12.7 has 5 fewer vulnerabilities")


def _at(check: CheckFinding, layer: int) -> CheckFinding:
    check.layer_index, check.layer_diff_id, check.layer_created_by = layer, DIFF[layer], CREATED_BY[layer]
    return check


def sample_checks() -> list[CheckFinding]:
    """One or more findings of every item, out of order on purpose."""
    return [
        CheckFinding("base", "base-update-available", "A newer base image with fewer vulnerabilities is known",
                     "LOW", description="The image is built on docker.io/library/debian:12.",
                     remediation="Rebuild the image FROM docker.io/library/debian:12.7.",
                     evidence="docker.io/library/debian:12", metadata={"recommended": "docker.io/library/debian:12.7"}),
        _at(CheckFinding("compliance", "os-eol", "Debian 12 reaches end-of-life on 2026-06-10 (300 days)", "MEDIUM",
                         description="Security support for Debian 12 ends on 2026-06-10.",
                         remediation="Rebuild on a supported release.", path="etc/os-release",
                         evidence="Debian GNU/Linux 12 (bookworm)"), 0),
        CheckFinding("baseline", "image-user-root", "Image runs as root", "medium", description=ESCAPE_DESCRIPTION,
                     remediation="Add a USER instruction with a non-root uid."),
        _at(CheckFinding("file", "file-setuid", "Setuid executable not in the known-good list", "MEDIUM",
                         description="A setuid root executable gives every user its owner's rights.",
                         remediation="Remove the setuid bit (chmod u-s) or the file.", path=MARKUP_PATH,
                         evidence="-rwsr-xr-x 0:0", metadata={"mode": "4755"}), 0),
        _at(CheckFinding("malware", "eicar-test-file", "EICAR anti-virus test file", "HIGH",
                         description="The EICAR test string: harmless, but every anti-virus flags it.",
                         remediation="Delete the file.", path="tmp/eicar.com", line=1,
                         evidence="X5O!P%@AP[4\\PZX54(P^)",
                         metadata={"engine": "yara-x", "sha256": "27" * 32}), 2),
        _at(CheckFinding("secret", "generic-password-env", "Password in an environment variable", "HIGH",
                         description="A password in the image config's environment.",
                         remediation="Set the value when the container starts.", path="config:Env[0]",
                         evidence="DB_PASSWORD=hu*****", metadata={"source": "config", "category": "password"}), 1),
        _at(CheckFinding("secret", "aws-access-key-id", "AWS access key ID", "CRITICAL",
                         description="An AWS access key ID " + "and more words " * 30,
                         remediation="Remove the key from the image and rotate it in IAM.", path=HOSTILE_PATH, line=3,
                         evidence=REDACTED, metadata={"source": "file", "category": "cloud"}), 2),
    ]


def full_report(base: BaseImage | None = BASE) -> ScanReport:
    report = sample_report()
    report.scanners = list(ITEMS)
    report.checks = sample_checks()
    report.base_image = base
    return report


# -- table ----------------------------------------------------------------------------------------------------------


def _render(report: ScanReport, width: int = 250, verbose: bool = False) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    table.render_report(report, console, verbose=verbose)
    return console.export_text()


def _terminal(report: ScanReport) -> str:
    buf = io.StringIO()
    table.render_report(report, Console(file=buf, width=250, force_terminal=True, color_system="standard"))
    return buf.getvalue()


def test_table_has_a_section_per_item_in_order() -> None:
    text = _render(full_report())
    headings = ["Sensitive information (2)", "Malicious files (1)", "File information (1)", "Baseline checks (1)",
                "Software compliance (1)", "Base image (1)"]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert text.index("Total: 8 (") < positions[0]  # after the vulnerabilities
    for heading in ("Severity", "Check", "Title", "Where", "Layer"):
        assert heading in text[positions[0]:]


def test_table_rows_name_check_place_layer_and_evidence() -> None:
    text = _render(full_report())
    secret = text[text.index("Sensitive information (2)"):text.index("Malicious files (1)")]
    assert secret.index("CRITICAL") < secret.index("HIGH")  # most severe first
    row = next(line for line in secret.splitlines() if line.startswith("CRITICAL"))
    assert re.split(r"\s{2,}", row) == ["CRITICAL", "aws-access-key-id", "AWS access key ID", f"{HOSTILE_PATH}:3",
                                        "2 own"]
    assert f"\n    {REDACTED}\n" in secret and SECRET not in text  # the evidence, under its row
    assert "config:Env[0]" in secret and "DB_PASSWORD=hu*****" in secret
    assert "2 own" in secret and "1 own" in secret
    # Descriptions and fixes are long: the table shows them with --verbose (JSON and HTML always have them).
    assert "Remove the key from the image and rotate it in IAM." not in secret and "and more words" not in secret
    assert "--verbose" in text
    malware = text[text.index("Malicious files (1)"):text.index("File information (1)")]
    assert "tmp/eicar.com:1" in malware and "eicar-test-file" in malware
    files = text[text.index("File information (1)"):text.index("Baseline checks (1)")]
    assert "0 base" in files
    baseline = text[text.index("Baseline checks (1)"):text.index("Software compliance (1)")]
    assert "MEDIUM" in baseline  # "medium" spelt in lower case is still MEDIUM


def test_table_verbose_shows_descriptions_and_fixes_under_their_row() -> None:
    text = _render(full_report(), width=100, verbose=True)
    secret = text[text.index("Sensitive information (2)"):text.index("Malicious files (1)")].splitlines()
    row = next(i for i, line in enumerate(secret) if line.startswith("CRITICAL"))
    under = secret[row + 1:row + 9]
    assert f"    {REDACTED}" in under
    assert under[under.index(f"    {REDACTED}") + 1].startswith("    An AWS access key ID and more words")
    assert all(line.startswith("    ") and len(line) <= 100 for line in under)
    fix = next(line for line in under if "Fix:" in line)
    assert fix == "    Fix: Remove the key from the image and rotate it in IAM."
    assert "--verbose" not in text


def test_table_header_names_the_base_image() -> None:
    text = _render(full_report())
    head = text[:text.index("Package ")]
    assert "Base image" in head and "docker.io/library/debian:12@sha256:efef" in head
    assert "from the image's OCI annotations, 1 layer)" in head
    assert "docker.io/library/debian:12.7 has 5 fewer vulnerabilities" in head
    report = full_report(base=None)
    assert "Base image        not identified" in _render(report)
    report.scanners = ["vuln"]
    report.checks = []
    assert "Base image" not in _render(report)


def _summary(text: str) -> dict[str, list[str]]:
    """The rows of the final summary of a wide rendering: title -> [total, per severity, origins]."""
    rows: dict[str, list[str]] = {}
    for line in text[text.index("Summary\n"):].splitlines()[1:]:
        if not line.strip():
            break
        title, *cells = re.split(r"\s{2,}", line.strip())
        rows[title] = cells
    return rows


def test_table_summaries_split_base_and_own_layers() -> None:
    text = _render(full_report())
    # vulnerabilities: bash in layer 0 (the base), stdlib in no layer, the rest in layers 1 and 2
    assert "Total: 8 (CRITICAL: 2, HIGH: 3, MEDIUM: 1, LOW: 1, UNKNOWN: 1), fixable: 6; from base: 1 / own " \
           "layers: 6, layer unknown: 1" in text
    assert _summary(text) == {
        "Vulnerabilities": ["8", "CRITICAL 2, HIGH 3, MEDIUM 1, LOW 1, UNKNOWN 1",
                            "from base: 1 / own layers: 6, layer unknown: 1"],
        "Sensitive information": ["2", "CRITICAL 1, HIGH 1", "from base: 0 / own layers: 2"],
        "Malicious files": ["1", "HIGH 1", "from base: 0 / own layers: 1"],
        "File information": ["1", "MEDIUM 1", "from base: 1 / own layers: 0"],
        "Baseline checks": ["1", "MEDIUM 1", "from base: 0 / own layers: 0, layer unknown: 1"],
        "Software compliance": ["1", "MEDIUM 1", "from base: 1 / own layers: 0"],
        "Base image": ["1", "LOW 1"],  # about the base itself: from neither
        # 1 vulnerability + file + compliance from the base; 6 vulnerabilities + 2 secrets + malware from own layers
        "All items": ["15", "CRITICAL 3, HIGH 5, MEDIUM 4, LOW 2, UNKNOWN 1", "from base: 3 / own layers: 9"],
    }
    no_base = _render(full_report(base=None))
    assert "from base" not in no_base and "2 own" not in no_base and "0 base" not in no_base
    assert _summary(no_base)["Sensitive information"] == ["2", "CRITICAL 1, HIGH 1"]


def test_table_items_that_did_not_run_get_no_section() -> None:
    report = full_report(base=None)
    report.scanners = ["vuln", "secret", "malware"]
    report.checks = [c for c in report.checks if c.item == "secret"]
    text = _render(report)
    assert "Sensitive information (2)" in text
    assert "Malicious files (0)" in text and "Nothing found." in text
    assert _summary(text) == {
        "Vulnerabilities": ["8", "CRITICAL 2, HIGH 3, MEDIUM 1, LOW 1, UNKNOWN 1"],
        "Sensitive information": ["2", "CRITICAL 1, HIGH 1"], "Malicious files": ["0", "-"],
        "All items": ["10", "CRITICAL 3, HIGH 4, MEDIUM 1, LOW 1, UNKNOWN 1"],
    }
    for item in ("file", "baseline", "compliance", "base"):
        assert ITEM_TITLES[item] not in text, item


def test_table_without_the_vulnerability_scan() -> None:
    report = full_report()
    report.scanners = ["secret"]
    report.vulnerabilities, report.ignored, report.database = [], [], None
    report.checks = [c for c in report.checks if c.item == "secret"]
    text = _render(report)
    assert "No vulnerabilities found." not in text and "Total: 0" not in text and "Vulnerabilit" not in text
    assert "Sensitive information (2)" in text
    assert _summary(text) == {"Sensitive information": ["2", "CRITICAL 1, HIGH 1", "from base: 0 / own layers: 2"],
                              "All items": ["2", "CRITICAL 1, HIGH 1", "from base: 0 / own layers: 2"]}


def test_table_only_vulnerabilities_keeps_its_old_shape() -> None:
    text = _render(sample_report())
    assert "Summary\n" not in text and "Nothing found." not in text and "Base image" not in text


def test_table_hostile_strings_print_literally() -> None:
    text = _render(full_report(), verbose=True)
    assert HOSTILE_PATH in text and MARKUP_PATH in text
    assert "USER is \\x1b[2Jroot\\x07 second line" in text  # escaped, newline folded
    assert "\x1b" not in text and "\x07" not in text
    out = _terminal(full_report())
    assert "\x1b[2J" not in out and "\x07" not in out
    assert MARKUP_PATH in out  # not read as Rich markup
    assert "\x1b[1;31mCRITICAL" in out and "\x1b[31mHIGH" in out and "\x1b[34mLOW" in out


def test_table_fits_narrow_consoles() -> None:
    report = full_report()
    for width in (250, 120, 100, 80, 60):
        for verbose in (False, True):
            text = _render(report, width=width, verbose=verbose)
            assert_fits(text, width, report_tokens(report))
            # No column is cropped off the right edge: what leaves a row is printed under it.
            headers = [line for line in text.splitlines() if re.match(r"(Severity  )?Check\b", line)]
            assert len(headers) == 6, width
            assert "Sensitive information (2)" in text


def test_html_uses_the_shared_titles() -> None:
    page = html.render(full_report())
    for item in ITEMS:
        assert ITEM_TITLES[item] in page


# -- JSON -----------------------------------------------------------------------------------------------------------

CHECK_KEYS = {"item", "id", "title", "severity", "description", "remediation", "path", "line", "evidence", "layer",
              "metadata", "origin"}


def _json(report: ScanReport) -> dict[str, Any]:
    text = json_report.render_report(report)
    doc: dict[str, Any] = json.loads(text)
    assert doc == json_report.report_to_dict(report)
    return doc


def test_json_checks_sorted_with_every_field() -> None:
    doc = _json(full_report())
    checks = doc["checks"]
    assert [(c["item"], c["severity"], c["id"]) for c in checks] == [
        ("secret", "CRITICAL", "aws-access-key-id"),
        ("secret", "HIGH", "generic-password-env"),
        ("malware", "HIGH", "eicar-test-file"),
        ("file", "MEDIUM", "file-setuid"),
        ("baseline", "MEDIUM", "image-user-root"),
        ("compliance", "MEDIUM", "os-eol"),
        ("base", "LOW", "base-update-available"),
    ]
    assert all(set(c) == CHECK_KEYS for c in checks)
    assert checks[0] == {
        "item": "secret", "id": "aws-access-key-id", "title": "AWS access key ID", "severity": "CRITICAL",
        "description": "An AWS access key ID " + "and more words " * 30,
        "remediation": "Remove the key from the image and rotate it in IAM.", "path": HOSTILE_PATH, "line": 3,
        "evidence": REDACTED, "layer": {"index": 2, "diff_id": DIFF[2], "created_by": CREATED_BY[2]},
        "metadata": {"category": "cloud", "source": "file"}, "origin": "image",
    }
    baseline = checks[4]
    assert baseline["layer"] == {"index": None, "diff_id": "", "created_by": ""} and baseline["origin"] == "unknown"
    assert baseline["description"] == ESCAPE_DESCRIPTION  # JSON escapes control characters itself
    assert [c["origin"] for c in checks] == ["image", "image", "image", "base", "unknown", "base", "unknown"]
    assert SECRET not in json.dumps(doc)


def test_json_base_image_and_vulnerability_origin() -> None:
    doc = _json(full_report())
    assert doc["base_image"] == {
        "name": "docker.io/library/debian:12", "digest": "sha256:" + "ef" * 32, "method": "annotation", "layers": 1,
        "recommendation": "docker.io/library/debian:12.7 has 5 fewer vulnerabilities",
    }
    origins = {(v["id"], v["package"]["name"]): v["origin"] for v in doc["vulnerabilities"]}
    assert origins[("CVE-2011-3374", "bash")] == "base"
    assert origins[("CVE-2023-5678", "openssl")] == "image"
    assert origins[("CVE-2023-45288", "stdlib")] == "unknown"
    assert all("origin" in entry for entry in doc["ignored"])
    no_base = _json(full_report(base=None))
    assert no_base["base_image"] is None
    assert all("origin" not in v for v in no_base["vulnerabilities"])
    assert {c["origin"] for c in no_base["checks"]} == {"unknown"}


def test_json_summary_per_item_and_per_origin() -> None:
    summary = _json(full_report())["summary"]
    assert summary["vulnerabilities"]["total"] == 8  # unchanged
    assert list(summary["checks"]) == ["secret", "malware", "file", "baseline", "compliance", "base"]
    assert summary["checks"]["secret"] == {
        "total": 2, "by_severity": {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0},
        "by_origin": {"base": 0, "image": 2, "unknown": 0},
    }
    assert summary["checks"]["baseline"]["by_severity"]["MEDIUM"] == 1
    assert summary["by_origin"]["base"] == {
        "vulnerabilities": 1, "checks": 2, "by_severity": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 2, "LOW": 1,
                                                           "UNKNOWN": 0},
    }
    assert summary["by_origin"]["image"]["vulnerabilities"] == 6 and summary["by_origin"]["image"]["checks"] == 3
    assert summary["by_origin"]["unknown"]["checks"] == 1  # the base item's own finding is left out


def test_json_scanners_and_items_that_did_not_run() -> None:
    report = full_report()
    report.scanners = ["secret", "vuln", "malware"]
    report.checks = [c for c in report.checks if c.item == "secret"]
    doc = _json(report)
    assert doc["scanners"] == ["vuln", "secret", "malware"]
    assert list(doc["summary"]["checks"]) == ["secret", "malware"]
    assert doc["summary"]["checks"]["malware"]["total"] == 0
    assert {c["item"] for c in doc["checks"]} == {"secret"}


def test_json_stable_whatever_the_input_order() -> None:
    report = full_report()
    report.checks.reverse()
    assert json_report.render_report(report) == json_report.render_report(full_report())


# -- SARIF ----------------------------------------------------------------------------------------------------------


@cache
def _validator() -> Draft4Validator:
    return Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8")), format_checker=FormatChecker())


def _sarif_run(report: ScanReport) -> dict[str, Any]:
    text = sarif.render(report)
    doc: dict[str, Any] = json.loads(text)
    assert [e.message for e in _validator().iter_errors(doc)] == []
    run: dict[str, Any] = doc["runs"][0]
    return run


def test_sarif_checks_are_valid_results_with_rules() -> None:
    run = _sarif_run(full_report())
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert ids[7:] == [
        "secret/aws-access-key-id", "secret/generic-password-env", "malware/eicar-test-file", "file/file-setuid",
        "baseline/image-user-root", "compliance/os-eol", "base/base-update-available",
    ]
    assert len(set(ids)) == len(ids)
    results = run["results"]
    assert len(results) == 8 + 7
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    checks = {r["ruleId"]: r for r in results[8:]}
    assert [(rid, r["level"]) for rid, r in checks.items()] == [
        ("secret/aws-access-key-id", "error"), ("secret/generic-password-env", "error"),
        ("malware/eicar-test-file", "error"), ("file/file-setuid", "warning"), ("baseline/image-user-root", "warning"),
        ("compliance/os-eol", "warning"), ("base/base-update-available", "note"),
    ]
    aws = _rule(rules, "secret/aws-access-key-id")
    assert aws["shortDescription"] == {"text": "AWS access key ID"}
    assert aws["properties"] == {"tags": ["security", "secret", "CRITICAL"], "security-severity": "9.5"}
    assert "Remove the key from the image and rotate it in IAM." in aws["help"]["text"]
    assert f"{HOSTILE_PATH}:3 (layer 2)" in aws["help"]["text"]
    assert "<script>" not in aws["help"]["markdown"] and "\\<script\\>" in aws["help"]["markdown"]
    fingerprints = [r["partialFingerprints"][sarif.FINGERPRINT] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)


def _rule(rules: list[dict[str, Any]], rid: str) -> dict[str, Any]:
    return next(rule for rule in rules if rule["id"] == rid)


def test_sarif_check_locations_and_properties() -> None:
    run = _sarif_run(full_report())
    checks = {r["ruleId"]: r for r in run["results"][8:]}
    aws = checks["secret/aws-access-key-id"]
    physical = aws["locations"][0]["physicalLocation"]
    uri = physical["artifactLocation"]["uri"]
    assert uri == "app/%3Cscript%3Ealert%281%29%3C/script%3E.env" and unquote(uri) == HOSTILE_PATH
    assert validate_rfc3986(uri, rule="URI_reference")
    assert physical["artifactLocation"]["uriBaseId"] == "IMAGEROOT" and physical["region"] == {"startLine": 3}
    assert aws["locations"][0]["message"] == {"text": "introduced by layer 2"}
    props = aws["properties"]
    assert props["item"] == "secret" and props["evidence"] == REDACTED and props["origin"] == "image"
    assert props["layer"] == {"index": 2, "diffId": DIFF[2], "createdBy": CREATED_BY[2]}
    setuid = checks["file/file-setuid"]["locations"][0]["physicalLocation"]
    assert setuid["artifactLocation"]["uri"] == "usr/bin/%5Bbold%20red%5Dboom%5B/%5D"
    assert "region" not in setuid  # no line
    assert checks["file/file-setuid"]["properties"]["origin"] == "base"
    env = checks["secret/generic-password-env"]["locations"][0]
    assert "physicalLocation" not in env and env["logicalLocations"] == [{"name": "config:Env[0]", "kind": "resource"}]
    root = checks["baseline/image-user-root"]
    assert root["locations"][0]["logicalLocations"][0]["name"] == "registry.example.com:5000/team/app:1.4"
    assert root["properties"]["layer"]["index"] is None and "message" not in root["locations"][0]
    assert SECRET not in sarif.render(full_report())


def test_sarif_run_properties_name_items_and_base() -> None:
    props = _sarif_run(full_report())["properties"]
    assert list(props["checks"]) == ["secret", "malware", "file", "baseline", "compliance", "base"]
    assert props["checks"]["secret"] == {"total": 2, "bySeverity": {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0,
                                                                    "UNKNOWN": 0}}
    assert props["baseImage"]["name"] == "docker.io/library/debian:12" and props["baseImage"]["layers"] == 1
    assert props["summary"]["total"] == 8  # vulnerabilities, as before
    report = full_report(base=None)
    report.scanners = ["vuln", "secret"]
    report.checks = [c for c in report.checks if c.item == "secret"]
    run = _sarif_run(report)
    assert list(run["properties"]["checks"]) == ["secret"] and run["properties"]["baseImage"] is None
    assert {r["ruleId"].split("/")[0] for r in run["results"] if "/" in r["ruleId"]} == {"secret"}
