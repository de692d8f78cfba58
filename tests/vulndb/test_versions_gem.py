"""RubyGems ordering, proven against Gem::Version of Debian's ruby, in one batched ruby process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import InvalidVersion, compare, in_range, is_valid, sort_key

ECO = "RubyGems"
pytestmark = pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed (make system)")

_RUBY = r"""
require "json"
STDIN.each_line do |line|
  a, b = JSON.parse(line)
  va, vb = Gem::Version.correct?(a), Gem::Version.correct?(b)
  r = (va && vb) ? (Gem::Version.new(a) <=> Gem::Version.new(b)) : "E"
  puts JSON.generate([r, !!va, !!vb])
end
"""


def ruby_reference(pairs: Sequence[tuple[str, str]]) -> list[list[object]]:
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    out = subprocess.run(["ruby", "-e", _RUBY], input=data, capture_output=True, text=True, check=True).stdout
    res = [json.loads(x) for x in out.splitlines()]
    assert len(res) == len(pairs)
    return res


_ALPHABET = "0123456789" * 3 + "000" + "...." + "--" + "abpreZA"
_text = st.text(_ALPHABET, min_size=1, max_size=10)
_EXTRAS = [".0", ".a", ".pre", "-rc1", ".beta.2", "0", "a", ".1", "-1", ".0.0", ".A"]


def _clean(s: str) -> str:
    """Mostly-valid: no doubled or edge separators, a leading digit."""
    s = re.sub(r"[.-]{2,}", ".", s).strip(".-")
    return s if s[:1].isdigit() else "1." + s if s else "0"


def _pair(a: str, b: str, mode: int, extra: str, clean: bool) -> tuple[str, str]:
    if clean:
        a, b = _clean(a), _clean(b)
    if mode <= 1:
        return a, b
    if mode == 2:
        return a, a + extra
    if mode == 3:
        return a, a
    return a, a[: len(a) // 2] + b


pair = st.builds(_pair, _text, _text, st.integers(0, 4), st.sampled_from(_EXTRAS), st.integers(0, 3).map(bool))

REAL = [
    "1.2.3",
    "1.2.3.pre",
    "1.2.3.rc1",
    "1.2.3-rc1",
    "1.2.3.a",
    "1.2.3.beta.2",
    "1.2",
    "1.2.0",
    "1.2.0.0",
    "1.10",
    "6.1.7.3",
    "6.1.7.2",
    "7.0.4.3",
    "7.0.0.alpha2",
    "7.0.0.rc1",
    "7.0.0",
    "1.13.10",
    "1.14.3",
    "2.0.0.pre.1",
    "5.2.8.1",
    "0.9.12",
    "1.0.0.beta1",
    "1.0.0.beta10",
    "1.0.0.beta2",
]


def test_gem_ordering_matches_ruby_gem_version() -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=250, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = list(dict.fromkeys(collected)) + [(a, b) for a in REAL for b in REAL]
    bad = []
    compared = 0
    for (a, b), (r, va, vb) in zip(pairs, ruby_reference(pairs), strict=True):
        if is_valid(ECO, a) != va or is_valid(ECO, b) != vb:
            bad.append((a, b, "validity", va, vb))
            continue
        if r == "E":
            continue
        compared += 1
        if compare(ECO, a, b) != r:
            bad.append((a, b, compare(ECO, a, b), r))
    assert compared >= 3000, compared
    assert not bad, f"{len(bad)} disagreements with Gem::Version, e.g. {bad[:10]}"


def test_documented_gem_orderings() -> None:
    ordered = ["1.0.a", "1.0.a1", "1.0.b", "1.0.rc1", "1.0", "1.0.1", "1.1"]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare(ECO, a, b) == (i > j) - (i < j), (a, b)
    assert compare(ECO, "1.0", "1.0.0") == 0
    assert compare(ECO, "1.0-rc1", "1.0.pre.rc1") == 0
    with pytest.raises(InvalidVersion):
        sort_key(ECO, "1.0..1")


def test_rails_range() -> None:
    # the shape of GHSA RubyGems ranges: several introduced/fixed pairs for maintained branches
    events = [("introduced", "6.0.0"), ("fixed", "6.1.7.3"), ("introduced", "7.0.0"), ("fixed", "7.0.4.3")]
    assert in_range(ECO, "6.1.7.2", events, "ECOSYSTEM")
    assert not in_range(ECO, "6.1.7.3", events, "ECOSYSTEM")
    assert in_range(ECO, "7.0.0.rc1", events, "ECOSYSTEM") is False  # a pre-release sorts before 7.0.0
    assert in_range(ECO, "7.0.4", events, "ECOSYSTEM")
