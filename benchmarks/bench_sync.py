"""Synchronising a big registry: 5,000 repositories x 2 tags on Debian's docker-registry, listed by the service.

The images are pushed cheaply through the registry API: one tiny image's blobs are uploaded once and mounted
into every other repository (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>`), then each tag's
manifest is PUT. Then `hullscan serve` (embedded: SQLite, in-process) is started on a fresh data directory, the
registry is connected through the REST API, and `POST /registries/{id}/sync` is timed until `last_sync` says
succeeded. Goal: under 60 s.

Then the pull decision (goal: under 5 ms). Every tag shares one manifest, which holds real vulnerable Python
packages; one tag is scanned through the API (against a database of the real OSV records the tests keep), so every
decision reads a stored result with findings. Measured, median and 95th percentile over 200 different repositories:
`policy.decide` alone, in this process, on the service's database (a session per call, as a request has); and
`GET /registries/{id}/pullable` through HTTP with an API token (Bearer: a hash look-up, not a password check).

Usage: python benchmarks/bench_sync.py [--repos 5000] [--tags 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.registry import open_registry  # noqa: E402

from hullscan.imagebuild import Image, Layer, layer_tar  # noqa: E402
from hullscan.oci import media  # noqa: E402
from hullscan.service.policy import decide  # noqa: E402
from hullscan.service.storage.db import Database  # noqa: E402
from hullscan.vulndb.store import build_from_paths  # noqa: E402

ADMIN = ("admin", "bench-password")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SITE = "usr/local/lib/python3.11/site-packages"
OSV = ROOT / "tests" / "vulndb" / "data" / "osv"  # real OSV records (see tests/vulndb/data/PROVENANCE.md)


def bench_image() -> Image:
    """Alpine's os-release and two Python packages with real advisories (PyYAML 5.3, requests 2.19.0)."""
    files: list[tuple[str, str]] = [("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n")]
    for name, version in (("PyYAML", "5.3"), ("requests", "2.19.0")):
        files.append((f"{SITE}/{name}-{version}.dist-info/METADATA",
                      f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"))
    return Image([Layer(layer_tar(files))])


def timed(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"median {statistics.median(samples):.2f} ms, p95 {samples[int(len(samples) * 0.95)]:.2f} ms "
            f"over {len(samples)} calls")


def populate(base: str, repos: int, tags: int) -> float:
    manifest, _config, blobs = bench_image().blobs()
    http = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=32))
    first = "bench/r00000"
    for digest, data in blobs.items():
        location = http.post(f"/v2/{first}/blobs/uploads/").headers["location"]
        location += ("&" if "?" in location else "?") + f"digest={digest}"  # after the registry's own _state
        http.put(location, content=data, headers={"Content-Type": "application/octet-stream"}).raise_for_status()

    def one(i: int) -> None:
        repo = f"bench/r{i:05d}"
        if repo != first:
            for digest in blobs:
                r = http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": first})
                if r.status_code != 201:
                    raise RuntimeError(f"mount into {repo} failed: {r.status_code}")
        for t in range(tags):
            http.put(f"/v2/{repo}/manifests/t{t}", content=manifest,
                     headers={"Content-Type": media.OCI_MANIFEST}).raise_for_status()

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(repos)))
    http.close()
    return time.monotonic() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=5000)
    ap.add_argument("--tags", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hullscan-bench-sync-"))
    (work / "registry").mkdir(parents=True, exist_ok=True)
    registry = open_registry(work / "registry")
    server: subprocess.Popen[bytes] | None = None
    try:
        pushed = populate(registry.url, args.repos, args.tags)
        print(f"pushed {args.repos} repositories x {args.tags} tags in {pushed:.1f} s (setup, not measured)")
        port = free_port()
        db_file = work / "vuln.db"
        build_from_paths(db_file, [OSV])
        env = {**os.environ, "HULLSCAN_ADMIN_PASSWORD": ADMIN[1], "HULLSCAN_SECRET_KEY": "bench",
               "HULLSCAN_DB": str(db_file), "HULLSCAN_CACHE_DIR": str(work / "cache")}
        server = subprocess.Popen([sys.executable, "-m", "hullscan.cli", "serve", "--data-dir", str(work / "data"),
                                   "--port", str(port), "--log-level", "warning"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "wb"))  # noqa: SIM115
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=ADMIN, timeout=60)
        for _ in range(300):
            try:
                if api.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        reg = api.post("/api/v1/registries", json={"name": "bench", "type": "distribution",
                                                   "url": registry.url}).json()
        started = time.monotonic()
        api.post(f"/api/v1/registries/{reg['id']}/sync").raise_for_status()
        while True:
            state = api.get(f"/api/v1/registries/{reg['id']}").json()["last_sync"]
            if state["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        print(f"sync: {state['state']} {state['counts']} in {took:.1f} s (goal < 60 s) -> "
              f"{'OK' if took < 60 and state['state'] == 'succeeded' else 'MISSED'}")

        # one scan: every tag has the same digest, so every decision finds this stored result
        token = api.post("/api/v1/tokens", json={"name": "bench"}).json()["token"]
        api.auth = None
        api.headers["Authorization"] = f"Bearer {token}"
        first = api.get("/api/v1/images", params={"repository": "bench/r00000", "tag": "t0"}).json()[0]
        scan = api.post("/api/v1/scans", json={"image_id": first["id"]}).json()
        while scan["state"] not in ("succeeded", "failed", "stopped"):
            time.sleep(0.2)
            scan = api.get(f"/api/v1/scans/{scan['id']}").json()
        counts = scan["counts"]["vulnerabilities"] if scan["counts"] else None
        print(f"scan of one tag: {scan['state']}, vulnerabilities {counts}")
        # The records kept carry no severity (UNKNOWN): block from UNKNOWN up, so every decision weighs findings.
        api.put(f"/api/v1/registries/{reg['id']}/namespaces/bench",
                json={"block": {"enabled": True, "severity": "UNKNOWN", "unscanned": True}}).raise_for_status()

        calls = [(f"bench/r{i * max(args.repos // 200, 1) % args.repos:05d}", f"t{i % args.tags}")
                 for i in range(200)]
        db = Database(f"sqlite:///{work / 'data' / 'service.db'}")
        inproc, blocked = [], 0
        for repo, tag in calls:
            t0 = time.perf_counter()
            with db.session() as session:
                decision = decide(session, reg["id"], repo, tag)
            inproc.append((time.perf_counter() - t0) * 1000)
            blocked += not decision.pullable
        db.close()
        print(f"pull decision in process (policy.decide, a session each): {timed(inproc)}; {blocked} blocked "
              f"(goal < 5 ms)")
        http = []
        for repo, tag in calls:
            t0 = time.perf_counter()
            api.get(f"/api/v1/registries/{reg['id']}/pullable",
                    params={"repository": repo, "reference": tag}).raise_for_status()
            http.append((time.perf_counter() - t0) * 1000)
        print(f"pull decision through the API (HTTP, Bearer token): {timed(http)}")
        result = {"repos": args.repos, "tags": args.tags, "sync_seconds": took, "sync": state,
                  "decision_inprocess_ms_median": statistics.median(inproc),
                  "decision_inprocess_ms_p95": sorted(inproc)[int(len(inproc) * .95)],
                  "decision_http_ms_median": statistics.median(http),
                  "decision_http_ms_p95": sorted(http)[int(len(http) * .95)], "blocked": blocked}
        (ROOT / "benchmarks" / ".work").mkdir(parents=True, exist_ok=True)
        (ROOT / "benchmarks" / ".work" / "sync.json").write_text(json.dumps(result, indent=2, default=str))
        return 0 if took < 60 and statistics.median(inproc) < 5 else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        registry.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
