"""Version ordering per OSV ecosystem, and OSV range evaluation.

Each ecosystem orders versions with its own scheme (``scheme_for``): dpkg, rpm, apk, pep440, semver, go,
maven, gem, nuget, composer, or generic. The schemes are hullscan's own code rather than univers: each is a
small tuple-key function (fast to compare, cached per version) whose behaviour is pinned pair for pair to
the reference tool of its ecosystem (dpkg, python3-rpm, apk-tools' rules and its Go port, node-semver,
Go's x/mod/semver, Maven's ComparableVersion, RubyGems, PHP), quirks included; PEP 440 is ``packaging``.
See the modules of ``hullscan.vulndb.versioning``.

Parsing is the expensive part, so ``sort_key`` caches the parsed key of each (scheme, version); a scan
compares the same installed and fixed versions many times.

``in_range`` evaluates one OSV ``affected[].ranges[]`` entry as the OSV schema's ``IncludedInRanges``
pseudo-code does: the events sorted by version (``introduced: "0"`` first, a ``limit`` containing ``*``
last, ties in their written order), the version is vulnerable after an ``introduced`` it reaches, not
after a ``fixed`` it reaches or a ``last_affected`` it passes; when the range has ``limit`` events the
version must be below one of them. ``SEMVER`` ranges use SemVer 2.0 ordering whatever the ecosystem
(Go's, which also reads ``v``-less and toolchain spellings, for Go).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from hullscan.vulndb.versioning import apk, composer, dpkg, gem, generic, maven, nuget, pep440, rpm, semver
from hullscan.vulndb.versioning._common import InvalidVersion

__all__ = [
    "InvalidVersion",
    "UnknownEcosystem",
    "compare",
    "in_range",
    "is_valid",
    "scheme_for",
    "sort_key",
]

log = logging.getLogger(__name__)


class UnknownEcosystem(ValueError):
    """An OSV ecosystem hullscan has no version ordering for."""


_PARSERS: dict[str, Callable[[str], Any]] = {
    "dpkg": dpkg.key,
    "rpm": rpm.key,
    "apk": apk.key,
    "pep440": pep440.key,
    "semver": semver.key,
    "go": semver.go_key,
    "maven": maven.key,
    "gem": gem.key,
    "nuget": nuget.key,
    "composer": composer.key,
    "generic": generic.key,
}

# OSV ecosystem (the part before the first ":") -> scheme
_SCHEMES: dict[str, str] = {
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Echo": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Alpaquita": "apk",
    "BellSoft Hardened Containers": "apk",
    "MinimOS": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "SUSE": "rpm",
    "openSUSE": "rpm",
    "Photon OS": "rpm",
    "Mariner": "rpm",
    "Azure Linux": "rpm",
    "CBL-Mariner": "rpm",
    "openEuler": "rpm",
    "Mageia": "rpm",
    "Oracle Linux": "rpm",
    "Amazon Linux": "rpm",
    "PyPI": "pep440",
    "npm": "semver",
    "crates.io": "semver",
    "Hex": "semver",
    "Pub": "semver",
    "Bitnami": "semver",
    "SwiftURL": "semver",
    "VSCode": "semver",
    "Go": "go",
    "Maven": "maven",
    "RubyGems": "gem",
    "NuGet": "nuget",
    "Packagist": "composer",
    "Hackage": "generic",
    "GHC": "generic",
    "CRAN": "generic",
    "Bioconductor": "generic",
}

SCHEMES: frozenset[str] = frozenset(_PARSERS)


@lru_cache(maxsize=4096)
def scheme_for(ecosystem: str) -> str:
    """The version scheme of an OSV ecosystem, with or without its release suffix ("Debian:11")."""
    base, _, rest = ecosystem.partition(":")
    base = base.strip()
    if base == "Root" and rest:  # Root:Alpine:3.18, Root:PyPI ... (patched packages of other ecosystems)
        return scheme_for(rest)
    try:
        return _SCHEMES[base]
    except KeyError:
        raise UnknownEcosystem(f"no version ordering for ecosystem {ecosystem!r}") from None


@lru_cache(maxsize=1 << 18)
def _key(scheme: str, version: str) -> Any:
    return _PARSERS[scheme](version)


def sort_key(ecosystem: str, version: str) -> Any:
    """A key that orders `version` among the ecosystem's versions (keys of one ecosystem compare with
    ``<``/``==``). Raises InvalidVersion when the scheme cannot parse it, UnknownEcosystem for an
    ecosystem without an ordering."""
    return _key(scheme_for(ecosystem), version)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b` in the ecosystem's ordering."""
    scheme = scheme_for(ecosystem)
    ka = _key(scheme, a)
    kb = _key(scheme, b)
    if ka < kb:
        return -1
    return 0 if ka == kb else 1


def is_valid(ecosystem: str, version: str) -> bool:
    """Whether the ecosystem's scheme can order `version` (False for unknown ecosystems)."""
    try:
        sort_key(ecosystem, version)
    except ValueError:
        return False
    return True


def range_scheme(ecosystem: str, range_type: str) -> str:
    """The scheme an OSV range of this type is evaluated with."""
    kind = range_type.upper()
    if kind == "SEMVER":
        try:
            return "go" if scheme_for(ecosystem) == "go" else "semver"
        except UnknownEcosystem:
            return "semver"
    if kind == "ECOSYSTEM":
        return scheme_for(ecosystem)
    raise ValueError(f"range type {range_type!r} cannot be evaluated on versions")


_INTRODUCED, _FIXED, _LAST_AFFECTED, _LIMIT = "introduced", "fixed", "last_affected", "limit"
_MIN: tuple[int] = (0,)
_MAX: tuple[int] = (2,)


@lru_cache(maxsize=1 << 16)
def _prepared(scheme: str, events: tuple[tuple[str, str], ...]) -> tuple[list[tuple[str, Any]], list[Any]]:
    """Events sorted by version (stable), each with its position key; and the limit positions."""
    placed: list[tuple[Any, str]] = []
    for kind, value in events:
        if kind == _INTRODUCED and value.strip() == "0":
            pos: Any = _MIN
        elif kind == _LIMIT and "*" in value:
            pos = _MAX
        elif kind in (_INTRODUCED, _FIXED, _LAST_AFFECTED, _LIMIT):
            pos = (1, _key(scheme, value))
        else:
            continue  # not an event type the schema defines
        placed.append((pos, kind))
    placed.sort(key=lambda e: e[0])
    limits = [pos for pos, kind in placed if kind == _LIMIT]
    return [(kind, pos) for pos, kind in placed], limits


def in_range(ecosystem: str, version: str, events: Sequence[tuple[str, str]], range_type: str) -> bool:
    """Whether `version` lies in the OSV range given by its `events` ((type, version) pairs) and type.

    Never raises for bad data: a version or event the scheme cannot parse, an unknown ecosystem or a
    GIT range give False (logged at debug level); use `is_valid` to tell that apart."""
    try:
        scheme = range_scheme(ecosystem, range_type)
        v = (1, _key(scheme, version))
        ordered, limits = _prepared(scheme, tuple((str(k), str(x)) for k, x in events))
    except (ValueError, TypeError) as exc:
        log.debug("range not evaluated for %s %r (%s): %s", ecosystem, version, range_type, exc)
        return False
    if limits and not any(v < limit for limit in limits):
        return False
    vulnerable = False
    for kind, pos in ordered:
        if kind == _INTRODUCED:
            if v >= pos:
                vulnerable = True
        elif kind == _FIXED:
            if v >= pos:
                vulnerable = False
        elif kind == _LAST_AFFECTED and v > pos:
            vulnerable = False
    return vulnerable
