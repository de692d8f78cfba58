"""What a report keeps: the severity filter and the ignore file, applied to every scan item's findings.

Items produce findings (hullscan.items); this module decides which of them the user sees. `rescan` and the
base catalogue reuse `match` on stored facts, with no layer downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hullscan.findings import SEVERITIES, CheckFinding, ScanReport, VulnFinding, severity_rank
from hullscan.ignorefile import IgnoreEntry, apply
from hullscan.model import ImageFacts, Note
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
        """Severity filter, then VEX (not_affected/fixed statements set findings aside as suppressed, with their
        justification), then the ignore file."""
        from hullscan.vex.apply import apply_vex

        shown = [f for f in report.vulnerabilities if self.severity.keeps(f)]
        image_vex, vex_notes = image_statements(report.facts, start=len(self.vex))
        unsuppressed, suppressed = apply_vex(shown, [*self.vex, *image_vex])
        report.suppressed.extend(suppressed)
        report.notes.extend(vex_notes)
        kept, ignored, notes = apply(unsuppressed, self.ignore)
        report.vulnerabilities = kept
        report.ignored.extend(ignored)
        report.notes.extend(notes)
        report.checks = [c for c in report.checks if self.severity.keeps(c)]


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
    """A report holding the vulnerability findings of `facts` (no filter applied)."""
    from hullscan.vulndb.matcher import match_image

    result = match_image(facts, store, ignore_unfixed=ignore_unfixed)
    return ScanReport(facts=facts, vulnerabilities=result.findings, database=store.info(), scanners=["vuln"],
                      notes=list(result.notes))
