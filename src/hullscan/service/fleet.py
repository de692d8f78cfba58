"""The fleet's long-running processes besides the API: a worker group's process and the scheduler.

- `run_worker`: a Celery worker on one queue (a registry cluster), `concurrency` scans at once in threads of one
  process that builds its engine once.
- `run_scheduler`: waits for the scheduler lock (jobs/leader.py), then fires the cron schedules, notices database
  updates (queuing re-evaluations, which run on the workers from stored facts), and, with a broker, dispatches
  queued scans to the workers and sweeps lost ones. Exactly one scheduler is active; the others stand by.

Both read the one `Settings` (HULLSCAN_DATABASE_URL, HULLSCAN_BROKER_URL, HULLSCAN_SECRET_KEY ...) as every process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from hullscan.errors import HullscanError
from hullscan.service.jobs.broker import make_app
from hullscan.service.jobs.dispatch import CeleryExecutor
from hullscan.service.jobs.executor import worker_id
from hullscan.service.jobs.leader import LeadershipLost, SchedulerLock
from hullscan.service.jobs.queue import JobStore, Limits
from hullscan.service.jobs.runner import ScanRunner
from hullscan.service.jobs.wakeup import SlotAnnouncer
from hullscan.service.jobs.worker import FleetWorker
from hullscan.service.reevaluation import DatabaseUpdater, put_setting
from hullscan.service.scheduler import Scheduler
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import now
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service.fleet")
ACTIVE_SCHEDULER = "scheduler.active"  # service setting: who is the active scheduler, since when


def require_broker(settings: Settings, command: str) -> str:
    if not settings.broker_url:
        raise HullscanError(f"`hullscan {command}` needs a broker: set HULLSCAN_BROKER_URL "
                            "(e.g. redis://127.0.0.1:6379/0) and HULLSCAN_DATABASE_URL to the fleet's PostgreSQL",
                            code="INVALID_OPTION")
    return settings.broker_url


def run_worker(settings: Settings, queue: str, concurrency: int, log_level: str = "info") -> None:
    """Run a worker of `queue` until it is told to stop (SIGTERM, Ctrl-C)."""
    from hullscan.pipeline import Engine

    require_broker(settings, "worker")
    db = Database(settings.service_database_url)
    db.migrate()
    engine = Engine(settings, pool="always", resident=True)
    fleet_worker = FleetWorker(ScanRunner(settings, db, SecretBox.from_settings(settings), engine), queue,
                               announce=SlotAnnouncer(settings.broker_url).announce)
    app = make_app(settings)
    fleet_worker.register(app)
    fleet_worker.start()
    from celery.signals import worker_shutting_down

    worker_shutting_down.connect(lambda **_: fleet_worker.hand_back(), weak=False)
    log.info("worker of cluster %s started (%s, %d at once)", queue, fleet_worker.worker, concurrency)
    try:
        worker = app.Worker(queues=[queue], concurrency=concurrency, pool="threads", loglevel=log_level.upper(),
                            hostname=f"{queue}.{os.getpid()}@{socket.gethostname()}", without_mingle=True,
                            without_gossip=True, optimization="fair", redirect_stdouts=False)
        worker.start()
    finally:
        fleet_worker.shutdown()
        engine.close()
        db.close()


def run_scheduler(settings: Settings, stop: threading.Event | None = None) -> None:
    """Stand by until this process holds the scheduler lock, then schedule (and dispatch, with a broker) until
    `stop` is set or the lock is lost (LeadershipLost: a supervisor starts it again)."""
    stop = stop or threading.Event()
    db = Database(settings.service_database_url)
    db.migrate()
    lock = SchedulerLock(db, settings.data_dir / "scheduler.lock")
    try:
        if not lock.acquire(stop):
            return
        me = worker_id("scheduler")
        with db.session() as session:
            put_setting(session, ACTIVE_SCHEDULER, {"id": me, "pid": os.getpid(), "since": now().isoformat()})
        log.info("this scheduler is active (%s)", me)
        jobs = JobStore(db)
        executor = None
        if settings.broker_url:
            executor = CeleryExecutor(jobs, Limits(settings.max_scans_per_registry, settings.max_running_scans),
                                      settings, make_app(settings))
        wake = executor.wake if executor is not None else (lambda: None)
        updater = DatabaseUpdater(db, settings, on_queued=wake)
        scheduler = Scheduler(db, SecretBox.from_settings(settings), settings, updater=updater, on_queued=wake)
        if executor is not None:
            executor.start()
        scheduler.start()
        try:
            while not stop.wait(1.0):
                lock.check()
        except LeadershipLost:
            log.error("the scheduler lost its lock; stopping so that another one takes over")
            raise
        finally:
            scheduler.stop()
            if executor is not None:
                executor.shutdown()
    finally:
        lock.release()
        db.close()
