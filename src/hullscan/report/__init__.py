"""Renderers for one image: its software inventory, and what the detectors concluded about it.

Every renderer is a pure function of its input and never re-computes anything: the inventory renderers
(``render``) take an :class:`~hullscan.model.ImageFacts` (the ``sbom`` command); the report renderers
(``render_report``, ``sarif.render``) take a :class:`~hullscan.findings.ScanReport` (the ``scan`` command). One
module per format:

- :mod:`hullscan.report.json_report` -- hullscan's own JSON document (``hullscan/report/v1``, and
  ``hullscan/report/v2`` with findings)
- :mod:`hullscan.report.table` -- Rich tables for people
- :mod:`hullscan.report.cyclonedx` -- CycloneDX 1.6 JSON (with a ``vulnerabilities`` section for a report)
- :mod:`hullscan.report.spdx` -- SPDX 2.3 JSON (inventory only)
- :mod:`hullscan.report.sarif` -- SARIF 2.1.0 (findings only)

The report renderers show every scan item: vulnerabilities, then one section per other item that ran (secret,
malware, file, baseline, compliance, base; titled by :data:`ITEM_TITLES`), each finding marked as coming from the
base image or the image's own layers when the base is known.

This package only holds the helpers they share (ordering, counts); importing it pulls in no renderer library.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from packageurl import PackageURL

from hullscan.findings import (
    ITEMS,
    SEVERITIES,
    BaseImage,
    CheckFinding,
    PasswordCheck,
    ScanReport,
    VulnFinding,
    severity_rank,
)
from hullscan.model import ImageFacts, Package

ITEM_TITLES = {
    "vuln": "Vulnerabilities", "secret": "Sensitive information", "malware": "Malicious files",
    "file": "File information", "baseline": "Baseline checks", "compliance": "Software compliance",
    "base": "Base image",
}
ORIGINS = ("base", "image", "unknown")
# Warnings that nearly every image gets (a Debian image always has hard links the walker does not follow): the
# table shows them only when asked (--verbose), so its warnings block keeps its meaning. Every format that is
# read by programs keeps them all.
ROUTINE_NOTES = frozenset({"HARDLINK_SKIPPED"})


def package_sort_key(pkg: Package) -> tuple[str, str, str, str, str, str, int]:
    """The order every renderer lists packages in: ecosystem, name, version, path (then release, arch, epoch)."""
    epoch = -1 if pkg.epoch is None else pkg.epoch
    return (pkg.ecosystem, pkg.name, pkg.version, pkg.path, pkg.release, pkg.arch, epoch)


def sorted_packages(facts: ImageFacts) -> list[Package]:
    return sorted(facts.packages, key=package_sort_key)


def ecosystem_counts(facts: ImageFacts) -> dict[str, int]:
    """Number of packages per ecosystem, ecosystems in alphabetical order."""
    counts = Counter(p.ecosystem for p in facts.packages)
    return {eco: counts[eco] for eco in sorted(counts)}


def severity_of(finding: VulnFinding) -> str:
    """The finding's severity as one of SEVERITIES (anything else counts as UNKNOWN)."""
    severity = finding.severity.upper()
    return severity if severity in SEVERITIES else "UNKNOWN"


def is_fixable(finding: VulnFinding) -> bool:
    """True when a fixed version exists (upgrading the package removes the finding)."""
    return finding.status == "fixed"


def finding_sort_key(finding: VulnFinding) -> tuple[int, tuple[str, str, str, str, str, str, int], str]:
    """The order every renderer lists findings in: most severe first, then by package, then by id."""
    return (-severity_rank(severity_of(finding)), package_sort_key(finding.package), finding.id)


def risk_sort_key(finding: VulnFinding) -> tuple[bool, float, int, tuple[str, str, str, str, str, str, int], str]:
    """`--sort risk`: known exploited (KEV) first, then the likeliest to be exploited (EPSS, unscored last), then
    the most severe, then by package and id."""
    epss = finding.epss if finding.epss is not None else -1.0
    return (not finding.kev, -epss, -severity_rank(severity_of(finding)), package_sort_key(finding.package),
            finding.id)


ORDERS = ("severity", "risk")


def sorted_findings(findings: Iterable[VulnFinding], order: str = "severity") -> list[VulnFinding]:
    if order == "risk":
        return sorted(findings, key=risk_sort_key)
    return sorted(findings, key=finding_sort_key)


def rating_words(finding: VulnFinding) -> str:
    """``7.5 cna:redhat/cvss:3.1`` style: the CVSS score and where the severity came from ("" when neither)."""
    parts = []
    if finding.cvss_score is not None:
        parts.append(f"{finding.cvss_score:.1f}")
    if finding.severity_source:
        parts.append(finding.severity_source)
    return " ".join(parts)


def epss_words(finding: VulnFinding) -> str:
    """``12.3% (p97)``: EPSS probability and percentile, "" when unscored."""
    if finding.epss is None:
        return ""
    pct = f" (p{finding.epss_percentile * 100:.0f})" if finding.epss_percentile is not None else ""
    return f"{finding.epss * 100:.1f}%{pct}"


def severity_counts(findings: Iterable[VulnFinding]) -> dict[str, int]:
    """Number of findings per severity, every severity present, most severe first."""
    counts = Counter(severity_of(f) for f in findings)
    return {severity: counts[severity] for severity in SEVERITIES}


def coverage_words(report: ScanReport) -> str:
    """``27 of 35 packages (Debian:12: 27, no vulnerability data)``: the packages the vulnerability scan could not
    check; "" when it checked every package (or did not run)."""
    if not report.unchecked:
        return ""
    missed = sum(gap.packages for gap in report.unchecked)
    total = len(report.facts.packages)
    of = f" of {total}" if total >= missed else ""
    why = "; ".join(f"{gap.scope}: {gap.packages}, {gap.reason}" for gap in report.unchecked)
    return f"{missed}{of} package{'s' if missed != 1 else ''} ({why})"


def coverage_dict(report: ScanReport) -> dict[str, object] | None:
    """What the vulnerability scan covered, for the formats programs read (None when it did not run): `complete`
    is false whenever some package could not be checked."""
    if "vuln" not in report.scanners:
        return None
    missed = sum(gap.packages for gap in report.unchecked)
    return {
        "complete": not report.unchecked,
        "packages": len(report.facts.packages),
        "checked": report.checked_packages,
        "unchecked": missed,
        "gaps": [{"scope": g.scope, "packages": g.packages, "reason": g.reason} for g in report.unchecked],
    }


def item_title(item: str) -> str:
    """The section title of a scan item (an item hullscan does not know is titled by its name)."""
    return ITEM_TITLES.get(item, item)


def check_severity(check: CheckFinding) -> str:
    """The check's severity as one of SEVERITIES (anything else counts as UNKNOWN)."""
    severity = check.severity.upper()
    return severity if severity in SEVERITIES else "UNKNOWN"


def _item_rank(item: str) -> int:
    return ITEMS.index(item) if item in ITEMS else len(ITEMS)


def check_sort_key(check: CheckFinding) -> tuple[int, str, int, str, str, int, str, str]:
    """The order every renderer lists check findings in: by item (in ITEMS order), most severe first, then by id,
    path, line (then title and evidence, so the order never depends on the input's)."""
    return (_item_rank(check.item), check.item, -severity_rank(check_severity(check)), check.id, check.path,
            check.line, check.title, check.evidence)


def sorted_checks(checks: Iterable[CheckFinding]) -> list[CheckFinding]:
    return sorted(checks, key=check_sort_key)


def check_severity_counts(checks: Iterable[CheckFinding]) -> dict[str, int]:
    """Number of check findings per severity, every severity present, most severe first."""
    counts = Counter(check_severity(c) for c in checks)
    return {severity: counts[severity] for severity in SEVERITIES}


def check_items(report: ScanReport) -> list[str]:
    """The items other than vulnerabilities that get a section: those that ran (in ITEMS order), plus any item
    that has findings without being listed as run."""
    known = [item for item in ITEMS if item != "vuln" and (item in report.scanners
                                                            or any(c.item == item for c in report.checks))]
    extra = sorted({c.item for c in report.checks} - set(ITEMS))
    return known + extra


def checks_by_item(report: ScanReport) -> dict[str, list[CheckFinding]]:
    """Every sectioned item (see check_items) with its findings in the renderers' order (possibly none)."""
    grouped: dict[str, list[CheckFinding]] = {item: [] for item in check_items(report)}
    for check in sorted_checks(report.checks):
        grouped.setdefault(check.item, []).append(check)
    return grouped


def password_check_data(check: PasswordCheck | None) -> dict[str, Any] | None:
    """The weak-password check's budget and what it tried, as JSON data (snake_case keys; SARIF re-cases them)."""
    if check is None:
        return None
    return {
        "budget_seconds": check.budget_seconds,
        "stages": check.stages,
        "wordlist": {"name": check.wordlist, "size": check.wordlist_size},
        "crypt_calls": check.crypt_calls,
        "seconds": round(check.seconds, 3),
        "accounts": [
            {"user": v.user, "algorithm": v.algorithm, "weak": v.weak, "test": v.test, "tried": v.tried,
             "total": v.total, "complete": v.complete, "skipped": v.skipped, "from_cache": v.cached}
            for v in check.verdicts
        ],
    }


def password_check_line(check: PasswordCheck) -> str:
    """The weak-password check in one line for people: the hashes, the budget and how far the search went."""
    vs = check.verdicts
    tests = "empty and user-name tests, then the wordlist for up to " + f"{check.budget_seconds:g} s" \
        if check.budget_seconds > 0 else "empty and user-name tests only (wordlist budget 0)"
    outcome = []
    weak = sum(v.weak for v in vs)
    if weak:
        outcome.append(f"{weak} weak")
    searched = [v for v in vs if not v.weak and not v.skipped]
    if searched:
        low, high = min(v.tried for v in searched), max(v.tried for v in searched)
        span = f"{low:,}" if low == high else f"{low:,} to {high:,}"
        outcome.append(f"{len(searched)} not found after {span} of {max(v.total for v in searched):,} candidates each"
                       + (" (--password-budget searches further)" if any(not v.complete for v in searched) else ""))
    skipped = sum(bool(v.skipped) for v in vs)
    if skipped:
        outcome.append(f"{skipped} not tried")
    cached = sum(v.cached for v in vs)
    line = f"Weak passwords: {len(vs)} hash(es) ({', '.join(sorted({v.algorithm for v in vs}))}); {tests}: " + \
        ", ".join(outcome)
    return line + (f"; {cached} verdict(s) from an earlier scan." if cached else ".")


def finding_origin(layer_index: int, base: BaseImage | None) -> str:
    """"base" (a layer of the base image), "image" (the image's own layers) or "unknown" (no base identified, its
    layer count unknown, or no layer attributed): the contract of :mod:`hullscan.checks.baseimage`."""
    from hullscan.checks.baseimage import finding_origin as origin

    return origin(layer_index, base)


def origin_counts(layer_indices: Iterable[int], base: BaseImage | None) -> dict[str, int]:
    """How many of the findings (given by their layer index) come from each origin, every origin present."""
    counts = Counter(finding_origin(index, base) for index in layer_indices)
    return {origin: counts[origin] for origin in ORIGINS}


def base_is_known(report: ScanReport) -> bool:
    """True when findings can be split into base and own layers (a base with a known number of layers)."""
    return report.base_image is not None and report.base_image.layers > 0


# What RFC 3986 lets stand as it is in each part of an http(s) URI (besides unreserved characters and "%", whose
# stray uses are escaped first); everything else is percent-encoded as UTF-8.
_SUB_DELIMS = "!$&'()*+,;="
_PATH_SAFE = _SUB_DELIMS + ":@/%"
_QUERY_SAFE = _PATH_SAFE + "?"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_AUTHORITY = re.compile(
    r"^(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?"  # userinfo
    r"(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])"  # reg-name, IPv4, or a bracketed IPv6 literal
    r"(?::[0-9]*)?$"  # port
)


def web_uri(url: str) -> str:
    """`url` (an advisory reference) as a valid absolute http(s) URI, percent-encoding what RFC 3986 does not allow
    (non-ASCII, ``<>"{}|\\^`` and the like, a ``%`` that starts no escape, a second ``#``); "" when it is not an
    http(s) URL with a well-formed host, or holds whitespace."""
    text = url.strip()
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        return ""
    text = _BAD_PERCENT.sub("%25", text)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return ""
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, rest = quote(rest[:authority_end], safe=_SUB_DELIMS + ":@[]%", errors="surrogateescape"), \
        rest[authority_end:]
    if not _AUTHORITY.match(authority):
        return ""
    rest, hash_, fragment = rest.partition("#")
    path, question, query = rest.partition("?")
    return "".join((
        scheme.lower(), "://", authority,
        quote(path, safe=_PATH_SAFE, errors="surrogateescape"),
        question, quote(query, safe=_QUERY_SAFE, errors="surrogateescape"),
        hash_, quote(fragment, safe=_QUERY_SAFE, errors="surrogateescape"),
    ))


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 timestamp (OSV and the database use them) as an aware datetime (UTC when it names no zone)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def tool_version() -> str:
    from hullscan import __version__

    return __version__


def information_uri() -> str:
    """hullscan's home page as its package metadata declares it (``[project.urls]``), or "" when it declares none."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("hullscan").get_all("Project-URL") or []
    except PackageNotFoundError:
        return ""
    by_label: dict[str, str] = {}
    for entry in urls:
        label, _, url = entry.partition(",")
        by_label.setdefault(label.strip().lower(), url.strip())
    for label in ("homepage", "home", "repository", "source", "documentation"):
        if by_label.get(label, "").startswith(("https://", "http://")):
            return by_label[label]
    return ""


# A distribution reference, as `docker pull` reads it: [domain/]path[:tag][@digest].
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def _split_reference(reference: str) -> tuple[str, str] | None:
    """(repository with its registry, tag) of a registry reference, or None when it is not one."""
    ref = reference.strip()
    for prefix in ("docker://", "registry://", "oci://"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    m = _REFERENCE.match(ref)
    if m is None:
        return None
    domain, path = m.group("domain"), m.group("path")
    # Like docker: the first component is a registry only if it looks like a host name.
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost" or domain != domain.lower()):
        path, domain = f"{domain}/{path}", None
    if domain is None:
        domain = "docker.io"
        if "/" not in path:
            path = f"library/{path}"
    return f"{domain}/{path}", m.group("tag") or ""


def image_purl(facts: ImageFacts) -> str:
    """``pkg:oci/<name>@<manifest digest>?repository_url=...&tag=...&arch=...``, or "" when the manifest digest
    is unknown or the reference is not a registry reference (an archive, a directory)."""
    if not facts.manifest_digest:
        return ""
    split = _split_reference(facts.reference)
    if split is None:
        return ""
    repository, tag = split
    qualifiers = {"repository_url": repository}
    if tag:
        qualifiers["tag"] = tag
    if facts.platform.architecture:
        qualifiers["arch"] = facts.platform.architecture
    purl = PackageURL(
        type="oci", name=repository.rsplit("/", 1)[-1], version=facts.manifest_digest, qualifiers=qualifiers
    )
    return str(purl.to_string())
