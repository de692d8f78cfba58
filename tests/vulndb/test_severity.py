"""Severity: the vendor's rating where a record gives one, else CVSS (cvss package); never a crash."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hullscan.vulndb.model import Advisory, Affected, SeverityScore
from hullscan.vulndb.osv import parse_record
from hullscan.vulndb.severity import Severity, assess, best_cvss, cvss_rating, highest, vendor_level

DATA = Path(__file__).parent / "data_matcher" / "records.zip"


def _records(member: str) -> dict[str, dict[str, Any]]:
    with zipfile.ZipFile(DATA) as z:
        return {d["id"]: d for d in json.loads(z.read(member))}


@pytest.fixture(scope="module")
def npm() -> dict[str, dict[str, Any]]:
    return _records("npm.json")


@pytest.mark.parametrize(("word", "level"), [
    ("CRITICAL", "CRITICAL"), ("HIGH", "HIGH"), ("MODERATE", "MEDIUM"), ("moderate", "MEDIUM"), ("LOW", "LOW"),
    ("Important", "HIGH"), ("medium", "MEDIUM"), ("negligible", "LOW"), ("unimportant", "LOW"),
    ("low**", "LOW"), ("high", "HIGH"), ("not yet assigned", ""), ("untriaged", ""), ("end-of-life", ""),
    ("", ""), ("whatever", ""),
])
def test_vendor_words(word: str, level: str) -> None:
    assert vendor_level(word) == level


@pytest.mark.parametrize(("vector", "level", "score", "version"), [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CRITICAL", 9.8, "3.1"),
    ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "HIGH", 7.5, "3.0"),
    ("CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:N/I:N/A:L", "LOW", 2.6, "3.1"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "LOW", 0.0, "3.1"),  # "None": rated, harmless
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "CRITICAL", 9.3, "4.0"),
    ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "HIGH", 7.5, "2.0"),
    ("AV:N/AC:L/Au:N/C:P/I:N/A:N", "MEDIUM", 5.0, "2.0"),
    ("AV:N/AC:H/Au:N/C:P/I:N/A:N", "LOW", 2.6, "2.0"),
    ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", "HIGH", 7.5, "2.0"),
])
def test_cvss_ratings(vector: str, level: str, score: float, version: str) -> None:
    rating = cvss_rating(vector)
    assert rating is not None
    assert (rating.level, rating.score, rating.version) == (level, score, version)


@pytest.mark.parametrize("vector", ["garbage", "CVSS:3.1/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "CVSS:9.9/AV:N", "AV:N/AC:L", "", "CVSS:4.0/AV:N"])
def test_bad_vectors_are_no_rating(vector: str) -> None:
    assert cvss_rating(vector) is None
    assert assess(Advisory("X-1", severity=[SeverityScore("CVSS_V3", vector)])) == Severity("UNKNOWN")


def test_v3_is_preferred_to_v4_and_v2() -> None:
    scores = [SeverityScore("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
              SeverityScore("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
              SeverityScore("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:N/I:N/A:L")]
    best = best_cvss(scores)
    assert best is not None and best.version == "3.1"
    best = best_cvss(scores[:2])
    assert best is not None and best.version == "4.0"
    best = best_cvss(scores[:1])
    assert best is not None and best.version == "2.0"


def test_ghsa_vendor_rating_keeps_the_cvss(npm: dict[str, dict[str, Any]]) -> None:
    # GHSA-qw6h-vgh9-j6wx (express): MODERATE, with a v3.1 and a v4.0 vector
    adv = parse_record(npm["GHSA-qw6h-vgh9-j6wx"])
    sev = assess(adv, adv.affected[0])
    assert sev.level == "MEDIUM" and sev.source == "vendor:GHSA"
    assert sev.vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L" and sev.score == 5.0
    # GHSA-x5rq-j2xg-h7qm spells it "moderate"; GHSA-fvqr-27wr-82fm is LOW with no vector at all
    assert assess(parse_record(npm["GHSA-x5rq-j2xg-h7qm"])).level == "MEDIUM"
    low = assess(parse_record(npm["GHSA-fvqr-27wr-82fm"]))
    assert (low.level, low.source, low.score) == ("LOW", "vendor:GHSA", None)


def test_cvss_when_no_vendor_rating() -> None:
    pypi = _records("PyPI.json")
    scored = next(d for d in pypi.values() if d.get("severity") and not d.get("withdrawn"))
    adv = parse_record(scored)
    sev = assess(adv, adv.affected[0])
    assert sev.source.startswith("cvss:3.")
    assert sev.vector == cvss_rating(scored["severity"][0]["score"]).vector  # type: ignore[union-attr]
    unscored = next(d for d in pypi.values() if not d.get("severity"))
    assert assess(parse_record(unscored)) == Severity("UNKNOWN")


def test_debian_urgency() -> None:
    # DSA list data: the urgency closes the package line (DSA-746-1, phpgroupware in sarge)
    dsa = parse_record(_records("Debian.json")["DSA-746-1"])
    sarge = next(a for a in dsa.affected if a.ecosystem == "Debian:3.1")
    assert assess(dsa, sarge) == Severity("HIGH", "vendor:Debian")
    # Debian security tracker records (DEBIAN-CVE-*) carry it per release in ecosystem_specific
    record = {
        "id": "DEBIAN-CVE-2023-0286", "modified": "2024-01-01T00:00:00Z", "upstream": ["CVE-2023-0286"],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"}],
        "affected": [
            {"package": {"ecosystem": "Debian:11", "name": "openssl"}, "ecosystem_specific": {"urgency": "low**"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u4"}]}]},
            {"package": {"ecosystem": "Debian:12", "name": "openssl"},
             "ecosystem_specific": {"urgency": "not yet assigned"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.8-1"}]}]},
        ],
    }
    adv = parse_record(record)
    bullseye, bookworm = adv.affected
    vector = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"
    assert assess(adv, bullseye) == Severity("LOW", "vendor:Debian", 7.4, vector)
    assert assess(adv, bookworm) == Severity("HIGH", "cvss:3.1", 7.4, vector)


def test_ubuntu_priority() -> None:
    # The shape of Canonical's OSV CVE records (CVE-2023-0286): a per-release ubuntu_priority
    adv = Advisory("CVE-2023-0286", severity=[SeverityScore("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H")])
    entry = Affected("Ubuntu:22.04:LTS", "openssl", ecosystem_specific={"ubuntu_priority": "high"})
    assert assess(adv, entry).source == "vendor:Ubuntu"
    # ... and OSV.dev's UBUNTU-CVE records: severity type "Ubuntu"
    osv_dev = Advisory("UBUNTU-CVE-2023-0286", severity=[SeverityScore("Ubuntu", "negligible")])
    assert assess(osv_dev) == Severity("LOW", "vendor:Ubuntu")


def test_odd_shapes_never_raise() -> None:
    weird = Advisory("X-2", severity=[SeverityScore("CVSS_V3", None)])  # type: ignore[arg-type]
    weird.database_specific = {"severity": 7}
    assert assess(weird).level == "UNKNOWN"
    assert assess(Advisory("X-3"), Affected("PyPI", "x", ecosystem_specific={"severity": ["HIGH"]})).level == "UNKNOWN"


def test_highest_keeps_a_score() -> None:
    vendor = Severity("HIGH", "vendor:Debian")
    scored = Severity("MEDIUM", "cvss:3.1", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N")
    assert highest([scored, vendor]) == Severity("HIGH", "vendor:Debian", 5.3, scored.vector)
    assert highest([]) == Severity()
    assert highest([Severity(), scored]).level == "MEDIUM"
