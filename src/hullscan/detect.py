"""What a report keeps: the severity filter and the ignore file, applied to every scan item's findings.

Items produce findings (hullscan.items); this module decides which of them the user sees. `rescan` and the
base catalogue reuse `match` on stored facts, with no layer downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.findings import SEVERITIES, CheckFinding, CoverageGap, ScanReport, VulnFinding, severity_rank
from hullscan.ignorefile import IgnoreEntry, apply_all
from hullscan.model import OS_ECOSYSTEMS, ImageFacts, Note
from hullscan.vex.model import VexStatement
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
    vex: list[VexStatement] = field(default_factory=list)  # from --vex documents (the image's own are added)

    def apply(self, report: ScanReport) -> None:
        """VEX first (not_affected/fixed statements set vulnerabilities aside as suppressed, with their
        justification), then the ignore file, which sees every other finding of every item (so an entry for a LOW
        finding counts as used under --severity HIGH too), then the severity filter on what is shown."""
        from hullscan.vex.apply import apply_vex

        keeps = self.severity.keeps
        image_vex, vex_notes = image_statements(report.facts, start=len(self.vex))
        unsuppressed, suppressed = apply_vex(report.vulnerabilities, [*self.vex, *image_vex])
        report.suppressed.extend(s for s in suppressed if keeps(s.finding))
        report.notes.extend(vex_notes)
        outcome = apply_all(unsuppressed, report.checks, self.ignore, report.scanners)
        report.vulnerabilities = [f for f in outcome.vulnerabilities if keeps(f)]
        report.checks = [c for c in outcome.checks if keeps(c)]
        report.ignored.extend(i for i in outcome.ignored if keeps(i.finding))
        report.ignored_checks.extend(i for i in outcome.ignored_checks if keeps(i.check))
        report.notes.extend(outcome.notes)


def image_statements(facts: ImageFacts, start: int = 0) -> tuple[list[VexStatement], list[Note]]:
    """VEX statements of the documents shipped in the image; one that cannot be read is a note, not a failure."""
    from hullscan.vex.analyzer import documents_in_image
    from hullscan.vex.parse import VexError, parse_vex

    statements: list[VexStatement] = []
    notes: list[Note] = []
    for path, text in documents_in_image(facts).items():
        try:
            doc = parse_vex(text, f"/{path} (in the image)", start + len(statements))
        except VexError as exc:
            notes.append(Note("vex-invalid", f"the image's VEX document was not used: {exc.detail}", path))
            continue
        statements.extend(doc.statements)
    return statements, notes


def match(facts: ImageFacts, store: AdvisoryStore, *, ignore_unfixed: bool = False) -> ScanReport:
    """A report holding the vulnerability findings of `facts` (no filter applied) and what went unchecked."""
    from hullscan.vulndb.matcher import match_image

    result = match_image(facts, store, ignore_unfixed=ignore_unfixed)
    available = set(store.ecosystems())
    gaps = [CoverageGap(scope, count, _why_unchecked(scope, available))
            for scope, count in sorted(result.unchecked.items())]
    return ScanReport(facts=facts, vulnerabilities=result.findings, database=store.info(), scanners=["vuln"],
                      notes=list(result.notes), unchecked=gaps, checked_packages=sum(result.checked.values()))


def _why_unchecked(scope: str, available: set[str]) -> str:
    # The matcher keys unchecked packages by the OSV ecosystem they would need, or by their package type when no
    # ecosystem applies (an OS it cannot identify, rpm packages on Debian); its notes give the details.
    if scope in available:
        return "no version recorded"
    if scope in OS_ECOSYSTEMS:
        return "no vulnerability source for them"
    return "no vulnerability data"
