"""Maven ordering, proven against Maven's own ComparableVersion (maven-artifact, Debian's
libmaven3-core-java), whose main() prints how consecutive arguments compare."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import compare, in_range

ECO = "Maven"
_JARS = sorted(
    glob.glob("/usr/share/maven/lib/maven-artifact-*.jar") + glob.glob("/usr/share/java/maven3-artifact.jar")
)
_LINE = re.compile(r"^   (\S+) (<|>|==) (\S+)$")

pytestmark = pytest.mark.skipif(
    not _JARS or shutil.which("java") is None, reason="java or maven-artifact is not installed (make system)"
)


def maven_reference(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """ComparableVersion's answer for each pair, in one JVM per batch of pairs."""
    results: list[int] = []
    for start in range(0, len(pairs), 2000):
        batch = pairs[start : start + 2000]
        args = [v for p in batch for v in p]
        out = subprocess.run(
            ["java", "-cp", _JARS[0], "org.apache.maven.artifact.versioning.ComparableVersion", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
        lines = [m.groups() for m in map(_LINE.match, out.splitlines()) if m]
        assert len(lines) == len(args) - 1
        # consecutive comparisons: args[0] vs args[1] is pair 0, args[2] vs args[3] pair 1, ...
        for i in range(0, len(lines), 2):
            a, op, b = lines[i]
            assert (a, b) == batch[i // 2]
            results.append({"<": -1, "==": 0, ">": 1}[op])
    return results


# characters drawn by hypothesis, each standing for a piece of a version (cheap to draw)
_PIECES = {
    **{d: d for d in "0123456789"},
    ".": ".",
    "-": "-",
    "_": "_",
    "A": "alpha",
    "B": "beta",
    "M": "milestone",
    "R": "rc",
    "C": "cr",
    "S": "snapshot",
    "Y": "SNAPSHOT",
    "G": "ga",
    "F": "final",
    "E": "release",
    "P": "sp",
    "X": "foo",
    "Z": "Final",
    "a": "a",
    "b": "b",
    "m": "m",
    "c": "c",
    "x": "x",
}
_text = st.text("".join(_PIECES) + "0123456789..--", min_size=1, max_size=10).map(
    lambda s: "".join(_PIECES[c] for c in s)
)
_EXTRAS = ["-SNAPSHOT", ".0", "-1", "-sp1", "-alpha-1", ".Final", "-RC1", "a1", "-0", ".0.0", "-ga", "1"]


def _pair(a: str, b: str, mode: int, extra: str) -> tuple[str, str]:
    if mode == 0:
        return a, b
    if mode == 1:
        return a, a + extra
    if mode == 2:
        return a, a.upper()
    return a, a[: len(a) // 2] + b


pair = st.builds(_pair, _text, _text, st.integers(0, 3), st.sampled_from(_EXTRAS))


def test_maven_ordering_matches_comparable_version() -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=100, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=30, max_size=30, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = [p for p in dict.fromkeys(collected) if p[0] and p[1] and not p[0].startswith("-")]
    pairs += [(a, b) for a in REAL for b in REAL]
    ref = maven_reference(pairs)
    bad = [(a, b, compare(ECO, a, b), r) for (a, b), r in zip(pairs, ref, strict=True) if compare(ECO, a, b) != r]
    assert len(pairs) > 2500
    assert not bad, f"{len(bad)} of {len(pairs)} pairs disagree with ComparableVersion, e.g. {bad[:10]}"


REAL = [
    "2.0-beta9",
    "2.0-rc1",
    "2.0",
    "2.14.1",
    "2.15.0",
    "2.16.0",
    "2.17.0",
    "2.17.1",  # log4j-core
    "2.9.10.8",
    "2.10.0.pr1",
    "2.12.6.1",
    "2.13.4.2",
    "2.13.5",  # jackson-databind
    "5.3.17",
    "5.3.18",
    "5.2.20.RELEASE",
    "5.2.21.RELEASE",  # spring-beans
    "1.33",
    "2.0",
    "1.26",
    "1.9.5",
    "1.10.0",  # snakeyaml, commons-text
    "1.0-SNAPSHOT",
    "1.0-alpha-1",
    "1.0-beta-2",
    "1.0-M1",
    "1.0-RC1",
    "1.0.Final",
    "1.0-sp1",
    "1.0.0",
]


@pytest.mark.parametrize(
    "ordered",
    [
        ["1-alpha", "1-beta", "1-milestone", "1-rc", "1-snapshot", "1", "1-sp", "1-foo", "1.1"],
        ["1.0-alpha1", "1.0-alpha2", "1.0-beta1", "1.0-m1", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0-1", "1.0.1"],
        # an unknown qualifier ("pr" for jackson's pre-releases) sorts after the release, as Maven has it
        ["2.9.10", "2.9.10.1", "2.9.10.8", "2.10.0", "2.10.0.pr1", "2.10.0.1", "2.10.1"],
    ],
)
def test_documented_maven_orderings(ordered: list[str]) -> None:
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare(ECO, a, b) == (i > j) - (i < j), (a, b)


def test_maven_equivalences() -> None:
    for a, b in [
        ("1.0", "1"),
        ("1.0.0", "1"),
        ("1-ga", "1"),
        ("1.Final", "1"),
        ("1-RELEASE", "1"),
        ("1-cr1", "1-rc1"),
        ("1a1", "1-alpha-1"),
        ("1.0-ALPHA1", "1-alpha-1"),
    ]:
        assert compare(ECO, a, b) == 0, (a, b)


def test_log4shell_range() -> None:
    events = [("introduced", "2.0-beta9"), ("fixed", "2.15.0")]
    assert in_range(ECO, "2.14.1", events, "ECOSYSTEM")
    assert in_range(ECO, "2.0-rc1", events, "ECOSYSTEM")
    assert not in_range(ECO, "2.0-beta8", events, "ECOSYSTEM")
    assert not in_range(ECO, "2.15.0", events, "ECOSYSTEM")
