"""Failed log-ins, counted per (user name, client address).

After `limit` failures of one pair within `window` seconds, that pair is refused (LOGIN_THROTTLED, with Retry-After)
until its oldest failure is `window` old, whatever password it sends: guessing stops, and a right password found
meanwhile is not confirmed. Counting per pair rather than per user name means someone guessing from one address
cannot lock the real user, elsewhere, out. A success clears the pair. The counts live in the API process (each
process of a fleet counts its own) and never hold a password.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_PAIRS = 100_000  # pairs tracked at once: enough for any real use, bounded under a flood of made-up names
MAX_NAME = 256  # characters of a user name kept in a key (longer names do not exist; they still count)


class LoginThrottle:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, client: str) -> float | None:
        """Seconds this pair must wait before its next try, or None when it may try now."""
        with self._lock:
            times = self._recent(_key(username, client))
            if times is None or len(times) < self.limit:
                return None
            return max(times[0] + self.window - self._clock(), 0.001)

    def failed(self, username: str, client: str) -> None:
        key = _key(username, client)
        with self._lock:
            times = self._recent(key)
            if times is None:
                if len(self._failures) >= MAX_PAIRS:
                    self._forget_expired()
                if len(self._failures) >= MAX_PAIRS:
                    self._failures.pop(next(iter(self._failures)))  # the pair tracked longest
                times = self._failures[key] = deque(maxlen=self.limit)
            times.append(self._clock())

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop(_key(username, client), None)

    def _recent(self, key: tuple[str, str]) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self._clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def _forget_expired(self) -> None:
        for key in list(self._failures):
            self._recent(key)


def _key(username: str, client: str) -> tuple[str, str]:
    return username[:MAX_NAME], client
