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
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hullscan.findings import (
    SEVERITIES,
    BaseImage,
    CheckFinding,
    IgnoredFinding,
    ScanReport,
    SuppressedFinding,
    VulnFinding,
)
from hullscan.model import ImageFacts, Note, OSInfo
from hullscan.report import (
    base_is_known,
    check_severity,
    check_severity_counts,
    checks_by_item,
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
    sorted_findings,
    sorted_packages,
)
from hullscan.textsafe import clean
from hullscan.vulndb.model import DatabaseInfo

SEVERITY_STYLES = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "blue", "UNKNOWN": "magenta"}
STALE_AFTER = timedelta(days=7)  # `db status` warns past this age too
TITLE_WIDTH = 60  # titles are cut (with an ellipsis) past this many columns, or sooner on a narrow console
IGNORE_EXPIRED = "IGNORE_EXPIRED"  # the note code hullscan.ignorefile gives an expired entry
DETAILS_CHARS = 120  # a check's description is cut (with an ellipsis) past this many characters
EVIDENCE_CHARS = 80  # ... its evidence past this many
REMEDIATION_CHARS = 120  # ... its remediation past this many
ID_CHARS = 24  # the check column is at least as wide as its longest id, up to this many columns


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
    base = report.base_image
    if base is not None:
        grid.add_row("Base image", _base_text(base))
        if base.recommendation:
            grid.add_row("", _text(_line(base.recommendation), style="yellow"))
    elif "base" in report.scanners:
        grid.add_row("Base image", Text("not identified", style="dim"))
    return grid


def _base_text(base: BaseImage) -> Text:
    layers = "layer count unknown" if base.layers <= 0 else f"{base.layers} layer{'s' if base.layers != 1 else ''}"
    how = {"annotation": "from the image's OCI annotations", "catalogue": "matched in the base catalogue"}
    details = [how.get(base.method, base.method or "identified"), layers]
    cell = _text(base.name)
    if base.digest:
        cell.append("@").append_text(_text(base.digest))
    cell.append_text(_text(f" ({', '.join(details)})"))
    return cell


def _finding_id(finding: VulnFinding) -> Text:
    cell = _text(finding.id)
    if finding.kev:
        cell.append(" KEV", style="bold red")
    return cell


def _title(finding: VulnFinding) -> Text:
    # Whitespace (newlines included) collapses to single spaces: a title is one line in a table.
    return _text(" ".join(finding.title.split()) or "-")


_VULN_COLUMNS = ("Package", "Installed", "Fixed in", "Severity", "Rating", "EPSS", "ID", "Title", "Layer")
_TITLE = _VULN_COLUMNS.index("Title")
_COLUMN_GAP = 3  # what SIMPLE_HEAD with padding puts between two columns
_MIN_TITLE = 12


def _rating(finding: VulnFinding) -> Text:
    """The CVSS score and where the severity came from, the vector beneath (dim)."""
    words = rating_words(finding)
    cell = _text(words) if words else Text("-", style="dim")
    if finding.cvss_vector:
        cell.append("\n").append_text(_text(finding.cvss_vector, style="dim"))
    return cell


def _vulnerabilities(findings: list[VulnFinding], width: int, order: str = "severity") -> Table:
    rows: list[list[Text]] = []
    for finding in sorted_findings(findings, order):
        severity = severity_of(finding)
        pkg = finding.package
        rows.append([
            _text(pkg.name),
            _text(finding.installed_version or pkg.version),
            _text(", ".join(finding.fixed_versions)) if finding.fixed_versions else Text("no fix yet", style="dim"),
            Text(severity, style=SEVERITY_STYLES[severity]),
            _rating(finding),
            Text(epss_words(finding) or "-", style="" if finding.epss is not None else "dim"),
            _finding_id(finding),
            _title(finding),
            Text(str(pkg.layer_index) if pkg.layer_index >= 0 else "-"),
        ])
    # The title gets what the other columns leave of the console (never less than _MIN_TITLE, never more than
    # TITLE_WIDTH) and is cut with an ellipsis; the identity columns fold only when even that is not enough (a cut
    # name or version would mislead).
    natural = [max([len(header), *(_widest_line(row[i]) for row in rows)]) for i, header in enumerate(_VULN_COLUMNS)]
    others = sum(w for i, w in enumerate(natural) if i != _TITLE)
    room = width - others - _COLUMN_GAP * (len(_VULN_COLUMNS) - 1)
    title_width = max(_MIN_TITLE, min(TITLE_WIDTH, natural[_TITLE], room))

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    table.add_column("Package", overflow="fold")
    table.add_column("Installed", overflow="fold")
    table.add_column("Fixed in", overflow="fold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Rating", overflow="fold")
    table.add_column("EPSS", no_wrap=True, justify="right")
    table.add_column("ID", no_wrap=True)
    table.add_column("Title", no_wrap=True, overflow="ellipsis", width=title_width)
    table.add_column("Layer", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _suppressed(entries: list[SuppressedFinding]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    for header in ("ID", "Package", "Installed", "Status", "Justification", "VEX document"):
        table.add_column(header, overflow="fold")
    for e in sorted(entries, key=lambda e: finding_sort_key(e.finding)):
        f = e.finding
        table.add_row(_text(f.id), _text(f.package.name), _text(f.installed_version or f.package.version),
                      _text(e.status), _text(_line(" ".join(x for x in (e.justification, e.impact) if x)) or "-"),
                      _text(e.source or "-"))
    return table


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


def _line(value: str) -> str:
    """`value` on one line: whitespace runs (newlines included) become single spaces."""
    return " ".join(value.split())


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _check_cell(check: CheckFinding) -> Text:
    cell = _text(_line(check.title) or "-")
    cell.append("\n").append_text(_text(check.id, style="dim"))
    return cell


def _where(check: CheckFinding) -> Text:
    if not check.path:
        return Text("-")
    return _text(f"{check.path}:{check.line}" if check.line > 0 else check.path)


def _layer_cell(check: CheckFinding, base: BaseImage | None) -> Text:
    if check.layer_index < 0:
        return Text("-")
    cell = Text(str(check.layer_index))
    if check.item != "base" and base is not None and base.layers > 0:
        cell.append(" base" if finding_origin(check.layer_index, base) == "base" else " own", style="dim")
    return cell


def _details(check: CheckFinding) -> Text:
    # Cut after escaping, so an escaped control character counts at its printed width.
    cell = Text(_cut(clean(_line(check.description)), DETAILS_CHARS))
    if check.evidence:
        if cell.plain:
            cell.append("\n")
        cell.append(_cut(clean(check.evidence), EVIDENCE_CHARS), style="dim")
    return cell if cell.plain else Text("-")


_CHECK_COLUMNS = ("Severity", "Check", "Where", "Layer", "Details", "Remediation")
_MIN_FREE = 11  # the narrowest a wrapping column gets when the console has room ("Remediation" fits)


def _widest_line(text: Text) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))


def _share(natural: list[int], minimum: list[int], room: int) -> list[int]:
    """Widths for columns that wrap, together at most `room` (at least 1 each): each its minimum (never past its
    natural width), then the narrowest grows first up to its natural width. When even the minimums do not fit, the
    room is shared evenly."""
    widths = [min(n, m) for n, m in zip(natural, minimum, strict=True)]
    if sum(widths) > room:
        share = max(1, room // len(natural))
        return [min(n, share) for n in natural]
    left = room - sum(widths)
    while left > 0:
        growable = [i for i, w in enumerate(widths) if w < natural[i]]
        if not growable:
            break
        narrowest = min(growable, key=lambda i: widths[i])
        widths[narrowest] += 1
        left -= 1
    return widths


def _checks_table(checks: list[CheckFinding], base: BaseImage | None, width: int) -> Table:
    # Cells wrap within the console's width; a path folds (never cut: a shortened path misleads), the free text
    # (details, remediation) is cut at a fixed length.
    rows: list[list[Text]] = []
    for check in checks:
        severity = check_severity(check)
        rows.append([
            Text(severity, style=SEVERITY_STYLES[severity]),
            _check_cell(check),
            _where(check),
            _layer_cell(check, base),
            _details(check),
            Text(_cut(clean(_line(check.remediation)), REMEDIATION_CHARS)) if check.remediation.strip() else Text("-"),
        ])
    # The wrapping columns share what Severity and Layer leave of the console: each gets its minimum (the Check
    # column its longest id, up to ID_CHARS, so a rule id folds only when there is no room), then the narrowest
    # grows first, none past its natural width.
    fixed = sum(max(cell_len(header), *(_widest_line(row[i]) for row in rows))
                for i, header in ((0, "Severity"), (3, "Layer")))
    flexible = (1, 2, 4, 5)
    natural = [max(cell_len(_CHECK_COLUMNS[i]), *(_widest_line(row[i]) for row in rows)) for i in flexible]
    room = width - fixed - _COLUMN_GAP * (len(_CHECK_COLUMNS) - 1)
    longest_id = min(ID_CHARS, max(cell_len(clean(c.id)) for c in checks))
    minimum = [max(_MIN_FREE, min(longest_id, room - 3 * _MIN_FREE)), _MIN_FREE, _MIN_FREE, _MIN_FREE]
    widths = dict(zip(flexible, _share(natural, minimum, room), strict=True))

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    for i, header in enumerate(_CHECK_COLUMNS):
        if i in widths:
            table.add_column(header, overflow="fold", width=widths[i])
        else:
            table.add_column(header, no_wrap=True, justify="right" if header == "Layer" else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _check_sections(report: ScanReport, console: Console) -> dict[str, list[CheckFinding]]:
    """Print one section per item other than vulnerabilities that ran; returns the items with their findings."""
    sections = checks_by_item(report)
    for item, checks in sections.items():
        console.print()
        console.print(_text(f"{item_title(item)} ({len(checks)})", style="bold underline"))
        if checks:
            console.print(_checks_table(checks, report.base_image, console.width))
        else:
            console.print(Text("Nothing found.", style="green"))
        if item == "baseline" and report.password_check is not None:
            console.print(Text(clean(password_check_line(report.password_check))))
    return sections


def _severity_cell(counts: dict[str, int]) -> Text:
    cell = Text()
    for severity in SEVERITIES:
        if counts[severity]:
            if cell.plain:
                cell.append(", ")
            cell.append(f"{severity} {counts[severity]}", style=SEVERITY_STYLES[severity])
    return cell if cell.plain else Text("-", style="dim")


def _final_summary(report: ScanReport, sections: dict[str, list[CheckFinding]], console: Console) -> None:
    """One line per item that ran (vulnerabilities first): total, per severity, and, with a known base image, how
    many come from the base and how many from the image's own layers; then the total over every item."""
    grid = Table.grid(padding=(0, 2), pad_edge=False)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_column(overflow="fold")
    base = report.base_image
    total: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    if "vuln" in report.scanners or report.vulnerabilities:
        counts = severity_counts(report.vulnerabilities)
        total = {s: total[s] + counts[s] for s in SEVERITIES}
        grid.add_row(Text(f"  {item_title('vuln')}"), Text(str(len(report.vulnerabilities))), _severity_cell(counts),
                     Text(origin_words([f.package.layer_index for f in report.vulnerabilities], base)))
    for item, checks in sections.items():
        counts = check_severity_counts(checks)
        total = {s: total[s] + counts[s] for s in SEVERITIES}
        # The base item's findings are about the base itself: they come from neither.
        origins = "" if item == "base" else origin_words([c.layer_index for c in checks], base)
        grid.add_row(_text(f"  {item_title(item)}"), Text(str(len(checks))), _severity_cell(counts), Text(origins))
    everything = ""
    if base_is_known(report):
        from hullscan.checks.baseimage import split_by_base

        split = split_by_base(report)
        everything = (f"from base: {split.base.vulnerabilities + split.base.checks} / own layers: "
                      f"{split.image.vulnerabilities + split.image.checks}")
    grid.add_row(Text("  All items", style="bold"), Text(str(sum(total.values())), style="bold"),
                 _severity_cell(total), Text(everything, style="bold"))
    console.print()
    console.print(Text("Summary", style="bold"))
    console.print(grid)


def _ignored_text(entry: IgnoredFinding) -> Text:
    finding = entry.finding
    line = f"  {finding.id} in {finding.package.name} {finding.installed_version or finding.package.version}"
    details = [part for part in (entry.reason, f"until {entry.expires}" if entry.expires else "") if part]
    if details:
        line += f" ({'; '.join(details)})"
    return _text(line, style="dim")


def _files(report: ScanReport) -> Table:
    table = Table(title=f"Files ({len(report.file_inventory)})", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("Path", "Type", "Size", "Mode", "UID", "GID", "Layer", "SHA-256"):
        table.add_column(name, overflow="fold", justify="right" if name in ("Size", "UID", "GID", "Layer") else "left")
    for row in report.file_inventory:
        path = str(row["path"]) + (f" -> {row['linkname']}" if row.get("linkname") else "")
        table.add_row(_text(clean(path)), str(row["type"]), str(row["size"]), str(row["mode"]), str(row["uid"]),
                      str(row["gid"]), str(row["layer"]), str(row.get("sha256") or ""))
    return table


def render_report(
    report: ScanReport, console: Console, *, show_packages: bool = False, now: datetime | None = None
) -> None:
    """Print a scan report to `console`: the header (image, digest, OS, database age, base image), the
    vulnerabilities sorted by severity then package with their summary line (when the vulnerability scan ran), one
    section per other item that ran (a table of its findings, or "Nothing found."), a summary with one line per
    item, the ignored findings, and every warning (the image's and the detectors', e.g. an OS whose packages were
    not checked) in yellow. With a known base image, the summaries say how many findings come from the base and
    how many from the image's own layers. `show_packages` adds the inventory table before the vulnerabilities;
    `now` is the clock the database age is measured against (default: now)."""
    console.print(_report_header(report, now))
    console.print()
    if show_packages and report.facts.packages:
        console.print(_packages(report.facts))
        console.print(Text(summary_line(report.facts), style="bold"))
        console.print()
    if "vuln" in report.scanners or report.vulnerabilities:
        if report.vulnerabilities:
            console.print(_vulnerabilities(report.vulnerabilities, console.width, report.order))
            console.print()
        else:
            console.print(Text("No vulnerabilities found.", style="bold green"))
        console.print(Text(report_summary_line(report), style="bold"))
        kev = sum(1 for f in report.vulnerabilities if f.kev)
        if kev:
            console.print(Text(f"Known exploited (CISA KEV): {kev}", style="bold red"))
        if report.suppressed:
            console.print()
            console.print(Text(f"Suppressed by VEX ({len(report.suppressed)}; not counted)", style="bold"))
            console.print(_suppressed(report.suppressed))
    sections = _check_sections(report, console)
    if report.file_inventory:
        console.print(_files(report))
        console.print()
    if sections:
        _final_summary(report, sections, console)

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
