"""Build the benchmark image: a realistic three-layer OCI layout, cached under benchmarks/.work/.

Layer 1: a Debian bookworm root filesystem made by ``debootstrap --variant=minbase``.
Layer 2: a few hundred PyPI wheels put into /usr/local/lib/python3.11/site-packages by ``pip --target``.
Layer 3: an ``npm install`` of popular packages (old and new) under /srv/app.

Each step is skipped when its output exists, so a second run only rebuilds what was deleted.
Layers are streamed: the tar is written straight through a hashing gzip writer to disk, so the
diff_id and the blob digest come out of one pass and nothing large is held in memory.

Usage: python benchmarks/build_image.py [--work DIR] [--only rootfs|python|npm|layout] [--force]
Needs root (debootstrap), network access to PyPI, the npm registry and a Debian mirror.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hullscan.oci import media

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / ".work"
TAG = "bench"
SUITE = "bookworm"
DEB_INCLUDE = ["python3", "python3-pip", "ca-certificates", "curl", "openssl", "procps", "less"]
PY_SITE = "usr/local/lib/python3.11/site-packages"
NPM_PREFIX = "srv/app"
PY_REQUIREMENTS = HERE / "requirements-python.txt"
NPM_PACKAGES = HERE / "packages-npm.txt"
CREATED = "2024-06-01T00:00:00Z"


def log(msg: str) -> None:
    print(f"[build {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    log("$ " + " ".join(cmd[:12]) + (" ..." if len(cmd) > 12 else ""))
    return subprocess.run(cmd, check=False, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (deb822 or one-line sources), else deb.debian.org."""
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        candidates += sorted(p for p in d.iterdir() if p.suffix in (".sources", ".list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            m = re.match(r"URIs:\s*(\S+)", line) or re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and not m.group(1).rstrip("/").endswith("-security") and "debian" in m.group(1):
                return m.group(1).rstrip("/")
    return "http://deb.debian.org/debian"


def read_list(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


# ---------------------------------------------------------------- layer 1: Debian root filesystem

def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt = line.split()[1].replace("\\040", " ")
            if mnt.startswith(prefix) or mnt == prefix.rstrip("/"):
                found.append(mnt)
    return found


def build_rootfs(work: Path, name: str = "rootfs", include: list[str] | None = None,
                 cache_dir: Path | None = None) -> Path:
    """`debootstrap --variant=minbase [--include=...] bookworm` into work/<name> (skipped when already built).
    `cache_dir` keeps the downloaded .debs for another debootstrap of the same suite."""
    include = DEB_INCLUDE if include is None else include
    rootfs = work / name
    done = work / f"{name}.done"
    if done.exists():
        log(f"{name}: cached ({rootfs})")
        return rootfs
    if os.geteuid() != 0:
        sys.exit("debootstrap needs root")
    if shutil.which("debootstrap") is None:
        sys.exit("debootstrap is not installed (make system installs it)")
    if rootfs.exists():
        for mnt in reversed(_mounts_under(rootfs)):
            run(["umount", "-l", mnt])
        shutil.rmtree(rootfs)
    mirror = debian_mirror()
    cmd = ["debootstrap", "--variant=minbase", *([f"--include={','.join(include)}"] if include else []),
           *([f"--cache-dir={cache_dir}"] if cache_dir is not None else []), SUITE, str(rootfs), mirror]
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    res = run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        (work / f"debootstrap-{name}.log").write_text(res.stdout)
        tail = "\n".join(res.stdout.splitlines()[-30:])
        sys.exit(f"debootstrap failed ({res.returncode}); see {work / f'debootstrap-{name}.log'}\n{tail}")
    for mnt in reversed(_mounts_under(rootfs)):  # debootstrap unmounts; make sure before we tar it
        run(["umount", "-l", mnt])
    # What `docker build` images usually drop: apt lists and downloaded .debs.
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (rootfs / sub).glob("*"):
            if p.is_file() and p.name not in ("lock",):
                p.unlink()
    done.write_text(json.dumps({"cmd": cmd, "seconds": round(time.monotonic() - t0, 1)}))
    log(f"{name}: built in {time.monotonic() - t0:.0f}s")
    return rootfs


# ---------------------------------------------------------------- layer 2: PyPI wheels

def _pip(target: Path, reqs: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-warn-script-location",
           "--no-warn-conflicts", "--no-deps", "--only-binary=:all:", "--upgrade", "--target", str(target), *reqs]
    return run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def build_python(work: Path, name: str = "layer-python", requirements: Path = PY_REQUIREMENTS) -> Path:
    layer = work / name
    done = work / f"{name}.done"
    if done.exists():
        log(f"python layer: cached ({layer})")
        return layer
    if layer.exists():
        shutil.rmtree(layer)
    site = layer / PY_SITE
    site.mkdir(parents=True)
    reqs = read_list(requirements)
    t0 = time.monotonic()
    res = _pip(site, reqs)
    skipped: list[str] = []
    if res.returncode != 0:
        # Trim what cannot be installed here (no wheel for cp311/x86_64, yanked, ...) one by one.
        log("python layer: bulk install failed, installing one by one to find what to skip")
        (work / f"pip-bulk-{name}.log").write_text(res.stdout)
        shutil.rmtree(site)
        site.mkdir(parents=True)
        for req in reqs:
            r = _pip(site, [req])
            if r.returncode != 0:
                skipped.append(req)
                log(f"python layer: skipped {req}: {r.stdout.strip().splitlines()[-1:]}")
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    done.write_text(json.dumps({"requested": len(reqs), "skipped": skipped, "dist_info": len(installed),
                                "seconds": round(time.monotonic() - t0, 1)}, indent=1))
    log(f"python layer: {len(installed)} distributions, {len(skipped)} skipped, {time.monotonic() - t0:.0f}s")
    return layer


# ---------------------------------------------------------------- layer 3: npm packages

def build_npm(work: Path) -> Path:
    layer = work / "layer-npm"
    done = work / "layer-npm.done"
    if done.exists():
        log(f"npm layer: cached ({layer})")
        return layer
    if shutil.which("npm") is None:
        sys.exit("npm is not installed")
    if layer.exists():
        shutil.rmtree(layer)
    prefix = layer / NPM_PREFIX
    prefix.mkdir(parents=True)
    (prefix / "package.json").write_text(json.dumps({"name": "bench-app", "version": "1.0.0", "private": True},
                                                    indent=2) + "\n")
    pkgs = read_list(NPM_PACKAGES)
    t0 = time.monotonic()
    base = ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--ignore-scripts",
            "--loglevel=error", "--legacy-peer-deps", "--registry=https://registry.npmjs.org/"]
    res = run([*base, *pkgs], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    skipped: list[str] = []
    if res.returncode != 0:
        log("npm layer: bulk install failed, installing one by one to find what to skip")
        (work / "npm-bulk.log").write_text(res.stdout)
        for pkg in pkgs:
            if run([*base, pkg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).returncode != 0:
                skipped.append(pkg)
                log(f"npm layer: skipped {pkg}")
    count = sum(1 for _ in (prefix / "node_modules").rglob("package.json"))
    done.write_text(json.dumps({"requested": len(pkgs), "skipped": skipped, "package_json_files": count,
                                "seconds": round(time.monotonic() - t0, 1)}, indent=1))
    log(f"npm layer: {count} package.json files under node_modules, {time.monotonic() - t0:.0f}s")
    return layer


# ---------------------------------------------------------------- packing

class HashingWriter:
    """A write-only file object that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()


def _tar_tree(tf: tarfile.TarFile, root: Path, include: set[str] | None = None) -> int:
    """Add everything under root (not root itself) depth-first in sorted order; with `include`, only those
    relative paths (a directory's parents must be included for it to be reached).

    Symlinks stay symlinks (no dereferencing), hard links become link entries, owners and modes are
    kept, sockets and mount points are skipped.
    """
    count = 0

    def walk(d: Path) -> None:
        nonlocal count
        try:
            names = sorted(os.listdir(d))
        except OSError as exc:
            log(f"warning: cannot list {d}: {exc}")
            return
        for name in names:
            p = d / name
            rel = p.relative_to(root).as_posix()
            if include is not None and rel not in include:
                continue
            st = os.lstat(p)
            if stat.S_ISSOCK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode) and os.path.ismount(p):
                log(f"warning: skipping mount point {rel}")
                continue
            tf.add(str(p), arcname=rel, recursive=False)
            count += 1
            if stat.S_ISDIR(st.st_mode):
                walk(p)

    walk(root)
    return count


@dataclass
class LayerBlob:
    name: str
    diff_id: str
    digest: str
    size: int
    uncompressed_size: int
    entries: int
    created_by: str


def pack_layer(work: Path, layout: Path, name: str, src: Path, created_by: str, include: set[str] | None = None,
               whiteouts: list[str] | None = None) -> LayerBlob:
    """Write `src` (or only the `include`d paths of it, plus `whiteouts` markers) as a gzip layer blob of `layout`."""
    def fill(tf: tarfile.TarFile) -> int:
        entries = _tar_tree(tf, src, include)
        for gone in whiteouts or []:
            parent, _, base = gone.rpartition("/")
            tf.addfile(tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}"))
            entries += 1
        return entries

    return write_layer(work, layout, name, created_by, fill)


def write_layer(work: Path, layout: Path, name: str, created_by: str, fill: Callable[[tarfile.TarFile], int],
                compresslevel: int = 6) -> LayerBlob:
    """A gzip layer blob of `layout` holding what `fill` writes to the tar (it returns the entry count); kept under
    work/layers/<name>.json and reused while its blob exists."""
    meta = work / "layers" / f"{name}.json"
    if meta.exists():
        blob = LayerBlob(**json.loads(meta.read_text()))
        if (layout / "blobs" / "sha256" / blob.digest.split(":")[1]).exists():
            log(f"layer {name}: cached ({blob.digest[:19]}, {blob.size / 1e6:.0f} MB)")
            return blob
    meta.parent.mkdir(parents=True, exist_ok=True)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".{name}.tmp"
    t0 = time.monotonic()
    with open(tmp, "wb") as raw:
        outer = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", compresslevel=compresslevel, fileobj=outer,  # type: ignore[arg-type]
                           mtime=0) as gz:
            inner = HashingWriter(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
                entries = fill(tf)
    blob = LayerBlob(name, inner.digest(), outer.digest(), outer.size, inner.size, entries, created_by)
    tmp.rename(blobs / blob.digest.split(":")[1])
    meta.write_text(json.dumps(blob.__dict__, indent=1))
    log(f"layer {name}: {entries} entries, {blob.uncompressed_size / 1e6:.0f} MB -> {blob.size / 1e6:.0f} MB gzip "
        f"in {time.monotonic() - t0:.0f}s")
    return blob


def _write_json_blob(layout: Path, doc: object) -> tuple[str, int]:
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return digest, len(data)


def write_layout(layout: Path, layers: list[LayerBlob], config_extra: dict[str, object] | None = None,
                 tag: str = TAG) -> Path:
    config: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "PYTHONPATH=/" + PY_SITE, "NODE_ENV=production"],
            "WorkingDir": "/" + NPM_PREFIX,
            "Cmd": ["/bin/bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]},
        "history": [{"created": CREATED, "created_by": b.created_by} for b in layers],
        **(config_extra or {}),
    }
    cfg_digest, cfg_size = _write_json_blob(layout, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": media.OCI_LAYER_GZIP, "digest": b.digest, "size": b.size} for b in layers],
    }
    man_digest, man_size = _write_json_blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [{
        "mediaType": media.OCI_MANIFEST, "digest": man_digest, "size": man_size,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_text(json.dumps(index, indent=1))
    return layout


def build(work: Path = DEFAULT_WORK, only: str | None = None) -> Path:
    """Build whatever is missing and return the OCI layout directory."""
    work.mkdir(parents=True, exist_ok=True)
    layout = work / "image"
    steps = {"rootfs": build_rootfs, "python": build_python, "npm": build_npm}
    if only in steps:
        steps[only](work)
        return layout
    if (layout / "index.json").exists() and only != "layout":
        log(f"image: cached ({layout})")
        return layout
    rootfs = build_rootfs(work)
    py = build_python(work)
    npm = build_npm(work)
    mirror = debian_mirror()
    layers = [
        pack_layer(work, layout, "rootfs", rootfs,
                   f"debootstrap --variant=minbase --include={','.join(DEB_INCLUDE)} {SUITE} / {mirror}"),
        pack_layer(work, layout, "python", py,
                   f"pip install --no-deps --only-binary=:all: --target /{PY_SITE} -r requirements-python.txt"),
        pack_layer(work, layout, "npm", npm,
                   f"npm install --prefix /{NPM_PREFIX} --ignore-scripts $(cat packages-npm.txt)"),
    ]
    write_layout(layout, layers)
    log(f"image: {layout} tag {TAG}, {sum(b.size for b in layers) / 1e6:.0f} MB compressed")
    return layout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--only", choices=["rootfs", "python", "npm", "layout"])
    ap.add_argument("--force", action="store_true", help="rebuild the layer tars and the layout (not the trees)")
    args = ap.parse_args()
    if args.force:
        shutil.rmtree(args.work / "image", ignore_errors=True)
        shutil.rmtree(args.work / "layers", ignore_errors=True)
    print(build(args.work, args.only))


if __name__ == "__main__":
    main()
