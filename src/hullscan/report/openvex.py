"""OpenVEX (v0.2.0) for the findings a user's ignore file suppressed: their triage, publishable as a VEX document.

One statement per ignored finding, status `not_affected`, the ignore entry's reason as `impact_statement` (an
ignore file records no OpenVEX justification, and OpenVEX accepts an impact statement instead), the entry's expiry
in `status_notes`. The product is the image (its `pkg:oci` purl, when it came from a registry) with the package as
subcomponent; an image with no purl (an archive, a directory) is named by its package purls alone. `@id` and
`timestamp` are derived from the image and the database, so the same triage of the same image gives the same
document. Active (not ignored) and VEX-suppressed findings are not restated.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hullscan.findings import IgnoredFinding, ScanReport
from hullscan.report import finding_sort_key, image_purl, tool_version

CONTEXT = "https://openvex.dev/ns/v0.2.0"
ID_BASE = "https://openvex.dev/docs/public/vex-"


def _product(entry: IgnoredFinding, image: str) -> dict[str, Any]:
    pkg = entry.finding.package
    sub = pkg.purl or f"pkg:generic/{pkg.name}@{pkg.version}"
    if image:
        return {"@id": image, "subcomponents": [{"@id": sub}]}
    return {"@id": sub}


def _statement(entry: IgnoredFinding, image: str, timestamp: str) -> dict[str, Any]:
    f = entry.finding
    vulnerability: dict[str, Any] = {"name": f.id}
    # Only the vulnerability's own other ids: an advisory id (a DSA) may cover several vulnerabilities, and a
    # statement naming it would suppress all of them.
    aliases = [a for a in dict.fromkeys(f.aliases) if a != f.id]
    if aliases:
        vulnerability["aliases"] = aliases
    out: dict[str, Any] = {
        "vulnerability": vulnerability,
        "timestamp": timestamp,
        "products": [_product(entry, image)],
        "status": "not_affected",
        "impact_statement": entry.reason or "Triaged as not affecting this image (listed in the ignore file)",
    }
    if entry.expires:
        out["status_notes"] = f"ignore entry expires on {entry.expires}"
    return out


def to_dict(report: ScanReport, *, author: str = "hullscan", timestamp: str | None = None) -> dict[str, Any]:
    facts = report.facts
    image = image_purl(facts)
    built = report.database.built_at if report.database else ""
    when = timestamp or built or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ordered = sorted(report.ignored, key=lambda e: finding_sort_key(e.finding))
    statements = [_statement(e, image, when) for e in ordered]
    seed = json.dumps([facts.reference, facts.manifest_digest, statements], sort_keys=True)
    return {
        "@context": CONTEXT,
        "@id": ID_BASE + hashlib.sha256(seed.encode()).hexdigest(),
        "author": author,
        "role": "Document Creator",
        "timestamp": when,
        "version": 1,
        "tooling": f"hullscan/{tool_version()}",
        "statements": statements,
    }


def render(report: ScanReport, *, indent: int | None = 2) -> str:
    return json.dumps(to_dict(report), indent=indent, ensure_ascii=False) + "\n"
