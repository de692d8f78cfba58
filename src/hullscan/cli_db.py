"""`hullscan db ...`: get, inspect and carry the vulnerability database.

    hullscan db update [--base-url URL] [--ecosystem NAME]... [--kev FILE] [--force] [--no-enrichment] [--rescan]
    hullscan db import PATH... [--kev FILE]
    hullscan db status [--strict] [--json]
    hullscan db push REF [--username U --password-stdin] [--insecure] [--ca-cert FILE]
    hullscan db pull REF [same]

Every command takes --db PATH (or HULLSCAN_DB, or `db` in the settings); the default is <data dir>/db/hullscan.db.
Failures print the catalogue cause and its solution and exit 3; `status --strict` exits 1 for a stale
database.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hullscan.cli.options import (
    CaOpt,
    Command,
    DockerCfgOpt,
    InsecureOpt,
    PwStdinOpt,
    QuietOpt,
    UserOpt,
    examples,
    new_app,
)
from hullscan.errors import DatabaseError, HullscanError

if TYPE_CHECKING:  # the commands load Rich and the database code when they run, not when `--help` is asked
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from hullscan.vulndb.osv import ImportStats

db_app = new_app("Manage the vulnerability database (OSV data in a local SQLite file).")

DbOpt = Annotated[Path | None, typer.Option("--db", metavar="FILE", help="Database file [default: settings' db, "
                                            "<data dir>/db/hullscan.db]")]
KevOpt = Annotated[Path | None, typer.Option("--kev", metavar="FILE", exists=True, dir_okay=False,
                                             help="CISA KEV catalogue (JSON) marking exploited CVEs")]

F = TypeVar("F", bound=Callable[..., Any])


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _catalogue_errors(func: F) -> F:
    """Render catalogue errors with their solution and exit with the cause's code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HullscanError as exc:
            from hullscan.cli.common import fail

            raise fail(exc) from None

    return wrapper  # type: ignore[return-value]


def _db_path(db: Path | None) -> Path:
    from hullscan.cli.common import load_settings

    return load_settings(db=db).db_path.absolute()


def _ago(when: str, now: datetime | None = None) -> str:
    from hullscan.vulndb.store import parse_time

    t = parse_time(when)
    if t is None:
        return "unknown"
    seconds = ((now or datetime.now(UTC)) - t).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _report_problems(stats: ImportStats, console: Console, limit: int = 10) -> None:
    from hullscan.cli.common import print_warning

    if stats.malformed:
        print_warning(f"{stats.malformed:,} malformed record(s) skipped:", console)
        for p in stats.problems[:limit]:
            console.print(f"  {p}", markup=False)
        if stats.malformed > limit:
            console.print(f"  ... and {stats.malformed - limit:,} more (`hullscan db status --json` lists up to "
                          f"{len(stats.problems)})", markup=False)


def _summary(stats: ImportStats, counts: dict[str, int], path: Path, size: int, seconds: float) -> str:
    by = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    skipped = f"; {stats.git_ranges:,} GIT ranges skipped" if stats.git_ranges else ""
    return (f"built {path} ({size / 1e6:.1f} MB) in {seconds:.1f}s from {stats.records:,} records; advisories per "
            f"ecosystem: {by}; {stats.withdrawn:,} withdrawn (kept, never matched){skipped}")


class _RichDownloads:
    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.tasks: dict[str, TaskID] = {}

    def started(self, ecosystem: str, total: int | None) -> None:
        self.tasks[ecosystem] = self.p.add_task(ecosystem, total=total)

    def advanced(self, ecosystem: str, received: int) -> None:
        self.p.update(self.tasks[ecosystem], completed=received)

    def finished(self, ecosystem: str, status: str) -> None:
        task = self.tasks.get(ecosystem)
        if task is None:
            task = self.tasks[ecosystem] = self.p.add_task(ecosystem, total=1)
        self.p.update(task, completed=self.p.tasks[task].total or 1, description=f"{ecosystem} ({status})")


def _refresh_eol(err: Console) -> None:
    """The end-of-life table rides along with data updates (from the host's distro-info, offline)."""
    from hullscan.checks.eol import EolDataError, refresh
    from hullscan.cli.common import load_settings, print_warning

    try:
        refresh(load_settings().data_dir)
    except (EolDataError, OSError) as exc:
        print_warning(f"the end-of-life table was not refreshed: {exc}", err)


@db_app.command("update", cls=Command, epilog=examples(
    "hullscan db update",
    "hullscan db update --ecosystem Debian --ecosystem PyPI",
    "hullscan db update --base-url https://osv.example/   # a copy of the bucket",
    "hullscan db update --rescan         # then re-evaluate the stored scans"))
@_catalogue_errors
def update_cmd(
    db: DbOpt = None,
    base_url: Annotated[str | None, typer.Option("--base-url", metavar="URL", help="Where <Ecosystem>/all.zip, "
                                                 "modified_id.csv and <ID>.json files are served [default: "
                                                 "HULLSCAN_OSV_URL, else OSV's bucket]")] = None,
    ecosystem: Annotated[list[str] | None, typer.Option("--ecosystem", "-e", metavar="NAME", help="OSV ecosystem "
                                                        "to download [default: every one hullscan "
                                                        "detects]")] = None,
    kev: KevOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild from the all.zip files even when an incremental "
                                        "update would do")] = False,
    no_enrichment: Annotated[bool, typer.Option("--no-enrichment", help="Fetch OSV data only (no CVE records, "
                                                "NVD, EPSS or KEV)")] = False,
    rescan: Annotated[bool, typer.Option("--rescan", help="Then re-evaluate the stored scans and show new and "
                                         "fixed findings per image")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Bring the database up to date: only what changed since the last update is fetched (OSV's modified_id.csv,
    conditional requests), applied atomically; CVE severity data, EPSS and KEV come along (HULLSCAN_CVE_URL,
    HULLSCAN_NVD_URL, HULLSCAN_EPSS_URL, HULLSCAN_KEV_URL; an empty value turns one off)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from hullscan.cli.common import load_settings, print_warning
    from hullscan.vulndb.sources import DataSources
    from hullscan.vulndb.update import DEFAULT_ECOSYSTEMS, update_database

    path = _db_path(db)
    err = _err()
    sources = DataSources.from_settings(load_settings(db=db))
    osv_url = base_url or sources.osv
    enrichment = None if no_enrichment else sources
    ecosystems = ecosystem or list(DEFAULT_ECOSYSTEMS)
    if quiet or not err.is_terminal:
        result = update_database(path, base_url=osv_url, ecosystems=ecosystems, kev_path=kev, force=force,
                                 sources=enrichment)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=err, transient=True) as progress:

            def phase(name: str) -> None:
                progress.add_task(f"{name} the database", total=None)

            result = update_database(path, base_url=osv_url, ecosystems=ecosystems, kev_path=kev, force=force,
                                     progress=_RichDownloads(progress), on_phase=phase, sources=enrichment)
    for warning in result.warnings:
        print_warning(warning, err)
    _refresh_eol(err)
    out = _out()
    c = result.changes
    counts = (f"{c.added:,} added, {c.changed:,} changed, {c.withdrawn:,} withdrawn"
              + (f", {c.removed:,} removed" if c.removed else ""))
    fetched = f"{result.bytes_downloaded / 1e6:.2f} MB downloaded"
    if result.build is not None:
        _report_problems(result.build.stats, err)
        out.print(f"full rebuild ({fetched}): {counts}; "
                  + _summary(result.build.stats, result.build.info.counts, path, result.build.size,
                             result.build.seconds), markup=False)
    elif result.mode == "incremental":
        out.print(f"incremental update of {path} ({fetched}): {counts}", markup=False)
    else:
        out.print(f"no advisory changed ({fetched}); {path} is current (updated_at refreshed)", markup=False)
    if result.enriched is not None:
        e = result.enriched
        out.print(f"enrichment: {e.cve_records:,} CVE records ({e.with_metrics:,} with a metric), {e.epss:,} EPSS "
                  f"scores, {e.kev:,} KEV entries", markup=False)
    if rescan:
        _rescan(db, out)


def _rescan(db: Path | None, out: Console) -> None:
    from hullscan.cli.common import load_settings
    from hullscan.cli.scan import print_rescan
    from hullscan.pipeline import Engine

    with Engine(load_settings(db=db), pool="never") as engine:
        changes = engine.rescan()
    if not changes:
        out.print("no stored scans to re-evaluate", markup=False)
    print_rescan(changes, out)


@db_app.command("import", cls=Command, epilog=examples(
    "hullscan db import Debian-all.zip PyPI-all.zip",
    "hullscan db import ./osv/   # a directory of all.zip or OSV JSON files",
    "hullscan db import epss_scores-2025-01-01.csv   # enrichment of the database"))
@_catalogue_errors
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(
        metavar="PATH...", exists=True,
        help="OSV all.zip files, directories of JSON (or zip) files, or JSON files; CVE JSON 5 records (a directory, "
             "flat or as cves/YYYY/NNxxx/, or a zip), NVD 2.0 JSON, or an EPSS CSV: added as enrichment")],
    db: DbOpt = None,
    kev: KevOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build the database offline from local OSV data (replaces the current database atomically), or add CVE
    severity data, EPSS scores and the KEV catalogue to it."""
    from hullscan.vulndb.intake import import_paths

    path = _db_path(db)
    err = _err()
    absolute = [p.absolute() for p in paths]
    if quiet or not err.is_terminal:
        outcome = import_paths(path, absolute, kev_path=kev)
    else:
        with err.status(f"importing into {path}"):
            outcome = import_paths(path, absolute, kev_path=kev)
    out = _out()
    if outcome.build is not None:
        result = outcome.build
        _report_problems(result.stats, err)
        out.print(_summary(result.stats, result.info.counts, path, result.size, result.seconds), markup=False)
    if outcome.enrich is not None:
        e, cs = outcome.enrich, outcome.cve_stats
        from hullscan.cli.common import print_warning

        for problem in cs.problems[:10]:
            print_warning(f"skipped {problem}", err)  # literally: the problem quotes the file
        parts = []
        if cs.files or e.cve_records:
            parts.append(f"{e.cve_records:,} CVE records ({e.with_metrics:,} with a severity metric, "
                         f"{cs.rejected:,} rejected, {cs.skipped:,} files skipped)")
        if outcome.epss is not None:
            parts.append(f"EPSS {outcome.epss.score_date or 'of unknown date'}: {e.epss:,} scores"
                         + (f" ({outcome.epss.bad_rows:,} bad rows skipped)" if outcome.epss.bad_rows else ""))
        if e.kev:
            parts.append(f"KEV: {e.kev:,} CVEs")
        out.print(f"enriched {path}: " + "; ".join(parts), markup=False)


@db_app.command("status", cls=Command)
@_catalogue_errors
def status_cmd(
    db: DbOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when the database is stale (the age the "
                                         "warning names)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Show where the database is, how old it is and what it holds."""
    from rich.table import Table

    from hullscan.cli.common import print_warning
    from hullscan.vulndb.store import STALE_AFTER_DAYS, Store

    path = _db_path(db)
    if not path.exists():
        raise DatabaseError(f"there is no vulnerability database at {path}", code="NO_DATABASE")
    with Store.open(path) as store:
        info = store.info()
        stats = store.stats()
        age = store.age_days()
        stale = store.is_stale()
        totals = store.meta("totals") or {}
        kev_version = store.meta("kev") or ""
        newest = store.meta("newest_modified") or ""
    if as_json:
        doc = {"path": info.path, "schema_version": info.schema_version, "built_at": info.built_at,
               "updated_at": info.updated_at, "age_days": None if age is None else round(age, 3), "stale": stale,
               "newest_modified": newest, "sources": info.sources, "counts": info.counts, "totals": totals,
               "kev_catalogue": kev_version, "import": stats.to_dict(), "enrichment": info.enrichment}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out = _out()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("Database", f"{info.path} ({path.stat().st_size / 1e6:.1f} MB)")
        table.add_row("Schema", str(info.schema_version))
        table.add_row("Built", f"{info.built_at} ({_ago(info.built_at)})")
        table.add_row("Updated", f"{info.updated_at} ({_ago(info.updated_at)})")
        if newest:
            table.add_row("Newest record", newest)
        for i, source in enumerate(info.sources):
            table.add_row("Sources" if i == 0 else "", source)
        table.add_row("Advisories", f"{totals.get('advisories', 0):,} ({totals.get('withdrawn', 0):,} withdrawn, "
                                    f"never matched; {totals.get('kev', 0):,} known exploited)")
        for kind, what in (("cve5", "CVE records"), ("nvd", "NVD records"), ("epss", "EPSS"), ("kev", "KEV")):
            entry = info.enrichment.get(kind)
            if isinstance(entry, dict):
                extra = entry.get("score_date") or entry.get("version") or ""
                table.add_row(what,
                              f"{entry.get('records', 0):,} from {entry.get('source') or 'unknown'}"
                              + (f" ({extra})" if extra else ""))
        if stats.malformed or stats.git_ranges:
            table.add_row("Import", f"{stats.malformed:,} malformed records skipped, {stats.git_ranges:,} GIT "
                                    f"ranges skipped")
        out.print(table)
        counts = Table("Ecosystem", "Advisories", box=None, padding=(0, 2))
        for name, n in info.counts.items():
            counts.add_row(name, f"{n:,}")
        out.print(counts)
    if stale:
        days = "of unknown age" if age is None else f"{age:.0f} days old"
        print_warning(f"the database is {days} (more than {STALE_AFTER_DAYS}); run "
                      "`hullscan db update` (or import / pull a newer one)")
        if strict:
            raise typer.Exit(1)


@db_app.command("push", cls=Command)
@_catalogue_errors
def push_cmd(
    reference: Annotated[str, typer.Argument(metavar="REF", help="registry/repository:tag to push the database "
                                             "to")],
    db: DbOpt = None, username: UserOpt = None, password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False,
    ca_cert: CaOpt = None, docker_config: DockerCfgOpt = None,
) -> None:
    """Push the database to a registry as an OCI artifact (for air-gapped sites: `db pull` it there)."""
    from hullscan.cli.common import read_password
    from hullscan.vulndb.update import push_database

    path = _db_path(db)
    if not path.exists():
        raise DatabaseError(f"there is no vulnerability database at {path} to push", code="NO_DATABASE")
    result = push_database(path, reference, username=username, password=read_password(password_stdin),
                           docker_config=docker_config, insecure=insecure, ca_cert=ca_cert)
    _out().print(
        f"pushed {path} ({result.db_size / 1e6:.1f} MB, {result.layer_size / 1e6:.1f} MB compressed) to "
        f"{result.reference}@{result.manifest_digest}", markup=False)


@db_app.command("pull", cls=Command)
@_catalogue_errors
def pull_cmd(
    reference: Annotated[str, typer.Argument(metavar="REF", help="registry/repository:tag (or @digest) of a pushed "
                                             "database")],
    db: DbOpt = None, username: UserOpt = None, password_stdin: PwStdinOpt = False, insecure: InsecureOpt = False,
    ca_cert: CaOpt = None, docker_config: DockerCfgOpt = None,
) -> None:
    """Pull a database pushed with `hullscan db push`, verify it and swap it in atomically."""
    from hullscan.cli.common import read_password
    from hullscan.vulndb.update import pull_database

    path = _db_path(db)
    result = pull_database(reference, path, username=username, password=read_password(password_stdin),
                           docker_config=docker_config, insecure=insecure, ca_cert=ca_cert)
    info = result.info
    _out().print(
        f"pulled {result.reference}@{result.manifest_digest} into {path}: schema {info.schema_version}, built "
        f"{info.built_at}, updated {info.updated_at} ({_ago(info.updated_at)}), "
        f"{sum(info.counts.values()):,} advisories", markup=False)
