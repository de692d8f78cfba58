"""Inbound registry events: what was pushed or deleted, from a Distribution notification, a Harbor webhook or an
Artifactory webhook, applied to the image rows (and to the queue, in namespaces that scan automatically).

Shapes (../shared/specs): Distribution's envelope `{"events": [...]}` with `action` and a `target` descriptor
(notifications.md); Harbor's `PUSH_ARTIFACT` / `DELETE_ARTIFACT` payloads, Default or CloudEvents format
(harbor-api/webhooks.md); Artifactory's docker-domain `pushed` / `deleted` events, with the envelope or flattened
(jfrog-artifactory/README.md). Every model accepts fields it does not know: registries add fields over time.

Each hook is authenticated by the registry's hook token (shown once when the registry is added or the token
rotated; only its hash is kept). Artifactory's "use secret for payload signing" mode cannot be checked for that
reason (an HMAC needs the secret itself): configure the webhook to send the secret as-is.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.orm import Session

from hullscan.oci import media
from hullscan.service.connectors.base import RemoteImage, first_segment, parse_time
from hullscan.service.jobs.queue import JobStore
from hullscan.service.passwords import same, token_hash
from hullscan.service.storage.models import Image, Registry
from hullscan.service.sync import SyncOutcome, upsert_image

log = logging.getLogger("hullscan.service.hooks")
MANIFESTS = frozenset((*media.IMAGE_MANIFESTS, *media.INDEXES, *media.SCHEMA1))
MAX_EVENTS = 1000


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- Distribution ----------------------------------------------------------------------------------------------


class DistributionTarget(Lenient):
    mediaType: str = ""  # noqa: N815 - the registry's field names
    digest: str = ""
    size: int | None = None
    repository: str = ""
    tag: str = ""


class DistributionEvent(Lenient):
    id: str = ""
    timestamp: str = ""  # RFC 3339, when the registry took the push; read leniently (see parse_time)
    action: str = ""
    target: DistributionTarget = Field(default_factory=DistributionTarget)


class DistributionEnvelope(Lenient):
    events: list[DistributionEvent] = Field(default_factory=list, max_length=MAX_EVENTS)


# -- Harbor ----------------------------------------------------------------------------------------------------


class HarborResource(Lenient):
    digest: str = ""
    tag: str = ""
    resource_url: str = ""


class HarborRepository(Lenient):
    name: str = ""
    namespace: str = ""
    repo_full_name: str = ""


class HarborEventData(Lenient):
    resources: list[HarborResource] = Field(default_factory=list, max_length=MAX_EVENTS)
    repository: HarborRepository | None = None


class HarborPayload(Lenient):
    """Default format (`type`, `event_data`) or CloudEvents (`type` harbor.artifact.pushed, `data`)."""

    type: str = ""
    occur_at: int | None = None  # unix seconds (Default format)
    time: str = ""  # RFC 3339 (CloudEvents format)
    operator: str = ""
    event_data: HarborEventData | None = None
    data: HarborEventData | None = None


# -- Artifactory -----------------------------------------------------------------------------------------------


class JfrogData(Lenient):
    repo_key: str = ""
    path: str = ""
    name: str = ""
    sha256: str = ""
    size: int | None = None
    image_name: str = ""
    tag: str = ""


class JfrogPayload(JfrogData):
    """The envelope (`domain`, `event_type`, `data`), or `data`'s members flattened beside `event_type`."""

    domain: str = ""
    event_type: str = ""
    data: JfrogData | None = None
    subscription_key: str = ""


# -- events ------------------------------------------------------------------------------------------------------


@dataclass
class Event:
    action: str  # push | delete
    repository: str
    tag: str | None = None
    digest: str | None = None
    media_type: str | None = None
    # When the registry says the push happened. Never the manifest size the events carry: that is the manifest
    # document's own length, not the image's (config and layers), which the scan fills in (runner._store).
    pushed_at: dt.datetime | None = None


@dataclass
class HookOutcome:
    received: int = 0
    ignored: int = 0
    images: list[int] = field(default_factory=list)
    removed: int = 0
    queued: list[int] = field(default_factory=list)


def _digest(value: str) -> str | None:
    return value if value.startswith(("sha256:", "sha512:")) else None


def distribution_events(body: DistributionEnvelope) -> list[Event | None]:
    """Manifest pushes by tag, and deletes; None for what does not concern images (blobs, pulls, mounts).
    A push by digest alone (an index's platform manifests) is left out: the index's tag arrives with it."""
    out: list[Event | None] = []
    for event in body.events:
        t = event.target
        if event.action == "push" and t.mediaType in MANIFESTS and t.repository and t.tag:
            out.append(Event("push", t.repository, t.tag, _digest(t.digest), t.mediaType,
                             parse_time(event.timestamp)))
        elif event.action == "delete" and t.repository:
            out.append(Event("delete", t.repository, t.tag or None, _digest(t.digest)))
        else:
            out.append(None)
    return out


def harbor_events(body: HarborPayload) -> list[Event | None]:
    kind = {"PUSH_ARTIFACT": "push", "harbor.artifact.pushed": "push",
            "DELETE_ARTIFACT": "delete", "harbor.artifact.deleted": "delete"}.get(body.type)
    data = body.event_data or body.data
    if kind is None or data is None or data.repository is None:
        return [None]
    repo = data.repository
    repository = repo.repo_full_name or (f"{repo.namespace}/{repo.name}" if repo.namespace else repo.name)
    if not repository:
        return [None]
    pushed_at = parse_time(body.time) or _unix_time(body.occur_at)
    out: list[Event | None] = []
    for resource in data.resources:
        # Pushed by digest, Harbor puts the digest where the tag goes. A deleted artifact takes all its tags.
        tag = None if not resource.tag or _digest(resource.tag) or kind == "delete" else resource.tag
        out.append(Event(kind, repository, tag, _digest(resource.digest), pushed_at=pushed_at))
    return out or [None]


def _unix_time(seconds: int | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds and seconds > 0 else None
    except (OverflowError, OSError, ValueError):
        return None  # beyond what a datetime holds: a wrong clock, not worth refusing the push for


def jfrog_events(body: JfrogPayload) -> list[Event | None]:
    kind = {"pushed": "push", "deleted": "delete"}.get(body.event_type)
    data = body.data or body
    if kind is None or (body.domain and body.domain != "docker") or not data.repo_key or not data.image_name:
        return [None]
    # Artifactory's registry API names an image <repo-key>/<image>: the repository key is the namespace. Its events
    # carry no time, so such an image's Pushed stays unknown; `size` is the manifest file's, not the image's.
    digest = f"sha256:{data.sha256}" if data.sha256 and kind == "push" else None  # a tag is deleted, not a digest
    return [Event(kind, f"{data.repo_key}/{data.image_name}", data.tag or None, digest)]


# -- authentication and effects ----------------------------------------------------------------------------------


def token_matches(registry: Registry | None, presented: str | None) -> bool:
    """Constant-time check of a presented hook token against the registry's stored hash."""
    if registry is None or not registry.hook_token_hash or not presented:
        return False
    return same(token_hash(presented), registry.hook_token_hash)


def apply_events(session: Session, registry: Registry, events: list[Event | None], jobs: JobStore) -> HookOutcome:
    """Image rows created or updated for pushes (namespaces appear on first sight; automatic scans queued with
    trigger "push"), marked absent for deletes. The caller commits."""
    outcome = HookOutcome(received=len(events))
    sync = SyncOutcome()
    for event in events:
        if event is None or not _storable(event):
            outcome.ignored += 1
        elif event.action == "push":
            remote = RemoteImage(first_segment(event.repository), event.repository, event.tag, event.digest,
                                 media_type=event.media_type, pushed_at=event.pushed_at)
            before = len(sync.scans)
            image = upsert_image(session, registry.id, remote, jobs, sync, trigger="push")
            outcome.images.append(image.id)
            outcome.queued.extend(sync.scans[before:])
        else:
            outcome.removed += _mark_absent(session, registry.id, event)
    log.info("registry %s events: %d received, %d images, %d removed, %d scans queued", registry.id,
             outcome.received, len(outcome.images), outcome.removed, len(outcome.queued))
    return outcome


def _storable(event: Event) -> bool:
    """Fits the image table (names a registry would accept do); a push names a tag or a digest."""
    if not event.repository or len(event.repository) > 512 or len(event.tag or "") > 256 or \
            len(event.digest or "") > 160:
        return False
    return event.action != "push" or bool(event.tag or event.digest)


def _mark_absent(session: Session, registry_id: int, event: Event) -> int:
    """A deleted tag, manifest (by digest) or, with neither, repository: its rows are kept but marked absent."""
    query = update(Image).where(Image.registry_id == registry_id, Image.repository == event.repository, Image.present)
    if event.tag:
        query = query.where(Image.reference == event.tag)
    elif event.digest:
        query = query.where(Image.digest == event.digest)
    done = session.execute(query.values(present=False).execution_options(synchronize_session=False))
    return int(done.rowcount)  # type: ignore[attr-defined]
