"""May this image be pulled? Decided from stored results only: never by scanning on the request path.

Modelled on Harbor's "Prevent vulnerable images from running" (shared/specs/harbor-api/pull-blocking.md), with
two deliberate differences: the count in the message is of the findings at or above the threshold that are not
allowlisted (Harbor counts every finding), and allowlist entries expire one by one (Harbor expires a whole list).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.findings import severity_rank
from hullscan.service import reportstore
from hullscan.service.storage.models import FAILED, STOPPED, SUCCEEDED, AllowlistEntry, Image, Namespace, Scan, now

_POLICY = "configured policy in 'Prevent images with vulnerability severity of \"{sev}\" or higher from running.'"


@dataclass
class Decision:
    pullable: bool
    reasons: list[str] = field(default_factory=list)
    scan_id: int | None = None
    digest: str | None = None
    blocking: list[dict[str, Any]] = field(default_factory=list)  # the findings that block


def effective_allowlist(session: Session, namespace: Namespace, at: dt.datetime) -> dict[str, AllowlistEntry]:
    """Vulnerability id -> entry, for the entries that have not expired (the system list too, when reused)."""
    owner = AllowlistEntry.namespace_id == namespace.id
    if namespace.reuse_system_allowlist:
        owner = owner | AllowlistEntry.namespace_id.is_(None)
    entries = session.scalars(select(AllowlistEntry).where(owner))
    return {e.vuln_id.upper(): e for e in entries if e.expires_at is None or e.expires_at > at}


def replace_allowlist(session: Session, namespace_id: int | None, items: Sequence[tuple[str, str, dt.datetime | None]],
                      by: str) -> list[AllowlistEntry]:
    """Make (vulnerability id, reason, expiry) the whole allowlist of a namespace (None: the system-wide list that
    namespaces may reuse). Ids compare case-insensitively; naming one twice is refused."""
    ids = [vuln_id.upper() for vuln_id, _, _ in items]
    duplicate = sorted({i for i in ids if ids.count(i) > 1})
    if duplicate:
        raise HullscanError(f"the allowlist names {', '.join(duplicate)} more than once", code="INVALID_REQUEST")
    owner = AllowlistEntry.namespace_id.is_(None) if namespace_id is None else \
        AllowlistEntry.namespace_id == namespace_id
    session.execute(delete(AllowlistEntry).where(owner).execution_options(synchronize_session="fetch"))
    entries = [AllowlistEntry(namespace_id=namespace_id, vuln_id=vuln_id.upper(), reason=reason, expires_at=expires,
                              created_by=by) for vuln_id, reason, expires in items]
    session.add_all(entries)
    session.flush()
    return entries


def system_allowlist(session: Session) -> list[AllowlistEntry]:
    return list(session.scalars(select(AllowlistEntry).where(AllowlistEntry.namespace_id.is_(None))
                                .order_by(AllowlistEntry.vuln_id)))


def _title(severity: str) -> str:
    return severity.capitalize()


def decide(session: Session, registry_id: int, repository: str, reference: str,
           at: dt.datetime | None = None) -> Decision:
    at = at or now()
    namespace_name = repository.split("/", 1)[0]
    namespace = session.scalars(select(Namespace).where(Namespace.registry_id == registry_id,
                                                        Namespace.name == namespace_name)).first()
    if namespace is None or not namespace.block_enabled:
        return Decision(True)
    policy = _POLICY.format(sev=_title(namespace.block_severity))
    digest = reference if reference.startswith(("sha256:", "sha512:")) else None
    if digest is None:
        image = session.scalars(select(Image).where(Image.registry_id == registry_id, Image.repository == repository,
                                                    Image.reference == reference)).first()
        digest = image.digest if image is not None else None
    last = None
    if digest is not None:
        last = session.scalars(select(Scan).where(Scan.registry_id == registry_id, Scan.digest == digest,
                                                  Scan.state.in_((SUCCEEDED, FAILED, STOPPED)))
                               .order_by(Scan.finished_at.desc(), Scan.id.desc()).limit(1)).first()
    if last is None:
        if namespace.block_unscanned:
            return Decision(False, [f"current image without vulnerability scanning cannot be pulled due to {policy} "
                                    "To continue with pull, please contact your project administrator for help."],
                            digest=digest)
        return Decision(True, ["the image has not been scanned"], digest=digest)
    if last.state != SUCCEEDED:
        if namespace.block_unscanned:
            status = "Error" if last.state == FAILED else "Stopped"
            return Decision(False, [f'current image with "{status}" status of vulnerability scanning cannot be '
                                    f"pulled due to {policy} To continue with pull, please contact your project "
                                    "administrator for help."], scan_id=last.id, digest=digest)
        succeeded = session.scalars(select(Scan).where(Scan.registry_id == registry_id, Scan.digest == digest,
                                                       Scan.state == SUCCEEDED)
                                    .order_by(Scan.finished_at.desc(), Scan.id.desc()).limit(1)).first()
        if succeeded is None:
            return Decision(True, [f"the last scan {last.state}"], scan_id=last.id, digest=digest)
        last = succeeded
    allowed = effective_allowlist(session, namespace, at)
    floor = severity_rank(namespace.block_severity)
    blocking = []
    for f in reportstore.findings(session, last.id):
        ids = {f["id"].upper(), *(a.upper() for a in f.get("aliases", []))}
        if ids & allowed.keys():
            continue
        if severity_rank(f.get("severity", "UNKNOWN")) >= floor or (namespace.block_kev and f.get("kev")):
            blocking.append(f)
    if not blocking:
        return Decision(True, [], scan_id=last.id, digest=digest)
    n = len(blocking)
    word = "vulnerability" if n == 1 else "vulnerabilities"
    reasons = [f"current image with {n} {word} cannot be pulled due to {policy} To continue with pull, please contact "
               "your project administrator to exempt matched vulnerabilities through configuring the CVE allowlist."]
    kev = sum(1 for f in blocking if f.get("kev") and severity_rank(f.get("severity", "UNKNOWN")) < floor)
    if kev:
        reasons.append(f"{kev} of them are known to be exploited (CISA KEV), which this namespace blocks whatever "
                       "their severity")
    return Decision(False, reasons, scan_id=last.id, digest=digest, blocking=blocking)
