"""Baseline checks: unsafe image settings, SSH, accounts, sudoers, preloads and weak passwords."""

from __future__ import annotations

from dataclasses import dataclass

from hullscan.checks.passwords import DEFAULT_BUDGET_SECONDS
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem


@dataclass
class BaselineOptions:
    # --password-budget: seconds for the wordlist stage of the weak-password check (0: the empty and user-name
    # tests only)
    password_budget_seconds: float = DEFAULT_BUDGET_SECONDS
    show_weak_passwords: bool = False


class BaselineItem(ScanItem[BaselineOptions]):
    name = "baseline"
    title = "Baseline checks"
    options_type = BaselineOptions

    def detect(self, report: ScanReport, options: BaselineOptions, ctx: ItemContext) -> None:
        from hullscan.checks.baseline import BaselineDetector
        from hullscan.checks.verdicts import VerdictCache
        from hullscan.checks.weakpasswords import PasswordOptions
        from hullscan.detectors import DetectContext

        # Verdicts stay in this machine's cache_dir whatever the layer cache (also a fleet's shared one): nothing
        # derived from a password hash goes to the shared store.
        cache = ctx.use_cache and ctx.settings.layer_cache != "none"
        passwords = PasswordOptions(
            verdicts=VerdictCache(ctx.settings.cache_dir) if cache else None, read_private=ctx.read_private,
            progress=ctx.progress.phase_progress, stop=lambda: ctx.cancel.expired, warn=ctx.warn)
        detector = BaselineDetector(passwords=passwords)
        context = DetectContext(password_budget_seconds=options.password_budget_seconds,
                                show_weak_passwords=options.show_weak_passwords)
        report.checks.extend(detector.detect(report.facts, context))
        report.password_check = detector.password_check


ITEM = BaselineItem()
