"""`hullscan worker` and `hullscan scheduler`: the fleet's processes beside `hullscan serve` (see README, Fleet)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as a registry's "cluster" in the API

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help="Where this process keeps its "
                                                 "key, layer cache and vulnerability database [default: "
                                                 "HULLSCAN_DATA_DIR or the user data dir]")]
LogLevelOpt = Annotated[str, typer.Option("--log-level", metavar="LEVEL", help="debug, info, warning or error")]


def worker(
    queue: Annotated[str, typer.Option("--queue", metavar="NAME", help="The cluster whose scans this worker runs "
                                       "(a registry's \"cluster\"; default: default)")] = "default",
    concurrency: Annotated[int | None, typer.Option("--concurrency", metavar="N", min=1, max=256,
                                                    help="Scans run at once [default: the CPU count]")] = None,
    data_dir: DataDirOpt = None,
    log_level: LogLevelOpt = "info",
) -> None:
    """Run a scan worker of one cluster (needs HULLSCAN_BROKER_URL and HULLSCAN_DATABASE_URL)."""
    from hullscan.cli.common import fail, load_settings
    from hullscan.errors import HullscanError
    from hullscan.service.fleet import run_worker
    from hullscan.service.logs import configure_logging

    if not CLUSTER.match(queue):
        raise typer.BadParameter("letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit",
                                 param_hint="--queue")
    settings = load_settings(data_dir=data_dir)
    configure_logging(log_level)
    try:
        run_worker(settings, queue, concurrency or os.cpu_count() or 1, log_level)
    except HullscanError as exc:
        raise fail(exc) from None


def scheduler(data_dir: DataDirOpt = None, log_level: LogLevelOpt = "info") -> None:
    """Run the scheduler: cron schedules, database updates and, in a fleet, dispatching scans to the workers.
    Start two for availability: one is active, the other stands by until it dies."""
    from hullscan.cli.common import load_settings
    from hullscan.service.fleet import run_scheduler
    from hullscan.service.logs import configure_logging

    settings = load_settings(data_dir=data_dir)
    configure_logging(log_level)
    run_scheduler(settings)
