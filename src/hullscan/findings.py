"""Findings: what detectors conclude about an image. Renderers only display these."""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.items import NAMES
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
    epss: float | None = None  # FIRST EPSS probability of exploitation in the next 30 days (0..1)
    epss_percentile: float | None = None


@dataclass
class SuppressedFinding:
    """A finding a VEX statement says does not apply (not_affected or fixed): shown, never counted."""

    finding: VulnFinding
    status: str  # not_affected | fixed
    justification: str = ""  # the statement's justification (OpenVEX / CycloneDX wording)
    impact: str = ""  # its impact statement or detail, when it gives one
    source: str = ""  # the VEX document it came from


@dataclass
class IgnoredFinding:
    finding: VulnFinding
    reason: str = ""
    expires: str = ""


ITEMS = NAMES  # the scan items, in report order (hullscan.items.REGISTRY)


@dataclass
class CheckFinding:
    """A finding of any scan item other than vulnerabilities (secrets, malware, files, baseline,
    compliance, base image): one shape, so every renderer shows every item the same way."""

    item: str  # one of ITEMS
    id: str  # the rule or check id
    title: str
    severity: str = "UNKNOWN"
    description: str = ""
    remediation: str = ""
    path: str = ""  # inside the image, when the finding is about a file
    line: int = 0
    evidence: str = ""  # redacted when it could be sensitive
    layer_index: int = -1
    layer_diff_id: str = ""
    layer_created_by: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class IgnoredCheck:
    """A finding of an item other than vulnerabilities that the ignore file left out."""

    check: CheckFinding
    reason: str = ""
    expires: str = ""


@dataclass
class CoverageGap:
    """Packages the vulnerability scan could not check, and why: every report says so where it gives totals, so
    a short list of findings is never mistaken for a clean image."""

    scope: str  # the OSV ecosystem without data ("Debian:12", "crates.io"), or the package type ("deb")
    packages: int
    reason: str  # "no vulnerability data", "no version recorded", ...


@dataclass
class BaseImage:
    name: str  # the base's reference
    digest: str = ""
    method: str = ""  # "annotation" or "catalogue"
    layers: int = 0  # how many of the image's layers come from the base
    recommendation: str = ""  # a newer tag of the same base with fewer findings, when known


@dataclass
class PasswordVerdict:
    """What the weak-password check concluded for one account. Holds no password and no hash, so it may be kept
    (the verdict cache) and shown."""

    user: str
    algorithm: str
    weak: bool = False
    test: str = ""  # the test that found the password: empty, username or wordlist
    # Candidates tried. For a weak account an upper bound (10, 100, 1000, ...): the exact count would name the
    # password, the candidate order being public.
    tried: int = 0
    total: int = 0  # candidates the whole search has (empty + user-name variants + wordlist)
    skipped: str = ""  # why the hash was not tried at all (unsupported method, cost too high)
    budget_seconds: float = 0.0  # the wordlist-stage budget it was searched under
    cached: bool = False  # from an earlier scan (the verdict cache), not searched in this run

    @property
    def complete(self) -> bool:
        return self.weak or (not self.skipped and self.tried >= self.total)


@dataclass
class PasswordCheck:
    """The weak-password check's budget and what it tried, for the report (never a password or a hash)."""

    budget_seconds: float  # the wordlist stage's budget; the empty and user-name tests always run
    wordlist: str  # the candidate list's name and version
    wordlist_size: int
    verdicts: list[PasswordVerdict] = field(default_factory=list)
    crypt_calls: int = 0  # hashes computed in this run (0 when every verdict came from the cache)
    seconds: float = 0.0  # spent in this run

    @property
    def stages(self) -> list[str]:
        return ["empty", "username", "wordlist"] if self.budget_seconds > 0 else ["empty", "username"]


@dataclass
class ScanReport:
    """One scan's result: the image facts plus each scan item's findings."""

    facts: ImageFacts
    kind: str = "scan"  # "sbom": an inventory only, rendered as the `sbom` command does
    vulnerabilities: list[VulnFinding] = field(default_factory=list)
    ignored: list[IgnoredFinding] = field(default_factory=list)
    database: DatabaseInfo | None = None
    scanners: list[str] = field(default_factory=list)  # which items ran: "vuln", later "secret", ...
    notes: list[Note] = field(default_factory=list)  # detector notes (e.g. "OS packages not checked")
    checks: list[CheckFinding] = field(default_factory=list)  # every item but vulnerabilities
    base_image: BaseImage | None = None
    ignored_checks: list[IgnoredCheck] = field(default_factory=list)
    unchecked: list[CoverageGap] = field(default_factory=list)  # packages the vulnerability scan could not check
    checked_packages: int = 0  # packages the vulnerability scan did check
    # The final file tree (--list-files): path, type, size, mode, uid, gid, layer, linkname, sha256.
    file_inventory: list[dict[str, str | int]] = field(default_factory=list)
    suppressed: list[SuppressedFinding] = field(default_factory=list)  # by VEX statements
    order: str = "severity"  # how findings are listed: "severity" or "risk" (KEV, then EPSS, then severity)
    password_check: PasswordCheck | None = None  # when the baseline item found password hashes to try
