"""The scan items, in the order reports show them: each name and the module that declares it.

Adding an item: write its module (a subclass of `hullscan.items.base.ScanItem` bound to `ITEM`) and add one line
here. This module imports nothing, so the names cost nothing to list (the CLI's help, the API's schema).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hullscan.items.base import ScanItem

REGISTRY: dict[str, str] = {
    "vuln": "hullscan.items.vuln",
    "secret": "hullscan.items.secret",
    "malware": "hullscan.items.malware",
    "file": "hullscan.items.file",
    "baseline": "hullscan.items.baseline",
    "compliance": "hullscan.items.compliance",
    "base": "hullscan.items.base_image",
}
NAMES: tuple[str, ...] = tuple(REGISTRY)
DEFAULT: tuple[str, ...] = NAMES  # what `hullscan scan` runs unless told otherwise


def get(name: str) -> ScanItem[Any]:
    """The item called `name`; KeyError for an unknown one (callers validate names first)."""
    item: ScanItem[Any] = importlib.import_module(REGISTRY[name]).ITEM
    return item


def unknown(names: list[str] | tuple[str, ...]) -> list[str]:
    return [n for n in names if n not in REGISTRY]
