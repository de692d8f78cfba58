"""The fleet's shared layer cache: a warm scan from PostgreSQL against the same warm scan from the filesystem cache.

A fleet keeps per-layer facts in PostgreSQL (`hullscan.layers.pgcache`) so a layer analysed by one worker is never
analysed by another; this measures what that costs a warm scan, where the layer facts come from the cache and
no layer is read.

**Image**: the one ``bench_passwords.py`` builds from this machine's files (a Debian base with dpkg status and
60 MB of /usr/bin, the Python runtime, an application layer; ``<work>/passwords-image``).

**Store**: a PostgreSQL server started here from Debian's binaries (as the tests do, ``tests/support/postgres.py``:
``initdb`` in a temporary directory, a loopback port, fsync off), so the figure is the cost of the database
round-trips and decoding, not of a network.

**Runs**: per backend, one cold scan (fills the cache; its time is reported too), then ``--runs`` warm scans,
alternating between the backends; medians. Every scan is in this process through ``Engine.scan`` with the
inventory alone (``items=()``: no vulnerability database needed), one engine per scan, ``pool_workers=0``, so the
difference is the cache. Also reported: the bytes each backend keeps. Results go to ``<work>/layercache.json``.

Usage: python benchmarks/bench_layercache.py [--runs N] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_passwords  # noqa: E402
import build_image  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402


def scan_once(target: str, settings: Any) -> float:
    from hullscan.pipeline import Engine, ScanRequest

    start = time.perf_counter()
    with Engine(settings) as engine:
        engine.scan(ScanRequest(target, items=(), remember=False))
    return time.perf_counter() - start


def pg_bytes(url: str) -> int:
    import sqlalchemy as sa

    from hullscan.layers.pgcache import TABLE
    from hullscan.sharedstore import engine_for

    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT coalesce(sum(length(facts)), 0) FROM {TABLE}")).scalar() or 0)
    finally:
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description="warm scan: PostgreSQL layer cache vs filesystem layer cache")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    from hullscan.settings import Settings

    layout = bench_passwords.build(args.work, force=False)
    target = f"oci:{layout}:{bench_passwords.TAG}"
    scratch = Path(tempfile.mkdtemp(prefix="bench-layercache-", dir=args.work))
    pg_root = Path(tempfile.mkdtemp(prefix="hullscan-pg-"))
    server = PostgresServer(pg_root).start()
    try:
        url = server.create_database("bench")
        common: dict[str, Any] = {"data_dir": scratch / "data", "work_dir": scratch / "work", "pool_workers": 0}
        backends = {"fs": Settings(cache="fs", cache_dir=scratch / "cache", **common),
                    "postgres": Settings(cache="postgres", store_url=url, cache_dir=scratch / "unused", **common)}
        cold = {name: scan_once(target, s) for name, s in backends.items()}
        warm: dict[str, list[float]] = {name: [] for name in backends}
        for _ in range(args.runs):
            for name, s in backends.items():
                warm[name].append(scan_once(target, s))
        kept = {"fs": sum(p.stat().st_size for p in (scratch / "cache").rglob("*") if p.is_file()),
                "postgres": pg_bytes(url)}
    finally:
        server.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)

    result = {name: {"cold_seconds": round(cold[name], 3), "warm_median_seconds": round(statistics.median(w), 3),
                     "warm_runs": [round(x, 3) for x in w], "bytes_kept": kept[name]} for name, w in warm.items()}
    ratio = result["postgres"]["warm_median_seconds"] / max(result["fs"]["warm_median_seconds"], 1e-9)
    (args.work / "layercache.json").write_text(json.dumps({"image": target, "runs": args.runs, "backends": result,
                                                           "warm_postgres_over_fs": round(ratio, 2)}, indent=2))
    print(f"{'backend':10} {'cold s':>8} {'warm s (median)':>16} {'kept bytes':>12}")
    for name, r in result.items():
        print(f"{name:10} {r['cold_seconds']:8.3f} {r['warm_median_seconds']:16.3f} {r['bytes_kept']:12d}")
    print(f"warm scan from PostgreSQL / from the filesystem: {ratio:.2f}x  ({args.work / 'layercache.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
