"""Waiting for a `hullscan serve` child process to answer, for the tests that start one (tests/service/live.py,
tests/support/fleet.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Callable[[], str], timeout: float = 90) -> None:
    """Return once `url`/healthz answers 200; a clear error with the log's tail if the process exits or stays
    silent past `timeout` (a bound against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hullscan serve exited with {process.returncode}:\n{log()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"hullscan serve did not answer within {timeout} s:\n{log()[-3000:]}")
