"""Where an installed package's advisories live: OSV ecosystem strings and the names to query.

OSV scopes distribution advisories by release in the ecosystem string, and each distribution spells
it its own way (https://ossf.github.io/osv-schema/#affectedpackage-field, and the feeds themselves):

- debian: ``Debian:11`` (``Debian:3.0`` .. ``Debian:6.0`` keep the minor); advisories name the source package.
- ubuntu: ``Ubuntu:22.04:LTS``, ``Ubuntu:23.10``, and ``Ubuntu:Pro:18.04:LTS`` for ESM fixes; source package.
- alpine: ``Alpine:v3.18``; the origin (aports) package.
- wolfi, chainguard: ``Wolfi``, ``Chainguard`` (rolling, no release); the package (binary and origin names
  are both queried).
- rhel (and centos, rebuilt from RHEL): ``Red Hat:enterprise_linux:9::baseos`` and the release's other
  streams (``::appstream``, ``::crb``, ``Red Hat:enterprise_linux:7::server``); binary or source rpm.
- rocky, almalinux: ``Rocky Linux:9``, ``AlmaLinux:9``; rpm (binary names in the RLSA/ALSA feeds).
- sles, sle-micro: ``SUSE:Linux Enterprise Server 15 SP5`` (PRETTY_NAME) and its modules; source rpm.
- opensuse-*: ``openSUSE:Leap 15.5``, ``openSUSE:Tumbleweed``; source rpm.
- photon: ``Photon OS:4.0``; rpm.
- mariner, azurelinux: ``Azure Linux:2.0`` (CBL-Mariner 2.0 is filed there), ``Mariner:2.0``; rpm.

Every plausible spelling is produced and only those the database holds are queried; an OS whose
data is missing is reported ("OS packages not checked"), never passed over in silence.

rpm advisories name binary packages (Red Hat, AlmaLinux, Rocky) or source packages (SUSE, openSUSE),
so both names are queried; a binary package and its source rpm share one epoch:version-release.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from hullscan.model import OSInfo, Package
from hullscan.vulndb.model import normalize_name

# hullscan package ecosystem -> OSV ecosystem, for packages whose advisories do not depend on the OS.
LANGUAGE_ECOSYSTEMS: dict[str, str] = {
    "pypi": "PyPI",
    "npm": "npm",
    "maven": "Maven",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "composer": "Packagist",
    "nuget": "NuGet",
    # Runtimes and servers identified in binaries (analyzers/binaries.py): OSV's Bitnami records give the
    # upstream version ranges of these products, under the product names the packages carry as "advisory_name".
    "binary": "Bitnami",
}

# Debian releases by codename, for images whose os-release has no VERSION_ID (testing, old releases).
# Releases before 7 keep the ".0"/".1" in OSV, as distro-info-data's version column does.
DEBIAN_CODENAMES: dict[str, str] = {
    "woody": "3.0", "sarge": "3.1", "etch": "4.0", "lenny": "5.0", "squeeze": "6.0", "wheezy": "7",
    "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13",
    "forky": "14", "duke": "15",
}

# os-release ID -> (OSV family, the package type its packages have).
_FAMILIES: dict[str, tuple[str, str]] = {
    "debian": ("Debian", "deb"),
    "ubuntu": ("Ubuntu", "deb"),
    "alpine": ("Alpine", "apk"),
    "wolfi": ("Wolfi", "apk"),
    "chainguard": ("Chainguard", "apk"),
    "rhel": ("Red Hat", "rpm"),
    "redhat": ("Red Hat", "rpm"),
    "centos": ("Red Hat", "rpm"),  # rebuilt from RHEL sources with RHEL's versions (as Trivy does)
    "rocky": ("Rocky Linux", "rpm"),
    "almalinux": ("AlmaLinux", "rpm"),
    "alma": ("AlmaLinux", "rpm"),
    "sles": ("SUSE", "rpm"),
    "sled": ("SUSE", "rpm"),
    "sle-micro": ("SUSE", "rpm"),
    "sle_hpc": ("SUSE", "rpm"),
    "suse": ("SUSE", "rpm"),
    "opensuse-leap": ("openSUSE", "rpm"),
    "opensuse-tumbleweed": ("openSUSE", "rpm"),
    "opensuse-leap-micro": ("openSUSE", "rpm"),
    "opensuse": ("openSUSE", "rpm"),
    "photon": ("Photon OS", "rpm"),
    "mariner": ("Mariner", "rpm"),
    "azurelinux": ("Azure Linux", "rpm"),
}

_NUMBERS = re.compile(r"\d+")


@dataclass
class OSEcosystems:
    """The OS's advisory ecosystems: `wanted` in preference order, `present` those the database holds."""

    family: str  # OSV family ("Debian"), or "" when the OS is not one hullscan has a mapping for
    wanted: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The name counts and notes use: the first ecosystem found, else the first one looked for."""
        if self.present:
            return self.present[0]
        if self.wanted:
            return self.wanted[0]
        return self.family


def _parts(version: str) -> list[str]:
    return _NUMBERS.findall(version)


def _debian_release(os_info: OSInfo) -> list[str]:
    nums = _parts(os_info.version)
    if nums:
        major = int(nums[0])
        if major >= 7:
            return [str(major)]
        return [f"{major}.{nums[1] if len(nums) > 1 else '0'}"]
    codename = (os_info.codename or os_info.name).split("/")[0].strip().lower()  # "bookworm/sid"
    if codename in DEBIAN_CODENAMES:
        return [DEBIAN_CODENAMES[codename]]
    return [codename] if codename in ("sid", "unstable") else []


def _ubuntu_candidates(version: str) -> list[str]:
    nums = _parts(version)
    if len(nums) < 2:
        return []
    release = f"{int(nums[0]):02d}.{nums[1].zfill(2)}"
    lts = int(nums[0]) % 2 == 0 and nums[1].zfill(2) == "04"
    plain = [f"Ubuntu:{release}:LTS", f"Ubuntu:{release}"] if lts else [f"Ubuntu:{release}", f"Ubuntu:{release}:LTS"]
    # ESM fixes (Ubuntu Pro) are the only fixes an LTS gets after standard support ends, and
    # universe fixes during it; they describe the same source packages, so they are matched too.
    return [*plain, f"Ubuntu:Pro:{release}:LTS"]


def _suse_candidates(os_info: OSInfo, available: Collection[str]) -> list[str]:
    """SUSE names the product as PRETTY_NAME does ("SUSE:Linux Enterprise Server 15 SP5"); a container's
    packages come from the product and its modules (Basesystem, Server Applications, ...)."""
    nums = _parts(os_info.version)
    wanted: list[str] = []
    pretty = os_info.name.strip()
    if pretty.upper().startswith("SUSE "):
        wanted.append("SUSE:" + pretty[5:].strip())
    if nums:
        release = nums[0] if len(nums) == 1 or nums[1] == "0" else f"{nums[0]} SP{nums[1]}"
        if os_info.family in ("sles", "suse", ""):
            wanted.append(f"SUSE:Linux Enterprise Server {release}")
        suffix = f" {release}"
        module = "SUSE:Linux Enterprise Module for "
        modules = sorted(e for e in available if e.startswith(module) and e.endswith(suffix))
        wanted.extend(modules)
    return wanted


def _opensuse_candidates(os_info: OSInfo) -> list[str]:
    if "tumbleweed" in os_info.family or "tumbleweed" in os_info.name.lower():
        return ["openSUSE:Tumbleweed"]
    wanted: list[str] = []
    pretty = os_info.name.strip()
    if pretty.lower().startswith("opensuse "):
        wanted.append("openSUSE:" + pretty[len("openSUSE "):].strip())
    if os_info.version:
        kind = "Leap Micro" if "micro" in os_info.family else "Leap"
        wanted.append(f"openSUSE:{kind} {os_info.version}")
    return wanted


def _redhat_candidates(version: str, available: Collection[str]) -> list[str]:
    """Red Hat scopes by CPE: "Red Hat:enterprise_linux:9::baseos", "...::appstream", "...::crb",
    ("Red Hat:enterprise_linux:7::server" for 7, "Red Hat:enterprise_linux:10.1" from 10). The image's
    packages come from the release's main streams; EUS/AUS/E4S and layered products are not matched."""
    nums = _parts(version)
    if not nums:
        return []
    major = nums[0]
    releases = [major] + ([f"{major}.{nums[1]}"] if len(nums) > 1 else [])
    wanted = [f"Red Hat:enterprise_linux:{r}" for r in releases]
    alternatives = "|".join(re.escape(r) for r in releases)
    pattern = re.compile(rf"^Red Hat:enterprise_linux:({alternatives})(::.+)?$")
    streams = sorted(e for e in available if pattern.match(e) and e not in wanted)
    # baseos and appstream first: they hold what container images install.
    streams.sort(key=lambda e: (0 if e.endswith(("::baseos", "::appstream", "::server")) else 1, e))
    return [*wanted, *streams]


def os_ecosystem_candidates(os_info: OSInfo, available: Collection[str] = ()) -> list[str]:
    """Every OSV ecosystem that may hold advisories for this OS's packages, most specific first.

    `available` (the database's ecosystems) lets families with open-ended names (Red Hat streams,
    SUSE modules) list what is there."""
    family = _FAMILIES.get(os_info.family.lower(), ("", ""))[0]
    version = os_info.version.strip()
    nums = _parts(version)
    if family == "Debian":
        return [f"Debian:{r}" for r in _debian_release(os_info)]
    if family == "Ubuntu":
        return _ubuntu_candidates(version)
    if family == "Alpine":
        return [f"Alpine:v{nums[0]}.{nums[1]}"] if len(nums) >= 2 else []
    if family in ("Wolfi", "Chainguard"):
        return [family]  # rolling distributions: one unversioned ecosystem
    if family == "Red Hat":
        return _redhat_candidates(version, available)
    if family in ("Rocky Linux", "AlmaLinux"):
        # Both key advisories by major release ("AlmaLinux:9"); older feeds had no suffix.
        return [f"{family}:{nums[0]}", family] if nums else [family]
    if family == "SUSE":
        return _suse_candidates(os_info, available)
    if family == "openSUSE":
        return _opensuse_candidates(os_info)
    if family == "Photon OS":
        return [f"Photon OS:{nums[0]}.{nums[1] if len(nums) > 1 else '0'}"] if nums else []
    if family in ("Mariner", "Azure Linux"):
        if not nums:
            return []
        release = f"{nums[0]}.{nums[1] if len(nums) > 1 else '0'}"
        # CBL-Mariner 2.0 became Azure Linux; OSV files both under "Azure Linux".
        return [f"Azure Linux:{release}", f"Mariner:{release}"] if family == "Mariner" else [f"Azure Linux:{release}"]
    return []


def os_family(os_info: OSInfo | None) -> tuple[str, str]:
    """(OSV family, package type) for an OS, ("", "") when hullscan has no mapping for it."""
    if os_info is None:
        return "", ""
    return _FAMILIES.get(os_info.family.lower(), ("", ""))


def resolve_os(os_info: OSInfo | None, available: Collection[str]) -> OSEcosystems:
    """The OS's candidate ecosystems and which of them the database holds."""
    if os_info is None:
        return OSEcosystems(family="")
    family, _pkg_type = os_family(os_info)
    wanted = os_ecosystem_candidates(os_info, available)
    present = [e for e in wanted if e in available]
    return OSEcosystems(family=family, wanted=wanted, present=present)


def family_ecosystems(family: str, available: Iterable[str]) -> list[str]:
    """The releases of one family the database holds ("Debian:3.0" .. "Debian:11"), in release order."""
    if not family:
        return []
    found = [e for e in available if e == family or e.startswith(family + ":")]

    def key(e: str) -> tuple[list[int], str]:
        return [int(n) for n in _parts(e)], e

    return sorted(found, key=key)


def language_ecosystem(package_ecosystem: str) -> str:
    """The OSV ecosystem of a language package ("pypi" -> "PyPI"), "" when OSV has none."""
    return LANGUAGE_ECOSYSTEMS.get(package_ecosystem, "")


def rpm_evr(pkg: Package) -> str:
    """epoch:version-release as rpm compares it (the epoch only when the header has one)."""
    vr = f"{pkg.version}-{pkg.release}" if pkg.release else pkg.version
    return f"{pkg.epoch}:{vr}" if pkg.epoch is not None else vr


def query_names(pkg: Package, ecosystem: str) -> list[str]:
    """The names advisories for `ecosystem` file this package under, normalised for the store."""
    family = ecosystem.split(":", 1)[0]
    if family in ("Debian", "Ubuntu", "Alpine"):
        names = [pkg.source_name or pkg.name]
    elif pkg.ecosystem == "binary":
        names = [pkg.metadata["advisory_name"]] if pkg.metadata.get("advisory_name") else []
    elif pkg.ecosystem in ("rpm", "apk"):
        names = [pkg.name]
        if pkg.source_name and pkg.source_name != pkg.name:
            names.append(pkg.source_name)
    else:
        names = [pkg.name]
    out: list[str] = []
    for n in names:
        key = normalize_name(ecosystem, n)
        if key and key not in out:
            out.append(key)
    return out


def query_version(pkg: Package, ecosystem: str) -> str:
    """The version to compare with the advisories' events, in their spelling.

    Debian and Ubuntu advisories give source versions: a binNMU (`1.2-3+b1`) or a binary versioned apart
    from its source is compared by the source version dpkg records. rpm compares epoch:version-release.
    Go advisories write versions without the "v" the module system uses."""
    family = ecosystem.split(":", 1)[0]
    if family in ("Debian", "Ubuntu"):
        return pkg.source_version or pkg.version
    if pkg.ecosystem == "rpm":
        return rpm_evr(pkg)
    if family == "Go":
        v = pkg.version.strip()
        return v[1:] if v.startswith("v") else v
    return pkg.version.strip()
