"""Failed log-ins, counted per (user name, client address), in the service database.

After `limit` failures of one pair within `window` seconds, that pair is refused (LOGIN_THROTTLED, with Retry-After)
until its oldest counted failure is `window` old, whatever password it sends: guessing stops, and a right password
found meanwhile is not confirmed. Counting per pair rather than per user name means someone guessing from one
address cannot lock the real user, elsewhere, out. A success clears the pair.

The failures are rows of `login_failures`, so every API process of a fleet (behind one balancer, on one PostgreSQL)
counts the same ones: a guesser spread over the processes gets `limit` tries in all, not `limit` per process. A row
holds a user name, an address and a time, never a password; rows older than the window are deleted as new failures
come, so the table holds at most one window of failures, and a refused try adds none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hullscan.service.storage.db import Database
from hullscan.service.storage.models import LOGIN_CLIENT_MAX, LOGIN_NAME_MAX, LoginFailure


@dataclass(frozen=True)
class Attempts:
    """What the throttle knows of a pair before it tries to log in."""

    failures: int  # failed log-ins within the window (at most `limit` counted)
    wait: float | None  # seconds before it may try again; None: now


class LoginThrottle:
    def __init__(self, db: Database, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.limit = limit
        self.window = window
        self._clock = clock  # wall time: shared by processes, unlike a monotonic clock

    def check(self, username: str, client: str, session: Session | None = None) -> Attempts:
        """`session`: the request's own, when it has one: Basic authenticates every request, and a session of the
        throttle's own was a second connection for each of them. Failures and successes are written in sessions of
        their own, so a failure is kept although the request that counts it is refused."""
        now = self._clock()
        name, address = _pair(username, client)
        query = (select(LoginFailure.failed_at)
                 .where(LoginFailure.username == name, LoginFailure.client == address,
                        LoginFailure.failed_at > now - self.window)
                 .order_by(LoginFailure.failed_at.desc()).limit(self.limit))
        if session is not None:
            times = session.scalars(query).all()
        else:
            with self.db.session() as own:
                times = own.scalars(query).all()
        if len(times) < self.limit:
            return Attempts(len(times), None)
        return Attempts(len(times), max(times[-1] + self.window - now, 0.001))

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        name, address = _pair(username, client)
        with self.db.session() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window))
            session.add(LoginFailure(username=name, client=address, failed_at=now))

    def succeeded(self, username: str, client: str) -> None:
        name, address = _pair(username, client)
        with self.db.session() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.username == name, LoginFailure.client == address))


def _pair(username: str, client: str) -> tuple[str, str]:
    return username[:LOGIN_NAME_MAX], client[:LOGIN_CLIENT_MAX]
