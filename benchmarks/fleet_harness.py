"""The fleet's real parts for the fleet benchmarks: PostgreSQL (tests/support/postgres.py), Redis, and hullscan's
own processes (`hullscan serve`, `scheduler`, `worker`) started as a user starts them, with the fleet's settings in
their environment; their resident memory sampled from /proc while they work."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer, running_postgres  # noqa: E402
from tests.support.registry import free_port  # noqa: E402

ADMIN = ("admin", "bench-password")



def fleet_available() -> bool:
    """Whether this checkout has the fleet's `hullscan worker` and `hullscan scheduler` (issue 14, fleet-core)."""
    try:
        import hullscan.service.jobs.worker  # noqa: F401 - fleet-core's Celery worker
    except ImportError:
        return False
    return True

def postgres() -> AbstractContextManager[PostgresServer]:
    return running_postgres("hullscan-bench-pg-")


@contextmanager
def redis() -> Iterator[str]:
    """A Redis server of Debian's package on a free loopback port, nothing persisted; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server; scripts/system-deps.sh)")
    root = Path(tempfile.mkdtemp(prefix="hullscan-bench-redis-"))
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Process:
    """A child process (`hullscan ...` unless `command` says otherwise); its output in `log` (stdout piped instead
    with `pipe`), its resident memory sampled by `sample()`."""
    name: str
    args: Sequence[str]
    env: dict[str, str]
    log: Path
    command: Sequence[str] = (sys.executable, "-m", "hullscan.cli")
    pipe: bool = False
    popen: subprocess.Popen[bytes] | None = None
    rss: list[float] = field(default_factory=list)

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.popen = subprocess.Popen([*self.command, *self.args], env=self.env,
                                      stdout=subprocess.PIPE if self.pipe else out,
                                      stderr=out if self.pipe else subprocess.STDOUT, start_new_session=True)
        return self

    def expect(self, line: bytes) -> None:
        """Wait for the piped child to print `line` (it is ready)."""
        assert self.popen is not None and self.popen.stdout is not None
        if self.popen.stdout.readline().strip() != line:
            raise RuntimeError(f"{self.name} did not start; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def sample(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.rss.append(rss_mb(self.pid))

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=30)


class Sampler:
    """Samples the resident memory of processes every `every` seconds in a thread."""

    def __init__(self, processes: list[Process], every: float = 0.5) -> None:
        self.processes = processes
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for process in self.processes:
                process.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def fleet_env(work: Path, database_url: str, broker_url: str | None, **settings: str) -> dict[str, str]:
    """The environment every hullscan process of the bench gets: the fleet's settings, nothing else of hullscan's
    from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HULLSCAN_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    env.update({"HULLSCAN_DATABASE_URL": database_url, "HULLSCAN_ADMIN_PASSWORD": ADMIN[1],
                "HULLSCAN_SECRET_KEY": "bench-only-key", "HULLSCAN_OSV_URL": "", "HULLSCAN_CVE_URL": "",
                "HULLSCAN_EPSS_URL": "", "HULLSCAN_KEV_URL": "", "HULLSCAN_CONFIG": str(work / "absent.toml")})
    env["HULLSCAN_CACHE_DIR"] = str(work / "cache")  # never the user's own cache
    if broker_url:
        env["HULLSCAN_BROKER_URL"] = broker_url
    env.update({f"HULLSCAN_{k.upper()}": v for k, v in settings.items()})
    return env


def role_env(env: dict[str, str], work: Path, name: str) -> dict[str, str]:
    """`env` with a data and a cache directory of this process's own (as each machine of a fleet has)."""
    return {**env, "HULLSCAN_DATA_DIR": str(work / name), "HULLSCAN_CACHE_DIR": str(work / name / "cache")}


def dir_size(root: Path) -> tuple[int, int]:
    """Files under `root` and their bytes."""
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def serve(work: Path, env: dict[str, str]) -> tuple[Process, str]:
    """`hullscan serve` on a free port, answering /healthz; the process and its URL."""
    port = free_port()
    process = Process("api", ["serve", "--port", str(port), "--log-level", "warning"], role_env(env, work, "api"),
                      work / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if not process.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"hullscan serve did not start; see {process.log}")
        time.sleep(0.2)


def api_client(url: str, connections: int = 16) -> httpx.Client:
    """A client with an API token of the admin (a hash look-up per request, not a password check)."""
    with httpx.Client(base_url=url, auth=ADMIN, timeout=60) as login:
        token = login.post("/api/v1/tokens", json={"name": "bench"})
        token.raise_for_status()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token.json()['token']}"}, timeout=120,
                        limits=httpx.Limits(max_connections=connections))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")
