"""Detectors over merged image facts, producing the ScanReport that renderers show.

The scan pipeline gives ImageFacts; this module applies the vulnerability database, the ignore
file and the severity filter. `rescan` reuses it on stored facts, with no layer downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.findings import SEVERITIES, ScanReport, VulnFinding, severity_rank
from hullscan.ignorefile import IgnoreEntry, apply
from hullscan.model import ImageFacts
from hullscan.vulndb.model import AdvisoryStore


@dataclass
class SeverityFilter:
    """`--severity HIGH` keeps HIGH and above; `--severity CRITICAL,LOW` keeps exactly those."""

    levels: frozenset[str] = frozenset(SEVERITIES)

    @classmethod
    def parse(cls, text: str) -> SeverityFilter:
        words = [w.strip().upper() for w in text.split(",") if w.strip()]
        bad = [w for w in words if w not in SEVERITIES]
        if bad or not words:
            raise ValueError(f"unknown severity {', '.join(bad) or text!r}; use {', '.join(SEVERITIES)}")
        if len(words) == 1:
            floor = severity_rank(words[0])
            return cls(frozenset(s for s in SEVERITIES if severity_rank(s) >= floor))
        return cls(frozenset(words))

    def keeps(self, f: VulnFinding) -> bool:
        return f.severity.upper() in self.levels


@dataclass
class VulnOptions:
    ignore_unfixed: bool = False
    severity: SeverityFilter = field(default_factory=SeverityFilter)
    ignore: list[IgnoreEntry] = field(default_factory=list)


def evaluate(facts: ImageFacts, store: AdvisoryStore, options: VulnOptions) -> ScanReport:
    from hullscan.vulndb.matcher import match_image

    result = match_image(facts, store, ignore_unfixed=options.ignore_unfixed)
    shown = [f for f in result.findings if options.severity.keeps(f)]
    kept, ignored, notes = apply(shown, options.ignore)
    return ScanReport(facts=facts, vulnerabilities=kept, ignored=ignored, database=store.info(),
                      scanners=["vuln"], notes=[*result.notes, *notes])
