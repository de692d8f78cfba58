"""Path rules for image content: everything is relative to the image root and stays inside it."""

from __future__ import annotations

import posixpath

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class PathEscape(ValueError):
    """A member name that climbs out of the image root (`../`)."""


def normalize(name: str) -> str:
    """Image-relative POSIX path with no `.`/`..` parts and no leading slash; '' is the root.

    Absolute names are taken relative to the image root (as container runtimes do); names that climb
    above the root raise PathEscape, since no runtime would place them anywhere legitimate.
    """
    # Nearly every member name is canonical already: no empty part ("//", a leading or trailing "/") and no part
    # starting with "." (which "." and ".." do). Those come back as they are, without splitting (every member of
    # every layer passes here).
    if name and name[0] not in "/." and name[-1] != "/" and "//" not in name and "/." not in name:
        return name
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathEscape(name)
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def resolve_link(link_path: str, target: str) -> str:
    """Where a symlink at `link_path` points, clamped to the image root (chroot semantics)."""
    base = "" if target.startswith("/") else posixpath.dirname(link_path)
    parts: list[str] = []
    for part in f"{base}/{target}".split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)

