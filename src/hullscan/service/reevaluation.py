"""A new vulnerability database, applied to every stored result without downloading a layer.

`DatabaseUpdater` runs `update_database` in the background (one at a time) and records how it went. Whenever the
database's build differs from the one the stored results were last evaluated against, whoever notices (the updater
after a rebuild, or the scheduler's tick after a `hullscan db update` run by hand) queues a `reevaluate` scan for
every present image whose last successful scan matched an older build: ScanRunner re-matches that scan's stored
facts against the new database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hullscan.errors import CATALOGUE, HullscanError
from hullscan.service.jobs.queue import JobStore
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import RUNNING, SUCCEEDED, Image, Scan, Setting, now
from hullscan.settings import Settings

log = logging.getLogger("hullscan.service.vulndb")
EVALUATED_BUILD = "vulndb.evaluated_build"  # the build every stored result was (or is queued to be) evaluated with
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


def current_build(settings: Settings) -> str | None:
    """The build time of the database the scans use, or None when there is none (or it cannot be read)."""
    from hullscan.vulndb.store import open_default

    if not settings.db_path.exists():
        return None
    try:
        with open_default(settings.db_path) as store:
            return store.info().built_at or None
    except HullscanError:
        return None


def queue_reevaluations(db: Database, build: str) -> int:
    """A re-evaluation for every present image whose last successful scan matched another build than `build`
    (scans without the vulnerability item have no build and need none). How many were queued."""
    jobs = JobStore(db)
    last = (select(Scan.image_id, func.max(Scan.id).label("scan_id")).where(Scan.state == SUCCEEDED)
            .group_by(Scan.image_id).subquery())
    queued = 0
    with db.session() as session:
        rows = session.execute(
            select(Image, Scan).join(last, last.c.image_id == Image.id).join(Scan, Scan.id == last.c.scan_id)
            .where(Image.present, Scan.database_built_at.is_not(None), Scan.database_built_at != build,
                   Scan.digest == Image.digest)  # a tag that moved needs a scan, not the old facts re-matched
        ).all()
        for n, (image, scan) in enumerate(rows, 1):
            _, created = jobs.enqueue(session, image, "reevaluate", list(scan.items), requested_by="database update",
                                      kind="reevaluate")
            queued += int(created)
            if n % BATCH == 0:
                session.flush()
        put_setting(session, EVALUATED_BUILD, build)
    return queued


_reevaluating = threading.Lock()


def reevaluate_if_changed(db: Database, settings: Settings) -> int:
    """Queue re-evaluations when the database build changed since the stored results were evaluated."""
    build = current_build(settings)
    if build is None:
        return 0
    with _reevaluating:
        with db.session() as session:
            if get_setting(session, EVALUATED_BUILD) == build:
                return 0
        queued = queue_reevaluations(db, build)
    log.info("vulnerability database build %s: %d re-evaluation(s) queued", build, queued)
    return queued


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
                      "requested_by": requested_by, "rebuilt": None, "built_at": None, "queued": 0,
                      "warnings": [], "cause": None}
            with self.db.session() as session:
                put_setting(session, UPDATE_STATUS, status)
            self._thread = threading.Thread(target=self._run, args=(base_url, force, status), daemon=True,
                                            name="hullscan-db-update")
            self._thread.start()
            return status

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, base_url: str | None, force: bool, status: dict[str, Any]) -> None:
        from hullscan.vulndb.update import DEFAULT_BASE_URL, update_database

        queued = 0
        try:
            result = update_database(self.settings.db_path, base_url=base_url or self.settings.db_base_url or
                                     DEFAULT_BASE_URL, force=force)
            queued = reevaluate_if_changed(self.db, self.settings)
            status.update(state=SUCCEEDED, rebuilt=result.rebuilt, queued=queued, warnings=result.warnings,
                          built_at=result.info.built_at if result.info else None)
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
