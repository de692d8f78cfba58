"""RubyGems versions, ordered as ``Gem::Version#<=>`` (RubyGems 3) orders them.

A version matches ``[0-9]+(\\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?`` (blank means "0"); each
``-`` reads as ``.pre.``. Segments are the digit and letter runs; a letter segment makes the version a
pre-release. The canonical segments drop trailing zeros from the numeric part (before the first letter
segment) and from the rest. Segments compare pairwise, a missing one counting as 0: numbers numerically,
letters in byte order, and a letter segment below any number.

The key lists the non-zero segments with their positions, encoded so that plain tuple comparison gives
that answer even where one version is shorter: a letter segment at position i is ``(0, i, s)``, a number
``(2, -i, n)``, and the end is ``(1,)``: an earlier letter segment makes a version smaller, an earlier
non-zero number larger, exactly as comparing against the zeros of the shorter version does.
"""

from __future__ import annotations

import re

from hullscan.vulndb.versioning._common import InvalidVersion

Key = tuple[tuple[int, int, int | str] | tuple[int], ...]

_PATTERN = re.compile(r"[0-9]+(?>\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")
_END = (1,)


def canonical_segments(version: str) -> list[int | str]:
    s = version.strip(" \t\n\v\f\r\0")
    if not s:
        s = "0"
    if not _PATTERN.fullmatch(s):
        raise InvalidVersion("gem", version, "malformed version number string")
    s = s.replace("-", ".pre.")
    segments: list[int | str] = [int(x) if x[0].isdecimal() else x for x in _SEGMENT.findall(s)]
    first_string = next((i for i, x in enumerate(segments) if isinstance(x, str)), len(segments))
    numeric, rest = segments[:first_string], segments[first_string:]
    while numeric and numeric[-1] == 0:
        numeric.pop()
    while rest and rest[-1] == 0:
        rest.pop()
    return numeric + rest


def key(version: str) -> Key:
    out: list[tuple[int, int, int | str] | tuple[int]] = []
    for i, seg in enumerate(canonical_segments(version)):
        if isinstance(seg, str):
            out.append((0, i, seg))
        elif seg:
            out.append((2, -i, seg))
    out.append(_END)
    return tuple(out)
