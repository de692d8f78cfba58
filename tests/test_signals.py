"""Ending a run from outside: `kill` (SIGTERM) unwinds a scan like an error, so nothing stays behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import hullscan
from hullscan.imagebuild import Image, Layer, layer_tar, sha256
from hullscan.signals import TERMINATED
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(600)  # hang guards only: a busy machine may start the CLI slowly

SRC = Path(hullscan.__file__).resolve().parents[1]


def _cli(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path / "home"),
           "HULLSCAN_CACHE_DIR": str(tmp_path / "cache"), "HULLSCAN_DATA_DIR": str(tmp_path / "data"),
           "HULLSCAN_CONFIG": str(tmp_path / "no-config.toml")}
    env.pop("HULLSCAN_DEBUG", None)
    (tmp_path / "tmp").mkdir()
    return subprocess.Popen([sys.executable, "-m", "hullscan.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    """Poll until `ready` (the scan got that far); a run that ends first fails the test with its output."""
    for _ in range(6000):  # up to five minutes
        if ready():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the scan ended (exit {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the scan never reached {what}")


# One layer is read by the main thread, several by layer threads.
@pytest.mark.parametrize(("command", "layers"), [(["sbom"], 1), (["scan", "--scanners", "secret,malware"], 3)])
def test_sigterm_ends_a_scan_and_removes_its_work_directory(registry: RegistryServer,
                                                            fault_proxy: Callable[..., FaultProxy], tmp_path: Path,
                                                            command: list[str], layers: int) -> None:
    image = Image([Layer(layer_tar([(f"data/{i}.bin", os.urandom(1 << 20))]), f"RUN step {i}") for i in range(layers)])
    registry.push_images(image, f"sigterm/app:{layers}", tmp_path)
    proxy = fault_proxy(registry)
    for layer in image.layers:  # every layer arrives in part, then the registry goes silent
        proxy.trickle(f"/blobs/{sha256(layer.blob)}", piece=64 << 10, interval=600)

    proc = _cli([*command, f"{proxy.host}/sigterm/app:{layers}", "--insecure", "-q", "--no-cache",
                 "-o", str(tmp_path / "report")], tmp_path)
    try:
        _wait_for("its layers", lambda: proxy.count(r"/blobs/") >= 1 + layers, proc)
        assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("hullscan-")]  # work is under way
        proc.send_signal(signal.SIGTERM)
        # Ends at once; waiting on the silent registry would take its read timeout (a minute) or more.
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "tmp").rglob("*"))
    assert left == [], f"left behind: {left}\n{err}"  # the work directory (and any worker scratch space) is gone
    assert proc.returncode == TERMINATED, err
    assert "Traceback" not in err and "Exception" not in err, err
    assert not (tmp_path / "report").exists()


