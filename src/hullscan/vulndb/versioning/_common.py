"""What every version scheme shares."""

from __future__ import annotations


class InvalidVersion(ValueError):
    """A version string that its ecosystem's scheme cannot parse."""

    def __init__(self, scheme: str, version: str, reason: str = "") -> None:
        self.scheme = scheme
        self.version = version
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"invalid {scheme} version {version!r}{detail}")
