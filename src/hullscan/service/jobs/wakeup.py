"""A fleet's dispatchers hear at once that a worker freed a slot.

Without this a dispatcher looks at the queue every `DISPATCH_EVERY` second, so each hand-over waits up to that
long (the fleet bench measured 1 s at rest, several under load: 10-30% of the throughput of short scans). A worker
that ends a scan publishes on the broker's Redis; every dispatcher listening claims again at once. A lost message
costs nothing but that second: the dispatchers keep their own look. Only for a Redis broker (Celery's default
here); with another one the dispatchers keep looking every second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hullscan.service.wakeup")
CHANNEL = "hullscan:slot-free"


def _client(broker_url: str | None) -> Any:
    """A Redis client on the broker, or None when the broker is not Redis (typed Any: redis-py's types vary)."""
    if not broker_url or not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)


class SlotAnnouncer:
    """What a worker calls when one of its scans ends."""

    def __init__(self, broker_url: str | None) -> None:
        self._redis = _client(broker_url)

    def announce(self) -> None:
        if self._redis is None:
            return
        import redis

        try:
            self._redis.publish(CHANNEL, b"1")
        except redis.RedisError as exc:  # the dispatchers' own look finds the slot a second later
            # never the URL in a log: it may hold a password
            log.debug("could not announce a free slot (%s)", type(exc).__name__)


class SlotListener:
    """Calls `on_free` for every announcement, in a thread of its own, until `stopping` is set."""

    def __init__(self, broker_url: str | None, on_free: Callable[[], None], stopping: threading.Event) -> None:
        self._url = broker_url
        self._on_free = on_free
        self._stopping = stopping
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # subscribed (tests wait for it before announcing)

    def start(self) -> bool:
        """Start listening; False when the broker is not Redis (nothing to listen to)."""
        if _client(self._url) is None:
            return False
        self._thread = threading.Thread(target=self._run, name="hullscan-slot-listener", daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import redis

        while not self._stopping.is_set():
            client = _client(self._url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                self.listening.set()
                while not self._stopping.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self._on_free()
            except redis.RedisError as exc:  # Redis restarting: listen again; the dispatchers look every second
                self.listening.clear()
                log.warning("lost the broker's slot announcements (%s); listening again", type(exc).__name__)
                self._stopping.wait(1.0)
            finally:
                pubsub.close()
                client.close()
