"""apk ordering. apk-tools itself is not packaged for Debian; the references here are:

* apk-tools' own test table (``test/version.data``), as shipped inside Debian's
  golang-github-knqyf263-go-apk-version-dev (``version_testcase.go``), read at test time;
* that Go library (a line-by-line port of apk-tools' ``version.c``, used by Trivy), compiled offline from
  the Debian package and run on batches of hypothesis-generated valid versions and of every version in
  Alpine's secdb (../shared/vulndata/secdb);
* hand-written orderings from the apk-tools rules.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import InvalidVersion, compare, is_valid, sort_key

ECO = "Alpine:v3.18"
GO_APK = Path("/usr/share/gocode/src/github.com/knqyf263/go-apk-version")
SECDB = Path("/work/shared/vulndata/secdb")

_MAIN = r"""
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	version "github.com/knqyf263/go-apk-version"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		p := strings.SplitN(in.Text(), "\t", 2)
		a, b := version.Version(p[0]), version.Version(p[1])
		fmt.Fprintf(out, "%d %t %t\n", a.Compare(b), version.Valid(p[0]), version.Valid(p[1]))
	}
}
"""


@pytest.fixture(scope="session")
def go_apk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None or not (GO_APK / "version.go").exists():
        pytest.skip("go or golang-github-knqyf263-go-apk-version-dev is not installed (make system)")
    d = tmp_path_factory.mktemp("goapk")
    (d / "main.go").write_text(_MAIN)
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="", GOPROXY="off")
    env.setdefault("GOCACHE", str(d / "cache"))
    subprocess.run(
        ["go", "build", "-o", str(d / "apkcmp"), str(d / "main.go")],
        cwd=d,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return d / "apkcmp"


def go_reference(binary: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, bool, bool]]:
    data = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run([str(binary)], input=data, capture_output=True, text=True, check=True).stdout.splitlines()
    res = []
    for line in out:
        c, va, vb = line.split()
        res.append((int(c), va == "true", vb == "true"))
    assert len(res) == len(pairs)
    return res


def disagreements(binary: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, object, object]]:
    bad: list[tuple[str, str, object, object]] = []
    for (a, b), (c, va, vb) in zip(pairs, go_reference(binary, pairs), strict=True):
        assert va and vb, (a, b, "the generator only makes valid versions")
        ours = compare(ECO, a, b)
        if ours != c:
            bad.append((a, b, ours, c))
    return bad


# --- valid apk versions by construction, from cheap text draws ----------------------------------------
_SUFFIX_OF = dict(zip("ABCDEFGHI", ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"], strict=True))


def _shape(first: str, rest: str, letter: str, suffixes: str, rev: str) -> str:
    """digits{.digits}[letter]{_suffix[digits]}[-rdigits] out of the drawn pieces."""
    out = first + "".join("." + part for part in rest.split(".") if part)
    out += letter
    in_suffix = False
    for c in suffixes:
        if c in _SUFFIX_OF:
            out += "_" + _SUFFIX_OF[c]
            in_suffix = True
        elif in_suffix:  # a digit: the suffix's number
            out += c
    if rev:
        out += "-r" + rev
    return out


version = st.builds(
    _shape,
    st.text("0123456789", min_size=1, max_size=4),
    st.text("0123456789" + "." * 4, max_size=12),
    st.text("abcpz", max_size=1),
    st.text("ABCDEFGHI0123", max_size=5),
    st.text("0123456789", max_size=3),
)


def _pair(a: str, b: str, mode: int, extra: str) -> tuple[str, str]:
    base, _, rev = a.partition("-r")
    rev_part = "-r" + rev if rev else ""
    if mode == 0:
        return a, b
    if mode == 1:
        return a, a
    if mode == 2:  # the same version with one more piece
        return a, base + extra + rev_part
    if mode == 3:  # the same version, another revision
        return a, base + "-r" + str(len(b))
    # shared prefix; no trailing "." or "_" (apk-tools reads one as a zero token, go-apk-version rejects it)
    return a, (base.rstrip("0123456789") + b.partition("-r")[0].lstrip("0123456789")[:3]).rstrip("._") + rev_part


pair = st.builds(
    _pair, version, version, st.integers(0, 4), st.sampled_from(["_rc1", "_p1", "a", ".0", ".1", "_alpha", "_git"])
)


def test_apk_ordering_matches_go_apk_version_on_hypothesis_pairs(go_apk: Path) -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = [p for p in dict.fromkeys(collected) if is_valid(ECO, p[0]) and is_valid(ECO, p[1])]
    assert len(pairs) >= 5000, len(pairs)
    bad = disagreements(go_apk, pairs)
    assert not bad, f"{len(bad)} of {len(pairs)} pairs disagree with go-apk-version, e.g. {bad[:10]}"


def secdb_versions() -> list[str]:
    found: set[str] = set()
    for path in sorted(SECDB.glob("v*/*.json")):
        data = json.loads(path.read_text())
        for entry in data.get("packages") or []:
            found.update((entry.get("pkg", {}).get("secfixes") or {}).keys())
    found.discard("0")
    return sorted(found)


@pytest.mark.skipif(not SECDB.exists(), reason="../shared/vulndata is not present")
def test_apk_ordering_matches_go_apk_version_on_secdb_versions(go_apk: Path) -> None:
    versions = secdb_versions()
    valid = [v for v in versions if is_valid(ECO, v)]
    invalid = sorted(set(versions) - set(valid))
    assert len(valid) > 1200
    # apk-tools' grammar rejects only these four (a "-" not followed by "r"); "6.6.2p1-r0" (letter then
    # digits) and "10.2.22.r0" (an empty dotted part, then a letter) are odd but valid apk versions
    assert invalid == ["1.11-20-r0", "2.7.16-33", "4.10-1-r1", "57-1-r2"]
    ordered = sorted(valid, key=lambda v: sort_key(ECO, v))
    pairs = list(zip(ordered, ordered[1:], strict=False))
    rng = random.Random(5)
    pairs += [(rng.choice(valid), rng.choice(valid)) for _ in range(3000)]
    bad = disagreements(go_apk, pairs)
    assert not bad, bad[:10]


_CASE = re.compile(r'\{"([^"]*)", "([<>=])", "([^"]*)"\}')


@pytest.mark.skipif(not (GO_APK / "version_testcase.go").exists(), reason="go-apk-version source not installed")
def test_apk_tools_version_data_table() -> None:
    """apk-tools' own table of version comparisons."""
    text = (GO_APK / "version_testcase.go").read_text()
    cases = _CASE.findall(text)
    assert len(cases) > 700
    checked = 0
    for a, op, b in cases:
        if not (is_valid(ECO, a) and is_valid(ECO, b)):
            continue  # entries like "1.0bc" that apk itself calls invalid
        checked += 1
        assert compare(ECO, a, b) == {"<": -1, "=": 0, ">": 1}[op], (a, op, b)
    assert checked > 650


@pytest.mark.parametrize(
    "ordered",
    [
        [
            "1.2_alpha",
            "1.2_alpha1",
            "1.2_beta",
            "1.2_pre",
            "1.2_rc",
            "1.2_rc2",
            "1.2",
            "1.2-r0",
            "1.2-r1",
            "1.2_cvs",
            "1.2_svn",
            "1.2_git",
            "1.2_hg",
            "1.2_p",
            "1.2_p1",
            "1.2a",
            "1.2b",
            "1.2.1",
        ],
        ["1.0_alpha-r0", "1.0_rc1-r0", "1.0-r0", "1.0-r1", "1.0_p1-r0", "1.0a-r0", "1.0.1-r0"],
        ["1.2.3_rc1-r5", "1.2.3-r0", "1.2.3-r10", "1.2.4_alpha", "1.2.4"],
        ["1.00", "1.0", "1.01", "1.1", "1.10"],  # dotted parts with leading zeros
        ["2.9.10-r0", "2.9.10-r1", "2.9.11-r0", "2.10.0-r0"],
        ["1.1.1d-r2", "1.1.1d-r3", "1.1.1g-r0", "1.1.1i-r0"],  # openssl style letters
    ],
)
def test_documented_apk_orderings(ordered: list[str]) -> None:
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare(ECO, a, b) == (i > j) - (i < j), (a, b)


def test_apk_tools_2_quirk_after_a_zero_component() -> None:
    """apk-tools 2 reads "1.0_alpha" as 1, -1 (leading-zero part), an empty number, then the suffix, while
    "1.0" ends after the -1: the extra token makes the pre-release sort *after* the bare version. Real
    package versions always carry -rN, which hides this; we follow apk-tools (and go-apk-version)."""
    assert compare(ECO, "1.0_alpha", "1.0") == 1
    assert compare(ECO, "1.1_alpha", "1.1") == -1
    assert compare(ECO, "1.0_alpha-r0", "1.0-r0") == -1
    assert compare(ECO, "1..2", "1.2") == -1  # an empty part is a valid 0


@pytest.mark.parametrize("bad", ["", "abc", "1.0bc", "1.0!", "1.0-1", "1.0_foo", "v1.0", "1.0-r1a", "1.0-"])
def test_apk_rejects_invalid_versions(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        sort_key(ECO, bad)


def test_apk_ecosystems_share_the_scheme() -> None:
    for eco in ("Alpine:v3.11", "Wolfi", "Chainguard", "Alpine"):
        assert compare(eco, "1.2.3-r0", "1.2.3_rc1-r9") == 1
