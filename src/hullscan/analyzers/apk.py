"""Alpine (and Wolfi/Chainguard) packages from the apk database."""

from __future__ import annotations

from typing import IO

from hullscan.analyzers.textdb import read_text
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package

INSTALLED = "lib/apk/db/installed"


def parse_installed(text: str, path: str) -> list[Package]:
    out = []
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields.get("P") and fields.get("V"):
                name = fields["P"]
                lic = normalize(fields.get("L", ""))
                out.append(Package(name=name, version=fields["V"], ecosystem="apk", path=path,
                                   source_name=fields.get("o", name), source_version=fields["V"],
                                   arch=fields.get("A", ""), licenses=[lic] if lic else [],
                                   metadata={k: v for k, v in (("commit", fields.get("c", "")),
                                                               ("license_raw", fields.get("L", ""))) if v}))
            fields = {}
            continue
        key, sep, value = line.partition(":")
        # Single-letter keys; the file lists (F:, R:, Z:) repeat, and only package fields matter here.
        if sep and len(key) == 1 and key in "PVAoLc":
            fields[key] = value.strip()
    return out


class ApkAnalyzer:
    name = "apk"
    version = 1
    max_size = 256 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path == INSTALLED

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        return FileFacts(packages=parse_installed(read_text(content), path))


ANALYZERS = [ApkAnalyzer()]
