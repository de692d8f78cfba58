"""Python analyzer against real installed distributions, checked against importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from tests.support.budget import python_lines

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.python import PythonAnalyzer, canonical_name
from hullscan.layers.merge import merge
from hullscan.layers.walker import LayerWalker
from hullscan.model import Descriptor, FileEntry, LayerInfo, Package
from hullscan.oci.source import Limits

ANALYZER = PythonAnalyzer()

# Old releases with varied metadata: Metadata-Version 2.0-2.4, License vs License-Expression vs
# classifiers, names with "." and "_" and capitals, a version ("2.2") that differs from the pin.
WHEELS = [
    "requests==2.19.0",
    "urllib3==1.24.1",
    "Django==2.2.0",
    "six==1.16.0",
    "idna==2.7",
    "certifi==2018.4.16",
    "zope.event==4.4",
    "typing_extensions==4.15.0",
    "ruamel.yaml==0.17.21",
    "attrs==25.3.0",
]
NETWORK_MARKERS = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeout",
    "ReadTimeout",
    "Connection refused",
    "No matching distribution found",
    "Could not fetch URL",
)


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if any(marker in output for marker in NETWORK_MARKERS):
            pytest.skip(f"PyPI unreachable: {output[-300:]}")
        raise AssertionError(f"{cmd} failed:\n{output[-3000:]}")


def entry(path: str, size: int = 0) -> FileEntry:
    return FileEntry(path=path, type="f", size=size)


def scan_tree(root: Path) -> list[Package]:
    """The packages the image would report for this directory: walked and merged as a root filesystem is
    (so a RECORD whose METADATA is there yields to it)."""
    with tempfile.TemporaryDirectory() as work:
        facts = LayerWalker([ANALYZER], Limits(), Path(work)).walk_dir(root)
    info = LayerInfo(0, Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "0" * 64, 0), "")
    return merge("dir", [info], [facts]).packages


def importlib_view(path: Path) -> set[tuple[str, str, str]]:
    """(normalised name, version, raw name) of every distribution importlib.metadata finds there."""
    out = set()
    for dist in importlib.metadata.distributions(path=[str(path)]):
        raw = dist.metadata["Name"]
        out.add((canonical_name(raw), dist.version, raw))
    return out


def analyzer_view(packages: list[Package]) -> set[tuple[str, str, str]]:
    return {(p.name, p.version, p.metadata["name_raw"]) for p in packages}


def analyze_text(text: str, path: str = "usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA") -> Package:
    data = text.encode()
    facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
    assert facts is not None
    (pkg,) = facts.packages
    return pkg


@pytest.fixture(scope="session")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site-packages")
    pip("install", "--no-deps", "--only-binary", ":all:", "--target", str(target), *WHEELS)
    return target


SETUP_PY = """\
from setuptools import setup

setup(
    name="Foo.Bar_baz",
    version="1.0.post1",
    license="MIT",
    classifiers=["License :: OSI Approved :: MIT License", "Programming Language :: Python :: 3"],
    py_modules=["foo"],
)
"""


@pytest.fixture(scope="session")
def egg_info_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PKG-INFO written by setuptools' own ``egg_info``, laid out the three ways images hold it:
    a ``*.egg-info`` directory, an egg's ``EGG-INFO`` directory and distutils' single ``*.egg-info`` file.
    """
    pytest.importorskip("setuptools")
    work = tmp_path_factory.mktemp("egg-info")
    project = work / "project"
    project.mkdir()
    (project / "setup.py").write_text(SETUP_PY)
    (project / "foo.py").write_text("")
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    data = (project / "Foo.Bar_baz.egg-info" / "PKG-INFO").read_bytes()
    root = work / "tree"
    (root / "site" / "Foo.Bar_baz.egg-info").mkdir(parents=True)
    (root / "site" / "Foo.Bar_baz.egg-info" / "PKG-INFO").write_bytes(data)
    (root / "eggs" / "Foo.Bar_baz-1.0.post1-py3.11.egg" / "EGG-INFO").mkdir(parents=True)
    (root / "eggs" / "Foo.Bar_baz-1.0.post1-py3.11.egg" / "EGG-INFO" / "PKG-INFO").write_bytes(data)
    (root / "flat").mkdir()
    (root / "flat" / "Foo.Bar_baz-1.0.post1-py3.11.egg-info").write_bytes(data)
    return root


# ---- real data -------------------------------------------------------------------------------------


def test_wheels_match_importlib_metadata(site_packages: Path) -> None:
    packages = scan_tree(site_packages)
    expected = importlib_view(site_packages)
    assert len(expected) == len(WHEELS)
    assert analyzer_view(packages) == expected
    assert len(packages) == len(expected)


def test_wheel_package_fields(site_packages: Path) -> None:
    by_name = {p.name: p for p in scan_tree(site_packages)}
    django = by_name["django"]
    assert (django.version, django.ecosystem, django.purl) == ("2.2", "pypi", "pkg:pypi/django@2.2")
    assert django.metadata["name_raw"] == "Django"
    assert django.path == "Django-2.2.dist-info/METADATA"
    assert by_name["zope-event"].metadata["name_raw"] == "zope.event"
    assert by_name["zope-event"].purl == "pkg:pypi/zope-event@4.4"
    assert by_name["ruamel-yaml"].purl == "pkg:pypi/ruamel-yaml@0.17.21"
    assert by_name["typing-extensions"].purl == "pkg:pypi/typing-extensions@4.15.0"
    licenses = {name: p.licenses for name, p in by_name.items()}
    assert licenses == {
        "attrs": ["MIT"],  # License-Expression
        "typing-extensions": ["PSF-2.0"],  # License-Expression
        "requests": ["Apache-2.0"],  # License: Apache 2.0
        "urllib3": ["MIT"],
        "six": ["MIT"],
        "ruamel-yaml": ["MIT"],  # License: MIT license
        "certifi": ["MPL-2.0"],
        "django": ["BSD-3-Clause"],  # License: BSD
        "idna": ["BSD-3-Clause"],  # License: BSD-like -> the classifier wins
        "zope-event": ["ZPL-2.1"],  # License: ZPL 2.1 -> Zope Public License classifier
    }


def test_egg_info_forms_match_importlib_metadata(egg_info_tree: Path) -> None:
    expected = {("foo-bar-baz", "1.0.post1", "Foo.Bar-baz")}  # setuptools rewrites "_" in Name
    for sub in ("site", "flat"):
        packages = scan_tree(egg_info_tree / sub)
        assert analyzer_view(packages) == importlib_view(egg_info_tree / sub) == expected
    egg = egg_info_tree / "eggs" / "Foo.Bar_baz-1.0.post1-py3.11.egg"
    packages = scan_tree(egg_info_tree / "eggs")
    assert analyzer_view(packages) == importlib_view(egg) == expected
    assert packages[0].path == "Foo.Bar_baz-1.0.post1-py3.11.egg/EGG-INFO/PKG-INFO"
    assert packages[0].licenses == ["MIT"]
    assert packages[0].purl == "pkg:pypi/foo-bar-baz@1.0.post1"


def test_debian_dist_packages_match_importlib_metadata() -> None:
    """Debian's python3 packages install a mix of dist-info and egg-info directories and files."""
    root = Path("/usr/lib/python3/dist-packages")
    expected = importlib_view(root) if root.is_dir() else set()
    if not expected:
        pytest.skip("no Debian python3 packages installed on this machine")
    assert analyzer_view(scan_tree(root)) == expected


def test_own_environment_matches_importlib_metadata() -> None:
    """The test environment's own site-packages: hundreds of real distributions."""
    import sysconfig

    root = Path(sysconfig.get_paths()["purelib"])
    assert analyzer_view(scan_tree(root)) == importlib_view(root)


# ---- claims ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", True),
        ("usr/local/lib/python3.11/site-packages/Django-2.2.dist-info/METADATA", True),
        ("x.dist-info/METADATA", True),
        ("usr/lib/python3/dist-packages/PyYAML-5.3.egg-info/PKG-INFO", True),
        ("usr/lib/python3/dist-packages/perf-0.1.egg-info", True),
        ("usr/lib/python3.11/site-packages/six-1.16.0-py3.11.egg/EGG-INFO/PKG-INFO", True),
        ("EGG-INFO/PKG-INFO", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD", True),
        ("usr/lib/python3/dist-packages/six/RECORD", False),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA.bak", False),
        ("usr/lib/python3/dist-packages/six/METADATA", False),
        ("src/six-1.16.0/PKG-INFO", False),  # an sdist's top level: source, not installed
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/SOURCES.txt", False),
        ("usr/lib/python3/dist-packages/NOTEGG-INFO/PKG-INFO", False),
        ("usr/lib/python3/dist-packages/six.py", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert ANALYZER.claims(path, entry(path)) is claimed


def test_claims_regular_files_only() -> None:
    for kind in "dlhcbp":
        assert not ANALYZER.claims("a.dist-info/METADATA", FileEntry("a.dist-info/METADATA", kind))
        assert not ANALYZER.claims("a.egg-info", FileEntry("a.egg-info", kind))


def test_claims_are_cheap() -> None:
    paths = [f"usr/lib/python3/dist-packages/pkg{i}/mod{i}.py" for i in range(2_000)]
    paths += [f"usr/lib/python3/dist-packages/pkg{i}-1.0.dist-info/METADATA" for i in range(200)]
    entries = [entry(p) for p in paths]
    hits, lines = python_lines(lambda: sum(ANALYZER.claims(p, e) for p, e in zip(paths, entries, strict=True)))
    assert hits == 200
    assert lines <= 10 * len(paths)  # a few lines of Python per file, counted rather than timed (5 today)


# ---- metadata details ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Django", "django"),
        ("zope.interface", "zope-interface"),
        ("typing_extensions", "typing-extensions"),
        ("Foo__Bar..baz-_.qux", "foo-bar-baz-qux"),
        ("ruamel.yaml.clib", "ruamel-yaml-clib"),
    ],
)
def test_pep503_names(raw: str, normalised: str) -> None:
    pkg = analyze_text(f"Metadata-Version: 2.1\nName: {raw}\nVersion: 1.0\n")
    assert (pkg.name, pkg.metadata["name_raw"], pkg.purl) == (normalised, raw, f"pkg:pypi/{normalised}@1.0")


@pytest.mark.parametrize(
    ("headers", "licenses"),
    [
        ("License-Expression: MIT OR Apache-2.0\nLicense: GPL\n", ["MIT OR Apache-2.0"]),
        ("License: MIT\nClassifier: License :: OSI Approved :: Apache Software License\n", ["MIT"]),
        ("License: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n", ["MIT"]),
        (
            "License: Copyright (c) 2010 Someone\n        Permission is hereby granted, free of charge\n"
            "Classifier: License :: OSI Approved :: BSD License\n",
            ["BSD-3-Clause"],
        ),
        (
            "Classifier: License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)\n"
            "Classifier: License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)\n"
            "Classifier: License :: OSI Approved\n"
            "Classifier: Programming Language :: Python :: 3\n",
            ["GPL-2.0-or-later", "LGPL-3.0-only"],
        ),
        ("Classifier: License :: OSI Approved :: ISC License (ISCL)\n", ["ISC"]),
        ("Classifier: License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)\n", ["MPL-2.0"]),
        ("Classifier: License :: Public Domain\n", ["LicenseRef-public-domain"]),
        ("Classifier: License :: Other/Proprietary License\n", ["Other/Proprietary License"]),
        ("License: Custom licence\n", ["Custom licence"]),
        ("License: \n", []),
        ("", []),
    ],
)
def test_licenses(headers: str, licenses: list[str]) -> None:
    pkg = analyze_text(f"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n{headers}\nlong description\n")
    assert pkg.licenses == licenses


def test_only_the_header_block_is_read() -> None:
    body = "License: GPL-3.0-only\nName: other\n" * 10
    pkg = analyze_text(f"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n\n{body}")
    assert (pkg.name, pkg.licenses) == ("x", [])


def test_crlf_and_bom() -> None:
    pkg = analyze_text("\ufeffMetadata-Version: 2.1\r\nName: Foo.Bar\r\nVersion: 2.0\r\nLicense: MIT\r\n\r\nbody")
    assert (pkg.name, pkg.version, pkg.licenses, pkg.metadata["name_raw"]) == ("foo-bar", "2.0", ["MIT"], "Foo.Bar")


def test_large_description_is_fine() -> None:
    text = "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n\n" + "description line\n" * 500_000
    assert analyze_text(text).name == "x"


def test_non_utf8_bytes() -> None:
    data = b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\nAuthor: Ren\xe9\nLicense: MIT\n\n\xff\xfe"
    facts = ANALYZER.analyze("a.dist-info/METADATA", entry("a", len(data)), io.BytesIO(data))
    assert facts is not None and facts.packages[0].licenses == ["MIT"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Metadata-Version: 2.1\nVersion: 1.0\n",
        b"Metadata-Version: 2.1\nName: x\n",
        b"Metadata-Version: 2.1\nName:\nVersion: 1.0\n",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00",
        b"\x00" * 10_000,
        b"PK\x03\x04" + os.urandom(2_000).replace(b"\n", b" "),
        b"Name: x\n  continued\nVersion: 1.0\n",
        b"Name " + b"x" * (3 << 20),  # one enormous line: only the first MiB is looked at
        b"\n\nName: x\nVersion: 1.0\n",  # headers after the blank line are the body
    ],
)
@pytest.mark.timeout(120)  # a hang guard, not a speed test: each case takes milliseconds
def test_malformed(data: bytes) -> None:
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze("a.dist-info/METADATA", entry("a", len(data)), io.BytesIO(data))


@pytest.mark.timeout(120)  # a hang guard, not a speed test
def test_many_headers_are_bounded() -> None:
    data = (
        b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"
        + b"Classifier: License :: OSI Approved :: MIT License\n" * 200_000
    )
    facts = ANALYZER.analyze("a.dist-info/METADATA", entry("a", len(data)), io.BytesIO(data))
    assert facts is not None and facts.packages[0].licenses == ["MIT"]


def test_reads_from_any_seekable_stream(tmp_path: Path) -> None:
    path = tmp_path / "METADATA"
    path.write_text("Metadata-Version: 2.1\nName: x\nVersion: 3\n")
    with path.open("rb") as fh:
        facts: Any = ANALYZER.analyze("x.dist-info/METADATA", entry("x"), fh)
    assert facts.packages[0].version == "3"


# ---- what is not a PyPI package, and wheels installed without METADATA ---------------------------------------

INVENTORY = Path(__file__).parent.parent / "fixtures" / "inventory" / "python"


def test_the_interpreters_own_egg_info_is_not_a_pypi_package() -> None:
    """CPython 2.7.13's lib-dynload/Python-2.7.egg-info. Before: pkg:pypi/python@2.7.13."""
    path = "usr/lib/python2.7/lib-dynload/Python-2.7.egg-info"
    data = (INVENTORY / path).read_bytes()
    assert ANALYZER.claims(path, entry(path, len(data)))
    facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
    assert facts is not None and facts.packages == []
    [note] = facts.hints["notes"]
    assert note["code"] == "PACKAGE_NOT_REPORTED" and "Python 2.7.13" in note["message"]


def test_a_wheel_with_only_a_record_is_reported_from_its_directory_name() -> None:
    """pip's RECORD for six 1.17.0, its METADATA gone (as image slimming tools leave it)."""
    assert {(p.name, p.version, p.method) for p in scan_tree(INVENTORY / "usr/local")} == {
        ("six", "1.17.0", "record")}


def test_a_record_yields_to_its_metadata(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    shutil.copytree(INVENTORY / "usr/local/lib/python3.11/site-packages", site)
    info = next(site.glob("six-*.dist-info"))
    shutil.copy(INVENTORY / "six-1.17.0-METADATA/METADATA", info / "METADATA")
    [pkg] = scan_tree(site)
    assert (pkg.name, pkg.method, pkg.licenses) == ("six", "installed-metadata", ["MIT"])
