"""Semantic Versioning 2.0.0 precedence (npm, crates.io, Hex, OSV ``SEMVER`` ranges) and Go's variant.

``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``: numbers without leading zeros; a version with a pre-release
sorts before the same version without one; pre-release identifiers compare left to right, numeric ones
as numbers and before alphanumeric ones (compared in ASCII order), and a longer list wins when all shared
identifiers are equal; build metadata never matters. A leading ``v`` is accepted (npm accepts it, OSV
writes versions without it).

Go (golang.org/x/mod/semver) is the same ordering; it also takes the shorthands ``v1`` and ``v1.2``
(= ``v1.0.0``, ``v1.2.0``) when there is no pre-release or build, so ``+incompatible`` is ignored and
pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``) are ordinary pre-releases. For the Go standard
library, toolchain spellings (``go1.19.8``, ``go1.21rc2``, ``go1.20``) are read as the module versions the
Go vulnerability database uses (``1.19.8``, ``1.21.0-rc.2``, ``1.20.0``).
"""

from __future__ import annotations

import re

from hullscan.vulndb.versioning._common import InvalidVersion

Ident = tuple[int, int, str]
Key = tuple[int, int, int, int, tuple[Ident, ...]]

_NUM = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"v?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)
_GO = re.compile(
    rf"v?(?P<major>{_NUM})(?:\.(?P<minor>{_NUM})(?:\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?)?)?"
)
_GO_TOOLCHAIN = re.compile(r"go([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:(alpha|beta|rc)([0-9]+))?")
_RELEASE = 1  # a release sorts after its pre-releases


def _prerelease(scheme: str, version: str, pre: str | None) -> tuple[int, tuple[Ident, ...]]:
    if pre is None:
        return _RELEASE, ()
    idents: list[Ident] = []
    for ident in pre.split("."):
        if ident.isdecimal():
            if len(ident) > 1 and ident[0] == "0":
                raise InvalidVersion(scheme, version, "numeric pre-release identifier with a leading zero")
            idents.append((0, int(ident), ""))
        else:
            idents.append((1, 0, ident))
    return 0, tuple(idents)


def key(version: str) -> Key:
    """SemVer 2.0.0 precedence key (strict: three numbers, no leading zeros)."""
    m = _SEMVER.fullmatch(version.strip())
    if not m:
        raise InvalidVersion("semver", version)
    flag, pre = _prerelease("semver", version, m.group("pre"))
    return (int(m.group("major")), int(m.group("minor")), int(m.group("patch")), flag, pre)


def _toolchain(version: str) -> str | None:
    m = _GO_TOOLCHAIN.fullmatch(version)
    if not m:
        return None
    major, minor, patch, stage, num = m.groups()
    out = f"{major}.{minor or 0}.{patch or 0}"
    if stage:
        out += f"-{stage}.{num}"
    return out


def go_key(version: str) -> Key:
    """Key with golang.org/x/mod/semver's ordering; the ``v`` is optional, toolchain names are read."""
    s = version.strip()
    if s.startswith("go"):
        converted = _toolchain(s)
        if converted is None:
            raise InvalidVersion("go", version, "not a Go toolchain version")
        s = converted
    m = _GO.fullmatch(s)
    if not m:
        raise InvalidVersion("go", version)
    flag, pre = _prerelease("go", version, m.group("pre"))
    return (int(m.group("major")), int(m.group("minor") or 0), int(m.group("patch") or 0), flag, pre)
