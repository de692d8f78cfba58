"""Fleet mode on real parts: PostgreSQL, Redis, `hullscan serve`, `hullscan scheduler` and worker groups of two
clusters, each a separate process, scanning images in two real local registries (tests/support/fleet.py)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hullscan.service.fleet import ACTIVE_SCHEDULER
from hullscan.service.reevaluation import get_setting
from hullscan.service.storage.models import RUNNING, Scan, ScanResult
from tests.service.conftest import wait_for
from tests.service.images import app_image, push
from tests.service.test_lifecycle import connect, layer_digest
from tests.support.fleet import Fleet
from tests.support.fleet_probe import peaks
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer, open_registry

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    root = tmp_path / "registry-west"
    root.mkdir()
    server = open_registry(root)
    try:
        yield server
    finally:
        server.stop()


def add_registry(api: httpx.Client, url: str, name: str, cluster: str) -> tuple[int, dict[str, int]]:
    return connect(api, url, name, cluster=cluster)


def worker_family(f: Fleet, scan_id: int) -> str:
    """The queue of the worker that took the scan (its worker id is "<queue>@host:pid:nonce")."""
    with f.db().session() as session:
        worker = session.scalars(select(Scan.worker).where(Scan.id == scan_id)).one()
    return (worker or "").split("@", 1)[0]


def running_worker(f: Fleet, scan_id: int, timeout: float = 90) -> str:
    """The id of the worker process running the scan, once one has taken it (not its dispatcher)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with f.db().session() as session:
            scan = session.get(Scan, scan_id)
            assert scan is not None
            if scan.state == RUNNING and scan.worker and not scan.worker.startswith("dispatch@"):
                return scan.worker
        time.sleep(0.1)
    raise AssertionError(f"no worker took scan {scan_id}")


def test_one_scan_runs_on_its_clusters_worker(fleet: Callable[..., Fleet], registry: RegistryServer) -> None:
    f = fleet()
    push(registry, "fleet/smoke", "1", app_image(7001))
    f.start_serve()
    f.start_worker("east", concurrency=1)
    with f.client() as api:
        _, images = add_registry(api, registry.url, "east-registry", "east")
        scan = api.post("/api/v1/scans", json={"image_id": images["fleet/smoke:1"]}).json()
        done = wait_for(api, scan["id"])
    assert done["state"] == "succeeded", done
    assert worker_family(f, scan["id"]) == "east"
