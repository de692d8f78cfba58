"""Package databases: dpkg in every form, apk, opkg, the CBL-Mariner distroless manifest and conda-meta.

Each test reads real metadata (tests/fixtures/inventory, see its PROVENANCE.md) or what the real dpkg wrote, and
asserts what a user of the report sees: which packages, with which version, and what was left out and why.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from tests.analyzers.debs import Debs, scan_root

from hullscan.analyzers.apk import parse_installed
from hullscan.analyzers.conda import CondaMetaAnalyzer
from hullscan.analyzers.dpkg import DpkgAnalyzer
from hullscan.analyzers.opkg import OpkgAnalyzer
from hullscan.analyzers.rpmmanifest import RpmManifestAnalyzer
from hullscan.model import FileEntry, FileFacts, OSInfo
from hullscan.osid import finalize_os_package

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inventory"


def run(analyzer: object, path: str, data: bytes) -> FileFacts | None:
    entry = FileEntry(path, "f", len(data))
    assert analyzer.claims(path, entry), path  # type: ignore[attr-defined]
    return analyzer.analyze(path, entry, io.BytesIO(data))  # type: ignore[attr-defined, no-any-return]


def notes(facts: FileFacts) -> dict[str, str]:
    return {n["code"]: n["message"] for n in facts.hints.get("notes", [])}


# -- dpkg ----------------------------------------------------------------------------------------------------


def test_status_d_honours_the_installed_state() -> None:
    """An Ubuntu status.d entry: the running kernel is installed, the old one only left its config files.
    Before, status.d entries were reported whatever their Status."""
    facts = run(DpkgAnalyzer(), "var/lib/dpkg/status.d/deinstall", (FIXTURES / "dpkg/status.d/deinstall").read_bytes())
    assert facts is not None
    assert [(p.name, p.version) for p in facts.packages] == [("linux-image-6.14.0-1012-aws", "6.14.0-1012.12~24.04.1")]
    assert "linux-image-6.8.0-1029-aws (config-files)" in notes(facts)["PACKAGE_NOT_INSTALLED"]


def test_the_same_status_rules_hold_for_the_status_file() -> None:
    data = (FIXTURES / "dpkg/status.d/deinstall").read_bytes()
    facts = run(DpkgAnalyzer(), "var/lib/dpkg/status", data)
    assert facts is not None and [p.name for p in facts.packages] == ["linux-image-6.14.0-1012-aws"]


def test_stanzas_without_a_version_are_reported_not_dropped() -> None:
    """dpkg's documentation examples: most stanzas name a package and no version. Before, they vanished."""
    facts = run(DpkgAnalyzer(), "var/lib/dpkg/status.d/doc-examples",
                (FIXTURES / "dpkg/status.d/doc-examples").read_bytes())
    assert facts is not None
    versions = {p.name: p.version for p in facts.packages}
    assert versions["mutt"] == "1.3.17-1" and versions["made-up-package-1"] == "1.0.0"
    assert versions["libc6"] == "" and versions["made-up-package-5"] == ""
    assert len(versions) == (FIXTURES / "dpkg/status.d/doc-examples").read_text().count("Package: ")
    unversioned = [name for name, version in versions.items() if not version]
    assert f"{len(unversioned)} package(s) without a Version" in notes(facts)["PACKAGE_WITHOUT_VERSION"]
    # an unknown version still gives a purl (without a version), so the SBOM lists it
    p = finalize_os_package(next(p for p in facts.packages if p.name == "libc6"), OSInfo("debian", "12"))
    assert p.purl == "pkg:deb/debian/libc6?distro=debian-12"


def test_real_dpkg_database_with_file_lists(debs: Debs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    debs.install(root, ["busybox-static", "libsqlite3-0"])
    facts = scan_root(root, tmp_path / "work")
    got = {(p.name, p.version, p.method, p.path) for p in facts.packages}
    assert ("busybox-static", debs.version("busybox-static"), "package-database", "var/lib/dpkg/status") in got
    assert ("libsqlite3-0", debs.version("libsqlite3-0"), "package-database", "var/lib/dpkg/status") in got
    assert len(facts.packages) == 2  # the binaries they own are not reported a second time


# -- apk ------------------------------------------------------------------------------------------------------


def test_apk_file_lists_are_read() -> None:
    packages, owned, problems = parse_installed((FIXTURES / "apk/single").read_text(), "lib/apk/db/installed")
    assert [(p.name, p.version, p.method) for p in packages] == [("musl-utils", "1.1.24-r2", "package-database")]
    assert "sbin/ldconfig" in owned and "usr/bin/ldd" in owned
    assert problems == []


# -- opkg -----------------------------------------------------------------------------------------------------


def test_opkg_status() -> None:
    facts = run(OpkgAnalyzer(), "var/lib/opkg/status", (FIXTURES / "opkg/var/lib/opkg/status").read_bytes())
    assert facts is not None
    got = {p.name: p for p in facts.packages}
    assert set(got) == {"dropbear", "busybox", "kernel-modules"}
    assert (got["dropbear"].version, got["dropbear"].ecosystem, got["dropbear"].licenses) == ("2024.85-r0", "opkg",
                                                                                            ["MIT"])
    assert got["kernel-modules"].licenses == ["GPL-2.0-only", "BSD-3-Clause"]
    assert got["busybox"].purl == "pkg:opkg/busybox@1.36.1-r3?arch=x86_64"
    assert got["busybox"].method == "package-database"


def test_openwrt_status_path_is_claimed() -> None:
    entry = FileEntry("usr/lib/opkg/status", "f", 10)
    assert OpkgAnalyzer().claims("usr/lib/opkg/status", entry)
    assert OpkgAnalyzer().claims("usr/lib/opkg/info/busybox.list", entry)
    assert not OpkgAnalyzer().claims("usr/lib/opkg/info/busybox.control", entry)


# -- CBL-Mariner / Azure Linux distroless ---------------------------------------------------------------------


def test_mariner_distroless_manifest() -> None:
    path = "var/lib/rpmmanifest/container-manifest-2"
    facts = run(RpmManifestAnalyzer(), path, (FIXTURES / "rpmmanifest" / path).read_bytes())
    assert facts is not None
    got = {p.name: p for p in facts.packages}
    assert [(p.name, p.version, p.release, p.epoch, p.arch) for p in facts.packages] == [
        ("mariner-release", "2.0", "12.cm2", None, "noarch"),
        ("filesystem", "1.1", "9.cm2", None, "x86_64"),
        ("glibc", "2.35", "2.cm2", None, "x86_64"),
        ("ca-certificates-base", "3.0.0", "8.azl3", 1, "noarch"),
    ]
    assert got["ca-certificates-base"].source_name == "ca-certificates"
    purl = finalize_os_package(got["glibc"], OSInfo("mariner", "2.0")).purl
    assert purl == "pkg:rpm/mariner/glibc@2.35-2.cm2?arch=x86_64&distro=mariner-2.0&upstream=glibc-2.35-2.cm2.src.rpm"


def test_unreadable_manifest_lines_are_a_note() -> None:
    path = "var/lib/rpmmanifest/container-manifest-2"
    good = (FIXTURES / "rpmmanifest" / path).read_bytes()
    facts = run(RpmManifestAnalyzer(), path, good + b"truncated-line\t1.0\n")
    assert facts is not None and len(facts.packages) == 4
    assert "line 5" in notes(facts)["PACKAGE_UNREADABLE"]


# -- conda ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["zlib-1.2.11-h90dfc92_1014.json", "jupyterlab-4.4.3-pyhd8ed1ab_0.json"])
def test_conda_meta(record: str) -> None:
    path = f"opt/conda/conda-meta/{record}"
    facts = run(CondaMetaAnalyzer(), path, (FIXTURES / "conda" / path).read_bytes())
    assert facts is not None
    (pkg,) = facts.packages
    name, version = record.split("-")[0], record.split("-")[1]
    assert (pkg.name, pkg.version, pkg.ecosystem, pkg.method) == (name, version, "conda", "package-database")
    assert pkg.purl.startswith(f"pkg:conda/{name}@{version}?build=")
    assert "channel=conda-forge" in pkg.purl


def test_conda_environments_anywhere_but_not_their_subdirectories() -> None:
    a = CondaMetaAnalyzer()
    entry = FileEntry("x", "f", 10)
    assert a.claims("opt/conda/envs/app/conda-meta/numpy-1.26.0-py311h.json", entry)
    assert a.claims("conda-meta/numpy-1.26.0-py311h.json", entry)
    assert not a.claims("opt/conda/conda-meta/history", entry)
    assert not a.claims("opt/conda/conda-meta/sub/x.json", entry)


def test_conda_environment_in_an_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "conda", root)
    facts = scan_root(root, tmp_path / "work")
    assert sorted((p.name, p.version) for p in facts.packages) == [("jupyterlab", "4.4.3"), ("zlib", "1.2.11")]
