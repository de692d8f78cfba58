"""dpkg ordering, proven against `dpkg --compare-versions` itself.

Each pair is checked with one dpkg call: the operator is our answer (lt, eq or gt), so exit status 0
confirms it completely, 1 refutes it, and 2 means dpkg rejects the syntax (which must be exactly the
pairs where our parser raises InvalidVersion). The calls run in a shell loop over a file, split across
the CPUs.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hullscan.vulndb.versions import InvalidVersion, compare, sort_key

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")

OSV_DEBIAN = Path("/work/shared/vulndata/osv/Debian/all.zip")
ECO = "Debian:12"

_LOOP = 'while IFS="\t" read -r op a b; do dpkg --compare-versions -- "$a" "$op" "$b" 2>/dev/null; echo $?; done'


def _ours(a: str, b: str) -> str:
    try:
        c = compare(ECO, a, b)
    except InvalidVersion:
        return "invalid"
    return {-1: "lt", 0: "eq", 1: "gt"}[c]


def dpkg_disagreements(pairs: Sequence[tuple[str, str]], tmp: Path) -> list[tuple[str, str, str, int]]:
    """(a, b, our answer, dpkg exit status) for every pair where dpkg does not confirm our answer."""
    ours = [_ours(a, b) for a, b in pairs]
    jobs = max(1, min(os.cpu_count() or 1, 8))
    chunks = [list(range(i, len(pairs), jobs)) for i in range(jobs)]
    procs = []
    for n, idx in enumerate(chunks):
        path = tmp / f"pairs{n}.tsv"
        with path.open("w") as f:
            for i in idx:
                op = "lt" if ours[i] == "invalid" else ours[i]
                f.write(f"{op}\t{pairs[i][0]}\t{pairs[i][1]}\n")
        procs.append(subprocess.Popen(["bash", "-c", f"{_LOOP} < {path}"], stdout=subprocess.PIPE, text=True))
    bad = []
    for idx, proc in zip(chunks, procs, strict=True):
        out, _ = proc.communicate(timeout=600)
        codes = [int(x) for x in out.split()]
        assert len(codes) == len(idx)
        for i, rc in zip(idx, codes, strict=True):
            expected = 2 if ours[i] == "invalid" else 0
            if rc != expected:
                bad.append((pairs[i][0], pairs[i][1], ours[i], rc))
    return bad


# --- hypothesis: text over a weighted alphabet (cheap to draw), shaped into related pairs ------------
# Digits dominate; "~", "+", ".", "-" and letters drive dpkg's ordering; ":" and the odd characters make
# dpkg warn (still compared) or fail (syntax errors), which the test also checks.
_ALPHABET = "0123456789" * 4 + "0" * 4 + "..++~~--" + "abzAZ" + "~" + "_!"
_text = st.text(alphabet=_ALPHABET, min_size=1, max_size=12)
# (hypothesis favours the ends of the list: keep the syntax errors "a:" and ":" in the middle)
_epoch = st.sampled_from(
    ["", "", "", "1:", "", "2:", "", "1:", "a:", "", "2:", "0:", "", ":", "10:", "00:", "", "1:", ""]
)
_SUFFIXES = ["~", "~~", "~a", "a", ".0", "0", "+b1", "-1", "-0", "+", ".", "~rc1", "+deb11u1", "A", "-1~bpo1"]


def _pair(mode: int, ea: str, ta: str, tb: str, eb: str, k: int) -> tuple[str, str]:
    if k % 4:  # mostly well-formed: no empty upstream or revision
        ta, tb = ta.strip("-") or "0", tb.strip("-") or "0"
    a = ea + ta
    if mode <= 2:
        b = eb + tb
    elif mode == 3:
        b = a + _SUFFIXES[k % len(_SUFFIXES)]
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
        b = a[: len(a) // 2] + _SUFFIXES[k % len(_SUFFIXES)] + a[len(a) // 2 :]
    # dpkg reads an empty argument as "no version" rather than as a syntax error; keep to real strings
    return a, b or "0"


pair = st.builds(_pair, st.integers(0, 9), _epoch, _text, _text, _epoch, st.integers(0, 100))


def test_dpkg_ordering_matches_dpkg_on_10000_hypothesis_pairs(tmp_path: Path) -> None:
    collected: list[tuple[str, str]] = []

    @settings(max_examples=380, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(pair, min_size=40, max_size=40, unique=True))
    def gather(pairs: list[tuple[str, str]]) -> None:
        collected.extend(pairs)

    gather()
    pairs = list(dict.fromkeys(collected))
    assert len(pairs) >= 10_000, len(pairs)
    kinds = [_ours(a, b) for a, b in pairs]
    # the generator must exercise every outcome, including dpkg's syntax errors
    counts = {k: kinds.count(k) for k in ("lt", "eq", "gt", "invalid")}
    assert min(counts.values()) > 500, counts
    assert len(pairs) - counts["invalid"] >= 10_000, counts  # ordered pairs, besides the syntax errors
    bad = dpkg_disagreements(pairs, tmp_path)
    assert not bad, f"{len(bad)} of {len(pairs)} pairs disagree with dpkg, e.g. {bad[:10]}"


def _status_versions() -> list[str]:
    status = Path("/var/lib/dpkg/status")
    if not status.exists():
        return []
    out = []
    for line in status.read_text(errors="replace").splitlines():
        if line.startswith("Version: "):
            out.append(line.split(": ", 1)[1].strip())
        elif line.startswith("Source: ") and "(" in line:  # "Source: foo (1.2-3)"
            out.append(line.split("(", 1)[1].rstrip(")").strip())
    return sorted(set(out))


def _dsa_versions(limit: int) -> list[str]:
    import json

    if not OSV_DEBIAN.exists():
        return []
    found: set[str] = set()
    with zipfile.ZipFile(OSV_DEBIAN) as z:
        for name in z.namelist():
            rec = json.loads(z.read(name))
            for aff in rec.get("affected", []):
                for r in aff.get("ranges", []):
                    for ev in r.get("events", []):
                        for k, v in ev.items():
                            if k != "introduced":
                                found.add(v)
    versions = sorted(found)
    random.Random(7).shuffle(versions)
    return versions[:limit]


def test_dpkg_ordering_matches_dpkg_on_real_versions(tmp_path: Path) -> None:
    """Installed versions and DSA/DLA fixed versions: sorted with our key, every neighbour pair is
    confirmed by dpkg (which proves the whole order), plus random pairs."""
    real = sorted(set(_status_versions()) | set(_dsa_versions(2500)), key=lambda v: sort_key(ECO, v))
    assert len(real) > 2000
    assert any(":" in v for v in real) and any("~" in v for v in real)
    pairs = list(zip(real, real[1:], strict=False))
    rng = random.Random(11)
    pairs += [(rng.choice(real), rng.choice(real)) for _ in range(1500)]
    bad = dpkg_disagreements(pairs, tmp_path)
    assert not bad, f"{len(bad)} of {len(pairs)} pairs disagree with dpkg, e.g. {bad[:10]}"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0~rc1-1", "1.0-1", -1),  # tilde sorts before the end
        ("1.0-1", "1.0+deb11u1-1", -1),
        ("1:1.0-1", "2.0-1", 1),  # epoch wins
        ("0:1.0", "1.0", 0),  # missing epoch = 0
        ("1.0", "1.0-0", 0),  # missing revision = "0"
        ("1.00", "1.0", 0),  # numbers, not strings
        ("1.0a", "1.0+", -1),  # letters before other characters
        ("2:1.2.11.dfsg-2+deb11u2", "2:1.2.11.dfsg-2+deb11u1", 1),
        ("7.74.0-1.3+deb11u7", "7.74.0-1.3+deb11u10", -1),
    ],
)
def test_documented_dpkg_orderings(a: str, b: str, expected: int) -> None:
    assert compare(ECO, a, b) == expected
    assert compare(ECO, b, a) == -expected


@pytest.mark.parametrize("bad", ["", " ", "a:1.0", "1:", "1.0-", "1.0 2", ":1.0", "-1"])
def test_dpkg_rejects_what_dpkg_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        sort_key(ECO, bad)
    assert isinstance(InvalidVersion("dpkg", bad), ValueError)
