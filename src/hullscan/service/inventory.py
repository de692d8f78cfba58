"""A registry's repositories as people browse them: one row per repository with its tags, its newest push, its
last scan and the worst severity its scanned tags show. The API lists images; this groups them.

HTTP-free: callers pass the namespaces the reader may see (None: every namespace, for an admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from hullscan.findings import SEVERITIES
from hullscan.service.history import UNSCANNED, worst_severity
from hullscan.service.storage.models import SUCCEEDED, Image, Namespace, Scan


@dataclass
class Repository:
    name: str
    namespace: str
    tags: int
    untagged: int
    pushed_at: dt.datetime | None
    last_scan_at: dt.datetime | None
    worst: str  # a severity, NONE, or UNSCANNED when no tag has a successful scan
    counts: dict[str, int] = field(default_factory=dict)  # vulnerabilities by severity, summed over scanned tags


def repositories(session: Session, registry_id: int, namespaces: Collection[int] | None, *, contains: str = "",
                 namespace: str | None = None, page: int = 1, page_size: int = 50) -> tuple[list[Repository], int]:
    """One page of the registry's repositories (present images only), by name; and how many there are."""
    visible = true() if namespaces is None else Image.namespace_id.in_(list(namespaces))
    where = [Image.registry_id == registry_id, Image.present, visible]
    if contains:
        escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Image.repository.ilike(f"%{escaped}%", escape="\\"))
    if namespace is not None:
        where.append(Namespace.name == namespace)
    grouped = (select(Image.repository, Namespace.name, func.count(Image.tag), func.count() - func.count(Image.tag),
                      func.max(Image.pushed_at))
               .join(Namespace, Image.namespace_id == Namespace.id).where(*where)
               .group_by(Image.repository, Namespace.name))
    total = session.scalar(select(func.count()).select_from(grouped.subquery())) or 0
    rows = session.execute(grouped.order_by(Image.repository).offset((page - 1) * page_size).limit(page_size)).all()
    names = [r[0] for r in rows]
    scans: dict[str, list[tuple[str, dt.datetime | None, dict[str, Any] | None]]] = {}
    if names:
        for repo, state, finished, counts in session.execute(
                select(Image.repository, Scan.state, Scan.finished_at, Scan.counts)
                .join(Scan, Image.last_scan_id == Scan.id).where(*where, Image.repository.in_(names))):
            scans.setdefault(repo, []).append((state, finished, counts))
    out = []
    for repo, ns, tags, untagged, pushed in rows:
        seen = scans.get(repo, [])
        ok = [counts for state, _, counts in seen if state == SUCCEEDED and counts is not None]
        summed = {s: sum(int((c.get("vulnerabilities") or {}).get(s, 0)) for c in ok) for s in SEVERITIES}
        worst = UNSCANNED if not ok else worst_severity({"vulnerabilities": summed})
        finished = [f for _, f, _ in seen if f is not None]
        out.append(Repository(repo, ns, tags, untagged, pushed, max(finished) if finished else None, worst, summed))
    return out, total


@dataclass(frozen=True)
class ScanBrief:
    id: int
    state: str
    progress: float
    progress_text: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    cause_code: str | None


def newest_scans(session: Session, image_ids: Collection[int]) -> dict[int, ScanBrief]:
    """The newest scan of each image, whatever its state (a queued or running one included): what an image list
    shows while scans come and go. The caller has already checked the reader may see these images."""
    if not image_ids:
        return {}
    newest = (select(func.max(Scan.id)).where(Scan.image_id.in_(list(image_ids)), Scan.kind == "scan")
              .group_by(Scan.image_id))
    return {s.image_id: ScanBrief(s.id, s.state, s.progress, s.progress_text, s.created_at, s.finished_at,
                                  s.cause_code)
            for s in session.scalars(select(Scan).where(Scan.id.in_(newest)))}
