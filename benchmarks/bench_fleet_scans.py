"""Scans per minute of a fleet on this machine: real small images, real parts, 1 and then 2 worker processes.

Each configuration starts from nothing: a new PostgreSQL database and Redis, the API (`hullscan serve`), one
scheduler (`hullscan scheduler`) and W worker processes (`hullscan worker --queue default --concurrency C`), each
a separate process with the fleet's settings in its environment (HULLSCAN_DATABASE_URL, HULLSCAN_BROKER_URL), as
deploy/ starts them. The registry is Debian's docker-registry (tests/support/registry.py) holding --images distinct
small images: the real Debian 12 package database and copyright files of `make demo` (demo/image) as two shared
base layers, and a layer of its own per image with real PyPI releases' metadata (the demo's old pins, matched
against the real OSV records in demo/osv). The registry is connected and synchronised through the API, then every
image is asked for (`POST /api/v1/scans`) at once, and the clock runs from the first request to the last outcome.
Every scan must succeed.

Reported per configuration: scans per minute, the median and 95th percentile of one scan's run (claimed to
finished), and the peak resident memory of each process. The base layers are analysed once per run and the
per-layer cache serves the rest, as in a fleet where images share their bases.

Needs `hullscan worker` and `hullscan scheduler` (issue 14; branch fleet-core).

Usage: python benchmarks/bench_fleet_scans.py [--images 60] [--workers 1,2] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fleet_harness import (
    ROOT,
    Process,
    Sampler,
    api_client,
    dir_size,
    fleet_available,
    fleet_env,
    percentile,
    postgres,
    redis,
    role_env,
    serve,
)
from sqlalchemy import func, select
from tests.support.registry import open_registry

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar
from hullscan.oci import media
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import FINISHED, SUCCEEDED, Scan
from hullscan.vulndb.store import build_from_paths

DEMO = ROOT / "demo" / "image"
SITE = "usr/local/lib/python3.11/site-packages"
# Releases with published advisories in demo/osv (the demo's own pins); each image takes a few of them.
PYPI = [("requests", "2.19.0"), ("urllib3", "1.24.1"), ("Django", "2.2"), ("PyYAML", "5.3"), ("Jinja2", "2.10")]


def base_layers() -> list[Layer]:
    base = DEMO / "1-base"
    copyrights = [(f"usr/share/doc/{p.name}/copyright", p.read_bytes()) for p in (base / "copyright").iterdir()]
    first = layer_tar([FileSpec("etc", type="d"), ("etc/os-release", (base / "os-release").read_bytes()),
                       ("etc/debian_version", "12.11\n"), ("var/lib/dpkg/status", (base / "status").read_bytes()),
                       *copyrights])
    second = layer_tar([("var/lib/dpkg/status", (DEMO / "2-runtime" / "status").read_bytes())])
    return [Layer(first, "ADD rootfs.tar.xz /"), Layer(second, "RUN apt-get install -y curl python3.11")]


def app_image(n: int, bases: list[Layer]) -> Image:
    files: list[FileSpec | tuple[str, bytes | str]] = [(f"srv/app/build-{n}.txt", f"build {n}\n")]
    for name, version in PYPI[n % len(PYPI):] + PYPI[:n % len(PYPI)][:2]:
        files.append((f"{SITE}/{name}-{version}.dist-info/METADATA",
                      f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"))
    return Image([*bases, Layer(layer_tar(files), f"COPY app /srv/app # build {n}")])


def push_images(registry: Any, count: int) -> None:
    bases = base_layers()
    for n in range(count):
        manifest, _, blobs = app_image(n, bases).blobs()
        registry.upload(f"team/app{n:03d}", "1.0", manifest, media.OCI_MANIFEST, blobs)


def run_once(args: argparse.Namespace, workers: int, registry_url: str, vulndb: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"hullscan-bench-scans-{workers}-"))
    with postgres() as pg, redis() as broker:
        url = pg.create_database("fleet")
        env = fleet_env(work, url, broker, db=str(vulndb), max_scans_per_registry=str(args.images),
                        max_running_scans=str(args.images))
        api, base = serve(work, env)
        processes = [api, Process("scheduler", ["scheduler", "--log-level", "warning"],
                                  role_env(env, work, "scheduler"), work / "scheduler.log")]
        for n in range(workers):
            processes.append(Process(f"worker{n}", ["worker", "--queue", "default", "--concurrency",
                                                    str(args.concurrency), "--log-level", "warning"],
                                     role_env(env, work, f"worker{n}"), work / f"worker{n}.log"))
        client = api_client(base)
        db = Database(url)
        try:
            for process in processes[1:]:
                process.start()
            registry = client.post("/api/v1/registries", json={"name": "bench", "type": "distribution",
                                                               "url": registry_url, "insecure": True}).json()
            client.post(f"/api/v1/registries/{registry['id']}/sync").raise_for_status()
            while (state := client.get(f"/api/v1/registries/{registry['id']}").json()["last_sync"])["state"] \
                    not in ("succeeded", "failed"):
                time.sleep(0.2)
            listed = client.get("/api/v1/images", params={"registry": registry["id"], "page_size": 500}).json()
            if state["state"] != "succeeded" or len(listed) != args.images:
                raise RuntimeError(f"sync: {state}, {len(listed)} images listed")
            time.sleep(3.0)  # the workers have connected to the broker
            with Sampler(processes):
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(lambda im: client.post("/api/v1/scans", json={"image_id": im["id"]}),
                                            listed))
                if any(a.status_code != 202 for a in answers):
                    raise RuntimeError(f"scan requests refused: {[a.text for a in answers if a.status_code != 202]}")
                while True:
                    with db.session() as session:
                        done = session.scalar(select(func.count()).select_from(Scan)
                                              .where(Scan.state.in_(FINISHED))) or 0
                    if done >= args.images:
                        break
                    if time.perf_counter() - started > args.timeout:
                        raise RuntimeError(f"only {done} of {args.images} scans finished in {args.timeout} s")
                    if not all(p.alive() for p in processes):
                        raise RuntimeError(f"a process died: {[p.name for p in processes if not p.alive()]}")
                    time.sleep(0.2)
                took = time.perf_counter() - started
            with db.session() as session:
                rows = session.execute(select(Scan.state, Scan.cause_code, Scan.started_at, Scan.finished_at,
                                              Scan.counts)).all()
            failed = [(s, c) for s, c, _, _, _ in rows if s != SUCCEEDED]
            durations = [(f - b).total_seconds() for _, _, b, f, _ in rows if b and f]
            findings = sum((counts or {}).get("total", 0) for *_, counts in rows)
            caches = [dir_size(work / f"worker{n}" / "cache") for n in range(workers)]
            return {"workers": workers, "concurrency": args.concurrency, "images": args.images, "seconds": took,
                    "scans_per_minute": args.images / took * 60, "failed": failed, "findings": findings,
                    "scan_p50_s": statistics.median(durations), "scan_p95_s": percentile(durations, .95),
                    "rss_peak_mb": {p.name: max(p.rss, default=0.0) for p in processes},
                    "layer_cache": [{"files": f, "bytes": b} for f, b in caches]}
        finally:
            for process in reversed(processes):
                process.stop()
            client.close()
            db.close()
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--workers", default="1,2", help="worker process counts to measure, comma-separated")
    ap.add_argument("--concurrency", type=int, default=2, help="scans at once per worker process")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    if not fleet_available():
        print("bench_fleet_scans: skipped: this checkout has no `hullscan worker` or `hullscan scheduler` (issue 14, "
              "branch fleet-core), so there is no fleet to measure")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still stops its servers
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    work = Path(tempfile.mkdtemp(prefix="hullscan-bench-scans-"))
    (work / "registry").mkdir()
    registry = open_registry(work / "registry")
    results = []
    try:
        push_images(registry, args.images)
        vulndb = work / "vuln.db"
        build_from_paths(vulndb, [ROOT / "demo" / "osv"])
        print(f"setup (not measured): {args.images} images pushed, a vulnerability database of demo/osv")
        for count in (int(w) for w in args.workers.split(",")):
            result = run_once(args, count, registry.url, vulndb)
            results.append(result)
            rss = ", ".join(f"{k} {v:.0f}" for k, v in result["rss_peak_mb"].items())
            print(f"{count} worker process(es) x {args.concurrency}: {args.images} scans in {result['seconds']:.1f} s "
                  f"= {result['scans_per_minute']:.0f} scans/min; one scan p50 {result['scan_p50_s']:.2f} s, p95 "
                  f"{result['scan_p95_s']:.2f} s; {result['findings']} findings in all; not succeeded: "
                  f"{result['failed'] or 'none'}; peak RSS MB: {rss}; layer caches: "
                  + ", ".join(f"{c['files']} files {c['bytes'] / 1024:.0f} KB" for c in result["layer_cache"]))
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        out = ROOT / "benchmarks" / ".work"
        out.mkdir(parents=True, exist_ok=True)
        (out / "fleet-scans.json").write_text(json.dumps(results, indent=2, default=str))
        return 0 if all(not r["failed"] for r in results) else 1
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
