"""`hullscan serve`: the scan service (REST API, job executor) on embedded defaults or a fleet's database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help="Where the service keeps its "
                                                  "database, key, layer cache and reports [default: "
                                                  "HULLSCAN_DATA_DIR or the user data dir]")] = None,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on")] = 8080,
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL", help="debug, info, warning or "
                                           "error")] = "info",
) -> None:
    """Run the scan service: registries, images, scans as jobs, policies, the REST API under /api/v1."""
    import uvicorn

    from hullscan.cli.common import load_settings
    from hullscan.service.api.app import create_app
    from hullscan.service.logs import configure_logging

    settings = load_settings(data_dir=data_dir)
    configure_logging(log_level)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_config=None, log_level=log_level, access_log=False)
