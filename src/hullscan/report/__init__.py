"""Renderers for the software inventory of one image.

Every renderer is a pure function of an :class:`~hullscan.model.ImageFacts`: it formats what the scan found and
never re-computes anything. One module per format:

- :mod:`hullscan.report.json_report` -- hullscan's own JSON document (``hullscan/report/v1``)
- :mod:`hullscan.report.table` -- a Rich table for people
- :mod:`hullscan.report.cyclonedx` -- CycloneDX 1.6 JSON
- :mod:`hullscan.report.spdx` -- SPDX 2.3 JSON

This package only holds the helpers they share (ordering, counts); importing it pulls in no renderer library.
"""

from __future__ import annotations

import re
from collections import Counter

from packageurl import PackageURL

from hullscan.model import ImageFacts, Package

FORMATS = ("table", "json", "cyclonedx", "spdx")


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


def tool_version() -> str:
    from hullscan import __version__

    return __version__


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
