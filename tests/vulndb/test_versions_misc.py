"""Packagist (proven against PHP's own version_compare), PEP 440 (packaging is the reference: the scheme is
packaging.version.Version; tested on the specification's orderings), NuGet (NuGet.Versioning's documented
precedence), the generic scheme, the ecosystem to scheme mapping and the speed of compare()."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from hullscan.vulndb import versions
from hullscan.vulndb.versions import InvalidVersion, UnknownEcosystem, compare, is_valid, scheme_for, sort_key

# --- Packagist against PHP -----------------------------------------------------------------------------
_PHP = r"""
while (($line = fgets(STDIN)) !== false) {
    [$a, $b] = json_decode($line);
    echo json_encode(version_compare($a, $b)), "\n";
}
"""


def php_reference(pairs: Sequence[tuple[str, str]]) -> list[int]:
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    out = subprocess.run(["php", "-r", _PHP], input=data, capture_output=True, text=True, check=True).stdout
    res = [int(x) for x in out.split()]
    assert len(res) == len(pairs)
    return res


_PIECES = {
    **{d: d for d in "0123456789"},
    ".": ".",
    "-": "-",
    "_": "_",
    "+": "+",
    "~": "~",
    "D": "dev",
    "A": "alpha",
    "a": "a",
    "B": "beta",
    "b": "b",
    "R": "RC",
    "r": "rc",
    "P": "pl",
    "p": "p",
    "x": "foo",
    "S": "stable",
    "T": "patch",
}
_text = st.text("".join(_PIECES) + "0123456789" * 2 + "...", min_size=1, max_size=10).map(
    lambda s: "".join(_PIECES[c] for c in s)
)
_EXTRAS = [".0", "-dev", "-RC1", "RC2", "-beta.1", "-p1", "pl2", ".1", "-alpha", "a", "-patch1", "0"]


def _pair(a: str, b: str, mode: int, extra: str) -> tuple[str, str]:
    a = a.lstrip(".-_+~") or "1"  # PHP keeps a leading separator as a word, fine, but keep to the common
    b = b.lstrip(".-_+~") or "1"
    if mode <= 1:
        return a, b
    if mode == 2:
        return a, a + extra
    if mode == 3:
        return a, a
    return a, a[: len(a) // 2] + b


pair = st.builds(_pair, _text, _text, st.integers(0, 4), st.sampled_from(_EXTRAS))


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed (make system)")
def test_packagist_ordering_matches_php_version_compare() -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = [
        p
        for p in dict.fromkeys(collected)
        if not p[0].endswith((".", "-", "_", "+", "~")) and not p[1].endswith((".", "-", "_", "+", "~"))
    ]
    ref = php_reference(pairs)
    bad = [
        (a, b, compare("Packagist", a, b), r)
        for (a, b), r in zip(pairs, ref, strict=True)
        if compare("Packagist", a, b) != r
    ]
    assert len(pairs) >= 4000
    assert not bad, f"{len(bad)} of {len(pairs)} pairs disagree with PHP, e.g. {bad[:10]}"


def test_documented_packagist_orderings() -> None:
    # PHP manual: any string not found < dev < alpha = a < beta = b < RC = rc < # < pl = p
    ordered = ["1.0.0-foo", "1.0.0-dev", "1.0.0-alpha", "1.0.0-beta2", "1.0.0-RC1", "1.0.0", "1.0.0-p1", "1.0.1"]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare("Packagist", a, b) == (i > j) - (i < j), (a, b)
    assert compare("Packagist", "v2.4.1", "2.4.1") == 0  # OSV.dev drops the leading v, so do we
    assert compare("Packagist", "1.0.0-alpha", "1.0.0a") == 0
    assert compare("Packagist:https://packages.drupal.org/8", "8.x-1.10", "8.x-1.9") == 1


# --- PEP 440 ----------------------------------------------------------------------------------------------
PEP440_ORDER = [
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
    "1!0.1",
]


def test_pep440_specification_order() -> None:
    """The ordering example from PEP 440 ("Summary of permitted suffixes and relative ordering"), plus an
    epoch, which outranks everything."""
    for i, a in enumerate(PEP440_ORDER):
        for j, b in enumerate(PEP440_ORDER):
            assert compare("PyPI", a, b) == (i > j) - (i < j), (a, b)
            assert (sort_key("PyPI", a) < sort_key("PyPI", b)) == (Version(a) < Version(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0", "1.0.0"),
        ("1.0alpha1", "1.0a1"),
        ("1.0c1", "1.0rc1"),
        ("1.0-1", "1.0.post1"),
        ("1.0.dev", "1.0.dev0"),
        ("v1.0", "1.0"),
        ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
        ("0!1.0", "1.0"),
        (" 1.0 ", "1.0"),
    ],
)
def test_pep440_normal_forms_are_equal(a: str, b: str) -> None:
    assert compare("PyPI", a, b) == 0


@pytest.mark.parametrize("bad", ["", "1.0-beta-foo", "2004d", "latest", "1.0.0.0.0+", "1..0", "dev"])
def test_pep440_invalid_versions(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        sort_key("PyPI", bad)
    assert not is_valid("PyPI", bad)
    assert not versions.in_range("PyPI", bad, [("introduced", "0")], "ECOSYSTEM")


# --- NuGet ---------------------------------------------------------------------------------------------------
def test_documented_nuget_orderings() -> None:
    # NuGet docs, "Package versioning: version precedence" (SemVer 2.0 plus a fourth number)
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.0.1",
        "1.0.1",
        "1.1",
    ]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare("NuGet", a, b) == (i > j) - (i < j), (a, b)
    for a, b in [("1.0", "1.0.0.0"), ("1.0.0-ALPHA", "1.0.0-alpha"), ("1.0.0+meta", "1.0.0"), ("01.0", "1.0")]:
        assert compare("NuGet", a, b) == 0, (a, b)
    with pytest.raises(InvalidVersion):
        sort_key("NuGet", "1.0.0.0.0")


# --- generic and the mapping --------------------------------------------------------------------------------
def test_generic_numeric_ordering() -> None:
    assert compare("CRAN", "1.10-2", "1.9-10") == 1
    assert compare("Hackage", "0.10.0.1", "0.10") == 1


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:11", "dpkg"),
        ("Debian", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Ubuntu:Pro:18.04:LTS", "dpkg"),
        ("Alpine:v3.18", "apk"),
        ("Wolfi", "apk"),
        ("Chainguard", "apk"),
        ("Red Hat:enterprise_linux:9::appstream", "rpm"),
        ("Rocky Linux:9", "rpm"),
        ("AlmaLinux:8", "rpm"),
        ("SUSE:Linux Enterprise Server 15 SP5", "rpm"),
        ("openSUSE:Leap 15.5", "rpm"),
        ("Photon OS:4.0", "rpm"),
        ("Mariner:2.0", "rpm"),
        ("PyPI", "pep440"),
        ("npm", "semver"),
        ("Go", "go"),
        ("Maven", "maven"),
        ("RubyGems", "gem"),
        ("crates.io", "semver"),
        ("NuGet", "nuget"),
        ("Packagist", "composer"),
        ("Pub", "semver"),
        ("Hex", "semver"),
        ("Root:Alpine:3.18", "apk"),
        ("Root:PyPI", "pep440"),
    ],
)
def test_scheme_for(ecosystem: str, scheme: str) -> None:
    assert scheme_for(ecosystem) == scheme
    assert scheme in versions.SCHEMES


def test_unknown_ecosystem() -> None:
    with pytest.raises(UnknownEcosystem):
        scheme_for("Nonesuch:1")
    assert issubclass(UnknownEcosystem, ValueError)
    assert not is_valid("Nonesuch", "1.0")
    assert not versions.in_range("Nonesuch", "1.0", [("introduced", "0")], "ECOSYSTEM")
    # SEMVER ranges are SemVer whatever the ecosystem
    assert versions.in_range("Nonesuch", "1.0.0", [("introduced", "0"), ("fixed", "1.0.1")], "SEMVER")


def test_invalid_version_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid dpkg version"):
        sort_key("Debian:12", "1:")


# --- speed ------------------------------------------------------------------------------------------------------
def test_compare_parses_each_version_once() -> None:
    """The matcher compares the same versions over and over: with parsed keys cached, a compare is a couple
    of dictionary look-ups and a tuple comparison. Counted, not timed: after the first round no compare parses."""
    pairs = [(f"1.{i % 50}.{i % 7}-{i % 3}", f"1.{(i * 7) % 50}.{i % 5}-1") for i in range(2000)]
    for a, b in pairs:
        compare("Debian:12", a, b)
    parsed = versions._key.cache_info().misses
    for _ in range(10):
        for a, b in pairs:
            compare("Debian:12", a, b)
    assert versions._key.cache_info().misses == parsed


@pytest.mark.parametrize("ecosystem", ["Debian", "Alpine", "Red Hat", "PyPI", "npm", "Go", "Maven", "RubyGems",
                                       "Packagist", "NuGet", "crates.io"])
@pytest.mark.parametrize("version", ["1.\u00b9", "\u00b2", "1.0-\u00b3", "1.0.0-rc.\u00b9", "v1.\u00b2.3"])
def test_a_version_with_superscript_digits_sorts_or_is_invalid_never_crashes(ecosystem: str, version: str) -> None:
    """str.isdigit() says yes to superscripts and int() refuses them: a version from an image is hostile input."""
    with contextlib.suppress(InvalidVersion):
        sort_key(ecosystem, version)
