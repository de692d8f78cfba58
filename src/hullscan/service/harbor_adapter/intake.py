"""A checked scan request becomes an ordinary queued scan: a registry record for the Harbor that sent it (made on
its first request), the namespace (Harbor project) and image, and a `scans` row with trigger `harbor` carrying
the request's credentials sealed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hullscan.service import audit
from hullscan.service.harbor_adapter.request import ScanTarget
from hullscan.service.jobs.queue import JobStore
from hullscan.service.secretbox import SecretBox
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import QUEUED, Image, Namespace, Registry, Scan, now

MANAGER = "harbor-adapter"  # Registry.managed_by of the registries this adapter creates
TRIGGER = "harbor"
ITEMS = ["vuln"]  # Harbor shows vulnerabilities and SBOMs; the inventory behind both is always collected


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_HasId)


def accept(db: Database, session: Session, jobs: JobStore, box: SecretBox, target: ScanTarget, who: str) -> Scan:
    """Queue a scan of the target in `session` (or join the one already queued or running for that digest); the
    caller commits. The registry, namespace and image rows are made first, each committed on its own: they are
    idempotent, and concurrent first requests from one Harbor must all end with the same rows."""
    url = target.registry.url
    registry_id = _ensure(db, lambda s: s.scalars(select(Registry).where(
        Registry.managed_by == MANAGER, Registry.url == url)).first(),
        # The name only has to be unique and readable; the URL is what finds the record again.
        lambda: Registry(name=f"{MANAGER} {url}", type="harbor", url=url, insecure=target.registry.insecure,
                         managed_by=MANAGER))
    namespace_id = _ensure(db, lambda s: s.scalars(select(Namespace).where(
        Namespace.registry_id == registry_id, Namespace.name == target.namespace)).first(),
        lambda: Namespace(registry_id=registry_id, name=target.namespace))
    image_id = _ensure(db, lambda s: s.scalars(select(Image).where(
        Image.registry_id == registry_id, Image.repository == target.repository,
        Image.reference == target.digest)).first(),
        lambda: Image(registry_id=registry_id, namespace_id=namespace_id, repository=target.repository,
                      reference=target.digest, digest=target.digest))
    image = session.get(Image, image_id)
    assert image is not None
    image.tag = target.tag or image.tag
    image.media_type = target.mime_type or image.media_type
    image.present, image.last_seen = True, now()

    scan, created = jobs.enqueue(session, image, TRIGGER, list(ITEMS), who)
    if target.authorization is not None and (created or scan.state == QUEUED):
        # A waiting scan takes the newest credentials: Harbor makes a robot account per scan job and deletes it
        # when that job ends, so the newest request's account is the one most likely to still work.
        scan.pull_authorization = box.seal(target.authorization)
    if created:
        audit.record(session, who, "scan.harbor", f"image:{image.id}",
                     {"scan": scan.id, "repository": image.repository, "digest": image.digest, "tag": image.tag})
    return scan


def _ensure(db: Database, find: Callable[[Session], Row | None], make: Callable[[], Row]) -> int:
    """The id of the row `find` returns, made with `make` when there is none."""
    try:
        with db.session() as session:
            row = find(session)
            if row is None:
                row = make()
                session.add(row)
                session.flush()
            return row.id
    except IntegrityError:  # another request made it between our look and our insert
        with db.session() as session:
            row = find(session)
            if row is None:
                raise
            return row.id
