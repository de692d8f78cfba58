"""Findings: what detectors conclude about an image. Renderers only display these."""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.model import ImageFacts, Note, Package
from hullscan.vulndb.model import DatabaseInfo

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def severity_rank(severity: str) -> int:
    """CRITICAL=4 ... UNKNOWN=0, for sorting and thresholds."""
    try:
        return len(SEVERITIES) - 1 - SEVERITIES.index(severity.upper())
    except ValueError:
        return 0


@dataclass
class VulnFinding:
    id: str  # the CVE id when the advisory has one, else the advisory id
    package: Package  # carries name, version, ecosystem, purl, path and the introducing layer
    advisory_ids: list[str] = field(default_factory=list)  # every record that led here (DSA, GHSA, PYSEC, ...)
    aliases: list[str] = field(default_factory=list)
    installed_version: str = ""
    fixed_versions: list[str] = field(default_factory=list)
    status: str = "fixed"  # fixed (a fixed version exists) | affected (no fix yet)
    severity: str = "UNKNOWN"
    severity_source: str = ""  # "vendor:Debian", "cvss:3.1", ...
    cvss_score: float | None = None
    cvss_vector: str = ""
    title: str = ""
    description: str = ""
    references: list[str] = field(default_factory=list)
    published: str = ""
    modified: str = ""
    data_source: str = ""  # the OSV ecosystem the advisory came from, e.g. "Debian:11"
    kev: bool = False


@dataclass
class IgnoredFinding:
    finding: VulnFinding
    reason: str = ""
    expires: str = ""


@dataclass
class ScanReport:
    """One scan's result: the image facts plus each scan item's findings."""

    facts: ImageFacts
    vulnerabilities: list[VulnFinding] = field(default_factory=list)
    ignored: list[IgnoredFinding] = field(default_factory=list)
    database: DatabaseInfo | None = None
    scanners: list[str] = field(default_factory=list)  # which items ran: "vuln", later "secret", ...
    notes: list[Note] = field(default_factory=list)  # detector notes (e.g. "OS packages not checked")
