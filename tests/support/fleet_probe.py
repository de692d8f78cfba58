"""A probe inside a fleet worker process (installed by tests/support/fleet.py before `hullscan worker` starts):
it records when each scan starts running (ScanRunner.run entered) and when it stops counting (its outcome is
about to be written: JobStore.finish or retry_later called), on the system-wide monotonic clock, one line per
event appended to the file named by HULLSCAN_TEST_PROBE. It changes nothing the worker does.

The order is causal: a scan's "leave" is written before its outcome frees a slot, and the next scan of that
registry can only be claimed, taken and "enter" after that, so counting enters minus leaves over the sorted
events never undercounts the scans running at once."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

_taken: set[int] = set()


def _write(path: str, kind: str, scan_id: int, registry_id: int, worker: str) -> None:
    line = f"{time.monotonic():.9f} {kind} {scan_id} {registry_id} {worker}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write of a short line on an O_APPEND file: never interleaved with another
    finally:
        os.close(fd)


def install() -> None:
    path = os.environ.get("HULLSCAN_TEST_PROBE")
    if not path:
        return
    from hullscan.cancel import CancelToken
    from hullscan.service.jobs.queue import JobStore
    from hullscan.service.jobs.runner import ScanRunner
    from hullscan.service.storage.models import Scan

    real_run, real_finish, real_retry = ScanRunner.run, JobStore.finish, JobStore.retry_later
    registries: dict[int, int] = {}

    def run(self: ScanRunner, scan_id: int, worker: str, cancel: CancelToken) -> str:
        with self.db.session() as session:
            scan = session.get(Scan, scan_id)
            registries[scan_id] = scan.registry_id if scan is not None else 0
        _write(path, "enter", scan_id, registries[scan_id], worker)
        try:
            return real_run(self, scan_id, worker, cancel)
        finally:
            leave(scan_id, worker)

    def leave(scan_id: int, worker: str) -> None:
        registry_id = registries.pop(scan_id, None)
        if registry_id is not None:
            _write(path, "leave", scan_id, registry_id, worker)

    def finish(self: JobStore, scan_id: int, worker: str, *args: Any, **kwargs: Any) -> bool:
        leave(scan_id, worker)
        return real_finish(self, scan_id, worker, *args, **kwargs)

    def retry_later(self: JobStore, scan_id: int, worker: str, *args: Any, **kwargs: Any) -> bool:
        leave(scan_id, worker)
        return real_retry(self, scan_id, worker, *args, **kwargs)

    ScanRunner.run = run  # type: ignore[method-assign]
    JobStore.finish = finish  # type: ignore[method-assign]
    JobStore.retry_later = retry_later  # type: ignore[method-assign]


def read(path: Path) -> list[tuple[float, str, int, int, str]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        at, kind, scan_id, registry_id, worker = line.split(" ", 4)
        events.append((float(at), kind, int(scan_id), int(registry_id), worker))
    return sorted(events)


def peaks(events: list[tuple[float, str, int, int, str]]) -> tuple[dict[int, int], int]:
    """Most scans running at once per registry, and in all."""
    now: dict[int, int] = {}
    per_registry: dict[int, int] = {}
    total = peak = 0
    for _, kind, _, registry_id, _ in events:
        step = 1 if kind == "enter" else -1
        now[registry_id] = now.get(registry_id, 0) + step
        total += step
        per_registry[registry_id] = max(per_registry.get(registry_id, 0), now[registry_id])
        peak = max(peak, total)
    return per_registry, peak
