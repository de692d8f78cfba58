"""What a report keeps: the severity filter and the ignore file, applied to every scan item's findings.

Items produce findings (hullscan.items); this module decides which of them the user sees. `rescan` and the
base catalogue reuse `match` on stored facts, with no layer downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.findings import SEVERITIES, CheckFinding, ScanReport, VulnFinding, severity_rank
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

    def keeps(self, f: VulnFinding | CheckFinding) -> bool:
        return f.severity.upper() in self.levels


@dataclass
class ReportFilter:
    severity: SeverityFilter = field(default_factory=SeverityFilter)
    ignore: list[IgnoreEntry] = field(default_factory=list)

    def apply(self, report: ScanReport) -> None:
        shown = [f for f in report.vulnerabilities if self.severity.keeps(f)]
        kept, ignored, notes = apply(shown, self.ignore)
        report.vulnerabilities = kept
        report.ignored.extend(ignored)
        report.notes.extend(notes)
        report.checks = [c for c in report.checks if self.severity.keeps(c)]


def match(facts: ImageFacts, store: AdvisoryStore, *, ignore_unfixed: bool = False) -> ScanReport:
    """A report holding the vulnerability findings of `facts` (no filter applied)."""
    from hullscan.vulndb.matcher import match_image

    result = match_image(facts, store, ignore_unfixed=ignore_unfixed)
    return ScanReport(facts=facts, vulnerabilities=result.findings, database=store.info(), scanners=["vuln"],
                      notes=list(result.notes))
