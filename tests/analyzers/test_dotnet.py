""".NET deps.json analyzer, on files built the way the .NET SDK writes them (runtimeTarget, targets,
libraries keyed "Name/Version" with type project / package / runtimepack / reference)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from tests.support.budget import python_lines

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.dotnet import DotnetDepsAnalyzer
from hullscan.model import FileEntry, Package

ANALYZER = DotnetDepsAnalyzer()
PATH = "app/MyWebApp.deps.json"


def entry(path: str, size: int = 0) -> FileEntry:
    return FileEntry(path=path, type="f", size=size)


def library(kind: str, name: str, version: str) -> dict[str, Any]:
    if kind != "package":
        return {"type": kind, "serviceable": False, "sha512": ""}
    lower = f"{name.lower()}/{version.lower()}"
    return {
        "type": "package",
        "serviceable": True,
        "sha512": "sha512-" + "A" * 86 + "==",
        "path": lower,
        "hashPath": f"{name.lower()}.{version.lower()}.nupkg.sha512",
    }


def deps_json(libraries: list[tuple[str, str, str]], target: str = ".NETCoreApp,Version=v8.0") -> bytes:
    """A deps.json as `dotnet publish` lays it out."""
    targets: dict[str, Any] = {}
    for kind, name, version in libraries:
        node: dict[str, Any] = {}
        if kind == "project":
            node = {"dependencies": {n: v for k, n, v in libraries if k == "package"}, "runtime": {f"{name}.dll": {}}}
        elif kind == "package":
            node = {"runtime": {f"lib/net8.0/{name}.dll": {"assemblyVersion": "1.0.0.0", "fileVersion": "1.0.0.0"}}}
        targets[f"{name}/{version}"] = node
    doc = {
        "runtimeTarget": {"name": target, "signature": ""},
        "compilationOptions": {},
        "targets": {target: targets},
        "libraries": {f"{name}/{version}": library(kind, name, version) for kind, name, version in libraries},
    }
    return json.dumps(doc, indent=2).encode()


def analyze(data: bytes, path: str = PATH) -> list[Package]:
    assert ANALYZER.claims(path, entry(path, len(data)))
    facts = ANALYZER.analyze(path, entry(path, len(data)), io.BytesIO(data))
    return facts.packages if facts else []


def test_published_app() -> None:
    data = deps_json(
        [
            ("project", "MyWebApp", "1.0.0"),
            ("package", "Newtonsoft.Json", "13.0.1"),
            ("package", "Microsoft.Extensions.Logging.Abstractions", "8.0.0"),
            ("package", "System.Text.Encodings.Web", "4.7.2"),
            ("package", "Serilog", "3.1.0-dev-02078"),
            ("project", "MyWebApp.Core", "1.0.0"),
            ("reference", "Legacy.Interop", "1.0.0.0"),
            ("runtimepack", "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64", "8.0.0"),
        ]
    )
    packages = analyze(data)
    got = {(p.name, p.version, p.purl) for p in packages}
    assert got == {
        ("Newtonsoft.Json", "13.0.1", "pkg:nuget/Newtonsoft.Json@13.0.1"),
        (
            "Microsoft.Extensions.Logging.Abstractions",
            "8.0.0",
            "pkg:nuget/Microsoft.Extensions.Logging.Abstractions@8.0.0",
        ),
        ("System.Text.Encodings.Web", "4.7.2", "pkg:nuget/System.Text.Encodings.Web@4.7.2"),
        ("Serilog", "3.1.0-dev-02078", "pkg:nuget/Serilog@3.1.0-dev-02078"),
    }
    for p in packages:
        assert (p.ecosystem, p.path, p.licenses) == ("nuget", PATH, [])
        assert p.metadata["sha512"].startswith("sha512-")


def test_netstandard_library_layout() -> None:
    """Libraries built for .NET Standard carry a "/"-suffixed target name and an empty target."""
    data = json.loads(
        deps_json(
            [("project", "Lib", "1.0.0"), ("package", "NETStandard.Library", "2.0.3")], ".NETStandard,Version=v2.0/"
        )
    )
    data["targets"][".NETStandard,Version=v2.0"] = {}
    (pkg,) = analyze(json.dumps(data).encode(), "opt/tool/Lib.deps.json")
    assert (pkg.name, pkg.version) == ("NETStandard.Library", "2.0.3")


def test_project_only() -> None:
    assert ANALYZER.analyze(PATH, entry(PATH), io.BytesIO(deps_json([("project", "App", "1.0.0")]))) is None


@pytest.mark.parametrize(
    ("path", "claimed"),
    [
        ("app/MyWebApp.deps.json", True),
        ("usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json", True),
        ("x.deps.json", True),
        ("app/MyWebApp.runtimeconfig.json", False),
        ("app/deps.json.bak", False),
        ("app/MyWebApp.dll", False),
    ],
)
def test_claims(path: str, claimed: bool) -> None:
    assert ANALYZER.claims(path, entry(path)) is claimed


def test_claims_regular_files_only_and_cheap() -> None:
    for kind in "dlhcbp":
        assert not ANALYZER.claims(PATH, FileEntry(PATH, kind))
    paths = [f"app/lib/Assembly{i}.dll" for i in range(2_000)]
    entries = [entry(p) for p in paths]
    claimed, lines = python_lines(lambda: [ANALYZER.claims(p, e) for p, e in zip(paths, entries, strict=True)])
    assert not any(claimed)
    assert lines <= 10 * len(paths)  # a few lines of Python per file, counted rather than timed (2 today)


@pytest.mark.parametrize(
    "key",
    ["NoVersion", "/1.0.0", "Name/", "Name/1.0/extra", "Name With Space/1.0", "Name/1.0 beta", "x" * 300 + "/1.0"],
)
def test_bad_keys_are_skipped(key: str) -> None:
    doc = {"libraries": {key: {"type": "package"}, "Good/1.0.0": {"type": "package", "sha512": 5}}}
    (pkg,) = analyze(json.dumps(doc).encode())
    assert (pkg.name, pkg.version, pkg.metadata) == ("Good", "1.0.0", {})


def test_odd_library_values() -> None:
    doc = {"libraries": {"A/1.0": "package", "B/1.0": {"type": ["package"]}, "C/1.0": None, "D/1.0": {}}}
    assert ANALYZER.analyze(PATH, entry(PATH), io.BytesIO(json.dumps(doc).encode())) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"libraries": []}',
        b'{"targets": {}}',
        b"{" * 100_000,
        b"MZ\x90\x00\x03\x00\x00\x00",
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze(PATH, entry(PATH, len(data)), io.BytesIO(data))


def test_too_large() -> None:
    data = b" " * (ANALYZER.max_size + 1)
    with pytest.raises(AnalyzerFailure):
        ANALYZER.analyze(PATH, entry(PATH, len(data)), io.BytesIO(data))


def test_package_keys_that_name_no_version_are_a_note() -> None:
    data = json.dumps({"libraries": {"Good/1.0.0": {"type": "package"}, "NoVersion": {"type": "package"},
                                     "App/1.0.0": {"type": "project"}}}).encode()
    facts = ANALYZER.analyze("app/app.deps.json", entry("app/app.deps.json", len(data)), io.BytesIO(data))
    assert facts is not None and [p.name for p in facts.packages] == ["Good"]
    [note] = facts.hints["notes"]
    assert note["code"] == "PACKAGE_UNREADABLE" and "NoVersion" in note["message"]
