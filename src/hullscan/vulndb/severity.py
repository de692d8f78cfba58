"""Severity of an advisory for one package: the vendor's rating where the record gives one, else CVSS.

Where vendors put their rating, and what it is called:

- GHSA: ``database_specific.severity`` = LOW / MODERATE / HIGH / CRITICAL (the importer turns it into
  ``SeverityScore("GHSA", word)``).
- Debian security tracker (DEBIAN-CVE records): per release, ``affected[].ecosystem_specific.urgency`` =
  unimportant / low / medium / high / "not yet assigned" / end-of-life, sometimes with ``**`` appended;
  in DSA list data the urgency closes the package line (``[sarge] - foo 1.2-3 (bug #1; medium)``).
- Ubuntu: OSV's severity type ``Ubuntu`` (negligible / low / medium / high / critical) and, per release,
  ``affected[].ecosystem_specific.ubuntu_priority``.
- Red Hat and others: ``severity``/``priority`` words (Important, Moderate, ...) in the specific blocks.

Words map to hullscan's five levels as Trivy maps the same vendors: negligible/unimportant -> LOW,
important -> HIGH, moderate -> MEDIUM; placeholders (not yet assigned, untriaged, end-of-life) are no rating
and fall through to CVSS.

CVSS ratings come from the `cvss` package. When a record has several vectors the order is
v3.1 > v3.0 > v4.0 > v2: v3 is what NVD, GHSA and the distributions publish for nearly every CVE, so the
same CVE rates the same here as in Trivy, Grype and the NVD page a user checks against; v4 is newer but
still sparse and its scores are not on v3's scale, so a record that carries both is rated on the scale
every other record uses; v2 is deprecated and has no CRITICAL. v2 scores map to LOW 0-3.9, MEDIUM
4-6.9, HIGH 7-10 (NVD's v2 ranges); v3/v4 use the specification's qualitative rating (a 0.0 "None"
counts as LOW: the vector was rated and found harmless, which is not "unknown").

Nothing here raises on bad data: an unparsable vector or an unknown word is UNKNOWN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]

from hullscan.findings import severity_rank
from hullscan.vulndb.model import Advisory, Affected, SeverityScore

LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")

_WORDS = {
    "critical": "CRITICAL",
    "urgent": "CRITICAL",
    "high": "HIGH",
    "important": "HIGH",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "low": "LOW",
    "negligible": "LOW",
    "unimportant": "LOW",
    "minor": "LOW",
}
_WORD = re.compile(r"[a-z]+")
# Vendor words hidden in raw specific blocks; the importer normalises most of them into SeverityScore
# entries already, these are read as a fallback so a store built by another importer still rates.
_SPECIFIC_KEYS = ("severity", "urgency", "priority", "ubuntu_priority", "cvss_severity")
_TRAILING_URGENCY = re.compile(r"\(([^()]*)\)\s*$")
# Preference among CVSS versions (lower is better), see the module docstring.
_CVSS_PREFERENCE = {"3.1": 0, "3.0": 1, "4.0": 2, "2.0": 3}


@dataclass(frozen=True)
class Severity:
    level: str = "UNKNOWN"  # CRITICAL / HIGH / MEDIUM / LOW / UNKNOWN
    source: str = ""  # "vendor:GHSA", "vendor:Debian", "cvss:3.1", ... ("" when nothing rated it)
    score: float | None = None  # CVSS base score, kept with a vendor rating too
    vector: str = ""  # CVSS vector the score comes from

    @property
    def rank(self) -> int:
        return severity_rank(self.level)


UNKNOWN = Severity()


@dataclass(frozen=True)
class CvssRating:
    level: str
    score: float
    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str


def vendor_level(word: str) -> str:
    """A vendor's word as a level; "" when the word is no rating (placeholders, unknown words)."""
    if not isinstance(word, str):
        return ""
    text = word.strip().lower()
    if text in _WORDS:
        return _WORDS[text]
    # "low**" (Debian's "not yet verified"), "Important (CVSS 7.5)", "medium; bug #1"
    for token in _WORD.findall(text):
        if token in _WORDS:
            return _WORDS[token]
        if token in ("not", "unknown", "untriaged", "none", "end", "eol", "unassigned"):
            return ""
    return ""


def _v2_level(score: float) -> str:
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW"


def _rating_word(word: str) -> str:
    w = word.strip().upper()
    return "LOW" if w == "NONE" else (w if w in LEVELS else "UNKNOWN")


@lru_cache(maxsize=8192)
def cvss_rating(vector: str) -> CvssRating | None:
    """The rating of a CVSS vector (v2, v3.x or v4.0, told apart by its prefix); None when it is not one."""
    if not isinstance(vector, str):
        return None
    text = vector.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    try:
        if text.startswith("CVSS:4."):
            v4 = CVSS4(text)
            score = float(v4.base_score)
            return CvssRating(_rating_word(str(v4.severity)), score, "4.0", v4.clean_vector())
        if text.startswith("CVSS:3."):
            v3 = CVSS3(text)
            score = float(v3.base_score)
            version = "3.1" if text.startswith("CVSS:3.1/") else "3.0"
            return CvssRating(_rating_word(str(v3.severities()[0])), score, version, v3.clean_vector())
        if text.startswith("CVSS:2.0/"):
            text = text[len("CVSS:2.0/"):]
        v2 = CVSS2(text)
        score = float(v2.base_score)
        return CvssRating(_v2_level(score), score, "2.0", v2.clean_vector())
    except Exception:  # noqa: BLE001 - the cvss package raises many types on bad input; a bad vector is UNKNOWN
        return None


def best_cvss(scores: Iterable[SeverityScore]) -> CvssRating | None:
    """The preferred CVSS rating among severity[] entries (v3.1 > v3.0 > v4.0 > v2)."""
    best: CvssRating | None = None
    for s in scores:
        if not s.type.upper().startswith("CVSS"):
            continue
        rating = cvss_rating(s.score)
        if rating is None:
            continue
        if best is None or _CVSS_PREFERENCE.get(rating.version, 9) < _CVSS_PREFERENCE.get(best.version, 9):
            best = rating
    return best


def _vendor_from_scores(scores: Iterable[SeverityScore]) -> tuple[str, str]:
    for s in scores:
        if s.type.upper().startswith("CVSS"):
            continue
        level = vendor_level(s.score)
        if level:
            return level, s.type
    return "", ""


def _vendor_from_specific(blocks: Iterable[Mapping[str, Any]]) -> str:
    for block in blocks:
        if not block:
            continue
        for key in _SPECIFIC_KEYS:
            value = block.get(key)
            if isinstance(value, str):
                level = vendor_level(value)
                if level:
                    return level
    return ""


def _debian_list_urgency(affected: Affected) -> str:
    """DSA/DLA list lines end with the urgency: "[sarge] - foo 1.2-3 (bug #123; medium)"."""
    line = affected.database_specific.get("source_line")
    if not isinstance(line, str):
        return ""
    m = _TRAILING_URGENCY.search(line)
    if not m:
        return ""
    for part in m.group(1).split(";"):
        level = vendor_level(part) if "bug" not in part else ""
        if level:
            return level
    return ""


def _vendor_name(advisory: Advisory, affected: Affected | None) -> str:
    if advisory.id.startswith("GHSA-"):
        return "GHSA"
    if affected is not None:
        return affected.ecosystem.split(":", 1)[0]
    return advisory.id.split("-", 1)[0]


def vendor_rating(advisory: Advisory, affected: Affected | None = None) -> tuple[str, str]:
    """(level, vendor) from the vendor's own rating, the affected entry's first; ("", "") when none."""
    if affected is not None:
        level, vendor = _vendor_from_scores(affected.severity)
        if level:
            return level, vendor
        level = _vendor_from_specific((affected.ecosystem_specific, affected.database_specific))
        if not level and affected.ecosystem.startswith("Debian"):
            level = _debian_list_urgency(affected)
        if level:
            return level, affected.ecosystem.split(":", 1)[0]
    level, vendor = _vendor_from_scores(advisory.severity)
    if level:
        return level, vendor
    level = _vendor_from_specific((advisory.database_specific,))
    if level:
        return level, _vendor_name(advisory, affected)
    return "", ""


def assess(advisory: Advisory, affected: Affected | None = None) -> Severity:
    """The severity of `advisory` for the package `affected` describes: vendor first, else CVSS.

    The CVSS score and vector are kept alongside a vendor rating."""
    try:
        scores = [*(affected.severity if affected is not None else []), *advisory.severity]
        cvss = best_cvss(scores)
        level, vendor = vendor_rating(advisory, affected)
    except Exception:  # noqa: BLE001 - a store may hand over odd shapes; severity must never stop a scan
        return UNKNOWN
    score = cvss.score if cvss else None
    vector = cvss.vector if cvss else ""
    if level:
        return Severity(level, f"vendor:{vendor}", score, vector)
    if cvss is not None and cvss.level in LEVELS and cvss.level != "UNKNOWN":
        return Severity(cvss.level, f"cvss:{cvss.version}", score, vector)
    return Severity("UNKNOWN", "", score, vector)


def highest(severities: Iterable[Severity]) -> Severity:
    """The highest rated of several (the first on ties); when it has no CVSS score, the first score among
    the others is kept with it (a vendor word plus the CVSS of an alias record)."""
    items = list(severities)
    if not items:
        return UNKNOWN
    top = items[0]
    for s in items[1:]:
        if s.rank > top.rank:
            top = s
    if top.score is None:
        scored = [s for s in items if s.score is not None]
        if scored:
            top = Severity(top.level, top.source, scored[0].score, scored[0].vector)
    return top
