"""The scan report page's model: one tab per scan item, the severity summary, and the filters (severity,
fixed/unfixed, package, layer), computed from the stored ScanReport with the same helpers the renderers use
(hullscan.report: ordering, counts, origins). Pure: no HTTP, no database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hullscan.findings import SEVERITIES, CheckFinding, ScanReport, VulnFinding
from hullscan.model import LayerInfo, Package
from hullscan.report import (
    check_severity,
    finding_origin,
    is_fixable,
    severity_counts,
    severity_of,
    sorted_checks,
    sorted_findings,
    sorted_packages,
)


@dataclass(frozen=True)
class Tab:
    key: str
    title: str
    item: str  # the scan item it shows ("" for the inventory)


# The report's tabs, in the order the product brief names the scan items.
TABS = (
    Tab("vuln", "Vulnerabilities", "vuln"),
    Tab("malware", "Malicious files", "malware"),
    Tab("software", "Software", ""),
    Tab("file", "Files", "file"),
    Tab("baseline", "Baseline", "baseline"),
    Tab("secret", "Sensitive information", "secret"),
    Tab("compliance", "Compliance", "compliance"),
    Tab("base", "Base image", "base"),
)
TAB_KEYS = tuple(t.key for t in TABS)
PAGE_SIZE = 200


@dataclass(frozen=True)
class Filters:
    severities: tuple[str, ...] = ()  # empty: every severity
    fixed: str = ""  # "" | fixed | unfixed
    package: str = ""  # a substring of the package name (or of a finding's path, outside vulnerabilities)
    layer: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], severities: Iterable[str]) -> Filters:
        wanted = tuple(s for s in SEVERITIES if s in {v.upper() for v in severities})
        fixed = params.get("fixed", "")
        layer_text = params.get("layer", "")
        return cls(wanted, fixed if fixed in ("fixed", "unfixed") else "", params.get("package", "").strip()[:200],
                   int(layer_text) if layer_text.isdecimal() and len(layer_text) < 5 else None)

    @property
    def active(self) -> bool:
        return bool(self.severities or self.fixed or self.package or self.layer is not None)

    def _severity(self, severity: str) -> bool:
        return not self.severities or severity in self.severities

    def _text(self, *values: str) -> bool:
        needle = self.package.lower()
        return not needle or any(needle in v.lower() for v in values if v)

    def _layer(self, index: int) -> bool:
        return self.layer is None or index == self.layer

    def vuln(self, f: VulnFinding) -> bool:
        fixed_ok = not self.fixed or (is_fixable(f) == (self.fixed == "fixed"))
        return (self._severity(severity_of(f)) and fixed_ok and self._text(f.package.name)
                and self._layer(f.package.layer_index))

    def check(self, c: CheckFinding) -> bool:
        package = c.metadata.get("package", "")
        return self._severity(check_severity(c)) and self._text(c.path, package, c.title) and self._layer(
            c.layer_index)

    def package_row(self, p: Package) -> bool:
        return self._text(p.name, p.path) and self._layer(p.layer_index)


@dataclass
class Layer:
    index: int
    diff_id: str
    created_by: str
    origin: str  # base | image | unknown


@dataclass
class ReportView:
    report: ScanReport
    tab: Tab
    filters: Filters
    counts: dict[str, int]  # tab key -> findings (packages for software)
    ran: dict[str, bool]  # tab key -> the item ran in this scan
    summary: dict[str, int]  # every finding of every item by severity
    vuln_summary: dict[str, int]
    layers: list[Layer]
    rows: list[object] = field(default_factory=list)  # the current tab's rows after filtering, this page only
    matched: int = 0  # rows after filtering, every page
    page: int = 1
    pages: int = 1
    vuln_by_package: dict[tuple[str, str, str], int] = field(default_factory=dict)  # software tab

    def origin(self, layer_index: int) -> str:
        return finding_origin(layer_index, self.report.base_image)


def _layers(report: ScanReport) -> list[Layer]:
    layers: list[LayerInfo] = report.facts.layers
    return [Layer(la.index, la.diff_id, la.created_by, finding_origin(la.index, report.base_image)) for la in layers]


def build(report: ScanReport, tab_key: str, filters: Filters, page: int = 1) -> ReportView:
    tab = next((t for t in TABS if t.key == tab_key), TABS[0])
    by_item: dict[str, list[CheckFinding]] = {}
    for c in sorted_checks(report.checks):
        by_item.setdefault(c.item, []).append(c)
    counts = {t.key: len(report.vulnerabilities) if t.key == "vuln" else len(report.facts.packages)
              if t.key == "software" else len(by_item.get(t.item, [])) for t in TABS}
    ran = {t.key: t.key == "software" or t.item in report.scanners or counts[t.key] > 0 for t in TABS}
    summary = dict(severity_counts(report.vulnerabilities))
    for c in report.checks:
        summary[check_severity(c)] += 1
    view = ReportView(report, tab, filters, counts, ran, summary, severity_counts(report.vulnerabilities),
                      _layers(report))
    rows: list[object]
    if tab.key == "vuln":
        rows = [f for f in sorted_findings(report.vulnerabilities, report.order) if filters.vuln(f)]
    elif tab.key == "software":
        rows = [p for p in sorted_packages(report.facts) if filters.package_row(p)]
        for f in report.vulnerabilities:
            key = (f.package.ecosystem, f.package.name, f.package.version)
            view.vuln_by_package[key] = view.vuln_by_package.get(key, 0) + 1
    else:
        rows = [c for c in by_item.get(tab.item, []) if filters.check(c)]
    view.matched = len(rows)
    view.pages = max(1, -(-len(rows) // PAGE_SIZE))
    view.page = min(max(page, 1), view.pages)
    view.rows = rows[(view.page - 1) * PAGE_SIZE:view.page * PAGE_SIZE]
    return view
