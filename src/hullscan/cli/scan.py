"""`hullscan scan`, `sbom` and `rescan`: options in, one `Engine` call, a renderer out."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from hullscan import items
from hullscan.cli.common import (
    CacheDirOpt,
    CaOpt,
    DockerCfgOpt,
    InsecureOpt,
    MaxImageOpt,
    MaxLayerOpt,
    NoCacheOpt,
    OutputOpt,
    PlatformOpt,
    PwStdinOpt,
    QuietOpt,
    QuietProgress,
    RichProgress,
    TimeoutOpt,
    UserOpt,
    err_console,
    fail,
    load_settings,
    progress_display,
    read_password,
)
from hullscan.errors import HullscanError

if TYPE_CHECKING:
    from hullscan.findings import ScanReport
    from hullscan.ignorefile import IgnoreEntry
    from hullscan.pipeline import RescanChange, ScanRequest
    from hullscan.settings import Settings
    from hullscan.vex.model import VexStatement

GB = 1000**3
SCAN_FORMATS = ("table", "json", "sarif", "cyclonedx", "spdx", "html", "openvex")
ORDERS = ("severity", "risk")
SBOM_FORMATS = ("table", "json", "cyclonedx", "spdx")


def _format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint="--format")
    return value


def _request_base(image: str, platform: str | None, username: str | None, password_stdin: bool, insecure: bool,
                  ca_cert: Path | None, docker_config: Path | None, no_cache: bool, max_image_size: float,
                  max_layer_size: float, timeout: float | None) -> dict[str, Any]:
    from hullscan.model import Platform
    from hullscan.oci.source import Limits
    from hullscan.scan import RegistryOptions

    password = read_password(password_stdin)
    try:
        plat = Platform.parse(platform) if platform else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--platform") from None
    if timeout is not None and timeout <= 0:
        raise typer.BadParameter("must be more than 0 seconds", param_hint="--timeout")
    limits = Limits(max_image_size=int(max_image_size * GB), max_layer_size=int(max_layer_size * GB))
    return {"target": image, "platform": plat, "limits": limits, "use_cache": not no_cache, "timeout": timeout,
            "registry": RegistryOptions(username, password, insecure, ca_cert, docker_config, dict(os.environ))}


def run(request: ScanRequest, settings: Settings, quiet: bool) -> ScanReport:
    """Run the scan, with progress bars on a terminal."""
    from hullscan.pipeline import Engine

    err = Console(stderr=True)
    with Engine(settings) as engine:
        if quiet or not err.is_terminal:
            return engine.scan(request, QuietProgress())
        with progress_display(err) as bars:
            return engine.scan(request, RichProgress(bars, err))


def render(report: ScanReport, fmt: str, output: Path | None, show_packages: bool = False) -> None:
    from hullscan.report.formats import RenderOptions
    from hullscan.report.formats import render as draw

    if output is None:
        # A pipe has no width: 80 columns would fold every purl and path into a column.
        width = None if Console().is_terminal else 160
        draw(report, fmt, sys.stdout, RenderOptions(width=width, show_packages=show_packages))
        return
    with output.open("w", encoding="utf-8") as f:
        draw(report, fmt, f, RenderOptions(width=160, color=False, show_packages=show_packages))


def sbom(
    image: Annotated[str, typer.Argument(help="Registry reference, docker-archive tar, OCI layout or root fs")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(SBOM_FORMATS)}")]
    = "cyclonedx",
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """List the software in an image (CycloneDX by default)."""
    from hullscan.pipeline import ScanRequest

    fmt = _format(fmt, SBOM_FORMATS)
    settings = load_settings(cache_dir=cache_dir)
    request = ScanRequest(items=(), kind="sbom", remember=False, **_request_base(
        image, platform, username, password_stdin, insecure, ca_cert, docker_config, no_cache, max_image_size,
        max_layer_size, timeout))
    try:
        report = run(request, settings, quiet)
    except HullscanError as exc:
        raise fail(exc) from None
    render(report, fmt, output)


def scan(
    image: Annotated[str, typer.Argument(help="Registry reference, docker-archive tar, OCI layout or root fs")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(SCAN_FORMATS)}")]
    = "table",
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
    timeout: TimeoutOpt = None,
    scanners: Annotated[str, typer.Option("--scanners", help=f"Scan items, comma-separated: {', '.join(items.NAMES)}"
                                          "; or none")] = ",".join(items.DEFAULT),
    severity: Annotated[str, typer.Option("--severity", "-s", help="Report this severity and above "
                                          "(HIGH), or exactly a list (CRITICAL,LOW)")] = "UNKNOWN",
    ignore_unfixed: Annotated[bool, typer.Option("--ignore-unfixed", help="Leave out findings with no fix")] = False,
    exit_code: Annotated[int, typer.Option("--exit-code", help="Exit with this code when findings remain "
                                           "after --severity, --ignore-unfixed and the ignore file")] = 0,
    ignore_file: Annotated[Path | None, typer.Option("--ignore-file", help="Ignore file [default: "
                                                     ".hullscanignore when present]")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Vulnerability database [default: settings' db]")] = None,
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
    password_budget: Annotated[float | None, typer.Option(
        "--password-budget", min=0, help="Seconds for the wordlist stage of the weak-password check; the empty and "
        "user-name tests always run (0: only those) [default: 0.5]")] = None,
    show_weak_passwords: Annotated[bool, typer.Option("--show-weak-passwords", help="Print weak passwords "
                                                      "found (otherwise only user and algorithm)")] = False,
    licence_policy: Annotated[Path | None, typer.Option("--licence-policy", help="YAML licence policy")] = None,
    base_catalogue: Annotated[Path | None, typer.Option("--base-catalogue", help="Base image catalogue file "
                                                        "[default: settings' base_catalogue]")] = None,
    vex: Annotated[list[Path] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX document whose "
                                                   "not_affected/fixed statements suppress findings (repeatable; "
                                                   "the image's own /*.vex.json are read too)",
                                                   exists=True, dir_okay=False)] = None,
    sort: Annotated[str, typer.Option("--sort", help="Order of findings in the table and HTML: severity, or risk "
                                      "(known exploited first, then EPSS, then severity)")] = "severity",
) -> None:
    """Scan an image: its software and the vulnerabilities in it (a table by default)."""
    from hullscan.detect import ReportFilter, SeverityFilter
    from hullscan.items.baseline import BaselineOptions
    from hullscan.items.compliance import ComplianceOptions
    from hullscan.items.secret import SecretOptions
    from hullscan.items.vuln import VulnOptions
    from hullscan.malware.analyzer import MalwareOptions
    from hullscan.pipeline import ScanRequest

    fmt = _format(fmt, SCAN_FORMATS)
    if sort not in ORDERS:
        raise typer.BadParameter(f"{sort!r} is not one of {', '.join(ORDERS)}", param_hint="--sort")
    chosen = [w.strip() for w in scanners.split(",") if w.strip()]
    unknown = [w for w in items.unknown(chosen) if w != "none"]
    if unknown:
        raise typer.BadParameter(f"unknown scanner {', '.join(unknown)}; choose from {', '.join(items.NAMES)}",
                                 param_hint="--scanners")
    try:
        sev = SeverityFilter.parse(severity)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--severity") from None
    settings = load_settings(cache_dir=cache_dir, db=db, base_catalogue=base_catalogue)
    options = {
        "vuln": VulnOptions(ignore_unfixed=ignore_unfixed, update=not (offline or skip_db_update)),
        "secret": SecretOptions(secret_config),
        "malware": MalwareOptions(rule_dirs=malware_rules or [], hash_files=malware_hashes or [], clamd=clamd),
        "baseline": BaselineOptions(show_weak_passwords=show_weak_passwords, **(
            {} if password_budget is None else {"password_budget_seconds": password_budget})),
        "compliance": ComplianceOptions(licence_policy),
    }
    try:
        request = ScanRequest(items=tuple(w for w in chosen if w != "none"), options=options,
                              filters=ReportFilter(sev, _ignore_entries(ignore_file), _vex_statements(vex or [])),
                              list_files=list_files,
                              **_request_base(image, platform, username, password_stdin, insecure, ca_cert,
                                              docker_config, no_cache, max_image_size, max_layer_size, timeout))
        report = run(request, settings, quiet)
    except HullscanError as exc:
        raise fail(exc) from None
    report.order = sort
    render(report, fmt, output, list_packages)
    # Findings a VEX statement suppressed are not in report.vulnerabilities: they never set the exit code.
    if exit_code and (report.vulnerabilities or report.checks):
        raise typer.Exit(exit_code)


def _vex_statements(paths: list[Path]) -> list[VexStatement]:
    from hullscan.vex.parse import load_vex

    statements: list[VexStatement] = []
    for path in paths:
        statements.extend(load_vex(path, start=len(statements)).statements)
    return statements


def _ignore_entries(path: Path | None) -> list[IgnoreEntry]:
    from hullscan.ignorefile import load

    if path is None:
        default = Path(".hullscanignore")
        return load(default) if default.is_file() else []
    return load(path)


def rescan(
    images: Annotated[list[str] | None, typer.Argument(help="Stored scans to redo [default: all]")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Vulnerability database [default: settings' db]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the changes as JSON")] = False,
) -> None:
    """Re-evaluate stored scans against the current database, without downloading any layer.

    Reports, per image, the findings that are new and those that are gone since the last evaluation.
    """
    import dataclasses

    from hullscan.pipeline import Engine

    try:
        with Engine(load_settings(db=db), pool="never") as engine:
            changes = engine.rescan(images)
    except HullscanError as exc:
        raise fail(exc) from None
    if images and not changes:
        err_console().print("no stored scan matches; scan the image first with 'hullscan scan'", markup=False)
        raise typer.Exit(3)
    if json_out:
        sys.stdout.write(json.dumps([dataclasses.asdict(c) for c in changes], indent=2) + "\n")
        return
    print_rescan(changes, Console(highlight=False))


def print_rescan(changes: list[RescanChange], out: Console) -> None:
    """Per image: its findings now, then each new (+) and gone (-) one."""
    for c in changes:
        out.print(f"{c.image}: {c.total} findings, {len(c.new)} new, {len(c.gone)} gone", markup=False)
        for line in c.new:
            out.print(f"  + {line}", markup=False)
        for line in c.gone:
            out.print(f"  - {line}", markup=False)
