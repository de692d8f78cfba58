"""Cold scan then warm re-scans of one image in a resident engine, as the service and the fleet workers run them.

One process, one ``hullscan.pipeline.Engine`` (``pool="always", resident=True``, as ``hullscan serve`` and
``hullscan worker`` create it), state and cache where the settings say (bench_everyday.py points the XDG directories
at an empty directory). Each scan is the one a user asks for (every scan item, ``--skip-db-update``) and its report
is rendered as JSON to a file, as the CLI does. The first scan is cold (empty cache); the next ``--warm`` are
re-scans of the same reference: the image's manifest and config are fetched again, every layer comes from the cache,
every detector runs again against the database. What the process paid once (imports, starting the workers) counts
only in the first scan.

Prints one JSON object: {"cold": {"seconds", "cpu", "gc"}, "warm": [{"seconds", "cpu", "gc"}, ...],
"same_report": bool}; "gc" is the seconds the scan spent in Python's cycle collector.

Usage: python benchmarks/engine_rescan.py REFERENCE --db FILE [--warm N] [--out DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # Live pool workers are not in RUSAGE_CHILDREN until they exit: the cold scan's analysis there is not counted.
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class GcClock:
    """Seconds spent in the cycle collector, from its start/stop callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()

    from hullscan.items.vuln import VulnOptions
    from hullscan.pipeline import Engine, ScanRequest
    from hullscan.report.formats import RenderOptions, render
    from hullscan.settings import Settings

    gc_clock = GcClock()
    timings: list[dict[str, float]] = []
    reports: list[dict[str, Any]] = []
    with Engine(Settings(db=args.db), pool="always", resident=True) as engine:
        for i in range(1 + args.warm):
            t0, c0, g0 = time.perf_counter(), _cpu(), gc_clock.total
            report = engine.scan(ScanRequest(args.reference, options={"vuln": VulnOptions(update=False)}))
            out = args.out / f"engine-{i}.json"
            with out.open("w", encoding="utf-8") as f:
                render(report, "json", f, RenderOptions(color=False))
            timings.append({"seconds": round(time.perf_counter() - t0, 4), "cpu": round(_cpu() - c0, 4),
                            "gc": round(gc_clock.total - g0, 4)})
            doc = json.loads(out.read_text())
            reports.append({k: doc.get(k) for k in ("packages", "vulnerabilities", "checks")})
    json.dump({"cold": timings[0], "warm": timings[1:], "same_report": all(r == reports[0] for r in reports)},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
