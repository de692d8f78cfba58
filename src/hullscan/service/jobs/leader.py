"""Exactly one active scheduler: whoever holds the scheduler lock; the others stand by until it is free.

On PostgreSQL the lock is a session advisory lock held on a connection of its own: the server frees it when
that connection ends, so a scheduler killed with SIGKILL hands over as soon as its socket closes. On SQLite (one
machine) it is an exclusive `flock` on a file beside the database, freed by the kernel the same way.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import text

from hullscan.service.storage.db import Database

log = logging.getLogger("hullscan.service.leader")
SCHEDULER_LOCK = 0x68756C73  # "huls": the PostgreSQL advisory lock id of the active scheduler


class LeadershipLost(RuntimeError):
    pass


class SchedulerLock:
    def __init__(self, db: Database, lock_file: Path) -> None:
        self.db = db
        self.lock_file = lock_file
        self._connection: Any = None
        self._fd: int | None = None

    def acquire(self, stop: threading.Event, every: float = 1.0) -> bool:
        """Wait until this process holds the lock (True) or `stop` is set (False)."""
        said = False
        while not stop.is_set():
            if self._try():
                return True
            if not said:
                log.info("another scheduler is active; standing by")
                said = True
            stop.wait(every)
        return False

    def check(self) -> None:
        """Raise LeadershipLost when the lock can no longer be vouched for (its database connection broke)."""
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure of that connection means the lock may be gone
            raise LeadershipLost(f"the scheduler lock's database connection failed: {exc}") from None

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _try(self) -> bool:
        if self.db.is_sqlite:
            return self._try_file()
        connection = self.db.engine.connect()
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SCHEDULER_LOCK}).scalar())
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if held:
            self._connection = connection
        else:
            connection.close()
        return held

    def _try_file(self) -> bool:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True
