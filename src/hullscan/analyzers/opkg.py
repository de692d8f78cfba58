"""opkg packages (OpenWrt, Yocto and other embedded images): ``usr/lib/opkg/status`` or ``var/lib/opkg/status``.

The status file has dpkg's stanza format and Status rules, so dpkg's parser reads it; opkg also keeps the
licence inline (``License:``). ``info/<package>.list`` files say which files each package owns.
"""

from __future__ import annotations

import dataclasses
from typing import IO

from packageurl import PackageURL

from hullscan.analyzers.dpkg import owned_files, parse_status
from hullscan.analyzers.ownership import owned_hint
from hullscan.analyzers.textdb import deb822_stanzas, read_text
from hullscan.licenses import normalize_all
from hullscan.model import FileEntry, FileFacts

STATUS_FILES = frozenset({"usr/lib/opkg/status", "var/lib/opkg/status"})
INFO_DIRS = ("usr/lib/opkg/info/", "var/lib/opkg/info/")


def _licenses(text: str) -> list[str]:
    """opkg's License field lists identifiers separated by spaces ("GPL-2.0 BSD-3-Clause"); prose stays whole."""
    words = text.split()
    if any(w.lower() in ("license", "licence", "or", "and", "with", "version") for w in words):
        return normalize_all([text])
    return normalize_all(words)


class OpkgAnalyzer:
    name = "opkg"
    version = 1
    max_size = 64 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if path in STATUS_FILES:
            return True
        return path.endswith(".list") and path.startswith(INFO_DIRS) and path.count("/") == 4

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        text = read_text(content, self.max_size)
        if path.endswith(".list"):
            hints = owned_hint(owned_files(text))
            return FileFacts(hints=hints) if hints else None
        licenses = {st.get("Package", ""): st.get("License", "") for st in deb822_stanzas(text)}
        packages, notes = parse_status(text, path)
        out = []
        for p in packages:
            qualifiers = {"arch": p.arch} if p.arch else None
            purl = PackageURL(type="opkg", name=p.name, version=p.version or None, qualifiers=qualifiers).to_string()
            out.append(dataclasses.replace(p, ecosystem="opkg", purl=purl,
                                           licenses=_licenses(licenses.get(p.name, ""))))
        facts = FileFacts(packages=out)
        if notes:
            facts.hints["notes"] = notes
        return facts


ANALYZERS = [OpkgAnalyzer()]
