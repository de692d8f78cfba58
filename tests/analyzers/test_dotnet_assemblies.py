""".NET assemblies without a deps.json, identified by their version resources (Debian's Mono.Cecil, a real
managed assembly with a VS_VERSIONINFO resource), and yielding to a deps.json or a package database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tests.analyzers.debs import Debs, copy_file, scan_root

from hullscan.analyzers.dotnet import DotnetAssemblyAnalyzer
from hullscan.model import FileEntry

pytestmark = pytest.mark.slow
CECIL = "usr/lib/mono-cecil/Mono.Cecil.dll"


def test_assembly_version_resource(debs: Debs) -> None:
    data = (debs.unpack("libmono-cecil-cil") / CECIL).read_bytes()
    path = "app/Mono.Cecil.dll"
    analyzer = DotnetAssemblyAnalyzer()
    assert analyzer.claims(path, FileEntry(path, "f", len(data)))
    facts = analyzer.analyze(path, FileEntry(path, "f", len(data)), io.BytesIO(data))
    assert facts is not None
    [pkg] = facts.packages
    # Debian packages Cecil 0.9.5 ("0.9.5+dfsg-..."): the resource says 0.9.5.0
    assert (pkg.name, pkg.ecosystem, pkg.method) == ("Mono.Cecil", "nuget", "pe-version-resource")
    assert pkg.version.startswith(debs.upstream_version("libmono-cecil-cil"))
    assert pkg.purl == f"pkg:nuget/Mono.Cecil@{pkg.version}"


def test_native_and_non_pe_files_are_not_assemblies(debs: Debs) -> None:
    analyzer = DotnetAssemblyAnalyzer()
    elf = (debs.unpack("xz-utils") / "usr/bin/xz").read_bytes()  # an ELF file named like an assembly
    assert analyzer.analyze("app/x.dll", FileEntry("app/x.dll", "f", len(elf)), io.BytesIO(elf)) is None


def test_a_deps_json_in_the_same_directory_supersedes_the_assemblies(debs: Debs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_file(debs.unpack("libmono-cecil-cil") / CECIL, root, "app/Mono.Cecil.dll")
    copy_file(debs.unpack("libmono-cecil-cil") / CECIL, root, "tools/Mono.Cecil.dll")
    (root / "app/app.deps.json").write_text(json.dumps({"libraries": {
        "Mono.Cecil/0.11.5": {"type": "package", "sha512": "sha512-x"}}}))
    facts = scan_root(root, tmp_path / "work")
    assert sorted((p.name, p.path, p.method) for p in facts.packages) == [
        ("Mono.Cecil", "app/app.deps.json", "lock-file"),  # app/Mono.Cecil.dll: described by the deps.json
        ("Mono.Cecil", "tools/Mono.Cecil.dll", "pe-version-resource"),
    ]


def test_assemblies_a_package_database_owns_are_not_reported_again(debs: Debs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    debs.install(root, ["libmono-cecil-cil"])
    facts = scan_root(root, tmp_path / "work")
    assert [(p.name, p.ecosystem) for p in facts.packages] == [("libmono-cecil-cil", "deb")]
