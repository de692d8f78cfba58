"""Base image: which known image this one is built on, and whether a newer base has fewer findings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hullscan.errors import OptionError
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem


@dataclass
class BaseOptions:
    catalogue: Path | None = None  # the known-base catalogue [default: the settings' catalogue_path]


class BaseItem(ScanItem[BaseOptions]):
    name = "base"
    title = "Base image"
    options_type = BaseOptions

    def prepare(self, options: BaseOptions, ctx: ItemContext) -> None:
        from hullscan.checks.baseimage import BaseCatalogue, CatalogueError

        catalogue = BaseCatalogue(options.catalogue or ctx.settings.catalogue_path)
        try:
            catalogue.entries()  # a damaged catalogue is reported before the layers are read
        except CatalogueError as exc:
            raise OptionError(str(exc)) from None
        ctx.state["base.catalogue"] = catalogue

    def detect(self, report: ScanReport, options: BaseOptions, ctx: ItemContext) -> None:
        from hullscan.checks.baseimage import BaseImageDetector, CatalogueError

        if "base.catalogue" not in ctx.state:
            self.prepare(options, ctx)
        try:
            BaseImageDetector(ctx.state["base.catalogue"], ctx.scans).apply(report)
        except CatalogueError as exc:
            raise OptionError(str(exc)) from None


ITEM = BaseItem()
