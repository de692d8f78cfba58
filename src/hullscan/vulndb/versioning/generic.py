"""A neutral ordering for ecosystems whose versions are dotted numbers with the odd word (Hackage, CRAN,
GHC, Bioconductor): rpm's segment comparison without epoch or release, so ``1.10 > 1.9``,
``2.0-1 > 2.0`` and a number beats a word.
"""

from __future__ import annotations

from hullscan.vulndb.versioning._common import InvalidVersion
from hullscan.vulndb.versioning.rpm import Part, part


def key(version: str) -> Part:
    s = version.strip()
    if not s:
        raise InvalidVersion("generic", version, "empty version")
    return part(s)
