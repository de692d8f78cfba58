"""Baseline checks: unsafe image settings, SSH, accounts, sudoers, preloads and weak passwords."""

from __future__ import annotations

from dataclasses import dataclass

from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem


@dataclass
class BaselineOptions:
    password_budget_seconds: float = 60.0  # --password-budget
    show_weak_passwords: bool = False


class BaselineItem(ScanItem[BaselineOptions]):
    name = "baseline"
    title = "Baseline checks"
    options_type = BaselineOptions

    def detect(self, report: ScanReport, options: BaselineOptions, ctx: ItemContext) -> None:
        from hullscan.checks.baseline import BaselineDetector
        from hullscan.detectors import DetectContext

        context = DetectContext(password_budget_seconds=options.password_budget_seconds,
                                show_weak_passwords=options.show_weak_passwords)
        report.checks.extend(BaselineDetector().detect(report.facts, context))


ITEM = BaselineItem()
