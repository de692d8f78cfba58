"""Python package versions (PEP 440), ordered by ``packaging.version.Version``, the reference itself.

Epochs (``1!1.0``), pre-releases (``a``/``b``/``rc``, with their spellings ``alpha``, ``c``, ``pre``...),
post-releases (``.post1``, ``-1``), dev releases (``.dev0``) and local versions (``+ubuntu1``) all order as
the specification says: ``1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0a1.post1 < 1.0 < 1.0+local < 1.0.post1``.
Strings that are not PEP 440 versions (``packaging`` 22 dropped the old "legacy" ordering) raise
:class:`InvalidVersion`.
"""

from __future__ import annotations

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from hullscan.vulndb.versioning._common import InvalidVersion


def key(version: str) -> Version:
    try:
        return Version(version)
    except _PackagingInvalid as exc:
        raise InvalidVersion("pep440", version, "not a PEP 440 version") from exc
