"""Debian package versions, ordered as ``dpkg --compare-versions`` orders them.

A version is ``[epoch:]upstream[-revision]``: the epoch before the first colon, the revision after the
last hyphen. Upstream and revision compare alike: alternating runs of non-digits and digits; non-digits
compare character by character with ``~`` before the end of the run, the end before letters and letters
before every other character; digit runs compare as numbers.

The key turns a part into a tuple of ``(weights, number)`` pairs, each run of non-digits ending with the
weight of "end" (0), followed by one such pair for the end of the string, so that plain tuple comparison
gives dpkg's result, including for strings of different lengths. Only the first pair can have an empty
run, so the end-of-string pair never meets an equal pair in the other key except where dpkg sees the same.

Strings dpkg refuses (empty, embedded blanks, bad epoch, empty revision) raise :class:`InvalidVersion`;
strings dpkg only warns about (no leading digit, odd characters) are ordered as dpkg orders them.
Non-ASCII characters are refused: dpkg's order for them depends on the C ``char`` signedness.
"""

from __future__ import annotations

import re

from hullscan.vulndb.versioning._common import InvalidVersion

Part = tuple[tuple[tuple[int, ...], int], ...]
Key = tuple[int, Part, Part]

_RUNS = re.compile(r"([^0-9]*)([0-9]*)")
_EPOCH = re.compile(r"[+-]?[0-9]+")
_END_PAIR: tuple[tuple[int, ...], int] = ((0,), 0)


def _weight(c: str) -> int:
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


_WEIGHTS = {chr(i): _weight(chr(i)) for i in range(1, 128)}


def _part(s: str) -> Part:
    pairs: list[tuple[tuple[int, ...], int]] = []
    weights = _WEIGHTS
    for m in _RUNS.finditer(s):
        run, digits = m.group(1), m.group(2)
        if not run and not digits:
            break  # the empty match at the end
        pairs.append((tuple([weights[c] for c in run] + [0]), int(digits) if digits else 0))
    if not pairs:
        pairs.append(_END_PAIR)
    pairs.append(_END_PAIR)
    return tuple(pairs)


def key(version: str) -> Key:
    """A tuple that orders like ``dpkg --compare-versions``; raises InvalidVersion where dpkg errors."""
    s = version.strip(" \t")
    if not s:
        raise InvalidVersion("dpkg", version, "version string is empty")
    if not s.isascii() or any(c in s for c in " \t\n\r\v\f\0"):
        raise InvalidVersion("dpkg", version, "embedded blanks or non-ASCII characters")
    epoch = 0
    colon = s.find(":")
    if colon >= 0:
        head = s[:colon]
        if not _EPOCH.fullmatch(head):
            raise InvalidVersion("dpkg", version, "epoch in version is empty" if not head else "epoch is not a number")
        epoch = int(head)
        if epoch < 0:
            raise InvalidVersion("dpkg", version, "epoch in version is negative")
        if epoch > 2**31 - 1:
            raise InvalidVersion("dpkg", version, "epoch in version is too big")
        s = s[colon + 1 :]
        if not s:
            raise InvalidVersion("dpkg", version, "nothing after colon in version number")
    hyphen = s.rfind("-")
    if hyphen >= 0:
        upstream, revision = s[:hyphen], s[hyphen + 1 :]
        if not revision:
            raise InvalidVersion("dpkg", version, "revision number is empty")
    else:
        upstream, revision = s, ""
    if not upstream:
        raise InvalidVersion("dpkg", version, "version number is empty")
    return (epoch, _part(upstream), _part(revision))
