"""What the console's dashboard shows, read from stored results only: images by worst severity per namespace, the
open critical and high findings day by day (scans by state: history.summarise; the database's age: /api/v1/database).

HTTP-free: the console calls these with the namespaces a visitor may see (None: every namespace, for an admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from hullscan.findings import SEVERITIES
from hullscan.service.history import NONE, UNSCANNED, worst_severity
from hullscan.service.storage.models import SUCCEEDED, Image, Namespace, Registry, Scan, now

WORST = (*SEVERITIES, NONE, UNSCANNED)


def visible(namespaces: Collection[int] | None) -> ColumnElement[bool]:
    """The images of these namespaces (None: every image)."""
    return true() if namespaces is None else Image.namespace_id.in_(list(namespaces))


@dataclass
class NamespaceSeverities:
    registry_id: int
    registry: str
    namespace: str
    counts: dict[str, int] = field(default_factory=dict)  # WORST -> images

    @property
    def images(self) -> int:
        return sum(self.counts.values())


def severities_by_namespace(session: Session, namespaces: Collection[int] | None) -> list[NamespaceSeverities]:
    """Present images of each namespace by the worst severity of their last scan (UNSCANNED without one), the
    namespaces with the most images first."""
    rows = session.execute(
        select(Image.namespace_id, Registry.id, Registry.name, Namespace.name, Scan.state, Scan.counts)
        .join(Namespace, Image.namespace_id == Namespace.id).join(Registry, Image.registry_id == Registry.id)
        .outerjoin(Scan, Image.last_scan_id == Scan.id).where(Image.present, visible(namespaces))).all()
    found: dict[int, NamespaceSeverities] = {}
    for ns_id, registry_id, registry, namespace, state, counts in rows:
        entry = found.setdefault(ns_id, NamespaceSeverities(registry_id, registry, namespace, dict.fromkeys(WORST, 0)))
        entry.counts[UNSCANNED if state != SUCCEEDED or counts is None else worst_severity(counts)] += 1
    return sorted(found.values(), key=lambda e: (-e.images, e.registry, e.namespace))


@dataclass(frozen=True)
class TrendPoint:
    day: dt.date
    critical: int
    high: int


def open_findings_trend(session: Session, namespaces: Collection[int] | None, days: int = 30,
                        at: dt.datetime | None = None) -> list[TrendPoint]:
    """For each of the last `days` days (UTC, today last): the critical and high vulnerabilities open at the end
    of that day, summed over present images, each image counted by its newest successful scan (or re-evaluation)
    finished by then. A rebuild that fixes findings lowers the line; a database update that finds new ones raises
    it."""
    at = at or now()
    today = at.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    rows = session.execute(
        select(Scan.image_id, Scan.finished_at, Scan.counts).join(Image, Scan.image_id == Image.id)
        .where(Scan.state == SUCCEEDED, Scan.finished_at.is_not(None), Scan.finished_at <= at, Image.present,
               visible(namespaces))
        .order_by(Scan.finished_at, Scan.id)).all()
    latest: dict[int, tuple[int, int]] = {}  # image -> (critical, high) of its newest scan so far
    points: list[TrendPoint] = []
    i = 0
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        while i < len(rows) and rows[i][1] < end:
            image_id, _, counts = rows[i]
            per = (counts or {}).get("vulnerabilities") or {}
            latest[image_id] = (int(per.get("CRITICAL", 0)), int(per.get("HIGH", 0)))
            i += 1
        points.append(TrendPoint(day, sum(c for c, _ in latest.values()), sum(h for _, h in latest.values())))
    return points
