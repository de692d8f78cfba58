"""Applying VEX statements to findings.

A statement is about a finding when one of its ids (vulnerability and aliases) is one of the finding's (its id,
aliases and advisory ids), and one of its products is the finding's package: an OCI or Docker purl (the image)
covers every package; any other purl must have the package's type, namespace and name, and, when it gives a
version, the package's version. Of the statements about a finding the latest (by timestamp, then position) decides;
not_affected and fixed suppress it, affected and under_investigation leave it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from packageurl import PackageURL

from hullscan.findings import SuppressedFinding, VulnFinding
from hullscan.vex.model import SUPPRESSING, VexStatement

_IMAGE_TYPES = frozenset({"oci", "docker"})


def _purl(text: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _norm(purl: PackageURL) -> tuple[str, str, str]:
    name = purl.name.lower() if purl.type in ("pypi", "npm", "deb", "apk", "gem", "nuget", "composer") else purl.name
    if purl.type == "pypi":
        name = name.replace("_", "-").replace(".", "-")
    return purl.type.lower(), (purl.namespace or "").lower(), name


def product_matches(product: str, package_purl: str) -> bool:
    want = _purl(product)
    if want is None:
        return False
    if want.type.lower() in _IMAGE_TYPES:
        return True
    have = _purl(package_purl)
    if have is None or _norm(want) != _norm(have):
        return False
    return not want.version or want.version == have.version


def _about(s: VexStatement, finding: VulnFinding) -> bool:
    ids = {i.upper() for i in (finding.id, *finding.aliases, *finding.advisory_ids)}
    if not (s.ids & ids):
        return False
    return any(product_matches(p, finding.package.purl) for p in s.products)


def apply_vex(findings: Sequence[VulnFinding], statements: Sequence[VexStatement]
              ) -> tuple[list[VulnFinding], list[SuppressedFinding]]:
    """Split findings into (kept, suppressed)."""
    if not statements:
        return list(findings), []
    by_id: dict[str, list[VexStatement]] = {}
    for s in statements:
        for i in s.ids:
            by_id.setdefault(i, []).append(s)
    kept: list[VulnFinding] = []
    suppressed: list[SuppressedFinding] = []
    for f in findings:
        candidates = {id(s): s for i in (f.id, *f.aliases, *f.advisory_ids) for s in by_id.get(i.upper(), ())}
        about = [s for s in candidates.values() if _about(s, f)]
        if not about:
            kept.append(f)
            continue
        decisive = max(about, key=lambda s: (s.timestamp, s.order))
        if decisive.status in SUPPRESSING:
            suppressed.append(SuppressedFinding(f, decisive.status, decisive.justification, decisive.impact,
                                                decisive.source))
        else:
            kept.append(f)
    return kept, suppressed
