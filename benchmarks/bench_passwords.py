"""The weak-password check's cost in a default scan: hullscan with and without it on a typical image.

Target (issue 9): a default scan of an image whose /etc/shadow holds a handful of users finishes within 1.5x the
same scan without the password check, and a re-scan pays nothing for it.

**Image** (built once into ``<work>/passwords-image``, an OCI layout, tag ``bench``), from this Debian machine's own
files, shaped like a Python service on Debian:

1. a Debian base: the host's ``/var/lib/dpkg/status``, os-release, the ``/usr/share/doc/*/copyright`` files and the
   first 60 MB of ``/usr/bin``; account files as a fresh Debian image has them (root and system accounts locked;
   the host's own account files are never read);
2. the Python runtime: the host's ``/usr/lib/python3.11`` and ``/usr/lib/python3/dist-packages``;
3. the application and its users, as ``useradd`` + ``chpasswd`` leave them with Debian 12's default (yescrypt):
   five accounts, one with a user-name variant for a password (``app123``), four with random passwords.

**Runs** (each ``--runs`` times, alternating, medians; every timed command offline under ``unshare --net`` when
possible, with empty ``XDG_*`` directories, so the layer cache and the verdict cache start empty):

| name | command |
|---|---|
| with the check | ``hullscan scan oci:<layout>:bench --db <db> --skip-db-update -f json --quiet`` (default) |
| without | the same with ``--scanners vuln,secret,malware,file,compliance,base`` (no baseline item at all) |
| warm | "with the check" again on the state the first run left (layer and verdict caches filled) |

The vulnerability database is the one ``bench_secrets.py`` builds from ``../shared/vulndata/osv`` (built here when
missing). Results go to ``<work>/passwords.json``; exit 1 when a scan fails, and with ``--strict`` also when the
target is missed.

Usage: python benchmarks/bench_passwords.py [--runs N] [--work DIR] [--strict] [--force]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_secrets  # noqa: E402
import build_image  # noqa: E402
import run as syft_bench  # noqa: E402

TARGET = 1.5  # default scan <= 1.5 x the same scan without the password check
TAG = "bench"
WITHOUT = "vuln,secret,malware,file,compliance,base"
USERS = ("app", "deploy", "backup", "admin", "ci")
BIN_BYTES = 60 << 20
BASE_PASSWD = ("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
               "bin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n"
               "sync:x:4:65534:sync:/bin:/bin/sync\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
               "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
BASE_GROUP = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nshadow:x:42:\nwww-data:x:33:\nnogroup:x:65534:\n"
BASE_SHADOW = "".join(f"{line.split(':')[0]}:*:19700:0:99999:7:::\n" for line in BASE_PASSWD.splitlines())


def log(msg: str) -> None:
    print(f"[bench-passwords {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _add_bytes(tf: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644, gid: int = 0) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.gid, info.mtime = len(data), mode, gid, 1_700_000_000
    tf.addfile(info, io.BytesIO(data))


def _add_tree(tf: tarfile.TarFile, root: Path, budget: int | None = None) -> int:
    """The host's files under `root` (regular files, directories, symlinks; nothing special), up to `budget` bytes."""
    added = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            try:
                st = p.lstat()
                if not (p.is_symlink() or p.is_file()) or not os.access(p, os.R_OK):
                    continue
                if budget is not None and added + st.st_size > budget:
                    return added
                tf.add(p, arcname=str(p).lstrip("/"), recursive=False)
                added += st.st_size if not p.is_symlink() else 0
            except OSError:
                continue
    return added


def _layer(work: Path, name: str, fill: Any) -> Path:
    path = work / f"{name}.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        fill(tf)
    return path


def build(work: Path, force: bool) -> Path:
    """The image as an OCI layout (reused when present)."""
    from hullscan.checks.crypt import system_crypt
    from hullscan.imagebuild import Image, Layer, write_oci_layout

    layout = work / "passwords-image"
    if (layout / "index.json").is_file() and not force:
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-passwords-", dir=work))
    try:
        def base(tf: tarfile.TarFile) -> None:
            _add_bytes(tf, "etc/os-release", Path("/etc/os-release").read_bytes())
            _add_bytes(tf, "etc/debian_version", Path("/etc/debian_version").read_bytes())
            _add_bytes(tf, "var/lib/dpkg/status", Path("/var/lib/dpkg/status").read_bytes())
            _add_bytes(tf, "etc/passwd", BASE_PASSWD.encode())
            _add_bytes(tf, "etc/group", BASE_GROUP.encode())
            _add_bytes(tf, "etc/shadow", BASE_SHADOW.encode(), 0o640, 42)
            _add_bytes(tf, "etc/login.defs", b"PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nENCRYPT_METHOD YESCRYPT\n")
            for doc in sorted(Path("/usr/share/doc").glob("*/copyright")):
                _add_bytes(tf, str(doc).lstrip("/"), doc.read_bytes())
            _add_tree(tf, Path("/usr/bin"), BIN_BYTES)

        def python(tf: tarfile.TarFile) -> None:
            for root in (Path("/usr/lib/python3.11"), Path("/usr/lib/python3/dist-packages")):
                _add_tree(tf, root)

        crypt = system_crypt()

        def users(tf: tarfile.TarFile) -> None:
            import secrets

            passwd, group, shadow = BASE_PASSWD, BASE_GROUP, BASE_SHADOW
            for n, user in enumerate(USERS):
                uid = 1000 + n
                password = "app123" if user == "app" else secrets.token_urlsafe(12)
                passwd += f"{user}:x:{uid}:{uid}::/home/{user}:/bin/bash\n"
                group += f"{user}:x:{uid}:\n"
                shadow += f"{user}:{crypt.make(password, '$y$')}:19700:0:99999:7:::\n"
            _add_bytes(tf, "etc/passwd", passwd.encode())
            _add_bytes(tf, "etc/group", group.encode())
            _add_bytes(tf, "etc/shadow", shadow.encode(), 0o640, 42)
            _add_bytes(tf, "srv/app/app.py", b"print('hello')\n")

        layers = [Layer(_layer(scratch, "base", base).read_bytes(), "ADD rootfs.tar.xz / # debian:12"),
                  Layer(_layer(scratch, "python", python).read_bytes(), "RUN apt-get install -y python3"),
                  Layer(_layer(scratch, "users", users).read_bytes(),
                        "RUN useradd -m app ... && chpasswd < /run/secrets/users # buildkit")]
        write_oci_layout(layout, Image(layers, config_extra={"config": {"User": "app"}}), tag=TAG)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return layout


def median(runs: list[bench_secrets.Run], cpu: bool = False) -> float | None:
    ok = [r.cpu_seconds if cpu else r.seconds for r in runs if r.returncode == 0]
    return round(statistics.median(ok), 3) if ok else None


def password_check(report: Path) -> dict[str, Any] | None:
    try:
        check: dict[str, Any] | None = json.loads(report.read_text()).get("password_check")
    except (OSError, ValueError):
        return None
    return check


def main() -> int:
    ap = argparse.ArgumentParser(description="the weak-password check's cost in a default scan")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--force", action="store_true", help="rebuild the image")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    layout = build(work, args.force)
    hull = syft_bench.find_hullscan()
    db = bench_secrets.ensure_db(work, hull, False)
    offline = syft_bench.offline_prefix()
    log(f"image: {layout}; hullscan: {' '.join(hull)}; "
        + ("offline (unshare --net)" if offline else "network NOT cut off"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HULLSCAN_") and k not in bench_secrets.STATE_VARS}
    target = f"oci:{layout}:{TAG}"
    common = ["--db", str(db), "--skip-db-update", "-f", "json", "--quiet"]
    plan = {"with the check": ["scan", target, *common],
            "without": ["scan", target, "--scanners", WITHOUT, *common]}
    runs: dict[str, list[bench_secrets.Run]] = {"with the check": [], "without": [], "warm": []}
    checks: list[dict[str, Any] | None] = []
    out = work / "out-passwords"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-passwords-state-"))
    syft_bench.warm_page_cache(layout)
    load_before = os.getloadavg()
    try:
        for i in range(1, args.runs + 1):
            order = list(plan.items()) if i % 2 else list(reversed(plan.items()))
            for name, cmd in order:
                state = scratch / f"{name.split()[0]}-{i}"
                state.mkdir()
                run_env = {**env, **{var: str(state / var.lower()) for var in bench_secrets.STATE_VARS}}
                r = bench_secrets.measure([*offline, *hull, *cmd], out / f"{name.split()[0]}-{i}.json", run_env, state)
                runs[name].append(r)
                log(f"run {i}: {name}: {r.seconds:.2f}s wall, {r.cpu_seconds:.2f}s CPU, exit {r.returncode}")
                if name == "with the check":
                    checks.append(password_check(Path(r.output)))
                    w = bench_secrets.measure([*offline, *hull, *cmd], out / f"warm-{i}.json", run_env, state)
                    runs["warm"].append(w)
                    warm = password_check(Path(w.output)) or {}
                    log(f"run {i}: warm: {w.seconds:.2f}s wall, crypt calls {warm.get('crypt_calls')}")
                if r.returncode != 0:
                    log(f"{name} failed:\n{r.stderr_tail}")
                shutil.rmtree(state, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()
    with_check, without, warm_s = median(runs["with the check"]), median(runs["without"]), median(runs["warm"])
    ratio = round(with_check / without, 3) if with_check and without else None
    ok = ratio is not None and ratio <= TARGET
    first = next((c for c in checks if c), None) or {}
    print()
    print("| run | median wall s | median CPU s | wall s of each run |")
    print("|---|---|---|---|")
    for name, rs in runs.items():
        print(f"| {name} | {median(rs)} | {median(rs, cpu=True)} | {', '.join(f'{r.seconds:.2f}' for r in rs)} |")
    print()
    cpu_with, cpu_without = median(runs["with the check"], cpu=True), median(runs["without"], cpu=True)
    cpu_ratio = round(cpu_with / cpu_without, 3) if cpu_with and cpu_without else None
    print(f"with / without = {ratio} wall (target <= {TARGET}: {'PASS' if ok else 'FAIL'}), {cpu_ratio} CPU; "
          f"warm re-scan {warm_s} s")
    if first:
        tried = [a["tried"] for a in first.get("accounts", []) if not a["weak"]]
        print(f"password check (first run): budget {first['budget_seconds']} s, {len(first['accounts'])} accounts, "
              f"{first['crypt_calls']} crypt calls in {first['seconds']} s; candidates tried per account not found: "
              f"{min(tried) if tried else 0}-{max(tried) if tried else 0} of {first['accounts'][0]['total']}")
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    (work / "passwords.json").write_text(json.dumps({
        "runs": {n: [vars(r) for r in rs] for n, rs in runs.items()},
        "medians": {"with": with_check, "without": without, "warm": warm_s}, "ratio": ratio, "cpu_ratio": cpu_ratio,
        "target": TARGET,
        "password_checks": checks, "load_average": [load_before, load_after]}, indent=2))
    failed = any(r.returncode != 0 for rs in runs.values() for r in rs)
    return 1 if failed or (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
