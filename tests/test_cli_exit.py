"""How a `hullscan` process ends: once its command is done it leaves without the interpreter's teardown
(cli._leave), so these pin what must still hold: every byte of output written, atexit handlers run, the exit code
kept, and a process with another thread still running left to end the ordinary way. Separate processes, as a user
runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.cli import environment, hullscan


def _python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=environment(env), timeout=300)


def test_the_whole_report_reaches_the_pipe_and_the_file(demo_layout: Path, tmp_path: Path,
                                                        user_env: dict[str, str]) -> None:
    image = f"oci:{demo_layout}:demo"
    piped = hullscan("sbom", image, "--quiet", env=user_env)
    assert piped.returncode == 0, piped.stderr
    out = tmp_path / "bom.json"
    written = hullscan("sbom", image, "--quiet", "-o", str(out), env=user_env)
    assert written.returncode == 0, written.stderr
    from_pipe, from_file = json.loads(piped.stdout), json.loads(out.read_text())
    assert len(from_pipe["components"]) == len(from_file["components"]) > 10
    assert piped.stdout.endswith("\n")


def test_atexit_handlers_run_and_the_exit_code_is_kept(user_env: dict[str, str]) -> None:
    code = """
        import atexit, sys
        atexit.register(lambda: print("atexit ran", file=sys.stderr))
        from hullscan.cli import main
        sys.argv = ["hullscan", *sys.argv[1:]]
        main()
    """
    for args, expected in ((["version"], 0), (["scan", "--no-such-option"], 2), (["scan", "/nonexistent.tar"], 3)):
        result = _python(code, user_env, *args)
        assert result.returncode == expected, (args, result.stderr)
        assert result.stderr.rstrip().endswith("atexit ran"), (args, result.stderr)


def test_a_thread_still_running_is_waited_for(tmp_path: Path, user_env: dict[str, str]) -> None:
    # A command that leaves a thread working (an embedding program's, say) must not have it cut short.
    marker = tmp_path / "finished"
    code = f"""
        import pathlib, sys, threading, time
        def work():
            time.sleep(1)
            pathlib.Path({str(marker)!r}).write_text("done")
        threading.Thread(target=work).start()
        from hullscan.cli import main
        sys.argv = ["hullscan", "version"]
        main()
    """
    result = _python(code, user_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hullscan ")
    assert marker.read_text() == "done"
