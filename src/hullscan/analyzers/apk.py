"""Alpine (and Wolfi/Chainguard) packages from the apk database."""

from __future__ import annotations

from typing import IO

from hullscan.analyzers.ownership import owned_hint
from hullscan.analyzers.textdb import read_text
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package

INSTALLED = "lib/apk/db/installed"


def parse_installed(text: str, path: str) -> tuple[list[Package], list[str], list[dict[str, str]]]:
    """Packages, the files they own (F: folder, R: file in it) and notes about records not reported."""
    out = []
    owned: list[str] = []
    unversioned: list[str] = []
    nameless = 0
    fields: dict[str, str] = {}
    folder = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields.get("P"):
                name = fields["P"]
                lic = normalize(fields.get("L", ""))
                if not fields.get("V"):
                    unversioned.append(name)
                out.append(Package(name=name, version=fields.get("V", ""), ecosystem="apk", path=path,
                                   source_name=fields.get("o", name), source_version=fields.get("V", ""),
                                   arch=fields.get("A", ""), licenses=[lic] if lic else [],
                                   metadata={k: v for k, v in (("commit", fields.get("c", "")),
                                                               ("license_raw", fields.get("L", ""))) if v},
                                   method="package-database"))
            elif fields:
                nameless += 1
            fields, folder = {}, ""
            continue
        key, sep, value = line.partition(":")
        # Single-letter keys; the file lists (F:, R:, Z:) repeat, and only package fields matter here.
        if not sep or len(key) != 1:
            continue
        if key == "F":
            folder = value.strip()
        elif key == "R":
            owned.append(f"{folder}/{value.strip()}" if folder else value.strip())
        elif key in "PVAoLc":
            fields[key] = value.strip()
    notes = []
    if unversioned:
        notes.append({"code": "PACKAGE_WITHOUT_VERSION", "message": f"{len(unversioned)} package(s) without a "
                      f"V: field, reported with an unknown version: {', '.join(unversioned[:5])}"})
    if nameless:
        notes.append({"code": "PACKAGE_WITHOUT_NAME", "message": f"{nameless} record(s) without a P: field skipped"})
    return out, owned, notes


class ApkAnalyzer:
    name = "apk"
    version = 2
    max_size = 256 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path == INSTALLED

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        packages, owned, notes = parse_installed(read_text(content), path)
        facts = FileFacts(packages=packages, hints=owned_hint(owned))
        if notes:
            facts.hints["notes"] = notes
        return facts


ANALYZERS = [ApkAnalyzer()]
