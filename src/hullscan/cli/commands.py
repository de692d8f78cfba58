"""The Typer application: every command, registered here; their libraries load inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hullscan import __version__
from hullscan.cli import gate as gate_command
from hullscan.cli import scan as scan_commands
from hullscan.cli import serve as serve_command
from hullscan.cli.common import CacheDirOpt, load_settings
from hullscan.cli_base import base_app
from hullscan.cli_db import db_app

app = typer.Typer(help="hullscan: scan container images for what they hold and what is wrong with it.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cache_app = typer.Typer(help="Manage the per-layer cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")
app.add_typer(base_app, name="base")
app.command()(scan_commands.sbom)
app.command()(scan_commands.scan)
app.command()(scan_commands.rescan)
app.command()(serve_command.serve)
app.command()(gate_command.gate)


@cache_app.command("clean")
def cache_clean(cache_dir: CacheDirOpt = None) -> None:
    """Delete every cached layer analysis."""
    from hullscan.layers.cache import LayerCache

    root: Path = load_settings(cache_dir=cache_dir).cache_dir
    removed = LayerCache(root).clean()
    Console().print(f"removed {removed} cached layer entries from {root}", highlight=False, markup=False)


@app.command()
def version() -> None:
    """Print hullscan's version."""
    print(f"hullscan {__version__}")
