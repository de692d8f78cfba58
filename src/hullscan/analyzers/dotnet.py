""".NET dependencies: ``*.deps.json`` written next to every published .NET (Core) application.

``libraries`` maps ``"Name/Version"`` to ``{"type": "package" | "project" | "reference" |
"runtimepack", ...}``; only ``package`` entries are NuGet packages (projects and references are the
application's own assemblies).
"""

from __future__ import annotations

import json
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.model import FileEntry, FileFacts, Package


def _valid(text: str) -> bool:
    return 0 < len(text) <= 256 and not any(c.isspace() or c in "/\x00" for c in text)


class DotnetDepsAnalyzer:
    name = "dotnet"
    version = 1
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
        for key, info in libraries.items():
            if not isinstance(key, str) or not isinstance(info, dict) or info.get("type") != "package":
                continue
            name, sep, version = key.partition("/")
            name, version = name.strip(), version.strip()
            if not sep or not _valid(name) or not _valid(version):
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
                )
            )
        return FileFacts(packages=packages) if packages else None


ANALYZERS = [DotnetDepsAnalyzer()]
