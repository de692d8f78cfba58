"""Which files a package database owns, as far as the binary classifiers care.

A binary a package database owns is already reported by that database (with the distribution's version, which
is the one its advisories use): the binary classifiers must not report it a second time. Package databases
therefore hand the merge the files they own, as the hint ``owned``. Only the paths a binary classifier could
claim are kept, so the hint stays a few entries per package instead of every file of the image (the layer
cache stores it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hullscan.analyzers.binsigs import may_identify

OWNED = "owned"


def owned_hint(paths: Iterable[str]) -> dict[str, Any]:
    """``{"owned": [...]}`` for the paths (relative to the image root) a binary classifier may claim."""
    kept = sorted({p.lstrip("/") for p in paths if may_identify(p)})
    return {OWNED: kept} if kept else {}
