"""A synchronisation that meets a push hook: the hook records a tag after the sync loaded the rows it knew and
before it writes its new ones (what `make demo` met: a push, then a sync at once). The tag is the same image, so
the sync keeps the hook's row and counts it as seen (never as gone); and whatever a sync meets, it never stays
"running" for ever."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hullscan.errors import HullscanError
from hullscan.service import sync
from hullscan.service.connectors.base import RemoteImage
from hullscan.service.core import Service
from hullscan.service.jobs.queue import JobStore
from hullscan.service.storage.models import Image, Registry
from tests.service.images import app_image, push
from tests.support.registry import RegistryServer


def _registry(service: Service, url: str) -> int:
    with service.db.session() as session:
        registry = Registry(name="r", type="distribution", url=url, insecure=True)
        session.add(registry)
        session.flush()
        return registry.id


def test_a_tag_the_push_hook_wrote_meanwhile_is_skipped_not_an_error(idle_service: Service) -> None:
    registry_id = _registry(idle_service, "http://127.0.0.1:9")
    remote = RemoteImage("team", "team/app", "1.0", digest="sha256:" + "a" * 64)
    known = sync._Known(idle_service.db, registry_id)  # the sync lists what it knows ...
    with idle_service.db.session() as session:  # ... the push hook records the tag ...
        sync.upsert_image(session, registry_id, remote, JobStore(idle_service.db), sync.SyncOutcome(), trigger="push")
    # ... and the sync writes the tag it saw as new
    sync._write(idle_service.db, registry_id, [remote], known, JobStore(idle_service.db), sync.SyncOutcome())
    with idle_service.db.session() as session:
        rows = session.query(Image).filter(Image.registry_id == registry_id).all()
        assert [(i.repository, i.reference, i.digest, i.present) for i in rows] == \
            [("team/app", "1.0", "sha256:" + "a" * 64, True)]


def test_a_tag_the_push_hook_stamped_before_the_sync_started_stays_present(
        idle_service: Service, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook took its time stamp before the sync started and committed after the sync loaded its rows (make demo:
    seen 1, added 1, removed 1, and the pushed tag no longer listed)."""
    registry_id = _registry(idle_service, registry.url)
    # The registry is the session's, shared with other tests: a repository of this test's own.
    digest = push(registry, "sync-races/hooked", "1.0", app_image(9001))
    loaded = sync._Known

    def hook_meanwhile(db: Any, rid: int) -> sync._Known:
        known = loaded(db, rid)
        with db.session() as session:
            pushed = RemoteImage("sync-races", "sync-races/hooked", "1.0", digest=digest)
            image = sync.upsert_image(session, rid, pushed, JobStore(db), sync.SyncOutcome(), trigger="push")
            image.last_seen = image.last_seen - dt.timedelta(minutes=1)
        return known

    monkeypatch.setattr(sync, "_Known", hook_meanwhile)
    outcome = sync.synchronise(idle_service.db, idle_service.box, registry_id)
    assert outcome.removed == 0, outcome.counts()
    with idle_service.db.session() as session:
        rows = session.query(Image).filter(Image.registry_id == registry_id,
                                           Image.repository == "sync-races/hooked").all()
        assert [(i.reference, i.digest, i.present) for i in rows] == [("1.0", digest, True)]


def test_an_unexpected_failure_ends_the_sync_as_failed(idle_service: Service, registry: RegistryServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    registry_id = _registry(idle_service, registry.url)

    def broken(*args: Any) -> None:
        raise RuntimeError("a fault no catalogue entry names")

    monkeypatch.setattr(sync, "_write", broken)
    with pytest.raises(HullscanError) as raised:
        sync.synchronise(idle_service.db, idle_service.box, registry_id)
    assert raised.value.code == "INTERNAL_ERROR"
    with idle_service.db.session() as session:
        row = session.get(Registry, registry_id)
        assert row is not None and row.last_sync_state == "failed"
        assert row.last_sync_cause is not None
        assert row.last_sync_cause["code"] == "INTERNAL_ERROR" and row.last_sync_cause["solution"]
