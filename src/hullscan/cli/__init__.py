"""The `hullscan` command line: a thin front door over the engine (hullscan.pipeline).

Exit codes: 0 success; 1 (or --exit-code) a scan's gate tripped; 2 invalid usage (a mistake in an option or a
file it names); 3 the image could not be scanned (the message names the cause from the failure catalogue and what
to do); 4 an internal error; 130/143 stopped by Ctrl-C/SIGTERM. This module imports almost nothing, so `hullscan
version` answers at once; the command tree loads typer alone, and each command its libraries when it runs.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

from hullscan import __version__

EXIT_USAGE = 2
EXIT_SCAN_FAILED = 3
EXIT_INTERNAL = 4


def main() -> None:
    """Console entry point: catalogue errors exit with their cause's code and solution, anything else exits 4."""
    try:
        _main()
    except SystemExit as exc:
        _leave(exc.code)
        raise
    _leave(0)


def _leave(code: object) -> None:
    """End the process now that the command is done, without the interpreter's teardown.

    Tearing down frees some 700 modules and every object they hold one by one: about 0.1 s, a sixth of a warm
    re-scan, spent on memory the kernel takes back at once. Only once nothing else runs (one thread, so no
    pool thread or server is cut short) and the output is flushed; atexit handlers (logging, multiprocessing,
    temporary directories) still run. Otherwise, and for an exit with a message, the ordinary exit happens.
    """
    if code is None:
        code = 0
    threading = sys.modules.get("threading")  # not imported: no other thread can be running
    if not isinstance(code, int) or (threading is not None and threading.active_count() > 1):
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # a closed or broken pipe: the ordinary exit reports it as Python always does
    atexit._run_exitfuncs()
    os._exit(code & 0xFF)


def _main() -> None:
    args = sys.argv[1:]
    if args in (["version"], ["--version"]):
        print(f"hullscan {__version__}")
        return
    from hullscan import heap

    heap.hold()  # until the command starts (cli.options.Command): importing and parsing make nothing to collect
    from hullscan.cli.interrupt import Interrupted
    from hullscan.errors import HullscanError
    from hullscan.signals import exit_on_sigterm

    exit_on_sigterm()  # outside a scan too, SIGTERM unwinds the run (temporary files go) and exits 143
    # httpx loads its own command-line client whenever Rich and Pygments are installed (typer brings them): some
    # 50 ms of every registry scan for a module hullscan never runs. An empty entry makes httpx go without it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        from hullscan.cli.commands import application

        application(args)()
    except Interrupted as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except HullscanError as exc:
        from hullscan.cli.common import print_error

        print_error(exc)
        sys.exit(exc.cause.exit_code)
    except Exception as exc:
        if os.environ.get("HULLSCAN_DEBUG"):
            raise
        from hullscan.cli.common import print_internal_error

        print_internal_error(exc)
        sys.exit(EXIT_INTERNAL)


def __getattr__(name: str) -> Any:
    # `from hullscan.cli import app` (tests, embedding) builds the Typer app only when asked for.
    if name == "app":
        from hullscan.cli.commands import application

        return application()
    raise AttributeError(name)
