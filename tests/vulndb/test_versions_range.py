"""OSV range evaluation (in_range), as the OSV schema's IncludedInRanges pseudo-code specifies, on the
schema's own examples, on hand-made ranges for every event type, and on real records from
../shared/vulndata/osv, including the independent evaluation recorded in examples.json."""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from hullscan.vulndb.versions import in_range

VULNDATA = Path("/work/shared/vulndata")
needs_data = pytest.mark.skipif(not (VULNDATA / "osv").exists(), reason="../shared/vulndata is not present")

Events = list[tuple[str, str]]


def ev(*pairs: tuple[str, str]) -> Events:
    return list(pairs)


# --- the schema's examples ----------------------------------------------------------------------------------
def test_schema_examples() -> None:
    unfixed = ev(("introduced", "0"))
    assert in_range("npm", "0.0.1", unfixed, "SEMVER") and in_range("npm", "99.0.0", unfixed, "SEMVER")

    fixed = ev(("introduced", "0"), ("fixed", "1.0.2"))
    assert in_range("npm", "1.0.1", fixed, "SEMVER")
    assert not in_range("npm", "1.0.2", fixed, "SEMVER")
    assert in_range("npm", "1.0.2-rc.1", fixed, "SEMVER")  # a pre-release of the fix is before it

    multiple = ev(("introduced", "1.0.0"), ("fixed", "1.0.2"), ("introduced", "3.0.0"), ("fixed", "3.2.5"))
    expect = {
        "0.9.0": False,
        "1.0.0": True,
        "1.0.1": True,
        "1.0.2": False,
        "2.9.9": False,
        "3.0.0": True,
        "3.2.4": True,
        "3.2.5": False,
        "4.0.0": False,
    }
    for v, want in expect.items():
        assert in_range("crates.io", v, multiple, "SEMVER") is want, v

    last_affected = ev(("introduced", "0"), ("last_affected", "2.1.214"))
    assert in_range("Maven", "2.1.214", last_affected, "ECOSYSTEM")  # inclusive
    assert not in_range("Maven", "2.1.215", last_affected, "ECOSYSTEM")
    fixed_instead = ev(("introduced", "0"), ("fixed", "2.1.214"))
    assert not in_range("Maven", "2.1.214", fixed_instead, "ECOSYSTEM")  # exclusive


def test_events_are_evaluated_in_version_order_not_written_order() -> None:
    shuffled = ev(("fixed", "3.2.5"), ("introduced", "3.0.0"), ("fixed", "1.0.2"), ("introduced", "1.0.0"))
    assert in_range("npm", "1.0.1", shuffled, "SEMVER")
    assert not in_range("npm", "2.0.0", shuffled, "SEMVER")
    assert in_range("npm", "3.1.0", shuffled, "SEMVER")
    # "0" sorts before everything even when written last
    assert in_range("PyPI", "0.1", ev(("fixed", "2.0"), ("introduced", "0")), "ECOSYSTEM")


def test_limit_events() -> None:
    # without a limit (implicitly "*") an open range runs on forever; a limit stops it (exclusive)
    opened = ev(("introduced", "1.0"))
    limited = ev(("introduced", "1.0"), ("limit", "2.0"))
    assert in_range("PyPI", "5.0", opened, "ECOSYSTEM")
    assert in_range("PyPI", "1.5", limited, "ECOSYSTEM")
    assert not in_range("PyPI", "2.0", limited, "ECOSYSTEM")
    assert not in_range("PyPI", "5.0", limited, "ECOSYSTEM")
    assert not in_range("PyPI", "0.5", limited, "ECOSYSTEM")
    # several limits: below any one of them is enough
    two = ev(("introduced", "1.0"), ("limit", "2.0"), ("limit", "4.0"))
    assert in_range("PyPI", "3.0", two, "ECOSYSTEM")
    assert not in_range("PyPI", "4.0", two, "ECOSYSTEM")
    # "*" is infinity
    assert in_range("PyPI", "99", ev(("introduced", "1.0"), ("limit", "*")), "ECOSYSTEM")
    # a limit does not reopen what a fix closed
    assert not in_range("PyPI", "1.6", ev(("introduced", "1.0"), ("fixed", "1.5"), ("limit", "2.0")), "ECOSYSTEM")


def test_last_affected_with_several_branches() -> None:
    events = ev(("introduced", "1.0"), ("last_affected", "1.4"), ("introduced", "2.0"), ("last_affected", "2.3.1"))
    expect = {
        "0.9": False,
        "1.0": True,
        "1.4": True,
        "1.4.1": False,
        "1.9": False,
        "2.0": True,
        "2.3.1": True,
        "2.3.2": False,
    }
    for v, want in expect.items():
        assert in_range("PyPI", v, events, "ECOSYSTEM") is want, v


def test_reintroduced_after_fix() -> None:
    events = ev(("introduced", "0"), ("fixed", "1.2-1"), ("introduced", "1.5-1"))
    assert in_range("Debian:12", "1.1-1", events, "ECOSYSTEM")
    assert not in_range("Debian:12", "1.3-1", events, "ECOSYSTEM")
    assert in_range("Debian:12", "1.5-1", events, "ECOSYSTEM")
    assert in_range("Debian:12", "2:0.1-1", events, "ECOSYSTEM")  # the epoch puts it after 1.5-1


def test_unparseable_versions_do_not_raise() -> None:
    assert not in_range("PyPI", "not a version", ev(("introduced", "0")), "ECOSYSTEM")
    assert not in_range("PyPI", "1.0", ev(("introduced", "0"), ("fixed", "bogus!")), "ECOSYSTEM")
    assert not in_range("npm", "1.0", ev(("introduced", "0")), "SEMVER")
    assert not in_range("Alpine:v3.11", "2.7.16-33", ev(("introduced", "0"), ("fixed", "2.7.17-r0")), "ECOSYSTEM")
    assert not in_range("PyPI", "1.0", ev(("introduced", "0")), "GIT")
    assert not in_range("PyPI", "1.0", ev(("introduced", "0")), "NONSENSE")
    # unknown event types are ignored as the schema ignores unknown fields
    assert in_range("PyPI", "1.0", ev(("introduced", "0"), ("withdrawn", "0.5")), "ECOSYSTEM")


# --- real records -------------------------------------------------------------------------------------------
class OSVIndex:
    """(ecosystem with release, package name) -> [(record, affected entry)] over the data's zips."""

    def __init__(self, root: Path) -> None:
        self.by_package: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
        self.records: dict[str, dict[str, Any]] = {}
        for path in sorted(root.glob("*/all.zip")):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    rec = json.loads(z.read(name))
                    self.records[rec["id"]] = rec
                    for aff in rec.get("affected", []):
                        pkg = aff.get("package", {})
                        self.by_package[(pkg.get("ecosystem", ""), pkg.get("name", ""))].append((rec, aff))

    def matching(self, ecosystem: str, name: str, version: str) -> set[str]:
        """Ids whose affected entries for the package cover the version (versions[] or a range); withdrawn
        records too (leaving them out is the matcher's business)."""
        hits = set()
        for rec, aff in self.by_package.get((ecosystem, name), []):
            if version in aff.get("versions", []) or any(
                in_range(ecosystem, version, events(r), r.get("type", "")) for r in aff.get("ranges", [])
            ):
                hits.add(rec["id"])
        return hits


def events(r: dict[str, Any]) -> Events:
    return [(k, v) for e in r.get("events", []) for k, v in e.items()]


@pytest.fixture(scope="module")
def osv() -> OSVIndex:
    if not (VULNDATA / "osv").exists():
        pytest.skip("../shared/vulndata is not present")
    return OSVIndex(VULNDATA / "osv")


def _affected(osv: OSVIndex, vuln_id: str, ecosystem: str, name: str) -> dict[str, Any]:
    rec = osv.records[vuln_id]
    return next(a for a in rec["affected"] if a["package"]["ecosystem"] == ecosystem and a["package"]["name"] == name)


@needs_data
def test_urllib3_pysec_2019_132(osv: OSVIndex) -> None:
    aff = _affected(osv, "PYSEC-2019-132", "PyPI", "urllib3")
    rng = next(r for r in aff["ranges"] if r["type"] == "ECOSYSTEM")
    assert in_range("PyPI", "1.24.1", events(rng), "ECOSYSTEM")
    assert in_range("PyPI", "1.24.3rc1", events(rng), "ECOSYSTEM")
    assert not in_range("PyPI", "1.24.3", events(rng), "ECOSYSTEM")
    assert not in_range("PyPI", "1.25", events(rng), "ECOSYSTEM")
    assert "PYSEC-2019-132" in osv.matching("PyPI", "urllib3", "1.24.1")


@needs_data
def test_debian_dsa_fixed_version_with_epoch(osv: OSVIndex) -> None:
    # DSA-4994-1: bind9 fixed in bullseye at 1:9.16.22-1~deb11u1
    aff = _affected(osv, "DSA-4994-1", "Debian:11", "bind9")
    evs = events(aff["ranges"][0])
    assert ("fixed", "1:9.16.22-1~deb11u1") in evs
    assert in_range("Debian:11", "1:9.16.15-1", evs, "ECOSYSTEM")  # bullseye's release version
    assert in_range("Debian:11", "1:9.16.22-1~deb11u0", evs, "ECOSYSTEM")  # ~ sorts before
    assert not in_range("Debian:11", "1:9.16.22-1~deb11u1", evs, "ECOSYSTEM")
    assert not in_range("Debian:11", "1:9.16.22-1", evs, "ECOSYSTEM")  # after ~deb11u1
    assert in_range("Debian:11", "9.18.0-1", evs, "ECOSYSTEM")  # no epoch = epoch 0: older
    assert not in_range("Debian:11", "2:9.0-1", evs, "ECOSYSTEM")


@needs_data
def test_alpine_secfix(osv: OSVIndex) -> None:
    aff = _affected(osv, "ALPINE-CVE-2019-1551", "Alpine:v3.11", "openssl")
    evs = events(aff["ranges"][0])
    assert evs == [("introduced", "0"), ("fixed", "1.1.1d-r3")]
    for v, want in {
        "1.1.1d-r2": True,
        "1.1.1d-r3": False,
        "1.1.1c-r0": True,
        "1.1.1g-r0": False,
        "1.1.1d_rc1-r9": True,
        "1.1.1-r0": True,
    }.items():
        assert in_range("Alpine:v3.11", v, evs, "ECOSYSTEM") is want, v


@needs_data
def test_go_stdlib_range(osv: OSVIndex) -> None:
    aff = _affected(osv, "GO-2023-1621", "Go", "stdlib")
    rng = aff["ranges"][0]
    assert rng["type"] == "SEMVER"
    evs = events(rng)  # [0, 1.19.7) and [1.20.0-0, 1.20.2)
    for v, want in {
        "1.19.6": True,
        "1.19.7": False,
        "1.20.0": True,
        "1.20.0-rc.1": True,
        "1.20.1": True,
        "1.20.2": False,
        "go1.20.1": True,
        "go1.20": True,
        "go1.19.7": False,
        "v1.20.1": True,
    }.items():
        assert in_range("Go", v, evs, "SEMVER") is want, v


def _examples() -> list[dict[str, Any]]:
    path = VULNDATA / "examples.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [dict(e, kind="flag") for e in data["flag"]] + [dict(e, kind="do_not_flag") for e in data["do_not_flag"]]


@needs_data
@pytest.mark.parametrize(
    "example", _examples(), ids=lambda e: f"{e['kind']}-{e['ecosystem']}-{e['package']}-{e['version']}"
)
def test_examples_json_independent_evaluation(osv: OSVIndex, example: dict[str, Any]) -> None:
    """examples.json lists, for each test triple, every advisory of the data whose ranges cover the version,
    computed independently by the data's author; our evaluation must find exactly that set."""
    got = osv.matching(example["ecosystem"], example["package"], example["version"])
    # "ERR:<id>:..." marks records the author's evaluator could not order: the three Alpine xen fixes
    # written "4.10-1-r1", not an apk version; we do not evaluate them either (in_range is False)
    errors = {x.split(":")[1] for x in example["all_matching"] if x.startswith("ERR:")}
    assert got == {x for x in example["all_matching"] if not x.startswith("ERR:")}
    assert not errors & got
    if example["kind"] == "flag":
        assert example["expected"] in got
    else:
        assert example["advisory"] not in got
