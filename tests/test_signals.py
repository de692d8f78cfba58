"""Ending a run from outside: `kill` (SIGTERM) unwinds a scan like an error, so nothing stays behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import hullscan
from hullscan.cancel import CancelToken
from hullscan.cli.interrupt import Interrupted, stop_on_signals
from hullscan.errors import ScanStopped
from hullscan.imagebuild import Image, Layer, layer_tar, sha256, write_oci_layout
from hullscan.model import LayerInfo
from hullscan.pipeline import Engine, ScanRequest
from hullscan.scan import NoProgress
from hullscan.settings import Settings
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


class _HeldUntilStopped(NoProgress):
    """Keeps each layer thread in its layer until the scan's token is stopped (a minute at most), and notes
    whether the stop came."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token
        self.arrived = threading.Semaphore(0)
        self.stopped: list[bool] = []

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        self.arrived.release()
        try:
            self.token.sleep(60)
        except ScanStopped:
            self.stopped.append(True)
            raise
        self.stopped.append(False)


def test_a_signal_taken_by_another_thread_still_stops_a_scan_whose_layers_are_waiting(tmp_path: Path) -> None:
    """The kernel may hand a process's SIGTERM to any of its threads; Python then only flags it, and the main
    thread runs the handler once it is back in Python. Waiting on the layer threads in one blocking call, it was
    not, so a scan whose layers were stuck on a silent registry ignored SIGTERM until a read timed out."""
    layers = [Layer(layer_tar([(f"srv/{i}.txt", f"layer {i}\n")])) for i in range(2)]
    write_oci_layout(tmp_path / "img", Image(layers))
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", work_dir=tmp_path / "work",
                        layer_concurrency=2)
    token = CancelToken()
    progress = _HeldUntilStopped(token)

    def signal_from_here_once_both_layers_wait() -> None:
        for _ in layers:
            progress.arrived.acquire(timeout=60)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread, not the main one

    helper = threading.Thread(target=signal_from_here_once_both_layers_wait)
    with Engine(settings) as engine, pytest.raises(Interrupted) as stopped, stop_on_signals(token):
        helper.start()
        engine.scan(ScanRequest(f"oci:{tmp_path / 'img'}:latest", items=()), progress, token)
    helper.join()
    assert stopped.value.exit_code == TERMINATED
    assert progress.stopped == [True, True]  # the layers were stopped, not left to wait out their minute
    assert not any((tmp_path / "work").iterdir())
