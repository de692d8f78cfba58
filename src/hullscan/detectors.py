"""The detector plug-in interface: image-level checks that turn merged facts into findings.

Per-file detections (secrets, malware) come from analyzers during the walk; detectors look at the
whole image (its config, its final file tree, its packages, configuration files kept by analyzers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hullscan.checks.passwords import DEFAULT_BUDGET_SECONDS
from hullscan.findings import CheckFinding
from hullscan.model import ImageFacts


@dataclass
class DetectContext:
    """What detectors may need beyond the image; each option belongs to one item."""

    password_budget_seconds: float = DEFAULT_BUDGET_SECONDS  # the wordlist stage's (see checks/passwords.py)
    show_weak_passwords: bool = False
    licence_policy: Path | None = None
    base_catalogue: Path | None = None
    list_files: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class Detector(Protocol):
    item: str  # the scan item this detector serves (findings.ITEMS)

    def detect(self, facts: ImageFacts, context: DetectContext) -> list[CheckFinding]: ...
