"""The fleet's one layer cache on real parts (tests/support/fleet.py): PostgreSQL, Redis, `hullscan serve`, a
scheduler and the worker groups of two clusters as separate processes. The workers keep layer facts in the
fleet's PostgreSQL (HULLSCAN_DATABASE_URL, `cache = auto`), so a base layer shared by images in two registries is
analysed by one worker only, and nothing goes to a worker's own filesystem cache."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from hullscan.imagebuild import sha256
from hullscan.service.storage.models import Scan
from tests.service.conftest import wait_for
from tests.service.images import app_image, push
from tests.service.test_lifecycle import connect
from tests.support.fleet import Fleet
from tests.support.postgres import layer_cache_rows
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(900)


def layer_writes(database_url: str) -> dict[str, int]:
    """diff_id -> how many times its facts were written to the fleet's store (more than 1: analysed twice)."""
    rows = layer_cache_rows(database_url)
    assert len({key for _, key, _ in rows}) == 1  # both scans ran the same analyzers
    return {diff_id: n for diff_id, _, n in rows}


def test_a_layer_shared_by_images_in_both_registries_is_analysed_once_fleet_wide(
        fleet: Callable[..., Fleet], registry: RegistryServer, own_registry: RegistryServer) -> None:
    east_image, west_image = app_image(7101), app_image(7102)  # one Alpine base layer, an application layer each
    push(registry, "fleetshared/app", "1", east_image)
    push(own_registry, "fleetshared/app", "1", west_image)
    f = fleet()
    f.start_serve()
    f.start_scheduler()
    f.start_worker("east", concurrency=1)
    f.start_worker("west", concurrency=1)
    with f.client() as api:
        _, east = connect(api, registry.url, "east-registry", cluster="east")
        _, west = connect(api, own_registry.url, "west-registry", cluster="west")
        # Both asked at once: each cluster's worker reaches the base layer; one walks it, the other takes its facts.
        ids = [api.post("/api/v1/scans", json={"image_id": images["fleetshared/app:1"], "items": ["vuln"]}).json()["id"]
               for images in (east, west)]
        done = [wait_for(api, scan_id, timeout=300) for scan_id in ids]
    assert [d["state"] for d in done] == ["succeeded", "succeeded"], f"{done}\n{f.tails()}"
    with f.db().session() as session:
        workers = [session.scalars(select(Scan.worker).where(Scan.id == i)).one() or "" for i in ids]
    assert [w.split("@", 1)[0] for w in workers] == ["east", "west"]  # two worker processes, one per cluster
    base, east_app, west_app = (sha256(layer.tar) for layer in (*east_image.layers, west_image.layers[-1]))
    assert east_image.layers[0].tar == west_image.layers[0].tar
    assert layer_writes(f.database_url) == {base: 1, east_app: 1, west_app: 1}
    # no worker kept layer facts of its own (HULLSCAN_CACHE_DIR, <process>/cache, is the filesystem cache's place)
    assert [p for p in f.root.glob("*/cache/**/*") if p.is_file()] == []
