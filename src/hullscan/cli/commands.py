"""The Typer application: every command, registered here; their libraries load inside the commands.

A command line gets a tree holding only the command it names (`application(argv)`): typer turns each command's
signature into click's objects when the tree runs, and doing so for every command (some 30, with their options)
took 20-30 ms of each run, a tenth of a cold `hullscan sbom`'s start. The root's help, a mistyped name or no
command at all get the whole tree, so the command list and the suggestions stay complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from hullscan import __version__
from hullscan.cli.options import CacheDirOpt, Command, ScanCommand, examples, new_app

ROOT_HELP = "hullscan: scan container images for what they hold and what is wrong with it."
ROOT_EXAMPLES = examples(
    "hullscan db update                    # get the vulnerability data",
    "hullscan scan alpine:3.20             # every scan item, as a table",
    "hullscan scan -f json -o report.json app:1.0",
    "hullscan scan --severity HIGH --exit-code 1 app:1.0   # a CI gate",
    "hullscan sbom -f spdx-json -o app.spdx.json app:1.0",
    "hullscan COMMAND -h                   # each command's options",
)


def _print_version(value: bool) -> None:
    if value:
        print(f"hullscan {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print hullscan's version and exit.")] = False,
) -> None:
    """hullscan: scan container images for what they hold and what is wrong with it."""


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


def version() -> None:
    """Print hullscan's version."""
    print(f"hullscan {__version__}")


def _sbom(app: typer.Typer) -> None:
    from hullscan.cli import scan

    app.command(cls=ScanCommand, epilog=scan.SBOM_EXAMPLES)(scan.sbom)


def _scan(app: typer.Typer) -> None:
    from hullscan.cli import scan

    app.command(cls=ScanCommand, epilog=scan.SCAN_EXAMPLES,
                short_help="Scan an image for vulnerabilities, secrets, malware and risky settings.")(scan.scan)


def _image(app: typer.Typer) -> None:
    from hullscan.cli import scan

    # Trivy's verb for the same thing: a Trivy user's first command works.
    app.command("image", cls=ScanCommand, epilog=scan.SCAN_EXAMPLES,
                short_help="Same as scan (Trivy's name for it).")(scan.scan)


def _rescan(app: typer.Typer) -> None:
    from hullscan.cli import scan

    app.command(cls=Command)(scan.rescan)


def _serve(app: typer.Typer) -> None:
    from hullscan.cli import serve

    app.command(cls=Command)(serve.serve)


def _gate(app: typer.Typer) -> None:
    from hullscan.cli import gate

    app.command(cls=Command)(gate.gate)


def _worker(app: typer.Typer) -> None:
    from hullscan.cli import fleet

    app.command(cls=Command)(fleet.worker)


def _scheduler(app: typer.Typer) -> None:
    from hullscan.cli import fleet

    app.command(cls=Command)(fleet.scheduler)


def _version(app: typer.Typer) -> None:
    app.command(cls=Command)(version)


def _cache(app: typer.Typer) -> None:
    cache_app = new_app("Manage the per-layer cache.")
    cache_app.command("clean", cls=Command)(cache_clean)
    app.add_typer(cache_app, name="cache")


def _db(app: typer.Typer) -> None:
    from hullscan.cli_db import db_app

    app.add_typer(db_app, name="db")


def _base(app: typer.Typer) -> None:
    from hullscan.cli_base import base_app

    app.add_typer(base_app, name="base")


# In the order the root's help lists them (typer lists commands before groups, each in the order added).
_COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "sbom": _sbom, "scan": _scan, "image": _image, "rescan": _rescan, "serve": _serve, "gate": _gate,
    "worker": _worker, "scheduler": _scheduler, "version": _version, "cache": _cache, "db": _db, "base": _base,
}


def application(argv: Sequence[str] = ()) -> typer.Typer:
    """The command tree for a command line: the command `argv` starts with, else every command."""
    app = new_app(ROOT_HELP)
    app.info.epilog = ROOT_EXAMPLES
    app.callback()(_root)
    named = argv[0] if argv else ""
    for name, register in _COMMANDS.items():
        if named not in _COMMANDS or name == named:
            register(app)
    return app


def __getattr__(name: str) -> Any:
    # `app`: the whole tree, for tests and embedding (the command line builds its own with `application`).
    if name == "app":
        return application()
    raise AttributeError(name)
