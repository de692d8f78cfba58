"""OS and package -> OSV ecosystem and query name."""

from __future__ import annotations

import pytest

from hullscan.model import OSInfo, Package
from hullscan.vulndb.ecosystems import (
    family_ecosystems,
    language_ecosystem,
    os_ecosystem_candidates,
    query_names,
    query_version,
    resolve_os,
)

# Ecosystem strings as the OSV feeds spell them (Red Hat and SUSE have many; a few real ones here).
STORE = {
    "Debian:3.0", "Debian:6.0", "Debian:7", "Debian:10", "Debian:11", "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS",
    "Ubuntu:18.04:LTS", "Ubuntu:23.10", "Alpine:v3.18", "Wolfi", "Chainguard", "Red Hat:enterprise_linux:9::baseos",
    "Red Hat:enterprise_linux:9::appstream", "Red Hat:enterprise_linux:9::crb", "Red Hat:rhel_eus:9.2::baseos",
    "Red Hat:enterprise_linux:8::baseos", "Red Hat:enterprise_linux:7::server", "Rocky Linux:9", "AlmaLinux:9",
    "SUSE:Linux Enterprise Server 15 SP5", "SUSE:Linux Enterprise Module for Basesystem 15 SP5",
    "SUSE:Linux Enterprise Module for Basesystem 15 SP4", "openSUSE:Leap 15.5", "openSUSE:Tumbleweed",
    "Photon OS:4.0", "Azure Linux:2.0", "Azure Linux:3.0", "PyPI", "Go",
}


@pytest.mark.parametrize(("os_info", "expected"), [
    (OSInfo("debian", "11"), ["Debian:11"]),
    (OSInfo("debian", "11.6"), ["Debian:11"]),  # /etc/debian_version
    (OSInfo("debian", "12"), ["Debian:12"]),
    (OSInfo("debian", "3.0"), ["Debian:3.0"]),
    (OSInfo("debian", "6.0.10"), ["Debian:6.0"]),
    (OSInfo("debian", "", "bookworm"), ["Debian:12"]),  # testing images have no VERSION_ID
    (OSInfo("debian", "", "trixie/sid", "trixie/sid"), ["Debian:13"]),  # /etc/debian_version of testing
    (OSInfo("ubuntu", "22.04", "jammy"), ["Ubuntu:22.04:LTS", "Ubuntu:22.04", "Ubuntu:Pro:22.04:LTS"]),
    (OSInfo("ubuntu", "23.10"), ["Ubuntu:23.10", "Ubuntu:23.10:LTS", "Ubuntu:Pro:23.10:LTS"]),
    (OSInfo("alpine", "3.18.4"), ["Alpine:v3.18"]),
    (OSInfo("alpine", "3.10"), ["Alpine:v3.10"]),
    (OSInfo("wolfi", "20230201"), ["Wolfi"]),
    (OSInfo("chainguard", ""), ["Chainguard"]),
    (OSInfo("rocky", "9.3"), ["Rocky Linux:9", "Rocky Linux"]),
    (OSInfo("almalinux", "9.2"), ["AlmaLinux:9", "AlmaLinux"]),
    (OSInfo("photon", "4.0"), ["Photon OS:4.0"]),
    (OSInfo("mariner", "2.0"), ["Azure Linux:2.0", "Mariner:2.0"]),
    (OSInfo("azurelinux", "3.0"), ["Azure Linux:3.0"]),
    (OSInfo("opensuse-leap", "15.5", name="openSUSE Leap 15.5"), ["openSUSE:Leap 15.5"]),
    (OSInfo("opensuse-tumbleweed", "20240101"), ["openSUSE:Tumbleweed"]),
    (OSInfo("fedora", "39"), []),
    (OSInfo("ol", "9.3"), []),
])
def test_candidates(os_info: OSInfo, expected: list[str]) -> None:
    assert list(dict.fromkeys(os_ecosystem_candidates(os_info, STORE))) == expected


def test_red_hat_streams_of_the_release_only() -> None:
    got = os_ecosystem_candidates(OSInfo("rhel", "9.3"), STORE)
    present = [e for e in got if e in STORE]
    # baseos/appstream first; the crb stream too; not EUS (another product), not 8 or 7
    assert present == ["Red Hat:enterprise_linux:9::appstream", "Red Hat:enterprise_linux:9::baseos",
                       "Red Hat:enterprise_linux:9::crb"]
    assert [e for e in os_ecosystem_candidates(OSInfo("centos", "7"), STORE) if e in STORE] == \
        ["Red Hat:enterprise_linux:7::server"]


def test_suse_product_and_modules_of_the_service_pack() -> None:
    os_info = OSInfo("sles", "15.5", name="SUSE Linux Enterprise Server 15 SP5")
    present = [e for e in os_ecosystem_candidates(os_info, STORE) if e in STORE]
    assert present[0] == "SUSE:Linux Enterprise Server 15 SP5"
    assert "SUSE:Linux Enterprise Module for Basesystem 15 SP5" in present
    assert "SUSE:Linux Enterprise Module for Basesystem 15 SP4" not in present


def test_resolve_reports_what_is_present() -> None:
    res = resolve_os(OSInfo("ubuntu", "18.04"), STORE)
    assert res.family == "Ubuntu"
    assert res.present == ["Ubuntu:18.04:LTS", "Ubuntu:Pro:18.04:LTS"]
    assert res.label == "Ubuntu:18.04:LTS"
    missing = resolve_os(OSInfo("debian", "12"), STORE)
    assert missing.present == [] and missing.label == "Debian:12"
    unknown = resolve_os(OSInfo("fedora", "39"), STORE)
    assert unknown.family == "" and unknown.wanted == []
    assert resolve_os(None, STORE).family == ""


def test_family_ecosystems_in_release_order() -> None:
    assert family_ecosystems("Debian", STORE) == ["Debian:3.0", "Debian:6.0", "Debian:7", "Debian:10", "Debian:11"]


@pytest.mark.parametrize(("eco", "osv"), [
    ("pypi", "PyPI"), ("npm", "npm"), ("maven", "Maven"), ("golang", "Go"), ("cargo", "crates.io"),
    ("gem", "RubyGems"), ("composer", "Packagist"), ("nuget", "NuGet"), ("conan", ""),
])
def test_language_ecosystems(eco: str, osv: str) -> None:
    assert language_ecosystem(eco) == osv


def test_debian_queries_the_source_package_and_version() -> None:
    # libssl1.1 is built from openssl; a binNMU carries "+b1" on the binary only
    pkg = Package("libssl1.1", "1.1.1n-0+deb11u3+b1", "deb", source_name="openssl", source_version="1.1.1n-0+deb11u3")
    assert query_names(pkg, "Debian:11") == ["openssl"]
    assert query_version(pkg, "Debian:11") == "1.1.1n-0+deb11u3"
    plain = Package("curl", "7.74.0-1.3+deb11u7", "deb")
    assert query_names(plain, "Debian:11") == ["curl"]
    assert query_version(plain, "Debian:11") == "7.74.0-1.3+deb11u7"


def test_alpine_queries_the_origin() -> None:
    pkg = Package("libcrypto1.1", "1.1.1d-r2", "apk", source_name="openssl", source_version="1.1.1d-r2")
    assert query_names(pkg, "Alpine:v3.11") == ["openssl"]
    # Wolfi/Chainguard: binary and origin names both
    assert query_names(pkg, "Wolfi") == ["libcrypto1.1", "openssl"]


def test_rpm_queries_binary_and_source_names_with_epoch() -> None:
    pkg = Package("openssl-libs", "3.0.7", "rpm", source_name="openssl", source_version="3.0.7-24.el9", epoch=1,
                  release="24.el9")
    assert query_names(pkg, "Red Hat:enterprise_linux:9::baseos") == ["openssl-libs", "openssl"]
    assert query_version(pkg, "Red Hat:enterprise_linux:9::baseos") == "1:3.0.7-24.el9"
    no_epoch = Package("bash", "5.1.8", "rpm", source_name="bash", release="6.el9")
    assert query_names(no_epoch, "Rocky Linux:9") == ["bash"]
    assert query_version(no_epoch, "Rocky Linux:9") == "5.1.8-6.el9"


def test_language_names_and_versions() -> None:
    assert query_names(Package("PyYAML", "5.3", "pypi"), "PyPI") == ["pyyaml"]
    assert query_names(Package("Django_Rest.Framework", "1", "pypi"), "PyPI") == ["django-rest-framework"]
    assert query_version(Package("stdlib", "v1.19.8", "golang"), "Go") == "1.19.8"
    assert query_version(Package("github.com/x/y", "v2.0.0+incompatible", "golang"), "Go") == "2.0.0+incompatible"
    assert query_names(Package("org.yaml:snakeyaml", "1.30", "maven"), "Maven") == ["org.yaml:snakeyaml"]
    assert query_names(Package("Newtonsoft.Json", "12.0.1", "nuget"), "NuGet") == ["newtonsoft.json"]
