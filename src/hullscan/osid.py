"""Operating-system identity: purls for OS packages, which need the distribution to be known."""

from __future__ import annotations

import dataclasses

from packageurl import PackageURL

from hullscan.model import OSInfo, Package

# purl namespaces follow the purl spec's examples (pkg:deb/debian, pkg:rpm/fedora, pkg:apk/alpine).
_RPM_NAMESPACE = {"rhel": "redhat", "sles": "suse", "sled": "suse", "opensuse-leap": "opensuse",
                  "opensuse-tumbleweed": "opensuse", "mariner": "mariner", "azurelinux": "azurelinux"}


def distro_qualifier(os_info: OSInfo | None) -> str:
    if os_info is None or not os_info.family:
        return ""
    return f"{os_info.family}-{os_info.version}" if os_info.version else os_info.family


def finalize_os_package(p: Package, os_info: OSInfo | None) -> Package:
    """Give an OS package its purl (namespace and distro qualifier come from the image's OS)."""
    if p.purl or p.ecosystem not in ("deb", "rpm", "apk"):
        return p
    family = os_info.family if os_info else ""
    qualifiers: dict[str, str] = {}
    if p.arch:
        qualifiers["arch"] = p.arch
    distro = distro_qualifier(os_info)
    if distro:
        qualifiers["distro"] = distro
    if p.ecosystem == "deb":
        namespace = family or "debian"
        if p.source_name and p.source_name != p.name:
            qualifiers["upstream"] = p.source_name
        version = p.version
    elif p.ecosystem == "rpm":
        namespace = _RPM_NAMESPACE.get(family, family or "unknown")
        version = f"{p.version}-{p.release}" if p.release else p.version
        if p.epoch:
            qualifiers["epoch"] = str(p.epoch)
        if p.metadata.get("sourcerpm"):
            qualifiers["upstream"] = p.metadata["sourcerpm"]
    else:
        namespace = family or "alpine"
        version = p.version
    purl = PackageURL(type=p.ecosystem, namespace=namespace, name=p.name, version=version,
                      qualifiers=qualifiers or None).to_string()
    return dataclasses.replace(p, purl=purl)
