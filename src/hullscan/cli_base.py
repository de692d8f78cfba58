"""`hullscan base ...`: the catalogue of known base images used to identify an image's base.

    hullscan base add REF [--name NAME] [--platform P] [registry options] [--db PATH | --no-vulns]
    hullscan base list [--all] [--json]
    hullscan base remove REF

Every command takes --catalogue FILE (or HULLSCAN_BASE_CATALOGUE, or `base_catalogue` in the settings); the default is
<data dir>/base-catalogue.json. Besides these entries, every image hullscan has scanned counts as a
known image (`list --all` shows them too).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hullscan.checks.baseimage import BaseCatalogue, CatalogueEntry, CatalogueError, known_images
from hullscan.cli.common import fail, load_settings, read_password
from hullscan.errors import HullscanError
from hullscan.model import ImageFacts, Platform
from hullscan.scan import RegistryOptions
from hullscan.scanstore import ScanStore
from hullscan.settings import Settings
from hullscan.textsafe import clean

base_app = typer.Typer(help="Manage the catalogue of known base images.", no_args_is_help=True)

CatalogueOpt = Annotated[Path | None, typer.Option("--catalogue", help="Catalogue file [default: settings' "
                                                   "base_catalogue, <data dir>/base-catalogue.json]")]


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 3) -> typer.Exit:
    _err().print(f"error: {clean(message)}", markup=False)
    return typer.Exit(code)


def _settings(catalogue: Path | None, **more: Path | None) -> Settings:
    return load_settings(base_catalogue=catalogue, **more)


@base_app.command("add")
def add(
    image: Annotated[str, typer.Argument(help="The base image: registry reference, archive or OCI layout")],
    name: Annotated[str | None, typer.Option("--name", help="Record it under this reference (for a local "
                                                            "archive of an official image)")] = None,
    catalogue: CatalogueOpt = None,
    platform: Annotated[str | None, typer.Option(
        "--platform", help="os/arch or os/arch/variant to pick from an index")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", envvar="HULLSCAN_USERNAME",
                                                 help="Registry user")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the registry password from "
                                                 "stdin")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP and unverified TLS")] = False,
    ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="CA bundle for the registry")] = None,
    docker_config: Annotated[Path | None, typer.Option("--docker-config", help="Docker config.json")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Analyse every layer afresh")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="Vulnerability database used to "
                                            "count the base's findings [default: the usual one, if present]")] = None,
    no_vulns: Annotated[bool, typer.Option("--no-vulns", help="Do not count vulnerability findings")] = False,
) -> None:
    """Scan an image and add it to the catalogue (its layer chain, digest, creation date, findings)."""
    password = read_password(password_stdin)
    try:
        plat = Platform.parse(platform) if platform else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--platform") from None
    from hullscan.pipeline import ScanRequest, run_scan

    settings = _settings(catalogue, cache_dir=cache_dir, db=db)
    registry = RegistryOptions(username, password, insecure, ca_cert, docker_config, dict(os.environ))
    request = ScanRequest(image, items=(), kind="sbom", remember=False, platform=plat, use_cache=not no_cache,
                          registry=registry)
    err = _err()
    try:
        facts = run_scan(request, settings).facts
    except HullscanError as exc:
        raise fail(exc) from None
    if not facts.layers or not all(layer.diff_id for layer in facts.layers):
        raise _fail(f"{image} has no layer chain (a root filesystem cannot be a base image)", 2)
    findings: int | None = None
    built = ""
    if not no_vulns:
        findings, built = _count_findings(facts, settings.db_path, err)
    entry = CatalogueEntry.from_facts(facts, name=name, findings=findings, database_built_at=built)
    try:
        BaseCatalogue(settings.catalogue_path).add(entry)
    except (CatalogueError, OSError) as exc:
        raise _fail(str(exc)) from None
    vulns = f", {findings} vulnerabilities" if findings is not None else ""
    Console(highlight=False).print(f"added {entry.reference} ({len(entry.diff_ids)} layers{vulns})", markup=False)


def _count_findings(facts: ImageFacts, path: Path, err: Console) -> tuple[int | None, str]:
    """Vulnerability findings for the catalogue entry, with the database as it is (never downloaded here)."""
    from hullscan.detect import match
    from hullscan.vulndb.store import open_default

    if not path.exists():
        err.print(f"note: no vulnerability database at {path}; the entry records no findings count "
                  "(run 'hullscan db update' and add it again to compare bases)", markup=False)
        return None, ""
    try:
        with open_default(path) as store:
            report = match(facts, store)
    except HullscanError as exc:
        err.print(f"warning: findings not counted: {exc.detail}", markup=False)
        return None, ""
    return len(report.vulnerabilities), report.database.built_at if report.database else ""


@base_app.command("list")
def list_entries(
    catalogue: CatalogueOpt = None,
    all_images: Annotated[bool, typer.Option("--all", help="Include every stored scan too")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the catalogue (and, with --all, the stored scans that also serve as known images)."""
    settings = _settings(catalogue)
    try:
        entries = known_images(BaseCatalogue(settings.catalogue_path), ScanStore(settings.scans_dir) if all_images
                               else None)
    except CatalogueError as exc:
        raise _fail(str(exc)) from None
    if json_out:
        from dataclasses import asdict

        sys.stdout.write(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
        return
    if not entries:
        Console(highlight=False).print("the base catalogue is empty; add images with 'hullscan base add REF'",
                                       markup=False)
        return
    table = Table(show_lines=False)
    for col in ("reference", "layers", "created", "vulnerabilities", "digest", "origin"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.reference, str(len(e.diff_ids)), e.created[:10] or "-",
                      "-" if e.findings is None else str(e.findings), (e.digest or e.config_digest)[:19] or "-",
                      e.origin)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(width=160, highlight=False)
    console.print(table, markup=False)


@base_app.command("remove")
def remove(
    image: Annotated[str, typer.Argument(help="Reference (or manifest digest) of the entry to remove")],
    catalogue: CatalogueOpt = None,
) -> None:
    """Remove an image from the catalogue."""
    try:
        gone = BaseCatalogue(_settings(catalogue).catalogue_path).remove(image)
    except (CatalogueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not gone:
        raise _fail(f"{image} is not in the base catalogue ('hullscan base list' shows it)", 1)
    for e in gone:
        Console(highlight=False).print(f"removed {e.reference}", markup=False)
