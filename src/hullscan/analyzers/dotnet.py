""".NET dependencies: ``*.deps.json`` written next to every published .NET (Core) application.

``libraries`` maps ``"Name/Version"`` to ``{"type": "package" | "project" | "reference" |
"runtimepack", ...}``; only ``package`` entries are NuGet packages (projects and references are the
application's own assemblies).
"""

from __future__ import annotations

import json
import re
import struct
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure, skipped_note
from hullscan.analyzers.pe import PEError, PEImage, version_strings
from hullscan.model import FileEntry, FileFacts, Package


def _valid(text: str) -> bool:
    return 0 < len(text) <= 256 and not any(c.isspace() or c in "/\x00" for c in text)


class DotnetDepsAnalyzer:
    name = "dotnet"
    version = 2
    max_size = 32 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path.endswith(".deps.json") and entry.type == "f"

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)
        if len(data) > self.max_size:
            raise AnalyzerFailure(f"deps.json larger than {self.max_size} bytes")
        try:
            doc = json.loads(data.decode("utf-8-sig", errors="replace"))
        except (ValueError, RecursionError) as exc:
            raise AnalyzerFailure(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise AnalyzerFailure("deps.json is not a JSON object")
        libraries = doc.get("libraries")
        if not isinstance(libraries, dict):
            raise AnalyzerFailure("deps.json without a libraries object")

        packages: list[Package] = []
        skipped: list[str] = []
        for key, info in libraries.items():
            if not isinstance(key, str) or not isinstance(info, dict) or info.get("type") != "package":
                continue  # the application's own projects and references, not NuGet packages
            name, sep, version = key.partition("/")
            name, version = name.strip(), version.strip()
            if not sep or not _valid(name) or not _valid(version):
                skipped.append(key[:120])
                continue
            metadata: dict[str, str] = {}
            if isinstance(info.get("sha512"), str) and info["sha512"]:
                metadata["sha512"] = info["sha512"][:200]
            packages.append(
                Package(
                    name=name,
                    version=version,
                    ecosystem="nuget",
                    path=path,
                    purl=PackageURL(type="nuget", name=name, version=version).to_string(),
                    metadata=metadata,
                    method="lock-file",
                )
            )
        facts = FileFacts(packages=packages)
        if skipped:
            facts.hints["notes"] = [skipped_note("PACKAGE_UNREADABLE", f"{len(skipped)} package key(s) that are "
                                                 "not <name>/<version> not reported", skipped)]
        return None if facts.empty() else facts


_VERSION = re.compile(r"^\d+(?:\.\d+){1,3}(?:-[0-9A-Za-z.-]+)?")


def assembly_package(strings: dict[str, str], path: str) -> Package | None:
    """A .NET assembly's identity from its version resource: the assembly name (OriginalFilename or
    InternalName, which is the NuGet package id for libraries) and ProductVersion (else FileVersion) with
    any "+commit" suffix dropped."""
    file_name = strings.get("OriginalFilename") or strings.get("InternalName") or path.rsplit("/", 1)[-1]
    name = re.sub(r"(?i)\.(dll|exe)$", "", file_name.strip())
    m = _VERSION.match(strings.get("ProductVersion", "")) or _VERSION.match(strings.get("FileVersion", ""))
    if not _valid(name) or m is None:
        return None
    version = m.group(0)
    metadata = {k: strings[k][:200] for k in ("ProductName", "CompanyName", "FileVersion", "ProductVersion")
                if strings.get(k)}
    return Package(name=name, version=version, ecosystem="nuget", path=path, vendor=strings.get("CompanyName", ""),
                   purl=PackageURL(type="nuget", name=name, version=version).to_string(), metadata=metadata,
                   method="pe-version-resource")


class DotnetAssemblyAnalyzer:
    """.NET assemblies (.dll/.exe) by their version resources, for applications shipped without a deps.json
    (Syft's PE cataloger does this). An application's deps.json, when present in the same directory, names
    its packages better; the merge then drops these (hint "superseded_by")."""

    name = "dotnet-assembly"
    version = 1
    max_size = 64 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return entry.is_file and entry.size >= 512 and path.lower().endswith((".dll", ".exe"))

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        try:
            image = PEImage(content)
            if not image.is_dotnet:
                return None  # a native Windows binary
            resource = image.version_resource()
        except (PEError, struct.error) as exc:
            content.seek(0)
            if content.read(2) != b"MZ":
                return None  # not a PE file at all (a Linux .so named .dll, a text file)
            raise AnalyzerFailure(f"malformed PE file: {exc}") from None
        strings = version_strings(resource) if resource else {}
        package = assembly_package(strings, path)
        if package is None:
            raise AnalyzerFailure(".NET assembly without a version resource naming its version: not reported")
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        return FileFacts(packages=[package], hints={"superseded_by": [f"{folder}/*.deps.json" if folder
                                                                      else "*.deps.json"]})


ANALYZERS = [DotnetDepsAnalyzer(), DotnetAssemblyAnalyzer()]
