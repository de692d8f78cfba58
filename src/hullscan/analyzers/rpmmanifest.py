"""CBL-Mariner / Azure Linux distroless images: ``var/lib/rpmmanifest/container-manifest-2``.

Distroless Mariner images carry no rpm database, only this manifest: one line per package, the output of
``rpm -qa --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{INSTALLTIME}\\t%{BUILDTIME}\\t%{VENDOR}\\t(none)\\t%{SIZE}\\t%{ARCH}
\\t%{EPOCHNUM}\\t%{SOURCERPM}'``. The purl is given at merge time, when the distribution is known.
"""

from __future__ import annotations

from typing import IO

from hullscan.analyzers.rpm import split_source_rpm
from hullscan.analyzers.textdb import read_text
from hullscan.model import FileEntry, FileFacts, Package

MANIFEST = "var/lib/rpmmanifest/container-manifest-2"
_FIELDS = 10


def parse_manifest(text: str, path: str) -> tuple[list[Package], list[str]]:
    """Packages, and the lines that could not be read (reported as a note, never dropped in silence)."""
    packages: list[Package] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        version, _, release = cols[1].rpartition("-") if len(cols) == _FIELDS else ("", "", "")
        if len(cols) != _FIELDS or not cols[0] or not version or not cols[8].isdecimal():
            bad.append(str(number))
            continue
        name, vendor, arch, epoch, sourcerpm = cols[0], cols[4], cols[7], int(cols[8]), cols[9]
        source_name, source_version = split_source_rpm(sourcerpm)
        metadata = {"sourcerpm": sourcerpm} if sourcerpm and sourcerpm != "(none)" else {}
        if cols[6].isdecimal():
            metadata["size"] = cols[6]
        packages.append(Package(name=name, version=version, release=release, ecosystem="rpm", path=path,
                                epoch=epoch or None, arch=arch, vendor=vendor, source_name=source_name,
                                source_version=source_version, metadata=metadata, method="package-database"))
    return packages, bad


class RpmManifestAnalyzer:
    name = "rpm-manifest"
    version = 1
    max_size = 64 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path == MANIFEST and entry.is_file

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        packages, bad = parse_manifest(read_text(content, self.max_size), path)
        facts = FileFacts(packages=packages)
        if bad:
            facts.hints["notes"] = [{"code": "PACKAGE_UNREADABLE", "message": f"{len(bad)} line(s) that are not "
                                     f"10 tab-separated fields skipped (line {', '.join(bad[:5])})"}]
        return facts


ANALYZERS = [RpmManifestAnalyzer()]
