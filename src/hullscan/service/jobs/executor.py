"""Executors run queued scans. The interface is small so a fleet can swap the in-process one for Celery workers.

`InProcessExecutor` (embedded mode): a dispatcher thread claims scans within the limits (jobs/queue.py) and runs
each in a thread of a bounded pool, through the process's one engine (its worker processes shared by all scans).
A heartbeat thread keeps the claimed rows alive and turns stop requests into cancellations within seconds.
A fleet's executor (jobs/dispatch.py `CeleryExecutor`) claims the same way but sends each scan to the Celery
workers of its registry's cluster (jobs/worker.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from hullscan.cancel import CancelToken
from hullscan.service.jobs.queue import Limits
from hullscan.service.jobs.runner import ScanRunner

log = logging.getLogger("hullscan.service.executor")
HEARTBEAT_EVERY = 2.0  # seconds; also how soon a stop request reaches a running scan
HEARTBEAT_TIMEOUT = dt.timedelta(seconds=60)  # silent this long: the worker is gone
DISPATCH_EVERY = 1.0  # seconds between looks at the queue when nobody says there is work


class Executor(Protocol):
    def start(self) -> None: ...

    def wake(self) -> None:
        """Scans were queued: look at the queue now rather than at the next tick."""
        ...

    def stop_scan(self, scan_id: int) -> None:
        """The scan's stop flag is set in the database; stop it now if it runs here."""
        ...

    def shutdown(self) -> None: ...


def worker_id(family: str) -> str:
    """Who claims a scan: the family (embedded, a queue name), the host, the process and a nonce for this start."""
    return f"{family}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class InProcessExecutor:
    def __init__(self, runner: ScanRunner, limits: Limits, *, family: str = "embedded",
                 attempts: int = 3) -> None:
        self.runner = runner
        self.jobs = runner.jobs
        self.limits = limits
        self.family = family
        self.worker = worker_id(family)
        self.attempts = attempts
        self._pool = ThreadPoolExecutor(limits.total, thread_name_prefix="hullscan-scan")
        self._running: dict[int, CancelToken] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # This process owns every embedded scan: what a previous start left running is queued again now.
        recovered = self.jobs.recover(stale_after=HEARTBEAT_TIMEOUT, attempts=self.attempts,
                                      worker_prefix=f"{self.family}@")
        if recovered:
            log.warning("%d scan(s) left running by an earlier start were queued again or failed", recovered)
        for target, name in ((self._dispatch, "hullscan-dispatch"), (self._heartbeat, "hullscan-heartbeat")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop_scan(self, scan_id: int) -> None:
        with self._lock:
            token = self._running.get(scan_id)
        if token is not None:
            token.stop("stopped on request")

    def running(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def shutdown(self) -> None:
        """Stop taking scans; hand those still running back to the queue (another start will finish them)."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:  # the dispatcher claims nothing after this
            thread.join(timeout=10)
        with self._lock:
            running = dict(self._running)
        for token in running.values():
            token.stop("the service is shutting down")
        self._pool.shutdown(wait=True, cancel_futures=True)
        for scan_id in running:
            self.jobs.requeue(scan_id, self.worker)

    # -- threads ---------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._lock:
                    free = self.limits.total - len(self._running)
                for scan_id in self.jobs.claim(self.worker, self.limits, slots=free):
                    self._start(scan_id)
            except Exception:  # noqa: BLE001 - a database hiccup must not end dispatching
                log.exception("dispatching scans failed; trying again")
            self._wake.wait(DISPATCH_EVERY)
            self._wake.clear()

    def _start(self, scan_id: int) -> None:
        """Run a claimed scan in the pool; hand it back to the queue if the executor is shutting down (a shutdown
        that lands while the claim is in flight would otherwise leave it running with nobody on it)."""
        token = CancelToken()
        with self._lock:
            self._running[scan_id] = token
        try:
            if self._stopping.is_set():
                raise RuntimeError("shutting down")
            self._pool.submit(self._run, scan_id, token)
        except RuntimeError:  # the pool refuses work once shut down
            with self._lock:
                self._running.pop(scan_id, None)
            self.jobs.requeue(scan_id, self.worker)

    def _run(self, scan_id: int, token: CancelToken) -> None:
        try:
            if not self._stopping.is_set():
                self.runner.run(scan_id, self.worker, token)
        finally:
            with self._lock:
                self._running.pop(scan_id, None)
            self._wake.set()  # a slot is free

    def _heartbeat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_EVERY):
            try:
                for scan_id in self.jobs.heartbeat(self.running(), self.worker):
                    self.stop_scan(scan_id)
            except Exception:  # noqa: BLE001
                log.exception("heartbeat failed; trying again")
