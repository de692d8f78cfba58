"""A self-contained HTML report: one page, inline CSS, no script, every image-derived string escaped.

Jinja2 with autoescaping does the escaping; nothing from the image is ever marked safe, so a package
called `<script>` prints as text.
"""

from __future__ import annotations

from collections import Counter
from importlib.resources import files

from jinja2 import Environment, select_autoescape

from hullscan.findings import ITEMS, SEVERITIES, CheckFinding, ScanReport
from hullscan.report import (
    ITEM_TITLES,
    coverage_words,
    epss_words,
    rating_words,
    severity_counts,
    sorted_findings,
    sorted_packages,
    tool_version,
)


def _env() -> Environment:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["sevclass"] = lambda s: str(s).lower() if str(s).upper() in SEVERITIES else "unknown"
    env.filters["rating"] = rating_words
    env.filters["epss"] = epss_words
    return env


def _sorted_checks(checks: list[CheckFinding]) -> list[CheckFinding]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(checks, key=lambda c: (order.get(c.severity.upper(), len(order)), c.id, c.path))


def render(report: ScanReport) -> str:
    template = _env().from_string(files("hullscan.report").joinpath("templates/report.html.j2").read_text("utf-8"))
    by_item: dict[str, list[CheckFinding]] = {}
    for c in report.checks:
        by_item.setdefault(c.item, []).append(c)
    totals: Counter[str] = Counter(severity_counts(report.vulnerabilities))
    for c in report.checks:
        totals[c.severity.upper() if c.severity.upper() in SEVERITIES else "UNKNOWN"] += 1
    sections = [(item, ITEM_TITLES[item], _sorted_checks(by_item.get(item, [])))
                for item in ITEMS if item != "vuln" and (item in report.scanners or item in by_item)]
    return template.render(
        report=report, facts=report.facts, version=tool_version(), severities=SEVERITIES,
        totals=[(s, totals.get(s, 0)) for s in SEVERITIES], vulns=sorted_findings(report.vulnerabilities, report.order),
        vuln_ran="vuln" in report.scanners, sections=sections, packages=sorted_packages(report.facts),
        notes=[*report.facts.notes, *report.notes], unchecked=coverage_words(report),
    )
