"""A stored hullscan report in the shapes Harbor reads: `HarborVulnerabilityReport` (both vulnerability MIME types
share it), the raw form (hullscan's own JSON report) and `HarborSbomReport` (SPDX or CycloneDX from the same
inventory). They only re-shape the report; nothing is matched or computed again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from hullscan import __version__
from hullscan.findings import ScanReport, VulnFinding
from hullscan.report import is_fixable, severity_of, sorted_findings, web_uri
from hullscan.report.formats import render_text
from hullscan.service.harbor_adapter import mediatypes as mt

# hullscan's severities in Harbor's words; Harbor's scale also has Negligible, which no hullscan source gives.
SEVERITY = {"CRITICAL": "Critical", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low", "UNKNOWN": "Unknown"}
SCALE = ("Unknown", "Negligible", "Low", "Medium", "High", "Critical")  # Harbor's order, least first


def scanner() -> dict[str, str]:
    return {"name": "hullscan", "vendor": "hullscan", "version": __version__}


@dataclass(frozen=True)
class Artifact:
    """The scanned artifact as Harbor named it."""

    repository: str
    digest: str
    tag: str | None = None
    mime_type: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"repository": self.repository, "digest": self.digest}
        if self.tag:
            out["tag"] = self.tag
        if self.mime_type:
            out["mime_type"] = self.mime_type
        return out


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def vulnerability_report(report: ScanReport, artifact: Artifact, generated_at: dt.datetime) -> dict[str, Any]:
    """`HarborVulnerabilityReport`: one item per finding, the overall severity the highest of them (Unknown for
    none, as Harbor's own scanners answer)."""
    items = [vulnerability_item(f) for f in sorted_findings(report.vulnerabilities, report.order)]
    worst = max((SCALE.index(i["severity"]) for i in items), default=0)
    return {"generated_at": _time(generated_at), "artifact": artifact.as_dict(), "scanner": scanner(),
            "severity": SCALE[worst], "vulnerabilities": items}


def vulnerability_item(f: VulnFinding) -> dict[str, Any]:
    pkg = f.package
    item: dict[str, Any] = {"id": f.id, "package": pkg.name, "version": f.installed_version or pkg.version,
                            "severity": SEVERITY[severity_of(f)]}
    if f.fixed_versions:
        item["fix_version"] = ", ".join(f.fixed_versions)
    description = f.description or f.title
    if description:
        item["description"] = description
    links = [u for u in (web_uri(r) for r in f.references) if u]
    if links:
        item["links"] = list(dict.fromkeys(links))
    cvss = preferred_cvss(f)
    if cvss:
        item["preferred_cvss"] = cvss
    # What Harbor has no field for, under hullscan's name, so nothing collides with another scanner's attributes.
    layer = {"index": pkg.layer_index, "diff_id": pkg.layer_diff_id} if pkg.layer_index >= 0 else None
    extra = {"aliases": list(f.aliases), "advisory_ids": list(f.advisory_ids), "ecosystem": pkg.ecosystem,
             "purl": pkg.purl, "path": pkg.path, "layer": layer, "fixable": is_fixable(f),
             "severity_source": f.severity_source, "data_source": f.data_source, "kev": f.kev,
             "epss": f.epss, "cvss": {"score": f.cvss_score, "vector": f.cvss_vector}}
    item["vendor_attributes"] = {"hullscan": {k: v for k, v in extra.items() if v not in (None, "", [])}}
    return item


def preferred_cvss(f: VulnFinding) -> dict[str, Any]:
    """`CVSSDetails` for a CVSS 3.x or 2.0 vector (Harbor has no field for 4.0, which stays in the attributes)."""
    vector = f.cvss_vector.strip()
    if vector.startswith("CVSS:3."):
        out: dict[str, Any] = {"vector_v3": vector}
        if f.cvss_score is not None:
            out["score_v3"] = f.cvss_score
        return out
    if vector.startswith("AV:"):
        out = {"vector_v2": vector}
        if f.cvss_score is not None:
            out["score_v2"] = f.cvss_score
        return out
    return {}


def raw_report(report: ScanReport) -> str:
    """hullscan's own JSON report, the one `hullscan scan --format json` writes."""
    return render_text(report, "json")


def sbom_report(report: ScanReport, artifact: Artifact, generated_at: dt.datetime, media_type: str) -> dict[str, Any]:
    """`HarborSbomReport`: the image's inventory as an SPDX 2.3 or CycloneDX 1.6 document."""
    fmt = mt.SBOM_FORMATS[media_type]
    inventory = ScanReport(facts=report.facts, kind="sbom")
    sbom = json.loads(render_text(inventory, fmt))
    attributes = {"format": fmt, "spec-version": sbom.get("spdxVersion") or sbom.get("specVersion") or "",
                  "packages": len(report.facts.packages)}
    return {"generated_at": _time(generated_at), "artifact": artifact.as_dict(), "scanner": scanner(),
            "vendor_attributes": attributes, "media_type": media_type, "sbom": sbom}
