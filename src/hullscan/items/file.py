"""File information: setuid and world-writable files, unknown owners, executables in odd places."""

from __future__ import annotations

from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, NoOptions, ScanItem


class FileItem(ScanItem[NoOptions]):
    name = "file"
    title = "File information"
    options_type = NoOptions

    def detect(self, report: ScanReport, options: NoOptions, ctx: ItemContext) -> None:
        from hullscan.checks.files import FileInfoDetector
        from hullscan.detectors import DetectContext

        report.checks.extend(FileInfoDetector().detect(report.facts, DetectContext()))


ITEM = FileItem()
