"""RPM versions, ordered as rpm's ``rpmvercmp`` and ``labelCompare`` order them.

``[epoch:]version[-release]``: the epoch is the run of digits before a colon (a colon after anything else
is part of the version, as rpm parses it), the release follows the last hyphen. Version and release
compare segment by segment: separators (every character but ASCII letters, digits, ``~`` and ``^``) only
delimit; a digit run is a number and beats a letter run; ``~`` sorts before anything, even the end of the
string; ``^`` sorts after the end but before any further segment.

The key is a tuple of ``(rank, value)`` tokens closed by an end token, the ranks being
``~`` < end < ``^`` < letters < number, which makes tuple comparison give rpmvercmp's answer. A missing
release sorts before every release (even an empty one or ``~1``), as python3-rpm's ``rpm.ver`` and
``labelCompare`` order it.
"""

from __future__ import annotations

import re

from hullscan.vulndb.versioning._common import InvalidVersion

Token = tuple[int, int | str]
Part = tuple[Token, ...]
Key = tuple[int, Part, Part]

_TILDE, _END, _CARET, _ALPHA, _NUM = 0, 1, 2, 3, 4
_TOKENS = re.compile(r"[0-9]+|[A-Za-z]+|~|\^")
_END_TOKEN: Token = (_END, 0)
_EPOCH = re.compile(r"([0-9]*):")
_NO_RELEASE: Part = ((-1, 0),)  # below every release, even "" and "~1", as rpm orders a missing one


def part(s: str) -> Part:
    """The comparison key of one version or release string (rpmvercmp)."""
    tokens: list[Token] = []
    for t in _TOKENS.findall(s):
        c = t[0]
        if c == "~":
            tokens.append((_TILDE, 0))
        elif c == "^":
            tokens.append((_CARET, 0))
        elif "0" <= c <= "9":
            tokens.append((_NUM, int(t)))
        else:
            tokens.append((_ALPHA, t))
    tokens.append(_END_TOKEN)
    return tuple(tokens)


def key(evr: str) -> Key:
    """Key for ``[epoch:]version[-release]``."""
    s = evr.strip()
    if not s:
        raise InvalidVersion("rpm", evr, "empty version")
    epoch = 0
    m = _EPOCH.match(s)
    if m:
        epoch = int(m.group(1) or 0)
        s = s[m.end() :]
    version, sep, release = s.rpartition("-")
    if not sep:
        if not s:
            raise InvalidVersion("rpm", evr, "empty version")
        return (epoch, part(s), _NO_RELEASE)
    if not version:
        raise InvalidVersion("rpm", evr, "empty version")
    return (epoch, part(version), part(release))
