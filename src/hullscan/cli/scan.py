"""`hullscan scan` (alias `image`), `sbom` and `rescan`: options in, one `Engine` call, a renderer out.

Everything a user can get wrong (format, scanners, severity, output path, ignore file, gate options) is checked
before the image is read: a mistake costs a second, never a scan.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hullscan import items
from hullscan.cli.options import (
    CacheDirOpt,
    CaOpt,
    DockerCfgOpt,
    ImageArg,
    InsecureOpt,
    MaxImageOpt,
    MaxLayerOpt,
    NoCacheOpt,
    OutputOpt,
    PlatformOpt,
    PwStdinOpt,
    QuietOpt,
    TimeoutOpt,
    UserOpt,
    examples,
)

if TYPE_CHECKING:
    from rich.console import Console

    from hullscan.findings import ScanReport
    from hullscan.ignorefile import IgnoreEntry
    from hullscan.pipeline import RescanChange, ScanRequest
    from hullscan.settings import Settings
    from hullscan.vex.model import VexStatement

VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show routine warnings (e.g. HARDLINK_SKIPPED) "
                                          "and each finding's description and fix in the table")]
GB = 1000**3
SCAN_FORMATS = ("table", "json", "sarif", "cyclonedx", "spdx-json", "spdx", "html", "openvex")
ORDERS = ("severity", "risk")
SBOM_FORMATS = ("table", "json", "cyclonedx", "spdx-json", "spdx")
PIPE_WIDTH = 160  # a table written to a pipe or a file when COLUMNS does not say how wide
DEFAULT_IGNORE_FILES = (".hullscanignore", ".hullscanignore.yaml", ".hullscanignore.yml")

SCAN_EXAMPLES = examples(
    "hullscan scan alpine:3.20",
    "hullscan scan -u ci --password-stdin registry.example.com/team/app:1.0",
    "hullscan scan --scanners vuln,secret --severity HIGH app:1.0",
    "hullscan scan -f sarif -o report.sarif app:1.0",
    "hullscan scan oci:./layout:1.0 --ignore-file ignore.yaml",
    "",
    "# CI gates: any item's finding of HIGH or more fails the job (exit 1)",
    "hullscan scan --severity HIGH --exit-code 1 app:1.0",
    "# only vulnerabilities and secrets trip it; so do unchecked packages",
    "hullscan scan --severity HIGH --exit-code 1 \\",
    "    --exit-code-scanners vuln,secret --fail-on-unchecked app:1.0",
)
SBOM_EXAMPLES = examples(
    "hullscan sbom alpine:3.20 -o sbom.cdx.json",
    "hullscan sbom -f spdx-json -o sbom.spdx.json docker-archive:app.tar",
    "hullscan sbom -f spdx app:1.0          # SPDX tag-value",
    "hullscan sbom -f table dir:./rootfs",
)


def _format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint="--format")
    return value


def _check_output(output: Path | None) -> None:
    """The report's file must be writable before the scan starts, not after it."""
    if output is None:
        return
    where = output.absolute()
    if where.is_dir():
        raise typer.BadParameter(f"{output} is a directory; name the report file", param_hint="--output")
    if not where.parent.is_dir():
        raise typer.BadParameter(f"cannot write {output}: the directory {where.parent} does not exist",
                                 param_hint="--output")
    if not os.access(where.parent, os.W_OK) or (where.exists() and not os.access(where, os.W_OK)):
        raise typer.BadParameter(f"cannot write {output}: permission denied", param_hint="--output")


def _request_base(image: str, platform: str | None, username: str | None, password_stdin: bool, insecure: bool,
                  ca_cert: Path | None, docker_config: Path | None, no_cache: bool, max_image_size: float,
                  max_layer_size: float, timeout: float | None) -> dict[str, Any]:
    from hullscan.cli.common import read_password
    from hullscan.model import Platform
    from hullscan.oci.source import Limits
    from hullscan.scan import RegistryOptions

    try:
        plat = Platform.parse(platform) if platform else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--platform") from None
    if timeout is not None and timeout <= 0:
        raise typer.BadParameter("must be more than 0 seconds", param_hint="--timeout")
    password = read_password(password_stdin)
    limits = Limits(max_image_size=int(max_image_size * GB), max_layer_size=int(max_layer_size * GB))
    return {"target": image, "platform": plat, "limits": limits, "use_cache": not no_cache, "timeout": timeout,
            "registry": RegistryOptions(username, password, insecure, ca_cert, docker_config, dict(os.environ))}


def run(request: ScanRequest, settings: Settings, quiet: bool) -> ScanReport:
    """Run the scan, with progress bars on a terminal; Ctrl-C or SIGTERM stop it at its next safe point and end
    the command with 130 or 143 (the scan removes its work directory on the way out)."""
    from hullscan import heap
    from hullscan.cancel import CancelToken
    from hullscan.cli.common import QuietProgress, RichProgress, progress_display
    from hullscan.cli.interrupt import stop_on_signals
    from hullscan.errors import ScanStopped
    from hullscan.pipeline import Engine

    heap.settle()  # one scan, then the process ends: what it has loaded lives to the end anyway
    token = CancelToken()
    with stop_on_signals(token) as signals:
        try:
            with Engine(settings) as engine:
                if quiet:
                    return engine.scan(request, QuietProgress(), token)
                from rich.console import Console  # only for bars: a quiet scan to a pipe never loads Rich

                err = Console(stderr=True)
                if not err.is_terminal:
                    return engine.scan(request, QuietProgress(), token)
                with progress_display(err) as bars:
                    return engine.scan(request, RichProgress(bars, err), token)
        except ScanStopped:
            if signals.signum is None:
                raise
            raise typer.Exit(signals.exit_code) from None


def _platform_check(report: ScanReport, wanted: str | None) -> None:
    """A single-platform image is scanned whatever --platform says (there is nothing to choose): say so when the
    two differ, so a report for the wrong architecture is not taken for the asked one."""
    from hullscan.cli.common import print_warning
    from hullscan.model import Platform

    got = report.facts.platform
    if not wanted or not got.architecture:
        return
    asked = Platform.parse(wanted)
    if (asked.os, asked.architecture) != (got.os, got.architecture) or (asked.variant and asked.variant != got.variant):
        print_warning(f"--platform {wanted}: the image is not a multi-platform index but a single {got} image; "
                      f"this report is about {got}")


def table_width(to_file: bool) -> int | None:
    """Columns for a table: $COLUMNS when set (in a pipe too), else the terminal's, else PIPE_WIDTH (a pipe or a
    file has no width; 80 would squeeze every purl and path)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdecimal() and int(columns) > 0:
        return int(columns)
    if not to_file and sys.stdout.isatty():
        return None
    return PIPE_WIDTH


def render(report: ScanReport, fmt: str, output: Path | None, show_packages: bool = False,
           verbose: bool = False) -> None:
    from hullscan.errors import OptionError
    from hullscan.report.formats import RenderOptions
    from hullscan.report.formats import render as draw

    options = RenderOptions(width=table_width(output is not None), show_packages=show_packages, verbose=verbose)
    if output is None:
        draw(report, fmt, sys.stdout, options)
        return
    try:
        with output.open("w", encoding="utf-8") as f:
            draw(report, fmt, f, RenderOptions(width=options.width, color=False, show_packages=show_packages,
                                               verbose=verbose))
    except OSError as exc:
        raise OptionError(f"could not write the report to {output}: {exc.strerror}") from None


def sbom(
    image: ImageArg,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT",
                                     help=f"Output format: {', '.join(SBOM_FORMATS)} (spdx is SPDX tag-value, "
                                     "spdx-json SPDX JSON)")] = "cyclonedx",
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
    timeout: TimeoutOpt = None, verbose: VerboseOpt = False,
) -> None:
    """List the software in an image (CycloneDX JSON by default)."""
    from hullscan.cli.common import fail, load_settings
    from hullscan.errors import HullscanError
    from hullscan.pipeline import ScanRequest

    fmt = _format(fmt, SBOM_FORMATS)
    _check_output(output)
    settings = load_settings(cache_dir=cache_dir)
    request = ScanRequest(items=(), kind="sbom", remember=False, **_request_base(
        image, platform, username, password_stdin, insecure, ca_cert, docker_config, no_cache, max_image_size,
        max_layer_size, timeout))
    try:
        report = run(request, settings, quiet)
        _platform_check(report, platform)
        render(report, fmt, output, verbose=verbose)
    except HullscanError as exc:
        raise fail(exc) from None


def _names(text: str, option: str, allowed: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[str]:
    chosen = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in allowed and w not in extra]
    if unknown:
        raise typer.BadParameter(f"unknown scanner {', '.join(unknown)}; choose from {', '.join(allowed)}",
                                 param_hint=option)
    return chosen


def scan(
    image: ImageArg,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT",
                                     help=f"Output format: {', '.join(SCAN_FORMATS)} (spdx is SPDX tag-value, "
                                     "spdx-json SPDX JSON; both list the software only)")] = "table",
    output: OutputOpt = None, platform: PlatformOpt = None, username: UserOpt = None,
    password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False, ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None, cache_dir: CacheDirOpt = None, no_cache: NoCacheOpt = False,
    max_image_size: MaxImageOpt = 50.0, max_layer_size: MaxLayerOpt = 10.0, quiet: QuietOpt = False,
    timeout: TimeoutOpt = None,
    scanners: Annotated[str, typer.Option("--scanners", metavar="ITEMS", help=f"Scan items to run, "
                                          f"comma-separated: {', '.join(items.NAMES)}; or none (the software "
                                          "list alone)")] = ",".join(items.DEFAULT),
    severity: Annotated[str, typer.Option("--severity", "-s", metavar="LEVELS", help="Report this severity and "
                                          "above (HIGH), or exactly a list (CRITICAL,LOW); applies to every "
                                          "item")] = "UNKNOWN",
    ignore_unfixed: Annotated[bool, typer.Option("--ignore-unfixed", help="Leave out vulnerabilities with no "
                                                 "fix")] = False,
    exit_code: Annotated[int, typer.Option("--exit-code", metavar="CODE", help="Exit with this code when findings "
                                           "remain after --severity, --ignore-unfixed and the ignore file. Every "
                                           "scan item's findings count (vulnerabilities, secrets, malware, file, "
                                           "baseline, compliance, base), as with Trivy; narrow it with "
                                           "--exit-code-scanners")] = 0,
    exit_code_scanners: Annotated[str | None, typer.Option("--exit-code-scanners", metavar="ITEMS",
                                                           help="Only findings of these scan items trip "
                                                           "--exit-code (e.g. vuln,secret) [default: every item "
                                                           "that ran]")] = None,
    fail_on_unchecked: Annotated[bool, typer.Option("--fail-on-unchecked", help="Also trip the gate when "
                                                    "packages could not be checked for vulnerabilities (no "
                                                    "data for their OS or ecosystem); exits 1 unless "
                                                    "--exit-code says otherwise")] = False,
    ignore_file: Annotated[Path | None, typer.Option("--ignore-file", metavar="FILE", help="Findings to leave "
                                                     "out: ids of any scan item, optionally by path and with an "
                                                     "expiry (see the README) [default: .hullscanignore or "
                                                     ".hullscanignore.yaml when present]")] = None,
    db: Annotated[Path | None, typer.Option("--db", metavar="FILE", help="Vulnerability database [default: "
                                            "settings' db]")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Make no network request for data")] = False,
    skip_db_update: Annotated[bool, typer.Option("--skip-db-update", help="Use the database as it is")] = False,
    list_packages: Annotated[bool, typer.Option("--list-packages", help="Show the software list in the table "
                                                "too")] = False,
    verbose: VerboseOpt = False,
    secret_config: Annotated[Path | None, typer.Option("--secret-config", metavar="FILE", help="YAML file adding, "
                                                       "disabling or allowing secret rules")] = None,
    malware_rules: Annotated[list[Path] | None, typer.Option("--malware-rules", metavar="DIR", help="Directory "
                                                             "of YARA rules")] = None,
    malware_hashes: Annotated[list[Path] | None, typer.Option("--malware-hashes", metavar="FILE", help="SHA-256 "
                                                              "blocklist file")] = None,
    clamd: Annotated[str | None, typer.Option("--clamd", metavar="ADDRESS", help="clamd socket path or "
                                              "host:port")] = None,
    list_files: Annotated[bool, typer.Option("--list-files", help="Include the file inventory, with "
                                             "sha256")] = False,
    password_budget: Annotated[float | None, typer.Option(
        "--password-budget", min=0, metavar="SECONDS", help="Seconds for the wordlist stage of the weak-password "
        "check; the empty and user-name tests always run (0: only those) [default: 0.5]")] = None,
    show_weak_passwords: Annotated[bool, typer.Option("--show-weak-passwords", help="Print weak passwords "
                                                      "found (otherwise only user and algorithm)")] = False,
    licence_policy: Annotated[Path | None, typer.Option("--licence-policy", metavar="FILE", help="YAML licence "
                                                        "policy")] = None,
    base_catalogue: Annotated[Path | None, typer.Option("--base-catalogue", metavar="FILE", help="Base image "
                                                        "catalogue file [default: settings' "
                                                        "base_catalogue]")] = None,
    vex: Annotated[list[Path] | None, typer.Option("--vex", metavar="FILE", help="OpenVEX or CycloneDX VEX "
                                                   "document whose not_affected/fixed statements suppress findings "
                                                   "(the image's own /*.vex.json are read too)",
                                                   exists=True, dir_okay=False)] = None,
    sort: Annotated[str, typer.Option("--sort", metavar="ORDER", help="Order of findings in the table and HTML: "
                                      "severity, or risk (known exploited first, then EPSS, then "
                                      "severity)")] = "severity",
) -> None:
    """Scan an image: its software, the vulnerabilities in it, secrets, malware, risky files and settings,
    licences and its base image (a table by default).

    Exit codes: 0 done; 1 (or --exit-code) the gate tripped; 2 a usage mistake; 3 the image could not be
    scanned (the message names the cause); 4 an internal error; 130/143 stopped by Ctrl-C/SIGTERM.
    """
    from hullscan.cli.common import fail, load_settings
    from hullscan.detect import ReportFilter, SeverityFilter
    from hullscan.errors import HullscanError
    from hullscan.items.baseline import BaselineOptions
    from hullscan.items.compliance import ComplianceOptions
    from hullscan.items.secret import SecretOptions
    from hullscan.items.vuln import VulnOptions
    from hullscan.malware.analyzer import MalwareOptions
    from hullscan.pipeline import ScanRequest

    fmt = _format(fmt, SCAN_FORMATS)
    if sort not in ORDERS:
        raise typer.BadParameter(f"{sort!r} is not one of {', '.join(ORDERS)}", param_hint="--sort")
    chosen = [w for w in _names(scanners, "--scanners", items.NAMES, ("none",)) if w != "none"]
    gate = _gate_items(exit_code_scanners, chosen, exit_code, fail_on_unchecked)
    try:
        sev = SeverityFilter.parse(severity)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--severity") from None
    _check_output(output)
    try:
        ignore = _ignore_entries(ignore_file)
        statements = _vex_statements(vex or [])
    except HullscanError as exc:
        raise fail(exc) from None
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
        request = ScanRequest(items=tuple(chosen), options=options, filters=ReportFilter(sev, ignore, statements),
                              list_files=list_files,
                              **_request_base(image, platform, username, password_stdin, insecure, ca_cert,
                                              docker_config, no_cache, max_image_size, max_layer_size, timeout))
        report = run(request, settings, quiet)
        _platform_check(report, platform)
        report.order = sort
        render(report, fmt, output, list_packages, verbose)
    except HullscanError as exc:
        raise fail(exc) from None
    code = gate_code(report, gate, exit_code, fail_on_unchecked)
    if code:
        raise typer.Exit(code)


def _gate_items(text: str | None, chosen: list[str], exit_code: int, fail_on_unchecked: bool) -> list[str]:
    """The items whose findings trip --exit-code: those named (each must run), else every item that runs."""
    if text is None:
        return chosen
    if not exit_code and not fail_on_unchecked:
        raise typer.BadParameter("it narrows --exit-code, which is not given (add --exit-code 1)",
                                 param_hint="--exit-code-scanners")
    named = _names(text, "--exit-code-scanners", items.NAMES)
    idle = [n for n in named if n not in chosen]
    if idle:
        raise typer.BadParameter(f"{', '.join(idle)} does not run in this scan (--scanners {','.join(chosen)})",
                                 param_hint="--exit-code-scanners")
    return named


def gate_code(report: ScanReport, gate: list[str], exit_code: int, fail_on_unchecked: bool) -> int:
    """The exit code the findings (of the gated items) and the coverage call for; 0 when the gate holds. Findings
    a VEX statement suppressed or the ignore file left out are not in the report's lists: they never trip it."""
    tripped = bool(exit_code) and (("vuln" in gate and bool(report.vulnerabilities))
                                   or any(c.item in gate for c in report.checks))
    if fail_on_unchecked and report.unchecked:
        tripped = True
    if not tripped:
        return 0
    return exit_code or 1


def _vex_statements(paths: list[Path]) -> list[VexStatement]:
    from hullscan.vex.parse import load_vex

    statements: list[VexStatement] = []
    for path in paths:
        statements.extend(load_vex(path, start=len(statements)).statements)
    return statements


def _ignore_entries(path: Path | None) -> list[IgnoreEntry]:
    from hullscan.ignorefile import load

    if path is None:
        default = next((Path(name) for name in DEFAULT_IGNORE_FILES if Path(name).is_file()), None)
        return load(default) if default is not None else []
    return load(path)


def rescan(
    images: Annotated[list[str] | None, typer.Argument(metavar="[IMAGE]...", help="Stored scans to redo "
                                                       "[default: all]", show_default=False)] = None,
    db: Annotated[Path | None, typer.Option("--db", metavar="FILE", help="Vulnerability database [default: "
                                            "settings' db]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the changes as JSON")] = False,
) -> None:
    """Re-evaluate stored scans against the current database, without downloading any layer.

    Reports, per image, the findings that are new and those that are gone since the last evaluation.
    """
    import dataclasses

    from rich.console import Console

    from hullscan.cli.common import err_console, fail, load_settings
    from hullscan.errors import HullscanError
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
