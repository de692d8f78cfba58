"""The service listening on a real port, for what must reach it over the network (a registry's notifications)
or must die like a process (SIGKILL): `LiveService` runs the app under Uvicorn in a thread of the test;
`ServeProcess` runs `hullscan serve` as a child process; `GateProcess` runs `hullscan gate` as the README starts
it, and `skopeo_pull` pulls through it as a user would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn

from hullscan.service.api.app import create_app
from hullscan.service.core import Service
from hullscan.settings import Settings
from tests.service.conftest import ADMIN, admin_token
from tests.support.registry import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


class LiveService:
    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self.server.run, name="live-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self) -> Service:
        svc: Service = self.app.state.service
        return svc

    def start(self) -> LiveService:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        return self

    def client(self, **kw: Any) -> httpx.Client:
        """A client acting as admin (with an API token) unless told otherwise."""
        if "auth" not in kw:
            kw["auth"] = admin_token(self.service)
        kw.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)


class HullscanProcess:
    """A `hullscan` command as a child process with HULLSCAN_* settings from `env`, its output in DIR/<command>.log;
    started once `ready()` says so. `program` is `hullscan` itself where it is installed (the benchmark); by default
    the same entry point through this interpreter, so the tests run the sources under test."""

    name = ""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, program: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
        self.program = program or [sys.executable, "-c", "from hullscan.cli import main; main()"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> Self:
        log = open(self.data_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hullscan {self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if self.ready():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hullscan {self.name} did not answer:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return (self.data_dir / f"{self.name}.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, whatever the process was doing is cut short."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class ServeProcess(HullscanProcess):
    """`hullscan serve --data-dir DIR --port N`; its log in DIR/serve.log."""

    name = "serve"

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        super().__init__(data_dir, env)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [*self.program, "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port",
                str(self.port)]

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=ADMIN, timeout=30)


class GateProcess(HullscanProcess):
    """`hullscan gate --data-dir DIR --listen 127.0.0.1:PORT --registry NAME`, exactly as the README documents it;
    its log in DIR/gate.log."""

    name = "gate"

    def __init__(self, data_dir: Path, registry: str, env: dict[str, str] | None = None,
                 program: list[str] | None = None) -> None:
        super().__init__(data_dir, env, program)
        self.registry = registry
        self.listen = f"127.0.0.1:{free_port()}"

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def command(self) -> list[str]:
        return [*self.program, "gate", "--data-dir", str(self.data_dir), "--listen", self.listen, "--registry",
                self.registry]

    def ready(self) -> bool:
        httpx.get(f"{self.url}/v2/", timeout=1)  # any answer: the gate listens (the registry may want auth)
        return True

    def peak_rss_kb(self) -> int:
        """The process's peak resident memory so far (VmHWM), in kB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])


def skopeo_pull(ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """`skopeo copy docker://REF oci:DEST:x` over plain HTTP, no retries: what a user's pull through the gate does."""
    shutil.rmtree(dest, ignore_errors=True)
    skopeo = shutil.which("skopeo") or "/usr/bin/skopeo"
    return subprocess.run([skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "--retry-times", "0",
                           f"docker://{ref}", f"oci:{dest}:x"], capture_output=True, text=True, timeout=120)
