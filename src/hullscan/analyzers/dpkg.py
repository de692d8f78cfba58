"""Debian packages: the dpkg status database (and distroless `status.d/`), licences from copyright."""

from __future__ import annotations

import re
from typing import IO

from hullscan.analyzers.ownership import owned_hint
from hullscan.analyzers.textdb import deb822_stanzas, read_text
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
DOC = "usr/share/doc/"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9.+_-]+)")


def installed(status: str) -> bool:
    """dpkg's `Status: want flag state`: only the state `installed` means the package's files are there.

    A stanza without a Status field (distroless `status.d/` entries written by image builders) describes a
    package that was unpacked into the image, so it counts as installed."""
    words = status.split()
    return not words or words[-1] == "installed"


def parse_status(text: str, path: str) -> tuple[list[Package], list[dict[str, str]]]:
    """Packages of a dpkg status file (or one `status.d/` entry), and notes about stanzas not reported.

    The same rules hold for every dpkg source: a package whose Status is not `installed` (config-files,
    half-installed, not-installed) is left out, and said so; one without a Version is reported with an empty
    version (it still appears in the SBOM and can match name-only policies), and said so."""
    out = []
    skipped: list[str] = []
    unversioned: list[str] = []
    nameless = 0
    for st in deb822_stanzas(text):
        name, version = st.get("Package", ""), st.get("Version", "")
        if not name:
            nameless += 1
            continue
        status = st.get("Status", "")
        if not installed(status):
            skipped.append(f"{name} ({status.split()[-1]})")
            continue  # config-files, half-installed, not-installed: nothing of it runs
        if not version:
            unversioned.append(name)
        src_name, src_version = name, version
        if st.get("Source"):
            m = _SOURCE.match(st["Source"])
            if m:
                src_name, src_version = m.group(1), m.group(2) or version
        epoch = None
        if ":" in version:
            head = version.split(":", 1)[0]
            epoch = int(head) if head.isdecimal() else None
        out.append(Package(name=name, version=version, ecosystem="deb", path=path, source_name=src_name,
                           source_version=src_version, arch=st.get("Architecture", ""), epoch=epoch,
                           metadata={"maintainer": st["Maintainer"]} if st.get("Maintainer") else {},
                           method="package-database"))
    notes: list[dict[str, str]] = []
    if skipped:
        notes.append({"code": "PACKAGE_NOT_INSTALLED", "message": f"{len(skipped)} package(s) listed but not "
                      f"installed, not reported: {_some(skipped)}"})
    if unversioned:
        notes.append({"code": "PACKAGE_WITHOUT_VERSION", "message": f"{len(unversioned)} package(s) without a "
                      f"Version field, reported with an unknown version: {_some(unversioned)}"})
    if nameless:
        notes.append({"code": "PACKAGE_WITHOUT_NAME", "message": f"{nameless} stanza(s) without a Package field "
                      "skipped"})
    return out, notes


def _some(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def owned_files(text: str) -> list[str]:
    """Paths a package owns, from a `var/lib/dpkg/info/*.list` (absolute paths) or a distroless
    `status.d/*.md5sums` ("<md5>  <relative path>") file."""
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("/"):  # md5sums: hash, two spaces, path
            _digest, sep, line = line.partition("  ")
            if not sep:
                continue
        paths.append(line.lstrip("/"))
    return paths


def copyright_licenses(text: str) -> list[str]:
    """Licences named by a copyright file: machine-readable `License:` fields, else common-licenses refs."""
    found: list[str] = []
    machine = text.lstrip().lower().startswith("format:")
    if machine:
        for line in text.splitlines():
            if line.startswith("License:"):
                short = line[len("License:"):].strip()
                if short:
                    found.append(short)
    else:
        found.extend(m.group(1) for m in _COMMON_LICENSE.finditer(text))
    out: list[str] = []
    for raw in found:
        n = normalize(raw)
        if n and n not in out:
            out.append(n)
    return out


class DpkgAnalyzer:
    name = "dpkg"
    version = 2
    max_size = 256 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if path == STATUS:
            return True
        if path.startswith(STATUS_D):
            rest = path[len(STATUS_D):]
            return "/" not in rest and not rest.endswith(".list") and not rest.startswith(".")
        if path.startswith(INFO):
            return path.endswith(".list") and "/" not in path[len(INFO):]
        return path.startswith(DOC) and path.endswith("/copyright") and path.count("/") == 4

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        if path.startswith(DOC):
            lic = copyright_licenses(read_text(content, 4 << 20))
            package = path.split("/")[3]
            return FileFacts(hints={"dpkg_licenses": {package: lic}}) if lic else None
        if path.endswith((".list", ".md5sums")):
            hints = owned_hint(owned_files(read_text(content)))
            return FileFacts(hints=hints) if hints else None
        packages, notes = parse_status(read_text(content), path)
        facts = FileFacts(packages=packages)
        if notes:
            facts.hints["notes"] = notes
        return facts


ANALYZERS = [DpkgAnalyzer()]
