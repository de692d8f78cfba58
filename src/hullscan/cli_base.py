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
from typing import TYPE_CHECKING, Annotated

import typer

from hullscan.cli.options import (
    CacheDirOpt,
    CaOpt,
    Command,
    DockerCfgOpt,
    InsecureOpt,
    NoCacheOpt,
    PlatformOpt,
    PwStdinOpt,
    UserOpt,
    examples,
    new_app,
)

if TYPE_CHECKING:  # loaded when a command runs, not for `--help`
    from rich.console import Console

    from hullscan.model import ImageFacts
    from hullscan.settings import Settings

base_app = new_app("Manage the catalogue of known base images.")

CatalogueOpt = Annotated[Path | None, typer.Option("--catalogue", metavar="FILE", help="Catalogue file [default: "
                                                   "settings' base_catalogue, <data dir>/base-catalogue.json]")]


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 3) -> typer.Exit:
    from hullscan.textsafe import clean

    _err().print(f"error: {clean(message)}", markup=False)
    return typer.Exit(code)


def _settings(catalogue: Path | None, **more: Path | None) -> Settings:
    from hullscan.cli.common import load_settings

    return load_settings(base_catalogue=catalogue, **more)


def _print(message: str) -> None:
    from hullscan.textsafe import clean

    print(clean(message))


@base_app.command("add", cls=Command, epilog=examples(
    "hullscan base add debian:12",
    "hullscan base add debian-12.tar --name docker.io/library/debian:12"))
def add(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The base image: registry reference, archive or OCI "
                                         "layout")],
    name: Annotated[str | None, typer.Option("--name", metavar="REF", help="Record it under this reference (for "
                                             "a local archive of an official image)")] = None,
    catalogue: CatalogueOpt = None,
    platform: PlatformOpt = None,
    username: UserOpt = None,
    password_stdin: PwStdinOpt = False,
    insecure: InsecureOpt = False,
    ca_cert: CaOpt = None,
    docker_config: DockerCfgOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    db: Annotated[Path | None, typer.Option("--db", metavar="FILE", help="Vulnerability database used to count the "
                                            "base's findings [default: the usual one, if present]")] = None,
    no_vulns: Annotated[bool, typer.Option("--no-vulns", help="Do not count vulnerability findings")] = False,
) -> None:
    """Scan an image and add it to the catalogue (its layer chain, digest, creation date, findings)."""
    from hullscan.checks.baseimage import BaseCatalogue, CatalogueEntry, CatalogueError
    from hullscan.cli.common import fail, read_password
    from hullscan.errors import HullscanError
    from hullscan.model import Platform
    from hullscan.scan import RegistryOptions

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
    _print(f"added {entry.reference} ({len(entry.diff_ids)} layers{vulns})")


def _count_findings(facts: ImageFacts, path: Path, err: Console) -> tuple[int | None, str]:
    """Vulnerability findings for the catalogue entry, with the database as it is (never downloaded here)."""
    from hullscan.detect import match
    from hullscan.errors import HullscanError
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


@base_app.command("list", cls=Command)
def list_entries(
    catalogue: CatalogueOpt = None,
    all_images: Annotated[bool, typer.Option("--all", help="Include every stored scan too")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the catalogue (and, with --all, the stored scans that also serve as known images)."""
    from rich.console import Console
    from rich.text import Text

    from hullscan.checks.baseimage import BaseCatalogue, CatalogueError, known_images
    from hullscan.cli.scan import table_width
    from hullscan.report.fit import Column, Row, print_lines, table_lines
    from hullscan.scanstore import ScanStore
    from hullscan.textsafe import clean

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
        _print("the base catalogue is empty; add images with 'hullscan base add REF'")
        return
    columns = (Column("Reference"), Column("Layers", rank=2, right=True), Column("Created", rank=3),
               Column("Vulnerabilities", rank=2, right=True), Column("Digest", rank=1), Column("Origin", rank=3))
    rows = [Row([Text(clean(e.reference)), Text(str(len(e.diff_ids))), Text(clean(e.created[:10]) or "-"),
                 Text("-" if e.findings is None else str(e.findings)), Text(_short(e.digest or e.config_digest)),
                 Text(clean(e.origin))]) for e in entries]
    console = Console(highlight=False, width=table_width(to_file=False))
    print_lines(console, table_lines(columns, rows, console.width))


def _short(digest: str) -> str:
    """A digest shortened visibly (`base list --json` has it whole)."""
    return f"{digest[:19]}…" if len(digest) > 19 else digest or "-"


@base_app.command("remove", cls=Command)
def remove(
    image: Annotated[str, typer.Argument(metavar="REF", help="Reference (or manifest digest) of the entry to "
                                         "remove")],
    catalogue: CatalogueOpt = None,
) -> None:
    """Remove an image from the catalogue."""
    from hullscan.checks.baseimage import BaseCatalogue, CatalogueError

    try:
        gone = BaseCatalogue(_settings(catalogue).catalogue_path).remove(image)
    except (CatalogueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not gone:
        raise _fail(f"{image} is not in the base catalogue ('hullscan base list' shows it)", 1)
    for e in gone:
        _print(f"removed {e.reference}")
