"""Ctrl-C and SIGTERM during a scan: the command ends with 130 or 143 (128 + the signal), quietly, leaving no work
files.

Outside a scan, `hullscan.signals` (installed by `main`) turns SIGTERM into SystemExit(143) and Ctrl-C is
Python's KeyboardInterrupt, which typer ends with 130. During a scan (`stop_on_signals`) either signal also stops
the scan's cancel token, so its layer threads and worker processes stop at their next safe point instead of
finishing their layers, and raises `Interrupted` in the main thread, which unwinds the scan at once (its work
directory is removed on the way) even while a read waits on a silent registry.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hullscan.cancel import CancelToken

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The process was asked to stop; `exit_code` is what it exits with. A BaseException, as KeyboardInterrupt
    is, so no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


@dataclass
class Received:
    signum: int | None = None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@contextmanager
def stop_on_signals(token: CancelToken) -> Iterator[Received]:
    """While the block runs, SIGINT or SIGTERM stops `token` and raises `Interrupted`; the handlers in place before
    come back afterwards (from another thread, hullscan embedded in an application, nothing is installed)."""
    state = Received()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        state.signum = signum
        token.stop(f"stopped by {signal.Signals(signum).name}")
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
