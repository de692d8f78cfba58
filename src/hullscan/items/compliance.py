"""Software compliance: licences under a policy, and operating systems past their end of life."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hullscan.errors import OptionError
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem


@dataclass
class ComplianceOptions:
    licence_policy: Path | None = None  # YAML licence policy (--licence-policy)


class ComplianceItem(ScanItem[ComplianceOptions]):
    name = "compliance"
    title = "Software compliance"
    options_type = ComplianceOptions

    def prepare(self, options: ComplianceOptions, ctx: ItemContext) -> None:
        from hullscan.checks.compliance import ComplianceDetector, LicenceDetector, LicencePolicy, PolicyError
        from hullscan.checks.eol import EolDataError, EolDetector

        try:
            licences = LicenceDetector(LicencePolicy.load(options.licence_policy)) if options.licence_policy \
                else LicenceDetector()
            eol = EolDetector(data_dir=ctx.settings.data_dir)
            _ = eol.table  # a broken end-of-life table is reported now, not after the layers
        except (PolicyError, EolDataError) as exc:
            raise OptionError(str(exc)) from None
        ctx.state["compliance.detector"] = ComplianceDetector(licences, eol)

    def detect(self, report: ScanReport, options: ComplianceOptions, ctx: ItemContext) -> None:
        from hullscan.checks.compliance import ComplianceDetector
        from hullscan.detectors import DetectContext

        if "compliance.detector" not in ctx.state:
            self.prepare(options, ctx)
        detector: ComplianceDetector = ctx.state["compliance.detector"]
        report.checks.extend(detector.detect(report.facts, DetectContext()))


ITEM = ComplianceItem()
