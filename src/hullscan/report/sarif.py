"""SARIF 2.1.0 rendering of a scan report's findings, vulnerabilities and every other scan item (for GitHub code
scanning and other SARIF viewers).

The log holds one run:

- ``tool.driver``: name ``hullscan``, its version, and ``informationUri`` when the package metadata names a home
  page. One rule (``reportingDescriptor``) per vulnerability id, most severe first: ``shortDescription`` is the
  title, ``fullDescription`` the description, ``helpUri`` the first usable reference, ``help`` (text and Markdown)
  names every affected package of the image with its installed and fixed versions. Rule ``properties`` carry
  ``security-severity`` (a string, as GitHub code scanning reads it) and ``tags``
  ``["security", "vulnerability", <SEVERITY>]``.
- One result per finding, in the table's order. ``level`` is ``error`` for CRITICAL and HIGH, ``warning`` for
  MEDIUM, ``note`` for LOW and UNKNOWN. The location is the file the package was found in, a URI reference relative
  to the image root (``uriBaseId`` ``IMAGEROOT``; every character outside RFC 3986's unreserved set and ``/`` is
  percent-encoded as UTF-8), plus a logical location naming the package. Result ``properties`` say which image and
  layer the package came from and carry the finding's data (ecosystem, purl, fixed versions, CVSS, KEV, ...).
  ``partialFingerprints`` holds a hash of (id, ecosystem, package, path) so viewers track a finding across scans.
- The other items' findings (secret, malware, file, baseline, compliance, base) follow the vulnerabilities, in the
  renderers' order (by item, most severe first, then id and path). One rule per (item, check id), its ``id``
  ``<item>/<check id>`` (e.g. ``secret/aws-access-key-id``), its ``shortDescription`` the title of its most severe
  finding, ``help`` the description, the remediation and every place it was found; rule ``properties`` carry
  ``tags`` ``["security", <item>, <SEVERITY>]`` and the ``security-severity`` in the middle of the severity's band
  (none for UNKNOWN). Each finding is a result with the same ``level`` mapping as vulnerabilities; a finding about a
  file is located at that file (relative to ``IMAGEROOT``, percent-encoded as above) with ``region.startLine`` its
  line when it has one; a finding about the image config (``config:Env[0]``, ``history[3]``) gets a logical
  location of that name instead, and one about the image as a whole a logical location naming the image. Result
  ``properties`` hold the item, the layer (and whether it is the base image's, see ``origin``), the redacted
  evidence, the remediation and the detector's metadata. ``partialFingerprints`` hashes (item, id, path, line,
  evidence).
- ``invocations[0].toolExecutionNotifications``: the image's and the detectors' notes (e.g. an OS whose packages
  were not checked), as warnings.
- ``properties``: the image (reference, digests, platform, OS), the database, the scanners, the summary counts
  (``summary`` for vulnerabilities, ``checks`` per other item), the base image (or null), the weak-password check's
  budget and what it tried (``passwordCheck``, or null) and the ignored findings. Ignored findings are *not*
  results: GitHub code scanning ignores SARIF ``suppressions`` and would open an alert for each of them.
- Findings a VEX statement suppressed (not_affected, fixed) *are* results, after the vulnerabilities, each with a
  SARIF ``suppressions`` entry (kind ``external``, status ``accepted``) whose justification is the statement's;
  the VEX status, justification and document are also in its ``properties``. They are a published triage
  decision, so viewers should show them as suppressed rather than hide them.

``security-severity`` is the CVSS score when it falls in the band of the finding's severity (GitHub: 9.0 and over
critical, 7.0-8.9 high, 4.0-6.9 medium, below 4.0 low); when the severity came from a vendor that rates the
vulnerability differently from its CVSS score, it is the middle of the severity's band instead, so GitHub shows
the severity hullscan reports (and gates on). UNKNOWN severities carry no ``security-severity``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from hullscan.findings import BaseImage, CheckFinding, ScanReport, SuppressedFinding, VulnFinding
from hullscan.model import ImageFacts, Note
from hullscan.report import (
    check_severity,
    check_severity_counts,
    checks_by_item,
    coverage_dict,
    finding_origin,
    finding_sort_key,
    information_uri,
    is_fixable,
    item_title,
    password_check_data,
    severity_counts,
    severity_of,
    sorted_checks,
    sorted_findings,
    tool_version,
    web_uri,
)

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
URI_BASE_ID = "IMAGEROOT"
FINGERPRINT = "hullscanFinding/v1"

LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "UNKNOWN": "note"}
# GitHub code scanning's reading of security-severity: (lowest score, representative score) per severity.
_BANDS = {"CRITICAL": (9.0, "9.5"), "HIGH": (7.0, "8.0"), "MEDIUM": (4.0, "5.5"), "LOW": (0.1, "2.0")}

# Markdown that can start mid-line (emphasis, code, links, HTML, table cells, strike-through, entities); content
# never starts a line (line breaks are collapsed), so list and heading markers need no escape.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>|~&])")


def artifact_uri(path: str) -> str:
    """`path` (relative to the image root) as a relative URI reference: each byte outside RFC 3986's unreserved
    characters and ``/`` is percent-encoded (UTF-8), so spaces, ``%``, ``#``, ``?``, ``:`` and non-ASCII names stay
    part of the path. A name that was not valid UTF-8 (kept with surrogate escapes) gets its original bytes."""
    return quote(path.lstrip("/"), safe="/", errors="surrogateescape")


def security_severity(finding: VulnFinding) -> str:
    """The ``security-severity`` property for GitHub code scanning ("" for UNKNOWN; see the module docstring)."""
    severity = severity_of(finding)
    if severity not in _BANDS:
        return ""
    score = finding.cvss_score
    if score is not None and _band_of(score) == severity:
        return f"{score:.1f}"
    return _BANDS[severity][1]


def _band_of(score: float) -> str:
    for severity, (floor, _) in _BANDS.items():
        if score >= floor:
            return severity
    return "NONE"


def _markdown(text: str) -> str:
    """`text` as literal Markdown: every ASCII punctuation mark that could start markup is backslash-escaped, and
    line breaks become spaces."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _installed(finding: VulnFinding) -> str:
    return finding.installed_version or finding.package.version


def _fixed(finding: VulnFinding) -> str:
    return ", ".join(finding.fixed_versions) if finding.fixed_versions else "no fixed version yet"


def _cvss_words(finding: VulnFinding) -> str:
    parts = []
    if finding.cvss_score is not None:
        parts.append(f"CVSS {finding.cvss_score:.1f}")
    if finding.cvss_vector:
        parts.append(finding.cvss_vector)
    return " ".join(parts)


def _references(findings: list[VulnFinding]) -> list[str]:
    seen: list[str] = []
    for finding in findings:
        for ref in finding.references:
            uri = web_uri(ref)
            if uri and uri not in seen:
                seen.append(uri)
    return seen


def _help_text(vid: str, lead: VulnFinding, findings: list[VulnFinding], references: list[str]) -> str:
    lines = [f"{vid}: {' '.join(lead.title.split()) or 'no title'}"]
    severity = f"Severity: {severity_of(lead)}"
    if lead.severity_source:
        severity += f" ({lead.severity_source})"
    if _cvss_words(lead):
        severity += f"; {_cvss_words(lead)}"
    lines.append(severity)
    if lead.kev:
        lines.append("Known exploited: listed in CISA's Known Exploited Vulnerabilities catalogue")
    lines.append("Affected packages in the image:")
    for f in findings:
        where = f" at {f.package.path}" if f.package.path else ""
        lines.append(f"- {f.package.name} {_installed(f)}{where}: fixed in {_fixed(f)}")
    if references:
        lines.append("References:")
        lines += [f"- {ref}" for ref in references]
    return "\n".join(lines)


def _help_markdown(vid: str, lead: VulnFinding, findings: list[VulnFinding], references: list[str]) -> str:
    out = [f"**{_markdown(vid)}** {_markdown(lead.title) or 'no title'}", ""]
    severity = f"Severity: **{severity_of(lead)}**"
    if lead.severity_source:
        severity += f" ({_markdown(lead.severity_source)})"
    if _cvss_words(lead):
        severity += f"; {_markdown(_cvss_words(lead))}"
    out.append(severity)
    if lead.kev:
        out += ["", "**Known exploited**: listed in CISA's Known Exploited Vulnerabilities catalogue"]
    out += ["", "| Package | Installed | Fixed in | Path |", "| --- | --- | --- | --- |"]
    for f in findings:
        cells = (f.package.name, _installed(f), _fixed(f), f.package.path or "-")
        out.append("| " + " | ".join(_markdown(c) for c in cells) + " |")
    if references:
        out += ["", "References:", ""]
        # web_uri leaves no space, "<" or ">" in the URI, so it is safe inside an autolink-less link target.
        out += [f"- [{_markdown(ref)}]({ref.replace('(', '%28').replace(')', '%29')})" for ref in references]
    return "\n".join(out)


def _rule(vid: str, findings: list[VulnFinding]) -> dict[str, Any]:
    lead = findings[0]  # the most severe finding with this id
    title = " ".join(lead.title.split())
    references = _references(findings)
    rule: dict[str, Any] = {
        "id": vid,
        "shortDescription": {"text": title or vid},
        "fullDescription": {"text": lead.description.strip() or title or vid},
        "defaultConfiguration": {"level": LEVELS[severity_of(lead)]},
        "help": {
            "text": _help_text(vid, lead, findings, references),
            "markdown": _help_markdown(vid, lead, findings, references),
        },
    }
    if references:
        rule["helpUri"] = references[0]
    properties: dict[str, Any] = {"tags": ["security", "vulnerability", severity_of(lead)]}
    if security_severity(lead):
        properties["security-severity"] = security_severity(lead)
    rule["properties"] = properties
    return rule


def _fingerprint(finding: VulnFinding) -> str:
    pkg = finding.package
    seed = "\0".join((finding.id, pkg.ecosystem, pkg.name, pkg.path))
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()


def _message(finding: VulnFinding) -> str:
    text = f"{finding.package.name} {_installed(finding)} is affected by {finding.id} ({severity_of(finding)})"
    if finding.kev:
        text += ", a known exploited vulnerability"
    if finding.fixed_versions:
        return f"{text}; fixed in {_fixed(finding)}."
    return f"{text}; no fixed version is available yet."


def _result(finding: VulnFinding, rule_index: int, facts: ImageFacts) -> dict[str, Any]:
    pkg = finding.package
    location: dict[str, Any] = {}
    if pkg.path:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": artifact_uri(pkg.path), "uriBaseId": URI_BASE_ID},
            "region": {"startLine": 1},
        }
    location["logicalLocations"] = [{
        "name": pkg.name,
        "fullyQualifiedName": pkg.purl or f"{pkg.ecosystem}:{pkg.name}@{pkg.version}",
        "kind": "package",
    }]
    if pkg.layer_index >= 0:
        location["message"] = {"text": f"installed by layer {pkg.layer_index}"}
    return {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVELS[severity_of(finding)],
        "message": {"text": _message(finding)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT: _fingerprint(finding)},
        "properties": {
            "image": facts.reference,
            "imageDigest": facts.manifest_digest,
            "layer": {
                "index": pkg.layer_index if pkg.layer_index >= 0 else None,
                "diffId": pkg.layer_diff_id,
                "createdBy": pkg.layer_created_by,
            },
            "package": {
                "name": pkg.name,
                "version": pkg.version,
                "ecosystem": pkg.ecosystem,
                "purl": pkg.purl,
                "path": pkg.path,
            },
            "installedVersion": _installed(finding),
            "fixedVersions": list(finding.fixed_versions),
            "status": finding.status,
            "severity": severity_of(finding),
            "severitySource": finding.severity_source,
            "cvss": {"score": finding.cvss_score, "vector": finding.cvss_vector},
            "aliases": list(finding.aliases),
            "advisoryIds": list(finding.advisory_ids),
            "dataSource": finding.data_source,
            "published": finding.published,
            "modified": finding.modified,
            "kev": finding.kev,
            "epss": {"score": finding.epss, "percentile": finding.epss_percentile},
        },
    }


def _suppressed_result(entry: SuppressedFinding, rule_index: int, facts: ImageFacts) -> dict[str, Any]:
    """A VEX-suppressed finding: a result with SARIF's own `suppressions`, carrying the statement's status and
    justification (viewers list it as suppressed; hullscan never counts it)."""
    result = _result(entry.finding, rule_index, facts)
    text = "; ".join(x for x in (f"VEX {entry.status}", entry.justification, entry.impact) if x)
    result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": text,
                               "properties": {"vexStatus": entry.status, "vexJustification": entry.justification,
                                              "vexDocument": entry.source}}]
    return result


# A check's path that names a place in the image config rather than a file (the secret scanner's config findings).
CONFIG_PATH_PREFIXES = ("config:", "history[")
HELP_PLACES = 50  # a check rule's help lists this many places at most


def check_rule_id(check: CheckFinding) -> str:
    """``<item>/<check id>``: unique across items, and never the id of a vulnerability rule (those hold no "/")."""
    return f"{check.item}/{check.id}"


def _file_path(check: CheckFinding) -> str:
    """The file the check is about, or "" when it is about the image config or the image as a whole."""
    if not check.path or check.path.startswith(CONFIG_PATH_PREFIXES) or check.metadata.get("source") == "config":
        return ""
    return check.path


def _place(check: CheckFinding) -> str:
    where = check.path or "the image"
    if check.path and check.line > 0:
        where += f":{check.line}"
    if check.layer_index >= 0:
        where += f" (layer {check.layer_index})"
    return where


def _check_help_text(rid: str, lead: CheckFinding, checks: list[CheckFinding]) -> str:
    lines = [f"{rid}: {' '.join(lead.title.split()) or 'no title'}", f"{item_title(lead.item)}",
             f"Severity: {check_severity(lead)}"]
    if lead.description.strip():
        lines.append(" ".join(lead.description.split()))
    if lead.remediation.strip():
        lines.append(f"Remediation: {' '.join(lead.remediation.split())}")
    lines.append("Found at:")
    lines += [f"- {_place(c)}" for c in checks[:HELP_PLACES]]
    if len(checks) > HELP_PLACES:
        lines.append(f"- and {len(checks) - HELP_PLACES} more")
    return "\n".join(lines)


def _check_help_markdown(rid: str, lead: CheckFinding, checks: list[CheckFinding]) -> str:
    out = [f"**{_markdown(rid)}** {_markdown(lead.title) or 'no title'}", "",
           f"{_markdown(item_title(lead.item))}; severity: **{check_severity(lead)}**"]
    if lead.description.strip():
        out += ["", _markdown(lead.description)]
    if lead.remediation.strip():
        out += ["", f"**Remediation**: {_markdown(lead.remediation)}"]
    out += ["", "Found at:", ""]
    out += [f"- {_markdown(_place(c))}" for c in checks[:HELP_PLACES]]
    if len(checks) > HELP_PLACES:
        out.append(f"- and {len(checks) - HELP_PLACES} more")
    return "\n".join(out)


def _check_rule(rid: str, checks: list[CheckFinding]) -> dict[str, Any]:
    lead = checks[0]  # the most severe finding of this check
    severity = check_severity(lead)
    title = " ".join(lead.title.split())
    properties: dict[str, Any] = {"tags": ["security", lead.item, severity]}
    if severity in _BANDS:
        properties["security-severity"] = _BANDS[severity][1]
    return {
        "id": rid,
        "shortDescription": {"text": title or rid},
        "fullDescription": {"text": lead.description.strip() or title or rid},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "help": {"text": _check_help_text(rid, lead, checks), "markdown": _check_help_markdown(rid, lead, checks)},
        "properties": properties,
    }


def _check_fingerprint(check: CheckFinding) -> str:
    seed = "\0".join((check.item, check.id, check.path, str(check.line), check.evidence))
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()


def _check_message(check: CheckFinding) -> str:
    text = f"{item_title(check.item)}: {' '.join(check.title.split()) or check.id} ({check_severity(check)})"
    if check.path:
        text += f" at {check.path}" + (f":{check.line}" if check.line > 0 else "")
    return text + "."


def _check_location(check: CheckFinding, facts: ImageFacts) -> dict[str, Any]:
    location: dict[str, Any] = {}
    path = _file_path(check)
    if path:
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(path), "uriBaseId": URI_BASE_ID}}
        if check.line > 0:
            physical["region"] = {"startLine": check.line}
        location["physicalLocation"] = physical
    elif check.path:
        location["logicalLocations"] = [{"name": check.path, "kind": "resource"}]
    else:
        location["logicalLocations"] = [{"name": facts.reference or "image", "kind": "module"}]
    if check.layer_index >= 0:
        location["message"] = {"text": f"introduced by layer {check.layer_index}"}
    return location


def _check_result(check: CheckFinding, rule_index: int, facts: ImageFacts, base: BaseImage | None) -> dict[str, Any]:
    return {
        "ruleId": check_rule_id(check),
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVELS[check_severity(check)],
        "message": {"text": _check_message(check)},
        "locations": [_check_location(check, facts)],
        "partialFingerprints": {FINGERPRINT: _check_fingerprint(check)},
        "properties": {
            "image": facts.reference,
            "imageDigest": facts.manifest_digest,
            "item": check.item,
            "checkId": check.id,
            "severity": check_severity(check),
            "path": check.path,
            "line": check.line,
            "layer": {
                "index": check.layer_index if check.layer_index >= 0 else None,
                "diffId": check.layer_diff_id,
                "createdBy": check.layer_created_by,
            },
            "origin": finding_origin(check.layer_index, base),
            "evidence": check.evidence,
            "remediation": check.remediation,
            "metadata": {key: check.metadata[key] for key in sorted(check.metadata)},
        },
    }


def _notification(note: Note) -> dict[str, Any]:
    return {
        "level": "warning",
        "message": {"text": note.message},
        "descriptor": {"id": note.code},
        "properties": {"path": note.path, "layer": note.layer_index if note.layer_index >= 0 else None},
    }


def _run_properties(report: ScanReport) -> dict[str, Any]:
    facts = report.facts
    os_info = facts.os
    db = report.database
    fixable = [f for f in report.vulnerabilities if is_fixable(f)]
    return {
        "image": {
            "reference": facts.reference,
            "manifestDigest": facts.manifest_digest,
            "configDigest": facts.config_digest,
            "platform": str(facts.platform),
            "os": None if os_info is None else {
                "family": os_info.family, "version": os_info.version, "codename": os_info.codename,
                "name": os_info.name,
            },
        },
        "database": None if db is None else {
            "schemaVersion": db.schema_version,
            "builtAt": db.built_at,
            "updatedAt": db.updated_at,
            "sources": list(db.sources),
        },
        "scanners": list(report.scanners),
        # Packages the vulnerability scan could not check: a short result list is not a clean image.
        "coverage": coverage_dict(report),
        "summary": {
            "total": len(report.vulnerabilities),
            "bySeverity": severity_counts(report.vulnerabilities),
            "fixable": len(fixable),
            "ignored": len(report.ignored),
            "suppressed": len(report.suppressed),
        },
        "checks": {
            item: {"total": len(checks), "bySeverity": check_severity_counts(checks)}
            for item, checks in checks_by_item(report).items()
        },
        "baseImage": None if report.base_image is None else {
            "name": report.base_image.name,
            "digest": report.base_image.digest,
            "method": report.base_image.method,
            "layers": report.base_image.layers,
            "recommendation": report.base_image.recommendation,
        },
        "passwordCheck": _camel(password_check_data(report.password_check)),
        "ignored": [
            {
                "id": entry.finding.id,
                "package": entry.finding.package.name,
                "installedVersion": _installed(entry.finding),
                "path": entry.finding.package.path,
                "reason": entry.reason,
                "expires": entry.expires,
            }
            for entry in sorted(report.ignored, key=lambda e: finding_sort_key(e.finding))
        ],
    }


def _camel(data: Any) -> Any:
    """snake_case keys in camelCase, as the other SARIF properties are."""
    if isinstance(data, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel(v) for v in data]
    return data


def to_dict(report: ScanReport) -> dict[str, Any]:
    """The SARIF log as plain JSON-compatible data (see the module docstring)."""
    findings = sorted_findings(report.vulnerabilities)
    suppressed = sorted(report.suppressed, key=lambda e: finding_sort_key(e.finding))
    by_id: dict[str, list[VulnFinding]] = {}
    for finding in [*findings, *(e.finding for e in suppressed)]:
        by_id.setdefault(finding.id, []).append(finding)
    rule_index = {vid: n for n, vid in enumerate(by_id)}
    checks = sorted_checks(report.checks)
    by_check: dict[str, list[CheckFinding]] = {}
    for check in checks:
        by_check.setdefault(check_rule_id(check), []).append(check)
    for rid in by_check:
        rule_index[rid] = len(rule_index)

    driver: dict[str, Any] = {"name": "hullscan", "version": tool_version()}
    home = information_uri()
    if home:
        driver["informationUri"] = home
    driver["rules"] = [_rule(vid, group) for vid, group in by_id.items()]
    driver["rules"] += [_check_rule(rid, group) for rid, group in by_check.items()]

    notes = [*report.facts.notes, *report.notes]
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "invocations": [{
            "executionSuccessful": True,
            "toolExecutionNotifications": [_notification(n) for n in notes],
        }],
        "originalUriBaseIds": {
            URI_BASE_ID: {
                "uri": "file:///",
                "description": {"text": f"The root of the filesystem of the image {report.facts.reference}"},
            },
        },
        "results": [_result(f, rule_index[f.id], report.facts) for f in findings]
        + [_suppressed_result(e, rule_index[e.finding.id], report.facts) for e in suppressed]
        + [_check_result(c, rule_index[check_rule_id(c)], report.facts, report.base_image) for c in checks],
        "columnKind": "unicodeCodePoints",
        "properties": _run_properties(report),
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render(report: ScanReport, *, indent: int | None = 2) -> str:
    """The report's findings (vulnerabilities and every other item) as a SARIF 2.1.0 log (UTF-8 JSON text)."""
    return json.dumps(to_dict(report), indent=indent, ensure_ascii=False) + "\n"
