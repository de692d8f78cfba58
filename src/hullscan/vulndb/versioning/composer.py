"""Packagist (Composer) versions, ordered as PHP's ``version_compare`` orders them.

A leading ``v`` is dropped (as OSV.dev does for Packagist). PHP then rewrites ``-``, ``_``, ``+`` and any
other non-alphanumeric character as ``.`` and puts a ``.`` between digits and letters, so ``1.0.0RC1-p2``
reads ``1.0.0.RC.1.p.2``. Parts compare left to right: numbers numerically; words by the first special
form they start with, ``any other < dev < alpha = a < beta = b < RC = rc < (number) < pl = p``; a number
against a word counts as the "number" form. When one version has more parts, a further number makes it
greater, a further word compares against the "number" form.

The key is one ``(form, number)`` pair per part, numbers being ``(4, n)``, closed by ``(4, -1)``, which
stands for the end (above every word below the number form, below every number and ``p``).
"""

from __future__ import annotations

from hullscan.vulndb.versioning._common import InvalidVersion

Key = tuple[tuple[int, int], ...]

_SPECIAL = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_NUMBER = 4
_LONG_MAX = 2**63 - 1
_END = (_NUMBER, -1)
_TRAILING = -2


def _form(word: str) -> int:
    for name, order in _SPECIAL:
        if word.startswith(name):
            return order
    return -1


def canonicalize(version: str) -> str:
    """PHP's canonical form: separators as dots, a dot between digits and non-digits."""
    if not version:
        return version
    out = [version[0]]
    prev = version[0]
    for c in version[1:]:
        if c in "-_+":
            if out[-1] != ".":
                out.append(".")
        elif (prev != "." and not prev.isdecimal() and c.isdecimal()) or \
                (prev.isdecimal() and c != "." and not c.isdecimal()):
            if out[-1] != ".":
                out.append(".")
            out.append(c)
        elif not c.isalnum():
            if out[-1] != ".":
                out.append(".")
        else:
            out.append(c)
        prev = c
    return "".join(out)


def key(version: str) -> Key:
    s = version.strip()
    if s[:1] in ("v", "V"):
        s = s[1:]
    if not s or not s.isascii():
        raise InvalidVersion("composer", version)
    parts: list[tuple[int, int]] = []
    pieces = canonicalize(s).split(".")
    for i, part in enumerate(pieces):
        if not part:
            # only a leading or a trailing dot leaves an empty part: PHP reads a leading one as a word
            # and a trailing one as "less than whatever the other version has there"
            parts.append((-1, 0) if i == 0 else (_TRAILING, 0))
            continue
        if part[0].isdecimal():
            digits = part
            end = 0
            while end < len(digits) and digits[end].isdecimal():
                end += 1
            parts.append((_NUMBER, min(int(digits[:end]), _LONG_MAX)))
        else:
            parts.append((_form(part), 0))
    parts.append(_END)
    return tuple(parts)
