"""Matching with real OSV data (tests/vulndb/data_matcher, see its PROVENANCE.md)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.vulndb.matcher import MatchResult, match_image, vulnerability_ids
from hullscan.vulndb.model import Advisory, AdvisoryStore, Affected, DatabaseInfo, normalize_name
from hullscan.vulndb.osv import parse_record

DATA = Path(__file__).parent / "data_matcher"
EXAMPLES = json.loads((DATA / "examples.json").read_text())


def load_records() -> list[Advisory]:
    out = []
    with zipfile.ZipFile(DATA / "records.zip") as z:
        for member in sorted(z.namelist()):
            out.extend(parse_record(doc) for doc in json.loads(z.read(member)))
    return out


class MemoryStore:
    """AdvisoryStore over a list of advisories. Unlike the SQLite store it hands withdrawn records over too,
    so the matcher's own check is tested."""

    def __init__(self, advisories: Iterable[Advisory]) -> None:
        self.index: dict[tuple[str, str], list[tuple[Advisory, Affected]]] = {}
        for adv in advisories:
            for entry in adv.affected:
                key = (entry.ecosystem, normalize_name(entry.ecosystem, entry.name))
                self.index.setdefault(key, []).append((adv, entry))
        self.lookups = 0

    def lookup(self, ecosystem: str, name: str) -> list[tuple[Advisory, Affected]]:
        self.lookups += 1
        return self.index.get((ecosystem, normalize_name(ecosystem, name)), [])

    def ecosystems(self) -> set[str]:
        return {eco for eco, _name in self.index}

    def info(self) -> DatabaseInfo:
        return DatabaseInfo(schema_version=1, built_at="", updated_at="")


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore(load_records())


def _withdrawn() -> set[str]:
    return {adv.id for adv in load_records() if adv.withdrawn}


WITHDRAWN = _withdrawn()


def expected_matches(item: dict[str, Any]) -> set[str]:
    """`all_matching` less what its evaluator got wrong (test_examples_oddities pins both exceptions):

    - withdrawn records, which are never matched: GO-2025-3543 (runc, withdrawn 2025-03-26) is listed under
      runc 1.2.7;
    - "ERR:<id>:..." entries, records the evaluator failed on: three Alpine v3.8 xen records fixed in
      "4.10-1-r1", not a valid apk version (vulndata README, Alpine doubt 2). An unparsable bound matches
      nothing; here that is also the right answer, 4.10.3-r0 being newer than the 4.10.1-r1 meant."""
    return {a for a in item["all_matching"] if not a.startswith("ERR:")} - WITHDRAWN


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterable[AdvisoryStore]:
    """The real importer and store over the same extract."""
    from hullscan.vulndb.store import Store, build_from_paths

    path = tmp_path_factory.mktemp("db") / "hullscan.db"
    build_from_paths(path, [DATA / "records.zip"])
    with Store.open(path) as s:
        yield s


def facts_for(ecosystem: str, package: str, version: str) -> ImageFacts:
    """An image holding one package, as the analyzers would describe it."""
    base, _, release = ecosystem.partition(":")
    os_info = None
    if base == "Debian":
        os_info = OSInfo("debian", release, name=f"Debian GNU/Linux {release}")
        pkg = Package(package, version, "deb", source_name=package, source_version=version)
    elif base == "Alpine":
        os_info = OSInfo("alpine", release.lstrip("v") + ".0", name=f"Alpine Linux {release}")
        pkg = Package(package, version, "apk", source_name=package, source_version=version)
    else:
        kind = {"PyPI": "pypi", "Go": "golang", "npm": "npm", "Maven": "maven"}[base]
        pkg = Package(package, "v" + version if kind == "golang" else version, kind)
    return ImageFacts(reference="test", os=os_info, packages=[pkg])


def reported(result: MatchResult) -> set[str]:
    return {a for f in result.findings for a in f.advisory_ids}


def _cases() -> list[Any]:
    cases = []
    for kind in ("flag", "do_not_flag"):
        for item in EXAMPLES[kind]:
            name = f"{kind}:{item['ecosystem']}:{item['package']}@{item['version']}"
            cases.append(pytest.param(kind, item, id=name))
    return cases


@pytest.mark.parametrize(("kind", "item"), _cases())
def test_examples(store: MemoryStore, kind: str, item: dict[str, Any]) -> None:
    """Every expected match and nothing extra: the records behind the findings are exactly `all_matching`."""
    result = match_image(facts_for(item["ecosystem"], item["package"], item["version"]), store)
    got = reported(result)
    assert got == expected_matches(item)
    if kind == "flag":
        assert item["expected"] in got
    else:
        assert item["advisory"] not in got
    assert sum(result.checked.values()) == 1 and not result.unchecked and not result.notes


def test_examples_through_the_sqlite_store(sqlite_store: AdvisoryStore) -> None:
    for kind in ("flag", "do_not_flag"):
        for item in EXAMPLES[kind]:
            result = match_image(facts_for(item["ecosystem"], item["package"], item["version"]), sqlite_store)
            assert reported(result) == expected_matches(item), item


def test_examples_oddities(store: MemoryStore) -> None:
    listed = {a for kind in ("flag", "do_not_flag") for item in EXAMPLES[kind] for a in item["all_matching"]}
    assert listed & WITHDRAWN == {"GO-2025-3543"}
    errors = {a.split(":")[1] for a in listed if a.startswith("ERR:")}
    assert errors == {"ALPINE-CVE-2018-10981", "ALPINE-CVE-2018-10982", "ALPINE-CVE-2018-8897"}
    assert not errors & reported(match_image(facts_for("Alpine:v3.8", "xen", "4.10.3-r0"), store))


def test_collapsed_findings_are_one_per_vulnerability(store: MemoryStore) -> None:
    """The examples' records as findings: one per CVE, never two findings with the same id for a package."""
    for item in EXAMPLES["flag"]:
        result = match_image(facts_for(item["ecosystem"], item["package"], item["version"]), store)
        ids = [f.id for f in result.findings]
        assert len(ids) == len(set(ids)), item
        for f in result.findings:
            assert f.advisory_ids and f.id not in f.aliases
            if not f.id.startswith("CVE-") and any(a.startswith("CVE-") for a in f.aliases):
                pytest.fail(f"{f.id} was chosen over a CVE alias {f.aliases}")


# -- Debian -----------------------------------------------------------------------------------------------------


DSA_5343_CVES = ["CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286"]


def test_debian_binary_package_matched_through_its_source(store: MemoryStore) -> None:
    """libssl1.1 is built from openssl; DSA-5343-1 names the source and fixes five CVEs in 1.1.1n-0+deb11u4."""
    libssl = Package("libssl1.1", "1.1.1n-0+deb11u3", "deb", path="var/lib/dpkg/status", source_name="openssl",
                     source_version="1.1.1n-0+deb11u3", layer_index=0, layer_diff_id="sha256:aa")
    facts = ImageFacts("debian:11", os=OSInfo("debian", "11", "bullseye", "Debian GNU/Linux 11 (bullseye)"),
                       packages=[libssl])
    result = match_image(facts, store)
    assert sorted(f.id for f in result.findings) == DSA_5343_CVES
    for f in result.findings:
        assert f.package is libssl  # layer and path travel with it
        assert f.advisory_ids == ["DSA-5343-1"] and f.aliases == []
        assert f.fixed_versions == ["1.1.1n-0+deb11u4"] and f.status == "fixed"
        assert f.installed_version == "1.1.1n-0+deb11u3"
        assert f.data_source == "Debian:11" and f.title == "openssl - security update"
        assert f.published == "2023-02-07T00:00:00Z"
        assert "https://security-tracker.debian.org/tracker/DSA-5343-1" in f.references
    assert result.checked == {"Debian:11": 1}

    fixed = Package("libssl1.1", "1.1.1n-0+deb11u4", "deb", source_name="openssl", source_version="1.1.1n-0+deb11u4")
    assert match_image(ImageFacts("x", os=facts.os, packages=[fixed]), store).findings == []


def test_debian_compares_the_source_version(store: MemoryStore) -> None:
    """A binNMU's binary version (+b1) is not what the DSA fixed; dpkg's Source: version is."""
    os_info = OSInfo("debian", "11")
    binnmu = Package("libssl1.1", "1.1.1n-0+deb11u3+b1", "deb", source_name="openssl",
                     source_version="1.1.1n-0+deb11u3")
    assert {f.id for f in match_image(ImageFacts("x", os=os_info, packages=[binnmu]), store).findings} == \
        set(DSA_5343_CVES)
    # a binary versioned far above its (vulnerable) source is still vulnerable
    odd = Package("openssl-tool", "9.9-1", "deb", source_name="openssl", source_version="1.1.1n-0+deb11u3")
    assert len(match_image(ImageFacts("x", os=os_info, packages=[odd]), store).findings) == 5
    # and a binary whose source was fixed is clean whatever its own version says
    rebuilt = Package("libssl1.1", "1.1.1n-0+deb11u3", "deb", source_name="openssl", source_version="1.1.1n-0+deb11u4")
    assert match_image(ImageFacts("x", os=os_info, packages=[rebuilt]), store).findings == []


@pytest.mark.parametrize(("version", "found"), [
    ("2:1.20.11-1+deb11u5", True),
    ("2:1.20.11-1+deb11u6", False),  # the fixed version
    ("1:1.20.11-1+deb11u99", True),  # a lower epoch loses whatever follows
    ("1.20.11-1+deb11u99", True),  # no epoch is epoch 0
    ("3:1.0-1", False),  # a higher epoch wins
])
def test_epochs(store: MemoryStore, version: str, found: bool) -> None:
    result = match_image(facts_for("Debian:11", "xorg-server", version), store)
    assert ("DSA-5380-1" in reported(result)) is found


def test_two_notices_for_one_cve_make_one_finding(store: MemoryStore) -> None:
    """DLA-3331-1 and its regression update DLA-3331-2 both fix CVE-2023-23931 in python-cryptography."""
    pkg = Package("python3-cryptography", "2.6.1-3+deb10u2", "deb", source_name="python-cryptography",
                  source_version="2.6.1-3+deb10u2")
    result = match_image(ImageFacts("x", os=OSInfo("debian", "10"), packages=[pkg]), store)
    assert [(f.id, f.advisory_ids, f.fixed_versions) for f in result.findings] == [
        ("CVE-2023-23931", ["DLA-3331-1", "DLA-3331-2"], ["2.6.1-3+deb10u3", "2.6.1-3+deb10u4"])]
    between = Package("python3-cryptography", "2.6.1-3+deb10u3", "deb", source_name="python-cryptography",
                      source_version="2.6.1-3+deb10u3")
    result = match_image(ImageFacts("x", os=OSInfo("debian", "10"), packages=[between]), store)
    assert [(f.id, f.advisory_ids, f.fixed_versions) for f in result.findings] == [
        ("CVE-2023-23931", ["DLA-3331-2"], ["2.6.1-3+deb10u4"])]


def test_unfixed_and_ignore_unfixed(store: MemoryStore) -> None:
    """DSA-880-1 lists phpmyadmin in woody as <unfixed>: affected, no fixed version."""
    facts = facts_for("Debian:3.0", "phpmyadmin", "2.2.6-1")
    result = match_image(facts, store)
    assert {f.id for f in result.findings} == {"CVE-2005-2869", "CVE-2005-3300", "CVE-2005-3301", "CVE-2005-3787"}
    assert all(f.status == "affected" and f.fixed_versions == [] for f in result.findings)
    assert match_image(facts, store, ignore_unfixed=True).findings == []
    # fixed ones stay: sudo in woody has fixed DSAs
    sudo = facts_for("Debian:3.0", "sudo", "1.6.6-1")
    assert match_image(sudo, store, ignore_unfixed=True).findings == match_image(sudo, store).findings != []


def test_notice_urgency_rates_its_cves(store: MemoryStore) -> None:
    """DSA-746-1 (phpgroupware, sarge) closes with "(high)": each of its CVEs is HIGH by Debian's word."""
    result = match_image(facts_for("Debian:3.1", "phpgroupware", "0.9.16.005-3"), store)
    by_id = {f.id: f for f in result.findings}
    dsa = [f for f in result.findings if "DSA-746-1" in f.advisory_ids]
    assert dsa and all(f.severity == "HIGH" and f.severity_source == "vendor:Debian" for f in dsa)
    assert by_id  # sorted by severity first
    ranks = [f.severity for f in result.findings]
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
    assert ranks == sorted(ranks, key=order.index)


def test_debian_release_without_data_is_reported(store: MemoryStore) -> None:
    """The bundled Debian data stops at Debian 11: a Debian 12 image gets a note, not a clean bill."""
    facts = ImageFacts("debian:12", os=OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
                       packages=[Package("libssl3", "3.0.9-1", "deb", source_name="openssl", source_version="3.0.9-1"),
                                 Package("bash", "5.2.15-2+b2", "deb", source_name="bash", source_version="5.2.15-2"),
                                 Package("requests", "2.19.1", "pypi")])
    result = match_image(facts, store)
    assert result.unchecked == {"Debian:12": 2}
    assert result.checked == {"PyPI": 1}  # the language packages are still checked
    assert {a for f in result.findings for a in f.advisory_ids} == {"PYSEC-2018-28", "PYSEC-2023-74"}
    (note,) = result.notes
    assert note.code == "vuln-os-no-data"
    assert "OS packages not checked" in note.message and "Debian:12" in note.message
    assert "Debian:11" in note.message  # says what the database does have


def test_unknown_and_unidentified_os_are_reported(store: MemoryStore) -> None:
    rpm = Package("bash", "5.2.26", "rpm", release="1.fc40", source_name="bash")
    fedora = match_image(ImageFacts("fedora", os=OSInfo("fedora", "40", name="Fedora Linux 40"), packages=[rpm]),
                         store)
    assert [n.code for n in fedora.notes] == ["vuln-os-unsupported"]
    assert "OS packages not checked" in fedora.notes[0].message and fedora.unchecked == {"rpm": 1}
    bare = match_image(ImageFacts("x", os=None, packages=[Package("bash", "5.1-2", "deb")]), store)
    assert [n.code for n in bare.notes] == ["vuln-os-unknown"] and bare.unchecked == {"deb": 1}
    ubuntu = match_image(ImageFacts("x", os=OSInfo("ubuntu", "22.04"), packages=[Package("bash", "5.1-6", "deb")]),
                         store)
    assert "Ubuntu:22.04:LTS" in ubuntu.notes[0].message and ubuntu.unchecked == {"Ubuntu:22.04:LTS": 1}


def test_language_ecosystem_without_data_is_reported(store: MemoryStore) -> None:
    facts = ImageFacts("x", packages=[Package("serde", "1.0.0", "cargo"), Package("rails", "5.0.0", "gem"),
                                      Package("thing", "1", "conda")])
    result = match_image(facts, store)
    assert result.unchecked == {"crates.io": 1, "RubyGems": 1, "conda": 1}
    text = " ".join(n.message for n in result.notes)
    assert "crates.io" in text and "RubyGems" in text and "conda" in text


# -- Alpine ------------------------------------------------------------------------------------------------------


def test_alpine_matches_by_origin(store: MemoryStore) -> None:
    """libcrypto1.1 comes from the openssl aport; secdb files CVE-2019-1551 under openssl for v3.11."""
    os_info = OSInfo("alpine", "3.11.3", name="Alpine Linux v3.11")
    lib = Package("libcrypto1.1", "1.1.1d-r2", "apk", path="lib/apk/db/installed", source_name="openssl",
                  source_version="1.1.1d-r2")
    result = match_image(ImageFacts("alpine:3.11", os=os_info, packages=[lib]), store)
    (f,) = result.findings
    assert (f.id, f.advisory_ids, f.aliases, f.fixed_versions) == \
        ("CVE-2019-1551", ["ALPINE-CVE-2019-1551"], ["ALPINE-CVE-2019-1551"], ["1.1.1d-r3"])
    assert f.data_source == "Alpine:v3.11" and f.package is lib
    # without its origin the binary name finds nothing: apk advisories never name subpackages
    orphan = Package("libcrypto1.1", "1.1.1d-r2", "apk")
    assert match_image(ImageFacts("x", os=os_info, packages=[orphan]), store).findings == []


def test_alpine_non_cve_id(store: MemoryStore) -> None:
    result = match_image(facts_for("Alpine:v3.8", "xen", "4.10.3-r0"), store)
    xsa = [f for f in result.findings if "ALPINE-XSA-284" in f.advisory_ids]
    assert [f.id for f in xsa] == ["XSA-284"]


# -- languages ----------------------------------------------------------------------------------------------------


def test_go_toolchain_stdlib(store: MemoryStore) -> None:
    """A Go binary built with go1.19.8 carries the stdlib fixed later in 1.19.9 (GO-2023-1751, html/template)."""
    stdlib = Package("stdlib", "v1.19.8", "golang", path="usr/bin/app", metadata={"goVersion": "go1.19.8"})
    result = match_image(ImageFacts("x", packages=[stdlib]), store)
    by_record = {a: f for f in result.findings for a in f.advisory_ids}
    f = by_record["GO-2023-1751"]
    assert f.id == "CVE-2023-24539" and "GO-2023-1751" in f.aliases
    assert f.fixed_versions == ["1.19.9", "1.20.4"]
    assert f.installed_version == "v1.19.8" and f.data_source == "Go"
    newer = match_image(ImageFacts("x", packages=[Package("stdlib", "v1.19.9", "golang")]), store)
    assert "GO-2023-1751" not in reported(newer)
    # module versions are compared without their "v", pseudo-versions included
    assert reported(match_image(facts_for("Go", "gopkg.in/yaml.v2", "2.2.7"), store)) == {"GO-2020-0036"}


def test_aliases_collapse_across_records(store: MemoryStore) -> None:
    """PYSEC-2021-871 and PYSEC-2021-872 are both CVE-2021-42343 (GHSA-hwqr-f3v9-hwxr)."""
    result = match_image(facts_for("PyPI", "distributed", "2021.9.0"), store)
    (f,) = result.findings
    assert f.id == "CVE-2021-42343"
    assert f.advisory_ids == ["PYSEC-2021-871", "PYSEC-2021-872"]
    assert f.aliases == ["GHSA-hwqr-f3v9-hwxr", "GHSA-j8fq-86c5-5v2r", "PYSEC-2021-871", "PYSEC-2021-872"]
    assert f.fixed_versions == ["2021.10.0"]


def test_withdrawn_is_never_matched(store: MemoryStore) -> None:
    """PYSEC-2022-43059 (aiohttp, every version, no fix) was withdrawn."""
    assert any(adv.id == "PYSEC-2022-43059" for adv, _ in store.lookup("PyPI", "aiohttp"))
    result = match_image(facts_for("PyPI", "aiohttp", "3.8.1"), store)
    assert "PYSEC-2022-43059" not in reported(result)
    assert reported(result)  # aiohttp 3.8.1 has other, live advisories


def test_ghsa_severity_and_fields(store: MemoryStore) -> None:
    result = match_image(facts_for("npm", "lodash", "4.17.11"), store)
    by_record = {f.advisory_ids[0]: f for f in result.findings}
    f = by_record["GHSA-jf85-cpcp-j695"]
    assert f.id == "CVE-2019-10744" and f.aliases == ["GHSA-jf85-cpcp-j695"]
    assert (f.severity, f.severity_source, f.cvss_score) == ("CRITICAL", "vendor:GHSA", 9.1)
    assert f.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H"
    assert f.title and f.description and f.published and f.references
    assert f.fixed_versions == ["4.17.12"]
    assert [x.severity for x in result.findings][0] == "CRITICAL"


def test_maven_group_artifact(store: MemoryStore) -> None:
    log4j = Package("org.apache.logging.log4j:log4j-core", "2.14.1", "maven", path="app.jar!/log4j-core-2.14.1.jar")
    result = match_image(ImageFacts("x", packages=[log4j]), store)
    assert "CVE-2021-44228" in {f.id for f in result.findings}
    assert match_image(ImageFacts("x", packages=[Package("log4j-core", "2.14.1", "maven")]), store).findings == []


def test_kev(store: MemoryStore) -> None:
    facts = facts_for("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")
    plain = match_image(facts, store)
    assert not any(f.kev for f in plain.findings)
    flagged = match_image(facts, store, kev={"CVE-2021-44228"})
    assert {f.id for f in flagged.findings if f.kev} == {"CVE-2021-44228"}
    marked = MemoryStore(load_records())
    for advisories in marked.index.values():
        for adv, _entry in advisories:
            adv.kev = adv.id == "GHSA-jfh8-c2jp-5v3q"
    assert {f.id for f in match_image(facts, marked).findings if f.kev} == {"CVE-2021-44228"}


def test_notice_units() -> None:
    dsa = Advisory("DSA-1-1", upstream=["CVE-2020-1", "CVE-2020-2"], related=["CVE-2020-1", "CVE-2020-2"])
    assert vulnerability_ids(dsa) == [["CVE-2020-1"], ["CVE-2020-2"]]
    assert vulnerability_ids(Advisory("DSA-2-1")) == [["DSA-2-1"]]
    alpine = Advisory("ALPINE-CVE-2019-1551", upstream=["CVE-2019-1551"], related=["XSA-1"])
    assert vulnerability_ids(alpine) == [["ALPINE-CVE-2019-1551", "CVE-2019-1551"]]
    ghsa = Advisory("GHSA-x", aliases=["CVE-2021-1"], related=["CVE-2021-2"])
    assert vulnerability_ids(ghsa) == [["GHSA-x", "CVE-2021-1"]]


# -- speed ---------------------------------------------------------------------------------------------------------


def test_many_packages_are_fast(store: MemoryStore) -> None:
    """10,000 packages (5,000 distinct) against the extract: the matcher's own overhead stays small."""
    packages = []
    for i in range(5000):
        item = (EXAMPLES["flag"] + EXAMPLES["do_not_flag"])[i % 87]
        version = item["version"] if i < 87 else f"{item['version']}.{i}"
        packages.append(facts_for(item["ecosystem"], item["package"], version).packages[0])
    packages += packages
    facts = ImageFacts("big", os=OSInfo("debian", "11"), packages=packages)
    before = store.lookups
    result = match_image(facts, store)
    assert sum(result.checked.values()) + sum(result.unchecked.values()) == 10_000
    # counted, not timed: one database look-up per package name, however many packages and versions share it
    assert store.lookups - before <= len({(p.ecosystem, p.name) for p in packages})


# -- other distributions (record shapes as their feeds publish them; versions from the real advisories) -----------


def _ubuntu_store() -> MemoryStore:
    """Entries of Canonical's OSV record CVE-2023-0286 (ubuntu-security-notices, osv/cve/2023), cut to openssl;
    the Ubuntu:Pro:22.04:LTS entry is added to test precedence (the real record has none)."""
    def entry(eco: str, fixed: str | None, priority: str = "high") -> dict[str, Any]:
        events: list[dict[str, str]] = [{"introduced": "0"}] + ([{"fixed": fixed}] if fixed else [])
        return {"package": {"ecosystem": eco, "name": "openssl"}, "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"ubuntu_priority": priority}}

    record = {"id": "CVE-2023-0286", "modified": "2024-08-23T16:30:36Z", "published": "2023-02-07T00:00:00Z",
              "details": "There is a type confusion vulnerability relating to X.400 address processing ...",
              "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"}],
              "affected": [entry("Ubuntu:Pro:16.04:LTS", "1.0.2g-1ubuntu4.20+esm6"),
                           entry("Ubuntu:18.04:LTS", "1.1.1-1ubuntu2.1~18.04.21"),
                           entry("Ubuntu:22.04:LTS", "3.0.2-0ubuntu1.8"),
                           entry("Ubuntu:Pro:22.04:LTS", None)]}
    return MemoryStore([parse_record(record)])


def test_ubuntu_release_and_pro() -> None:
    store = _ubuntu_store()
    jammy = OSInfo("ubuntu", "22.04", "jammy", "Ubuntu 22.04.3 LTS")
    libssl = Package("libssl3", "3.0.2-0ubuntu1.7", "deb", source_name="openssl", source_version="3.0.2-0ubuntu1.7")
    (f,) = match_image(ImageFacts("x", os=jammy, packages=[libssl]), store).findings
    assert (f.id, f.fixed_versions, f.data_source) == ("CVE-2023-0286", ["3.0.2-0ubuntu1.8"], "Ubuntu:22.04:LTS")
    assert (f.severity, f.severity_source, f.cvss_score) == ("HIGH", "vendor:Ubuntu", 7.4)
    assert f.title.startswith("There is a type confusion")
    # fixed in the release: the Pro entry of the same record does not bring it back
    fixed = Package("libssl3", "3.0.2-0ubuntu1.8", "deb", source_name="openssl", source_version="3.0.2-0ubuntu1.8")
    result = match_image(ImageFacts("x", os=jammy, packages=[fixed]), store)
    assert result.findings == [] and result.checked == {"Ubuntu:22.04:LTS": 1}
    # 16.04 only has ESM (Pro) data: found there, with the ESM fix
    xenial = OSInfo("ubuntu", "16.04")
    old = Package("libssl1.0.0", "1.0.2g-1ubuntu4.20", "deb", source_name="openssl",
                  source_version="1.0.2g-1ubuntu4.20")
    (f,) = match_image(ImageFacts("x", os=xenial, packages=[old]), store).findings
    assert (f.fixed_versions, f.data_source) == (["1.0.2g-1ubuntu4.20+esm6"], "Ubuntu:Pro:16.04:LTS")
    assert match_image(ImageFacts("x", os=xenial, packages=[old]), store).checked == {"Ubuntu:Pro:16.04:LTS": 1}


def test_red_hat_rpm() -> None:
    """A record shaped like Red Hat's OSV feed (binary rpm names, epoch:version-release fixed versions, one
    ecosystem per product stream, the vendor's word in database_specific); id and versions are illustrative,
    the shared data has no Red Hat records."""
    record = {"id": "RHSA-2023:0001", "modified": "2023-09-19T00:00:00Z", "summary": "openssl security update",
              "upstream": ["CVE-2023-2650", "CVE-2023-3446"], "database_specific": {"severity": "Moderate"},
              "affected": [{"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": name},
                            "ranges": [{"type": "ECOSYSTEM",
                                        "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-18.el9_2"}]}]}
                           for name in ("openssl", "openssl-libs")]}
    store = MemoryStore([parse_record(record)])
    ubi = OSInfo("rhel", "9.2", name="Red Hat Enterprise Linux 9.2 (Plow)")
    libs = Package("openssl-libs", "3.0.7", "rpm", source_name="openssl", source_version="3.0.7-16.el9_2",
                   epoch=1, release="16.el9_2")
    result = match_image(ImageFacts("ubi9", os=ubi, packages=[libs]), store)
    assert sorted(f.id for f in result.findings) == ["CVE-2023-2650", "CVE-2023-3446"]
    f = result.findings[0]
    assert f.installed_version == "1:3.0.7-16.el9_2" and f.fixed_versions == ["1:3.0.7-18.el9_2"]
    assert (f.severity, f.severity_source) == ("MEDIUM", "vendor:Red Hat")
    assert result.checked == {"Red Hat:enterprise_linux:9::baseos": 1}
    # the binary and its source rpm both name the advisory: still one finding per CVE
    assert len(result.findings) == 2
    patched = Package("openssl-libs", "3.0.7", "rpm", source_name="openssl", epoch=1, release="18.el9_2")
    assert match_image(ImageFacts("ubi9", os=ubi, packages=[patched]), store).findings == []
    # epoch 0 (none recorded) sorts below epoch 1, whatever the version says
    no_epoch = Package("openssl-libs", "3.9.9", "rpm", source_name="openssl", release="1.el9")
    assert len(match_image(ImageFacts("ubi9", os=ubi, packages=[no_epoch]), store).findings) == 2
