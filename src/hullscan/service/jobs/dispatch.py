"""`CeleryExecutor`: the executor of `hullscan serve` and `hullscan scheduler` in a fleet.

It runs no scan. A dispatcher thread claims queued scans within the fleet-wide caps (the same DB claim as the
in-process executor: per registry, global, best priority first, serialised by a PostgreSQL advisory lock) and
sends each to the Celery queue of its registry's cluster. Until a worker takes it, the claimed row is held by this
dispatcher, which keeps it alive with heartbeats and ends it as stopped if someone asks. It also sweeps the
fleet: a scan whose holder (a worker, or a dispatcher) has been silent for `worker_lost_after` seconds is queued
again (and sent again) or, its attempts used up, failed with WORKER_LOST. Any number of these may run at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from hullscan.service.jobs.broker import send_scan
from hullscan.service.jobs.executor import worker_id
from hullscan.service.jobs.queue import JobStore, Limits
from hullscan.service.jobs.wakeup import SlotListener
from hullscan.service.storage.models import STOPPED
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service.dispatch")
DISPATCH_EVERY = 1.0  # seconds between looks at the queue when no wake-up (jobs/wakeup.py) says there is work
CLAIM_BATCH = 200


class CeleryExecutor:
    def __init__(self, jobs: JobStore, limits: Limits, settings: Settings, app: Any) -> None:
        self.jobs = jobs
        self.limits = limits
        self.settings = settings
        self.app = app
        self.holder = worker_id("dispatch")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept = 0.0
        self.listener = SlotListener(settings.broker_url, self.wake, self._stopping)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hullscan-dispatch", daemon=True)
        self._thread.start()
        self.listener.start()

    def wake(self) -> None:
        self._wake.set()

    def stop_scan(self, scan_id: int) -> None:
        """The stop flag is in the database: the worker running the scan reads it with its next heartbeat."""
        self._wake.set()  # one held here, not yet taken by a worker, ends at the next pass

    def shutdown(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.listener.join(timeout=5)
        # Scans sent but not yet taken stay held by this dispatcher: a worker may be taking them right now. If none
        # does, they go silent and the sweep of another process (or of the next start) queues them again.

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.pass_once()
            except Exception:  # noqa: BLE001 - a database or broker hiccup must not end dispatching
                log.exception("dispatching scans failed; trying again")
            self._wake.wait(DISPATCH_EVERY)
            self._wake.clear()

    def pass_once(self) -> int:
        """Sweep when due, end the held scans someone stopped, send what the caps allow; how many were sent."""
        lost_after = self.settings.worker_lost_after
        if time.monotonic() - self._swept >= min(lost_after / 2, 10.0):
            self._swept = time.monotonic()
            recovered = self.jobs.recover(stale_after=dt.timedelta(seconds=lost_after),
                                          attempts=self.settings.scan_attempts)
            if recovered:
                log.warning("%d scan(s) whose worker went silent were queued again or failed", recovered)
        for scan_id in self.jobs.heartbeat_owned(self.holder):
            self.jobs.finish(scan_id, self.holder, STOPPED, code="STOPPED", message="stopped before a worker took it")
        sent = 0
        while not self._stopping.is_set():
            claimed = self.jobs.claim(self.holder, self.limits, slots=CLAIM_BATCH)
            for scan_id, cluster, priority in self.jobs.routes(claimed):
                try:
                    send_scan(self.app, scan_id, self.holder, cluster, priority)
                    sent += 1
                except Exception:  # noqa: BLE001 - the broker is down: the scan waits in the queue, not lost
                    log.exception("could not send scan %s to cluster %s; it stays queued", scan_id, cluster)
                    self.jobs.requeue(scan_id, self.holder)
            if len(claimed) < CLAIM_BATCH:
                return sent
        return sent
