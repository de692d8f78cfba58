"""Vulnerabilities: the inventory matched against the vulnerability database."""

from __future__ import annotations

from dataclasses import dataclass

from hullscan.analyzers.base import Analyzer
from hullscan.errors import HullscanError
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem
from hullscan.vulndb.model import AdvisoryStore


@dataclass
class VulnOptions:
    ignore_unfixed: bool = False
    update: bool = True  # bring the database up to date first when it is missing or stale


class VulnItem(ScanItem[VulnOptions]):
    name = "vuln"
    title = "Vulnerabilities"
    options_type = VulnOptions

    def analyzers(self, options: VulnOptions, ctx: ItemContext) -> list[Analyzer]:
        from hullscan.vex.analyzer import vex_analyzer

        return [vex_analyzer()]  # VEX documents the image ships (/*.vex.json)

    def prepare(self, options: VulnOptions, ctx: ItemContext) -> None:
        ctx.state["vuln.store"] = open_database(ctx, update=options.update)

    def detect(self, report: ScanReport, options: VulnOptions, ctx: ItemContext) -> None:
        from hullscan.detect import match

        store: AdvisoryStore = ctx.state["vuln.store"]
        found = match(report.facts, store, ignore_unfixed=options.ignore_unfixed)
        report.vulnerabilities, report.database = found.vulnerabilities, found.database
        report.unchecked, report.checked_packages = found.unchecked, found.checked_packages
        report.notes.extend(found.notes)


def open_database(ctx: ItemContext, *, update: bool) -> AdvisoryStore:
    """The vulnerability database, updated first when missing or over 7 days old (unless told not to)."""
    from hullscan.vulndb.store import open_default

    path = ctx.settings.db_path
    if update:
        stale = True
        if path.exists():
            with open_default(path) as current:
                stale = current.is_stale()
        if stale:
            try:
                from hullscan.vulndb.sources import DataSources
                from hullscan.vulndb.update import update_database  # its HTTP client: only when updating

                sources = DataSources.from_settings(ctx.settings)
                update_database(path, base_url=sources.osv, sources=sources)
            except HullscanError as exc:
                if not path.exists():
                    raise
                ctx.warn(f"the database could not be updated ({exc.detail}); using the existing one")
    store = open_default(path)
    if store.is_stale():
        ctx.warn(f"the vulnerability database is {store.age_days():.0f} days old; run 'hullscan db update'")
    return store


ITEM = VulnItem()
