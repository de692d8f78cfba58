"""Node analyzers against real npm installs and real lock files written by npm, yarn and pnpm."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.support.budget import python_lines

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.node import NodeLockfileAnalyzer, NodePackageAnalyzer, is_installed_manifest
from hullscan.model import FileEntry, Package

PACKAGES = NodePackageAnalyzer()
LOCKS = NodeLockfileAnalyzer()

MANIFEST = {
    "name": "app",
    "version": "1.0.0",
    "private": True,
    "dependencies": {
        "lodash": "4.17.15",
        "minimist": "1.2.0",
        "@babel/code-frame": "7.0.0",  # scoped, pulls chalk@2 which nests under @babel/highlight
        "chalk": "4.1.2",
        "my-lodash": "npm:lodash@4.17.21",  # an alias: installed as my-lodash, the package is lodash
    },
    "devDependencies": {"is-number": "7.0.0", "rimraf": "2.7.1"},  # rimraf brings a dev-only tree
}
NETWORK_MARKERS = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
    "network",
    "getaddrinfo",
    "socket hang up",
)


def run_tool(cmd: list[str], cwd: Path) -> str:
    """Run an npm-family command; skip the test when the registry cannot be reached."""
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if any(marker in output for marker in NETWORK_MARKERS):
            pytest.skip(f"npm registry unreachable: {' '.join(cmd[:3])}: {output[-300:]}")
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{output[-3000:]}")
    return proc.stdout


def entry(path: str, size: int = 0) -> FileEntry:
    return FileEntry(path=path, type="f", size=size)


def analyze_bytes(analyzer: Any, path: str, data: bytes) -> list[Package]:
    assert analyzer.claims(path, entry(path, len(data))), path
    facts = analyzer.analyze(path, entry(path, len(data)), io.BytesIO(data))
    return facts.packages if facts else []


def scan_tree(analyzer: Any, root: Path) -> list[Package]:
    """Offer every regular file under root to the analyzer as the walker would (relative paths)."""
    found: list[Package] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath, name)
            if full.is_symlink():
                continue
            rel = full.relative_to(root).as_posix()
            e = entry(rel, full.stat().st_size)
            if analyzer.claims(rel, e):
                with full.open("rb") as fh:
                    facts = analyzer.analyze(rel, e, fh)
                if facts:
                    found.extend(facts.packages)
    return found


@pytest.fixture(scope="session")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed")
    root = tmp_path_factory.mktemp("npm")
    app = root / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps(MANIFEST))
    run_tool(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], app)
    oracle = json.loads(run_tool(["npm", "query", "*"], app))
    installed = {(n["location"], n["name"], n["version"]) for n in oracle if n.get("location")}
    dev = {(n["name"], n["version"]) for n in oracle if n.get("location") and n.get("dev")}
    return {"root": root, "app": app, "installed": installed, "dev": dev}


@pytest.fixture(scope="session")
def node_tools(npm_project: dict[str, Any]) -> Path:
    tools: Path = npm_project["root"] / "tools"
    tools.mkdir()
    run_tool(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
            str(tools),
            "yarn@1.22.22",
            "pnpm@9.15.9",
            "pnpm8@npm:pnpm@8.15.9",
            "pnpm7@npm:pnpm@7.33.7",
        ],
        npm_project["root"],
    )
    return tools / "node_modules"


def lock_project(npm_project: dict[str, Any], name: str) -> Path:
    project: Path = npm_project["root"] / name
    project.mkdir()
    (project / "package.json").write_text(json.dumps(MANIFEST))
    return project


def expected_pairs(npm_project: dict[str, Any]) -> set[tuple[str, str]]:
    return {(name, version) for _loc, name, version in npm_project["installed"]}


# ---- installed packages ----------------------------------------------------------------------------


def test_installed_packages_match_npm_query(npm_project: dict[str, Any]) -> None:
    app: Path = npm_project["app"]
    found = scan_tree(PACKAGES, app)
    got = {(p.path.removesuffix("/package.json"), p.name, p.version) for p in found}
    assert got == npm_project["installed"]
    assert len(found) == len(got)
    # The nested copy and the alias are there, with their real names.
    assert ("node_modules/@babel/highlight/node_modules/chalk", "chalk", "2.4.2") in got
    assert ("node_modules/my-lodash", "lodash", "4.17.21") in got
    # The application's own package.json is not a package of the image.
    assert all(p.path != "package.json" for p in found)


def test_installed_package_fields(npm_project: dict[str, Any]) -> None:
    by_path = {p.path: p for p in scan_tree(PACKAGES, npm_project["app"])}
    frame = by_path["node_modules/@babel/code-frame/package.json"]
    assert frame.ecosystem == "npm"
    assert frame.purl == "pkg:npm/%40babel/code-frame@7.0.0"
    assert frame.licenses == ["MIT"]
    assert "source" not in frame.metadata
    assert by_path["node_modules/lodash/package.json"].purl == "pkg:npm/lodash@4.17.15"
    assert by_path["node_modules/picocolors/package.json"].licenses == ["ISC"]
    # The licence each package.json declares, as npm's own metadata in the lock file records it.
    lock = json.loads((npm_project["app"] / "package-lock.json").read_text())
    for path, pkg in by_path.items():
        declared = lock["packages"][path.removesuffix("/package.json")].get("license")
        if isinstance(declared, str):
            assert pkg.licenses == [declared], path


# ---- lock files ------------------------------------------------------------------------------------


def check_lockfile(npm_project: dict[str, Any], project: Path, filename: str, *, has_dev: bool) -> None:
    packages = analyze_bytes(LOCKS, filename, (project / filename).read_bytes())
    pairs = {(p.name, p.version) for p in packages}
    assert pairs == expected_pairs(npm_project)
    assert len(pairs) == len(packages), "one package per name@version"
    assert all(p.metadata["source"] == "lockfile" and p.path == filename for p in packages)
    dev = {(p.name, p.version) for p in packages if p.metadata.get("dev") == "true"}
    assert dev == (npm_project["dev"] if has_dev else set())
    for p in packages:
        assert p.purl.startswith("pkg:npm/") and p.purl.endswith("@" + p.version)


def test_package_lock_v3_from_install(npm_project: dict[str, Any]) -> None:
    app: Path = npm_project["app"]
    assert json.loads((app / "package-lock.json").read_text())["lockfileVersion"] == 3
    check_lockfile(npm_project, app, "package-lock.json", has_dev=True)
    packages = analyze_bytes(LOCKS, "package-lock.json", (app / "package-lock.json").read_bytes())
    assert {p.name: p.licenses for p in packages}["picocolors"] == ["ISC"]


@pytest.mark.parametrize("version", [1, 2])
def test_package_lock_v1_v2(npm_project: dict[str, Any], version: int) -> None:
    project = lock_project(npm_project, f"lock-v{version}")
    run_tool(
        ["npm", "install", "--package-lock-only", f"--lockfile-version={version}", "--no-audit", "--no-fund"],
        project,
    )
    assert json.loads((project / "package-lock.json").read_text())["lockfileVersion"] == version
    check_lockfile(npm_project, project, "package-lock.json", has_dev=True)


def test_yarn_classic_lock(npm_project: dict[str, Any], node_tools: Path) -> None:
    project = lock_project(npm_project, "yarn")
    run_tool(
        [
            str(node_tools / ".bin" / "yarn"),
            "install",
            "--registry",
            "https://registry.npmjs.org",
            "--ignore-scripts",
            "--no-progress",
            "--non-interactive",
        ],
        project,
    )
    assert "# yarn lockfile v1" in (project / "yarn.lock").read_text()
    check_lockfile(npm_project, project, "yarn.lock", has_dev=False)  # yarn v1 does not record dev


@pytest.mark.parametrize(("tool", "lock_version"), [("pnpm", "9.0"), ("pnpm8", "6.0"), ("pnpm7", "5.4")])
def test_pnpm_lock(npm_project: dict[str, Any], node_tools: Path, tool: str, lock_version: str) -> None:
    project = lock_project(npm_project, tool)
    script = node_tools / tool / "bin" / "pnpm.cjs"
    run_tool(["node", str(script), "install", "--lockfile-only", "--ignore-scripts"], project)
    assert f"lockfileVersion: {lock_version}" in (project / "pnpm-lock.yaml").read_text().replace("'", "")
    check_lockfile(npm_project, project, "pnpm-lock.yaml", has_dev=True)


# ---- claims ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("node_modules/x/package.json", True),
        ("usr/lib/node_modules/npm/package.json", True),
        ("app/node_modules/@scope/x/package.json", True),
        ("node_modules/a/node_modules/b/package.json", True),
        ("node_modules/a/node_modules/@s/b/package.json", True),
        ("node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json", True),
        ("node_modules/x/test/fixtures/package.json", False),
        ("node_modules/x/lib/package.json", False),
        ("node_modules/@scope/package.json", False),
        ("node_modules/@scope/x/y/package.json", False),
        ("node_modules/.bin/package.json", False),
        ("node_modules/.pnpm/node_modules/package.json", False),
        ("node_modules/package.json", False),
        ("package.json", False),
        ("app/package.json", False),
        ("my_node_modules/x/package.json", False),
        ("node_modules/x/package.json.bak", False),
        ("node_modules/x/Package.json", False),
    ],
)
def test_package_claims(path: str, claimed: bool) -> None:
    assert PACKAGES.claims(path, entry(path)) is claimed
    assert is_installed_manifest(path) is claimed or not path.endswith("/package.json")


def test_package_claims_only_regular_files() -> None:
    for kind in "dlhcbp":
        assert not PACKAGES.claims("node_modules/x/package.json", FileEntry("x", kind))
        assert not LOCKS.claims("app/package-lock.json", FileEntry("x", kind))


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("app/package-lock.json", True),
        ("package-lock.json", True),
        ("srv/app/yarn.lock", True),
        ("srv/app/pnpm-lock.yaml", True),
        ("app/npm-shrinkwrap.json", True),
        ("app/node_modules/x/yarn.lock", False),  # shipped by a dependency: not this image's install
        ("app/node_modules/.package-lock.json", False),  # duplicates node_modules itself
        ("app/yarn.lock.orig", False),
        ("app/my-package-lock.json", False),
        ("app/pnpm-lock.yml", False),
    ],
)
def test_lockfile_claims(path: str, claimed: bool) -> None:
    assert LOCKS.claims(path, entry(path)) is claimed


def test_claims_are_cheap() -> None:
    paths = (
        [f"usr/lib/python3/dist-packages/pkg{i}/module{i}.py" for i in range(1_000)]
        + [f"app/node_modules/pkg{i}/lib/index.js" for i in range(1_000)]
        + [f"app/node_modules/pkg{i}/package.json" for i in range(200)]
    )
    entries = [entry(p) for p in paths]
    hits, lines = python_lines(
        lambda: sum(PACKAGES.claims(p, e) + LOCKS.claims(p, e) for p, e in zip(paths, entries, strict=True)))
    assert hits == 200
    assert lines <= 15 * len(paths)  # both analyzers, a few lines of Python per file, counted (7 today)


# ---- package.json details and hostile input --------------------------------------------------------


def pkg_json(doc: object, path: str = "node_modules/x/package.json") -> list[Package]:
    return analyze_bytes(PACKAGES, path, json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("doc", "licenses"),
    [
        ({"license": "MIT"}, ["MIT"]),
        ({"license": "(MIT OR Apache-2.0)"}, ["MIT OR Apache-2.0"]),
        ({"license": {"type": "BSD-3-Clause", "url": "http://x"}}, ["BSD-3-Clause"]),
        ({"licenses": [{"type": "MIT", "url": "u"}, {"type": "Apache-2.0"}]}, ["MIT", "Apache-2.0"]),
        ({"licenses": ["ISC"]}, ["ISC"]),
        ({"licenses": {"type": "MIT"}}, ["MIT"]),
        ({"license": ["MIT", {"type": "ISC"}]}, ["MIT", "ISC"]),
        ({"license": "SEE LICENSE IN LICENSE.md"}, ["SEE LICENSE IN LICENSE.md"]),
        ({"license": 7, "licenses": [None, 3, {"type": 5}]}, []),
        ({}, []),
    ],
)
def test_package_json_licenses(doc: dict[str, Any], licenses: list[str]) -> None:
    (pkg,) = pkg_json({"name": "x", "version": "1.0.0", **doc})
    assert pkg.licenses == licenses


def test_package_json_scoped_purl() -> None:
    (pkg,) = pkg_json({"name": "@types/node", "version": "20.1.0"}, "node_modules/@types/node/package.json")
    assert (pkg.name, pkg.version, pkg.purl) == ("@types/node", "20.1.0", "pkg:npm/%40types/node@20.1.0")


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "x"},
        {"version": "1.0.0"},
        {"name": "", "version": "1.0.0"},
        {"name": "x", "version": ""},
        {"name": ["x"], "version": "1.0.0"},
        {"name": "x", "version": {"v": 1}},
        {"name": "x" * 5000, "version": "1.0.0"},
        {"name": "x\ny", "version": "1.0.0"},
        {"name": "@scope/", "version": "1.0.0"},
        {"name": "/x", "version": "1.0.0"},
    ],
)
def test_package_json_without_identity_is_not_reported_but_said(doc: dict[str, Any]) -> None:
    # Not a package, but not dropped in silence either: the walker turns the failure into a note.
    with pytest.raises(AnalyzerFailure, match="not reported"):
        pkg_json(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"just a string"',
        b"\xff\xfe\x00\x01garbage",
        b"{" * 100_000 + b"}" * 100_000,
        b"[" * 100_000,
        b'{"name": "x", "version": "1.0.0"',
    ],
)
def test_package_json_malformed(data: bytes) -> None:
    path = "node_modules/x/package.json"
    with pytest.raises(AnalyzerFailure):
        PACKAGES.analyze(path, entry(path, len(data)), io.BytesIO(data))


def test_package_json_too_large() -> None:
    path = "node_modules/x/package.json"
    data = b" " * (PACKAGES.max_size + 1)
    with pytest.raises(AnalyzerFailure):
        PACKAGES.analyze(path, entry(path, len(data)), io.BytesIO(data))


def test_package_json_bom_and_odd_bytes() -> None:
    data = b"\xef\xbb\xbf" + json.dumps({"name": "x", "version": "1.0.0", "description": "caf\xe9"}).encode()
    data = data.replace(b"caf\\u00e9", b"caf\xe9")  # a stray Latin-1 byte
    (pkg,) = analyze_bytes(PACKAGES, "node_modules/x/package.json", data)
    assert (pkg.name, pkg.version) == ("x", "1.0.0")


# ---- lock file details and hostile input -----------------------------------------------------------


def lock(path: str, text: str) -> list[Package]:
    return analyze_bytes(LOCKS, path, text.encode())


def test_package_lock_v1_aliases_links_and_nesting() -> None:
    doc = {
        "lockfileVersion": 1,
        "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0", "dev": True}}},
            "b": {"version": "2.0.0"},
            "alias": {"version": "npm:@scope/real@3.0.0"},
            "gitdep": {"version": "git+https://example.invalid/x.git#abc"},
            "local": {"version": "file:../local"},
            "weird": "not an object",
            "noversion": {},
        },
    }
    got = {(p.name, p.version, p.metadata.get("dev")) for p in lock("package-lock.json", json.dumps(doc))}
    assert got == {("a", "1.0.0", None), ("b", "2.0.0", None), ("@scope/real", "3.0.0", None)}


def test_package_lock_v2_links_workspaces_and_aliases() -> None:
    doc = {
        "lockfileVersion": 2,
        "packages": {
            "": {"name": "root", "version": "1.0.0"},
            "packages/ws": {"name": "ws", "version": "0.1.0"},
            "node_modules/ws": {"resolved": "packages/ws", "link": True},
            "node_modules/alias": {"name": "real", "version": "1.2.3", "license": "MIT"},
            "node_modules/a/node_modules/@s/b": {"version": "2.0.0", "dev": True, "devOptional": True},
            "node_modules/c": {"version": "3.0.0", "devOptional": True},
            "node_modules/bad": ["x"],
            7: {"version": "1.0.0"},
        },
        "dependencies": {"ignored": {"version": "9.9.9"}},
    }
    got = {(p.name, p.version, p.metadata.get("dev")) for p in lock("package-lock.json", json.dumps(doc))}
    assert got == {("real", "1.2.3", None), ("@s/b", "2.0.0", "true"), ("c", "3.0.0", None)}


def test_dev_only_when_every_occurrence_is_dev() -> None:
    doc = {
        "lockfileVersion": 3,
        "packages": {
            "node_modules/x": {"version": "1.0.0", "dev": True},
            "node_modules/y/node_modules/x": {"version": "1.0.0"},
            "node_modules/z": {"version": "1.0.0", "dev": True},
        },
    }
    got = {(p.name, p.metadata.get("dev")) for p in lock("package-lock.json", json.dumps(doc))}
    assert got == {("x", None), ("z", "true")}


YARN_CLASSIC = """\
# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.12.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.12.13.tgz#abc"
  integrity sha512-xyz
  dependencies:
    "@babel/highlight" "^7.10.4"

lodash@^4.17.15, lodash@^4.17.19:
  version "4.17.21"

"my-lodash@npm:lodash@4.17.15":
  version "4.17.15"

"@scope/alias@npm:@other/real@^1":
  version "1.0.1"

nover@^1:
  resolved "x"

garbage line without colon
  version "6.6.6"
"""


def test_yarn_classic_format() -> None:
    got = {(p.name, p.version) for p in lock("yarn.lock", YARN_CLASSIC)}
    assert got == {
        ("@babel/code-frame", "7.12.13"),
        ("lodash", "4.17.21"),
        ("lodash", "4.17.15"),
        ("@other/real", "1.0.1"),
    }


YARN_BERRY = """\
# This file is generated by running "yarn install" inside your project.

__metadata:
  version: 6
  cacheKey: 8

"@babel/code-frame@npm:^7.0.0":
  version: 7.12.13
  resolution: "@babel/code-frame@npm:7.12.13"
  dependencies:
    "@babel/highlight": ^7.10.4
  checksum: abc
  languageName: node
  linkType: hard

"app@workspace:.":
  version: 0.0.0-use.local
  resolution: "app@workspace:."
  languageName: unknown
  linkType: soft

"lodash@npm:^4.17.15, lodash@npm:^4.17.21":
  version: 4.17.21
  resolution: "lodash@npm:4.17.21"

"resolve@patch:resolve@^1.20.0#~builtin<compat/resolve>":
  version: 1.22.1
  resolution: "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>::version=1.22.1"
"""


def test_yarn_berry_format() -> None:
    got = {(p.name, p.version) for p in lock("yarn.lock", YARN_BERRY)}
    assert got == {("@babel/code-frame", "7.12.13"), ("lodash", "4.17.21")}


def test_pnpm_v9_dev_graph() -> None:
    text = """\
lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      a: {specifier: ^1, version: 1.0.0}
      al: {specifier: 'npm:real@^2', version: real@2.0.0}
      loc: {specifier: 'link:../loc', version: link:../loc}
    devDependencies:
      d: {specifier: ^1, version: 1.0.0(a@1.0.0)}
packages:
  a@1.0.0: {resolution: {integrity: x}}
  shared@1.0.0: {resolution: {integrity: x}}
  real@2.0.0: {resolution: {integrity: x}}
  d@1.0.0: {resolution: {integrity: x}}
  devonly@3.0.0: {resolution: {integrity: x}}
  '@s/deep@4.0.0': {resolution: {integrity: x}}
snapshots:
  a@1.0.0:
    dependencies:
      shared: 1.0.0
  real@2.0.0: {}
  d@1.0.0(a@1.0.0):
    dependencies:
      shared: 1.0.0
      devonly: 3.0.0
  devonly@3.0.0:
    optionalDependencies:
      '@s/deep': 4.0.0
"""
    got = {(p.name, p.version, p.metadata.get("dev")) for p in lock("pnpm-lock.yaml", text)}
    assert got == {
        ("a", "1.0.0", None),
        ("shared", "1.0.0", None),
        ("real", "2.0.0", None),
        ("d", "1.0.0", "true"),
        ("devonly", "3.0.0", "true"),
        ("@s/deep", "4.0.0", "true"),
    }


def test_pnpm_v5_and_v6_keys() -> None:
    v5 = """\
lockfileVersion: 5.4
packages:
  /@a/b/1.0.0_c@1.0.0:
    dev: true
  /d/2.0.0: {dev: false}
  /e/3.0.0: {}
  registry.example.com/f/-/f-1.0.0.tgz: {resolution: {tarball: x}}
  github.com/u/r/abcdef: {name: g, version: 0.1.0, dev: true}
"""
    got = {(p.name, p.version, p.metadata.get("dev")) for p in lock("pnpm-lock.yaml", v5)}
    assert got == {("@a/b", "1.0.0", "true"), ("d", "2.0.0", None), ("e", "3.0.0", None), ("g", "0.1.0", "true")}
    v6 = """\
lockfileVersion: '6.0'
packages:
  /@a/b@1.0.0(react@18.2.0):
    dev: true
  /d@2.0.0: {dev: false}
  /nover: {}
"""
    got = {(p.name, p.version, p.metadata.get("dev")) for p in lock("pnpm-lock.yaml", v6)}
    assert got == {("@a/b", "1.0.0", "true"), ("d", "2.0.0", None)}


def billion_laughs() -> str:
    text = "lockfileVersion: '9.0'\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 15):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text + "packages: {'x@1.0.0': {}}\nimporters:\n  .:\n    dependencies: *a14\n"


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,  # PyYAML's C composer would overflow the C stack
        "".join(" " * i + f"k{i}:\n" for i in range(2_000)),
        "key: [unclosed",
        "\x00\x01\x02",
        "- a\n- b\n",
        "just a string",
        "%YAML 9.9\n---\na: 1",
        "!!python/object/apply:os.system ['echo pwned']",  # a list, and nothing is ever constructed
    ],
)
def test_pnpm_malformed(text: str) -> None:
    with pytest.raises(AnalyzerFailure):
        LOCKS.analyze("pnpm-lock.yaml", entry("pnpm-lock.yaml"), io.BytesIO(text.encode()))


@pytest.mark.parametrize(
    "text",
    [
        billion_laughs(),
        "packages: !!python/object/apply:os.system ['echo pwned']\n",
        "packages:\n  ? [complex, key]\n  : {version: 1}\n  /ok/1.0.0: {}\nlockfileVersion: 5",
        "packages: [1, 2]\nlockfileVersion: 9",
        "packages: {'x@1.0.0': 7}\nimporters: [1]\nsnapshots: 3\nlockfileVersion: '9.0'",
        "a: 1\n---\nb: 2\n",
        "lockfileVersion: {weird: 1}\npackages: {'/q/1.0.0': {}}",
    ],
)
@pytest.mark.timeout(120)  # a hang guard, not a speed test: each case takes milliseconds
def test_pnpm_hostile_yields_partial_results(text: str) -> None:
    facts = LOCKS.analyze("pnpm-lock.yaml", entry("pnpm-lock.yaml"), io.BytesIO(text.encode()))
    for p in facts.packages if facts else []:
        assert p.name and p.version


def test_pnpm_graph_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph too large to follow leaves dev marks out rather than running unbounded."""
    import hullscan.analyzers.node as node

    monkeypatch.setattr(node, "_MAX_STEPS", 3)
    text = """\
lockfileVersion: '9.0'
importers:
  .:
    devDependencies: {a: {version: 1.0.0}, b: {version: 1.0.0}, c: {version: 1.0.0}, d: {version: 1.0.0}}
packages: {a@1.0.0: {}, b@1.0.0: {}, c@1.0.0: {}, d@1.0.0: {}}
snapshots: {a@1.0.0: {}, b@1.0.0: {}, c@1.0.0: {}, d@1.0.0: {}}
"""
    packages = lock("pnpm-lock.yaml", text)
    assert len(packages) == 4
    assert all("dev" not in p.metadata for p in packages)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("package-lock.json", b"[]"),
        ("package-lock.json", b"{" * 50_000),
        ("package-lock.json", b"\x89PNG\r\n\x1a\n"),
        ("yarn.lock", b"__metadata:\n  version: [unclosed\n"),
    ],
)
def test_lockfile_malformed(path: str, data: bytes) -> None:
    with pytest.raises(AnalyzerFailure):
        LOCKS.analyze(path, entry(path, len(data)), io.BytesIO(data))


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("package-lock.json", b'{"packages": 5, "dependencies": [1]}'),
        ("yarn.lock", b'\x00\xff binary \x00 junk\n  version "1"\n'),
        ("yarn.lock", b""),
    ],
)
def test_lockfile_junk_gives_nothing(path: str, data: bytes) -> None:
    assert LOCKS.analyze(path, entry(path, len(data)), io.BytesIO(data)) is None


def test_lockfile_entry_without_a_registry_version_is_a_note() -> None:
    data = b'{"dependencies": {"a": {"version": 5}, "b": {"version": "git+https://example.invalid/b.git"}}}'
    facts = LOCKS.analyze("package-lock.json", entry("package-lock.json", len(data)), io.BytesIO(data))
    assert facts is not None and facts.packages == []
    (note,) = facts.hints["notes"]
    assert note["code"] == "LOCKFILE_ENTRY_SKIPPED" and "2 entries" in note["message"]


# ---- lock files read whole (real lock files, see tests/fixtures/inventory/PROVENANCE.md) ---------------------

INVENTORY = Path(__file__).parent.parent / "fixtures" / "inventory"


def test_pnpm_lock_with_several_documents_is_read_whole() -> None:
    """pnpm 12 writes its own pin as a first document; the project's dependencies are in the second. Before,
    only the first was read: the report held pnpm and none of the project's dependencies."""
    data = (INVENTORY / "pnpm-multi-doc/pnpm-lock.yaml").read_bytes()
    facts = LOCKS.analyze("app/pnpm-lock.yaml", entry("app/pnpm-lock.yaml", len(data)), io.BytesIO(data))
    assert facts is not None
    got = {(p.name, p.version): p.dev for p in facts.packages}
    assert got[("minimist", "1.2.0")] is False
    # the package manager's own entries are reported too, as development dependencies users can filter out
    assert got[("pnpm", "12.0.0-rc.3")] is True and got[("@pnpm/exe.linux-x64", "12.0.0-rc.3")] is True
    assert all(p.method == "lock-file" for p in facts.packages)


def test_yarn_v1_alias_reports_the_installed_package() -> None:
    """yarn 1.22.22's lock file for `"my-ms": "npm:ms@2.1.3"` and `"old-number": "npm:is-number@^6.0.0"`:
    the packages installed are ms and is-number, never the alias names."""
    data = (INVENTORY / "yarn-v1-alias/yarn.lock").read_bytes()
    facts = LOCKS.analyze("app/yarn.lock", entry("app/yarn.lock", len(data)), io.BytesIO(data))
    assert facts is not None
    assert sorted((p.name, p.version) for p in facts.packages) == [
        ("is-number", "6.0.0"), ("is-number", "7.0.0"), ("ms", "2.1.3"), ("once", "1.4.0"), ("wrappy", "1.0.2")]
    assert {p.purl for p in facts.packages if p.name == "ms"} == {"pkg:npm/ms@2.1.3"}
