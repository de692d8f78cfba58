"""A worker that ends a scan wakes every dispatcher of the fleet at once (jobs/wakeup.py), through the real Redis
the fleet uses as its broker; without it, the next scan waits for the dispatchers' next look at the queue."""

from __future__ import annotations

import threading
from pathlib import Path

from hullscan.service.jobs.dispatch import CeleryExecutor
from hullscan.service.jobs.queue import JobStore, Limits
from hullscan.service.jobs.wakeup import SlotAnnouncer, SlotListener
from hullscan.service.storage.db import Database
from tests.service.conftest import make_settings
from tests.support.fleet import RedisServer

WAIT = 60.0  # generous: only a failure waits this long


def test_an_announced_slot_wakes_every_dispatcher(tmp_path: Path, redis_server: RedisServer) -> None:
    url = redis_server.url(63)
    dispatchers = []
    for n in range(2):  # e.g. `hullscan serve` and `hullscan scheduler`
        settings = make_settings(tmp_path / f"d{n}", f"sqlite:///{tmp_path / 'service.db'}", broker_url=url)
        executor = CeleryExecutor(JobStore(Database(settings.service_database_url)), Limits(), settings, app=None)
        assert executor.listener.start()
        assert executor.listener.listening.wait(WAIT)
        dispatchers.append(executor)
    try:
        SlotAnnouncer(url).announce()  # what a worker does when one of its scans ends
        for executor in dispatchers:
            assert executor._wake.wait(WAIT), "a dispatcher did not hear the free slot"
    finally:
        for executor in dispatchers:
            executor._stopping.set()
            executor.listener.join(WAIT)


def test_without_a_redis_broker_nothing_listens_and_announcing_is_harmless() -> None:
    stopping = threading.Event()
    assert not SlotListener("amqp://guest@127.0.0.1//", lambda: None, stopping).start()
    SlotAnnouncer("amqp://guest@127.0.0.1//").announce()
    SlotAnnouncer(None).announce()


def test_an_unreachable_broker_does_not_fail_the_worker() -> None:
    SlotAnnouncer("redis://127.0.0.1:9/0").announce()  # nothing listens on port 9: logged, not raised
