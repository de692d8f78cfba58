"""hullscan's own JSON report of an image's software inventory.

The document is stable: fields are only ever added under a new ``schema`` value. Shape of
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
         "severity": "HIGH", "severity_source": "vendor:Debian",
         "cvss": {"score": 7.5, "vector": "CVSS:3.1/..."},   # score null when unknown
         "title": "...", "description": "...", "references": ["https://..."],
         "published": "2024-01-01T00:00:00Z", "modified": "...", "data_source": "Debian:12", "kev": false}
      ],
      "ignored": [{...a vulnerability..., "reason": "not reachable", "expires": "2030-01-01"}],
      "summary": {"packages": 1, "by_ecosystem": {"deb": 1},
                  "vulnerabilities": {"total": 1, "by_severity": {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0,
                                                                  "UNKNOWN": 0},
                                      "fixable": 1, "fixable_by_severity": {...}, "kev": 0, "ignored": 0}}
"""

from __future__ import annotations

import json
from typing import Any

from hullscan.findings import IgnoredFinding, ScanReport, VulnFinding
from hullscan.model import ImageFacts, LayerInfo, Note, OSInfo, Package
from hullscan.report import (
    ecosystem_counts,
    finding_sort_key,
    is_fixable,
    severity_counts,
    severity_of,
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
    }


def _ignored(entry: IgnoredFinding) -> dict[str, Any]:
    return {**_finding(entry.finding), "reason": entry.reason, "expires": entry.expires}


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
    }


def report_to_dict(report: ScanReport) -> dict[str, Any]:
    """A scan report as plain JSON-compatible data: the v1 inventory plus findings (see the module docstring)."""
    doc = to_dict(report.facts)
    doc["schema"] = REPORT_SCHEMA
    doc["notes"] += [_note(n) for n in report.notes]
    doc["scanners"] = list(report.scanners)
    doc["database"] = _database(report.database)
    doc["vulnerabilities"] = [_finding(f) for f in sorted_findings(report.vulnerabilities)]
    ordered = sorted(report.ignored, key=lambda entry: finding_sort_key(entry.finding))
    doc["ignored"] = [_ignored(entry) for entry in ordered]
    doc["summary"]["vulnerabilities"] = vulnerability_summary(report)
    return doc


def render_report(report: ScanReport, *, indent: int | None = 2) -> str:
    """A scan report as a JSON document (UTF-8 text, non-ASCII characters kept as they are)."""
    return json.dumps(report_to_dict(report), indent=indent, ensure_ascii=False) + "\n"
