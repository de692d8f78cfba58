"""Member names to image-relative paths (layers/paths.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hullscan.layers.paths import PathEscape, normalize

PARTS = ["usr", "bin", "a.b", ".hidden", "x..y", "...", ".", "..", "", "lib.so.6", "é"]


def _by_parts(name: str) -> str:
    """The rule itself, part by part: empty and "." parts dropped, ".." climbs, climbing above the root escapes."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise PathEscape(name)
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


@given(st.lists(st.sampled_from(PARTS), max_size=8))
def test_normalize_follows_the_rule_for_every_name(parts: list[str]) -> None:
    name = "/".join(parts)
    try:
        expected = _by_parts(name)
    except PathEscape:
        with pytest.raises(PathEscape):
            normalize(name)
        return
    assert normalize(name) == expected


@pytest.mark.parametrize(("name", "path"), [
    ("usr/bin/python3", "usr/bin/python3"), ("/etc/passwd", "etc/passwd"), ("./etc/", "etc"), ("a//b/./c", "a/b/c"),
    ("a/b/../c", "a/c"), ("usr/lib/.build-id/x", "usr/lib/.build-id/x"), ("", ""), (".", ""), ("a/..", ""),
])
def test_normalize_examples(name: str, path: str) -> None:
    assert normalize(name) == path


@pytest.mark.parametrize("name", ["..", "../etc/passwd", "a/../../b", "/../x"])
def test_climbing_out_of_the_root_is_refused(name: str) -> None:
    with pytest.raises(PathEscape):
        normalize(name)
