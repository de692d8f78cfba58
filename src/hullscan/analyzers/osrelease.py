"""Which operating system the image is: os-release and the distributions' own release files."""

from __future__ import annotations

import re
import shlex
from typing import IO

from hullscan.model import FileEntry, FileFacts, OSInfo

_RELEASE_FILES = {
    # path: (family, priority); os-release files outrank the distribution-specific ones
    "etc/os-release": ("", 10),
    "usr/lib/os-release": ("", 9),
    "etc/alpine-release": ("alpine", 6),
    "etc/redhat-release": ("rhel", 5),
    "etc/centos-release": ("centos", 6),
    "etc/rocky-release": ("rocky", 6),
    "etc/almalinux-release": ("almalinux", 6),
    "etc/fedora-release": ("fedora", 6),
    "etc/oracle-release": ("ol", 6),
    "etc/mariner-release": ("mariner", 6),
    "etc/photon-release": ("photon", 5),
    "etc/SuSE-release": ("sles", 5),
    "etc/debian_version": ("debian", 4),
    "etc/lsb-release": ("", 3),
}
_VERSION = re.compile(r"release\s+([0-9][0-9.]*)", re.IGNORECASE)


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value, posix=True)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


class OSReleaseAnalyzer:
    name = "os-release"
    version = 1
    max_size = 64 << 10

    def claims(self, path: str, entry: FileEntry) -> bool:
        return path in _RELEASE_FILES

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        text = content.read(self.max_size).decode("utf-8", "replace")
        family, priority = _RELEASE_FILES[path]
        info: OSInfo | None
        if path.endswith("os-release"):
            kv = parse_os_release(text)
            if not kv.get("ID"):
                return None
            info = OSInfo(kv["ID"].lower(), kv.get("VERSION_ID", ""), kv.get("VERSION_CODENAME", ""),
                          kv.get("PRETTY_NAME") or kv.get("NAME", ""), kv.get("ID_LIKE", "").split())
        elif path == "etc/lsb-release":
            kv = parse_os_release(text)
            if not kv.get("DISTRIB_ID"):
                return None
            info = OSInfo(kv["DISTRIB_ID"].lower(), kv.get("DISTRIB_RELEASE", ""), kv.get("DISTRIB_CODENAME", ""),
                          kv.get("DISTRIB_DESCRIPTION", ""))
        else:
            first = text.strip().splitlines()[0].strip() if text.strip() else ""
            if not first:
                return None
            if family in ("alpine", "debian"):
                version = first
                if family == "debian" and not first[:1].isdecimal():
                    version = ""  # testing/sid say "bookworm/sid"
                info = OSInfo(family, version, first if not version else "", first)
            else:
                m = _VERSION.search(first)
                info = OSInfo(family, m.group(1) if m else "", "", first)
        info.source = path
        info.priority = priority
        return FileFacts(os=info)


ANALYZERS = [OSReleaseAnalyzer()]
