"""Fleet mode on real parts: PostgreSQL, Redis, `hullscan serve`, `hullscan scheduler` and worker groups of two
clusters, each a separate process, scanning images in two real local registries (tests/support/fleet.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hullscan.service.fleet import ACTIVE_SCHEDULER
from hullscan.service.reevaluation import get_setting
from hullscan.service.storage.models import RUNNING, Scan, ScanResult
from hullscan.vulndb.store import apply_changes
from tests.service.conftest import wait_for
from tests.service.images import app_image, openssl_image, push
from tests.service.test_lifecycle import connect, layer_digest
from tests.support.fleet import Fleet, HullscanProcess
from tests.support.fleet_probe import peaks
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(900)


def add_registry(api: httpx.Client, url: str, name: str, cluster: str) -> tuple[int, dict[str, int]]:
    return connect(api, url, name, cluster=cluster)


def ended(f: Fleet, api: httpx.Client, scan_id: int, timeout: float = 300) -> dict[str, Any]:
    """The scan once it has ended (a generous bound for a busy machine; past it, the processes' logs say why)."""
    scan = wait_for(api, scan_id, timeout=timeout)
    assert scan["state"] in ("succeeded", "failed", "stopped"), f"scan {scan_id} still {scan['state']}\n{f.tails()}"
    return scan


def worker_of(f: Fleet, scan_id: int) -> str:
    """The id of the worker that took the scan last: "<queue>@host:pid:nonce"."""
    with f.db().session() as session:
        return session.scalars(select(Scan.worker).where(Scan.id == scan_id)).one() or ""


def worker_family(f: Fleet, scan_id: int) -> str:
    """The queue of the worker that took the scan."""
    return worker_of(f, scan_id).split("@", 1)[0]


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
    raise AssertionError(f"no worker took scan {scan_id} within {timeout} s\n{f.tails()}")


COUNT, PER_REGISTRY, TOTAL = 200, 3, 5


def test_200_requests_across_two_clusters_stay_within_the_caps(fleet: Callable[..., Fleet], registry: RegistryServer,
                                                                own_registry: RegistryServer) -> None:
    """Two registries in two clusters, a worker group each with more threads than the per-registry cap, the API and
    a scheduler both dispatching: at most 3 scans run per registry and 5 in all, counted inside the workers and by
    polling the database; every scan runs on its own cluster's worker; all 200 finish."""
    def upload(n: int) -> str:
        target = registry if n % 2 == 0 else own_registry  # the session's registry: repositories of this test's own
        return push(target, f"fleetload/app-{n // 20}", str(n % 20), app_image(9000 + n))

    # The first push to each repository alone: it writes the shared base layer, and Debian's docker-registry
    # answers 500 when several uploads commit the same blob at once (its filesystem driver; seen in CI). The
    # rest only add their own layer, in parallel.
    firsts = sorted({(n // 20, n % 2): n for n in reversed(range(COUNT))}.values())
    for n in firsts:
        upload(n)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, [n for n in range(COUNT) if n not in firsts]))
    # Nothing dies here: a long worker_lost_after keeps a busy machine's late heartbeat from looking like a death.
    f = fleet(max_scans_per_registry=PER_REGISTRY, max_running_scans=TOTAL, worker_lost_after=120)
    f.start_serve()
    f.start_scheduler()
    f.start_worker("east", concurrency=4)
    f.start_worker("west", concurrency=4)
    with f.client(timeout=120) as api:
        east, east_images = add_registry(api, registry.url, "east-registry", "east")
        west, west_images = add_registry(api, own_registry.url, "west-registry", "west")
        wanted = [east_images[k] for k in sorted(east_images) if k.startswith("fleetload/")] + \
                 [west_images[k] for k in sorted(west_images) if k.startswith("fleetload/")]
        assert len(wanted) == COUNT

        polled: Counter[int] = Counter()

        def poll() -> None:
            with f.db().session() as session:
                rows = session.execute(select(Scan.registry_id, func.count()).where(Scan.state == RUNNING)
                                       .group_by(Scan.registry_id)).all()
            for registry_id, n in rows:
                polled[registry_id] = max(polled[registry_id], n)

        clients = threading.local()  # one client (one connection) per sender, as separate scripts would have

        def ask(image_id: int) -> dict[str, Any]:
            if not hasattr(clients, "api"):
                clients.api = f.client()
            # the vulnerability item alone: what is measured is the caps, not the scan items
            answer = clients.api.post("/api/v1/scans", json={"image_id": image_id, "items": ["vuln"]})
            assert answer.status_code == 202, answer.text
            return answer.json()  # type: ignore[no-any-return]

        with ThreadPoolExecutor(16) as pool:
            scans = list(pool.map(ask, wanted))
        ids = {s["id"] for s in scans}
        assert len(ids) == COUNT
        deadline = time.monotonic() + 800
        while time.monotonic() < deadline:
            poll()
            finished = sum(int(api.get("/api/v1/scans", params={"state": state, "page_size": 1})
                               .headers["X-Total-Count"]) for state in ("succeeded", "failed", "stopped"))
            if finished >= COUNT:
                break
            time.sleep(0.05)
        states = Counter(api.get(f"/api/v1/scans/{i}").json()["state"] for i in ids)
    assert states == {"succeeded": COUNT}, states

    per_registry, total = peaks(f.probe_events())
    print(f"\n{COUNT} scan requests over two clusters, caps {PER_REGISTRY} per registry / {TOTAL} in all; most "
          f"running at once per registry: in the workers {per_registry}, polled {dict(polled)}; in all {total}")
    assert set(per_registry) == {east, west}
    assert max(per_registry.values()) <= PER_REGISTRY and total <= TOTAL
    assert max(polled.values()) <= PER_REGISTRY
    assert max(per_registry.values()) >= 2  # scans did run side by side: the caps were what held them back
    with f.db().session() as session:
        rows = session.execute(select(Scan.registry_id, Scan.worker)).all()
        assert session.scalar(select(func.count()).select_from(ScanResult)) == COUNT
    families = Counter((registry_id, (worker or "").split("@", 1)[0]) for registry_id, worker in rows)
    assert families == {(east, "east"): COUNT // 2, (west, "west"): COUNT // 2}, families


def test_a_worker_killed_mid_scan_loses_nothing(fleet: Callable[..., Fleet], registry: RegistryServer,
                                                fault_proxy: Callable[..., FaultProxy]) -> None:
    """Two workers of one cluster; the one running a scan (held mid-download) is killed with SIGKILL: the scan is
    given up on after worker_lost_after, sent again and finished by the other, with one result."""
    with held_scan(fleet, registry, fault_proxy, 7101, times=1, workers=2, scheduler=True,
                   worker_lost_after=15) as held:
        f, scan = held.fleet, held.scan
        first = running_worker(f, scan["id"])
        victim = next(w for w in held.workers if f":{w.pid}:" in first)
        survivor = next(w for w in held.workers if w is not victim)
        victim.kill()
        done = ended(f, held.api, scan["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    assert f":{survivor.pid}:" in worker_of(f, scan["id"])
    with f.db().session() as session:
        assert session.scalar(select(func.count()).select_from(ScanResult)
                              .where(ScanResult.scan_id == scan["id"])) == 1


def test_a_duplicate_delivery_runs_and_stores_once(fleet: Callable[..., Fleet], registry: RegistryServer) -> None:
    """The same task delivered twice (sent again by hand while the scan waits for a worker) runs the scan once."""
    from hullscan.service.jobs.broker import make_app, send_scan
    from hullscan.settings import Settings

    push(registry, "fleet/dup", "1", app_image(7201))
    f = fleet()
    f.start_serve()
    with f.client() as api:
        _, images = add_registry(api, registry.url, "east-registry", "east")
        scan = api.post("/api/v1/scans", json={"image_id": images["fleet/dup:1"]}).json()
        deadline = time.monotonic() + 180
        holder = None
        while holder is None and time.monotonic() < deadline:  # sent to the (still absent) workers of east
            with f.db().session() as session:
                row = session.get(Scan, scan["id"])
                assert row is not None
                holder = row.worker if row.state == RUNNING else None
            time.sleep(0.05)
        assert holder is not None and holder.startswith("dispatch@"), f"scan {scan['id']} was not sent\n{f.tails()}"
        app = make_app(Settings(broker_url=f.broker_url))
        send_scan(app, scan["id"], holder, "east", 0)  # the duplicate
        workers = [f.start_worker("east", concurrency=1), f.start_worker("east", concurrency=1)]
        done = ended(f, api, scan["id"])
        assert done["state"] == "succeeded" and done["attempts"] == 1, done
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("delivery dropped" in w.log() for w in workers):
            time.sleep(0.1)
    assert sum(w.log().count("delivery dropped") for w in workers) == 1
    enters = [e for e in f.probe_events() if e[1] == "enter" and e[2] == scan["id"]]
    assert len(enters) == 1
    with f.db().session() as session:
        assert session.scalar(select(func.count()).select_from(ScanResult)) == 1


@dataclass
class Held:
    fleet: Fleet
    api: httpx.Client
    scan: dict[str, Any]
    workers: list[HullscanProcess]


@contextmanager
def held_scan(fleet: Callable[..., Fleet], registry: RegistryServer, fault_proxy: Callable[..., FaultProxy], n: int,
              *, times: int = -1, workers: int = 1, scheduler: bool = False, stalled: bool = True,
              **settings: Any) -> Iterator[Held]:
    """A fleet (the API and `workers` workers of cluster east) running one scan whose download hangs mid-way: the
    first `times` times it is tried (-1: always), until the end. `stalled`: wait until the download hangs."""
    image = app_image(n)
    push(registry, f"fleet/held-{n}", "1", image)
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{layer_digest(image)}", times=times)
    f = fleet(**settings)
    f.start_serve()
    if scheduler:
        f.start_scheduler()
    started = [f.start_worker("east", concurrency=1) for _ in range(workers)]
    try:
        with f.client() as api:
            _, images = add_registry(api, proxy.url, "east-registry", "east")
            scan = api.post("/api/v1/scans", json={"image_id": images[f"fleet/held-{n}:1"]}).json()
            assert not stalled or held.wait_stalled(180), f"scan {scan['id']} never reached its layer\n{f.tails()}"
            yield Held(f, api, scan, started)
    finally:
        held.release()


def test_a_stop_request_reaches_a_scan_on_another_process(fleet: Callable[..., Fleet], registry: RegistryServer,
                                                          fault_proxy: Callable[..., FaultProxy]) -> None:
    with held_scan(fleet, registry, fault_proxy, 7301) as held:
        running_worker(held.fleet, held.scan["id"])
        assert held.api.post(f"/api/v1/scans/{held.scan['id']}/stop").status_code == 200  # to the API process
        done = ended(held.fleet, held.api, held.scan["id"])
    assert done["state"] == "stopped", done
    assert done["cause"]["code"] == "STOPPED"


def test_manual_scans_overtake_scheduled_ones_in_the_fleet(fleet: Callable[..., Fleet], registry: RegistryServer,
                                                           fault_proxy: Callable[..., FaultProxy]) -> None:
    """One scan at a time for the registry: while one runs, a schedule queues two scans and a person asks for a
    third; the person's runs next."""
    busy = app_image(7401)
    push(registry, "busy/app", "1", busy)
    for n, repo in enumerate(("sched/a", "sched/b")):
        push(registry, repo, "1", app_image(7402 + n))
    push(registry, "hand/c", "1", app_image(7410))
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{layer_digest(busy)}", times=1)
    f = fleet(max_scans_per_registry=1)
    f.start_serve()
    f.start_scheduler()
    f.start_worker("east", concurrency=2)
    with f.client() as api:
        registry_id, images = add_registry(api, proxy.url, "east-registry", "east")
        first = api.post("/api/v1/scans", json={"image_id": images["busy/app:1"]}).json()
        assert held.wait_stalled(180), f"the first scan never reached its layer\n{f.tails()}"
        schedule = api.post("/api/v1/schedules", json={"action": "scan", "registry": registry_id,
                                                       "namespace": "sched", "cron": "0 2 * * *"}).json()
        assert api.post(f"/api/v1/schedules/{schedule['id']}/run").status_code == 202
        deadline, scheduled = time.monotonic() + 180, 0
        while scheduled < 2 and time.monotonic() < deadline:
            scheduled = int(api.get("/api/v1/scans", params={"trigger": "scheduled", "page_size": 1})
                            .headers["X-Total-Count"])
            time.sleep(0.1)
        assert scheduled == 2, f"the schedule queued {scheduled} scan(s), not 2\n{f.tails()}"
        manual = api.post("/api/v1/scans", json={"image_id": images["hand/c:1"]}).json()
        held.release()
        for scan_id in [first["id"], manual["id"]] + [s["id"] for s in api.get(
                "/api/v1/scans", params={"trigger": "scheduled"}).json()]:
            assert ended(f, api, scan_id)["state"] == "succeeded"
    order = [e[2] for e in f.probe_events() if e[1] == "enter"]
    assert len(order) == 4 and order[:2] == [first["id"], manual["id"]], order


def test_a_second_scheduler_stands_by_until_the_first_dies(fleet: Callable[..., Fleet],
                                                           registry: RegistryServer) -> None:
    f = fleet()
    f.start_serve()

    def active() -> Any:
        with f.db().session() as session:
            return get_setting(session, ACTIVE_SCHEDULER)

    def wait_active(pid: int) -> bool:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (active() or {}).get("pid") == pid:
                return True
            time.sleep(0.1)
        return False

    first = f.start_scheduler()
    assert wait_active(first.pid), f"the first scheduler never became active\n{f.tails()}"
    second = f.start_scheduler()
    assert second.wait_log("another scheduler is active; standing by"), f.tails()
    with f.client() as api:
        registry_id, _ = add_registry(api, registry.url, "east-registry", "east")
        # every second: the active scheduler fires it, whichever that is
        schedule = api.post("/api/v1/schedules", json={"action": "scan", "registry": registry_id,
                                                       "cron": "* * * * * *"}).json()
        assert first.wait_log(f"schedule {schedule['id']} fired"), f.tails()
        assert active()["pid"] == first.pid and "this scheduler is active" not in second.log()
        assert f"schedule {schedule['id']} fired" not in second.log()
        first.kill()
        assert wait_active(second.pid), f"the second scheduler never took over\n{f.tails()}"
        assert second.wait_log(f"schedule {schedule['id']} fired"), f.tails()


def test_the_deadline_reaches_the_worker(fleet: Callable[..., Fleet], registry: RegistryServer,
                                         fault_proxy: Callable[..., FaultProxy]) -> None:
    """The same settings everywhere: a scan on a worker past HULLSCAN_SCAN_TIMEOUT ends with the timeout cause."""
    # Not waiting for the hang: on a busy machine the deadline may come before the download does, a TIMEOUT too.
    with held_scan(fleet, registry, fault_proxy, 7501, stalled=False, scan_timeout=3) as held:
        done = ended(held.fleet, held.api, held.scan["id"])
    assert done["state"] == "failed" and done["cause"]["code"] == "TIMEOUT", done
    assert worker_family(held.fleet, held.scan["id"]) == "east"


def test_a_database_change_is_reevaluated_on_the_workers_without_downloading(
        fleet: Callable[..., Fleet], registry: RegistryServer, fault_proxy: Callable[..., FaultProxy]) -> None:
    """The scheduler notices the vulnerability data changed; the re-evaluation runs on the cluster's worker from
    the stored facts: no request reaches the registry."""
    push(registry, "fleet/ssl", "1", openssl_image())
    proxy = fault_proxy(registry)
    f = fleet()
    f.start_serve()
    f.start_scheduler()
    f.start_worker("east", concurrency=1)
    with f.client() as api:
        registry_id, images = add_registry(api, proxy.url, "east-registry", "east")
        first = ended(f, api, api.post("/api/v1/scans", json={"image_id": images["fleet/ssl:1"]}).json()["id"])
        assert first["state"] == "succeeded" and sum(first["counts"]["vulnerabilities"].values()) >= 1, first
        requests = proxy.count()
        apply_changes(Path(f.env["HULLSCAN_DB"]), [], removals=["ALPINE-CVE-2019-1551"])
        deadline = time.monotonic() + 180
        while not (again := api.get("/api/v1/scans", params={"registry": registry_id, "kind": "reevaluate"})
                   .json()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(again) == 1, f"re-evaluations: {again}\n{f.tails()}"
        done = ended(f, api, again[0]["id"])
    assert done["state"] == "succeeded" and sum(done["counts"]["vulnerabilities"].values()) == 0, done
    assert worker_family(f, done["id"]) == "east"
    assert proxy.count() == requests


def test_a_worker_told_to_stop_hands_its_scan_back(fleet: Callable[..., Fleet], registry: RegistryServer,
                                                   fault_proxy: Callable[..., FaultProxy]) -> None:
    """SIGTERM (systemd stopping a worker) does not wait for a running scan to end: the scan goes back to the queue
    and another worker of the cluster runs it."""
    with held_scan(fleet, registry, fault_proxy, 7601, times=1) as held:
        leaving = held.workers[0]
        assert f":{leaving.pid}:" in running_worker(held.fleet, held.scan["id"])
        leaving.stop()  # SIGTERM, and wait for it to exit
        assert "handed 1 running scan(s) back to the queue" in leaving.log()
        staying = held.fleet.start_worker("east", concurrency=1)
        done = ended(held.fleet, held.api, held.scan["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    assert f":{staying.pid}:" in worker_of(held.fleet, held.scan["id"])
