"""Keeps the final text of the small OS configuration files that the baseline checks read.

sshd_config (and its drop-ins), the account files (passwd, shadow, group), login.defs, sudoers (and
sudoers.d) and ld.so.preload. The text lands in ImageFacts.config_files after the merge, so the checks
see each file as the final image holds it. Files over the cap are left alone (a Note says so).
"""

from __future__ import annotations

from typing import IO

from hullscan.model import FileEntry, FileFacts

EXACT = frozenset({
    "etc/ssh/sshd_config",
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/login.defs",
    "etc/sudoers",
    "etc/ld.so.preload",
})
# directory -> required suffix of its direct children ("" for any name)
DROP_IN_DIRS = {
    "etc/ssh/sshd_config.d": ".conf",
    "etc/sudoers.d": "",
}


def is_config_path(path: str) -> bool:
    if path in EXACT:
        return True
    parent, _, name = path.rpartition("/")
    suffix = DROP_IN_DIRS.get(parent)
    return suffix is not None and bool(name) and name.endswith(suffix)


class ConfigFilesAnalyzer:
    name = "config-files"
    version = 1
    max_size = 256 << 10

    def claims(self, path: str, entry: FileEntry) -> bool:
        return is_config_path(path)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)[: self.max_size]
        return FileFacts(hints={"config_file": data.decode("utf-8", "replace")})


ANALYZERS = [ConfigFilesAnalyzer()]
