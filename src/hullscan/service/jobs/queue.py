"""Scans as rows: queue them (once per image), claim them within the limits, keep them alive, finish them.

Every executor (the in-process one, Celery workers) goes through these functions, so the rules hold whoever runs
the scan: the same image queued twice runs once; manual scans go before pushes, which go before synchronisation
and schedules, which go before re-evaluation; at most N scans run per registry and M in all; a scan whose worker
stopped sending heartbeats is queued again, and failed once it has used up its attempts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from hullscan.errors import CATALOGUE
from hullscan.service.notify import events
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import (
    FAILED,
    FINISHED,
    PRIORITIES,
    QUEUED,
    RUNNING,
    STOPPED,
    Image,
    Registry,
    Scan,
    now,
)

CLAIM_LOCK = 0x68756C6C  # PostgreSQL advisory lock id ("hull") that serialises claims across processes
CANDIDATES = 500  # queued scans looked at per claim


@dataclass(frozen=True)
class Limits:
    per_registry: int = 10
    total: int = 10


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- queueing ----------------------------------------------------------------------------------------------

    def enqueue(self, session: Session, image: Image, trigger: str, items: list[str], requested_by: str = "",
                kind: str = "scan") -> tuple[Scan, bool]:
        """A scan of `image`, or the one already waiting or running for it (False: nothing new was queued).
        A waiting scan asked for again by someone more urgent moves up the queue."""
        priority = PRIORITIES[trigger]
        same = select(Scan).where(Scan.registry_id == image.registry_id, Scan.kind == kind,
                                  Scan.state.in_((QUEUED, RUNNING)))
        same = same.where(Scan.digest == image.digest) if image.digest else same.where(Scan.image_id == image.id)
        existing = session.scalars(same.order_by(Scan.id).limit(1)).first()
        if existing is not None:
            if existing.state == QUEUED and priority < existing.priority:
                existing.priority = priority
            return existing, False
        scan = Scan(image_id=image.id, registry_id=image.registry_id, kind=kind, trigger=trigger, priority=priority,
                    state=QUEUED, digest=image.digest, items=list(items), requested_by=requested_by)
        session.add(scan)
        session.flush()
        return scan, True

    # -- claiming ----------------------------------------------------------------------------------------------

    def claim(self, worker: str, limits: Limits, *, slots: int, registries: list[int] | None = None) -> list[int]:
        """Mark up to `slots` queued scans as running by `worker`, best first, within the limits; their ids.
        `registries` restricts the claim to those registries (a worker group beside them)."""
        if slots <= 0:
            return []
        with self.db.session() as session:
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
            running = dict(session.execute(
                select(Scan.registry_id, func.count()).where(Scan.state == RUNNING).group_by(Scan.registry_id)
            ).all())
            total = sum(running.values())
            if total >= limits.total:
                return []
            caps = dict(session.execute(select(Registry.id, Registry.max_concurrent_scans)).all())
            stamp = now()
            # The best few of each registry, not the best CANDIDATES of all: 2,000 scans of one registry queued
            # first would otherwise fill the window while that registry's cap lets 10 run, and every other
            # registry would wait behind them.
            per_registry = max([limits.per_registry, *(c for c in caps.values() if c)])
            rank = func.row_number().over(partition_by=Scan.registry_id, order_by=(Scan.priority, Scan.id))
            query = select(Scan.id, Scan.registry_id, Scan.priority, rank.label("rank")).where(
                Scan.state == QUEUED, or_(Scan.not_before.is_(None), Scan.not_before <= stamp))
            if registries is not None:
                query = query.where(Scan.registry_id.in_(registries))
            ranked = query.subquery()
            candidates = session.execute(
                select(ranked.c.id, ranked.c.registry_id).where(ranked.c.rank <= per_registry)
                .order_by(ranked.c.priority, ranked.c.id).limit(CANDIDATES)).all()
            claimed: list[int] = []
            for scan_id, registry_id in candidates:
                if len(claimed) >= slots or total >= limits.total:
                    break
                cap = caps.get(registry_id) or limits.per_registry
                if running.get(registry_id, 0) >= cap:
                    continue
                done = session.execute(
                    update(Scan).where(Scan.id == scan_id, Scan.state == QUEUED)
                    .values(state=RUNNING, worker=worker, started_at=stamp, heartbeat_at=stamp,
                            attempts=Scan.attempts + 1, progress=0.0, progress_text="starting")
                    .execution_options(synchronize_session=False))
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(scan_id)
                    running[registry_id] = running.get(registry_id, 0) + 1
                    total += 1
            return claimed

    # -- while running -----------------------------------------------------------------------------------------

    def heartbeat(self, scan_ids: list[int], worker: str) -> set[int]:
        """Say these scans are alive; the ids among them to stop: someone asked to, or they are no longer this
        worker's (it was taken for dead, and the scan was queued again or failed: running on would make two)."""
        if not scan_ids:
            return set()
        with self.db.session() as session:
            session.execute(update(Scan).where(Scan.id.in_(scan_ids), Scan.worker == worker, Scan.state == RUNNING)
                            .values(heartbeat_at=now()).execution_options(synchronize_session=False))
            mine = select(Scan.id).where(Scan.id.in_(scan_ids), Scan.worker == worker, Scan.state == RUNNING)
            alive = set(session.scalars(mine.where(Scan.stop_requested.is_(False))))
            return set(scan_ids) - alive

    def heartbeat_owned(self, worker: str) -> set[int]:
        """Say every running scan held by `worker` is alive (a dispatcher holding the scans it sent to workers
        that have not taken them yet); the ids among them someone asked to stop."""
        with self.db.session() as session:
            owned = Scan.state == RUNNING, Scan.worker == worker
            session.execute(update(Scan).where(*owned).values(heartbeat_at=now())
                            .execution_options(synchronize_session=False))
            return set(session.scalars(select(Scan.id).where(*owned, Scan.stop_requested)))

    def take(self, scan_id: int, holder: str, worker: str) -> bool:
        """`worker` takes over a scan `holder` claimed for it (a dispatcher that sent it through the broker).
        False when the scan is no longer `holder`'s: a duplicate delivery, a scan stopped, finished or given up
        on and queued again meanwhile. The one conditional UPDATE decides, so a scan is run by one worker."""
        with self.db.session() as session:
            stamp = now()
            done = session.execute(
                update(Scan).where(Scan.id == scan_id, Scan.state == RUNNING, Scan.worker == holder,
                                   Scan.stop_requested.is_(False))
                .values(worker=worker, started_at=stamp, heartbeat_at=stamp, progress_text="starting")
                .execution_options(synchronize_session=False))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def routes(self, scan_ids: list[int]) -> list[tuple[int, str, int]]:
        """(scan id, cluster of its registry, priority) of each scan: where and how urgently to send it."""
        if not scan_ids:
            return []
        with self.db.session() as session:
            rows = session.execute(select(Scan.id, Registry.cluster, Scan.priority)
                                   .join(Registry, Registry.id == Scan.registry_id)
                                   .where(Scan.id.in_(scan_ids)).order_by(Scan.priority, Scan.id)).all()
            return [(scan_id, cluster, priority) for scan_id, cluster, priority in rows]

    def progress(self, scan_id: int, fraction: float, text_: str) -> None:
        with self.db.session() as session:
            session.execute(update(Scan).where(Scan.id == scan_id, Scan.state == RUNNING)
                            .values(progress=max(0.0, min(1.0, fraction)), progress_text=text_[:250],
                                    heartbeat_at=now()).execution_options(synchronize_session=False))

    def request_stop(self, session: Session, scan: Scan, by: str) -> None:
        """A queued scan stops at once; a running one is flagged, and its executor stops it within seconds."""
        if scan.state in FINISHED:
            return
        scan.stop_requested = True
        if scan.state == QUEUED:
            _end(session, scan, STOPPED, "STOPPED", f"stopped by {by} before it started")

    # -- the end -----------------------------------------------------------------------------------------------

    def finish(self, scan_id: int, worker: str, state: str, *, code: str | None = None, message: str = "",
               apply: Callable[[Session, Scan], None] | None = None) -> bool:
        """Record the outcome, unless the scan is no longer this worker's (a duplicate delivery, a worker given up
        on): then nothing is written and False comes back. `apply` stores the result in the same transaction, so a
        scan never has a result without its state or two results."""
        with self.db.session() as session:
            scan = session.get(Scan, scan_id, with_for_update=True)
            if scan is None or scan.state != RUNNING or scan.worker != worker:
                return False
            if apply is not None:
                apply(session, scan)
            _end(session, scan, state, code, message)  # after the result: its event reads it
            return True

    def requeue(self, scan_id: int, worker: str) -> None:
        """Hand a running scan back to the queue (its process is shutting down)."""
        with self.db.session() as session:
            session.execute(update(Scan).where(Scan.id == scan_id, Scan.worker == worker, Scan.state == RUNNING)
                            .values(state=QUEUED, worker=None, progress=0.0, progress_text="")
                            .execution_options(synchronize_session=False))

    def retry_later(self, scan_id: int, worker: str, delay: float, why: str) -> bool:
        """Queue a running scan again, to be claimed no sooner than `delay` seconds from now (a transient registry
        failure: the registry may be back by then). False when the scan is no longer this worker's."""
        with self.db.session() as session:
            done = session.execute(
                update(Scan).where(Scan.id == scan_id, Scan.worker == worker, Scan.state == RUNNING,
                                   Scan.stop_requested.is_(False))
                .values(state=QUEUED, worker=None, progress=0.0, not_before=now() + dt.timedelta(seconds=delay),
                        progress_text=f"retrying in {delay:g} s: {why}"[:250])
                .execution_options(synchronize_session=False))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def recover(self, *, stale_after: dt.timedelta, attempts: int, worker_prefix: str | None = None) -> int:
        """Queue again the running scans whose worker went silent (or, with `worker_prefix`, every running scan
        of that worker family: this process restarted); fail those that used up their attempts. How many."""
        cutoff = now() - stale_after
        with self.db.session() as session:
            query = select(Scan).where(Scan.state == RUNNING)
            if worker_prefix is not None:
                query = query.where(Scan.worker.startswith(worker_prefix))
            else:
                query = query.where(Scan.heartbeat_at < cutoff)
            lost = session.scalars(query.with_for_update()).all()
            for scan in lost:
                if scan.stop_requested:
                    _end(session, scan, STOPPED, "STOPPED", "stopped while its worker was lost")
                elif scan.attempts >= attempts:
                    _end(session, scan, FAILED, "WORKER_LOST", f"the worker running it ({scan.worker}) stopped "
                         f"{scan.attempts} time(s)")
                else:
                    scan.state, scan.worker, scan.progress, scan.progress_text = QUEUED, None, 0.0, "queued again"
            return len(lost)


def _end(session: Session, scan: Scan, state: str, code: str | None, message: str) -> None:
    """The scan's outcome, and its event in the outbox in the same transaction (a crash loses neither alone)."""
    scan.state = state
    scan.finished_at = now()
    scan.cause_code = code
    scan.cause_message = message or (CATALOGUE[code].title if code in CATALOGUE else None)
    scan.pull_authorization = None  # per-scan credentials live no longer than the scan
    if state != RUNNING:
        scan.progress_text = state
    events.scan_ended(session, scan)
