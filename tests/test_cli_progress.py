"""No silent stalls: on a terminal the scan shows what each long phase does, the weak-password check included.

The CLI runs as a user runs it, in a pseudo-terminal (its stderr a tty, 100 columns)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from hullscan.checks.crypt import system_crypt
from hullscan.cli.common import RichProgress, progress_display
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout

pytestmark = pytest.mark.timeout(300)


def _layout(tmp: Path) -> Path:
    crypt = system_crypt()
    shadow = "".join(f"u{n}:{crypt.make(f'S3cret-{n}-x', '$y$')}:19700:0:99999:7:::\n" for n in range(4))
    passwd = "root:x:0:0:root:/root:/bin/bash\n" + "".join(
        f"u{n}:x:{1000 + n}:{1000 + n}::/home/u{n}:/bin/bash\n" for n in range(4))
    layer = Layer(layer_tar([FileSpec("etc/passwd", passwd.encode()), FileSpec("etc/shadow", shadow.encode())]))
    path = tmp / "img"
    write_oci_layout(path, Image([layer]))
    return path


def _in_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns its exit code and everything it drew there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hullscan.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    out = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(), out.decode("utf-8", "replace")


def test_weak_password_check_shows_its_progress_on_a_terminal(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "100", "TERM": "xterm-256color",
           "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "XDG_DATA_HOME": str(tmp_path / "xdg-data")}
    report = tmp_path / "r.json"
    code, drawn = _in_a_terminal(["scan", f"oci:{layout}:latest", "--scanners", "baseline", "--password-budget",
                                  "0.5", "-f", "json", "-o", str(report)], env)
    assert code == 0, drawn
    assert "Weak passwords: empty and user-name tests, 4 account(s)" in drawn
    assert "Weak passwords: wordlist" in drawn and "guesses" in drawn
    check = json.loads(report.read_text())["password_check"]
    assert check["budget_seconds"] == 0.5 and check["crypt_calls"] >= 4 * 6


@pytest.mark.parametrize(("done", "total", "unit", "shown"), [(0.4, 1.0, "s", "0.4/1.0 s"),
                                                           (7, 18, "guesses", "7/18 guesses")])
def test_rich_progress_shows_a_phase_amount_not_bytes(done: float, total: float, unit: str, shown: str) -> None:
    out = io.StringIO()
    with progress_display(Console(file=out, force_terminal=True, width=100)) as bars:
        display = RichProgress(bars, Console(file=out))
        display.phase("Baseline checks")
        display.phase_progress("Weak passwords: wordlist", done, total, unit)
        display.phase("Software compliance")
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n").splitlines()
    assert any("Weak passwords: wordlist" in f and shown in f for f in frames)
    assert not any("bytes" in f for f in frames)
    assert not any("Software compliance" in f and shown in f for f in frames)  # the next phase starts afresh
