"""`hullscan gate`: the pull-blocking reverse proxy in front of one registry the service knows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def gate(
    registry: Annotated[str, typer.Option("--registry", metavar="NAME", help="Name of the registry (as added to "
                                          "the service) to stand in front of")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help="The service's data directory "
                                                  "(or set HULLSCAN_DATABASE_URL)")] = None,
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT", help="host:port to listen "
                                        "on")] = "127.0.0.1:5001",
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL", help="debug, info, warning or "
                                           "error")] = "info",
) -> None:
    """Proxy a registry and refuse pulls of images its namespace's policy blocks (412, as Harbor does)."""
    import uvicorn

    from hullscan.cli.common import fail, load_settings
    from hullscan.errors import HullscanError
    from hullscan.service.gate import Gate, gate_for
    from hullscan.service.logs import configure_logging
    from hullscan.service.storage.db import Database

    host, _, port = listen.rpartition(":")
    if not host or not port.isdecimal():
        raise typer.BadParameter("give host:port, e.g. 127.0.0.1:5001", param_hint="--listen")
    settings = load_settings(data_dir=data_dir)
    configure_logging(log_level)
    db = Database(settings.service_database_url)
    try:
        db.migrate()
        config = gate_for(db, registry, settings.data_dir,
                          blocked_event_window=settings.webhook_pull_blocked_window)
    except HullscanError as exc:
        raise fail(exc) from None
    uvicorn.run(Gate(db, config).app(), host=host, port=int(port), log_config=None, log_level=log_level,
                access_log=False)
