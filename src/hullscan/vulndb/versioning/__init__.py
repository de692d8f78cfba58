"""Version ordering, one module per scheme.

Each module exposes ``key(version) -> comparable`` and raises :class:`InvalidVersion` for a string its
scheme cannot parse. Keys of one scheme compare with ``<``/``==`` exactly as the scheme's reference tool
orders the versions. ``hullscan.vulndb.versions`` maps OSV ecosystems to schemes and caches the keys.
"""

from hullscan.vulndb.versioning._common import InvalidVersion

__all__ = ["InvalidVersion"]
