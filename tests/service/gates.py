"""The gate as the gate tests (and the notification tests) drive it: `hullscan gate` started as its own process on
a free port of 127.0.0.1, real `skopeo` pulls through it, and an image the gate refuses."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hullscan.imagebuild import Image, Layer, layer_tar

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vulnerable() -> Image:
    """lodash 4.17.11: GHSA-jf85-cpcp-j695 (CVSS 3.1 I:H/A:H, critical) in the test extract of real OSV data."""
    pkg = json.dumps({"name": "lodash", "version": "4.17.11", "license": "MIT"})
    return Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
                                   ("srv/app/node_modules/lodash/package.json", pkg)]))])


def start_gate(data_dir: Path, listen: str, registry: str, database_url: str | None = None) -> subprocess.Popen[bytes]:
    """The gate of the service whose data directory (or database, when given) is this, once it answers."""
    env = {**os.environ, "HULLSCAN_SECRET_KEY": "test key"}
    if database_url is not None:
        env["HULLSCAN_DATABASE_URL"] = database_url
    proc = subprocess.Popen([sys.executable, "-m", "hullscan.cli", "gate", "--data-dir", str(data_dir), "--listen",
                             listen, "--registry", registry, "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://{listen}/v2/", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "gate exited") from None
            time.sleep(0.1)
    raise RuntimeError("the gate did not start")


def pull(ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(dest, ignore_errors=True)
    return subprocess.run([SKOPEO, "--insecure-policy", "copy", "--src-tls-verify=false", "--retry-times", "0",
                           f"docker://{ref}", f"oci:{dest}:x"], capture_output=True, text=True, timeout=120)
