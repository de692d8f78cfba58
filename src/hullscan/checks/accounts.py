"""The image's account files (/etc/passwd, /etc/group, /etc/shadow), parsed from ImageFacts.config_files.

Every line comes from a possibly hostile image: malformed lines are skipped, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass

from hullscan.model import ImageFacts

PASSWD = "etc/passwd"
GROUP = "etc/group"
SHADOW = "etc/shadow"

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
    if not text or not text.isdigit() or len(text) > 10:
        return None
    return int(text)


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
