"""Stopping a scan from outside, and bounding it in time.

A `CancelToken` is shared between the scan and whoever may stop it (another thread, a job runner). The scan
calls `check()` at its safe points (between layers, every few hundred tar members, between detectors, while
waiting on a registry); a stop request or a passed deadline then raises the catalogue error that says which.
"""

from __future__ import annotations

import threading
import time

from hullscan.errors import ScanStopped, ScanTimedOut


class CancelToken:
    def __init__(self, timeout: float | None = None) -> None:
        self._event = threading.Event()
        self._reason = ""
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout is not None else None

    def stop(self, reason: str = "a stop was requested") -> None:
        self._reason = reason
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    @property
    def expired(self) -> bool:
        """Stopped, or past the deadline: what `check()` would raise for."""
        return self._event.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def with_deadline(self, timeout: float) -> CancelToken:
        """Start the clock (a token handed in without a deadline gets the scan's default one)."""
        if self.deadline is None or timeout < (self.remaining() or 0.0):
            self.timeout = timeout
            self.deadline = time.monotonic() + timeout
        return self

    def check(self) -> None:
        if self._event.is_set():
            raise ScanStopped(self._reason)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise ScanTimedOut(f"the scan ran past its limit of {_duration(self.timeout or 0.0)}")

    def sleep(self, seconds: float) -> None:
        """Wait, but wake up (and raise) as soon as the scan is stopped or its deadline passes."""
        remaining = self.remaining()
        wait = seconds if remaining is None else max(0.0, min(seconds, remaining))
        self._event.wait(wait)
        self.check()


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
