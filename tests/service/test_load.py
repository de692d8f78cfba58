"""200 scan requests at once: never more than the per-registry cap running for one registry (nor more than the
global cap in all), none lost, all finished.

200 distinct small images sharing a base layer are uploaded to the real registry through its API. The service
(Uvicorn on a loopback port) knows that registry twice, by two addresses, so the per-registry and the global caps
both bind: at most 3 scans per registry and 5 in all. Requests carry an API token, as a script's would. The
running counts are measured twice: by instrumenting the runner (from the start of ScanRunner.run until the outcome
is written, per registry) and by polling the database's `running` rows. The figures are printed (run with -s to
see them)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hullscan.cancel import CancelToken
from hullscan.service.storage.models import RUNNING, Scan
from tests.service.conftest import make_settings
from tests.service.images import app_image, push
from tests.service.live import LiveService
from tests.service.test_lifecycle import connect
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(900)
COUNT, PER_REGISTRY, TOTAL = 200, 3, 5


class Peaks:
    """Highest number of scans seen at once, per registry and in all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[int] = Counter()
        self.inside: dict[int, int] = {}  # scan id -> registry id
        self.per_registry: Counter[int] = Counter()
        self.total = 0

    def record(self, counts: dict[int, int]) -> None:
        with self.lock:
            for registry_id, n in counts.items():
                self.per_registry[registry_id] = max(self.per_registry[registry_id], n)
            self.total = max(self.total, sum(counts.values()))

    def enter(self, scan_id: int, registry_id: int) -> None:
        with self.lock:
            self.inside[scan_id] = registry_id
            self.now[registry_id] += 1
        self.record(dict(self.now))

    def leave(self, scan_id: int) -> None:
        with self.lock:
            registry_id = self.inside.pop(scan_id, None)
            if registry_id is not None:
                self.now[registry_id] -= 1


def test_200_scan_requests_at_once_within_the_caps(registry: RegistryServer, tmp_path: Path) -> None:
    for n in range(COUNT):
        push(registry, f"load/app-{n // 20}", str(n % 20), app_image(1000 + n))
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", max_scans_per_registry=PER_REGISTRY,
                             max_running_scans=TOTAL)
    live = LiveService(settings).start()
    try:
        svc = live.service
        inside, polled = Peaks(), Peaks()
        # A scan counts from the moment its runner starts until its outcome is about to be written: the moment
        # after, it no longer runs and the dispatcher may start the next one.
        runner = svc.executor.runner  # type: ignore[attr-defined]
        real_run, real_finish, real_retry = runner.run, runner.jobs.finish, runner.jobs.retry_later

        def run(scan_id: int, worker: str, cancel: CancelToken) -> str:
            with svc.db.session() as session:
                inside.enter(scan_id, session.scalars(select(Scan.registry_id).where(Scan.id == scan_id)).one())
            try:
                return real_run(scan_id, worker, cancel)  # type: ignore[no-any-return]
            finally:
                inside.leave(scan_id)

        def finish(scan_id: int, *args: Any, **kwargs: Any) -> bool:
            inside.leave(scan_id)
            return real_finish(scan_id, *args, **kwargs)  # type: ignore[no-any-return]

        def retry_later(scan_id: int, *args: Any, **kwargs: Any) -> bool:
            inside.leave(scan_id)
            return real_retry(scan_id, *args, **kwargs)  # type: ignore[no-any-return]

        runner.run, runner.jobs.finish, runner.jobs.retry_later = run, finish, retry_later
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                with svc.db.session() as session:
                    polled.record(dict(session.execute(select(Scan.registry_id, func.count()).where(
                        Scan.state == RUNNING).group_by(Scan.registry_id)).all()))  # type: ignore[arg-type]
                time.sleep(0.02)

        with live.client(timeout=120) as api:  # an API token: a SHA-256 to check, where a password costs an Argon2
            near, images = connect(api, registry.url, "near")
            far, far_images = connect(api, f"http://localhost:{registry.port}", "far")
            wanted = sorted(k for k in images if k.startswith("load/"))
            assert len(wanted) == COUNT
            requests = [images[k] for k in wanted[:COUNT // 2]] + [far_images[k] for k in wanted[COUNT // 2:]]

            watcher = threading.Thread(target=poll, daemon=True)
            watcher.start()
            started = time.monotonic()

            clients = threading.local()  # one client (one connection) per sender, as separate scripts would have

            def ask(image_id: int) -> dict[str, Any]:
                if not hasattr(clients, "api"):
                    clients.api = live.client(auth=api.auth, timeout=120)
                answer = clients.api.post("/api/v1/scans", json={"image_id": image_id})
                assert answer.status_code == 202, answer.text
                return answer.json()  # type: ignore[no-any-return]

            with ThreadPoolExecutor(32) as pool:
                scans = list(pool.map(ask, requests))
            ids = {s["id"] for s in scans}
            assert len(ids) == COUNT  # one scan per request: distinct images, nothing merged or dropped

            deadline = time.monotonic() + 800
            while time.monotonic() < deadline:
                finished = sum(int(api.get("/api/v1/scans", params={"state": state, "page_size": 1})
                                   .headers["X-Total-Count"]) for state in ("succeeded", "failed", "stopped"))
                if finished >= COUNT:
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            done.set()
            watcher.join()

            states = Counter(api.get(f"/api/v1/scans/{i}").json()["state"] for i in ids)
            total_rows = int(api.get("/api/v1/scans", params={"page_size": 1}).headers["X-Total-Count"])
        print(f"\n{COUNT} scan requests, caps {PER_REGISTRY} per registry / {TOTAL} in all: finished in "
              f"{elapsed:.1f} s; most running at once per registry: instrumented {dict(inside.per_registry)}, "
              f"polled {dict(polled.per_registry)}; in all: instrumented {inside.total}, polled {polled.total}")
        assert states == {"succeeded": COUNT}, states
        assert total_rows == COUNT
        assert set(inside.per_registry) == {near, far}
        assert max(inside.per_registry.values()) <= PER_REGISTRY and inside.total <= TOTAL
        assert max(polled.per_registry.values()) <= PER_REGISTRY and polled.total <= TOTAL
        assert inside.total >= 2  # scans did run side by side: the caps were what held them back
    finally:
        live.stop()
