"""SemVer orderings: npm (and crates.io, Hex, OSV SEMVER ranges) proven against node-semver; Go proven
against golang.org/x/mod/semver, the copy vendored in the Go toolchain's own source tree (the module proxy
is not reachable offline), compiled at test time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import InvalidVersion, compare, in_range, is_valid, sort_key

# --- references ----------------------------------------------------------------------------------------
_NODE = r"""
const semver = require("semver");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const out = [];
for (const line of lines) {
  const [a, b] = JSON.parse(line);
  const va = semver.valid(a) !== null, vb = semver.valid(b) !== null;
  out.push(JSON.stringify([va && vb ? semver.compare(a, b) : "E", va, vb]));
}
process.stdout.write(out.join("\n") + "\n");
"""


@pytest.fixture(scope="session")
def node_semver(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment in which `node` can require("semver"): npm's current release installed into a temporary
    directory, or Debian's node-semver package when the registry cannot be reached."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    d = tmp_path_factory.mktemp("npmsemver")
    if shutil.which("npm"):
        r = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--fetch-retries=0",
                "--fetch-timeout=30000",
                "--prefix",
                str(d),
                "semver@7",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if r.returncode == 0 and (d / "node_modules" / "semver").is_dir():
            return dict(os.environ, NODE_PATH=str(d / "node_modules"))
    if Path("/usr/share/nodejs/semver").is_dir():
        return dict(os.environ, NODE_PATH="/usr/share/nodejs")
    pytest.skip("neither npm's semver nor Debian's node-semver is available")


def node_reference(env: dict[str, str], pairs: Sequence[tuple[str, str]]) -> list[list[object]]:
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    out = subprocess.run(["node", "-e", _NODE], input=data, env=env, capture_output=True, text=True, check=True)
    res = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(res) == len(pairs)
    return res


_GO_MAIN = r"""
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"ref/semver"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		p := strings.SplitN(in.Text(), "\t", 2)
		fmt.Fprintf(out, "%d %t %t\n", semver.Compare(p[0], p[1]), semver.IsValid(p[0]), semver.IsValid(p[1]))
	}
}
"""


@pytest.fixture(scope="session")
def go_semver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("go is not installed (make system)")
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    src = Path(goroot) / "src/cmd/vendor/golang.org/x/mod/semver/semver.go"
    if not src.exists():
        pytest.skip("the Go toolchain source has no vendored x/mod/semver")
    d = tmp_path_factory.mktemp("gosemver")
    (d / "semver").mkdir()
    shutil.copy(src, d / "semver" / "semver.go")
    (d / "go.mod").write_text("module ref\n\ngo 1.19\n")
    (d / "main.go").write_text(_GO_MAIN)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GO111MODULE="on")
    subprocess.run(
        ["go", "build", "-o", str(d / "semvercmp"), "."], cwd=d, env=env, check=True, capture_output=True, timeout=300
    )
    return d / "semvercmp"


def go_reference(binary: Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, bool, bool]]:
    data = "".join(f"{a}\t{b}\n" for a, b in pairs)
    out = subprocess.run([str(binary)], input=data, capture_output=True, text=True, check=True).stdout.splitlines()
    res = [(int(c), va == "true", vb == "true") for c, va, vb in (line.split() for line in out)]
    assert len(res) == len(pairs)
    return res


# --- generators ----------------------------------------------------------------------------------------
_num = st.text("0123456789", min_size=1, max_size=3)
_ids = st.text("0123456789" * 2 + "abzAZ-" + "." * 3, min_size=1, max_size=12)


def _shape(major: str, minor: str, patch: str, kind: int, pre: str, build: str) -> str:
    """Mostly valid SemVer (kind picks pre-release/build/shorthand/v); leading zeros and empty identifiers
    come out sometimes, so validity is tested too."""
    core = f"{major}.{minor}.{patch}"
    if kind == 0:
        return core
    if kind == 1:
        return f"{core}-{pre}"
    if kind == 2:
        return f"{core}+{build}"
    if kind == 3:
        return f"{core}-{pre}+{build}"
    if kind == 4:
        return f"v{core}-{pre}"
    if kind == 5:
        return f"{major}.{minor}"  # shorthand: Go only
    return f"{core}-{pre.replace('.', '')}"


_version = st.builds(_shape, _num, _num, _num, st.integers(0, 6), _ids, _ids)


def _pair(a: str, b: str, mode: int, extra: str) -> tuple[str, str]:
    if mode == 0:
        return a, b
    if mode == 1:
        return a, a
    if mode == 2:
        return a, a + extra
    if mode == 3:
        return a, a.split("-")[0].split("+")[0]
    return a, a.split("-")[0] + ("-" + b.split("-", 1)[1] if "-" in b else "")


_EXTRAS = [".1", ".0", "-rc.1", "-alpha", "+build.5", ".a", "-0", "1", "a", "-x.7.z.92", "+incompatible"]
pair = st.builds(_pair, _version, _version, st.integers(0, 4), st.sampled_from(_EXTRAS))


def _collect(n_examples: int) -> list[tuple[str, str]]:
    collected: list[tuple[str, str]] = []

    @settings(
        max_examples=n_examples, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    return list(dict.fromkeys(collected))


def test_npm_semver_matches_node_semver(node_semver: dict[str, str]) -> None:
    pairs = _collect(150)
    bad = []
    compared = 0
    for (a, b), (c, va, vb) in zip(pairs, node_reference(node_semver, pairs), strict=True):
        if is_valid("npm", a) != va or is_valid("npm", b) != vb:
            bad.append((a, b, "validity", va, vb))
            continue
        if c == "E":
            continue
        compared += 1
        if compare("npm", a, b) != c:
            bad.append((a, b, compare("npm", a, b), c))
    assert compared >= 3000, compared
    assert not bad, f"{len(bad)} disagreements with node-semver, e.g. {bad[:10]}"


def test_crates_hex_and_semver_ranges_use_the_same_ordering(node_semver: dict[str, str]) -> None:
    pairs = [(a, b) for a, b in _collect(30) if is_valid("npm", a) and is_valid("npm", b)]
    ref = node_reference(node_semver, pairs)
    for (a, b), (c, _, _) in zip(pairs, ref, strict=True):
        assert compare("crates.io", a, b) == c == compare("Hex", a, b)


# Go: pseudo-versions, +incompatible and shorthands on top of the generated pairs
_GO_REAL = [
    "v0.0.0-20191109021931-daa7c04131f5",
    "v0.0.0-20210220033148-5ea612d1eb83",
    "v0.0.0",
    "v0.1.0",
    "v1.2.3-pre.0.20220101000000-abcdefabcdef",
    "v1.2.3-pre",
    "v1.2.3",
    "v1.2.4-0.20220101000000-abcdefabcdef",
    "v1.2.4",
    "v2.0.0+incompatible",
    "v2.0.0",
    "v2.0.1+incompatible",
    "v17.10.0+incompatible",
    "v1",
    "v1.2",
    "v1.2.0",
    "v1.19.8",
    "v1.21.0-rc.2",
    "v1.21.0",
    "v0.0.0-00010101000000-000000000000",
]


def test_go_semver_matches_x_mod_semver(go_semver: Path) -> None:
    pairs = [
        ("v" + a if not a.startswith("v") else a, "v" + b if not b.startswith("v") else b) for a, b in _collect(150)
    ]
    pairs += [(a, b) for a in _GO_REAL for b in _GO_REAL]
    bad = []
    compared = 0
    for (a, b), (c, va, vb) in zip(pairs, go_reference(go_semver, pairs), strict=True):
        if is_valid("Go", a) != va or is_valid("Go", b) != vb:
            bad.append((a, b, "validity", va, vb))
            continue
        if not (va and vb):
            continue
        compared += 1
        ours = compare("Go", a, b)
        if ours != c:
            bad.append((a, b, ours, c))
        # OSV writes Go versions without the "v"
        assert compare("Go", a[1:], b[1:]) == ours
    assert compared >= 3000, compared
    assert not bad, f"{len(bad)} disagreements with x/mod/semver, e.g. {bad[:10]}"


@pytest.mark.parametrize(
    "ordered",
    [
        # semver.org section 11
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ],
        ["1.0.0-0", "1.0.0-1", "1.0.0-10", "1.0.0-a", "1.0.0-a.0", "1.0.0"],
    ],
)
def test_documented_semver_orderings(ordered: list[str]) -> None:
    for eco in ("npm", "crates.io", "Go"):
        for i, a in enumerate(ordered):
            for j, b in enumerate(ordered):
                assert compare(eco, a, b) == (i > j) - (i < j), (eco, a, b)


def test_build_metadata_and_v_prefix() -> None:
    assert compare("npm", "1.0.0+build.1", "1.0.0+build.2") == 0
    assert compare("npm", "v1.2.3", "1.2.3") == 0
    assert compare("Go", "2.0.0+incompatible", "2.0.0") == 0
    assert compare("Go", "v1.2", "1.2.0") == 0
    with pytest.raises(InvalidVersion):
        sort_key("npm", "1.2")  # npm needs all three numbers
    with pytest.raises(InvalidVersion):
        sort_key("npm", "01.2.3")
    with pytest.raises(InvalidVersion):
        sort_key("Go", "v1.2-pre")  # no shorthand with a pre-release


def test_go_toolchain_versions_read_as_stdlib_versions() -> None:
    assert compare("Go", "go1.19.8", "1.19.8") == 0
    assert compare("Go", "go1.20", "1.20.0") == 0
    assert compare("Go", "go1.21rc2", "1.21.0-rc.2") == 0
    assert compare("Go", "go1.21rc2", "1.21.0") == -1
    assert in_range("Go", "go1.19.8", [("introduced", "0"), ("fixed", "1.19.9")], "SEMVER")
    with pytest.raises(InvalidVersion):
        sort_key("Go", "gopher")
