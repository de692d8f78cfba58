"""What the console's dashboard shows, read from stored results only: images by worst severity per namespace, the
open critical and high findings day by day, scans by state, and the vulnerability database's age.

HTTP-free: the console calls these with the namespaces a visitor may see (None: every namespace, for an admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.findings import SEVERITIES
from hullscan.service.storage.models import STATES, SUCCEEDED, Image, Namespace, Registry, Scan, now

NONE, UNSCANNED = "NONE", "UNSCANNED"  # no vulnerability at all; no successful scan yet
WORST = (*SEVERITIES, NONE, UNSCANNED)


def worst_severity(counts: dict[str, Any] | None) -> str:
    """The highest severity with a vulnerability in a scan's counts; NONE when there is none."""
    per = (counts or {}).get("vulnerabilities") or {}
    for severity in SEVERITIES:
        if per.get(severity):
            return severity
    return NONE


def _visible(namespaces: Collection[int] | None) -> ColumnElement[bool]:
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
        .outerjoin(Scan, Image.last_scan_id == Scan.id).where(Image.present, _visible(namespaces))).all()
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
               _visible(namespaces))
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


def scans_by_state(session: Session, namespaces: Collection[int] | None) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state, n in session.execute(select(Scan.state, func.count()).join(Image, Scan.image_id == Image.id)
                                    .where(_visible(namespaces)).group_by(Scan.state)):
        counts[state] = n
    return counts


@dataclass(frozen=True)
class DatabaseAge:
    built_at: dt.datetime | None  # None: no usable database
    age: dt.timedelta | None
    problem: str = ""  # why there is none (the catalogue's words)
    advisories: int | None = None

    @property
    def stale(self) -> bool:
        """Older than two days: OSV publishes daily, so the service's updates have stopped."""
        return self.age is None or self.age > dt.timedelta(days=2)


def database_age(db_path: Path, at: dt.datetime | None = None) -> DatabaseAge:
    from hullscan.vulndb.store import open_default

    try:
        with open_default(db_path) as store:
            info = store.info()
        built = dt.datetime.fromisoformat(info.built_at)
    except HullscanError as exc:
        return DatabaseAge(None, None, exc.detail)
    except (ValueError, OSError) as exc:
        return DatabaseAge(None, None, str(exc))
    if built.tzinfo is None:
        built = built.replace(tzinfo=dt.UTC)
    return DatabaseAge(built, max((at or now()) - built, dt.timedelta()), advisories=sum(info.counts.values()))
