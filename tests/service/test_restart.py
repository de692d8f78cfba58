"""Killing `hullscan serve` (SIGKILL) in the middle of a scan, then starting it again, leaves no scan running for
ever: the scan is queued again and finishes, or, once it has used up its attempts, fails with WORKER_LOST.

The service runs as a child process on its own data directory and port; the scans are held mid-download by the
fault proxy in front of the real registry, so the kill lands while they run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hullscan.vulndb.store import build_from_paths
from tests.service.conftest import ADMIN, OSV_EXTRACT, wait_for
from tests.service.images import app_image, push
from tests.service.live import ServeProcess
from tests.service.test_lifecycle import connect, layer_digest
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "db").mkdir(parents=True)
    build_from_paths(data / "db" / "hullscan.db", [OSV_EXTRACT])
    return data


@pytest.fixture
def serve(data_dir: Path, tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `hullscan serve` on data_dir (HULLSCAN_* settings as keyword arguments); stopped at the end."""
    (tmp_path / "empty.toml").write_text("")
    started: list[ServeProcess] = []

    def start(**settings: str) -> ServeProcess:
        env = {"HULLSCAN_CONFIG": str(tmp_path / "empty.toml"), "HULLSCAN_CACHE_DIR": str(tmp_path / "cache"),
               "HULLSCAN_ADMIN_PASSWORD": ADMIN[1], "HULLSCAN_POOL_WORKERS": "0",
               **{f"HULLSCAN_{k.upper()}": v for k, v in settings.items()}}
        process = ServeProcess(data_dir, env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_a_killed_service_leaves_no_scan_running(serve: Callable[..., ServeProcess], registry: RegistryServer,
                                                 fault_proxy: Callable[..., FaultProxy]) -> None:
    first, second = app_image(401), app_image(402)
    push(registry, "restart/app", "first", first)
    push(registry, "restart/app", "second", second)
    proxy = fault_proxy(registry)
    held_once = proxy.hold(rf"/blobs/{layer_digest(first)}", times=1)
    held_always = proxy.hold(rf"/blobs/{layer_digest(second)}", times=-1)

    service = serve()
    with service.client() as api:
        _, images = connect(api, proxy.url)
        scan = api.post("/api/v1/scans", json={"image_id": images["restart/app:first"]}).json()
        assert held_once.wait_stalled()
        assert wait_for(api, scan["id"], ("running",))["state"] == "running"
    service.kill()

    # Started again: the scan the dead process was running is queued again, and finishes this time.
    service = serve()
    with service.client() as api:
        again = wait_for(api, scan["id"])
        assert again["state"] == "succeeded" and again["attempts"] == 2, again
        lost = api.post("/api/v1/scans", json={"image_id": images["restart/app:second"]}).json()
        assert held_always.wait_stalled()
        assert wait_for(api, lost["id"], ("running",))["state"] == "running"
    service.kill()

    # A scan that already had all its attempts (here: one) is failed with the cause, not run again.
    service = serve(scan_attempts="1")
    with service.client() as api:
        failed = api.get(f"/api/v1/scans/{lost['id']}").json()
        assert failed["state"] == "failed", failed
        assert failed["cause"]["code"] == "WORKER_LOST" and failed["cause"]["solution"]
        assert api.get("/api/v1/scans", params={"state": "running"}).json() == []
        assert int(api.get("/api/v1/scans").headers["X-Total-Count"]) == 2
    held_always.release()
    assert "left running by an earlier start were queued again or failed" in service.log()
