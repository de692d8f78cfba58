"""The pull gate's cost: added latency per manifest request, and throughput and memory on a 1 GiB blob.

Set-up (not measured): Debian's docker-registry on loopback; `hullscan serve` on a fresh data directory (a
vulnerability database built from the real OSV records the tests keep); the registry connected and synchronised
through the REST API; one image (lodash 4.17.11: CVE-2019-10744, critical) pushed into three namespaces and scanned
once (the three tags share its digest, so one stored result answers for all):

  plain/app    blocking off                                   -> the gate streams the manifest through untouched
  allowed/app  blocking at HIGH, CVE-2019-10744 allowlisted   -> the gate fetches, decides "pullable", streams it
  blocked/app  blocking at HIGH                               -> the gate fetches, decides, answers 412

Then `hullscan gate --data-dir DIR --listen 127.0.0.1:PORT --registry NAME`, started exactly as the README says.

Measured in one run, interleaved request by request so a busy machine slows every column alike: manifest GET and
HEAD, by tag and by digest, directly to the registry and through the gate for each namespace (a keep-alive client
per target, p50/p95 over --requests requests each). Then a 1 GiB blob (random bytes, one streamed upload) read
--rounds times directly and through the gate, alternately: MiB/s, and the gate process's peak resident memory
(VmHWM) before and after, which shows the blob was streamed, not buffered. The client and both servers share the
machine's CPUs; the figures are for this machine only.

Usage: python benchmarks/bench_gate.py [--requests 300] [--rounds 3] [--blob-mib 1024] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # tests' helpers import it

from tests.service.images import lodash_image, push  # noqa: E402
from tests.service.live import GateProcess, ServeProcess  # noqa: E402
from tests.support.registry import RegistryServer, open_registry  # noqa: E402

from hullscan.vulndb.store import build_from_paths  # noqa: E402

ADMIN_PASSWORD = "correct horse battery staple"  # tests.service.conftest.ADMIN, which ServeProcess.client uses
OSV = ROOT / "tests" / "vulndb" / "data" / "osv"  # real OSV records (see tests/vulndb/data/PROVENANCE.md)
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
NAMESPACES = {"plain": None, "allowed": ["CVE-2019-10744"], "blocked": []}  # None: blocking off
MIB = 1 << 20


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def hullscan_program() -> list[str]:
    installed = Path(sys.executable).with_name("hullscan")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "hullscan.cli"]


def prepare(work: Path) -> tuple[RegistryServer, ServeProcess, dict[str, Any], str]:
    """Registry, service, the image in three namespaces, synchronised, scanned and with the namespaces' policies."""
    registry = open_registry(work / "registry")
    digest = ""
    for namespace in NAMESPACES:
        digest = push(registry, f"{namespace}/app", "1.0", lodash_image())
    data = work / "data"
    (data / "db").mkdir(parents=True)
    build_from_paths(data / "db" / "hullscan.db", [OSV])
    (work / "empty.toml").write_text("")
    env = {"HULLSCAN_ADMIN_PASSWORD": ADMIN_PASSWORD, "HULLSCAN_CONFIG": str(work / "empty.toml"),
           "HULLSCAN_CACHE_DIR": str(work / "cache")}
    service = ServeProcess(data, env).start()
    with service.client() as api:
        reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                                   "insecure": True}).raise_for_status().json()
        api.post(f"/api/v1/registries/{reg['id']}/sync").raise_for_status()
        while api.get(f"/api/v1/registries/{reg['id']}").json()["last_sync"]["state"] not in ("succeeded", "failed"):
            time.sleep(0.2)
        image = api.get("/api/v1/images", params={"registry": reg["id"], "repository": "plain/app"}).json()[0]
        scan = api.post("/api/v1/scans", json={"image_id": image["id"]}).raise_for_status().json()
        while scan["state"] not in ("succeeded", "failed", "stopped"):
            time.sleep(0.2)
            scan = api.get(f"/api/v1/scans/{scan['id']}").json()
        if scan["state"] != "succeeded":
            raise SystemExit(f"the set-up scan ended {scan['state']}: {scan.get('cause')}")
        for namespace, allow in NAMESPACES.items():
            policy = {"block": {"enabled": allow is not None, "severity": "HIGH"},
                      "allowlist": [{"id": i, "reason": "benchmark"} for i in allow or []]}
            api.put(f"/api/v1/registries/{reg['id']}/namespaces/{namespace}", json=policy).raise_for_status()
        for namespace in NAMESPACES:
            pullable = api.get(f"/api/v1/registries/{reg['id']}/pullable",
                               params={"repository": f"{namespace}/app", "reference": "1.0"}).json()["pullable"]
            if pullable != (namespace != "blocked"):
                raise SystemExit(f"set-up: {namespace}/app pullable={pullable}")
    return registry, service, reg, digest


def manifests(direct: str, gate: str, digest: str, requests: int) -> list[dict[str, Any]]:
    """p50/p95 per (method, reference) for the registry and the gate's three paths, interleaved."""
    targets = {"direct": (direct, "plain"), "gate, blocking off": (gate, "plain"),
               "gate, decided: allowed": (gate, "allowed"), "gate, decided: 412": (gate, "blocked")}
    clients = {name: httpx.Client(base_url=base, headers=ACCEPT, timeout=30) for name, (base, _) in targets.items()}
    expect = {"gate, decided: 412": 412}
    rows = []
    try:
        for method in ("GET", "HEAD"):
            for kind, ref in (("tag", "1.0"), ("digest", digest)):
                samples: dict[str, list[float]] = {name: [] for name in targets}
                for i in range(requests + 10):  # the first 10 warm the connections and are not counted
                    for name, (_, namespace) in targets.items():
                        t0 = time.perf_counter()
                        r = clients[name].request(method, f"/v2/{namespace}/app/manifests/{ref}")
                        took = (time.perf_counter() - t0) * 1000
                        if r.status_code != expect.get(name, 200):
                            raise SystemExit(f"{name} {method} {ref}: {r.status_code} {r.text[:200]}")
                        if i >= 10:
                            samples[name].append(took)
                base50 = statistics.median(samples["direct"])
                for name, values in samples.items():
                    p50, p95 = statistics.median(values), percentile(values, 0.95)
                    rows.append({"method": method, "by": kind, "target": name, "p50_ms": p50, "p95_ms": p95,
                                 "added_p50_ms": p50 - base50, "ratio_p50": p50 / base50, "n": len(values)})
    finally:
        for client in clients.values():
            client.close()
    return rows


def upload_blob(registry: RegistryServer, mib: int) -> str:
    """A blob of `mib` MiB random bytes in plain/big, uploaded in one streamed PUT; its digest."""
    chunk = os.urandom(MIB)
    h = hashlib.sha256()
    for _ in range(mib):
        h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    location = httpx.post(f"{registry.url}/v2/plain/big/blobs/uploads/").headers["location"]
    location += ("&" if "?" in location else "?") + f"digest={digest}"

    def body() -> Iterator[bytes]:
        for _ in range(mib):
            yield chunk

    httpx.put(location, content=body(), timeout=900, headers={"Content-Length": str(mib * MIB)}).raise_for_status()
    return digest


def read_blob(base: str, digest: str, size: int) -> float:
    """Seconds to read the whole blob (bytes counted, not hashed: hashing would be the bottleneck)."""
    received = 0
    t0 = time.perf_counter()
    with httpx.stream("GET", f"{base}/v2/plain/big/blobs/{digest}", timeout=900) as r:
        r.raise_for_status()
        for part in r.iter_raw(MIB):
            received += len(part)
    took = time.perf_counter() - t0
    if received != size:
        raise SystemExit(f"read {received} bytes of {size} from {base}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="manifest requests per method, reference and target")
    ap.add_argument("--rounds", type=int, default=3, help="reads of the blob per target")
    ap.add_argument("--blob-mib", type=int, default=1024)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hullscan-bench-gate-"))
    work.mkdir(parents=True, exist_ok=True)
    registry, service, reg, digest = prepare(work)
    gate = GateProcess(service.data_dir, reg["name"], program=hullscan_program())
    try:
        gate.start()
        print(f"gate: {' '.join(gate.command)}\nregistry: {registry.url} (docker-registry, filesystem storage)\n")
        rows = manifests(registry.url, gate.url, digest, args.requests)
        print(f"manifest requests, {args.requests} each, interleaved (ms; added and ratio against direct, p50)")
        print(f"{'method':<6} {'by':<7} {'target':<24} {'p50':>7} {'p95':>7} {'added':>7} {'ratio':>6}")
        for row in rows:
            print(f"{row['method']:<6} {row['by']:<7} {row['target']:<24} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} "
                  f"{row['added_p50_ms']:>+7.2f} {row['ratio_p50']:>5.2f}x")

        size = args.blob_mib * MIB
        blob = upload_blob(registry, args.blob_mib)
        rss_before = gate.peak_rss_kb()
        times: dict[str, list[float]] = {"direct": [], "gate": []}
        for _ in range(args.rounds):
            times["direct"].append(read_blob(registry.url, blob, size))
            times["gate"].append(read_blob(gate.url, blob, size))
        rss_after = gate.peak_rss_kb()
        rate = {k: size / MIB / statistics.median(v) for k, v in times.items()}
        print(f"\n{args.blob_mib} MiB blob, {args.rounds} reads each, alternating (median)")
        print(f"{'target':<8} {'MiB/s':>8} {'seconds':>8}")
        for name in times:
            print(f"{name:<8} {rate[name]:>8.0f} {statistics.median(times[name]):>8.2f}")
        print(f"gate / direct: {rate['gate'] / rate['direct']:.2f}x the throughput")
        print(f"gate peak RSS (VmHWM): {rss_before / 1024:.0f} MiB before the blob, {rss_after / 1024:.0f} MiB after "
              f"{args.rounds} x {args.blob_mib} MiB through it")
        result = {"gate_command": gate.command, "manifests": rows, "blob_mib": args.blob_mib,
                  "blob_seconds": times, "blob_mib_per_s": rate, "gate_peak_rss_kb_before": rss_before,
                  "gate_peak_rss_kb_after": rss_after}
        (ROOT / "benchmarks" / ".work").mkdir(parents=True, exist_ok=True)
        (ROOT / "benchmarks" / ".work" / "gate.json").write_text(json.dumps(result, indent=2))
        return 0
    finally:
        gate.stop()
        service.stop()
        registry.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
