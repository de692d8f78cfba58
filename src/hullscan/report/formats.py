"""One renderer interface: `render(report, fmt, out)`, the format looked up by name.

Each format names the module that draws it, imported only when that format is asked for (spdx-tools alone takes
a good part of a second to load). A report of kind "sbom" is drawn as an inventory; any other as a scan
report with every item's findings. The CLI and the service render through here alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from hullscan.findings import ScanReport


@dataclass(frozen=True)
class RenderOptions:
    width: int | None = None  # table columns; None: the terminal's (or $COLUMNS)
    color: bool | None = None  # None: when writing to a terminal
    show_packages: bool = False  # the table lists the inventory too
    verbose: bool = False  # the table shows routine warnings and each finding's description and fix


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    scan: bool  # offered for scan reports
    sbom: bool  # offered for inventories
    description: str


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("table", "text/plain", "txt", True, True, "a table for people"),
    Format("json", "application/json", "json", True, True, "hullscan's own JSON document"),
    Format("sarif", "application/sarif+json", "sarif", True, False, "SARIF 2.1.0, for code-scanning dashboards"),
    Format("cyclonedx", "application/vnd.cyclonedx+json", "cdx.json", True, True, "CycloneDX 1.6 JSON"),
    Format("spdx-json", "application/spdx+json", "spdx.json", True, True, "SPDX 2.3 JSON (inventory only)"),
    Format("spdx", "text/spdx", "spdx", True, True, "SPDX 2.3 tag-value (inventory only), as Trivy's -f spdx"),
    Format("html", "text/html", "html", True, False, "a self-contained HTML page"),
    Format("openvex", "application/json", "openvex.json", True, False,
           "OpenVEX: the ignore file's triage of this image, to publish"),
]}


class UnknownFormat(ValueError):
    pass


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormat(f"unknown format {name!r}; choose from {', '.join(FORMATS)}") from None


def render(report: ScanReport, fmt: str, out: TextIO, options: RenderOptions | None = None) -> None:
    """Write `report` to `out` in format `fmt`."""
    get(fmt)
    _WRITERS[fmt](report, out, options or RenderOptions())


def render_text(report: ScanReport, fmt: str, options: RenderOptions | None = None) -> str:
    buf = io.StringIO()
    render(report, fmt, buf, options or RenderOptions(width=160, color=False))
    return buf.getvalue()


def _text(out: TextIO, text: str) -> None:
    out.write(text if text.endswith("\n") else text + "\n")


def _table(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from rich.console import Console

    from hullscan.report import table

    console = Console(file=out, width=options.width, no_color=options.color is False, highlight=False,
                      force_terminal=options.color or None)
    if report.kind == "sbom":
        table.render(report.facts, console, verbose=options.verbose)
    else:
        table.render_report(report, console, show_packages=options.show_packages, verbose=options.verbose)


def _json(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import json_report

    _text(out, json_report.render(report.facts) if report.kind == "sbom" else json_report.render_report(report))


def _cyclonedx(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import cyclonedx

    _text(out, cyclonedx.render(report.facts) if report.kind == "sbom" else cyclonedx.render_report(report))


def _spdx_json(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import spdx

    _text(out, spdx.render(report.facts))


def _spdx_tag_value(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import spdx

    _text(out, spdx.render_tag_value(report.facts))


def _sarif(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import sarif

    _text(out, sarif.render(report))


def _html(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import html

    _text(out, html.render(report))


def _openvex(report: ScanReport, out: TextIO, options: RenderOptions) -> None:
    from hullscan.report import openvex

    _text(out, openvex.render(report))


_WRITERS: dict[str, Callable[[ScanReport, TextIO, RenderOptions], None]] = {
    "table": _table, "json": _json, "sarif": _sarif, "cyclonedx": _cyclonedx, "spdx-json": _spdx_json,
    "spdx": _spdx_tag_value, "html": _html, "openvex": _openvex,
}
