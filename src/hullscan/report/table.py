"""A Rich rendering of an image's software inventory (`render`) or of a scan report (`render_report`), for people
at a terminal.

Tables fit the console's width without breaking a version, a package name, an id or a path (see
:mod:`hullscan.report.fit`): free text (titles, licence lists) is cut with a visible ellipsis, columns that do not
fit move under their row, and long descriptions are shown only with `verbose` (or in the JSON and HTML formats).
A vulnerability found at several places of the image is one row naming the places; the JSON keeps one finding
per place.

Everything shown comes from the image, so every string is attacker-controlled: it is printed as plain
:class:`rich.text.Text` (never parsed as Rich markup) with control and formatting characters escaped, so a
package named ``"\\x1b[2J"`` or ``"[bold]x[/bold]"`` prints literally. Colours come from styles only; a console
that is not a terminal, or has ``no_color`` set, prints none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.text import Text

from hullscan.findings import (
    SEVERITIES,
    BaseImage,
    CheckFinding,
    IgnoredCheck,
    IgnoredFinding,
    ScanReport,
    SuppressedFinding,
    VulnFinding,
)
from hullscan.model import ImageFacts, Note, OSInfo, Package
from hullscan.report import (
    ROUTINE_NOTES,
    base_is_known,
    check_severity,
    check_severity_counts,
    checks_by_item,
    coverage_words,
    ecosystem_counts,
    epss_words,
    finding_origin,
    finding_sort_key,
    is_fixable,
    item_title,
    origin_counts,
    parse_time,
    password_check_line,
    rating_words,
    severity_counts,
    severity_of,
    sorted_checks,
    sorted_findings,
    sorted_packages,
)
from hullscan.report.fit import Below, Column, Row, print_lines, print_wrapped, table_lines, wrap_words
from hullscan.textsafe import clean
from hullscan.vulndb.model import DatabaseInfo

SEVERITY_STYLES = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "blue", "UNKNOWN": "magenta"}
STALE_AFTER = timedelta(days=7)  # `db status` warns past this age too
TITLE_WIDTH = 60  # titles are cut (with an ellipsis) past this many columns, or sooner on a narrow console
IGNORE_EXPIRED = "IGNORE_EXPIRED"  # the note code hullscan.ignorefile gives an expired entry
EVIDENCE_CHARS = 80  # a check's evidence is cut (with an ellipsis) past this many characters
LABEL_WIDTH = 16  # the header's labels ("Vulnerability DB")
MIN_TITLE = 30  # a title that would get fewer columns in its row goes under the row instead


def _text(value: str, style: str = "") -> Text:
    return Text(clean(value), style=style)


def _line(value: str) -> str:
    """`value` on one line: whitespace runs (newlines included) become single spaces."""
    return " ".join(value.split())


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- the header ---------------------------------------------------------------------------------------------------


def _os_label(os_info: OSInfo | None) -> str:
    if os_info is None:
        return "unknown"
    ident = " ".join(part for part in (os_info.family, os_info.version) if part)
    if not os_info.name:
        return f"{ident} ({os_info.codename})" if os_info.codename else ident or "unknown"
    return f"{os_info.name} [{ident}]" if ident else os_info.name


def _header(facts: ImageFacts) -> list[tuple[str, Text]]:
    return [
        ("Image", _text(facts.reference)),
        ("Digest", _text(facts.manifest_digest or "unknown")),
        ("OS", _text(_os_label(facts.os))),
        ("Platform", _text(str(facts.platform))),
        ("Layers", Text(str(len(facts.layers)))),
    ]


def _print_header(rows: list[tuple[str, Text]], console: Console) -> None:
    """`Label  value` lines; a value that does not fit beside its label goes on the next line, wrapped between
    words only (a digest or a reference is never split)."""
    width = console.width
    lines: list[Text] = []
    for label, value in rows:
        if LABEL_WIDTH + 2 + value.cell_len <= width or not value.plain:
            lines.append(Text().append(label.ljust(LABEL_WIDTH), style="bold").append("  ").append_text(value))
            continue
        lines.append(Text().append(label, style="bold"))
        lines.extend(Text("  ").append_text(part) for part in wrap_words(value, width - 2))
    print_lines(console, lines)


# -- the inventory --------------------------------------------------------------------------------------------------

_PACKAGE_COLUMNS = (Column("Name"), Column("Version", rank=1), Column("Type", rank=2),
                    Column("Licence", rank=5, text=True), Column("Layer", rank=4, right=True), Column("Path", rank=3))


def _layer(index: int) -> Text:
    return Text(str(index) if index >= 0 else "-")


def _packages(facts: ImageFacts, width: int) -> list[Text]:
    rows = [Row([_text(pkg.name), _text(pkg.version), _text(pkg.ecosystem),
                 _text(", ".join(pkg.licenses) if pkg.licenses else "-"), _layer(pkg.layer_index), _text(pkg.path)])
            for pkg in sorted_packages(facts)]
    return table_lines(_PACKAGE_COLUMNS, rows, width)


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


def _print_notes(notes: list[Note], console: Console, verbose: bool) -> None:
    """The warnings block; routine warnings (ROUTINE_NOTES) only when verbose, else one line counting them."""
    shown = notes if verbose else [n for n in notes if n.code not in ROUTINE_NOTES]
    routine = len(notes) - len(shown)
    if shown:
        console.print()
        console.print(Text(f"Warnings ({len(shown)})", style="bold yellow"))
        for note in shown:
            print_wrapped(console, _note_text(note), indent=2)
    if routine:
        codes = ", ".join(sorted({n.code for n in notes if n.code in ROUTINE_NOTES}))
        console.print()
        print_wrapped(console, Text(f"{routine} routine warning{'s' if routine != 1 else ''} ({codes}) not shown; "
                                    "--verbose shows them", style="dim"))


def render(facts: ImageFacts, console: Console, *, verbose: bool = False) -> None:
    """Print the header, the package table, a per-ecosystem count and the scan's warnings to `console`."""
    _print_header(_header(facts), console)
    console.print()
    if facts.packages:
        print_lines(console, _packages(facts, console.width))
        console.print()
    console.print(Text(summary_line(facts), style="bold"))
    _print_notes(facts.notes, console, verbose)


# -- the report header ----------------------------------------------------------------------------------------------


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


def _report_header(report: ScanReport, now: datetime | None) -> list[tuple[str, Text]]:
    rows = _header(report.facts)
    rows.append(("Packages", Text(str(len(report.facts.packages)))))
    if report.database is not None or "vuln" in report.scanners:
        label, stale = database_label(report.database, now)
        rows.append(("Vulnerability DB", _text(label, style="yellow" if stale else "")))
        gap = coverage_words(report)
        if gap:
            # Next to the database's age: a fresh database says nothing about packages it has no data for.
            rows.append(("Not checked", _text(gap, style="bold yellow")))
    base = report.base_image
    if base is not None:
        rows.append(("Base image", _base_text(base)))
        if base.recommendation:
            rows.append(("", _text(_line(base.recommendation), style="yellow")))
    elif "base" in report.scanners:
        rows.append(("Base image", Text("not identified", style="dim")))
    return rows


def _base_text(base: BaseImage) -> Text:
    layers = "layer count unknown" if base.layers <= 0 else f"{base.layers} layer{'s' if base.layers != 1 else ''}"
    how = {"annotation": "from the image's OCI annotations", "catalogue": "matched in the base catalogue"}
    details = [how.get(base.method, base.method or "identified"), layers]
    cell = _text(base.name)
    if base.digest:
        cell.append("@").append_text(_text(base.digest))
    cell.append_text(_text(f" ({', '.join(details)})"))
    return cell


# -- vulnerabilities ------------------------------------------------------------------------------------------------


def _finding_id(finding: VulnFinding) -> Text:
    cell = _text(finding.id)
    if finding.kev:
        cell.append(" KEV", style="bold red")
    return cell


def _title(finding: VulnFinding) -> Text:
    # Whitespace (newlines included) collapses to single spaces: a title is one line in a table.
    return _text(_line(finding.title) or "-")


@dataclass
class _Group:
    """One advisory in one package version, wherever in the image that version is."""

    first: VulnFinding
    places: list[Package] = field(default_factory=list)


def _grouped(findings: list[VulnFinding], order: str = "severity") -> list[_Group]:
    groups: dict[tuple[str, str, str, str], _Group] = {}
    for f in sorted_findings(findings, order):
        key = (f.package.ecosystem, f.package.name, f.installed_version or f.package.version, f.id)
        group = groups.setdefault(key, _Group(f))
        if all((p.path, p.layer_index) != (f.package.path, f.package.layer_index) for p in group.places):
            group.places.append(f.package)
    return list(groups.values())


def _in_several_places(report: ScanReport) -> set[tuple[str, str]]:
    """(ecosystem, name) of the packages found at more than one path: their rows need the path to be traced."""
    paths: dict[tuple[str, str], set[str]] = {}
    for pkg in [*report.facts.packages, *(f.package for f in report.vulnerabilities)]:
        paths.setdefault((pkg.ecosystem, pkg.name), set()).add(pkg.path)
    return {key for key, found in paths.items() if len(found) > 1}


# What stays in a narrow row, most important first: the package and the advisory, its severity, the installed and
# the fixed version, the likelihood of exploitation, where it is, the rating's source, then the title.
_VULN_COLUMNS = (Column("Package"), Column("Installed", rank=2), Column("Fixed in", rank=3), Column("Severity", rank=1),
                 Column("Rating", rank=7), Column("EPSS", rank=4, right=True), Column("ID"),
                 Column("Title", rank=8, text=True, min_width=MIN_TITLE, max_width=TITLE_WIDTH),
                 Column("Path", rank=5), Column("Layer", rank=6, right=True))
_PATH = 8  # the Path column's index: left out when no package is in several places


def _layers_cell(places: list[Package]) -> Text:
    layers = sorted({p.layer_index for p in places if p.layer_index >= 0})
    return Text(",".join(str(n) for n in layers) or "-")


def _vulnerabilities(report: ScanReport, width: int, verbose: bool) -> tuple[list[Text], list[_Group]]:
    """The table's lines, and the groups found in more than one place (listed under the table)."""
    several = _in_several_places(report)
    groups = _grouped(report.vulnerabilities, report.order)
    with_path = any((g.first.package.ecosystem, g.first.package.name) in several for g in groups)
    rows: list[Row] = []
    many: list[_Group] = []
    for group in groups:
        f = group.first
        severity = severity_of(f)
        if len(group.places) > 1:
            path = Text(f"{len(group.places)} places", style="bold")
            if not any(m.places == group.places for m in many):
                many.append(group)
        else:
            path = _text(f.package.path) if (f.package.ecosystem, f.package.name) in several else Text("-")
        rating = rating_words(f)
        rows.append(Row([
            _text(f.package.name),
            _text(f.installed_version or f.package.version),
            _text(", ".join(f.fixed_versions)) if f.fixed_versions else Text("no fix yet", style="dim"),
            Text(severity, style=SEVERITY_STYLES[severity]),
            _text(rating) if rating else Text("-", style="dim"),
            Text(epss_words(f) or "-", style="" if f.epss is not None else "dim"),
            _finding_id(f),
            _title(f),
            path,
            _layers_cell(group.places),
        ], [Below(_text(f.cvss_vector), "whole")] if verbose and f.cvss_vector else []))
    columns = list(_VULN_COLUMNS)
    if not with_path:
        del columns[_PATH]
        for row in rows:
            del row.cells[_PATH]
    return table_lines(columns, rows, width), many


def _places_lines(groups: list[_Group], width: int) -> list[Text]:
    """Where each package version with rows of "N places" is: every path once, with its layer."""
    lines: list[Text] = []
    for group in groups:
        f = group.first
        head = _text(f"{f.package.name} {f.installed_version or f.package.version}", style="bold")
        lines.extend(wrap_words(head.append(f" is in {len(group.places)} places:"), width))
        for pkg in group.places:
            # A no-break space: the layer stays one word when the line wraps before it.
            layer = f"  (layer\u00a0{pkg.layer_index})" if pkg.layer_index >= 0 else ""
            lines.extend(wrap_words(Text("  ").append_text(_text(pkg.path)).append(layer, style="dim"), width, 2))
    return lines


def _per_severity(counts: dict[str, int]) -> str:
    return ", ".join(f"{severity}: {counts[severity]}" for severity in SEVERITIES)


def origin_words(layer_indices: list[int], base: BaseImage | None) -> str:
    """``from base: N / own layers: M`` (``, layer unknown: K`` when some findings have none), or "" when the
    report knows no base with a layer count."""
    if base is None or base.layers <= 0:
        return ""
    counts = origin_counts(layer_indices, base)
    words = f"from base: {counts['base']} / own layers: {counts['image']}"
    return words + (f", layer unknown: {counts['unknown']}" if counts["unknown"] else "")


def report_summary_line(report: ScanReport) -> str:
    """``Total: N (CRITICAL: a, HIGH: b, MEDIUM: c, LOW: d, UNKNOWN: e), fixable: k``, plus ``; from base: N / own
    layers: M`` when the base image is known."""
    counts = severity_counts(report.vulnerabilities)
    fixable = sum(1 for f in report.vulnerabilities if is_fixable(f))
    line = f"Total: {len(report.vulnerabilities)} ({_per_severity(counts)}), fixable: {fixable}"
    origins = origin_words([f.package.layer_index for f in report.vulnerabilities], report.base_image)
    return f"{line}; {origins}" if origins else line


def _suppressed(entries: list[SuppressedFinding], width: int) -> list[Text]:
    columns = (Column("ID"), Column("Package"), Column("Installed", rank=1), Column("Status", rank=2),
               Column("Justification", rank=3), Column("VEX document", rank=4))
    rows = []
    for e in sorted(entries, key=lambda e: finding_sort_key(e.finding)):
        f = e.finding
        impact = [Below(_text(_line(e.impact)), "wrap")] if e.impact.strip() else []
        rows.append(Row([_text(f.id), _text(f.package.name), _text(f.installed_version or f.package.version),
                         _text(e.status), _text(e.justification or "-"), _text(e.source or "-")], impact))
    return table_lines(columns, rows, width)


def _print_vulnerability_section(report: ScanReport, console: Console, verbose: bool) -> None:
    width = console.width
    if report.vulnerabilities:
        lines, many = _vulnerabilities(report, width, verbose)
        print_lines(console, lines)
        if many:
            console.print()
            print_lines(console, _places_lines(many, width))
        grouped = len(report.vulnerabilities) - len(_grouped(report.vulnerabilities, report.order))
        if grouped:
            console.print()
            print_wrapped(console, Text(f"{len(report.vulnerabilities)} findings in "
                                        f"{len(report.vulnerabilities) - grouped} rows: an advisory found in several "
                                        "places of the image is one row (--format json lists each place)",
                                        style="dim"))
        console.print()
    else:
        console.print(Text("No vulnerabilities found.", style="bold green"))
    print_wrapped(console, Text(report_summary_line(report), style="bold"))
    gap = coverage_words(report)
    if gap:
        print_wrapped(console, Text(f"Not checked for vulnerabilities: {gap}", style="bold yellow"))
    kev = sum(1 for f in report.vulnerabilities if f.kev)
    if kev:
        console.print(Text(f"Known exploited (CISA KEV): {kev}", style="bold red"))
    if report.suppressed:
        console.print()
        console.print(Text(f"Suppressed by VEX ({len(report.suppressed)}; not counted)", style="bold"))
        print_lines(console, _suppressed(report.suppressed, width))


# -- the other items ------------------------------------------------------------------------------------------------

_CHECK_COLUMNS = (Column("Severity", rank=1), Column("Check"),
                  Column("Title", rank=4, text=True, min_width=MIN_TITLE, max_width=TITLE_WIDTH),
                  Column("Where", rank=2), Column("Layer", rank=3, right=True))


def _where(check: CheckFinding) -> Text:
    if not check.path:
        return Text("-")
    return _text(f"{check.path}:{check.line}" if check.line > 0 else check.path)


def _layer_cell(check: CheckFinding, base: BaseImage | None) -> Text:
    if check.layer_index < 0:
        return Text("-")
    cell = Text(str(check.layer_index))
    if check.item != "base" and base is not None and base.layers > 0:
        cell.append(" base" if finding_origin(check.layer_index, base) == "base" else " own")
    return cell


def _check_rows(checks: list[CheckFinding], base: BaseImage | None, verbose: bool) -> list[Row]:
    rows = []
    for check in checks:
        severity = check_severity(check)
        below: list[Below] = []
        if check.evidence:
            # Cut after escaping, so an escaped control character counts at its printed width.
            below.append(Below(Text(_cut(clean(check.evidence), EVIDENCE_CHARS)), "cut"))
        if verbose and check.description.strip():
            below.append(Below(_text(_line(check.description)), "wrap"))
        if verbose and check.remediation.strip():
            below.append(Below(Text("Fix: ").append_text(_text(_line(check.remediation))), "wrap"))
        rows.append(Row([Text(severity, style=SEVERITY_STYLES[severity]), _text(check.id),
                         _text(_line(check.title) or "-"), _where(check), _layer_cell(check, base)], below))
    return rows


def _check_sections(report: ScanReport, console: Console, verbose: bool) -> dict[str, list[CheckFinding]]:
    """Print one section per item other than vulnerabilities that ran; returns the items with their findings."""
    sections = checks_by_item(report)
    for item, checks in sections.items():
        console.print()
        console.print(_text(f"{item_title(item)} ({len(checks)})", style="bold underline"))
        if checks:
            print_lines(console, table_lines(_CHECK_COLUMNS, _check_rows(checks, report.base_image, verbose),
                                             console.width))
        else:
            console.print(Text("Nothing found.", style="green"))
        if item == "baseline" and report.password_check is not None:
            print_wrapped(console, _text(password_check_line(report.password_check)))
    if not verbose and any(sections.values()):
        console.print()
        print_wrapped(console, Text("Each finding's description and fix: --verbose, or --format json or html",
                                    style="dim"))
    return sections


def _severity_cell(counts: dict[str, int]) -> Text:
    cell = Text()
    for severity in SEVERITIES:
        if counts[severity]:
            if cell.plain:
                cell.append(", ")
            cell.append(f"{severity} {counts[severity]}", style=SEVERITY_STYLES[severity])
    return cell if cell.plain else Text("-", style="dim")


_SUMMARY_COLUMNS = (Column(""), Column("", right=True), Column(""), Column("", rank=1))


def _final_summary(report: ScanReport, sections: dict[str, list[CheckFinding]], console: Console) -> None:
    """One line per item that ran (vulnerabilities first): total, per severity, and, with a known base image, how
    many come from the base and how many from the image's own layers; then the total over every item."""
    rows: list[Row] = []
    base = report.base_image
    total: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    if "vuln" in report.scanners or report.vulnerabilities:
        counts = severity_counts(report.vulnerabilities)
        total = {s: total[s] + counts[s] for s in SEVERITIES}
        gap = sum(g.packages for g in report.unchecked)
        rows.append(Row([Text(f"  {item_title('vuln')}"), Text(str(len(report.vulnerabilities))),
                         _severity_cell(counts),
                         Text(origin_words([f.package.layer_index for f in report.vulnerabilities], base))],
                        [Below(Text(f"{gap} packages not checked", style="bold yellow"), "whole")] if gap else []))
    for item, checks in sections.items():
        counts = check_severity_counts(checks)
        total = {s: total[s] + counts[s] for s in SEVERITIES}
        # The base item's findings are about the base itself: they come from neither.
        origins = "" if item == "base" else origin_words([c.layer_index for c in checks], base)
        rows.append(Row([_text(f"  {item_title(item)}"), Text(str(len(checks))), _severity_cell(counts),
                         Text(origins)]))
    everything = ""
    if base_is_known(report):
        from hullscan.checks.baseimage import split_by_base

        split = split_by_base(report)
        everything = (f"from base: {split.base.vulnerabilities + split.base.checks} / own layers: "
                      f"{split.image.vulnerabilities + split.image.checks}")
    rows.append(Row([Text("  All items", style="bold"), Text(str(sum(total.values())), style="bold"),
                     _severity_cell(total), Text(everything, style="bold")]))
    console.print()
    console.print(Text("Summary", style="bold"))
    print_lines(console, table_lines(_SUMMARY_COLUMNS, rows, console.width, below_style="")[2:])


def _ignored_text(entry: IgnoredFinding) -> Text:
    finding = entry.finding
    line = f"  {finding.id} in {finding.package.name} {finding.installed_version or finding.package.version}"
    details = [part for part in (entry.reason, f"until {entry.expires}" if entry.expires else "") if part]
    if details:
        line += f" ({'; '.join(details)})"
    return _text(line, style="dim")


def _ignored_check_text(entry: IgnoredCheck) -> Text:
    check = entry.check
    where = f" at {check.path}" if check.path else ""
    line = f"  {check.id}{where} ({item_title(check.item).lower()})"
    details = [part for part in (entry.reason, f"until {entry.expires}" if entry.expires else "") if part]
    if details:
        line = line[:-1] + f"; {'; '.join(details)})"
    return _text(line, style="dim")


def _print_ignored(report: ScanReport, console: Console) -> None:
    expired = sum(1 for note in report.notes if note.code == IGNORE_EXPIRED)
    count = len(report.ignored) + len(report.ignored_checks)
    if not count and not expired:
        return
    console.print()
    console.print(Text(f"Ignored: {count}", style="bold"))
    lines: Iterable[Text] = [
        *(_ignored_text(e) for e in sorted(report.ignored, key=lambda e: finding_sort_key(e.finding))),
        *(_ignored_check_text(e) for e in _sorted_ignored_checks(report.ignored_checks)),
    ]
    for line in lines:
        print_wrapped(console, line, indent=4)
    if expired:
        verb = "entry has expired and no longer applies" if expired == 1 else "entries have expired and no longer apply"
        console.print(Text(f"{expired} ignore {verb} (see the warnings)", style="yellow"))


def _sorted_ignored_checks(entries: list[IgnoredCheck]) -> list[IgnoredCheck]:
    order = {id(c): n for n, c in enumerate(sorted_checks(e.check for e in entries))}
    return sorted(entries, key=lambda e: order[id(e.check)])


_FILE_COLUMNS = (Column("Path"), Column("Type", rank=1), Column("Size", rank=2, right=True), Column("Mode", rank=2),
                 Column("UID", rank=4, right=True), Column("GID", rank=4, right=True),
                 Column("Layer", rank=3, right=True), Column("SHA-256", rank=5))


def _files(report: ScanReport, width: int) -> list[Text]:
    rows = []
    for row in report.file_inventory:
        path = str(row["path"]) + (f" -> {row['linkname']}" if row.get("linkname") else "")
        rows.append(Row([_text(path), Text(str(row["type"])), Text(str(row["size"])), Text(str(row["mode"])),
                         Text(str(row["uid"])), Text(str(row["gid"])), Text(str(row["layer"])),
                         Text(str(row.get("sha256") or "-"))]))
    return table_lines(_FILE_COLUMNS, rows, width)


def render_report(
    report: ScanReport, console: Console, *, show_packages: bool = False, now: datetime | None = None,
    verbose: bool = False,
) -> None:
    """Print a scan report to `console`: the header (image, digest, OS, database age, packages the vulnerability
    scan could not check, base image), the vulnerabilities sorted by severity then package with their summary
    line (when the vulnerability scan ran), one section per other item that ran (a table of its findings, or
    "Nothing found."), a summary with one line per item, the ignored findings, and the warnings (the image's and
    the detectors'; routine ones only when `verbose`) in yellow. With a known base image, the summaries say how
    many findings come from the base and how many from the image's own layers. Vulnerabilities are listed in
    `report.order` (severity, or risk); those a VEX statement suppressed follow, not counted. `show_packages` adds
    the inventory table before the vulnerabilities; `verbose` adds each CVSS vector and each check finding's
    description and fix; `now` is the clock the database age is measured against (default: now)."""
    _print_header(_report_header(report, now), console)
    console.print()
    if show_packages and report.facts.packages:
        print_lines(console, _packages(report.facts, console.width))
        console.print(Text(summary_line(report.facts), style="bold"))
        console.print()
    if "vuln" in report.scanners or report.vulnerabilities:
        _print_vulnerability_section(report, console, verbose)
    sections = _check_sections(report, console, verbose)
    if report.file_inventory:
        console.print()
        console.print(Text(f"Files ({len(report.file_inventory)})", style="bold"))
        print_lines(console, _files(report, console.width))
    if sections:
        _final_summary(report, sections, console)
    _print_ignored(report, console)
    _print_notes([*report.facts.notes, *report.notes], console, verbose)
