"""OS end-of-life: the bundled table, the detector's severities, and refreshing the table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hullscan.checks.eol import (
    DISTRO_INFO_TABLE,
    USER_TABLE,
    EolDataError,
    EolDetector,
    bundled_doc,
    load_table,
    refresh,
)
from hullscan.model import Descriptor, FileEntry, ImageFacts, LayerInfo, OSInfo, Package

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"  # empty: the bundled table only


def _facts(family: str, version: str, codename: str = "", name: str = "", pkgs: list[Package] | None = None
           ) -> ImageFacts:
    return ImageFacts(reference="img", os=OSInfo(family, version, codename, name or f"{family} {version}",
                                                 source="etc/os-release"), packages=pkgs or [])


def _detect(facts: ImageFacts, data_dir: Path, today: dt.date = TODAY) -> list[tuple[str, str]]:
    return [(f.id, f.severity) for f in EolDetector(today=today, data_dir=data_dir).detect(facts)]


def test_bundled_table_covers_the_distributions_and_cites_sources() -> None:
    doc = bundled_doc()
    dists = doc["distributions"]
    for dist_id in ("debian", "ubuntu", "alpine", "rhel", "centos", "rocky", "almalinux", "sles", "opensuse-leap",
                    "amzn", "fedora"):
        assert dists[dist_id]["_source"], dist_id
        for ver, rel in dists[dist_id]["releases"].items():
            assert rel["eol"], (dist_id, ver)
            dt.date.fromisoformat(rel["eol"])
    debian = {"3.0", "3.1", "4.0", "5.0", "6.0", "7", "8", "9", "10", "11", "12", "13"}
    assert debian <= set(dists["debian"]["releases"])
    ubuntu = set(dists["ubuntu"]["releases"])
    assert {"14.04", "16.04", "18.04", "20.04", "22.04", "24.04", "24.10"} <= ubuntu
    assert {f"3.{n}" for n in range(23)} <= set(dists["alpine"]["releases"])
    assert {"6", "7", "8"} <= set(dists["centos"]["releases"])
    assert {"8", "9"} <= set(dists["rocky"]["releases"]) & set(dists["almalinux"]["releases"])
    assert {"6", "7", "8", "9"} <= set(dists["rhel"]["releases"])


def test_known_dates() -> None:
    table = load_table(Path("/nonexistent"))
    deb = table.distributions["debian"].releases
    assert deb["9"].eol == dt.date(2020, 7, 18) and deb["9"].lts == dt.date(2022, 6, 30)
    assert deb["12"].lts == dt.date(2028, 6, 30)
    assert table.distributions["alpine"].releases["3.11"].eol == dt.date(2021, 11, 1)
    assert table.distributions["ubuntu"].releases["18.04"].eol == dt.date(2023, 5, 31)
    assert table.distributions["centos"].releases["7"].eol == dt.date(2024, 6, 30)


def test_debian_9_is_end_of_life(data_dir: Path) -> None:
    facts = _facts("debian", "9", "stretch", "Debian GNU/Linux 9 (stretch)")
    facts.layers = [LayerInfo(0, Descriptor("m", "sha256:aa", 1), "sha256:bb", "ADD rootfs.tar.xz /")]
    facts.files = [(FileEntry("etc/os-release", "f"), 0)]
    findings = EolDetector(today=TODAY, data_dir=data_dir).detect(facts)
    assert len(findings) == 1
    f = findings[0]
    assert (f.item, f.id, f.severity) == ("compliance", "os-eol", "HIGH")
    assert "no longer receives security updates" in f.title
    assert "2022-06-30" in f.description  # Debian LTS end: the last day fixes reached the image
    assert "Debian 13" in f.remediation
    assert f.path == "etc/os-release" and f.metadata["support_ends"] == "2022-06-30"
    assert (f.layer_index, f.layer_diff_id, f.layer_created_by) == (0, "sha256:bb", "ADD rootfs.tar.xz /")


def test_debian_12_counts_lts(data_dir: Path) -> None:
    # Regular security support ended 2026-07-11; Debian LTS serves the same archive until 2028-06-30.
    assert _detect(_facts("debian", "12", "bookworm"), data_dir) == [("os-lts", "LOW")]
    assert _detect(_facts("debian", "12"), data_dir, dt.date(2026, 5, 1)) == []
    assert _detect(_facts("debian", "12"), data_dir, dt.date(2028, 5, 1)) == [("os-eol", "MEDIUM")]
    assert _detect(_facts("debian", "12"), data_dir, dt.date(2028, 6, 30)) == [("os-eol", "MEDIUM")]
    assert _detect(_facts("debian", "12"), data_dir, dt.date(2028, 7, 1)) == [("os-eol", "HIGH")]
    assert _detect(_facts("debian", "13", "trixie"), data_dir) == []


def test_debian_version_from_debian_version_file_and_codename(data_dir: Path) -> None:
    assert _detect(_facts("debian", "9.13"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("debian", "6.0.10"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("debian", "", "stretch"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("debian", ""), data_dir) == []  # sid


def test_alpine(data_dir: Path) -> None:
    assert _detect(_facts("alpine", "3.11.13"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("alpine", "3.21.4"), data_dir) == [("os-eol", "HIGH")]  # ended 2026-11-01
    assert _detect(_facts("alpine", "3.22.1"), data_dir) == []
    assert _detect(_facts("alpine", "3.22.1"), data_dir, dt.date(2027, 3, 1)) == [("os-eol", "MEDIUM")]
    assert _detect(_facts("alpine", "3.99_alpha20261101"), data_dir) == []  # edge: not in the table


def test_ubuntu_esm_counts_only_when_enrolled(data_dir: Path) -> None:
    facts = _facts("ubuntu", "20.04", "focal")
    findings = EolDetector(today=TODAY, data_dir=data_dir).detect(facts)
    assert [(f.id, f.severity) for f in findings] == [("os-eol", "HIGH")]
    assert "Ubuntu 20.04 LTS (focal)" in findings[0].title and "Ubuntu Pro ESM" in findings[0].description
    enrolled = _facts("ubuntu", "20.04", "focal",
                      pkgs=[Package("openssl", "1.1.1f-1ubuntu2.24+esm1", "deb")])
    assert _detect(enrolled, data_dir) == []
    assert _detect(_facts("ubuntu", "24.04"), data_dir) == []
    assert _detect(_facts("ubuntu", "24.10"), data_dir) == [("os-eol", "HIGH")]


def test_enterprise_linux_family(data_dir: Path) -> None:
    assert _detect(_facts("centos", "7"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("centos", "8", name="CentOS Stream 8"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("centos", "9", name="CentOS Stream 9"), data_dir) == []
    assert _detect(_facts("rhel", "9.4"), data_dir) == []
    assert _detect(_facts("rocky", "8.10"), data_dir) == []
    assert _detect(_facts("almalinux", "9.5"), data_dir) == []
    assert _detect(_facts("amzn", "2"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("amzn", "2023"), data_dir) == []


def test_suse_matches_service_packs_exactly(data_dir: Path) -> None:
    assert _detect(_facts("sles", "15.6"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("sles", "15.7"), data_dir) == []
    assert _detect(_facts("sles", "15.9"), data_dir) == []  # unknown SP: never guessed from SLES 15 GA
    assert _detect(_facts("opensuse-leap", "15.6"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("opensuse", "42.3"), data_dir) == [("os-eol", "HIGH")]


def test_unknown_os_or_none(data_dir: Path) -> None:
    assert _detect(_facts("wolfi", "20230201"), data_dir) == []
    assert EolDetector(today=TODAY, data_dir=data_dir).detect(ImageFacts(reference="x")) == []


def test_user_table_overrides_bundled(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / USER_TABLE).write_text(json.dumps({"format": 1, "distributions": {
        "debian": {"releases": {"13": {"eol": "2026-01-01", "lts": None}}},
        "wolfi": {"name": "Wolfi", "releases": {"1": {"released": "2022-09-01", "eol": "2025-01-01"}}}}}))
    assert _detect(_facts("debian", "13"), data_dir) == [("os-eol", "HIGH")]
    assert _detect(_facts("wolfi", "1.2"), data_dir) == [("os-eol", "HIGH")]
    table = load_table(data_dir)
    assert table.distributions["debian"].releases["13"].codename == "trixie"  # fields not given are kept
    assert table.sources == ["bundled", str(data_dir / USER_TABLE)]


def test_broken_user_table_is_reported(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / USER_TABLE).write_text('{"format": 1, "distributions": {"debian": {"releases": '
                                       '{"12": {"eol": "June 2026"}}}}}')
    with pytest.raises(EolDataError, match="not a YYYY-MM-DD date"):
        load_table(data_dir)
    with pytest.raises(EolDataError):
        refresh(data_dir, distro_info_dir=None)


def test_refresh_installs_a_source_table(tmp_path: Path, data_dir: Path) -> None:
    src = tmp_path / "newer.json"
    src.write_text(json.dumps({"format": 1, "distributions": {
        "alpine": {"releases": {"3.23": {"released": "2025-12-03", "eol": "2027-11-01"}}}}}))
    result = refresh(data_dir, source=src, distro_info_dir=None)
    assert result.written == [data_dir / USER_TABLE]
    assert "3.23" in load_table(data_dir).distributions["alpine"].releases
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(EolDataError):
        refresh(data_dir, source=bad, distro_info_dir=None)
    assert "3.23" in load_table(data_dir).distributions["alpine"].releases  # the good table stays


def test_refresh_from_distro_info_only_fills_gaps(tmp_path: Path, data_dir: Path) -> None:
    di = tmp_path / "distro-info"
    di.mkdir()
    (di / "debian.csv").write_text(
        "version,codename,series,created,release,eol,eol-lts,eol-elts\n"
        "12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-06-10,2028-06-30,2033-06-30\n"
        "14,Forky,forky,2025-08-09,2027-08-01,2030-08-01,2032-06-30,2037-06-30\n"
        ",Sid,sid,1993-08-16\n")
    (di / "ubuntu.csv").write_text(
        "version,codename,series,created,release,eol,eol-server,eol-esm,eol-legacy\n"
        "27.04,Example Eel,eel,2026-10-15,2027-04-22,2028-01-20\n")
    result = refresh(data_dir, distro_info_dir=di)
    assert result.written == [data_dir / DISTRO_INFO_TABLE]
    table = load_table(data_dir)
    deb = table.distributions["debian"].releases
    assert deb["14"].eol == dt.date(2030, 8, 1)  # new release added
    assert deb["12"].eol == dt.date(2026, 7, 11)  # the bundled date is not replaced by an older host's
    assert table.distributions["ubuntu"].releases["27.04"].codename == "eel"
    assert result.releases > 100


def test_refresh_without_anything_to_do(data_dir: Path) -> None:
    result = refresh(data_dir, distro_info_dir=None)
    assert result.written == [] and result.sources == ["bundled"]
