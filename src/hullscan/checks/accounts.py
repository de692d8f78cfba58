"""The image's account files (/etc/passwd, /etc/group, /etc/shadow), parsed from ImageFacts.config_files.

Every line comes from a possibly hostile image: malformed lines are skipped, never fatal.

The text kept in ImageFacts (and the layer cache) is redacted: each password hash is replaced by a marker that
keeps what the checks look at (empty, locked, the method), see `redact_account_file`. The hashes themselves live
only in `ImageFacts.private` for the scan that read the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from hullscan.checks.crypt import redacted
from hullscan.model import ImageFacts

PASSWD = "etc/passwd"
GROUP = "etc/group"
SHADOW = "etc/shadow"
# Files whose second field may hold a password hash (group passwords live in gshadow, or in group on old systems).
PASSWORD_FILES = frozenset({PASSWD, GROUP, SHADOW})
PASSWORD_FIELDS = "password_fields"  # key of FileFacts.private / ImageFacts.private: line number -> original field

# A lock prefix ("!", "*", "*LK*") and what follows it; a field is a secret when what follows is not a bare marker.
_LOCK = re.compile(r"^(\*LK\*|[!*]*)(.*)$", re.S)
_NOT_A_HASH = frozenset({"", "x", "NP", "LK"})

# Shells that refuse an interactive login. An empty shell field means /bin/sh, a login shell.
NOLOGIN_SHELLS = frozenset({
    "/usr/sbin/nologin", "/sbin/nologin", "/usr/bin/nologin", "/bin/nologin",
    "/bin/false", "/usr/bin/false", "/bin/sync", "/sbin/shutdown", "/sbin/halt",
    "/usr/sbin/shutdown", "/usr/sbin/halt", "/bin/true", "/usr/bin/true",
})


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str  # "x" when the hash lives in /etc/shadow
    uid: int
    gid: int
    home: str
    shell: str
    line: int

    @property
    def login_shell(self) -> bool:
        return self.shell.strip() not in NOLOGIN_SHELLS


@dataclass(frozen=True)
class ShadowEntry:
    name: str
    password: str
    line: int
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]
    line: int


def _int(text: str) -> int | None:
    text = text.strip()
    if not text or not text.isdecimal() or len(text) > 10:
        return None
    return int(text)


def redact_field(field: str) -> str:
    """A password field fit to keep: empty and lock-only fields as they are, a hash replaced by a marker behind the
    same lock prefix ("!$6$<redacted>", "<redacted-descrypt>")."""
    m = _LOCK.match(field)
    assert m is not None  # the pattern matches every string
    lock, rest = m.group(1), m.group(2)
    if rest in _NOT_A_HASH:
        return field
    return lock + redacted(rest)


def redact_account_file(text: str) -> tuple[str, dict[int, str]]:
    """(the text with every password field redacted, {line number: original field} of the fields changed).

    Lines are numbered as the parsers below number them (str.splitlines), so a parsed entry's line finds its
    original field."""
    out: list[str] = []
    hidden: dict[int, str] = {}
    for number, piece in enumerate(text.splitlines(keepends=True), 1):
        body = piece.splitlines()[0]  # without its line break (a CR is one too, so none is left inside)
        parts = body.split(":")
        if len(parts) >= 2:
            safe = redact_field(parts[1])
            if safe != parts[1]:
                hidden[number] = parts[1]
                parts[1] = safe
        out.append(":".join(parts) + piece[len(body):])
    return "".join(out), hidden


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith(("+", "-")):  # NIS compat entries name no local account
            continue
        out.append((number, line))
    return out


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for number, line in _lines(text):
        parts = line.split(":")
        if len(parts) < 7:
            continue
        uid, gid = _int(parts[2]), _int(parts[3])
        if uid is None or gid is None or not parts[0]:
            continue
        out.append(PasswdEntry(parts[0], parts[1], uid, gid, parts[5], ":".join(parts[6:]), number))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out = []
    for number, line in _lines(text):
        parts = line.split(":")
        if len(parts) < 3:
            continue
        gid = _int(parts[2])
        if gid is None or not parts[0]:
            continue
        members = tuple(m for m in (parts[3].split(",") if len(parts) > 3 else []) if m)
        out.append(GroupEntry(parts[0], gid, members, number))
    return out


def parse_shadow(text: str) -> list[ShadowEntry]:
    out = []
    for number, line in _lines(text):
        parts = line.split(":")
        if len(parts) < 2 or not parts[0]:
            continue
        out.append(ShadowEntry(parts[0], parts[1], number, tuple(parts[2:])))
    return out


# Password fields that name no hash: locked or disabled accounts, and passwd's "x" (see /etc/shadow).
LOCKED_OR_DISABLED = re.compile(r"^[!*]+$|^x$|^!!$|^\*LK\*|^NP$|^LK$")


@dataclass
class Accounts:
    passwd: list[PasswdEntry] | None  # None: the image has no /etc/passwd
    group: list[GroupEntry] | None
    shadow: list[ShadowEntry] | None

    @classmethod
    def of(cls, facts: ImageFacts) -> Accounts:
        cf = facts.config_files
        return cls(parse_passwd(cf[PASSWD]) if PASSWD in cf else None,
                   parse_group(cf[GROUP]) if GROUP in cf else None,
                   parse_shadow(cf[SHADOW]) if SHADOW in cf else None)

    def user(self, name: str) -> PasswdEntry | None:
        for p in self.passwd or []:
            if p.name == name:
                return p
        return None

    def uids(self) -> set[int]:
        return {p.uid for p in self.passwd or []} | {0}

    def gids(self) -> set[int]:
        return {g.gid for g in self.group or []} | {0}

    def password_fields(self) -> Iterator[tuple[str, str, str, int]]:
        """(user, password field, file, line) of every account: passwd's own field unless it is "x", which defers
        to /etc/shadow (what pam_unix does). Shadow lines of users passwd lacks name no account."""
        shadow: dict[str, ShadowEntry] = {}
        for s in self.shadow or []:
            shadow.setdefault(s.name, s)
        for p in self.passwd or []:
            if p.password == "x":
                entry = shadow.get(p.name)
                if entry is not None:
                    yield p.name, entry.password, SHADOW, entry.line
            else:
                yield p.name, p.password, PASSWD, p.line
