"""Benchmark incremental `db update` against a full import, on the real OSV data of ../shared/vulndata.

A local HTTP server (tests/vulndb/osvserver.py: ETag, If-None-Match, 304) serves the data in the OSV bucket's
layout: `<Ecosystem>/all.zip`, one `<Ecosystem>/<ID>.json` per record and `<Ecosystem>/modified_id.csv` (newest
first). Then:

1. full import: `update_database` into an empty directory (every all.zip downloaded, the database built);
2. upstream changes N records per ecosystem (copies of real records with a later `modified`, for measurement only:
   the database then holds them as changed);
3. incremental update of the database from step 1 (change lists, then only the changed records);
4. full import of the changed data into another empty directory, the baseline the incremental update replaces.

Reported: wall time and bytes received for each step, and the change counts.

Usage: python benchmarks/bench_incremental.py [--data DIR] [--changes N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.vulndb.osvserver import OSVBucket  # noqa: E402

from hullscan.vulndb.update import Retry, update_database  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "vulndata"
STAMP = "2099-01-01T00:00:00Z"


def _publish(folder: Path, records: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamps = []
    for rid, data in records.items():
        (folder / f"{rid}.json").write_bytes(data)
        stamps.append((str(json.loads(data).get("modified", "")), rid))
    with zipfile.ZipFile(folder / "all.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for rid in sorted(records):
            z.writestr(zipfile.ZipInfo(f"{rid}.json", date_time=(2024, 1, 1, 0, 0, 0)), records[rid],
                       compress_type=zipfile.ZIP_DEFLATED)
    (folder / "modified_id.csv").write_text("".join(f"{m},{r}\n" for m, r in sorted(stamps, reverse=True)))


def _records(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as z:
        return {n.rsplit("/", 1)[-1][:-5]: z.read(n) for n in z.namelist() if n.endswith(".json")}


def _timed_update(target: Path, url: str, ecosystems: list[str]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = update_database(target, base_url=url, ecosystems=ecosystems, retry=Retry(attempts=2))
    return time.perf_counter() - started, result


def run(data: Path, work: Path, changes: int) -> dict[str, Any]:
    bucket = work / "bucket"
    ecosystems = sorted(p.parent.name for p in (data / "osv").glob("*/all.zip"))
    originals = {eco: _records(data / "osv" / eco / "all.zip") for eco in ecosystems}
    for eco, recs in originals.items():
        _publish(bucket / eco, recs)
    server = OSVBucket(bucket).start()
    try:
        full_s, full = _timed_update(work / "a" / "hullscan.db", server.url, ecosystems)
        changed = 0
        for eco, recs in originals.items():
            bumped = dict(recs)
            for rid in sorted(recs)[:changes]:
                doc = json.loads(recs[rid])
                doc["modified"] = STAMP
                bumped[rid] = json.dumps(doc, indent=2).encode()
                changed += 1
            _publish(bucket / eco, bumped)
        inc_s, inc = _timed_update(work / "a" / "hullscan.db", server.url, ecosystems)
        base_s, base = _timed_update(work / "b" / "hullscan.db", server.url, ecosystems)
    finally:
        server.stop()
    return {
        "ecosystems": ecosystems,
        "records": sum(len(r) for r in originals.values()),
        "changed_upstream": changed,
        "full_import": {"seconds": round(full_s, 3), "bytes": full.bytes_downloaded},
        "incremental": {"seconds": round(inc_s, 3), "bytes": inc.bytes_downloaded, "mode": inc.mode,
                        "changes": inc.changes.to_dict()},
        "full_import_of_changed_data": {"seconds": round(base_s, 3), "bytes": base.bytes_downloaded},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--changes", type=int, default=25, help="records changed per ecosystem")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "osv").is_dir():
        print(f"no OSV data at {args.data / 'osv'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hullscan-bench-inc-") as tmp:
        f = run(args.data, Path(tmp), args.changes)
    base, inc = f["full_import_of_changed_data"], f["incremental"]
    print(f"data: {f['records']:,} OSV records in {len(f['ecosystems'])} ecosystems; "
          f"{f['changed_upstream']} changed upstream ({args.changes} per ecosystem)")
    print(f"full import             {f['full_import']['seconds']:7.2f} s  {f['full_import']['bytes'] / 1e6:8.2f} MB")
    print(f"incremental update      {inc['seconds']:7.2f} s  {inc['bytes'] / 1e6:8.2f} MB   ({inc['mode']}: "
          f"{inc['changes']})")
    print(f"full import, same data  {base['seconds']:7.2f} s  {base['bytes'] / 1e6:8.2f} MB")
    print(f"incremental / full      {inc['seconds'] / base['seconds']:7.1%} of the time, "
          f"{inc['bytes'] / base['bytes']:.1%} of the bytes")
    if args.json:
        args.json.write_text(json.dumps(f, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
