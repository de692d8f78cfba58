"""Rows and text fitted to a width without ever breaking a version, a name, an id or a path.

A table column holds either tokens (names, versions, ids, paths, counts: never split) or free text (a title, a
licence list: cut with a visible "…" to the room left). When the columns do not fit the width, the least important
ones leave the row and are printed under it, indented ("Fixed in: 2.15.0   Layer: 2"). Free text outside tables
wraps between words only. A single token longer than the whole width runs past it: a terminal then wraps it
visually, but copying, grepping and reading it get it whole, which a folded or cut token would not allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

GAP = 2  # spaces between two columns
INDENT = 4  # where the lines under a row start
ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    header: str
    rank: int = 0  # when the row is too wide, columns leave it highest rank first; 0 only when nothing else helps
    text: bool = False  # free text: cut with an ellipsis to the room left (tokens are never cut)
    min_width: int = 12  # a text column that would get less than this leaves the row instead
    max_width: int | None = None  # a text column never gets more than this
    right: bool = False  # right-aligned (numbers)


How = Literal["cut", "wrap", "whole"]


@dataclass
class Below:
    """A line printed under a row: cut to the width with an ellipsis, wrapped between words, or kept whole."""

    text: Text
    how: How = "cut"


@dataclass
class Row:
    cells: list[Text]
    below: list[Below] = field(default_factory=list)


def _natural(column: Column, cells: Iterable[Text]) -> int:
    return max([cell_len(column.header), *(c.cell_len for c in cells)])


def layout(columns: Sequence[Column], rows: Sequence[Row], width: int) -> tuple[list[int], dict[int, int]]:
    """Which columns stay in the row (their indices) and the width of each."""
    natural = [_natural(col, (row.cells[i] for row in rows)) for i, col in enumerate(columns)]

    def needed(indices: list[int]) -> int:
        tokens = sum(natural[i] for i in indices if not columns[i].text)
        texts = sum(min(natural[i], columns[i].min_width) for i in indices if columns[i].text)
        return tokens + texts + GAP * (len(indices) - 1)

    # The row keeps the most important columns that fit (rank 0 first, then rank by rank, never skipping one to
    # make room for a less important one); if even the rank-0 columns do not fit, the first column alone.
    order = sorted(range(len(columns)), key=lambda i: (columns[i].rank, i))
    base = [i for i in order if columns[i].rank == 0]
    shown = sorted(base) if needed(sorted(base)) <= width else [0]
    for i in order:
        if i in shown or i in base:
            continue
        if needed(sorted([*shown, i])) > width:
            break
        shown = sorted([*shown, i])
    widths = {i: natural[i] for i in shown if not columns[i].text}
    texts = [i for i in shown if columns[i].text]
    room = width - sum(widths.values()) - GAP * (len(shown) - 1)
    for n, i in enumerate(texts):
        share = max(0, room // (len(texts) - n))
        cap = columns[i].max_width or natural[i]
        widths[i] = max(min(natural[i], cap, share), min(columns[i].min_width, natural[i]))
        room -= widths[i]
    return shown, widths


def _pad(cell: Text, width: int, right: bool) -> Text:
    out = cell.copy()
    if out.cell_len > width:
        out.truncate(width, overflow="ellipsis")
    pad = " " * (width - out.cell_len)
    return Text(pad).append_text(out) if right else out.append(pad)


def table_lines(columns: Sequence[Column], rows: Sequence[Row], width: int, header_style: str = "bold",
                below_style: str = "dim") -> list[Text]:
    """The lines of a table: header, rule, then each row and the lines under it."""
    shown, widths = layout(columns, rows, width)
    gap = " " * GAP
    lines = [Text(gap.join(columns[i].header.ljust(widths[i]) if not columns[i].right
                           else columns[i].header.rjust(widths[i]) for i in shown).rstrip(), style=header_style)]
    lines.append(Text("─" * min(width, cell_len(lines[0].plain)), style="dim"))
    moved = sorted((i for i in range(len(columns)) if i not in shown), key=lambda i: (columns[i].rank, i))
    room = max(20, width - INDENT)
    for row in rows:
        line = Text(gap).join(_pad(row.cells[i], widths[i], columns[i].right) for i in shown)
        line.rstrip()
        lines.append(line)
        under: list[Below] = []
        tokens = [(columns[i].header, row.cells[i]) for i in moved if not columns[i].text and _shown(row.cells[i])]
        under.extend(Below(t, "whole") for t in _labelled(tokens, room))
        under.extend(Below(row.cells[i], "cut") for i in moved if columns[i].text and _shown(row.cells[i]))
        under.extend(row.below)
        for extra in under:
            for text in _shaped(extra, room):
                out = Text(" " * INDENT).append_text(text)
                out.stylize(below_style)
                lines.append(out)
    return lines


def _shown(cell: Text) -> bool:
    return cell.plain.strip() not in ("", "-")


def _labelled(pairs: list[tuple[str, Text]], room: int) -> list[Text]:
    """`Header: value` pairs on as few lines as fit, never splitting a pair."""
    lines: list[Text] = []
    current = Text()
    for header, value in pairs:
        pair = Text(f"{header}: ").append_text(value)
        if current.plain and current.cell_len + 3 + pair.cell_len > room:
            lines.append(current)
            current = Text()
        if current.plain:
            current.append("   ")
        current.append_text(pair)
    if current.plain:
        lines.append(current)
    return lines


def _shaped(below: Below, room: int) -> list[Text]:
    if below.how == "whole":
        return [below.text]
    if below.how == "wrap":
        return wrap_words(below.text, room)
    text = below.text.copy()
    if text.cell_len > room:
        text.truncate(room, overflow="ellipsis")
    return [text]


def wrap_words(text: Text, width: int, indent: int = 0) -> list[Text]:
    """`text` on lines of at most `width` cells, broken only at spaces (a word longer than the width stays whole on
    a line of its own); continuation lines start with `indent` spaces."""
    plain = text.plain
    offsets: list[int] = []
    start = 0  # where the current line starts in `plain`
    limit = width
    pos = 0
    while pos < len(plain):
        space = plain.find(" ", pos)
        end = len(plain) if space < 0 else space
        if cell_len(plain[start:end]) > limit and pos > start:
            offsets.append(pos)
            start = pos
            limit = width - indent
        pos = end + 1
    lines = text.divide(offsets) if offsets else [text.copy()]
    out = []
    for n, line in enumerate(lines):
        line.rstrip()
        out.append(Text(" " * indent).append_text(line) if n and indent else line)
    return list(out)


def print_lines(console: Console, lines: Iterable[Text]) -> None:
    """Print lines as they are: Rich must not re-wrap, fold or crop them."""
    for line in lines:
        console.print(line, soft_wrap=True)


def print_wrapped(console: Console, text: Text, indent: int = 0) -> None:
    """Print free text wrapped between words at the console's width."""
    print_lines(console, wrap_words(text, console.width, indent))
