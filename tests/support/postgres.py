"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster made by `initdb` in a temporary
directory, on a free loopback port, stopped when the session ends.

initdb refuses to run as root; under root (CI) the cluster belongs to the unprivileged `postgres` user the Debian
package creates, and the server commands run as that user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from hullscan.layers.pgcache import TABLE
from hullscan.sharedstore import engine_for

_counter = itertools.count(1)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, root: Path) -> None:
        bindir = _bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package postgresql; scripts/system-deps.sh)")
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "run"
        self.port = _free_port()
        self.user = "hullscan"
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for d in (root, self.sockets):
                d.mkdir(parents=True, exist_ok=True)
                os.chown(d, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        else:
            self.sockets.mkdir(parents=True, exist_ok=True)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=300 -c synchronous_commit=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start")
        return self

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"test_{next(_counter)}"
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run([*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)


@contextmanager
def running_postgres(prefix: str = "hullscan-pg-") -> Iterator[PostgresServer]:
    """A started server in a new temporary directory, stopped and removed at the end (the benchmarks use it too).
    Not under pytest's temporary directory: its parents are private to root, and the server runs as postgres."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = PostgresServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def store_url(postgres: PostgresServer) -> str:
    """A fresh database on the session's server: a fleet's shared store (layer facts, database builds)."""
    return postgres.create_database()


def layer_cache_rows(url: str) -> list[tuple[str, str, int]]:
    """(diff_id, analyzers key, times its facts were written) for every entry of the PostgreSQL layer cache at url."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return [(d, k, n) for d, k, n in conn.execute(sa.text(f"SELECT diff_id, analyzers_key, analyses "
                                                                  f"FROM {TABLE}"))]
    finally:
        engine.dispose()
