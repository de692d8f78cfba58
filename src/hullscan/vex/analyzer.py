"""VEX documents the image ships: `*.vex.json` (and `*.openvex.json`) at the image root.

The document's text reaches ImageFacts.config_files through the merge like any kept configuration file (a later
layer's copy wins, a whiteout removes it); vex.documents_in_image reads them back. Never executed, only parsed.
"""

from __future__ import annotations

from typing import IO

from hullscan.model import FileEntry, FileFacts, ImageFacts

SUFFIXES = (".vex.json", ".openvex.json")


def is_vex_path(path: str) -> bool:
    return "/" not in path.strip("/") and path.lower().endswith(SUFFIXES)


class VexAnalyzer:
    name = "vex-documents"
    version = 1
    max_size = 8 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return is_vex_path(path)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)[: self.max_size]
        return FileFacts(hints={"config_file": data.decode("utf-8", "replace")})


def vex_analyzer() -> VexAnalyzer:
    return VexAnalyzer()


def documents_in_image(facts: ImageFacts) -> dict[str, str]:
    """path -> text of every VEX document found in the image."""
    return {path: text for path, text in sorted(facts.config_files.items()) if is_vex_path(path)}
