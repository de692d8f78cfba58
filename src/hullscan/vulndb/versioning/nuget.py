"""NuGet versions, ordered as NuGet.Versioning's ``VersionComparer`` orders them.

``Major[.Minor[.Patch[.Revision]]][-Release][+Metadata]``: missing numbers are 0 (``1.0 = 1.0.0 =
1.0.0.0``); a version with a release label sorts before the same version without one; labels split at
``.`` compare pairwise, numeric labels as numbers and before alphanumeric ones, alphanumeric ones
case-insensitively; a longer label list wins when the shared labels are equal; metadata is ignored.
A leading ``v`` is tolerated.
"""

from __future__ import annotations

import re

from hullscan.vulndb.versioning._common import InvalidVersion

Label = tuple[int, int, str]
Key = tuple[tuple[int, int, int, int], int, tuple[Label, ...]]

_NUGET = re.compile(
    r"[vV]?(?P<nums>[0-9]+(?:\.[0-9]+){0,3})"
    r"(?:-(?P<rel>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<meta>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_INT32_MAX = 2**31 - 1


def key(version: str) -> Key:
    m = _NUGET.fullmatch(version.strip())
    if not m:
        raise InvalidVersion("nuget", version)
    nums = [int(x) for x in m.group("nums").split(".")]
    if any(n > _INT32_MAX for n in nums):
        raise InvalidVersion("nuget", version, "number too large")
    nums += [0] * (4 - len(nums))
    rel = m.group("rel")
    if rel is None:
        return ((nums[0], nums[1], nums[2], nums[3]), 1, ())
    labels: list[Label] = []
    for label in rel.split("."):
        if label.isdecimal() and int(label) <= _INT32_MAX:
            labels.append((0, int(label), ""))
        else:
            labels.append((1, 0, label.upper()))
    return ((nums[0], nums[1], nums[2], nums[3]), 0, tuple(labels))
