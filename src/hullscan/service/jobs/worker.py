"""`FleetWorker`: what `hullscan worker --queue NAME` runs inside each Celery task.

One worker process builds its engine (and heavy analysis pool) once and runs up to `--concurrency` scans in
threads. A task takes its scan from the dispatcher that claimed it (jobs/queue.py `take`): the conditional UPDATE
makes a duplicate or late delivery a no-op. A heartbeat thread keeps the scans of this process alive and turns a
stop request, read from the database, into a cancellation within seconds, whichever process received it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hullscan.cancel import CancelToken
from hullscan.service.jobs.broker import SCAN_TASK
from hullscan.service.jobs.executor import worker_id
from hullscan.service.jobs.runner import ScanRunner

log = logging.getLogger("hullscan.service.worker")
DROPPED = "dropped"


class FleetWorker:
    def __init__(self, runner: ScanRunner, queue: str, announce: Callable[[], None] = lambda: None) -> None:
        self.runner = runner
        self.announce = announce  # a scan ended: the dispatchers may send the next one now (jobs/wakeup.py)
        self.jobs = runner.jobs
        self.queue = queue
        self.worker = worker_id(queue)
        lost_after = runner.settings.worker_lost_after
        self.heartbeat_every = max(0.2, min(2.0, lost_after / 4))  # several beats before anyone gives up on us
        self._running: dict[int, CancelToken] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, app: Any) -> None:
        """Declare the scan task on the Celery app (the body of every delivery of `hullscan.scan`)."""

        @app.task(name=SCAN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
        def scan(scan_id: int, holder: str) -> str:
            return self.handle(int(scan_id), str(holder))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._heartbeat, name="hullscan-heartbeat", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def hand_back(self) -> None:
        """The worker is told to stop (SIGTERM): its scans go back to the queue, for another worker to run from
        the start, rather than keeping the stop waiting for hours. Queued again first, then cancelled, so the
        cancelled run writes nothing."""
        with self._lock:
            running = dict(self._running)
        for scan_id, token in running.items():
            self.jobs.requeue(scan_id, self.worker)
            token.stop("the worker is shutting down")
        if running:
            log.info("handed %d running scan(s) back to the queue", len(running))

    def running(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def handle(self, scan_id: int, holder: str) -> str:
        """Run the scan if it is still waiting for a worker; the state it ended in, or "dropped"."""
        if not self.jobs.take(scan_id, holder, self.worker):
            log.info("scan %s: delivery dropped (already taken, stopped, finished or queued again)", scan_id)
            return DROPPED
        token = CancelToken()
        with self._lock:
            self._running[scan_id] = token
        try:
            return self.runner.run(scan_id, self.worker, token)
        finally:
            with self._lock:
                self._running.pop(scan_id, None)
            self.announce()

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self.heartbeat_every):
            try:
                for scan_id in self.jobs.heartbeat(self.running(), self.worker):
                    with self._lock:
                        token = self._running.get(scan_id)
                    if token is not None:
                        token.stop("stopped on request, or given up on by the fleet")
            except Exception:  # noqa: BLE001 - a database hiccup must not end the heartbeats
                log.exception("heartbeat failed; trying again")
