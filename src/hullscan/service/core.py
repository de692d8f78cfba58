"""The service as one object: its database, its key, its engine and its executor; started and stopped together.

`hullscan serve` builds one for the API; tests build one per case. Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from hullscan.pipeline import Engine
from hullscan.service.jobs.executor import Executor, InProcessExecutor
from hullscan.service.jobs.queue import JobStore, Limits
from hullscan.service.jobs.runner import ScanRunner
from hullscan.service.notify.sender import Notifier
from hullscan.service.passwords import hash_password
from hullscan.service.reevaluation import DatabaseUpdater
from hullscan.service.scheduler import Scheduler
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import User
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service")


class Service:
    """`scheduler=False` leaves the schedules to another process (a separate scheduler).

    With a broker (HULLSCAN_BROKER_URL) the service is the API of a fleet: its executor sends scans to the Celery
    workers of each registry's cluster instead of running them, and the schedules are `hullscan scheduler`'s."""

    def __init__(self, settings: Settings, *, executor: Executor | None = None, scheduler: bool = True) -> None:
        self.settings = settings
        self.db = Database(settings.service_database_url)
        self.box = SecretBox.from_settings(settings)
        self.jobs = JobStore(self.db)
        self.limits = Limits(settings.max_scans_per_registry, settings.max_running_scans)
        self._engine: Engine | None = None
        self._executor = executor
        self.updater = DatabaseUpdater(self.db, settings, on_queued=self.wake)
        self.notifier = Notifier(self.db, self.box, settings)
        self.fleet = bool(settings.broker_url)
        self.scheduler: Scheduler | None = Scheduler(self.db, self.box, settings, updater=self.updater,
                                                     on_queued=self.wake) if scheduler and not self.fleet else None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.settings, pool="always", resident=True)
        return self._engine

    @property
    def executor(self) -> Executor:
        if self._executor is None and self.fleet:
            from hullscan.service.jobs.broker import make_app
            from hullscan.service.jobs.dispatch import CeleryExecutor

            self._executor = CeleryExecutor(self.jobs, self.limits, self.settings, make_app(self.settings))
        if self._executor is None:
            runner = ScanRunner(self.settings, self.db, self.box, self.engine)
            self._executor = InProcessExecutor(runner, self.limits, attempts=self.settings.scan_attempts)
        return self._executor

    def wake(self) -> None:
        """Scans were queued: the executor looks at the queue now."""
        self.executor.wake()

    def start(self) -> None:
        self.db.migrate()
        self.bootstrap_admin()
        self.updater.recover()
        self.executor.start()
        self.notifier.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def bootstrap_admin(self) -> None:
        """On the first start (no user yet), HULLSCAN_ADMIN_PASSWORD creates `admin` with the admin role."""
        password = self.settings.admin_password
        with self.db.session() as session:
            if session.scalars(select(User.id).limit(1)).first() is not None:
                return
            if password is None:
                log.warning("no user exists and HULLSCAN_ADMIN_PASSWORD is not set: nobody can log in yet")
                return
            session.add(User(username="admin", password_hash=hash_password(password.get_secret_value()),
                             is_admin=True))
        log.info("created the user admin")

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._executor is not None:
            self._executor.shutdown()
        self.notifier.stop()
        if self._engine is not None:
            self._engine.close()
        self.db.close()
