"""What every scan item declares: its name, its options, the per-file analyzers it needs, the checks it makes
before any layer is read, and its image-level detector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hullscan.analyzers.base import Analyzer
from hullscan.cancel import CancelToken
from hullscan.findings import ScanReport
from hullscan.scan import NoProgress, Progress
from hullscan.scanstore import ScanStoreBackend
from hullscan.settings import Settings

OptionsT = TypeVar("OptionsT")


@dataclass
class ItemContext:
    """What items may use beyond their options: where data lives, the scan's clock, a place for warnings, the
    progress display (a detector that takes more than a second says how far it is), and state an item keeps between
    `prepare` and `detect` (an opened database, a loaded policy)."""

    settings: Settings
    cancel: CancelToken
    warn: Callable[[str], None]
    scans: ScanStoreBackend | None = None
    state: dict[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=NoProgress)
    use_cache: bool = True  # False: the request wants everything analysed afresh (no cached verdicts either)
    # A final file's private facts (FileFacts.private, never cached), by reading the layer that holds it again; set
    # by the pipeline once the image is read. Raises a HullscanError when the image cannot be read again.
    read_private: Callable[[str], dict[str, Any] | None] | None = None


class ScanItem(Generic[OptionsT]):
    name: str = ""
    title: str = ""
    options_type: type[OptionsT]

    def options(self, given: Any) -> OptionsT:
        """The item's options from a request (None: the defaults)."""
        if given is None:
            return self.options_type()
        if not isinstance(given, self.options_type):
            raise TypeError(f"options of scan item {self.name!r} must be {self.options_type.__name__}")
        return given

    def analyzers(self, options: OptionsT, ctx: ItemContext) -> list[Analyzer]:
        """Per-file analyzers the walk must run for this item (beyond the inventory's)."""
        return []

    def prepare(self, options: OptionsT, ctx: ItemContext) -> None:
        """Checks and loading done before any layer is read, so a bad option fails in a second, not after an hour."""

    def detect(self, report: ScanReport, options: OptionsT, ctx: ItemContext) -> None:
        """Add the item's findings to `report` (from its facts only: no image bytes are at hand any more)."""


@dataclass
class NoOptions:
    pass
