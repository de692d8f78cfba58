from __future__ import annotations

import io

from rich.console import Console

from hullscan.report import table

from . import ESCAPE_NAME, MANIFEST, MARKUP_NAME, SCRIPT_NAME, UNICODE_NAME, empty_facts, sample_facts


def _render(width: int = 100, **console_args: object) -> tuple[str, Console]:
    console = Console(record=True, width=width, file=io.StringIO(), **console_args)  # type: ignore[arg-type]
    table.render(sample_facts(), console)
    return console.export_text(), console


def test_header() -> None:
    text, _ = _render()
    assert "registry.example.com:5000/team/app:1.4" in text
    assert MANIFEST in text
    assert "Debian GNU/Linux 12 (bookworm)" in text
    assert "linux/arm64/v8" in text
    header = {line.split()[0]: line.split()[1:] for line in text.splitlines()[:5]}
    assert header["Layers"] == ["3"]


def test_every_package_row_at_a_wide_console() -> None:
    text, _ = _render(width=250)
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    for pkg in sample_facts().packages:
        line = next(
            row for row in text.splitlines()
            if row.startswith(table.clean(pkg.name) + " ") and row.rstrip().endswith(" " + pkg.path)
        )
        assert f" {pkg.version} " in line and f" {pkg.ecosystem} " in line
        assert (f" {pkg.layer_index} " if pkg.layer_index >= 0 else " - ") in line
        for licence in pkg.licenses:
            assert licence in line
    assert "GPLv2+ and weird" in rows["glibc"]
    assert "GPL-3.0-or-later, BSD-4-Clause-UC" in rows["bash"]
    for column in ("Name", "Version", "Type", "Licence", "Layer", "Path"):
        assert column in text


def test_rows_sorted() -> None:
    text, _ = _render(width=250)
    names = [table.clean(p.name) for p in sample_facts().packages]
    first_words = [line.split(" ")[0] for line in text.splitlines() if line.split(" ")[0] in names]
    assert first_words[:3] == ["musl", "bash", "openssl"]  # apk, then deb by name
    assert first_words[-2:] == ["glibc", "zlib"]


def test_fits_100_columns() -> None:
    text, _ = _render(width=100)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "17 packages: apk 1, deb 2, golang 2, maven 1, npm 4, pypi 5, rpm 2" in text
    assert "requests" in text and "@angular/core" in text


def test_hostile_names_print_literally() -> None:
    text, console = _render(width=250)
    assert MARKUP_NAME in text  # not swallowed as Rich markup
    assert SCRIPT_NAME in text
    assert UNICODE_NAME in text
    assert "\x1b" not in text
    assert table.clean(ESCAPE_NAME) == "evil\\x1b[31mred\\x1b[0m"
    assert table.clean(ESCAPE_NAME) in text
    assert "[red]../../etc/passwd[/red]" in text  # in a note
    assert table.clean("a\u202eb\nc") == "a\\u202eb\\x0ac"


def test_notes_at_the_end_in_yellow() -> None:
    text, _ = _render()
    tail = text[text.index("17 packages"):]
    assert "Warnings (3)" in tail
    assert "layer.too_big: layer 2 exceeds the size cap" in tail
    assert "(../../etc/passwd, layer 1)" in tail
    assert "db.corrupt: rpm database could not be read" in tail
    buf = io.StringIO()
    coloured = Console(file=buf, width=100, force_terminal=True, color_system="standard")
    table.render(sample_facts(), coloured)
    out = buf.getvalue()
    assert "\x1b[33m! db.corrupt" in out  # yellow


def test_no_escape_codes_off_terminal_or_with_no_color() -> None:
    buf = io.StringIO()
    plain = Console(file=buf, width=100)
    assert not plain.is_terminal
    table.render(sample_facts(), plain)
    assert "\x1b" not in buf.getvalue()
    assert "db.corrupt" in buf.getvalue()

    buf = io.StringIO()
    no_color = Console(file=buf, width=100, force_terminal=True, no_color=True)
    table.render(sample_facts(), no_color)
    assert "\x1b[33m" not in buf.getvalue() and "db.corrupt" in buf.getvalue()


def test_empty_image() -> None:
    console = Console(record=True, width=100, file=io.StringIO())
    table.render(empty_facts(), console)
    text = console.export_text()
    assert "No packages found." in text
    assert "Name" not in text
    assert "unknown" in text  # digest and OS
    assert "Warnings" not in text
