"""Signals for the command line: SIGTERM ends a run the way any other exit does.

Python's default for SIGTERM ends the process on the spot: no `finally` block runs, so a scan's work directory
(spooled files, unpacked archives) stays behind in the temporary directory. Raised as SystemExit in the main
thread instead, it unwinds the scan like an error would: its layers stop, worker processes are shut down and
the work directory is removed. The exit status is the one a shell reports for a process ended by SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

TERMINATED = 128 + signal.SIGTERM  # 143


def exit_on_sigterm() -> None:
    """From now on, SIGTERM raises SystemExit(143) in the main thread; a second one ends the process at once
    (if cleaning up hangs, whoever sent it is not kept waiting). Only the main thread may set a handler: from
    another thread (hullscan embedded in an application) this does nothing."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(TERMINATED)
