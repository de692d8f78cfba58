"""A whole fleet on loopback, every part a separate process: a real Redis (Debian's `redis-server`), a real
PostgreSQL (tests/support/postgres.py), `hullscan serve`, `hullscan scheduler` and `hullscan worker --queue NAME`
processes, all reading the same HULLSCAN_* settings, as the README's fleet section starts them.

Fixtures (a pytest plugin, registered from tests/conftest.py):

- `redis_server`  session: a Redis on a free port, data in a temporary directory, no persistence.
- `fleet`         function: factory `fleet(**settings) -> Fleet` (settings as HULLSCAN_* names in lower case,
                  e.g. max_scans_per_registry=3); a fresh PostgreSQL database and Redis database number each;
                  every process it started is stopped at the end.

    f = fleet(max_scans_per_registry=3)
    f.start_serve(); api = f.client()         # admin, with an API token
    east = f.start_worker("east", concurrency=4)
    f.start_scheduler()
    f.db()                                    # the fleet's Database, for reading rows directly
    f.probe_events()                          # what the workers' probes recorded (see tests/support/fleet_probe.py)

Workers run with the probe installed: each scan's start and end as seen inside the worker process, on the
system-wide monotonic clock, so a test can count scans running at once across processes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hullscan.service.storage.db import Database
from hullscan.vulndb.store import build_from_paths

from .postgres import PostgresServer
from .registry import free_port
from .serving import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
OSV_EXTRACT = ROOT / "tests" / "vulndb" / "data" / "osv"  # real OSV records (see its PROVENANCE.md)
ADMIN = ("admin", "correct horse battery staple")
REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"
_databases = itertools.count(1)
# Fast for tests: a silent worker is given up on after half a minute (a test that kills one says less); tasks come
# back from the broker soon.
FAST = {"worker_lost_after": "30", "broker_visibility_timeout": "30", "scheduler_interval": "1",
        "pool_workers": "0", "retry_delay": "0.5"}


class RedisServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        if not Path(REDIS_BIN).exists():
            raise RuntimeError("redis-server is not installed (Debian package redis-server; scripts/system-deps.sh)")
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - the server keeps writing to it
        self.process = subprocess.Popen([REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--dir", str(self.root), "--save", "", "--appendonly", "no",
                                         "--databases", "64", "--protected-mode", "yes"],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        import redis

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class HullscanProcess:
    """One `hullscan ...` child process; its output in `<log>`."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, *, probe: bool = False) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        boot = "import tests.support.fleet_probe as p; p.install(); " if probe else ""
        self.command = [sys.executable, "-c", f"{boot}from hullscan.cli import main; main()", *args]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> HullscanProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=ROOT)
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 90) -> bool:
        """Wait until the process has logged `text` (a bound against hanging, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if not self.alive():
                raise RuntimeError(f"{self.args[0]} exited with {self.process and self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, whatever the process was doing is cut short."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM, and wait for the process to exit (SIGKILL if it takes more than 30 s)."""
        self.terminate()
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Fleet:
    def __init__(self, root: Path, database_url: str, broker_url: str, settings: dict[str, str]) -> None:
        self.root = root
        self.database_url = database_url
        self.broker_url = broker_url
        self.probe_file = root / "probe.log"
        (root / "empty.toml").write_text("")
        vulndb = root / "vulndb" / "hullscan.db"
        vulndb.parent.mkdir(parents=True)
        build_from_paths(vulndb, [OSV_EXTRACT])
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)]),
                    "HULLSCAN_CONFIG": str(root / "empty.toml"), "HULLSCAN_DATABASE_URL": database_url,
                    "HULLSCAN_BROKER_URL": broker_url, "HULLSCAN_SECRET_KEY": "fleet test key",
                    "HULLSCAN_ADMIN_PASSWORD": ADMIN[1], "HULLSCAN_DB": str(vulndb),
                    "HULLSCAN_TEST_PROBE": str(self.probe_file),
                    **{f"HULLSCAN_{k.upper()}": v for k, v in {**FAST, **settings}.items()}}
        self.processes: list[HullscanProcess] = []
        self.port = 0
        self._db: Database | None = None
        self._names = itertools.count(1)
        self._token: str | None = None

    def _process(self, args: list[str], name: str, probe: bool = False) -> HullscanProcess:
        data = self.root / name
        data.mkdir()
        env = {**self.env, "HULLSCAN_DATA_DIR": str(data), "HULLSCAN_CACHE_DIR": str(data / "cache")}
        process = HullscanProcess(args, env, self.root / f"{name}.log", probe=probe).start()
        self.processes.append(process)
        return process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_serve(self) -> HullscanProcess:
        self.port = free_port()
        serve = self._process(["serve", "--host", "127.0.0.1", "--port", str(self.port)], "serve")
        assert serve.process is not None
        wait_healthy(self.url, serve.process, serve.log, timeout=180)
        return serve

    def start_worker(self, queue: str, concurrency: int = 2) -> HullscanProcess:
        worker = self._process(["worker", "--queue", queue, "--concurrency", str(concurrency)],
                               f"worker-{queue}-{next(self._names)}", probe=True)
        if not worker.wait_log("ready."):  # Celery's own line once it consumes its queue
            raise RuntimeError(f"the worker of {queue} did not start:\n{worker.log()[-3000:]}")
        return worker

    def start_scheduler(self) -> HullscanProcess:
        return self._process(["scheduler"], f"scheduler-{next(self._names)}")

    def client(self, timeout: float = 60) -> httpx.Client:
        """A client acting as admin with an API token, as a script would (a password would cost an Argon2 check
        per request)."""
        if self._token is None:
            with httpx.Client(base_url=self.url, auth=ADMIN, timeout=timeout) as api:
                made = api.post("/api/v1/tokens", json={"name": "fleet-tests"})
                assert made.status_code == 201, made.text
                self._token = made.json()["token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self._token}"}, timeout=timeout)

    def tails(self, chars: int = 1500) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(f"--- {p.log_path.name} ({'alive' if p.alive() else 'exited'}):\n{p.log()[-chars:]}"
                         for p in self.processes)

    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    def probe_events(self) -> list[tuple[float, str, int, int, str]]:
        """(monotonic time, "enter" | "leave", scan id, registry id, worker) as the workers recorded them, in time
        order."""
        from tests.support.fleet_probe import read

        return read(self.probe_file)

    def stop(self) -> None:
        for process in self.processes:  # all at once: each takes a moment to wind down
            process.terminate()
        for process in reversed(self.processes):
            process.stop()
        if self._db is not None:
            self._db.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="hullscan-redis-"))
    server = RedisServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fleet(tmp_path: Path, postgres: PostgresServer, redis_server: RedisServer) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(**settings: Any) -> Fleet:
        root = tmp_path / f"fleet-{len(made) + 1}"
        root.mkdir()
        f = Fleet(root, postgres.create_database(), redis_server.url(next(_databases) % 64),
                  {k: str(v) for k, v in settings.items()})
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()
