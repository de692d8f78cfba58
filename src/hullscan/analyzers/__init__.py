"""Analyzer plug-ins. Every module here may expose `ANALYZERS`, a list of analyzer instances."""

from __future__ import annotations

import importlib
import pkgutil

from hullscan.analyzers.base import Analyzer


def default_analyzers() -> list[Analyzer]:
    found: list[Analyzer] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "ANALYZERS", []))
    return found
