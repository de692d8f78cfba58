"""Keeps the final text of the small OS configuration files that the baseline checks read.

sshd_config (and its drop-ins), the account files (passwd, shadow, group), login.defs, sudoers (and
sudoers.d) and ld.so.preload. The text lands in ImageFacts.config_files after the merge, so the checks
see each file as the final image holds it. Files over the cap are cut at the cap.

The account files carry password hashes, and what this analyzer returns as hints is kept in the shared layer
cache: their text is kept redacted (each hash replaced by a marker naming its method, see
checks.accounts.redact_account_file) with the file's sha256, which keys the weak-password verdicts. The original
fields go to `FileFacts.private`, which lives only as long as the scan that read the file.
"""

from __future__ import annotations

import hashlib
from typing import IO

from hullscan.checks.accounts import PASSWORD_FIELDS, PASSWORD_FILES, redact_account_file
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
TEXT = "config_file"  # hint: the file's text (account files redacted)
SHA256 = "config_sha256"  # hint: sha256 of an account file's bytes as read (before redaction)


def is_config_path(path: str) -> bool:
    if path in EXACT:
        return True
    parent, _, name = path.rpartition("/")
    suffix = DROP_IN_DIRS.get(parent)
    return suffix is not None and bool(name) and name.endswith(suffix)


class ConfigFilesAnalyzer:
    name = "config-files"
    version = 2  # 2: account files kept redacted (entries of version 1 held /etc/shadow's hashes)
    max_size = 256 << 10

    def claims(self, path: str, entry: FileEntry) -> bool:
        return is_config_path(path)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        data = content.read(self.max_size + 1)[: self.max_size]
        text = data.decode("utf-8", "replace")
        if path not in PASSWORD_FILES:
            return FileFacts(hints={TEXT: text})
        kept, hidden = redact_account_file(text)
        facts = FileFacts(hints={TEXT: kept, SHA256: hashlib.sha256(data).hexdigest()})
        if hidden:
            facts.private[PASSWORD_FIELDS] = hidden
        return facts


ANALYZERS = [ConfigFilesAnalyzer()]
