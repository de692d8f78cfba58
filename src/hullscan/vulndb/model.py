"""OSV advisories as hullscan holds them, and the contract between the store and the matcher.

Field names follow the OSV schema (https://ossf.github.io/osv-schema/) so the mapping stays obvious.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Range:
    type: str  # ECOSYSTEM, SEMVER (GIT ranges are counted at import and not stored)
    events: list[tuple[str, str]] = field(default_factory=list)  # (introduced|fixed|last_affected|limit, version)


@dataclass
class Affected:
    """One `affected[]` entry: a package in one ecosystem (with release, e.g. "Debian:11")."""

    ecosystem: str
    name: str
    purl: str = ""
    ranges: list[Range] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    ecosystem_specific: dict[str, Any] = field(default_factory=dict)
    database_specific: dict[str, Any] = field(default_factory=dict)
    # Severity for this package only: OSV's affected[].severity plus the vendor's word found in
    # ecosystem_specific/database_specific (Debian's per-release `urgency` -> SeverityScore("Debian", "low")).
    severity: list[SeverityScore] = field(default_factory=list)


@dataclass
class SeverityScore:
    # CVSS_V2, CVSS_V3, CVSS_V4 (a vector), or a vendor's own rating: "Ubuntu" (OSV severity type), and as the
    # importer normalises them from database_specific/ecosystem_specific: "GHSA" (LOW/MODERATE/HIGH/CRITICAL),
    # "Debian" (urgency: unimportant/low/medium/high), or another ecosystem's name with its word.
    type: str
    score: str  # the vector (or the vendor's word for non-CVSS types)


@dataclass
class Advisory:
    id: str
    modified: str = ""
    published: str = ""
    withdrawn: str = ""
    aliases: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    summary: str = ""
    details: str = ""
    severity: list[SeverityScore] = field(default_factory=list)
    affected: list[Affected] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)  # (type, url)
    database_specific: dict[str, Any] = field(default_factory=dict)
    kev: bool = False  # listed in CISA's Known Exploited Vulnerabilities catalogue


@dataclass
class DatabaseInfo:
    schema_version: int
    built_at: str  # ISO 8601 UTC
    updated_at: str
    sources: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # advisories per ecosystem (without release)
    path: str = ""
    # Where the CVE enrichment came from: {"cve5"|"nvd"|"epss"|"kev": {"source": ..., "records": n, ...}}
    enrichment: dict[str, Any] = field(default_factory=dict)


class AdvisoryStore(Protocol):
    """What the matcher needs from the database: advisories for one package, only the affected[]
    entries that name it."""

    def lookup(self, ecosystem: str, name: str) -> list[tuple[Advisory, Affected]]:
        """`ecosystem` is the OSV name with release ("Debian:11", "Alpine:v3.18", "PyPI");
        `name` is normalised with `normalize_name`."""
        ...

    def ecosystems(self) -> set[str]:
        """Every ecosystem (with release) the database holds data for."""
        ...

    def info(self) -> DatabaseInfo: ...


_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    """The key advisories and packages are matched on, per ecosystem."""
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in ("npm", "crates.io", "NuGet", "Packagist", "Hex", "Pub"):
        return name.lower() if base in ("NuGet", "Packagist", "Hex") else name
    return name
