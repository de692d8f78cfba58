"""Conda environments: ``<prefix>/conda-meta/<name>-<version>-<build>.json``, one per installed package.

Each record names the package, its version, build and channel, and lists the files it installed relative to
the environment's prefix (the directory holding ``conda-meta``): those are owned, so the interpreter and
libraries conda installed are not reported again by the binary classifiers.
"""

from __future__ import annotations

import json
from typing import IO, Any

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.ownership import owned_hint
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return value.strip()[:512] if isinstance(value, str) else ""


def _channel(url: str) -> str:
    """"https://conda.anaconda.org/conda-forge/" -> "conda-forge"; "https://repo.anaconda.com/pkgs/main/linux-64"
    -> "main"."""
    parts = [p for p in url.split("://", 1)[-1].split("/")[1:] if p]
    if parts and parts[-1] in ("linux-64", "linux-aarch64", "noarch", "osx-64", "osx-arm64", "win-64"):
        parts = parts[:-1]
    return parts[-1] if parts else ""


class CondaMetaAnalyzer:
    name = "conda"
    version = 1
    max_size = 32 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return entry.is_file and path.endswith(".json") and (path.startswith("conda-meta/") or "/conda-meta/" in path) \
            and path.count("/", path.rfind("conda-meta/")) == 1

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)
        if len(data) > self.max_size:
            raise AnalyzerFailure(f"conda-meta record larger than {self.max_size} bytes")
        try:
            doc = json.loads(data.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as exc:
            raise AnalyzerFailure(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise AnalyzerFailure("conda-meta record is not a JSON object")
        name, version = _text(doc, "name"), _text(doc, "version")
        if not name or not version:
            raise AnalyzerFailure("conda-meta record without name or version: not reported")
        qualifiers = {k: v for k, v in (("build", _text(doc, "build")), ("channel", _channel(_text(doc, "channel"))),
                                        ("subdir", _text(doc, "subdir"))) if v}
        lic = normalize(_text(doc, "license"))
        metadata = {k: _text(doc, k) for k in ("build", "channel", "subdir", "license") if _text(doc, k)}
        package = Package(name=name, version=version, ecosystem="conda", path=path, licenses=[lic] if lic else [],
                          purl=PackageURL(type="conda", name=name, version=version,
                                          qualifiers=qualifiers or None).to_string(),
                          metadata=metadata, method="package-database")
        prefix = path[: path.rfind("conda-meta/")]
        files = doc.get("files")
        owned = [prefix + f for f in files if isinstance(f, str)] if isinstance(files, list) else []
        return FileFacts(packages=[package], hints=owned_hint(owned))


ANALYZERS = [CondaMetaAnalyzer()]
