"""A VEX statement as hullscan holds it, the same for OpenVEX and CycloneDX VEX."""

from __future__ import annotations

from dataclasses import dataclass, field

# OpenVEX statuses; CycloneDX analysis states are mapped onto them (vex.parse).
SUPPRESSING = frozenset({"not_affected", "fixed"})
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")


@dataclass(frozen=True)
class VexStatement:
    vulnerability: str  # its id (CVE, GHSA, ...)
    status: str  # one of STATUSES
    aliases: tuple[str, ...] = ()
    # Package URLs the statement is about. An OCI/Docker product with no subcomponents covers every package of
    # the image; any other purl names one package (a version in it must equal the package's).
    products: tuple[str, ...] = ()
    justification: str = ""
    impact: str = ""  # impact_statement (OpenVEX) or analysis.detail (CycloneDX)
    timestamp: str = ""  # later statements win over earlier ones about the same thing
    source: str = ""  # the document it came from
    order: int = 0  # position across every document given (a tie-break for equal timestamps)
    ids: frozenset[str] = field(default_factory=frozenset)  # vulnerability + aliases, upper-cased



def statement(vulnerability: str, status: str, *, aliases: tuple[str, ...] = (), products: tuple[str, ...] = (),
              justification: str = "", impact: str = "", timestamp: str = "", source: str = "",
              order: int = 0) -> VexStatement:
    ids = frozenset(i.strip().upper() for i in (vulnerability, *aliases) if i.strip())
    return VexStatement(vulnerability, status, aliases, products, justification, impact, timestamp, source, order, ids)
