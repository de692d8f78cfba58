"""Prometheus metrics, computed from the database at each scrape (so every process of a fleet reports the same
numbers, and nothing is lost when one restarts).

    hullscan_scans{state,cause,registry}                    scans by state and failure cause
    hullscan_scans_running{registry}                        scans running now
    hullscan_queue_depth{registry}                          scans waiting
    hullscan_scan_duration_seconds{kind,state}              histogram of finished scans (started -> finished)
    hullscan_vulndb_built_timestamp_seconds                 when the vulnerability database was built
    hullscan_vulndb_age_seconds                             how old that build is now
    hullscan_vulndb_present                                 0 when there is no usable database
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.service.storage.models import FINISHED, QUEUED, RUNNING, Registry, Scan

if TYPE_CHECKING:
    from hullscan.service.core import Service

# Seconds: a warm re-scan takes one, a big image minutes, the limit is three hours.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0)


def duration_seconds(session: Session) -> Any:
    """finished_at - started_at in seconds, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Scan.finished_at - Scan.started_at)
    return (func.julianday(Scan.finished_at) - func.julianday(Scan.started_at)) * 86400.0


class _FromDatabase(Collector):
    """A collector that reads everything in one pass over the service database and the vulnerability database."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        with self.svc.db.session() as session:
            yield from self._scans(session)
            yield from self._durations(session)
        yield from self._database()

    def _scans(self, session: Session) -> Iterator[Metric]:
        names = dict(session.execute(select(Registry.id, Registry.name)).all())
        scans = GaugeMetricFamily("hullscan_scans", "Scans by state, cause and registry",
                                  labels=["state", "cause", "registry"])
        running = GaugeMetricFamily("hullscan_scans_running", "Scans running now, per registry", labels=["registry"])
        queued = GaugeMetricFamily("hullscan_queue_depth", "Queued scans per registry", labels=["registry"])
        for state, cause, registry_id, count in session.execute(
                select(Scan.state, Scan.cause_code, Scan.registry_id, func.count())
                .group_by(Scan.state, Scan.cause_code, Scan.registry_id)):
            name = names.get(registry_id, str(registry_id))
            scans.add_metric([state, cause or "", name], count)
            if state == RUNNING:
                running.add_metric([name], count)
            elif state == QUEUED:
                queued.add_metric([name], count)
        yield from (scans, running, queued)

    def _durations(self, session: Session) -> Iterator[Metric]:
        seconds = duration_seconds(session)
        columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
        histogram = HistogramMetricFamily("hullscan_scan_duration_seconds",
                                          "How long finished scans ran, from start to end",
                                          labels=["kind", "state"])
        for kind, state, count, total, *under in session.execute(
                select(Scan.kind, Scan.state, func.count(), func.sum(seconds), *columns)
                .where(Scan.state.in_(FINISHED), Scan.started_at.is_not(None), Scan.finished_at.is_not(None))
                .group_by(Scan.kind, Scan.state)):
            buckets = [(repr(bound), int(n or 0)) for bound, n in zip(DURATION_BUCKETS, under, strict=True)]
            histogram.add_metric([kind, state], [*buckets, ("+Inf", int(count))], max(float(total or 0.0), 0.0))
        yield histogram

    def _database(self) -> Iterator[Metric]:
        from hullscan.vulndb.store import open_default

        present = GaugeMetricFamily("hullscan_vulndb_present", "1 when the vulnerability database can be used")
        try:
            with open_default(self.svc.settings.db_path) as store:
                built = dt.datetime.fromisoformat(store.info().built_at)
        except (HullscanError, ValueError, OSError):
            present.add_metric([], 0)
            yield present
            return
        if built.tzinfo is None:
            built = built.replace(tzinfo=dt.UTC)
        present.add_metric([], 1)
        yield present
        stamp = GaugeMetricFamily("hullscan_vulndb_built_timestamp_seconds",
                                  "When the vulnerability database was built (Unix time)")
        stamp.add_metric([], built.timestamp())
        age = GaugeMetricFamily("hullscan_vulndb_age_seconds", "Age of the vulnerability database's build")
        age.add_metric([], max((dt.datetime.now(dt.UTC) - built).total_seconds(), 0.0))
        yield from (stamp, age)


def render_metrics(svc: Service) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(_FromDatabase(svc))
    return generate_latest(registry), CONTENT_TYPE_LATEST
