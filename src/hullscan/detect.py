"""Detectors over merged image facts, producing the ScanReport that renderers show.

The scan pipeline gives ImageFacts; this module applies the vulnerability database, the ignore
file and the severity filter. `rescan` reuses it on stored facts, with no layer downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import Analyzer
from hullscan.detectors import DetectContext, Detector
from hullscan.findings import SEVERITIES, CheckFinding, ScanReport, VulnFinding, severity_rank
from hullscan.ignorefile import IgnoreEntry, apply
from hullscan.model import ImageFacts
from hullscan.vulndb.model import AdvisoryStore

if TYPE_CHECKING:  # the item modules load their rules only when the item runs
    from hullscan.malware.analyzer import MalwareOptions
    from hullscan.secrets.config import SecretConfig


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


ALL_ITEMS = ("vuln", "secret", "malware", "file", "baseline", "compliance", "base")


@dataclass
class ItemOptions:
    """Options of the scan items beyond vulnerabilities (the CLI fills them from its flags)."""

    secret_config: Path | None = None
    malware: MalwareOptions | None = None
    context: DetectContext = field(default_factory=DetectContext)


def analyzers_for(items: list[str], options: ItemOptions) -> list[Analyzer]:
    """The analyzers a scan needs: the inventory's always, plus those of the chosen per-file items."""
    chosen: list[Analyzer] = list(default_analyzers())
    if "secret" in items:
        from hullscan.secrets.analyzer import secret_analyzer

        chosen.append(secret_analyzer(_secret_config(options)))
    if "malware" in items:
        from hullscan.malware.analyzer import MalwareOptions, malware_analyzer

        chosen.append(malware_analyzer(options.malware or MalwareOptions()))
    if options.context.list_files:
        from hullscan.checks.files import file_hash_analyzer

        chosen.append(file_hash_analyzer())
    return chosen


def _secret_config(options: ItemOptions) -> SecretConfig | None:
    from hullscan.secrets.config import load_secret_config

    return load_secret_config(options.secret_config) if options.secret_config else None


def run_checks(report: ScanReport, items: list[str], options: ItemOptions) -> None:
    """Run the image-level detector of every chosen item other than vulnerabilities into `report`."""
    detectors: list[Detector] = []
    if "secret" in items:
        from hullscan.secrets.detector import SecretDetector

        detectors.append(SecretDetector(_secret_config(options)))
    if "malware" in items:
        from hullscan.malware.detector import MalwareDetector

        detectors.append(MalwareDetector())
    if "file" in items:
        from hullscan.checks.files import FileInfoDetector

        detectors.append(FileInfoDetector())
    if "baseline" in items:
        from hullscan.checks.baseline import BaselineDetector

        detectors.append(BaselineDetector())
    if "compliance" in items:
        from hullscan.checks.compliance import ComplianceDetector, LicenceDetector, LicencePolicy

        policy = options.context.licence_policy
        licences = LicenceDetector(LicencePolicy.load(policy)) if policy else LicenceDetector()
        detectors.append(ComplianceDetector(licences))
    for detector in detectors:
        report.checks.extend(detector.detect(report.facts, options.context))
    if "base" in items:
        from hullscan.checks.baseimage import BaseImageDetector

        BaseImageDetector().apply(report, options.context)
    report.scanners = [i for i in ALL_ITEMS if i in items]
