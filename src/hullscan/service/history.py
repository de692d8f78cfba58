"""What stored scans say over time: the difference between two reports, summaries of a registry or a namespace
(images by worst severity, scans by state) and successful scans counted per month (what the product bills).

Read-only and HTTP-free: the API's routers call these.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hullscan.findings import SEVERITIES, ScanReport, severity_rank
from hullscan.service.storage.models import STATES, SUCCEEDED, Image, Scan

NONE, UNSCANNED = "NONE", "UNSCANNED"  # no vulnerability at all; no successful scan yet


@dataclass(frozen=True)
class DiffEntry:
    item: str  # vuln, secret, malware, baseline, ...
    id: str  # the vulnerability or rule id
    severity: str
    title: str
    package: str | None = None
    version: str | None = None
    path: str | None = None


@dataclass
class ReportDiff:
    new: list[DiffEntry] = field(default_factory=list)  # in the later scan only
    fixed: list[DiffEntry] = field(default_factory=list)  # in the earlier scan only
    unchanged: int = 0

    def counts(self) -> dict[str, dict[str, int]]:
        return {"new": dict(Counter(e.item for e in self.new)), "fixed": dict(Counter(e.item for e in self.fixed))}


def _entries(report: ScanReport) -> dict[tuple[Any, ...], DiffEntry]:
    """Every finding under a key that survives a rebuild: a vulnerability by id and package (not version: a bump
    that is still vulnerable is the same finding), anything else by rule, file and title. Repeats of one key are
    numbered, so two identical secrets in a file stay two."""
    seen: Counter[tuple[Any, ...]] = Counter()
    out: dict[tuple[Any, ...], DiffEntry] = {}

    def put(key: tuple[Any, ...], entry: DiffEntry) -> None:
        seen[key] += 1
        out[(*key, seen[key])] = entry

    for f in report.vulnerabilities:
        p = f.package
        put(("vuln", f.id.upper(), p.ecosystem, p.name, p.path),
            DiffEntry("vuln", f.id, f.severity.upper(), f.title, p.name, p.version, p.path or None))
    for c in report.checks:
        put((c.item, c.id, c.path, c.title),
            DiffEntry(c.item, c.id, c.severity.upper(), c.title, path=c.path or None))
    return out


def _order(entries: Iterable[DiffEntry]) -> list[DiffEntry]:
    return sorted(entries, key=lambda e: (-severity_rank(e.severity), e.item, e.id, e.package or "", e.path or ""))


def diff_reports(earlier: ScanReport, later: ScanReport) -> ReportDiff:
    before, after = _entries(earlier), _entries(later)
    return ReportDiff(new=_order(after[k] for k in after.keys() - before.keys()),
                      fixed=_order(before[k] for k in before.keys() - after.keys()),
                      unchanged=len(after.keys() & before.keys()))


def worst_severity(counts: dict[str, Any] | None) -> str:
    """The highest severity with a vulnerability in a scan's counts; NONE when there is none."""
    per = (counts or {}).get("vulnerabilities") or {}
    for severity in SEVERITIES:
        if per.get(severity):
            return severity
    return NONE


@dataclass
class Summary:
    images: int = 0
    images_by_worst_severity: dict[str, int] = field(default_factory=dict)
    scans_by_state: dict[str, int] = field(default_factory=dict)


def summarise(session: Session, where: list[ColumnElement[bool]]) -> Summary:
    """Present images by the worst severity of their last successful scan, and every scan by state, of the images
    matching `where` (conditions on Image: a registry, a namespace, the namespaces a user may see)."""
    by_worst = dict.fromkeys((*SEVERITIES, NONE, UNSCANNED), 0)
    rows = session.execute(select(Scan.counts).select_from(Image)
                           .outerjoin(Scan, Image.last_scan_id == Scan.id).where(Image.present, *where)).all()
    for (counts,) in rows:
        by_worst[UNSCANNED if counts is None else worst_severity(counts)] += 1
    by_state = dict.fromkeys(STATES, 0)
    for state, n in session.execute(select(Scan.state, func.count()).join(Image, Scan.image_id == Image.id)
                                    .where(*where).group_by(Scan.state)):
        by_state[state] = n
    return Summary(images=len(rows), images_by_worst_severity=by_worst, scans_by_state=by_state)


def month_of(session: Session, column: Any) -> Any:
    """`YYYY-MM` of a UTC timestamp column, in the database's own dialect."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)  # SQLite keeps UTC timestamps as text


def month_start(month: str) -> dt.datetime:
    year, mon = (int(x) for x in month.split("-"))
    return dt.datetime(year, mon, 1, tzinfo=dt.UTC)


def next_month(month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def usage(session: Session, registry_id: int, since: str, until: str) -> list[tuple[str, int, int]]:
    """(month, successful scans, successful re-evaluations) of a registry for every month from `since` to `until`
    (YYYY-MM, both included), by the time each finished. Months without a scan are listed with zeros."""
    month = month_of(session, Scan.finished_at)
    found: dict[tuple[str, str], int] = {
        (m, kind): n for m, kind, n in session.execute(
            select(month, Scan.kind, func.count())
            .where(Scan.registry_id == registry_id, Scan.state == SUCCEEDED,
                   Scan.finished_at >= month_start(since), Scan.finished_at < month_start(next_month(until)))
            .group_by(month, Scan.kind))}
    out = []
    current = since
    while current <= until:
        out.append((current, found.get((current, "scan"), 0), found.get((current, "reevaluate"), 0)))
        current = next_month(current)
    return out
