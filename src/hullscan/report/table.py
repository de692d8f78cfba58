"""A Rich rendering of an image's software inventory, for people at a terminal.

Everything shown comes from the image, so every string is attacker-controlled: it is printed as plain
:class:`rich.text.Text` (never parsed as Rich markup) with control and formatting characters escaped, so a
package named ``"\\x1b[2J"`` or ``"[bold]x[/bold]"`` prints literally. Colours come from styles only; a console
that is not a terminal, or has ``no_color`` set, prints none.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hullscan.model import ImageFacts, Note, OSInfo
from hullscan.report import ecosystem_counts, sorted_packages


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
