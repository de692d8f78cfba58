"""Mistakes are caught before any work and never end in exit 4; Ctrl-C and SIGTERM end a scan quietly with 130 and
143, leaving no work files. Driven as a user does: separate processes, a real registry, a terminal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hullscan.imagebuild import Image, Layer, layer_tar, sha256
from tests.support.cli import HULLSCAN, environment, hullscan, in_terminal
from tests.support.registry import RegistryServer


def _no_work_done(env: dict[str, str]) -> None:
    assert not Path(env["HULLSCAN_CACHE_DIR"]).exists()  # no layer was read (nor cached)


def test_an_output_path_that_cannot_be_written_fails_before_the_scan(demo_layout: Path, tmp_path: Path,
                                                                      user_env: dict[str, str]) -> None:
    image = f"oci:{demo_layout}:demo"
    result = hullscan("scan", image, "-o", "/nonexistent/dir/r.json", "-f", "json", env=user_env)
    assert result.returncode == 2, result.stderr
    assert "cannot write /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    _no_work_done(user_env)
    result = hullscan("sbom", image, "-o", str(tmp_path), env=user_env)
    assert result.returncode == 2 and "is a directory; name the report file" in result.stderr
    _no_work_done(user_env)


def test_a_missing_ignore_file_is_named(demo_layout: Path, tmp_path: Path, user_env: dict[str, str]) -> None:
    result = hullscan("scan", f"oci:{demo_layout}:demo", "--ignore-file", "nope.txt", env=user_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "the ignore file nope.txt does not exist" in result.stderr
    assert "image source" not in result.stderr and "image paths" not in result.stderr
    _no_work_done(user_env)


@pytest.fixture(scope="module")
def two_platforms(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    def image(arch: str, variant: str = "") -> Image:
        return Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")]))], architecture=arch,
                     variant=variant)

    registry.push_images([image("amd64"), image("arm64", "v8")], "multi/app:1.0", tmp_path_factory.mktemp("multi"))
    return registry.ref("multi/app:1.0")


def test_a_platform_the_index_lacks_lists_those_it_has(two_platforms: str, user_env: dict[str, str]) -> None:
    for args in (["--platform", "linux/arm"], ["--platform", "linux/[bold]arm[/bold]"]):
        result = hullscan("scan", two_platforms, "--scanners", "none", *args, env=user_env)
        assert result.returncode == 3, result.stderr
        assert "is not in this index (available: linux/amd64, linux/arm64/v8)" in result.stderr
        assert "Traceback" not in result.stderr
    # On a terminal (progress display, colours) too.
    code, screen = in_terminal(["scan", two_platforms, "--scanners", "none", "--platform", "linux/arm"], columns=80,
                               env=user_env)
    assert code == 3 and "available: linux/amd64, linux/arm64/v8" in screen.replace("\n", " ")
    assert "Traceback" not in screen and "MarkupError" not in screen


def test_a_registry_written_as_a_url(registry: RegistryServer, two_platforms: str, user_env: dict[str, str]) -> None:
    """http://host:port/repo:tag is what a registry's web page shows: the scheme says how to reach it."""
    result = hullscan("sbom", f"http://{two_platforms}", "-f", "json", env=user_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["artifact"]["os"]["family"] == "alpine"
    # This registry speaks plain HTTP: asking for https:// gets the transport's error, not a parse error.
    result = hullscan("sbom", f"https://{two_platforms}", "-f", "json", env=user_env)
    assert result.returncode == 3
    assert "port" not in result.stderr and "is not a number" not in result.stderr
    assert "[REGISTRY_UNREACHABLE]" in result.stderr or "[TLS_ERROR]" in result.stderr


class StallingRegistry:
    """A registry serving one image whose layer blob stops a third of the way in until the test releases it: the
    scan is then certainly under way (its work directory exists), however fast or slow the machine."""

    def __init__(self, image: Image) -> None:
        self.manifest, _, self.blobs = image.blobs()
        self.layer = json.loads(self.manifest)["layers"][0]["digest"]
        self.stalled = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                owner.answer(self)

            do_HEAD = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def ref(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}/slow/app:1.0"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            body, kind = b"{}", "application/json"
        elif h.path.endswith("/manifests/1.0"):
            body, kind = self.manifest, json.loads(self.manifest)["mediaType"]
        elif "/blobs/" in h.path and h.path.rsplit("/", 1)[1] in self.blobs:
            body, kind = self.blobs[h.path.rsplit("/", 1)[1]], "application/octet-stream"
        else:
            h.send_error(404)
            return
        h.send_response(200)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Docker-Content-Digest", sha256(body))
        h.end_headers()
        if h.command == "HEAD":
            return
        if not h.path.endswith(self.layer):
            h.wfile.write(body)
            return
        with contextlib.suppress(OSError):  # the scan may hang up once stopped
            h.wfile.write(body[: len(body) // 3])
            h.wfile.flush()
            self.stalled.set()
            self.release.wait(600)
            h.wfile.write(body[len(body) // 3:])

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_quietly_and_leave_no_work_files(user_env: dict[str, str], sig: signal.Signals,
                                                                 code: int) -> None:
    """The signal goes to the whole process group, as Ctrl-C on a terminal (and a service manager's stop) sends it:
    the worker processes the scan starts for a layer this big (over MIN_BYTES) get it too."""
    files = [(f"srv/data/blob-{n}.bin", os.urandom(4 << 20)) for n in range(9)]  # 36 MB that gzip cannot shrink
    files += [(f"srv/data/{n:04d}.txt", os.urandom(512).hex()) for n in range(500)]
    registry = StallingRegistry(Image([Layer(layer_tar(files))]))
    work = Path(user_env["HULLSCAN_WORK_DIR"])
    try:
        proc = subprocess.Popen([*HULLSCAN, "scan", registry.ref, "--scanners", "secret,malware,file", "--no-cache"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment({**user_env, "HULLSCAN_POOL_WORKERS": "1"}), start_new_session=True)
        while not registry.stalled.wait(0.1):
            assert proc.poll() is None, proc.communicate()
        assert [p.name for p in work.iterdir() if p.name.startswith("hullscan-")]  # mid-scan: its work directory
        os.killpg(proc.pid, sig)
        registry.release.set()
        out, err = proc.communicate(timeout=600)
    finally:
        registry.close()
    assert proc.returncode == code, err
    assert err == "" and out == ""  # quietly: no traceback (from any process), no half report
    assert not list(work.iterdir())  # the scan's and the worker pool's work directories are gone


def test_version_and_usage_errors_never_exit_4(demo_layout: Path, user_env: dict[str, str]) -> None:
    for args in (["scan"], ["scan", "x", "--format", "yaml"], ["scan", "x", "--severity", "SEVERE"],
                 ["scan", "x", "--timeout", "0"], ["scan", "x", "--platform", "amd64"], ["nope"]):
        result = hullscan(*args, env=user_env)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_platform_a_single_image_does_not_have_is_said(demo_layout: Path, user_env: dict[str, str]) -> None:
    result = hullscan("sbom", f"oci:{demo_layout}:demo", "--platform", "linux/arm64", "-f", "json", env=user_env)
    assert result.returncode == 0
    assert "--platform linux/arm64: the image is not a multi-platform index but a single linux/amd64 image" \
        in " ".join(result.stderr.split())
