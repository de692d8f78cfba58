"""A Rich rendering of an image's software inventory (`render`) or of a scan report (`render_report`), for people
at a terminal.

Everything shown comes from the image, so every string is attacker-controlled: it is printed as plain
:class:`rich.text.Text` (never parsed as Rich markup) with control and formatting characters escaped, so a
package named ``"\\x1b[2J"`` or ``"[bold]x[/bold]"`` prints literally. Colours come from styles only; a console
that is not a terminal, or has ``no_color`` set, prints none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hullscan.findings import SEVERITIES, IgnoredFinding, ScanReport, VulnFinding
from hullscan.model import ImageFacts, Note, OSInfo
from hullscan.report import (
    ecosystem_counts,
    finding_sort_key,
    is_fixable,
    parse_time,
    severity_counts,
    severity_of,
    sorted_findings,
    sorted_packages,
)
from hullscan.vulndb.model import DatabaseInfo

SEVERITY_STYLES = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "blue", "UNKNOWN": "magenta"}
STALE_AFTER = timedelta(days=7)  # `db status` warns past this age too
TITLE_WIDTH = 60  # titles are cut (with an ellipsis) past this many columns, or sooner on a narrow console
IGNORE_EXPIRED = "IGNORE_EXPIRED"  # the note code hullscan.ignorefile gives an expired entry


def clean(value: str) -> str:
    """`value` with every non-printable character (controls, bidi overrides, newlines) escaped."""
    if value.isprintable():
        return value
    out: list[str] = []
    for ch in value:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _text(value: str, style: str = "") -> Text:
    return Text(clean(value), style=style)


def _os_label(os_info: OSInfo | None) -> str:
    if os_info is None:
        return "unknown"
    ident = " ".join(part for part in (os_info.family, os_info.version) if part)
    if not os_info.name:
        return f"{ident} ({os_info.codename})" if os_info.codename else ident or "unknown"
    return f"{os_info.name} [{ident}]" if ident else os_info.name


def _header(facts: ImageFacts) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Image", _text(facts.reference))
    grid.add_row("Digest", _text(facts.manifest_digest or "unknown"))
    grid.add_row("OS", _text(_os_label(facts.os)))
    grid.add_row("Platform", _text(str(facts.platform)))
    grid.add_row("Layers", Text(str(len(facts.layers))))
    return grid


def _packages(facts: ImageFacts) -> Table:
    # Long cells fold (never an ellipsis: a truncated name or version misleads); Type and Layer are short.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    table.add_column("Name", overflow="fold")
    table.add_column("Version", overflow="fold")
    table.add_column("Type", no_wrap=True)
    table.add_column("Licence", overflow="fold")
    table.add_column("Layer", justify="right", no_wrap=True)
    table.add_column("Path", overflow="fold")
    for pkg in sorted_packages(facts):
        table.add_row(
            _text(pkg.name),
            _text(pkg.version),
            _text(pkg.ecosystem),
            _text(", ".join(pkg.licenses) if pkg.licenses else "-"),
            Text(str(pkg.layer_index) if pkg.layer_index >= 0 else "-"),
            _text(pkg.path),
        )
    return table


def summary_line(facts: ImageFacts) -> str:
    counts = ecosystem_counts(facts)
    total = sum(counts.values())
    if not total:
        return "No packages found."
    noun = "package" if total == 1 else "packages"
    return f"{total} {noun}: " + ", ".join(f"{eco} {n}" for eco, n in counts.items())


def _note_text(note: Note) -> Text:
    where = []
    if note.path:
        where.append(note.path)
    if note.layer_index >= 0:
        where.append(f"layer {note.layer_index}")
    suffix = f" ({', '.join(where)})" if where else ""
    return _text(f"! {note.code}: {note.message}{suffix}", style="yellow")


def render(facts: ImageFacts, console: Console) -> None:
    """Print the header, the package table, a per-ecosystem count and the scan's warnings to `console`."""
    console.print(_header(facts))
    console.print()
    if facts.packages:
        console.print(_packages(facts))
        console.print()
    console.print(Text(summary_line(facts), style="bold"))
    if facts.notes:
        console.print()
        console.print(Text(f"Warnings ({len(facts.notes)})", style="bold yellow"))
        for note in facts.notes:
            console.print(_note_text(note))


def _age_words(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 3600:
        return "less than an hour old"
    if seconds < 2 * 86400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} old"
    return f"{seconds // 86400} days old"


def database_label(info: DatabaseInfo | None, now: datetime | None = None) -> tuple[str, bool]:
    """How the header describes the vulnerability database, and whether it is stale (older than STALE_AFTER)."""
    if info is None:
        return "none", False
    stamp = info.updated_at or info.built_at
    when = parse_time(stamp) if stamp else None
    if when is None:
        return f"updated {stamp or 'at an unknown time'}", False
    age = (now or datetime.now(UTC)) - when
    label = f"updated {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({_age_words(age)})"
    if age > STALE_AFTER:
        return f"{label}; older than {STALE_AFTER.days} days, run 'hullscan db update'", True
    return label, False


def _report_header(report: ScanReport, now: datetime | None) -> Table:
    grid = _header(report.facts)
    grid.add_row("Packages", Text(str(len(report.facts.packages))))
    if report.database is not None or "vuln" in report.scanners:
        label, stale = database_label(report.database, now)
        grid.add_row("Vulnerability DB", _text(label, style="yellow" if stale else ""))
    return grid


def _finding_id(finding: VulnFinding) -> Text:
    cell = _text(finding.id)
    if finding.kev:
        cell.append(" KEV", style="bold red")
    return cell


def _title(finding: VulnFinding) -> Text:
    # Whitespace (newlines included) collapses to single spaces: a title is one line in a table.
    return _text(" ".join(finding.title.split()) or "-")


_VULN_COLUMNS = ("Package", "Installed", "Fixed in", "Severity", "ID", "Title", "Layer")
_COLUMN_GAP = 3  # what SIMPLE_HEAD with padding puts between two columns
_MIN_TITLE = 12


def _vulnerabilities(findings: list[VulnFinding], width: int) -> Table:
    rows: list[list[Text]] = []
    for finding in sorted_findings(findings):
        severity = severity_of(finding)
        pkg = finding.package
        rows.append([
            _text(pkg.name),
            _text(finding.installed_version or pkg.version),
            _text(", ".join(finding.fixed_versions)) if finding.fixed_versions else Text("no fix yet", style="dim"),
            Text(severity, style=SEVERITY_STYLES[severity]),
            _finding_id(finding),
            _title(finding),
            Text(str(pkg.layer_index) if pkg.layer_index >= 0 else "-"),
        ])
    # The title gets what the other columns leave of the console (never less than _MIN_TITLE, never more than
    # TITLE_WIDTH) and is cut with an ellipsis; the identity columns fold only when even that is not enough (a cut
    # name or version would mislead).
    natural = [max([len(header), *(row[i].cell_len for row in rows)]) for i, header in enumerate(_VULN_COLUMNS)]
    others = sum(w for i, w in enumerate(natural) if _VULN_COLUMNS[i] != "Title")
    room = width - others - _COLUMN_GAP * (len(_VULN_COLUMNS) - 1)
    title_width = max(_MIN_TITLE, min(TITLE_WIDTH, natural[5], room))

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    table.add_column("Package", overflow="fold")
    table.add_column("Installed", overflow="fold")
    table.add_column("Fixed in", overflow="fold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("ID", no_wrap=True)
    table.add_column("Title", no_wrap=True, overflow="ellipsis", width=title_width)
    table.add_column("Layer", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def report_summary_line(report: ScanReport) -> str:
    """``Total: N (CRITICAL: a, HIGH: b, MEDIUM: c, LOW: d, UNKNOWN: e), fixable: k``."""
    counts = severity_counts(report.vulnerabilities)
    per_severity = ", ".join(f"{severity}: {counts[severity]}" for severity in SEVERITIES)
    fixable = sum(1 for f in report.vulnerabilities if is_fixable(f))
    return f"Total: {len(report.vulnerabilities)} ({per_severity}), fixable: {fixable}"


def _ignored_text(entry: IgnoredFinding) -> Text:
    finding = entry.finding
    line = f"  {finding.id} in {finding.package.name} {finding.installed_version or finding.package.version}"
    details = [part for part in (entry.reason, f"until {entry.expires}" if entry.expires else "") if part]
    if details:
        line += f" ({'; '.join(details)})"
    return _text(line, style="dim")


def render_report(
    report: ScanReport, console: Console, *, show_packages: bool = False, now: datetime | None = None
) -> None:
    """Print a scan report to `console`: the header (image, digest, OS, database age), the vulnerabilities sorted
    by severity then package, the summary line, the ignored findings, and every warning (the image's and the
    detectors', e.g. an OS whose packages were not checked) in yellow. `show_packages` adds the inventory table
    before the vulnerabilities; `now` is the clock the database age is measured against (default: now)."""
    console.print(_report_header(report, now))
    console.print()
    if show_packages and report.facts.packages:
        console.print(_packages(report.facts))
        console.print(Text(summary_line(report.facts), style="bold"))
        console.print()
    if report.vulnerabilities:
        console.print(_vulnerabilities(report.vulnerabilities, console.width))
        console.print()
    else:
        console.print(Text("No vulnerabilities found.", style="bold green"))
    console.print(Text(report_summary_line(report), style="bold"))
    kev = sum(1 for f in report.vulnerabilities if f.kev)
    if kev:
        console.print(Text(f"Known exploited (CISA KEV): {kev}", style="bold red"))

    notes = [*report.facts.notes, *report.notes]
    expired = sum(1 for note in report.notes if note.code == IGNORE_EXPIRED)
    if report.ignored or expired:
        console.print()
        console.print(Text(f"Ignored: {len(report.ignored)}", style="bold"))
        for entry in sorted(report.ignored, key=lambda e: finding_sort_key(e.finding)):
            console.print(_ignored_text(entry))
        if expired:
            verb = "entry has expired and no longer applies" if expired == 1 else \
                "entries have expired and no longer apply"
            console.print(Text(f"{expired} ignore {verb} (see the warnings)", style="yellow"))
    if notes:
        console.print()
        console.print(Text(f"Warnings ({len(notes)})", style="bold yellow"))
        for note in notes:
            console.print(_note_text(note))
