"""Debian packages: the dpkg status database (and distroless `status.d/`), licences from copyright."""

from __future__ import annotations

import re
from typing import IO

from hullscan.analyzers.textdb import deb822_stanzas, read_text
from hullscan.licenses import normalize
from hullscan.model import FileEntry, FileFacts, Package

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
DOC = "usr/share/doc/"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9.+_-]+)")


def parse_status(text: str, path: str, require_installed: bool) -> list[Package]:
    out = []
    for st in deb822_stanzas(text):
        name, version = st.get("Package", ""), st.get("Version", "")
        if not name or not version:
            continue
        status = st.get("Status", "")
        if require_installed and status.split()[-1:] != ["installed"]:
            continue  # config-files, half-installed, not-installed: nothing of it runs
        src_name, src_version = name, version
        if st.get("Source"):
            m = _SOURCE.match(st["Source"])
            if m:
                src_name, src_version = m.group(1), m.group(2) or version
        epoch = None
        if ":" in version:
            head = version.split(":", 1)[0]
            epoch = int(head) if head.isdigit() else None
        out.append(Package(name=name, version=version, ecosystem="deb", path=path, source_name=src_name,
                           source_version=src_version, arch=st.get("Architecture", ""), epoch=epoch,
                           metadata={"maintainer": st["Maintainer"]} if st.get("Maintainer") else {}))
    return out


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
    version = 1
    max_size = 256 << 20

    def claims(self, path: str, entry: FileEntry) -> bool:
        if path == STATUS:
            return True
        if path.startswith(STATUS_D):
            rest = path[len(STATUS_D):]
            return "/" not in rest and not rest.endswith((".md5sums", ".list")) and not rest.startswith(".")
        return path.startswith(DOC) and path.endswith("/copyright") and path.count("/") == 4

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        if path.startswith(DOC):
            lic = copyright_licenses(read_text(content, 4 << 20))
            package = path.split("/")[3]
            return FileFacts(hints={"dpkg_licenses": {package: lic}}) if lic else None
        packages = parse_status(read_text(content), path, require_installed=path == STATUS)
        return FileFacts(packages=packages)


ANALYZERS = [DpkgAnalyzer()]
