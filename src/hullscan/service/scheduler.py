"""Cron schedules: scan a registry's (or a namespace's) images, synchronise a registry, update the database.

`Scheduler` is a loop with `start`/`stop`: `hullscan serve` runs it in a thread beside the executor, and it needs
nothing of that process (the database, the key and the settings), so a separate scheduler process can run it too.
Each tick fires the schedules that are due. Claiming a run is one conditional UPDATE (the row's `next_run_at`
moves on only if nobody moved it first), so two schedulers never fire the same run twice. A service that was down
when runs were due fires each such schedule once when it comes back, not once per missed run.

Cron expressions have five fields (minute hour day month weekday), or six with seconds last, and are read in the
schedule's time zone (UTC unless given): `0 2 * * *` in Europe/Paris is 02:00 Paris time, summer and winter.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import zoneinfo
from collections.abc import Callable
from typing import Any

from croniter import croniter
from sqlalchemy import select, update

from hullscan.errors import HullscanError
from hullscan.items import DEFAULT
from hullscan.service.jobs.queue import JobStore
from hullscan.service.reevaluation import DatabaseUpdater, reevaluate_if_changed
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import Image, Registry, Schedule, now
from hullscan.service.sync import synchronise
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service.scheduler")
ACTIONS = ("scan", "sync", "db-update")
BATCH = 500  # scans queued per transaction


def parse_zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Paris") from None


def next_run(cron: str, zone: str, after: dt.datetime) -> dt.datetime:
    """The first time strictly after `after` that `cron` names in `zone`, in UTC. ValueError for a bad one."""
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron):
        raise ValueError(f"{cron!r} is not a cron expression: give five fields (minute hour day month weekday, "
                         "e.g. '0 2 * * *' for daily at 02:00) or six with seconds last")
    local = after.astimezone(parse_zone(zone))
    found: dt.datetime = croniter(cron, local).get_next(dt.datetime)
    return found.astimezone(dt.UTC)


class Scheduler:
    def __init__(self, db: Database, box: SecretBox, settings: Settings, *, updater: DatabaseUpdater | None = None,
                 on_queued: Callable[[], None] = lambda: None, clock: Callable[[], dt.datetime] = now) -> None:
        self.db = db
        self.box = box
        self.settings = settings
        self.jobs = JobStore(db)
        self.on_queued = on_queued
        self.updater = updater or DatabaseUpdater(db, settings, on_queued)
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # -- the loop --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="hullscan-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A schedule changed or was asked to run now: look at once rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for worker in self._workers:
            worker.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the schedules
                log.exception("the scheduler's tick failed; trying again")
            self._wake.wait(self.settings.scheduler_interval)
            self._wake.clear()

    def tick(self, at: dt.datetime | None = None) -> list[int]:
        """Fire every due schedule; the ids fired. Also notices a database rebuilt outside the service."""
        at = at or self.clock()
        self._workers = [w for w in self._workers if w.is_alive()]
        if not self.updater.busy and reevaluate_if_changed(self.db, self.settings):
            self.on_queued()
        with self.db.session() as session:
            for schedule in session.scalars(select(Schedule).where(Schedule.enabled,
                                                                   Schedule.next_run_at.is_(None))):
                schedule.next_run_at = _following(schedule, at)
            due = session.execute(select(Schedule.id, Schedule.next_run_at).where(
                Schedule.enabled, Schedule.next_run_at <= at).order_by(Schedule.next_run_at)).all()
        fired = []
        for schedule_id, planned in due:
            if planned is not None and self._claim(schedule_id, planned, at):
                fired.append(schedule_id)
                self._fire(schedule_id, at)
        return fired

    def _claim(self, schedule_id: int, planned: dt.datetime, at: dt.datetime) -> bool:
        with self.db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None:
                return False
            following = _following(schedule, at)
            if not schedule.enabled:
                return False  # its cron no longer reads (see _following)
            done = session.execute(update(Schedule).where(Schedule.id == schedule_id, Schedule.next_run_at == planned)
                                   .values(last_run_at=at, next_run_at=following,
                                           last_outcome={"state": "running"})
                                   .execution_options(synchronize_session=False))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    # -- the actions -----------------------------------------------------------------------------------------

    def _fire(self, schedule_id: int, at: dt.datetime) -> None:
        with self.db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            assert schedule is not None
            action, registry_id, namespace_id = schedule.action, schedule.registry_id, schedule.namespace_id
        log.info("schedule %s fired (%s)", schedule_id, action)
        if action == "scan" and registry_id is not None:
            try:
                outcome = self.queue_scans(registry_id, namespace_id)
            except HullscanError as exc:
                outcome = _failed(exc)
            self._record(schedule_id, outcome)
        elif action == "sync" and registry_id is not None:
            self._in_background(f"hullscan-schedule-{schedule_id}", self._sync, schedule_id, registry_id)
        elif action == "db-update":
            status = self.updater.start(requested_by=f"schedule {schedule_id}")
            self._record(schedule_id, {"state": "started", "update_started_at": status.get("started_at")})
        else:
            self._record(schedule_id, {"state": "failed", "cause": {"code": "INVALID_REQUEST",
                                                                    "message": f"cannot run {action!r}"}})

    def queue_scans(self, registry_id: int, namespace_id: int | None) -> dict[str, Any]:
        """A scheduled scan of every present, tagged image of the registry (or the namespace)."""
        query = select(Image).where(Image.registry_id == registry_id, Image.present, Image.tag.is_not(None))
        if namespace_id is not None:
            query = query.where(Image.namespace_id == namespace_id)
        images = queued = 0
        last_id = 0
        while True:
            with self.db.session() as session:
                batch = list(session.scalars(query.where(Image.id > last_id).order_by(Image.id).limit(BATCH)))
                for image in batch:
                    _, created = self.jobs.enqueue(session, image, "scheduled", list(DEFAULT),
                                                   requested_by="schedule")
                    queued += int(created)
            if not batch:
                break
            images += len(batch)
            last_id = batch[-1].id
        if queued:
            self.on_queued()
        return {"state": "succeeded", "images": images, "queued": queued}

    def _sync(self, schedule_id: int, registry_id: int) -> None:
        with self.db.session() as session:
            # One synchronisation of a registry at a time, whoever started it (the API, another schedule).
            started = session.execute(update(Registry).where(Registry.id == registry_id,
                                                             (Registry.last_sync_state.is_(None)) |
                                                             (Registry.last_sync_state != "running"))
                                      .values(last_sync_state="running", last_sync_started_at=now())
                                      .execution_options(synchronize_session=False))
        if not started.rowcount:  # type: ignore[attr-defined]
            self._record(schedule_id, {"state": "skipped", "message": "a synchronisation was already running"})
            return
        try:
            result = synchronise(self.db, self.box, registry_id)
        except HullscanError as exc:
            self._record(schedule_id, _failed(exc))
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("scheduled synchronisation of registry %s failed", registry_id)
            self._record(schedule_id, _failed(HullscanError(type(exc).__name__, code="INTERNAL_ERROR")))
            return
        self._record(schedule_id, {"state": "succeeded", **result.counts()})
        if result.queued:
            self.on_queued()

    def _in_background(self, name: str, target: Callable[..., None], *args: Any) -> None:
        worker = threading.Thread(target=target, args=args, name=name, daemon=True)
        worker.start()
        self._workers.append(worker)

    def _record(self, schedule_id: int, outcome: dict[str, Any]) -> None:
        with self.db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is not None:
                schedule.last_outcome = {**outcome, "finished_at": now().isoformat()}


def _following(schedule: Schedule, at: dt.datetime) -> dt.datetime | None:
    """The schedule's next run after `at`. A cron or zone that no longer reads (checked when it was saved, so
    only a changed time-zone database gets here) disables the schedule, saying why, rather than stopping every
    other schedule's tick."""
    try:
        return next_run(schedule.cron, schedule.timezone, at)
    except ValueError as exc:
        log.warning("schedule %s disabled: %s", schedule.id, exc)
        schedule.enabled = False
        schedule.last_outcome = {"state": "failed", "cause": {"code": "INVALID_REQUEST", "message": str(exc),
                                                              "solution": "Correct the schedule's cron and time zone, "
                                                              "then enable it again."}}
        return None


def _failed(exc: HullscanError) -> dict[str, Any]:
    return {"state": "failed", "cause": {"code": exc.code, "message": exc.detail, "solution": exc.cause.solution}}
