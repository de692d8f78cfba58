"""A new vulnerability database, applied to every stored result without downloading a layer.

`DatabaseUpdater` runs `update_database` in the background (one at a time) and records how it went. Whenever the
data the scans match against changed, whoever notices (the updater, or the scheduler's tick after a `hullscan db
update` run by hand) queues a `reevaluate` scan for every present image whose last successful scan matched other
data: ScanRunner re-matches that scan's stored facts against the database as it is now.

Which data a result was matched against is its `database_version`: a digest of the database's build time, its
last update time (to the second), its counts, sources and enrichment. A full rebuild changes the first, an
incremental update (changed records applied) the second and often the counts, new EPSS or KEV data the
enrichment. An update that found nothing new only moves the update time: the updater then relabels the results
of the previous version instead of re-evaluating them. (Two updates within one second that change records but no
count look alike: the database records no finer generation of its data.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from hullscan.errors import CATALOGUE, HullscanError
from hullscan.service.jobs.queue import JobStore
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import RUNNING, SUCCEEDED, Image, Scan, Setting, now
from hullscan.settings import Settings
from hullscan.vulndb.distribution import publish_database
from hullscan.vulndb.model import DatabaseInfo

log = logging.getLogger("hullscan.service.vulndb")
EVALUATED = "vulndb.evaluated_version"  # the data version every stored result was (or is queued to be) matched with
UPDATE_STATUS = "vulndb.update"  # the last database update: state, times, outcome
BATCH = 500


def get_setting(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    return None if row is None else row.value


def put_setting(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def data_version(info: DatabaseInfo) -> str:
    """Names the data a result was matched against (see the module's docstring)."""
    doc = json.dumps([info.built_at, info.updated_at, info.counts, info.sources, info.enrichment], sort_keys=True,
                     default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


def current_version(settings: Settings) -> str | None:
    """The version of the database the scans use, or None when there is none (or it cannot be read)."""
    from hullscan.vulndb.store import open_default

    if not settings.db_path.exists():
        return None
    try:
        with open_default(settings.db_path) as store:
            return data_version(store.info())
    except HullscanError:
        return None


def queue_reevaluations(db: Database, version: str) -> int:
    """A re-evaluation for every present image whose last successful scan matched other data than `version`
    (scans without the vulnerability item matched nothing and need none). How many were queued."""
    jobs = JobStore(db)
    last = (select(Scan.image_id, func.max(Scan.id).label("scan_id")).where(Scan.state == SUCCEEDED)
            .group_by(Scan.image_id).subquery())
    queued = 0
    with db.session() as session:
        rows = session.execute(
            select(Image, Scan).join(last, last.c.image_id == Image.id).join(Scan, Scan.id == last.c.scan_id)
            .where(Image.present, Scan.database_built_at.is_not(None),
                   or_(Scan.database_version.is_(None), Scan.database_version != version),
                   Scan.digest == Image.digest)  # a tag that moved needs a scan, not the old facts re-matched
        ).all()
        for n, (image, scan) in enumerate(rows, 1):
            _, created = jobs.enqueue(session, image, "reevaluate", list(scan.items), requested_by="database update",
                                      kind="reevaluate")
            queued += int(created)
            if n % BATCH == 0:
                session.flush()
        put_setting(session, EVALUATED, version)
    return queued


_reevaluating = threading.Lock()


def reevaluate_if_changed(db: Database, settings: Settings) -> int:
    """Queue re-evaluations when the data changed since the stored results were evaluated."""
    version = current_version(settings)
    if version is None:
        return 0
    with _reevaluating:
        with db.session() as session:
            if get_setting(session, EVALUATED) == version:
                return 0
        try:  # a fleet's workers re-evaluate with the data they take from the store: publish it first
            publish_database(settings)
        except HullscanError as exc:
            log.warning("the vulnerability database was not published to the fleet (%s); re-evaluation waits",
                        exc.code)
            return 0
        queued = queue_reevaluations(db, version)
    log.info("vulnerability data version %s: %d re-evaluation(s) queued", version, queued)
    return queued


def relabel(db: Database, old: str, new: str) -> None:
    """The data did not change, only the time it was last checked: results of `old` hold for `new`."""
    with _reevaluating, db.session() as session:
        session.execute(update(Scan).where(Scan.database_version == old).values(database_version=new)
                        .execution_options(synchronize_session=False))
        if get_setting(session, EVALUATED) == old:
            put_setting(session, EVALUATED, new)


def _cause(code: str, message: str) -> dict[str, str]:
    c = CATALOGUE.get(code) or CATALOGUE["INTERNAL_ERROR"]
    return {"code": code, "message": message or c.title, "solution": c.solution}


class DatabaseUpdater:
    """Updates the vulnerability database in a background thread, one update at a time, and queues the
    re-evaluations it calls for. The status lives in the service database, so every process sees it."""

    def __init__(self, db: Database, settings: Settings, on_queued: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.settings = settings
        self.on_queued = on_queued
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, Any] | None:
        with self.db.session() as session:
            value = get_setting(session, UPDATE_STATUS)
        return dict(value) if isinstance(value, dict) else None

    def recover(self) -> None:
        """An update left running by a process that stopped will never finish: say so."""
        with self.db.session() as session:
            value = get_setting(session, UPDATE_STATUS)
            if isinstance(value, dict) and value.get("state") == RUNNING:
                put_setting(session, UPDATE_STATUS, {**value, "state": "failed", "finished_at": now().isoformat(),
                                                     "cause": _cause("WORKER_LOST", "the service stopped during the "
                                                                     "update; the database was left unchanged")})

    def start(self, *, base_url: str | None = None, force: bool = False, requested_by: str = "") -> dict[str, Any]:
        """Start an update (or return the one running); its status."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self.status() or {}
            status: dict[str, Any] = {"state": RUNNING, "started_at": now().isoformat(), "finished_at": None,
                      "requested_by": requested_by, "mode": None, "rebuilt": None, "built_at": None, "queued": 0,
                      "warnings": [], "cause": None}
            with self.db.session() as session:
                put_setting(session, UPDATE_STATUS, status)
            self._thread = threading.Thread(target=self._run, args=(base_url, force, status), daemon=True,
                                            name="hullscan-db-update")
            self._thread.start()
            return status

    @property
    def busy(self) -> bool:
        """An update is running in this process: its own end judges the data, not the scheduler's tick (which
        would otherwise see the refreshed file before `relabel` and queue re-evaluations of unchanged data)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, base_url: str | None, force: bool, status: dict[str, Any]) -> None:
        from hullscan.vulndb.sources import DataSources
        from hullscan.vulndb.update import update_database

        queued = 0
        try:
            sources = DataSources.from_settings(self.settings)
            if base_url:
                sources = dataclasses.replace(sources, osv=base_url)
            before = current_version(self.settings)
            result = update_database(self.settings.db_path, base_url=sources.osv, sources=sources, force=force)
            # A fleet: the workers take this build from the shared store between scans (None on one machine).
            published = publish_database(self.settings)
            status["published"] = published.id if published is not None else None
            if before is not None and result.mode == "unchanged" and result.enriched is None:
                relabel(self.db, before, current_version(self.settings) or before)
            queued = reevaluate_if_changed(self.db, self.settings)
            status.update(state=SUCCEEDED, mode=result.mode, rebuilt=result.rebuilt, queued=queued,
                          warnings=result.warnings, built_at=result.info.built_at if result.info else None)
        except HullscanError as exc:
            status.update(state="failed", cause=_cause(exc.code, exc.detail))
            log.warning("vulnerability database update failed: %s", exc.code)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the status running forever
            log.exception("vulnerability database update failed unexpectedly")
            status.update(state="failed", cause=_cause("INTERNAL_ERROR", type(exc).__name__))
        status["finished_at"] = now().isoformat()
        with self.db.session() as session:
            put_setting(session, UPDATE_STATUS, status)
        if queued:
            self.on_queued()
