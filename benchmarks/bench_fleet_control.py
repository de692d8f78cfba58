"""The fleet's control plane under 20,000 queued jobs across 50 registries: a SIMULATION of the queue and the limits,
not of scanning.

What is real: PostgreSQL (initdb'd by tests/support/postgres.py), `hullscan serve` (the API) as its own process on
that database, every scan request sent to it over HTTP (`POST /api/v1/scans`, an API token), the job store's claim
path (jobs/queue.py: per-registry and global caps, serialised by a PostgreSQL advisory lock) run by the service's
own executor (jobs/executor.py `InProcessExecutor`: dispatcher, heartbeats, pool) in several worker processes.
What is simulated: the scan. Each worker process hands its executor a runner built here, in this file, that sleeps
(0.5 to 1.5 x --sleep seconds) instead of calling the engine, then stores the outcome through the same
`JobStore.finish`. No setting or variable of hullscan reaches this runner: it exists only inside these bench
processes.

Setup, not measured: the registries are connected through the API; their 20,000 images are written to the database
as a synchronisation would list them (no registry holds them: nothing is pulled). The API's own in-process executor
must not take the simulated jobs (it would try to scan them for real), so the API runs with max_running_scans=1
and the bench holds one scan of a 51st registry running throughout: the fleet-wide count is never below 1, so the
API's executor claims nothing and every job goes to the simulated workers.

Measured:
- enqueue: requests per second through the API, and each request's latency (p50/p95), while workers drain;
- dispatch latency: for each registry saturated at its cap C, the k-th start waits for the (k-C)-th finish (the slot
  it takes): latency = claimed_at - max(created_at, that finish), from the database's own timestamps; p50/p95/max;
- the per-registry cap: the most jobs of one registry inside the sleep at once (a sweep over every job's start and
  end as the workers recorded them), and the most `running` rows of one registry seen by polling the database;
  either above the cap is a FAIL;
- memory: resident set of the API process (before, during and after enqueueing) and of each worker process;
- drain: seconds until all jobs succeeded; every job must end succeeded.

Usage: python benchmarks/bench_fleet_control.py [--jobs 20000] [--registries 50] [--workers 4] [--sleep 1.0]
                                              [--order interleaved|by-registry]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import fleet_harness
from fleet_harness import ROOT, Process, Sampler, api_client, fleet_env, percentile, postgres, redis, role_env, serve
from sqlalchemy import func, select

from hullscan.cancel import CancelToken
from hullscan.service.jobs.executor import InProcessExecutor, worker_id
from hullscan.service.jobs.queue import JobStore, Limits
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import PRIORITIES, RUNNING, SUCCEEDED, Image, Namespace, Scan, now
from hullscan.settings import Settings

BANNER = "SIMULATION of the queue and the limits, not of scanning: the scan step only sleeps."
REAL = {"fleet": "Real: PostgreSQL, Redis, the API and `hullscan scheduler` processes dispatching through Celery, "
                 "HTTP requests, Celery workers on one queue per cluster taking each scan from its holder.",
        "store": "Real: PostgreSQL, the API process, HTTP requests, the job store's claim path and the in-process "
                 "executor in several worker processes (no broker)."}


# -- the simulated worker process --------------------------------------------------------------------------------

class SleepingRunner:
    """Stands in for ScanRunner in the bench's worker processes only: reads the scan's row as the real runner does,
    sleeps instead of scanning, stores the outcome through the same JobStore.finish."""

    def __init__(self, db: Database, settings: Settings, sleep: float, seed: int, records: Path) -> None:
        self.jobs = JobStore(db)
        self.db = db
        self.settings = settings
        self.sleep = sleep
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.records = records  # a line per scan step: scan id, registry id, sleep began, sleep ended

    def run(self, scan_id: int, worker: str, cancel: CancelToken) -> str:
        with self.db.session() as session:
            scan = session.get(Scan, scan_id)
            assert scan is not None
            registry_id = scan.registry_id
        with self.lock:
            pause = self.random.uniform(0.5 * self.sleep, 1.5 * self.sleep)
        began = time.time()
        cancel.sleep(pause)
        ended = time.time()  # before the outcome is written, so the next claim of this slot starts later
        fd = os.open(self.records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:  # one short write on an O_APPEND file: lines of concurrent threads never interleave
            os.write(fd, f"{scan_id} {registry_id} {began:.6f} {ended:.6f}\n".encode())
        finally:
            os.close(fd)
        self.jobs.finish(scan_id, worker, SUCCEEDED)
        return SUCCEEDED


def sim_worker(args: argparse.Namespace) -> int:
    """One simulated worker process: fleet-core's Celery worker on one queue (--queue), or the in-process executor
    claiming from the store (no --queue), with the sleeping runner."""
    settings = Settings()  # the fleet's settings from the environment, as every hullscan process reads them
    db = Database(settings.service_database_url)
    runner = SleepingRunner(db, settings, args.sleep, args.seed, Path(args.records))
    if args.queue:
        from hullscan.service.jobs.broker import make_app
        from hullscan.service.jobs.wakeup import SlotAnnouncer
        from hullscan.service.jobs.worker import FleetWorker

        # as `hullscan worker` makes it (service/fleet.py run_worker): an ended scan wakes the dispatchers
        fleet_worker = FleetWorker(runner, args.queue, announce=SlotAnnouncer(settings.broker_url).announce)  # type: ignore[arg-type]
        app = make_app(settings)
        fleet_worker.register(app)
        fleet_worker.start()
        worker = app.Worker(queues=[args.queue], concurrency=args.concurrency, pool="threads", loglevel="WARNING",
                            hostname=f"sim-{args.queue}.{os.getpid()}@bench", without_mingle=True,
                            without_gossip=True, optimization="fair", redirect_stdouts=False)
        print("ready", flush=True)
        worker.start()  # until SIGTERM
        fleet_worker.shutdown()
    else:
        executor = InProcessExecutor(runner, Limits(settings.max_scans_per_registry,  # type: ignore[arg-type]
                                                    args.global_cap), family=args.family)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        executor.start()
        print("ready", flush=True)
        done.wait()
        executor.shutdown()
    db.close()
    return 0


# -- the bench ---------------------------------------------------------------------------------------------------

def setup(client: Any, db: Database, jobs: int, registries: int, clusters: int) -> tuple[list[list[int]], int]:
    """Registries through the API, images into the database; the image ids per registry and the sentinel's."""
    ids = []
    for i in range(registries + 1):
        name = f"sim-{i:02d}" if i < registries else "sentinel"
        answer = client.post("/api/v1/registries", json={"name": name, "type": "distribution",
                                                         "url": "http://127.0.0.1:9", "cluster": f"c{i % clusters}"})
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    per_registry: list[list[int]] = []
    with db.session() as session:
        for index, registry_id in enumerate(ids):
            namespace = Namespace(registry_id=registry_id, name="team")
            session.add(namespace)
            session.flush()
            count = 1 if index == registries else jobs // registries + (index < jobs % registries)
            images = [Image(registry_id=registry_id, namespace_id=namespace.id, repository=f"team/app-{j:05d}",
                            reference="1.0", tag="1.0") for j in range(count)]
            session.add_all(images)
            session.flush()
            per_registry.append([im.id for im in images])
    sentinel = per_registry.pop()
    return per_registry, sentinel[0]


def hold_sentinel(db: Database, image_id: int) -> tuple[int, int, str]:
    """The sentinel registry's one scan, written already running (never queued, so no executor can take it first);
    its id, its registry and its holder."""
    holder = worker_id("bench-sentinel")
    with db.session() as session:
        image = session.get(Image, image_id)
        assert image is not None
        stamp = now()
        scan = Scan(image_id=image.id, registry_id=image.registry_id, kind="scan", trigger="manual",
                    priority=PRIORITIES["manual"], state=RUNNING, items=["vuln"], requested_by="bench",
                    worker=holder, started_at=stamp, heartbeat_at=stamp, attempts=1)
        session.add(scan)
        session.flush()
        return scan.id, image.registry_id, holder


def keep_alive(db: Database, scan_id: int, holder: str, stop: threading.Event) -> None:
    jobs = JobStore(db)
    while not stop.wait(2.0):
        jobs.heartbeat([scan_id], holder)
    jobs.finish(scan_id, holder, SUCCEEDED)


def poll_running(db: Database, exclude: int, stop: threading.Event, peaks: Counter[int]) -> None:
    """The most `running` rows per registry seen in the database, polled every 0.25 s."""
    while not stop.wait(0.25):
        with db.session() as session:
            rows = session.execute(select(Scan.registry_id, func.count()).where(Scan.state == RUNNING)
                                   .group_by(Scan.registry_id)).all()
        for registry_id, count in rows:
            if registry_id != exclude:
                peaks[registry_id] = max(peaks[registry_id], count)


def most_at_once(records: list[tuple[int, int, float, float]]) -> dict[int, int]:
    """Per registry, the most sleeps overlapping at any instant (an end at the same instant as a start counts
    first: the slot was given back before it was taken again)."""
    events: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for _, registry_id, began, ended in records:
        events[registry_id] += [(began, 1), (ended, -1)]
    peaks = {}
    for registry_id, marks in events.items():
        now = peak = 0
        for _, step in sorted(marks):
            now += step
            peak = max(peak, now)
        peaks[registry_id] = peak
    return peaks


def dispatch_latencies(rows: list[tuple[int, dt.datetime, dt.datetime, dt.datetime]], cap: int,
                       since: dt.datetime) -> list[float]:
    """Seconds from a slot being free (its registry below the cap, the job queued, the workers up: `since`) to the
    job being claimed."""
    by_registry: dict[int, list[tuple[dt.datetime, dt.datetime, dt.datetime]]] = defaultdict(list)
    for registry_id, created, started, finished in rows:
        by_registry[registry_id].append((created, started, finished))
    out = []
    for scans in by_registry.values():
        starts = sorted(scans, key=lambda s: s[1])
        finishes = sorted(s[2] for s in scans)
        for k, (created, started, _) in enumerate(starts):
            free_at = max(created, since) if k < cap else max(created, since, finishes[k - cap])
            out.append(max(0.0, (started - free_at).total_seconds()))
    return out


def enqueue_all(client: Any, order: list[int], clients: int) -> tuple[float, list[float], Counter[int]]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def one(image_id: int) -> None:
        began = time.perf_counter()
        answer = client.post("/api/v1/scans", json={"image_id": image_id, "items": ["vuln"]})
        took = time.perf_counter() - began
        with lock:
            latencies.append(took)
            statuses[answer.status_code] += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, order))
    return time.perf_counter() - began, latencies, statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--registries", type=int, default=50)
    ap.add_argument("--clusters", type=int, default=5)
    ap.add_argument("--per-registry", type=int, default=10)
    ap.add_argument("--global-cap", type=int, default=1000, help="above registries x per-registry: the per-registry "
                    "cap is the one that binds")
    ap.add_argument("--mode", choices=["auto", "fleet", "store"], default="auto", help="fleet: Celery dispatch and "
                    "workers (needs fleet-core); store: workers claim from the store directly; auto: fleet if present")
    ap.add_argument("--workers", type=int, default=4, help="simulated worker processes (store mode; fleet mode runs "
                    "one per cluster)")
    ap.add_argument("--sleep", type=float, default=1.0, help="mean seconds of the simulated scan step")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients sending the scan requests")
    ap.add_argument("--order", choices=["interleaved", "by-registry"], default="interleaved",
                    help="requests alternate registries, or come one registry after another (as syncs would)")
    ap.add_argument("--timeout", type=float, default=1800)
    # internal: one simulated worker process
    ap.add_argument("--sim-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--family", help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--records", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sim_worker:
        return sim_worker(args)
    if min(args.jobs, args.registries, args.clusters, args.per_registry) < 1:
        ap.error("--jobs, --registries, --clusters and --per-registry must be at least 1")
    args.clusters = min(args.clusters, args.registries)  # a cluster without a registry would get an idle worker

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still stops its servers
    mode = args.mode if args.mode != "auto" else ("fleet" if fleet_harness.fleet_available() else "store")
    print(BANNER)
    print(REAL[mode])
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    work = Path(tempfile.mkdtemp(prefix="hullscan-bench-control-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)  # last out: after every process has stopped
        pg = stack.enter_context(postgres())
        url = pg.create_database("fleet")
        caps = {"max_scans_per_registry": str(args.per_registry)}
        if mode == "fleet":
            env = fleet_env(work, url, stack.enter_context(redis()), max_running_scans=str(args.global_cap), **caps)
        else:  # the API's own executor must take nothing: see the sentinel above
            env = fleet_env(work, url, None, max_running_scans="1", **caps)
        api, base = serve(work, env)
        processes: list[Process] = [api]
        if mode == "fleet":
            processes.append(Process("scheduler", ["scheduler", "--log-level", "warning"],
                                     role_env(env, work, "scheduler"),
                                     work / "scheduler.log").start())
        db = Database(url)
        client = api_client(base, connections=args.clients)
        stop = threading.Event()
        try:
            return measure(args, mode, work, env, db, client, processes, stop)
        finally:
            stop.set()
            for process in reversed(processes):
                process.stop()
            client.close()
            db.close()


def start_workers(args: argparse.Namespace, mode: str, work: Path, env: dict[str, str]) -> list[Process]:
    """Fleet: one Celery worker process per cluster, with a thread per slot of its registries. Store: --workers
    processes claiming from the store."""
    workers = []
    count = args.clusters if mode == "fleet" else args.workers
    for n in range(count):
        worker_args = ["--sim-worker", "--global-cap", str(args.global_cap), "--sleep", str(args.sleep),
                       "--seed", str(n), "--records", str(work / "records.txt")]
        if mode == "fleet":
            registries = len(range(n, args.registries, args.clusters))
            worker_args += ["--queue", f"c{n}", "--concurrency", str(registries * args.per_registry)]
        else:
            worker_args += ["--family", f"sim{n}"]
        workers.append(Process(f"worker{n}", worker_args, env, work / f"worker{n}.log",
                               command=(sys.executable, str(Path(__file__).resolve())), pipe=True).start())
    for process in workers:
        process.expect(b"ready")
    return workers


def counts(db: Database, exclude: int) -> Counter[str]:
    with db.session() as session:
        return Counter(dict(session.execute(select(Scan.state, func.count()).where(Scan.registry_id != exclude)
                                            .group_by(Scan.state)).all()))


def measure(args: argparse.Namespace, mode: str, work: Path, env: dict[str, str], db: Database, client: Any,
            processes: list[Process], stop: threading.Event) -> int:
    api = processes[0]
    images, sentinel_image = setup(client, db, args.jobs, args.registries, args.clusters)
    sentinel = threading.Thread()
    if mode == "store":
        sentinel_scan, sentinel_registry, holder = hold_sentinel(db, sentinel_image)
        sentinel = threading.Thread(target=keep_alive, args=(db, sentinel_scan, holder, stop), daemon=True)
        sentinel.start()
    else:
        with db.session() as session:
            sentinel_registry = session.get(Image, sentinel_image).registry_id  # type: ignore[union-attr]
    print(f"setup (not measured): {args.registries} registries in {args.clusters} clusters through the API, "
          f"{sum(map(len, images))} images written to the database"
          + ("; the sentinel scan held running" if mode == "store" else ""))
    if args.order == "interleaved":
        order = [ids[i] for i in range(max(map(len, images))) for ids in images if i < len(ids)]
    else:
        order = [image_id for ids in images for image_id in ids]
    db_peaks: Counter[int] = Counter()
    poller = threading.Thread(target=poll_running, args=(db, sentinel_registry, stop, db_peaks), daemon=True)
    with Sampler(processes):
        api.sample()
        api_idle = api.rss[-1]
        # 1. Every request through the API, no worker yet: the queue grows to --jobs (in a fleet the dispatchers
        # hand the first slots' worth to the broker at once).
        enqueue_s, post_latencies, statuses = enqueue_all(client, order, args.clients)
        time.sleep(1.0)
        api_queued = max(api.rss)
        at_rest = counts(db, sentinel_registry)
        queued = at_rest["queued"]
        print(f"1. enqueue: {len(order)} scan requests in {enqueue_s:.1f} s = {len(order) / enqueue_s:.0f}/s through "
              f"the API ({args.clients} clients, {args.order}; answers {dict(statuses)}); request latency p50 "
              f"{percentile(post_latencies, .5) * 1000:.0f} ms, p95 {percentile(post_latencies, .95) * 1000:.0f} ms; "
              f"{queued} jobs queued, {at_rest['running']} claimed"
              + (" and sent to the broker" if mode == "fleet" else ""))
        # 2. The workers start on the full queue.
        poller.start()
        workers = start_workers(args, mode, work, env)
        processes.extend(workers)
        since = now()  # dispatch latency counts from here: a worker's start-up is not the queue's delay
        started = time.perf_counter()
        while True:
            state = counts(db, sentinel_registry)
            if state["queued"] + state["running"] == 0:
                break
            if time.perf_counter() - started > args.timeout:
                print(f"TIMEOUT: {dict(state)}")
                break
            time.sleep(0.5)
        drained = time.perf_counter() - started
        api_peak = max(api.rss)
    stop.set()
    for process in workers:
        process.stop()
    if sentinel.is_alive():
        sentinel.join(timeout=30)
    poller.join(timeout=10)
    records = [(int(a), int(b), float(c), float(d)) for a, b, c, d in
               (line.split() for line in (work / "records.txt").read_text().splitlines())]
    with db.session() as session:
        rows = session.execute(select(Scan.registry_id, Scan.created_at, Scan.started_at, Scan.finished_at)
                               .where(Scan.registry_id != sentinel_registry, Scan.state == SUCCEEDED)).all()
    final = counts(db, sentinel_registry)
    latencies = dispatch_latencies([tuple(r) for r in rows], args.per_registry, since)  # type: ignore[misc]
    sweep = most_at_once(records)  # type: ignore[arg-type]
    sweep_max, db_max = max(sweep.values(), default=0), max(db_peaks.values(), default=0)
    cap_ok = sweep_max <= args.per_registry and db_max <= args.per_registry
    all_done = final[SUCCEEDED] == len(order) and len(records) == len(order)
    slots = args.registries * args.per_registry
    print(f"2. drain: {final[SUCCEEDED]} of {len(order)} succeeded ({dict(final)}), {len(records)} simulated scan "
          f"steps, in {drained:.1f} s from the workers being up: {len(records) / drained:.0f} jobs/s with "
          f"{len(workers)} worker processes, {slots} slots ({args.registries} x {args.per_registry}) and "
          f"{args.sleep:g} s mean steps (ceiling {slots / args.sleep:.0f}/s)")
    print(f"   dispatch latency (slot free -> claimed): p50 {percentile(latencies, .5) * 1000:.0f} ms, p95 "
          f"{percentile(latencies, .95) * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms over "
          f"{len(latencies)} jobs")
    print(f"   per-registry cap {args.per_registry}: most at once {sweep_max} (sleeps as the workers recorded "
          f"them), {db_max} (running rows polled) -> {'OK, never exceeded' if cap_ok else 'EXCEEDED'}")
    worker_peaks = [max(p.rss, default=0.0) for p in workers]
    print(f"3. memory (RSS): API {api_idle:.0f} MB idle, {api_queued:.0f} MB with {queued} queued, peak "
          f"{api_peak:.0f} MB while draining; simulated worker processes peak "
          f"{', '.join(f'{m:.0f}' for m in worker_peaks)} MB")
    scheduler = next((p for p in processes if p.name == "scheduler"), None)
    if scheduler is not None:
        print(f"   scheduler: peak {max(scheduler.rss, default=0.0):.0f} MB (it dispatches too)")
    else:
        print("   scheduler: no separate process in this mode (the schedules run inside the API process)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    result = {"simulation": BANNER, "args": {k: v for k, v in vars(args).items() if v is not None},
              "enqueue_seconds": enqueue_s, "enqueue_per_second": len(order) / enqueue_s,
              "request_p50_ms": percentile(post_latencies, .5) * 1000,
              "request_p95_ms": percentile(post_latencies, .95) * 1000, "statuses": dict(statuses),
              "queued": queued, "drain_seconds": drained, "jobs_per_second": len(records) / drained,
              "dispatch_p50_ms": percentile(latencies, .5) * 1000, "dispatch_p95_ms": percentile(latencies, .95) * 1000,
              "dispatch_max_ms": max(latencies, default=0) * 1000,
              "dispatch_mean_ms": statistics.fmean(latencies) * 1000 if latencies else None,
              "cap_most_at_once_sleeps": sweep_max, "cap_most_at_once_rows": db_max, "cap_ok": cap_ok,
              "final_states": dict(final), "api_rss_mb": {"idle": api_idle, "queued": api_queued, "peak": api_peak},
              "worker_rss_peak_mb": worker_peaks, "loadavg_end": os.getloadavg(), "mode": mode,
              "scheduler_rss_peak_mb": max(scheduler.rss, default=0.0) if scheduler is not None else None}
    out = ROOT / "benchmarks" / ".work"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"fleet-control-{mode}-{args.order}.json").write_text(json.dumps(result, indent=2))
    return 0 if cap_ok and all_done else 1

if __name__ == "__main__":
    sys.exit(main())
