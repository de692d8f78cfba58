"""The Typer application: every command, registered here; their libraries load inside the commands."""

from __future__ import annotations

from typing import Annotated

import typer

from hullscan import __version__
from hullscan.cli import fleet as fleet_commands
from hullscan.cli import gate as gate_command
from hullscan.cli import scan as scan_commands
from hullscan.cli import serve as serve_command
from hullscan.cli.options import CacheDirOpt, Command, ScanCommand, examples, new_app
from hullscan.cli_base import base_app
from hullscan.cli_db import db_app

app = new_app("hullscan: scan container images for what they hold and what is wrong with it.")
app.info.epilog = examples(
    "hullscan db update                    # get the vulnerability data",
    "hullscan scan alpine:3.20             # every scan item, as a table",
    "hullscan scan -f json -o report.json app:1.0",
    "hullscan scan --severity HIGH --exit-code 1 app:1.0   # a CI gate",
    "hullscan sbom -f spdx-json -o app.spdx.json app:1.0",
    "hullscan COMMAND -h                   # each command's options",
)
cache_app = new_app("Manage the per-layer cache.")
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")
app.add_typer(base_app, name="base")
app.command(cls=ScanCommand, epilog=scan_commands.SBOM_EXAMPLES)(scan_commands.sbom)
app.command(cls=ScanCommand, epilog=scan_commands.SCAN_EXAMPLES,
            short_help="Scan an image for vulnerabilities, secrets, malware and risky settings.")(scan_commands.scan)
# Trivy's verb for the same thing: a Trivy user's first command works.
app.command("image", cls=ScanCommand, epilog=scan_commands.SCAN_EXAMPLES,
            short_help="Same as scan (Trivy's name for it).")(scan_commands.scan)
app.command(cls=Command)(scan_commands.rescan)
app.command(cls=Command)(serve_command.serve)
app.command(cls=Command)(gate_command.gate)
app.command(cls=Command)(fleet_commands.worker)
app.command(cls=Command)(fleet_commands.scheduler)


def _print_version(value: bool) -> None:
    if value:
        print(f"hullscan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print hullscan's version and exit.")] = False,
) -> None:
    """hullscan: scan container images for what they hold and what is wrong with it."""


@cache_app.command("clean", cls=Command)
def cache_clean(cache_dir: CacheDirOpt = None) -> None:
    """Delete every cached layer analysis (a fleet's shared cache when one is configured and no --cache-dir)."""
    from hullscan.cli.common import load_settings
    from hullscan.layers.cache import LayerCache

    settings = load_settings(cache_dir=cache_dir)
    if cache_dir is None and settings.layer_cache == "postgres":
        from hullscan.layers.cache import SharedLayerStore
        from hullscan.pipeline import layer_store

        store = layer_store(settings)  # OptionError when no PostgreSQL URL is set
        assert isinstance(store, SharedLayerStore)
        try:
            removed = store.clean()
        finally:
            store.close()
        print(f"removed {removed} cached layer entries from the shared store")
        return
    root = settings.cache_dir
    removed = LayerCache(root).clean()
    print(f"removed {removed} cached layer entries from {root}")


@app.command(cls=Command)
def version() -> None:
    """Print hullscan's version."""
    print(f"hullscan {__version__}")
