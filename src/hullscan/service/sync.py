"""Synchronising a registry's image list into the service: namespaces, repositories, tags and digests.

New tags and tags that moved to another digest in namespaces with automatic scanning are queued for a scan; tags
the registry no longer lists are kept but marked absent (their scans stay readable).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
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
                 outcome: SyncOutcome, trigger: str = "sync") -> Image:
    """The image row for `remote`, created or brought up to date; queued for a scan when its namespace scans
    automatically and the digest is new."""
    ns = namespace_row(session, registry_id, remote.namespace)
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
    image.digest = remote.digest or image.digest
    image.size = remote.size if remote.size is not None else image.size
    image.media_type = remote.media_type or image.media_type
    image.platform = remote.platform or image.platform
    image.pushed_at = remote.pushed_at or image.pushed_at
    image.last_seen = stamp
    image.present = True
    session.flush()
    if fresh and ns.auto_scan and image.tag:
        scan, created = jobs.enqueue(session, image, trigger, list(DEFAULT), requested_by=f"auto-scan ({trigger})")
        if created:
            outcome.queued += 1
            outcome.scans.append(scan.id)
    return image


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
            batch: list[RemoteImage] = []
            for remote in connector.images():
                batch.append(remote)
                if len(batch) >= BATCH:
                    _write(db, registry_id, batch, jobs, outcome)
                    batch = []
            _write(db, registry_id, batch, jobs, outcome)
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
    _record(db, registry_id, "succeeded", outcome, None)
    log.info("sync of registry %s: %s", registry_id, outcome.counts())
    return outcome


def _write(db: Database, registry_id: int, batch: list[RemoteImage], jobs: JobStore, outcome: SyncOutcome) -> None:
    if not batch:
        return
    with db.session() as session:
        for remote in batch:
            upsert_image(session, registry_id, remote, jobs, outcome)
            outcome.seen += 1


def _record(db: Database, registry_id: int, state: str, outcome: SyncOutcome, cause: dict[str, Any] | None) -> None:
    with db.session() as session:
        registry = session.get(Registry, registry_id)
        if registry is not None:
            registry.last_sync_state, registry.last_sync_finished_at = state, now()
            registry.last_sync_cause, registry.last_sync_counts = cause, outcome.counts()
