"""The `hullscan` command line.

Exit codes: 0 success; 2 invalid usage; 3 the image could not be scanned (the message names the
cause from the failure catalogue and what to do); 4 an internal error.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from hullscan import __version__
from hullscan.cli_db import db_app
from hullscan.errors import HullscanError
from hullscan.layers.cache import LayerCache, default_cache_dir
from hullscan.model import ImageFacts, LayerInfo, Platform
from hullscan.oci.source import GB, Limits
from hullscan.scan import RegistryOptions, Scanner, ScanOptions

app = typer.Typer(help="hullscan: scan container images for what they hold and what is wrong with it.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cache_app = typer.Typer(help="Manage the per-layer cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")

EXIT_SCAN_FAILED = 3
EXIT_INTERNAL = 4


class Format(str, Enum):
    table = "table"
    json = "json"
    cyclonedx = "cyclonedx"
    spdx = "spdx"


PlatformOpt = Annotated[str | None, typer.Option("--platform", help="os/arch[/variant] to pick from a multi-arch index")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file")]
UserOpt = Annotated[str | None, typer.Option("--username", "-u", envvar="HULLSCAN_USERNAME", help="Registry user")]
PwStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the registry password from stdin")]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP and unverified TLS")]
CaOpt = Annotated[Path | None, typer.Option("--ca-cert", help="CA bundle for the registry's TLS certificate")]
DockerCfgOpt = Annotated[Path | None, typer.Option("--docker-config", help="Path to a Docker config.json")]
CacheDirOpt = Annotated[Path | None, typer.Option("--cache-dir", envvar="HULLSCAN_CACHE_DIR", help="Cache directory")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Analyse every layer afresh; write no cache")]
MaxImageOpt = Annotated[float, typer.Option("--max-image-size", help="Largest image to scan, in GB")]
MaxLayerOpt = Annotated[float, typer.Option("--max-layer-size", help="Largest layer to scan, in GB")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output")]


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.tasks: dict[int, TaskID] = {}

    def image_resolved(self, layers: list[LayerInfo]) -> None:
        for layer in layers:
            self.tasks[layer.index] = self.p.add_task(f"layer {layer.index + 1}/{len(layers)}",
                                                      total=layer.descriptor.size or None, start=False)

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        task = self.tasks[layer.index]
        self.p.start_task(task)
        if cached:
            self.p.update(task, description=f"layer {layer.index + 1} (cached)")

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None:
        self.p.update(self.tasks[layer.index], completed=compressed_bytes)

    def layer_finished(self, layer: LayerInfo) -> None:
        task = self.tasks[layer.index]
        self.p.update(task, completed=self.p.tasks[task].total or 0)


def _run_scan(target: str, options: ScanOptions, quiet: bool) -> ImageFacts:
    scanner = Scanner(options)
    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        return scanner.scan(target)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        return scanner.scan(target, _RichProgress(progress))


def _options(platform: str | None, username: str | None, password_stdin: bool, insecure: bool,
             ca_cert: Path | None, docker_config: Path | None, cache_dir: Path | None, no_cache: bool,
             max_image_size: float, max_layer_size: float) -> ScanOptions:
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise typer.BadParameter("--password-stdin was given but stdin held no password")
    try:
        plat = Platform.parse(platform) if platform else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--platform") from None
    limits = Limits(max_image_size=int(max_image_size * GB), max_layer_size=int(max_layer_size * GB))
    return ScanOptions(platform=plat, limits=limits, cache_dir=cache_dir, use_cache=not no_cache,
                       registry=RegistryOptions(username, password, insecure, ca_cert, docker_config))


def _stdout_console() -> Console:
    # Piped output has no terminal width; 80 columns would fold every purl and path into a column.
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _render(facts: ImageFacts, fmt: Format, output: Path | None) -> None:
    from hullscan.report import cyclonedx, json_report, spdx, table

    if fmt is Format.table:
        if output is None:
            table.render(facts, _stdout_console())
        else:
            with output.open("w", encoding="utf-8") as f:
                table.render(facts, Console(file=f, width=160, no_color=True))
        return
    if fmt is Format.json:
        text = json_report.render(facts)
    elif fmt is Format.cyclonedx:
        text = cyclonedx.render(facts)
    else:
        text = spdx.render(facts)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")


def _inventory(target: str, fmt: Format, output: Path | None, platform: str | None, username: str | None,
               password_stdin: bool, insecure: bool, ca_cert: Path | None, docker_config: Path | None,
               cache_dir: Path | None, no_cache: bool, max_image_size: float, max_layer_size: float,
               quiet: bool) -> None:
    options = _options(platform, username, password_stdin, insecure, ca_cert, docker_config, cache_dir,
                       no_cache, max_image_size, max_layer_size)
    try:
        facts = _run_scan(target, options, quiet)
    except HullscanError as exc:
        Console(stderr=True).print(f"[bold red]error[/]: {exc.render()}", markup=True, highlight=False)
        raise typer.Exit(exc.cause.exit_code) from None
    _render(facts, fmt, output)


@app.command()
def sbom(
    image: Annotated[str, typer.Argument(help="Registry reference, docker-archive tar, OCI layout or root fs")],
    fmt: FormatOpt = Format.cyclonedx,
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
) -> None:
    """List the software in an image (CycloneDX by default)."""
    _inventory(image, fmt, output, platform, username, password_stdin, insecure, ca_cert, docker_config,
               cache_dir, no_cache, max_image_size, max_layer_size, quiet)


@app.command()
def scan(
    image: Annotated[str, typer.Argument(help="Registry reference, docker-archive tar, OCI layout or root fs")],
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
) -> None:
    """Scan an image and report what it holds (a table by default)."""
    _inventory(image, fmt, output, platform, username, password_stdin, insecure, ca_cert, docker_config,
               cache_dir, no_cache, max_image_size, max_layer_size, quiet)


@cache_app.command("clean")
def cache_clean(cache_dir: CacheDirOpt = None) -> None:
    """Delete every cached layer analysis."""
    root = cache_dir or default_cache_dir()
    removed = LayerCache(root).clean()
    Console().print(f"removed {removed} cached layer entries from {root}", highlight=False)


@app.command()
def version() -> None:
    """Print hullscan's version."""
    print(f"hullscan {__version__}")


def main() -> None:
    """Console entry point: catalogue errors exit 3 with their solution, anything else exits 4."""
    try:
        app()
    except HullscanError as exc:
        Console(stderr=True).print(exc.render(), markup=False, highlight=False)
        sys.exit(exc.cause.exit_code)
    except Exception as exc:
        if os.environ.get("HULLSCAN_DEBUG"):
            raise
        Console(stderr=True).print(f"internal error: {type(exc).__name__}: {exc} (set HULLSCAN_DEBUG=1 for a trace)",
                                   markup=False, highlight=False)
        sys.exit(EXIT_INTERNAL)
