"""Benchmark the vulnerability database: build time, size on disk, lookup time.

Builds the database from every record in ../shared/vulndata/osv (plus the KEV catalogue), then, with the
database open, looks up 1,000 and 10,000 (ecosystem, name) pairs drawn at random (with replacement) from the
packages the data names, so every lookup returns advisories. Each size is timed three ways:

* first pass: a freshly opened Store (its decoded-object caches empty, file pages in the OS cache);
* repeat pass: the same pairs again on the same Store (decoded advisories and entries cached);
* misses: the same number of names the data does not have (what most packages of a real image are).

Usage: python benchmarks/bench_vulndb.py [--data DIR] [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hullscan.vulndb.store import Store, build_from_paths, random_keys  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "vulndata"


def _time_lookups(store: Store, pairs: list[tuple[str, str]]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, pairs returned)."""
    started, cpu = time.perf_counter(), time.process_time()
    found = 0
    for ecosystem, name in pairs:
        found += len(store.lookup(ecosystem, name))
    return time.perf_counter() - started, time.process_time() - cpu, found


def run(data: Path, work: Path, runs: int = 3) -> dict[str, Any]:
    osv, kev = data / "osv", data / "kev" / "known_exploited_vulnerabilities.json"
    db = work / "bench.db"
    build_times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = build_from_paths(db, [osv], kev_path=kev if kev.is_file() else None)
        build_times.append(time.perf_counter() - started)
    assert result is not None
    out: dict[str, Any] = {
        "records": result.stats.records,
        "affected_entries": result.stats.affected,
        "build_seconds_median": round(statistics.median(build_times), 3),
        "build_seconds_all": [round(t, 3) for t in build_times],
        "db_bytes": db.stat().st_size,
        "input_bytes": sum(p.stat().st_size for p in osv.rglob("all.zip")),
        "lookups": {},
    }
    for count in (1_000, 10_000):
        with Store.open(db) as store:
            pairs = random_keys(store, count, seed=count)
            first, first_cpu, found = _time_lookups(store, pairs)
            repeat, repeat_cpu, _ = _time_lookups(store, pairs)
            misses = [(e, f"no-such-package-{i}") for i, (e, _) in enumerate(pairs)]
            miss, _, _ = _time_lookups(store, misses)
        out["lookups"][str(count)] = {"first_pass_s": round(first, 4), "first_pass_cpu_s": round(first_cpu, 4),
                                      "repeat_pass_s": round(repeat, 4), "repeat_pass_cpu_s": round(repeat_cpu, 4),
                                      "misses_s": round(miss, 4), "pairs_returned": found}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the vulndata folder (holds osv/, kev/)")
    parser.add_argument("--work", type=Path, default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--runs", type=int, default=3, help="builds to time (median reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not (args.data / "osv").is_dir():
        print(f"no OSV data at {args.data / 'osv'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hullscan-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = run(args.data, work, args.runs)
    print(f"records imported      {figures['records']:,} ({figures['affected_entries']:,} affected entries)")
    print(f"build time (median)   {figures['build_seconds_median']:.2f} s   runs: {figures['build_seconds_all']}")
    print(f"database size         {figures['db_bytes'] / 1e6:.2f} MB  "
          f"(input zips {figures['input_bytes'] / 1e6:.2f} MB)")
    for count, f in figures["lookups"].items():
        print(f"{int(count):>6,} lookups        first pass {f['first_pass_s'] * 1000:7.1f} ms "
              f"(cpu {f['first_pass_cpu_s'] * 1000:.0f})   repeat {f['repeat_pass_s'] * 1000:7.1f} ms "
              f"(cpu {f['repeat_pass_cpu_s'] * 1000:.0f})   misses {f['misses_s'] * 1000:6.1f} ms   "
              f"({f['pairs_returned']:,} (advisory, entry) pairs returned)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
