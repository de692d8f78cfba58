"""hullscan on a synthetic 5 GB image: peak memory and time against the floor of inflating and listing its layers.

The image (issue 8, item 10) is built here, by code, into benchmarks/.work/big-image (an OCI layout, tag ``bench``):

* the two Debian layers of the everyday image (build_everyday.py: bookworm minbase and python3), so the
  package analyzers and the vulnerability matcher have real work;
* ``--mid-layers`` layers of medium files (1 to 24 MB each: logs, JSON, archives-like text);
* one layer of a few large files (a database preallocation, a model blob, a tarball: incompressible blocks);
* one layer of about 1 GB of small files (200,000 files of 5 KB on average in 2,000 directories, as node_modules or
  a site-packages tree).

About 5 GB uncompressed in all (gzip level 1, to keep building fast). Each layer is built once and kept.

Measured in one run: the floor, ``gzip -dc <blob> | tar -t > /dev/null`` for each layer in turn (the sum: what
just inflating and reading every layer costs), then a cold ``hullscan scan oci:<layout>:bench`` with every scan
item (the default) and empty state directories. Peak RSS is sampled every 50 ms over hullscan's whole process tree
(worker processes included; the sum of their RSS) and also read from ``wait4`` (the largest single process).

Targets: peak RSS < 500 MB; hullscan's wall time <= 1.5 x the floor. With ``--rounds N`` the floor and the scan
are each measured N times in alternating order (floor, scan, scan, floor, ...), so load from other work on a shared
machine falls on both alike; the medians are compared (the CPU-time ratio is printed next to the wall-time one).

Usage: python benchmarks/bench_big.py [--work DIR] [--size-gb N] [--rounds N] [--strict]
Writes benchmarks/.work/big.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_secrets  # noqa: E402
import build_everyday  # noqa: E402
import build_image  # noqa: E402
import run as syft_bench  # noqa: E402
from bench_secrets import STATE_VARS  # noqa: E402
from build_image import LayerBlob, log  # noqa: E402

LAYOUT = "big-image"
RSS_TARGET_MB = 500
TIME_TARGET = 1.5  # x the floor
MB = 1_000_000
BLOCK = 64 * 1024  # incompressible blocks for large files: larger than gzip's 32 KB window


def _text_pool(seed: int) -> bytes:
    """Text-like bytes (words, numbers, punctuation) that compress as source code and logs do."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12)))
             for _ in range(4000)]
    out = io.StringIO()
    while out.tell() < 8 * MB:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))
        out.write(f"{line} = {rng.randint(0, 10**6)};\n")
    return out.getvalue().encode()


def _noise_blocks(seed: int, count: int = 256) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(BLOCK) for _ in range(count)]


def _file(tf: tarfile.TarFile, path: str, size: int, chunks: Iterator[bytes]) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = size, 0o644, 1717200000

    class _Reader(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size
            self.pending = b""

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            while len(self.pending) < len(b) and self.left > len(self.pending):
                self.pending += next(chunks)
            n = min(len(b), self.left, len(self.pending))
            b[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            self.left -= n
            return n

    tf.addfile(info, io.BufferedReader(_Reader(), 1 << 20))


def _dirs(tf: tarfile.TarFile, path: str) -> None:
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        info = tarfile.TarInfo("/".join(parts[:i]))
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1717200000
        tf.addfile(info)


def _text_chunks(pool: bytes, rng: random.Random) -> Iterator[bytes]:
    while True:
        start = rng.randrange(0, len(pool) - MB)
        yield pool[start:start + rng.randint(MB // 4, MB)]


def _noise_chunks(blocks: list[bytes], rng: random.Random) -> Iterator[bytes]:
    while True:
        yield rng.choice(blocks)


def _fill(kind: str, index: int, tf: tarfile.TarFile, target: int) -> None:
    rng = random.Random(f"{kind}-{index}")
    if kind == "mid":
        pool = _text_pool(index)
        _dirs(tf, f"var/lib/app{index}/data")
        written, n = 0, 0
        while written < target:
            size = min(rng.randint(MB, 24 * MB), target - written)
            _file(tf, f"var/lib/app{index}/data/part-{n:04d}.log", size, _text_chunks(pool, rng))
            written, n = written + size, n + 1
    elif kind == "large":
        blocks = _noise_blocks(index)
        _dirs(tf, "var/lib/postgresql/data")
        _dirs(tf, "opt/models")
        sizes = [target * 2 // 5, target * 2 // 5, target - 2 * (target * 2 // 5)]
        for path, size in zip(("var/lib/postgresql/data/base.dat", "opt/models/weights.bin",
                               "opt/models/bundle.tar"), sizes, strict=True):
            _file(tf, path, size, _noise_chunks(blocks, rng))
    else:  # small files
        pool = _text_pool(1000 + index)
        written, n = 0, 0
        while written < target:
            d = f"srv/app/node_modules/pkg{n // 100:04d}/lib"
            if n % 100 == 0:
                _dirs(tf, d)
            size = min(int(rng.expovariate(1 / 5000)) + 64, 200_000, target - written)
            start = rng.randrange(0, len(pool) - size)
            data = pool[start:start + size]
            info = tarfile.TarInfo(f"{d}/mod{n % 100:03d}.js")
            info.size, info.mode, info.mtime = size, 0o644, 1717200000
            tf.addfile(info, io.BytesIO(data))
            written, n = written + size, n + 1


def build_layer(work: Path, layout: Path, kind: str, index: int, target: int) -> LayerBlob:
    def fill(tf: tarfile.TarFile) -> int:
        _fill(kind, index, tf, target)
        entries = len(tf.members)
        tf.members.clear()
        return entries

    return build_image.write_layer(work, layout, f"big-{kind}-{index}", f"COPY {kind}-{index} / # synthetic", fill,
                                   compresslevel=1)


def build(work: Path, size_gb: float) -> Path:
    layout = work / LAYOUT
    if (layout / "index.json").is_file():
        log(f"big image: cached ({layout})")
        return layout
    everyday = build_everyday.build(work)
    index = json.loads((everyday / "index.json").read_text())
    manifest = json.loads((everyday / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    config = json.loads((everyday / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    base: list[LayerBlob] = []
    for i, desc in enumerate(manifest["layers"][:2]):  # the Debian base and python3
        src = everyday / "blobs" / "sha256" / desc["digest"].split(":")[1]
        dst = layout / "blobs" / "sha256" / src.name
        if not dst.exists():
            shutil.copyfile(src, dst)
        base.append(LayerBlob(f"everyday-{i}", config["rootfs"]["diff_ids"][i], desc["digest"], desc["size"], 0, 0,
                              config["history"][i]["created_by"]))
    total = int(size_gb * 1000 * MB)
    small, large = 1000 * MB, 2000 * MB
    mid_total = max(total - small - large - 150 * MB, 0)
    mids = 16
    plan = [("mid", i, mid_total // mids) for i in range(mids)] + [("large", 0, large), ("small", 0, small)]
    with ProcessPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        layers = list(pool.map(build_layer, [work] * len(plan), [layout] * len(plan), *zip(*plan, strict=True)))
    build_image.write_layout(layout, base + layers)
    log(f"big image: {layout}, {len(base) + len(layers)} layers, "
        f"{sum(b.size for b in base + layers) / MB:.0f} MB compressed")
    return layout


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    return [layout / "blobs" / "sha256" / d["digest"].split(":")[1] for d in manifest["layers"]]


def floor(blobs: list[Path]) -> dict[str, float]:
    """`gzip -dc | tar -t` of each layer in turn: wall and CPU seconds summed over the layers."""
    wall = cpu = 0.0
    before = os.times()
    for blob in blobs:
        t0 = time.perf_counter()
        subprocess.run(f"gzip -dc '{blob}' | tar -t > /dev/null", shell=True, check=True)
        wall += time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall": round(wall, 2), "cpu": round(cpu, 2)}


def _tree_rss_kb(root: int) -> int:
    """The summed VmRSS of `root` and its descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


def cold_scan(cmd: list[str], out: Path) -> dict[str, Any]:
    """`cmd` with empty state directories (no layer cache, no scan store) and no HULLSCAN_* settings."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-big-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HULLSCAN_") and k not in STATE_VARS}
        env.update({var: str(scratch / var.lower()) for var in STATE_VARS})
        return run_hullscan(cmd, env, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_hullscan(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    peak = [0]
    with open(out, "wb") as fo, open(out.with_suffix(".stderr"), "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    return {"wall": round(wall, 2), "cpu": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_tree_rss_mb": round(peak[0] / 1024, 1), "peak_process_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "returncode": os.waitstatus_to_exitcode(status)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--size-gb", type=float, default=5.0, help="uncompressed size of the image [5]")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure the floor and the scan this many times each, in alternating order [1]")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    work: Path = args.work
    layout = build(work, args.size_gb)
    hull = syft_bench.find_hullscan()
    db = bench_secrets.ensure_db(work, hull, False)
    blobs = layer_blobs(layout)
    compressed = sum(b.stat().st_size for b in blobs)
    log(f"floor: gzip -dc | tar -t over {len(blobs)} layers ({compressed / MB:.0f} MB compressed)")
    load_before = os.getloadavg()
    cmd = [*hull, "scan", f"oci:{layout}:{build_image.TAG}", "--db", str(db), "--skip-db-update", "-f", "json",
           "--quiet"]
    out = work / "big-scan.json"
    floors: list[dict[str, float]] = []
    scans: list[dict[str, Any]] = []
    for n in range(max(1, args.rounds)):
        # ABBA order: a load that rises or falls through the run weighs on both measurements alike.
        for step in (("floor", "scan") if n % 2 == 0 else ("scan", "floor")):
            if step == "floor":
                floors.append(floor(blobs))
                log(f"floor: {floors[-1]['wall']:.1f}s wall, {floors[-1]['cpu']:.1f}s CPU")
            else:
                log("hullscan scan (every item, cold)")
                scans.append(cold_scan(cmd, out))
                log(f"scan: {scans[-1]['wall']:.1f}s wall, {scans[-1]['cpu']:.1f}s CPU, "
                    f"{scans[-1]['peak_tree_rss_mb']:.0f} MB, exit {scans[-1]['returncode']}")
    load_after = os.getloadavg()
    base = {key: statistics.median(f[key] for f in floors) for key in ("wall", "cpu")}
    scan = {"wall": statistics.median(s["wall"] for s in scans), "cpu": statistics.median(s["cpu"] for s in scans),
            "peak_tree_rss_mb": max(s["peak_tree_rss_mb"] for s in scans),
            "peak_process_rss_mb": max(s["peak_process_rss_mb"] for s in scans),
            "returncode": next((s["returncode"] for s in scans if s["returncode"] != 0), 0)}
    ratio = round(scan["wall"] / base["wall"], 3) if base["wall"] else None
    cpu_ratio = round(scan["cpu"] / base["cpu"], 3) if base["cpu"] else None
    targets = {"peak_rss": "PASS" if scan["peak_tree_rss_mb"] < RSS_TARGET_MB else "FAIL",
               "time_vs_floor": "PASS" if ratio is not None and ratio <= TIME_TARGET else "FAIL"}
    sizes = {"layers": len(blobs), "compressed_mb": round(compressed / MB),
             "uncompressed_mb": round(sum(json.loads(p.read_text())["uncompressed_size"]
                                          for p in (work / "layers").glob("big-*.json")) / MB)}
    print()
    print(f"image: {sizes['layers']} layers, {sizes['compressed_mb']} MB compressed, "
          f"{sizes['uncompressed_mb']} MB uncompressed in the synthetic layers (plus the two Debian layers)")
    what = f"median of {len(scans)}, " if len(scans) > 1 else ""
    print(f"floor (gzip -dc | tar -t, layer by layer): {base['wall']:.1f} s wall, {base['cpu']:.1f} s CPU ({what}"
          f"each: {', '.join(str(f['wall']) for f in floors)})")
    print(f"hullscan scan, every item, cold:            {scan['wall']:.1f} s wall, {scan['cpu']:.1f} s CPU, "
          f"exit {scan['returncode']} ({what}each: {', '.join(str(s['wall']) for s in scans)})")
    print(f"time / floor = {ratio} (CPU {cpu_ratio}; target <= {TIME_TARGET}) {targets['time_vs_floor']}")
    print(f"peak RSS: {scan['peak_tree_rss_mb']:.0f} MB over the process tree, {scan['peak_process_rss_mb']:.0f} MB "
          f"largest process, highest of the runs (target < {RSS_TARGET_MB} MB) {targets['peak_rss']}")
    print(f"({os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after)")
    if scan["returncode"] != 0:
        print((out.with_suffix(".stderr")).read_text()[-3000:])
    results = {"image": {"layout": str(layout), **sizes}, "floor": base, "scan": scan, "command": cmd,
               "ratio": ratio, "cpu_ratio": cpu_ratio, "targets": targets, "runs": {"floor": floors, "scan": scans},
               "load_average": {"before": load_before, "after": load_after}}
    (work / "big.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {work / 'big.json'}")
    if scan["returncode"] != 0:
        return 1
    return 1 if args.strict and "FAIL" in targets.values() else 0


if __name__ == "__main__":
    sys.exit(main())
