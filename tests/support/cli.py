"""Driving `hullscan` as a user does: a separate process, in a pipe or on a terminal of a given width.

    result = hullscan("scan", image, "-f", "json", env=env)          # stdout/stderr captured, like a pipe
    code, screen = in_terminal(["scan", image], columns=80, env=env)  # a pseudo-terminal 80 columns wide

Fixtures: `demo_layout` (the `make demo` image, built once per session) and `demo_db` (a vulnerability database of
the real OSV records in demo/osv), and `user_env` (data and cache directories of the test's own).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HULLSCAN = [sys.executable, "-m", "hullscan.cli"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def environment(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The test process's environment without a terminal width (COLUMNS, LINES), plus `base` and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH", "")])])
    env.update(base or {})
    env.update(extra)
    return env


def hullscan(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, stdin: str | None = None,
             timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout and stderr going to pipes."""
    return subprocess.run([*HULLSCAN, *args], capture_output=True, text=True, env=environment(env), cwd=cwd,
                          input=stdin, timeout=timeout, check=False)


def in_terminal(args: Sequence[str], *, columns: int, rows: int = 50, env: Mapping[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 900) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal `columns` wide (stdin, stdout and stderr all on it); its exit code and
    what it printed, escape sequences removed and line ends normalised."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([*HULLSCAN, *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=environment(env, TERM="xterm-256color"), start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = proc.wait(timeout=timeout)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return code, ANSI.sub("", text)


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(ROOT / "demo"))
    try:
        import run as demo
    finally:
        sys.path.remove(str(ROOT / "demo"))
    demo.OUT = tmp_path_factory.mktemp("demo-image")
    return Path(demo.build())


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo-db") / "vuln.db"
    result = hullscan("db", "import", str(ROOT / "demo" / "osv"), "--db", str(db))
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's own data and cache directories (nothing shared between tests)."""
    return {"HULLSCAN_DATA_DIR": str(tmp_path / "data"), "HULLSCAN_CACHE_DIR": str(tmp_path / "cache"),
            "HULLSCAN_WORK_DIR": str(tmp_path / "work")}
