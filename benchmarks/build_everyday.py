"""Build the everyday benchmark image: Debian bookworm + python3 + a dozen wheels + an application (4 layers).

About the size of the images most teams ship (~70 MB compressed), built from the same pieces as build_image.py:

Layer 1: ``debootstrap --variant=minbase bookworm`` (the Debian base).
Layer 2: what installing python3 adds to it: the difference between ``debootstrap --variant=minbase
         --include=python3`` and layer 1 (new and changed files with their parent directories, whiteouts for
         what went), as ``RUN apt-get install python3`` would leave it.
Layer 3: the wheels of requirements-everyday.txt under /usr/local/lib/python3.11/site-packages (``pip --target``).
Layer 4: the application under /srv/app: a small Flask app and its configuration, with the credentials and
         decoys bench_secrets.py plants (so both scanners have secrets to find).

Each step is skipped when its output exists (benchmarks/.work/everyday-*); the first build needs root (debootstrap),
the Debian mirror apt uses here and PyPI. The OCI layout is benchmarks/.work/everyday-image, tag ``bench``;
`registry_image` pushes it to a docker-registry started on loopback (bench_everyday.py does).

Usage: python benchmarks/build_everyday.py [--work DIR] [--force]
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_secrets  # noqa: E402
import build_image  # noqa: E402
from build_image import LayerBlob, log  # noqa: E402

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-everyday.txt"
LAYOUT = "everyday-image"
REPOSITORY = "everyday"
APP_CREATED_BY = "COPY app/ /srv/app/ # the application and its configuration"
APP_FILES = {
    "srv/app/app.py": b'''import os

import yaml
from flask import Flask, jsonify

app = Flask(__name__)
with open(os.path.join(os.path.dirname(__file__), "config", "production.yaml")) as f:
    CONFIG = yaml.safe_load(f)


@app.get("/health")
def health():
    return jsonify(status="ok", database=CONFIG["database"]["host"])
''',
    "srv/app/gunicorn.conf.py": b'bind = "0.0.0.0:8000"\nworkers = 2\naccesslog = "-"\n',
}


def _same(a: Path, b: Path, sa: os.stat_result, sb: os.stat_result) -> bool:
    """Whether `b` in the upper tree is what `a` already was in the base (times aside)."""
    if (stat.S_IFMT(sa.st_mode), sa.st_mode, sa.st_uid, sa.st_gid) != (stat.S_IFMT(sb.st_mode), sb.st_mode,
                                                                       sb.st_uid, sb.st_gid):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISREG(sa.st_mode):
        return sa.st_size == sb.st_size and filecmp.cmp(a, b, shallow=False)
    return True


def tree_delta(base: Path, upper: Path) -> tuple[set[str], list[str]]:
    """What turned `base` into `upper`: the relative paths of `upper` that are new or differ, with their parent
    directories, and the paths of `base` that are gone (the topmost of each gone subtree)."""
    changed: set[str] = set()
    gone: list[str] = []

    def walk(rel: str) -> None:
        names = sorted(os.listdir(upper / rel if rel else upper))
        for name in names:
            sub = f"{rel}/{name}" if rel else name
            b, u = base / sub, upper / sub
            su = os.lstat(u)
            try:
                sb = os.lstat(b)
            except FileNotFoundError:
                sb = None
            if sb is None or not _same(b, u, sb, su):
                changed.add(sub)
            if stat.S_ISDIR(su.st_mode) and (sb is None or stat.S_ISDIR(sb.st_mode)):
                walk(sub)

    def removed(rel: str) -> None:
        for name in sorted(os.listdir(base / rel if rel else base)):
            sub = f"{rel}/{name}" if rel else name
            if not os.path.lexists(upper / sub):
                gone.append(sub)
            elif os.path.isdir(base / sub) and not os.path.islink(base / sub):
                removed(sub)

    walk("")
    removed("")
    for path in list(changed) + gone:
        parts = path.split("/")
        changed.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return changed, gone


def small_layer(layout: Path, files: dict[str, tuple[bytes, int]], created_by: str) -> LayerBlob:
    """A deterministic gzip layer of `files` (bench_secrets' writer), stored in the layout."""
    tar = bench_secrets._layer_tar(files)
    blob = gzip.compress(tar, compresslevel=6, mtime=0)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest.split(":")[1]).write_bytes(blob)
    return LayerBlob("app", "sha256:" + hashlib.sha256(tar).hexdigest(), digest, len(blob), len(tar), len(files),
                     created_by)


def build(work: Path = build_image.DEFAULT_WORK) -> Path:
    """Build whatever is missing; the OCI layout directory."""
    layout = work / LAYOUT
    if (layout / "index.json").is_file():
        log(f"everyday image: cached ({layout})")
        return layout
    debs = work / "debs"
    base = build_image.build_rootfs(work, "everyday-base", [], debs)
    with_python = build_image.build_rootfs(work, "everyday-python", ["python3"], debs)
    wheels = build_image.build_python(work, "everyday-wheels", REQUIREMENTS)
    changed, gone = tree_delta(base, with_python)
    log(f"python3 layer: {len(changed)} paths new or changed, {len(gone)} removed")
    planted, _ = bench_secrets.planted_files()
    app = {**{p: (data, 0o644) for p, data in APP_FILES.items()}, **planted}
    layers = [
        build_image.pack_layer(work, layout, "everyday-base", base,
                               f"debootstrap --variant=minbase {build_image.SUITE} / {build_image.debian_mirror()}"),
        build_image.pack_layer(work, layout, "everyday-python3", with_python,
                               "RUN apt-get install -y python3", include=changed, whiteouts=gone),
        build_image.pack_layer(work, layout, "everyday-wheels", wheels,
                               f"RUN pip install --no-deps --only-binary=:all: --target /{build_image.PY_SITE} "
                               f"-r {REQUIREMENTS.name}"),
        small_layer(layout, app, APP_CREATED_BY),
    ]
    config = {"config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 "PYTHONPATH=/" + build_image.PY_SITE],
                         "WorkingDir": "/srv/app", "User": "1000",
                         "Cmd": ["python3", "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"]}}
    build_image.write_layout(layout, layers, config)
    log(f"everyday image: {layout}, {len(layers)} layers, {sum(b.size for b in layers) / 1e6:.1f} MB compressed, "
        f"{sum(b.uncompressed_size for b in layers) / 1e6:.0f} MB uncompressed")
    return layout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--force", action="store_true", help="re-pack the layers and the layout (not the trees)")
    args = ap.parse_args()
    if args.force:
        shutil.rmtree(args.work / LAYOUT, ignore_errors=True)
        for name in ("everyday-base", "everyday-python3", "everyday-wheels"):
            (args.work / "layers" / f"{name}.json").unlink(missing_ok=True)
    print(build(args.work))


if __name__ == "__main__":
    main()
