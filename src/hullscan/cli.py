"""The `hullscan` command line.

Exit codes: 0 success; 2 invalid usage; 3 the image could not be scanned (the message names the
cause from the failure catalogue and what to do); 4 an internal error.
"""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from hullscan import __version__
from hullscan.cli_base import base_app
from hullscan.cli_db import db_app
from hullscan.errors import HullscanError
from hullscan.findings import ScanReport
from hullscan.ignorefile import IgnoreEntry
from hullscan.layers.cache import LayerCache, default_cache_dir
from hullscan.model import ImageFacts, LayerInfo, Platform
from hullscan.oci.source import GB, Limits
from hullscan.scan import RegistryOptions, Scanner, ScanOptions
from hullscan.vulndb.model import AdvisoryStore

app = typer.Typer(help="hullscan: scan container images for what they hold and what is wrong with it.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cache_app = typer.Typer(help="Manage the per-layer cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")
app.add_typer(base_app, name="base")

EXIT_SCAN_FAILED = 3
EXIT_INTERNAL = 4


class Format(StrEnum):
    table = "table"
    json = "json"
    cyclonedx = "cyclonedx"
    spdx = "spdx"


PlatformOpt = Annotated[str | None, typer.Option("--platform", help="os/arch or os/arch/variant to pick from an index")]
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
    """Refreshed from the scan's own callbacks rather than Rich's refresh thread: a scan forks worker
    processes, which is only safe while no other thread runs (layers/pool.py)."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.tasks: dict[int, TaskID] = {}
        self._shown = 0.0

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown >= 0.1:
            self._shown = now
            self.p.refresh()

    def image_resolved(self, layers: list[LayerInfo]) -> None:
        for layer in layers:
            self.tasks[layer.index] = self.p.add_task(f"layer {layer.index + 1}/{len(layers)}",
                                                      total=layer.descriptor.size or None, start=False)

    def layer_started(self, layer: LayerInfo, cached: bool) -> None:
        task = self.tasks[layer.index]
        self.p.start_task(task)
        if cached:
            self.p.update(task, description=f"layer {layer.index + 1} (cached)")
        self._refresh(force=True)

    def layer_advanced(self, layer: LayerInfo, compressed_bytes: int) -> None:
        self.p.update(self.tasks[layer.index], completed=compressed_bytes)
        self._refresh()

    def layer_finished(self, layer: LayerInfo) -> None:
        task = self.tasks[layer.index]
        self.p.update(task, completed=self.p.tasks[task].total or 0)
        self._refresh(force=True)


def _run_scan(target: str, options: ScanOptions, quiet: bool) -> ImageFacts:
    scanner = Scanner(options)
    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        return scanner.scan(target)
    with _progress_display(err) as progress:
        return scanner.scan(target, _RichProgress(progress))


def _progress_display(console: Console) -> Progress:
    # auto_refresh=False: no refresh thread (see _RichProgress)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    return Progress(*columns, console=console, transient=True, auto_refresh=False)


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
    # Only the chosen renderer is imported (see _render_report).
    if fmt is Format.table:
        from hullscan.report import table

        if output is None:
            table.render(facts, _stdout_console())
        else:
            with output.open("w", encoding="utf-8") as f:
                table.render(facts, Console(file=f, width=160, no_color=True))
        return
    if fmt is Format.json:
        from hullscan.report import json_report

        text = json_report.render(facts)
    elif fmt is Format.cyclonedx:
        from hullscan.report import cyclonedx

        text = cyclonedx.render(facts)
    else:
        from hullscan.report import spdx

        text = spdx.render(facts)
    _write(text, output)


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


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx = "cyclonedx"
    spdx = "spdx"
    html = "html"


SCANNERS = ("vuln", "secret", "malware", "file", "baseline", "compliance", "base")


@app.command()
def scan(
    image: Annotated[str, typer.Argument(help="Registry reference, docker-archive tar, OCI layout or root fs")],
    fmt: Annotated[ScanFormat, typer.Option("--format", "-f", help="Output format")] = ScanFormat.table,
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
    scanners: Annotated[str, typer.Option("--scanners", help="Scan items, comma-separated: vuln, secret, "
                                          "malware, file, baseline, compliance, base; or none")] = ",".join(SCANNERS),
    severity: Annotated[str, typer.Option("--severity", "-s", help="Report this severity and above "
                                          "(HIGH), or exactly a list (CRITICAL,LOW)")] = "UNKNOWN",
    ignore_unfixed: Annotated[bool, typer.Option("--ignore-unfixed", help="Leave out findings with no fix")] = False,
    exit_code: Annotated[int, typer.Option("--exit-code", help="Exit with this code when findings remain "
                                           "after --severity, --ignore-unfixed and the ignore file")] = 0,
    ignore_file: Annotated[Path | None, typer.Option("--ignore-file", help="Ignore file [default: "
                                                     ".hullscanignore when present]")] = None,
    db: Annotated[Path | None, typer.Option("--db", envvar="HULLSCAN_DB", help="Vulnerability database")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Make no network request for data")] = False,
    skip_db_update: Annotated[bool, typer.Option("--skip-db-update", help="Use the database as it is")] = False,
    list_packages: Annotated[bool, typer.Option("--list-packages", help="Show the inventory in the table too")] = False,
    secret_config: Annotated[Path | None, typer.Option("--secret-config", help="YAML file adding, disabling or "
                                                       "allowing secret rules")] = None,
    malware_rules: Annotated[list[Path] | None, typer.Option("--malware-rules", help="Directory of YARA rules "
                                                             "(repeatable)")] = None,
    malware_hashes: Annotated[list[Path] | None, typer.Option("--malware-hashes", help="SHA-256 blocklist "
                                                              "file (repeatable)")] = None,
    clamd: Annotated[str | None, typer.Option("--clamd", help="clamd socket path or host:port")] = None,
    list_files: Annotated[bool, typer.Option("--list-files", help="Include the file inventory, with sha256")] = False,
    password_budget: Annotated[float, typer.Option("--password-budget", help="Seconds to spend on weak "
                                                   "password checks per image")] = 60.0,
    show_weak_passwords: Annotated[bool, typer.Option("--show-weak-passwords", help="Print weak passwords "
                                                      "found (otherwise only user and algorithm)")] = False,
    licence_policy: Annotated[Path | None, typer.Option("--licence-policy", help="YAML licence policy")] = None,
    base_catalogue: Annotated[Path | None, typer.Option("--base-catalogue", envvar="HULLSCAN_BASE_CATALOGUE",
                                                        help="Base image catalogue file")] = None,
) -> None:
    """Scan an image: its software and the vulnerabilities in it (a table by default)."""
    from hullscan.detect import SeverityFilter, VulnOptions

    items = [w.strip() for w in scanners.split(",") if w.strip()]
    unknown = [w for w in items if w not in (*SCANNERS, "none")]
    if unknown:
        raise typer.BadParameter(f"unknown scanner {', '.join(unknown)}; choose from {', '.join(SCANNERS)}",
                                 param_hint="--scanners")
    try:
        sev = SeverityFilter.parse(severity)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--severity") from None
    options = _options(platform, username, password_stdin, insecure, ca_cert, docker_config, cache_dir,
                       no_cache, max_image_size, max_layer_size)
    err = Console(stderr=True, highlight=False)
    from hullscan.checks.baseimage import CatalogueError
    from hullscan.checks.compliance import PolicyError
    from hullscan.checks.eol import EolDataError
    from hullscan.detect import ItemOptions, analyzers_for, evaluate, run_checks
    from hullscan.detectors import DetectContext
    from hullscan.malware.analyzer import MalwareOptions

    item_options = ItemOptions(
        secret_config, MalwareOptions(rule_dirs=malware_rules or [], hash_files=malware_hashes or [], clamd=clamd),
        DetectContext(password_budget_seconds=password_budget, show_weak_passwords=show_weak_passwords,
                      licence_policy=licence_policy, base_catalogue=base_catalogue, list_files=list_files))
    try:
        ignore = _ignore_entries(ignore_file)
        options.analyzers = analyzers_for(items, item_options)
        store = _open_database(db, offline or skip_db_update, err) if "vuln" in items else None
        facts = _run_scan(image, options, quiet)
        if store is not None:
            report = evaluate(facts, store, VulnOptions(ignore_unfixed, sev, ignore))
            _remember(report)
        else:
            report = ScanReport(facts=facts)
        run_checks(report, items, item_options)
        if list_files:
            import dataclasses

            from hullscan.checks.files import file_inventory

            report.file_inventory = [dataclasses.asdict(row) for row in file_inventory(facts, with_sha256=True)]
    except HullscanError as exc:
        err.print(f"[bold red]error[/]: {exc.render()}", markup=True)
        raise typer.Exit(exc.cause.exit_code) from None
    except (PolicyError, EolDataError, CatalogueError) as exc:
        err.print(f"[bold red]error[/]: {exc}", markup=True)
        raise typer.Exit(2) from None
    report.checks = [c for c in report.checks if sev.keeps(c)]
    _render_report(report, fmt, output, list_packages)
    if exit_code and (report.vulnerabilities or report.checks):
        raise typer.Exit(exit_code)


def _ignore_entries(path: Path | None) -> list[IgnoreEntry]:
    from hullscan.ignorefile import load

    if path is None:
        default = Path(".hullscanignore")
        return load(default) if default.is_file() else []
    return load(path)


def _open_database(db: Path | None, no_update: bool, err: Console) -> AdvisoryStore:
    """The vulnerability database, updated first when missing or over 7 days old (unless told not to)."""
    from hullscan.vulndb.store import default_db_path, open_default
    from hullscan.vulndb.update import update_database

    path = db or default_db_path()
    if not no_update:
        stale = True
        if path.exists():
            with open_default(path) as current:
                stale = current.is_stale()
        if stale:
            try:
                update_database(path)
            except HullscanError as exc:
                if not path.exists():
                    raise
                err.print(f"[yellow]warning[/]: the database could not be updated ({exc.detail}); using the "
                          "existing one", markup=True)
    store = open_default(path)
    if store.is_stale():
        err.print(f"[yellow]warning[/]: the vulnerability database is {store.age_days():.0f} days old; run "
                  "'hullscan db update'", markup=True)
    return store


def _remember(report: ScanReport) -> None:
    """Store the image facts so `hullscan rescan` can re-evaluate them against a newer database."""
    import datetime as dt

    from hullscan.scanstore import ScanStore, StoredScan, finding_key

    store = ScanStore()
    built = report.database.built_at if report.database else ""
    try:
        store.save(StoredScan(ScanStore.key_for(report.facts), report.facts,
                              [finding_key(f) for f in report.vulnerabilities], built,
                              dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
    except OSError as exc:
        Console(stderr=True).print(f"warning: could not store the scan for rescan: {exc}", markup=False)


def _render_report(report: ScanReport, fmt: ScanFormat, output: Path | None, list_packages: bool) -> None:
    # Only the chosen renderer is imported: spdx-tools and cyclonedx take half a second to load.
    if fmt is ScanFormat.table:
        from hullscan.report import table

        if output is None:
            table.render_report(report, _stdout_console(), show_packages=list_packages)
        else:
            with output.open("w", encoding="utf-8") as f:
                table.render_report(report, Console(file=f, width=160, no_color=True), show_packages=list_packages)
        return
    if fmt is ScanFormat.json:
        from hullscan.report import json_report

        text = json_report.render_report(report)
    elif fmt is ScanFormat.sarif:
        from hullscan.report import sarif

        text = sarif.render(report)
    elif fmt is ScanFormat.cyclonedx:
        from hullscan.report import cyclonedx

        text = cyclonedx.render_report(report)
    elif fmt is ScanFormat.html:
        from hullscan.report import html

        text = html.render(report)
    else:
        from hullscan.report import spdx

        text = spdx.render(report.facts)
    _write(text, output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")


@app.command()
def rescan(
    images: Annotated[list[str] | None, typer.Argument(help="Stored scans to redo [default: all]")] = None,
    db: Annotated[Path | None, typer.Option("--db", envvar="HULLSCAN_DB", help="Vulnerability database")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the changes as JSON")] = False,
) -> None:
    """Re-evaluate stored scans against the current database, without downloading any layer.

    Reports, per image, the findings that are new and those that are gone since the last evaluation.
    """
    import datetime as dt
    import json

    from hullscan.detect import VulnOptions, evaluate
    from hullscan.scanstore import ScanStore, StoredScan, finding_key
    from hullscan.vulndb.store import open_default

    err = Console(stderr=True, highlight=False)
    try:
        store = open_default(db)
    except HullscanError as exc:
        err.print(f"[bold red]error[/]: {exc.render()}", markup=True)
        raise typer.Exit(exc.cause.exit_code) from None
    scans = ScanStore()
    wanted = set(images or [])
    changes: list[dict[str, Any]] = []
    for stored in scans.all():
        if wanted and stored.facts.reference not in wanted:
            continue
        report = evaluate(stored.facts, store, VulnOptions())
        keys = {finding_key(f): f for f in report.vulnerabilities}
        before = set(stored.finding_keys)
        new = sorted(k for k in keys if k not in before)
        fixed = sorted(before - set(keys))
        changes.append({"image": stored.facts.reference, "digest": stored.facts.manifest_digest,
                        "total": len(keys), "new": [k.split("|", 1)[0] + " in " + k.split("|")[2] for k in new],
                        "gone": [k.split("|", 1)[0] + " in " + k.split("|")[2] for k in fixed]})
        scans.save(StoredScan(stored.key, stored.facts, sorted(keys), store.info().built_at,
                              dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
    if wanted and not changes:
        err.print("no stored scan matches; scan the image first with 'hullscan scan'", markup=False)
        raise typer.Exit(EXIT_SCAN_FAILED)
    if json_out:
        sys.stdout.write(json.dumps(changes, indent=2) + "\n")
        return
    out = Console(highlight=False)
    for c in changes:
        out.print(f"{c['image']}: {c['total']} findings, {len(c['new'])} new, {len(c['gone'])} gone",
                  markup=False)
        for line in c["new"]:
            out.print(f"  + {line}", markup=False)
        for line in c["gone"]:
            out.print(f"  - {line}", markup=False)


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
