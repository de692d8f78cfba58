"""hullscan's own JSON report of an image's software inventory.

The document is stable: a field, once there, keeps its name and meaning under its ``schema`` value (new fields
may be added, as ``cpe``, ``dev`` and ``evidence`` were). Shape of
``hullscan/report/v1``::

    {
      "schema": "hullscan/report/v1",
      "tool": {"name": "hullscan", "version": "0.1.0"},
      "artifact": {
        "reference": "docker.io/library/debian:12",
        "manifest_digest": "sha256:...",          # "" when unknown (e.g. a root filesystem)
        "config_digest": "sha256:...",
        "platform": "linux/amd64",
        "os": {"family": "debian", "version": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12"}
              # or null when no OS was identified
      },
      "layers": [
        {"index": 0, "diff_id": "sha256:...", "digest": "sha256:...", "size": 1234,
         "media_type": "application/vnd.oci.image.layer.v1.tar+gzip", "created_by": "ADD file:... in /"}
      ],
      "packages": [                                  # sorted by (ecosystem, name, version, path)
        {"name": "openssl", "version": "3.0.11-1", "ecosystem": "deb", "purl": "pkg:deb/debian/openssl@...",
         "licenses": ["Apache-2.0"], "path": "var/lib/dpkg/status",
         "source_name": "openssl", "source_version": "3.0.11-1", "arch": "amd64",
         "epoch": null,                              # an integer for rpm/dpkg epochs
         "release": "", "vendor": "",
         "cpe": "",                                  # CPE 2.3 name, for binaries identified by their contents
         "dev": false,                               # a lock file's development-only dependency
         "evidence": {"path": "var/lib/dpkg/status", # the file that produced the package
                      "method": "package-database"}, # how (hullscan.model.EVIDENCE_METHODS)
         "layer": {"index": 0, "diff_id": "sha256:...", "created_by": "..."}}   # index null when unknown
      ],
      "notes": [{"code": "...", "message": "...", "path": "...", "layer": 2}],  # layer null when unknown
      "summary": {"packages": 1, "by_ecosystem": {"deb": 1}}
    }

Empty strings stand for "not known"; keys are always present.

A scan report (:func:`render_report`) is ``hullscan/report/v2``: every v1 field, with the detectors' notes added
to ``notes`` (after the image's), plus::

      "scanners": ["vuln"],
      "database": {"schema_version": 1, "built_at": "...", "updated_at": "...", "sources": ["..."],
                   "counts": {"Debian": 123}},          # or null when no database was used
      "vulnerabilities": [                           # most severe first, then by package, then by id
        {"id": "CVE-2024-0001", "aliases": ["DSA-5000-1"], "advisory_ids": ["DSA-5000-1"],
         "package": {"name": "openssl", "version": "3.0.11-1", "ecosystem": "deb", "purl": "pkg:deb/...",
                     "path": "var/lib/dpkg/status",
                     "layer": {"index": 1, "diff_id": "sha256:...", "created_by": "..."}},
         "installed_version": "3.0.11-1", "fixed_versions": ["3.0.13-1"],
         "status": "fixed",                          # fixed | affected (no fix yet)
         "severity": "HIGH",
         "severity_source": "vendor:Debian",         # vendor:<who> (the distribution's or ecosystem's own rating),
                                                     # cvss:<version> (the advisory's vector), or from the CVE
                                                     # record: cna:<org>/cvss:3.1, adp:CISA-ADP/cvss:3.1,
                                                     # nvd/cvss:3.1, cna:<org>/rating; "" when UNKNOWN
         "cvss": {"score": 7.5, "vector": "CVSS:3.1/..."},   # score null when unknown
         "title": "...", "description": "...", "references": ["https://..."],
         "published": "2024-01-01T00:00:00Z", "modified": "...", "data_source": "Debian:12", "kev": false,
         "epss": {"score": 0.0123, "percentile": 0.85}}   # nulls when the CVE has no EPSS score
      ],
      "order": "severity",                          # or "risk" (--sort risk: KEV, then EPSS, then severity)
      "suppressed": [{...a vulnerability..., "vex": {"status": "not_affected",
                      "justification": "vulnerable_code_not_in_execute_path", "impact": "...",
                      "document": "app.vex.json"}}],   # by VEX statements: never counted, never fail a scan
      "ignored": [{...a vulnerability..., "reason": "not reachable", "expires": "2030-01-01"}],
      "checks": [                                    # every item but vulnerabilities: by item (in the order of
        {"item": "secret", "id": "aws-access-key-id",  # "scanners" below), most severe first, then id, path, line
         "title": "AWS access key ID", "severity": "CRITICAL", "description": "...", "remediation": "...",
         "path": "etc/app.env", "line": 3,             # path "" and line 0 when not about a file or line
         "evidence": "AKIA****************",           # as the detector redacted it
         "layer": {"index": 2, "diff_id": "sha256:...", "created_by": "..."},   # index null when unknown
         "metadata": {"category": "cloud"},            # the detector's extra facts, keys sorted
         "origin": "image"}                            # base | image | unknown (see below)
      ],
      "ignored_checks": [{...a check..., "reason": "test fixture", "expires": ""}],
      "coverage": {"complete": false,                # null when the vulnerability scan did not run; false when
                   "packages": 35, "checked": 8,     # some package could not be checked
                   "unchecked": 27, "gaps": [{"scope": "Debian:12", "packages": 27,
                                              "reason": "no vulnerability data"}]},
      "base_image": {"name": "docker.io/library/debian:12", "digest": "sha256:...",
                     "method": "annotation",         # annotation | catalogue
                     "layers": 1,                    # 0 when unknown
                     "recommendation": "..."},       # "" when there is none; the whole field null when no base
      "password_check": {"budget_seconds": 1.0,        # the weak-password check: null when it had no hash to try
                         "stages": ["empty", "username", "wordlist"],   # the tests run, in order
                         "wordlist": {"name": "bundled 1a2b...", "size": 10030},
                         "crypt_calls": 42, "seconds": 0.9,            # hashes computed in this run (0: all cached)
                         "accounts": [{"user": "app", "algorithm": "yescrypt", "weak": false, "test": "",
                                       "tried": 17, "total": 10041, "complete": false, "skipped": "",
                                       "from_cache": false}]},   # tried: a bound 10^k for a weak one
      "summary": {"packages": 1, "by_ecosystem": {"deb": 1},
                  "vulnerabilities": {"total": 1, "by_severity": {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0,
                                                                  "UNKNOWN": 0},
                                      "fixable": 1, "fixable_by_severity": {...}, "kev": 0, "ignored": 0,
                                      "suppressed": 0},
                  "checks": {"secret": {"total": 1, "by_severity": {...}, "by_origin": {"base": 0, "image": 1,
                                                                                       "unknown": 0}}, ...},
                  "by_origin": {"base": {"vulnerabilities": 0, "checks": 0, "by_severity": {...}},
                                "image": {...}, "unknown": {...}}}

``scanners`` lists the items that ran, in the order of ``hullscan.findings.ITEMS``; ``summary.checks`` has an entry
for each of them but ``vuln`` (and for any other item with findings). A finding's ``origin`` is ``base`` when the
layer that introduced it belongs to the identified base image (``0 <= layer < base_image.layers``), ``image`` when it
is one of the image's own layers, and ``unknown`` when no base is known, its layer count is not, or the finding has no
layer. Vulnerabilities (and ignored ones) carry ``origin`` only when ``base_image`` is not null. ``summary.by_origin``
counts every finding per origin, except the base item's findings, which are about the base itself.
"""

from __future__ import annotations

import json
from typing import Any

from hullscan.findings import (
    ITEMS,
    BaseImage,
    CheckFinding,
    IgnoredCheck,
    IgnoredFinding,
    ScanReport,
    SuppressedFinding,
    VulnFinding,
)
from hullscan.model import ImageFacts, LayerInfo, Note, OSInfo, Package
from hullscan.report import (
    ORIGINS,
    check_severity,
    check_severity_counts,
    checks_by_item,
    coverage_dict,
    ecosystem_counts,
    finding_origin,
    finding_sort_key,
    is_fixable,
    origin_counts,
    password_check_data,
    severity_counts,
    severity_of,
    sorted_checks,
    sorted_findings,
    sorted_packages,
    tool_version,
)
from hullscan.vulndb.model import DatabaseInfo

SCHEMA = "hullscan/report/v1"
REPORT_SCHEMA = "hullscan/report/v2"


def _os(os_info: OSInfo | None) -> dict[str, str] | None:
    if os_info is None:
        return None
    return {
        "family": os_info.family,
        "version": os_info.version,
        "codename": os_info.codename,
        "name": os_info.name,
    }


def _layer(layer: LayerInfo) -> dict[str, Any]:
    return {
        "index": layer.index,
        "diff_id": layer.diff_id,
        "digest": layer.descriptor.digest,
        "size": layer.descriptor.size,
        "media_type": layer.descriptor.media_type,
        "created_by": layer.created_by,
    }


def _package(pkg: Package) -> dict[str, Any]:
    return {
        "name": pkg.name,
        "version": pkg.version,
        "ecosystem": pkg.ecosystem,
        "purl": pkg.purl,
        "licenses": list(pkg.licenses),
        "path": pkg.path,
        "source_name": pkg.source_name,
        "source_version": pkg.source_version,
        "arch": pkg.arch,
        "epoch": pkg.epoch,
        "release": pkg.release,
        "vendor": pkg.vendor,
        "cpe": pkg.cpe,
        "dev": pkg.dev,
        "evidence": {"path": pkg.path, "method": pkg.method},
        "layer": {
            "index": pkg.layer_index if pkg.layer_index >= 0 else None,
            "diff_id": pkg.layer_diff_id,
            "created_by": pkg.layer_created_by,
        },
    }


def _note(note: Note) -> dict[str, Any]:
    return {
        "code": note.code,
        "message": note.message,
        "path": note.path,
        "layer": note.layer_index if note.layer_index >= 0 else None,
    }


def to_dict(facts: ImageFacts) -> dict[str, Any]:
    """The report as plain JSON-compatible data (see the module docstring for its shape)."""
    return {
        "schema": SCHEMA,
        "tool": {"name": "hullscan", "version": tool_version()},
        "artifact": {
            "reference": facts.reference,
            "manifest_digest": facts.manifest_digest,
            "config_digest": facts.config_digest,
            "platform": str(facts.platform),
            "os": _os(facts.os),
        },
        "layers": [_layer(layer) for layer in sorted(facts.layers, key=lambda la: la.index)],
        "packages": [_package(p) for p in sorted_packages(facts)],
        "notes": [_note(n) for n in facts.notes],
        "summary": {"packages": len(facts.packages), "by_ecosystem": ecosystem_counts(facts)},
    }


def render(facts: ImageFacts, *, indent: int | None = 2) -> str:
    """The report as a JSON document (UTF-8 text, non-ASCII characters kept as they are)."""
    return json.dumps(to_dict(facts), indent=indent, ensure_ascii=False) + "\n"


def _finding(finding: VulnFinding) -> dict[str, Any]:
    pkg = finding.package
    return {
        "id": finding.id,
        "aliases": list(finding.aliases),
        "advisory_ids": list(finding.advisory_ids),
        "package": {
            "name": pkg.name,
            "version": pkg.version,
            "ecosystem": pkg.ecosystem,
            "purl": pkg.purl,
            "path": pkg.path,
            "layer": {
                "index": pkg.layer_index if pkg.layer_index >= 0 else None,
                "diff_id": pkg.layer_diff_id,
                "created_by": pkg.layer_created_by,
            },
        },
        "installed_version": finding.installed_version,
        "fixed_versions": list(finding.fixed_versions),
        "status": finding.status,
        "severity": severity_of(finding),
        "severity_source": finding.severity_source,
        "cvss": {"score": finding.cvss_score, "vector": finding.cvss_vector},
        "title": finding.title,
        "description": finding.description,
        "references": list(finding.references),
        "published": finding.published,
        "modified": finding.modified,
        "data_source": finding.data_source,
        "kev": finding.kev,
        "epss": {"score": finding.epss, "percentile": finding.epss_percentile},  # nulls when unscored
    }


def _vulnerability(finding: VulnFinding, base: BaseImage | None) -> dict[str, Any]:
    data = _finding(finding)
    if base is not None:
        data["origin"] = finding_origin(finding.package.layer_index, base)
    return data


def _ignored(entry: IgnoredFinding, base: BaseImage | None) -> dict[str, Any]:
    return {**_vulnerability(entry.finding, base), "reason": entry.reason, "expires": entry.expires}


def _suppressed(entry: SuppressedFinding, base: BaseImage | None) -> dict[str, Any]:
    return {**_vulnerability(entry.finding, base), "vex": {"status": entry.status, "justification": entry.justification,
                                                           "impact": entry.impact, "document": entry.source}}


def _check(check: CheckFinding, base: BaseImage | None) -> dict[str, Any]:
    return {
        "item": check.item,
        "id": check.id,
        "title": check.title,
        "severity": check_severity(check),
        "description": check.description,
        "remediation": check.remediation,
        "path": check.path,
        "line": check.line,
        "evidence": check.evidence,
        "layer": {
            "index": check.layer_index if check.layer_index >= 0 else None,
            "diff_id": check.layer_diff_id,
            "created_by": check.layer_created_by,
        },
        "metadata": {key: check.metadata[key] for key in sorted(check.metadata)},
        "origin": finding_origin(check.layer_index, base),
    }


def _base_image(base: BaseImage | None) -> dict[str, Any] | None:
    if base is None:
        return None
    return {
        "name": base.name,
        "digest": base.digest,
        "method": base.method,
        "layers": base.layers,
        "recommendation": base.recommendation,
    }


def check_summary(report: ScanReport) -> dict[str, dict[str, Any]]:
    """Per item other than vulnerabilities that ran (or has findings): total, per severity, per origin."""
    summary: dict[str, dict[str, Any]] = {}
    for item, checks in checks_by_item(report).items():
        summary[item] = {
            "total": len(checks),
            "by_severity": check_severity_counts(checks),
            "by_origin": origin_counts((c.layer_index for c in checks), report.base_image),
        }
    return summary


def origin_summary(report: ScanReport) -> dict[str, dict[str, Any]]:
    """Every finding counted per origin (base, image, unknown): vulnerabilities, checks and per severity; the base
    item's own findings are left out (they are about the base, not from it)."""
    from hullscan.checks.baseimage import split_by_base

    split = split_by_base(report)
    return {
        origin: {"vulnerabilities": counts.vulnerabilities, "checks": counts.checks,
                 "by_severity": dict(counts.by_severity)}
        for origin, counts in zip(ORIGINS, (split.base, split.image, split.unknown), strict=True)
    }


def _scanners(report: ScanReport) -> list[str]:
    """The items that ran, in ITEMS order (an item hullscan does not know keeps its place after them)."""
    return [item for item in ITEMS if item in report.scanners] + \
        [item for item in dict.fromkeys(report.scanners) if item not in ITEMS]


def _database(info: DatabaseInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "schema_version": info.schema_version,
        "built_at": info.built_at,
        "updated_at": info.updated_at,
        "sources": list(info.sources),
        "counts": {eco: info.counts[eco] for eco in sorted(info.counts)},
    }


def vulnerability_summary(report: ScanReport) -> dict[str, Any]:
    """Counts of the report's findings: total, per severity, fixable (per severity), known-exploited, ignored."""
    fixable = [f for f in report.vulnerabilities if is_fixable(f)]
    return {
        "total": len(report.vulnerabilities),
        "by_severity": severity_counts(report.vulnerabilities),
        "fixable": len(fixable),
        "fixable_by_severity": severity_counts(fixable),
        "kev": sum(1 for f in report.vulnerabilities if f.kev),
        "ignored": len(report.ignored),
        "suppressed": len(report.suppressed),
    }


def _ignored_checks(report: ScanReport) -> list[IgnoredCheck]:
    order = {id(c): n for n, c in enumerate(sorted_checks(e.check for e in report.ignored_checks))}
    return sorted(report.ignored_checks, key=lambda e: order[id(e.check)])


def report_to_dict(report: ScanReport) -> dict[str, Any]:
    """A scan report as plain JSON-compatible data: the v1 inventory plus findings (see the module docstring)."""
    doc = to_dict(report.facts)
    doc["schema"] = REPORT_SCHEMA
    doc["notes"] += [_note(n) for n in report.notes]
    doc["scanners"] = _scanners(report)
    doc["database"] = _database(report.database)
    base = report.base_image
    doc["order"] = report.order
    doc["vulnerabilities"] = [_vulnerability(f, base) for f in sorted_findings(report.vulnerabilities, report.order)]
    doc["suppressed"] = [_suppressed(e, base) for e in sorted(report.suppressed,
                                                               key=lambda e: finding_sort_key(e.finding))]
    ordered = sorted(report.ignored, key=lambda entry: finding_sort_key(entry.finding))
    doc["ignored"] = [_ignored(entry, base) for entry in ordered]
    doc["checks"] = [_check(c, base) for c in sorted_checks(report.checks)]
    doc["ignored_checks"] = [{**_check(entry.check, base), "reason": entry.reason, "expires": entry.expires}
                             for entry in _ignored_checks(report)]
    doc["coverage"] = coverage_dict(report)
    doc["base_image"] = _base_image(base)
    doc["summary"]["vulnerabilities"] = vulnerability_summary(report)
    doc["summary"]["checks"] = check_summary(report)
    doc["summary"]["by_origin"] = origin_summary(report)
    doc["password_check"] = password_check_data(report.password_check)
    if report.file_inventory:
        doc["files"] = report.file_inventory
    return doc


def render_report(report: ScanReport, *, indent: int | None = 2) -> str:
    """A scan report as a JSON document (UTF-8 text, non-ASCII characters kept as they are)."""
    return json.dumps(report_to_dict(report), indent=indent, ensure_ascii=False) + "\n"
