"""Synchronising a registry's image list into the service: namespaces, repositories, tags and digests.

New tags and tags that moved to another digest in namespaces with automatic scanning are queued for a scan; tags
the registry no longer lists are kept but marked absent (their scans stay readable).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hullscan.errors import HullscanError
from hullscan.items import DEFAULT
from hullscan.service.connectors import connector_for
from hullscan.service.connectors.base import RemoteImage
from hullscan.service.jobs.queue import JobStore
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import Image, Namespace, Registry, now

log = logging.getLogger("hullscan.service.sync")
BATCH = 500  # image rows written per transaction


@dataclass
class SyncOutcome:
    seen: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    queued: int = 0
    scans: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"seen": self.seen, "added": self.added, "changed": self.changed, "removed": self.removed,
                "queued": self.queued}


def namespace_row(session: Session, registry_id: int, name: str) -> Namespace:
    found = session.scalars(select(Namespace).where(Namespace.registry_id == registry_id,
                                                    Namespace.name == name)).first()
    if found is None:
        found = Namespace(registry_id=registry_id, name=name)
        session.add(found)
        session.flush()
    return found


def upsert_image(session: Session, registry_id: int, remote: RemoteImage, jobs: JobStore,
                 outcome: SyncOutcome, trigger: str = "sync", auto_scan: bool | None = None) -> Image:
    """The image row for `remote`, created or brought up to date; queued for a scan when its namespace scans
    automatically and the digest is new."""
    ns = namespace_row(session, registry_id, remote.namespace)
    if auto_scan is None:
        auto_scan = ns.auto_scan
    reference = remote.tag or remote.digest or ""
    image = session.scalars(select(Image).where(Image.registry_id == registry_id,
                                                Image.repository == remote.repository,
                                                Image.reference == reference)).first()
    stamp = now()
    fresh = image is None or image.digest != remote.digest or not image.present
    if image is None:
        image = Image(registry_id=registry_id, namespace_id=ns.id, repository=remote.repository, reference=reference,
                      tag=remote.tag, first_seen=stamp)
        session.add(image)
        outcome.added += 1
    elif fresh:
        outcome.changed += 1
    moved = remote.digest is not None and image.digest is not None and remote.digest != image.digest
    image.digest = remote.digest or image.digest
    # A tag moved to another manifest: the old size was that manifest's (a push hook brings none; the scan fills it).
    image.size = remote.size if remote.size is not None or moved else image.size
    image.media_type = remote.media_type or image.media_type
    image.platform = remote.platform or image.platform
    image.pushed_at = remote.pushed_at or image.pushed_at
    image.last_seen = stamp
    image.present = True
    session.flush()
    if fresh and auto_scan and image.tag:
        scan, created = jobs.enqueue(session, image, trigger, list(DEFAULT), requested_by=f"auto-scan ({trigger})")
        if created:
            outcome.queued += 1
            outcome.scans.append(scan.id)
    return image


class _Known:
    """The registry's rows as they stood, loaded once: a sync of 10,000 tags must not query per tag."""

    def __init__(self, db: Database, registry_id: int) -> None:
        with db.session() as session:
            self.namespaces: dict[str, int] = dict(session.execute(
                select(Namespace.name, Namespace.id).where(Namespace.registry_id == registry_id)).all())
            self.auto = set(session.scalars(select(Namespace.id).where(Namespace.registry_id == registry_id,
                                                                      Namespace.auto_scan)))
            self.images: dict[tuple[str, str], tuple[int, str | None, bool]] = {
                (repo, ref): (image_id, digest, present) for image_id, repo, ref, digest, present in session.execute(
                    select(Image.id, Image.repository, Image.reference, Image.digest, Image.present)
                    .where(Image.registry_id == registry_id))}


def synchronise(db: Database, box: SecretBox, registry_id: int) -> SyncOutcome:
    """List the registry and bring the image rows in line; the outcome is also recorded on the registry row."""
    jobs = JobStore(db)
    with db.session() as session:
        registry = session.get(Registry, registry_id)
        if registry is None:
            raise HullscanError(f"registry {registry_id} does not exist", code="RESOURCE_NOT_FOUND")
        registry.last_sync_state, registry.last_sync_started_at, registry.last_sync_cause = "running", now(), None
    outcome = SyncOutcome()
    try:
        connector = connector_for(registry, box)
        try:
            started = now()
            known = _Known(db, registry_id)
            batch: list[RemoteImage] = []
            for remote in connector.images():
                batch.append(remote)
                if len(batch) >= BATCH:
                    _write(db, registry_id, batch, known, jobs, outcome)
                    batch = []
            _write(db, registry_id, batch, known, jobs, outcome)
        finally:
            connector.close()
        with db.session() as session:
            gone = session.execute(update(Image).where(Image.registry_id == registry_id, Image.present,
                                                       Image.last_seen < started)
                                   .values(present=False).execution_options(synchronize_session=False))
            outcome.removed = int(gone.rowcount)  # type: ignore[attr-defined]
    except HullscanError as exc:
        _record(db, registry_id, "failed", outcome, {"code": exc.code, "message": exc.detail,
                                                     "solution": exc.cause.solution})
        log.warning("sync of registry %s failed: %s", registry_id, exc.code)
        raise
    except Exception as exc:  # anything else must not leave the sync "running" for ever
        unexpected = HullscanError(f"the synchronisation failed unexpectedly ({type(exc).__name__})",
                                   code="INTERNAL_ERROR")
        _record(db, registry_id, "failed", outcome, {"code": unexpected.code, "message": unexpected.detail,
                                                     "solution": unexpected.cause.solution})
        log.exception("sync of registry %s failed unexpectedly", registry_id)
        raise unexpected from exc
    _record(db, registry_id, "succeeded", outcome, None)
    log.info("sync of registry %s: %s", registry_id, outcome.counts())
    return outcome


def _write(db: Database, registry_id: int, batch: list[RemoteImage], known: _Known, jobs: JobStore,
           outcome: SyncOutcome) -> None:
    """One transaction per batch: unchanged tags only get their last_seen bumped (one statement), new and
    changed ones are written row by row, and queued when their namespace scans automatically."""
    if not batch:
        return
    stamp = now()
    with db.session() as session:
        unchanged: list[int] = []
        new: list[dict[str, Any]] = []
        for remote in batch:
            outcome.seen += 1
            if remote.namespace not in known.namespaces:
                known.namespaces[remote.namespace] = namespace_row(session, registry_id, remote.namespace).id
            ns_id = known.namespaces[remote.namespace]
            key = (remote.repository, remote.tag or remote.digest or "")
            seen = known.images.get(key)
            if seen is not None and seen[1] == remote.digest and seen[2]:
                unchanged.append(seen[0])
            elif seen is None and ns_id not in known.auto:  # the common first-sync case: one INSERT for the lot
                new.append({"registry_id": registry_id, "namespace_id": ns_id, "repository": remote.repository,
                            "reference": key[1], "tag": remote.tag, "digest": remote.digest, "size": remote.size,
                            "media_type": remote.media_type, "platform": remote.platform,
                            "pushed_at": remote.pushed_at, "first_seen": stamp, "last_seen": stamp, "present": True})
                known.images[key] = (0, remote.digest, True)
                outcome.added += 1
            else:
                image = upsert_image(session, registry_id, remote, jobs, outcome, auto_scan=ns_id in known.auto)
                known.images[key] = (image.id, image.digest, True)
        if new:
            session.execute(_insert_missing(session), new)
        for i in range(0, len(unchanged), 900):  # SQLite allows 999 parameters a statement
            session.execute(update(Image).where(Image.id.in_(unchanged[i:i + 900])).values(last_seen=stamp)
                            .execution_options(synchronize_session=False))


def _insert_missing(session: Session) -> Any:
    """An INSERT of image rows that leaves a row already there as it is, except that this sync saw it: a push hook
    may have recorded the same tag since the sync loaded the known rows, and that is the same image, not an error.
    Its last_seen must move on, or a hook stamped before the sync started has it marked gone at the end."""
    unique = ["registry_id", "repository", "reference"]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        statement = (postgresql if dialect == "postgresql" else sqlite).insert(Image)
        return statement.on_conflict_do_update(index_elements=unique,
                                               set_={"last_seen": statement.excluded.last_seen, "present": True})
    return insert(Image)


def _record(db: Database, registry_id: int, state: str, outcome: SyncOutcome, cause: dict[str, Any] | None) -> None:
    with db.session() as session:
        registry = session.get(Registry, registry_id)
        if registry is not None:
            registry.last_sync_state, registry.last_sync_finished_at = state, now()
            registry.last_sync_cause, registry.last_sync_counts = cause, outcome.counts()
