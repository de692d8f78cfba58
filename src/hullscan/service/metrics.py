"""Prometheus metrics, computed from the database at each scrape (so every process of a fleet reports the same
numbers, and nothing is lost when one restarts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from hullscan.service.storage.models import QUEUED, Registry, Scan

if TYPE_CHECKING:
    from hullscan.service.core import Service


def render_metrics(svc: Service) -> tuple[bytes, str]:
    reg = CollectorRegistry()
    scans = Gauge("hullscan_scans", "Scans by state, cause and registry", ["state", "cause", "registry"], registry=reg)
    queue = Gauge("hullscan_queue_depth", "Queued scans per registry", ["registry"], registry=reg)
    with svc.db.session() as session:
        names = dict(session.execute(select(Registry.id, Registry.name)).all())
        for state, cause, registry_id, count in session.execute(
                select(Scan.state, Scan.cause_code, Scan.registry_id, func.count())
                .group_by(Scan.state, Scan.cause_code, Scan.registry_id)):
            scans.labels(state, cause or "", names.get(registry_id, str(registry_id))).set(count)
        for registry_id, count in session.execute(select(Scan.registry_id, func.count())
                                                  .where(Scan.state == QUEUED).group_by(Scan.registry_id)):
            queue.labels(names.get(registry_id, str(registry_id))).set(count)
    return generate_latest(reg), CONTENT_TYPE_LATEST
