"""rpm ordering, proven against rpm's own comparison: python3-rpm (`rpm.ver`, `rpm.labelCompare`) run by
the system Python in one batched subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import InvalidVersion, compare, sort_key

ECO = "Red Hat:enterprise_linux:9::baseos"
SYSTEM_PYTHON = "/usr/bin/python3"

# Reads [a, b] pairs (JSON lines); answers the sign of rpm.ver(a) <=> rpm.ver(b) and, with the EVR split
# as rpm splits it, of rpm.labelCompare, or "E" where rpm refuses the string.
_REF = r"""
import json, sys, rpm
def sign(x): return (x > 0) - (x < 0)
for line in sys.stdin:
    a, b = json.loads(line)
    try:
        va, vb = rpm.ver(a), rpm.ver(b)
        r = sign((va > vb) - (va < vb))
        lc = sign(rpm.labelCompare((va.e, va.v, va.r), (vb.e, vb.v, vb.r)))
        print(json.dumps([r, lc]))
    except Exception as e:
        print(json.dumps(["E", str(e)]))
"""


def _has_rpm_module() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import rpm"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _has_rpm_module(), reason="python3-rpm is not installed (make system)")


def rpm_reference(pairs: Sequence[tuple[str, str]]) -> list[list[int | str]]:
    data = "".join(json.dumps([a, b]) + "\n" for a, b in pairs)
    out = subprocess.run([SYSTEM_PYTHON, "-c", _REF], input=data, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def disagreements(pairs: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str, object, object]], int]:
    ref = rpm_reference(pairs)
    assert len(ref) == len(pairs)
    bad: list[tuple[str, str, object, object]] = []
    checked = 0
    for (a, b), answer in zip(pairs, ref, strict=True):
        if answer[0] == "E":
            continue  # rpm itself cannot parse it; nothing to compare against
        checked += 1
        assert answer[0] == answer[1], (a, b, answer)  # rpm.ver and labelCompare agree
        try:
            ours: object = compare(ECO, a, b)
        except InvalidVersion as exc:
            ours = str(exc)
        if ours != answer[0]:
            bad.append((a, b, ours, answer[0]))
    return bad, checked


_ALPHABET = "0123456789" * 4 + "00" + "..--__++" + "~~^^" + "abcxyzAZ" + ":"
_text = st.text(alphabet=_ALPHABET, min_size=1, max_size=12)
_epoch = st.sampled_from(["", "", "", "", "1:", "2:", "0:", "10:", "00:"])
_SUFFIXES = ["~", "~~", "~rc1", "^", "^git1", "^20230101", ".0", "0", "a", "-1", "-1.el9", "_1", ".el8_6", "~a^b"]


def _pair(mode: int, ea: str, ta: str, tb: str, eb: str, k: int) -> tuple[str, str]:
    a = ea + ta
    sfx = _SUFFIXES[k % len(_SUFFIXES)]
    if mode <= 2:
        b = eb + tb
    elif mode == 3:
        b = a + sfx
    elif mode == 4:
        b = a
    elif mode == 5:
        b = a[:-1] or "0"
    elif mode == 6:
        b = a[: len(a) // 2] + tb
    elif mode == 7:
        b = a.replace("0", "", 1) if "0" in ta else ea + "0" + ta
    elif mode == 8:
        b = eb + ta
    else:
        b = a[: len(a) // 2] + sfx + a[len(a) // 2 :]
    return a, b


pair = st.builds(_pair, st.integers(0, 9), _epoch, _text, _text, _epoch, st.integers(0, 100))


def test_rpm_ordering_matches_python3_rpm_on_hypothesis_pairs() -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=400, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = list(dict.fromkeys(collected))
    bad, checked = disagreements(pairs)
    assert checked >= 10_000, checked
    assert not bad, f"{len(bad)} of {checked} pairs disagree with rpm, e.g. {bad[:10]}"


REAL = [
    "0:1.1.1k-7.el8_6",
    "1:1.1.1k-9.el8_7",
    "1:1.1.1k-12.el8_9",
    "1:3.0.7-24.el9",
    "1:3.0.7-25.el9_3",
    "2.28-225.el8",
    "2.28-225.el8_8.6",
    "2.28-236.el8_9.12",
    "4.18.0-477.10.1.el8_8",
    "4.18.0-477.27.1.el8_8",
    "4.18.0-513.5.1.el8_9",
    "5.14.0-362.8.1.el9_3",
    "7.61.1-30.el8_8.3",
    "7.76.1-26.el9_3.2",
    "1.0~rc1-1.fc38",
    "1.0-1.fc38",
    "1.0^20230101git1234abc-1.fc38",
    "1.0.1-1.fc38",
    "2:8.2.2637-20.el9_1",
    "3.6.8-51.el8_8.2",
    "3.9.16-1.el9_2.1",
    "0.9.8e-fips-rhel5",
    "1.2.3-1.mga9",
    "5.3.28-lp151.1.1",
    "2.31-150300.63.1",
    "1.0.2p-1.ph3",
    "2.9.14-1.cm2",
]


def test_rpm_ordering_matches_python3_rpm_on_real_versions() -> None:
    pairs = [(a, b) for a in REAL for b in REAL]
    bad, checked = disagreements(pairs)
    assert checked == len(pairs)
    assert not bad, bad


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0~rc1-1", "1.0-1", -1),  # ~ before everything, even the end
        ("1.0^git1-1", "1.0-1", 1),  # ^ after the end of the version ...
        ("1.0^git1-1", "1.0.1-1", -1),  # ... but before anything more
        ("1.0a-1", "1.0-1", 1),
        ("1.0a-1", "1.0.1-1", -1),  # letters < numbers
        ("1.01-1", "1.1-1", 0),  # numbers, not strings
        ("1.0_1-1", "1.0.1-1", 0),  # separators only delimit
        ("1:1.0-1", "2.0-1", 1),  # the epoch wins
        ("0:1.0-1", "1.0-1", 0),
        ("1.0", "1.0-1", -1),  # a missing release sorts first (as rpm.ver and labelCompare do)
        ("4.18.0-477.27.1.el8_8", "4.18.0-477.10.1.el8_8", 1),
    ],
)
def test_documented_rpm_orderings(a: str, b: str, expected: int) -> None:
    assert compare(ECO, a, b) == expected
    assert compare("Rocky Linux:9", b, a) == -expected


def test_rpm_ecosystems_share_the_scheme() -> None:
    for eco in (
        "Red Hat",
        "Rocky Linux:9",
        "AlmaLinux:8",
        "SUSE:Linux Enterprise Server 15 SP5",
        "openSUSE:Leap 15.5",
        "Photon OS:4.0",
        "Mariner:2.0",
        "Azure Linux:3.0",
    ):
        assert compare(eco, "1.0-2", "1.0-10") == -1
    with pytest.raises(InvalidVersion):
        sort_key(ECO, "")


def test_python3_rpm_is_found() -> None:
    assert shutil.which(SYSTEM_PYTHON)
