"""PHP packages installed by Composer: ``vendor/composer/installed.json``.

Composer 1 writes a JSON list of packages; Composer 2 writes ``{"packages": [...], "dev": bool,
"dev-package-names": [...]}``. Each package has ``name`` ("vendor/project"), ``version`` as the user
sees it (often with a leading "v", e.g. "v5.4.0", or "dev-main"), ``version_normalized`` and a
``license`` list.
"""

from __future__ import annotations

import json
from typing import IO, Any

from packageurl import PackageURL

from hullscan.analyzers.base import AnalyzerFailure, skipped_note
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, FileFacts, Package

_SUFFIX = "vendor/composer/installed.json"


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _valid(text: str) -> bool:
    return 0 < len(text) <= 256 and not any(c.isspace() or c == "\x00" for c in text)


class ComposerInstalledAnalyzer:
    name = "php"
    version = 2
    max_size = 64 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path.endswith(_SUFFIX) and entry.type == "f" and (len(path) == len(_SUFFIX) or path[-31] == "/")

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)
        if len(data) > self.max_size:
            raise AnalyzerFailure(f"installed.json larger than {self.max_size} bytes")
        try:
            doc = json.loads(data.decode("utf-8-sig", errors="replace"))
        except (ValueError, RecursionError) as exc:
            raise AnalyzerFailure(f"invalid JSON: {exc}") from None

        dev_names: set[str] = set()
        if isinstance(doc, dict):  # Composer 2
            raw_dev = doc.get("dev-package-names")
            if isinstance(raw_dev, list):
                dev_names = {d.lower() for d in raw_dev if isinstance(d, str)}
            entries: Any = doc.get("packages")
        else:  # Composer 1
            entries = doc
        if not isinstance(entries, list):
            raise AnalyzerFailure("installed.json holds no package list")

        packages: list[Package] = []
        seen: set[tuple[str, str]] = set()
        skipped: list[str] = []
        for item in entries:
            if not isinstance(item, dict):
                skipped.append("(not an object)")
                continue
            name = _str(item.get("name"))
            version = _str(item.get("version"))
            vendor, _, project = name.partition("/")
            if not _valid(name) or not _valid(version) or not vendor or not project or "/" in project:
                skipped.append(f"{name[:80]}@{version[:80]}")
                continue
            if (name, version) in seen:
                continue
            seen.add((name, version))
            raw_licenses = item.get("license")
            if isinstance(raw_licenses, str):
                raw_licenses = [raw_licenses]
            licenses = (
                normalize_all([x for x in raw_licenses[:50] if isinstance(x, str)])
                if isinstance(raw_licenses, list)
                else []
            )
            metadata: dict[str, str] = {}
            normalized = _str(item.get("version_normalized"))
            if normalized:
                metadata["version_normalized"] = normalized
            if name.lower() in dev_names:
                metadata["dev"] = "true"
            # The version is kept as Composer recorded it, leading "v" included ("v5.4.0"): that is what
            # `composer show` prints and what the purl spec expects. Matching against advisories (which
            # mostly write "5.4.0") strips the "v" in the version comparison, not here.
            purl = PackageURL(type="composer", namespace=vendor, name=project, version=version).to_string()
            packages.append(
                Package(
                    name=name,
                    version=version,
                    ecosystem="composer",
                    path=path,
                    purl=purl,
                    licenses=licenses,
                    metadata=metadata,
                    method="installed-metadata",
                )
            )
        facts = FileFacts(packages=packages)
        if skipped:
            facts.hints["notes"] = [skipped_note("PACKAGE_UNREADABLE", f"{len(skipped)} entr"
                                                 f"{'y' if len(skipped) == 1 else 'ies'} without a vendor/project "
                                                 "name and a version not reported", skipped)]
        return None if facts.empty() else facts


ANALYZERS = [ComposerInstalledAnalyzer()]
