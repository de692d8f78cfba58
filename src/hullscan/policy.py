"""Blocking decisions computed from a scan's findings, for the service's pull-blocking policy.

`blocking_findings` answers "which findings make this image blocked?" under a policy: a severity threshold
(findings at or above it block), and/or `block_kev` ("block anything in CISA's Known Exploited Vulnerabilities
catalogue", whatever its severity). Allowlisted ids never block. Only `report.vulnerabilities` count: findings
suppressed by VEX or ignored by the ignore file are not in it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hullscan.findings import SEVERITIES, VulnFinding, severity_rank


@dataclass(frozen=True)
class BlockPolicy:
    severity: str | None = None  # block findings at or above this level (None: no severity threshold)
    block_kev: bool = False  # block every known exploited vulnerability, whatever its severity

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity.upper() not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; use one of {', '.join(SEVERITIES)}")


def in_kev(findings: Iterable[VulnFinding]) -> list[VulnFinding]:
    """The findings listed in CISA's KEV catalogue."""
    return [f for f in findings if f.kev]


def blocking_findings(findings: Iterable[VulnFinding], policy: BlockPolicy,
                      allowlist: Collection[str] = ()) -> list[VulnFinding]:
    """The findings that block under `policy` (empty: the image may be pulled)."""
    allowed = {a.upper() for a in allowlist}
    floor = severity_rank(policy.severity) if policy.severity is not None else None
    out = []
    for f in findings:
        if {i.upper() for i in (f.id, *f.aliases)} & allowed:
            continue
        if (policy.block_kev and f.kev) or (floor is not None and severity_rank(f.severity) >= floor):
            out.append(f)
    return out
