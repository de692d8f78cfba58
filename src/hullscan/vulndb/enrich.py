"""Findings completed from the database's CVE enrichment: severity, CVSS, EPSS and KEV.

A finding keeps the severity its advisories give it when a vendor rated it for that distribution or ecosystem
(`vendor:...`) or the advisory carries its own CVSS vector (`cvss:...`: the ecosystem database's score, e.g.
PyPA's or GitHub's). Otherwise it is rated from the CVE record of its CVE id or a CVE alias: CNA CVSS, then
ADP CVSS, then NVD CVSS, then the CNA's own word (vulndb.cverecords.best_metric); it stays UNKNOWN only when no
imported record has a metric. A vendor-rated finding without a score gets the CVE's CVSS score and vector
next to its vendor rating, so every finding that can show a vector does.

EPSS is the highest of its CVEs' (a finding naming several CVEs is as likely to be exploited as the likeliest),
KEV is set when any of its CVEs is in the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hullscan.findings import VulnFinding
from hullscan.vulndb.cverecords import CveIntel, best_cvss, best_metric, metric_label


class IntelSource(Protocol):
    def cve_intel(self, cves: Sequence[str]) -> dict[str, CveIntel]: ...


def finding_cves(finding: VulnFinding) -> list[str]:
    return list(dict.fromkeys(i for i in (finding.id, *finding.aliases) if i.startswith("CVE-")))


def enrich_findings(findings: Sequence[VulnFinding], store: object) -> None:
    lookup = getattr(store, "cve_intel", None)
    if lookup is None or not findings:
        return  # a store without enrichment (an older interface, a test double)
    wanted = sorted({c for f in findings for c in finding_cves(f)})
    intel: dict[str, CveIntel] = lookup(wanted)
    if not intel:
        return
    for finding in findings:
        infos = [intel[c] for c in finding_cves(finding) if c in intel]
        if infos:
            apply_intel(finding, infos)


def apply_intel(finding: VulnFinding, infos: Sequence[CveIntel]) -> None:
    metrics = [m for info in infos for m in info.metrics]
    if finding.severity_source.startswith(("vendor:", "cvss:")) and finding.severity != "UNKNOWN":
        if finding.cvss_score is None and (cvss := best_cvss(metrics)) is not None:
            finding.cvss_score, finding.cvss_vector = cvss.score, cvss.vector
    elif (best := best_metric(metrics)) is not None:
        finding.severity, finding.severity_source = best.level, metric_label(best)
        cvss = best if best.kind == "cvss" else best_cvss(metrics)
        if cvss is not None:
            finding.cvss_score, finding.cvss_vector = cvss.score, cvss.vector
    scores = [(i.epss, i.epss_percentile) for i in infos if i.epss is not None]
    if scores:
        finding.epss, finding.epss_percentile = max(scores, key=lambda s: s[0] or 0.0)
    if any(i.kev for i in infos):
        finding.kev = True
