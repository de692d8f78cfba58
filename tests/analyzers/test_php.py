"""Composer analyzer: installed.json written by a real Composer (offline, from path repositories),
checked against `composer show` / `composer licenses`; Composer 1's list format built by hand."""

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
from hullscan.analyzers.php import ComposerInstalledAnalyzer
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, Package

ANALYZER = ComposerInstalledAnalyzer()
PATH = "var/www/app/vendor/composer/installed.json"

LOCAL_PACKAGES = {
    "log": {"name": "acme/log", "version": "v1.2.3", "license": "MIT"},
    "util": {
        "name": "acme/util",
        "version": "2.0.0",
        "license": ["Apache-2.0", "GPL-2.0-or-later"],
        "require": {"acme/log": "^1.2"},
    },
    "meta": {"name": "acme/meta", "version": "3.1.0", "type": "metapackage", "license": "(MIT or GPL-3.0+)"},
    "testkit": {"name": "acme/testkit", "version": "0.9.1", "license": "BSD-3-Clause"},
    "unused": {"name": "acme/unused", "version": "1.0.0"},
}
ROOT = {
    "name": "acme/app",
    "repositories": [
        {"type": "path", "url": "../pkgs/*", "options": {"symlink": False}},
        {"packagist.org": False},  # nothing leaves the machine
    ],
    "require": {"acme/util": "^2.0", "acme/meta": "^3.1"},
    "require-dev": {"acme/testkit": "^0.9"},
}


def entry(path: str, size: int = 0) -> FileEntry:
    return FileEntry(path=path, type="f", size=size)


def analyze(data: bytes, path: str = PATH) -> list[Package]:
    assert ANALYZER.claims(path, entry(path, len(data)))
    facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
    return facts.packages if facts else []


def composer(app: Path, *args: str) -> Any:
    env = dict(
        os.environ, COMPOSER_HOME=str(app.parent / "home"), COMPOSER_NO_INTERACTION="1", COMPOSER_ALLOW_SUPERUSER="1"
    )
    proc = subprocess.run(["composer", *args], cwd=app, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--format=json" in args else proc.stdout


@pytest.fixture(scope="session")
def composer_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("composer") is None:
        pytest.skip("composer is not installed (Debian: apt-get install -y composer)")
    root = tmp_path_factory.mktemp("composer")
    for directory, manifest in LOCAL_PACKAGES.items():
        (root / "pkgs" / directory).mkdir(parents=True)
        (root / "pkgs" / directory / "composer.json").write_text(json.dumps(manifest))
    app = root / "app"
    app.mkdir()
    (app / "composer.json").write_text(json.dumps(ROOT))
    composer(app, "install", "--no-progress")
    return app


def test_composer2_installed_json_matches_composer(composer_app: Path) -> None:
    data = (composer_app / "vendor" / "composer" / "installed.json").read_bytes()
    assert isinstance(json.loads(data), dict), "Composer 2 format"
    packages = analyze(data)
    everything = {(p["name"], p["version"]) for p in composer(composer_app, "show", "--format=json")["installed"]}
    prod = {(p["name"], p["version"]) for p in composer(composer_app, "show", "--no-dev", "--format=json")["installed"]}
    assert {(p.name, p.version) for p in packages} == everything
    assert {(p.name, p.version) for p in packages if p.metadata.get("dev") != "true"} == prod
    assert ("acme/log", "v1.2.3") in everything  # the recorded version keeps its "v"
    licenses = composer(composer_app, "licenses", "--format=json")["dependencies"]
    for p in packages:
        if p.name in licenses:  # `composer licenses` lists non-dev packages
            assert p.licenses == normalize_all(licenses[p.name]["license"]), p.name
    by_name = {p.name: p for p in packages}
    log = by_name["acme/log"]
    assert (log.ecosystem, log.purl, log.path) == ("composer", "pkg:composer/acme/log@v1.2.3", PATH)
    assert log.metadata == {"version_normalized": "1.2.3.0"}
    assert by_name["acme/util"].licenses == ["Apache-2.0", "GPL-2.0-or-later"]
    assert by_name["acme/meta"].licenses == ["MIT OR GPL-3.0-or-later"]
    assert by_name["acme/testkit"].metadata["dev"] == "true"


COMPOSER1 = [
    {
        "name": "monolog/monolog",
        "version": "1.25.1",
        "version_normalized": "1.25.1.0",
        "source": {"type": "git", "url": "https://github.com/Seldaek/monolog.git", "reference": "70e65a5"},
        "require": {"php": ">=5.3.0", "psr/log": "~1.0"},
        "time": "2019-09-06T13:49:17+00:00",
        "type": "library",
        "installation-source": "dist",
        "license": ["MIT"],
        "description": "Sends your logs to files, sockets, inboxes, databases and various web services",
    },
    {"name": "psr/log", "version": "1.1.0", "version_normalized": "1.1.0.0", "license": ["MIT"]},
    {"name": "symfony/polyfill-ctype", "version": "v1.12.0", "license": ["MIT"]},
    {"name": "acme/private", "version": "dev-master", "version_normalized": "9999999-dev"},
]


def test_composer1_list_format() -> None:
    packages = analyze(json.dumps(COMPOSER1, indent=4).encode())
    got = {(p.name, p.version, p.purl, tuple(p.licenses)) for p in packages}
    assert got == {
        ("monolog/monolog", "1.25.1", "pkg:composer/monolog/monolog@1.25.1", ("MIT",)),
        ("psr/log", "1.1.0", "pkg:composer/psr/log@1.1.0", ("MIT",)),
        ("symfony/polyfill-ctype", "v1.12.0", "pkg:composer/symfony/polyfill-ctype@v1.12.0", ("MIT",)),
        ("acme/private", "dev-master", "pkg:composer/acme/private@dev-master", ()),
    }
    assert all("dev" not in p.metadata for p in packages)


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("var/www/app/vendor/composer/installed.json", True),
        ("vendor/composer/installed.json", True),
        ("app/myvendor/composer/installed.json", False),
        ("app/vendor/composer/installed.php", False),
        ("app/vendor/composer/installed.json.bak", False),
        ("app/composer.lock", False),
        ("app/vendor/acme/x/composer.json", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert ANALYZER.claims(path, entry(path)) is claimed


def test_claims_regular_files_only_and_cheap() -> None:
    for kind in "dlhcbp":
        assert not ANALYZER.claims(PATH, FileEntry(PATH, kind))
    paths = [f"var/www/app/vendor/acme/p{i}/src/Thing{i}.php" for i in range(2_000)]
    entries = [entry(p) for p in paths]
    claimed, lines = python_lines(lambda: [ANALYZER.claims(p, e) for p, e in zip(paths, entries, strict=True)])
    assert not any(claimed)
    assert lines <= 10 * len(paths)  # a few lines of Python per file, counted rather than timed (2 today)


@pytest.mark.parametrize(
    "item",
    [
        {"name": "noslash", "version": "1.0.0"},
        {"name": "a/b/c", "version": "1.0.0"},
        {"name": "/b", "version": "1.0.0"},
        {"name": "a/", "version": "1.0.0"},
        {"name": "a/b"},
        {"name": "a/b", "version": ""},
        {"name": "a/b", "version": "1 0"},
        {"name": 5, "version": "1.0.0"},
        {"name": "a/b", "version": ["1"]},
        "just a string",
        None,
    ],
)
def test_entries_without_identity_are_skipped(item: Any) -> None:
    data = json.dumps({"packages": [item, {"name": "ok/pkg", "version": "1.0.0", "license": "MIT"}]})
    (pkg,) = analyze(data.encode())
    assert (pkg.name, pkg.licenses) == ("ok/pkg", ["MIT"])
    # ... and said so: nothing is dropped in silence
    facts = ANALYZER.analyze(PATH, entry(PATH, len(data)), io.BytesIO(data.encode()))
    assert facts is not None
    assert [n["code"] for n in facts.hints["notes"]] == ["PACKAGE_UNREADABLE"]


def test_odd_field_types() -> None:
    doc = {
        "packages": [
            {"name": "a/b", "version": "1.0.0", "license": [1, None, "MIT"], "version_normalized": 3},
            {"name": "a/b", "version": "1.0.0"},  # duplicate
            {"name": "c/d", "version": "2.0.0", "license": {"weird": True}},
        ],
        "dev-package-names": "not a list",
    }
    got = {(p.name, tuple(p.licenses), tuple(sorted(p.metadata))) for p in analyze(json.dumps(doc).encode())}
    assert got == {("a/b", ("MIT",), ()), ("c/d", (), ())}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"packages": "nope"}',
        b'{"nothing": []}',
        b"42",
        b"[" * 100_000,
        b"\x1f\x8b\x08\x00" + b"\x00" * 64,
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze(PATH, entry(PATH, len(data)), io.BytesIO(data))


def test_empty_install() -> None:
    assert ANALYZER.analyze(PATH, entry(PATH), io.BytesIO(b'{"packages": [], "dev": true}')) is None
    assert ANALYZER.analyze(PATH, entry(PATH), io.BytesIO(b"[]")) is None


def test_too_large() -> None:
    data = b" " * (ANALYZER.max_size + 1)
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze(PATH, entry(PATH, len(data)), io.BytesIO(data))
