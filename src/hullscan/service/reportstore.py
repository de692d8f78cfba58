"""Finished scans' reports: stored whole (for every export format) plus a small list of vulnerability findings
that pull decisions and diffs read without decoding the report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from hullscan import reportcodec
from hullscan.errors import HullscanError
from hullscan.findings import ScanReport, VulnFinding
from hullscan.service.storage.models import Scan, ScanResult


def finding_row(f: VulnFinding) -> dict[str, Any]:
    p = f.package
    return {"id": f.id, "aliases": sorted({*f.aliases, *f.advisory_ids} - {f.id}), "severity": f.severity.upper(),
            "package": p.name, "version": p.version, "ecosystem": p.ecosystem, "path": p.path,
            "fixed": list(f.fixed_versions), "kev": f.kev, "layer": p.layer_index}


def save(session: Session, scan_id: int, report: ScanReport) -> ScanResult:
    """Store a finished scan's report. The service pulls an image by the digest its tag pointed at; the report
    names it as people know it, `repository:tag` (its digest stays in the facts), as the CLI does for that tag."""
    scan = session.get(Scan, scan_id)
    tag = scan.image.tag if scan is not None else None
    digest = report.facts.manifest_digest
    if tag and digest and report.facts.reference.endswith("@" + digest):
        report.facts.reference = report.facts.reference[:-len(digest) - 1] + ":" + tag
    row = ScanResult(scan_id=scan_id, report=reportcodec.encode(report),
                     findings=[finding_row(f) for f in report.vulnerabilities])
    session.merge(row)
    return row


def load(session: Session, scan_id: int) -> ScanReport:
    row = session.get(ScanResult, scan_id)
    if row is None:
        raise HullscanError(f"scan {scan_id} has no report (it has not succeeded)", code="RESOURCE_NOT_FOUND")
    return reportcodec.decode(row.report)


def findings(session: Session, scan_id: int) -> list[dict[str, Any]]:
    row = session.get(ScanResult, scan_id)
    return list(row.findings) if row is not None else []


def delete_result(session: Session, scan_id: int) -> None:
    session.execute(delete(ScanResult).where(ScanResult.scan_id == scan_id))
