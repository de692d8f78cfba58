"""Matching an image's packages against the advisory store: one finding per vulnerability per package.

For every package: the OSV ecosystems and names to query (vulndb.ecosystems), a lookup per (ecosystem,
name), and each affected entry evaluated as the OSV schema says: the version is affected when it is
listed in `versions` or lies in any ECOSYSTEM/SEMVER range (GIT ranges are not stored; withdrawn
records are never matched). The fixed versions shown are the `fixed` events, above the installed
version, of the ranges that matched.

Aliases collapse into one finding per vulnerability per package:

- A record's identity is its id plus its `aliases`, plus its `upstream` id when it names exactly one
  (ALPINE-CVE-2019-1551 is CVE-2019-1551 for Alpine; DEBIAN-CVE-x, UBUNTU-CVE-x likewise). `related`
  ids are other vulnerabilities and never merge.
- A *notice* (Debian DSA/DLA, Ubuntu USN, Red Hat RHSA, AlmaLinux ALSA, Rocky RLSA, SUSE-SU, ...), or any
  record whose `upstream` names several ids, is one update fixing several vulnerabilities, not one
  vulnerability. It yields one finding per CVE it lists (in `upstream`, else `related`), each naming the
  notice in `advisory_ids`, like Trivy reports a DSA's CVEs one by one. A notice listing no CVE is one
  finding under its own id. So DSA-5343-1 (openssl, 5 CVEs) against libssl1.1 gives five findings
  CVE-2022-2097 ... CVE-2023-0286, each with advisory_ids ["DSA-5343-1"], and a GHSA or DEBIAN-CVE
  record for one of those CVEs joins that finding instead of adding another.
- Findings are keyed by CVE when one is known, else GHSA, else an upstream id, else the record id;
  `aliases` lists the vulnerability's other ids, `advisory_ids` every record that matched.

Severity: each record is rated for the matched package (vulndb.severity: vendor first, else CVSS) and
the finding takes the highest rating among its records; a notice's own rating, which covers all its
CVEs at once, counts only when no record about the single vulnerability rates it.

Speed: lookups are cached per (ecosystem, name) and findings per (ecosystems, names, version), so the
binary packages of one source package (or the same library at several paths) are matched once; parsed
versions are cached by vulndb.versions; the cyclic garbage collector is paused while matching.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from hullscan.findings import VulnFinding, severity_rank
from hullscan.model import OS_ECOSYSTEMS, ImageFacts, Note, Package
from hullscan.vulndb import versions
from hullscan.vulndb.ecosystems import (
    OSEcosystems,
    family_ecosystems,
    language_ecosystem,
    os_family,
    query_names,
    query_version,
    resolve_os,
    rpm_evr,
)
from hullscan.vulndb.enrich import enrich_findings
from hullscan.vulndb.model import Advisory, AdvisoryStore, Affected
from hullscan.vulndb.severity import Severity, assess, highest

VERSION_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})

# Advisory ids that announce an update (which may fix several vulnerabilities), not one vulnerability.
NOTICE_PREFIXES = (
    "DSA-", "DLA-", "DTSA-", "ELA-", "USN-", "LSN-", "RHSA-", "RHBA-", "RHEA-", "ALSA-", "ALBA-", "ALEA-",
    "RLSA-", "RLBA-", "RLEA-", "RXSA-", "SUSE-SU-", "SUSE-RU-", "SUSE-FU-", "SUSE-OU-", "openSUSE-SU-",
    "openSUSE-RU-", "MGASA-", "PHSA-", "ELSA-", "FEDORA-", "ALAS-", "ALAS2-",
)
_CVE = re.compile(r"^CVE-(\d{4})-(\d+)$")


@dataclass
class MatchResult:
    findings: list[VulnFinding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # packages checked, per OSV ecosystem ("Debian:11")
    # packages not checked, per OSV ecosystem without data ("Debian:12", "crates.io"), or per hullscan package
    # ecosystem when no OSV ecosystem applies ("deb" on an unidentified OS)
    unchecked: dict[str, int] = field(default_factory=dict)


@dataclass
class Hit:
    """One advisory that applies to one package version."""

    advisory: Advisory
    entries: list[Affected]  # the affected entries that matched
    fixed: list[str]  # fixed versions above the installed one, from the matched ranges
    severity: Severity


# -- evaluating one affected entry ---------------------------------------------------------------------------


def _above(ecosystem: str, candidate: str, version: str) -> bool:
    try:
        return versions.compare(ecosystem, candidate, version) > 0
    except (versions.InvalidVersion, ValueError):
        return True  # cannot tell: show it


def entry_matches(entry: Affected, version: str) -> tuple[bool, list[str]]:
    """Whether `version` is affected by this entry, and the fixed versions of the ranges that say so."""
    matched = []
    usable = []
    for r in entry.ranges:
        if r.type not in VERSION_RANGE_TYPES:
            continue
        usable.append(r)
        try:
            if versions.in_range(entry.ecosystem, version, r.events, r.type):
                matched.append(r)
        except (versions.InvalidVersion, ValueError):
            continue
    if not matched and version not in entry.versions:
        return False, []
    # Listed in `versions` but in no range (or no range parses): the entry's fixes still say where to go.
    source = matched or usable
    fixed: list[str] = []
    for r in source:
        for kind, value in r.events:
            if kind == "fixed" and value not in fixed and _above(entry.ecosystem, value, version):
                fixed.append(value)
    return True, fixed


def _sort_versions(ecosystem: str, values: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(values))
    if len(unique) < 2:
        return unique
    try:
        return sorted(unique, key=lambda v: versions.sort_key(ecosystem, v))
    except (versions.InvalidVersion, ValueError, TypeError):
        return sorted(unique)


# -- alias collapse -------------------------------------------------------------------------------------------


def is_notice(advisory: Advisory) -> bool:
    return advisory.id.startswith(NOTICE_PREFIXES) or len(advisory.upstream) > 1


def vulnerability_ids(advisory: Advisory) -> list[list[str]]:
    """The vulnerabilities a record describes, each as the ids that name it (see the module docstring)."""
    if is_notice(advisory):
        covered = advisory.upstream or advisory.related
        if covered:
            return [[v] for v in dict.fromkeys(covered)]
        return [[advisory.id, *advisory.aliases]]
    ids = [advisory.id, *advisory.aliases]
    if len(advisory.upstream) == 1:
        ids.append(advisory.upstream[0])
    return [list(dict.fromkeys(ids))]


def _cve_key(cve: str) -> tuple[int, int, str]:
    m = _CVE.match(cve)
    return (int(m.group(1)), int(m.group(2)), cve) if m else (0, 0, cve)


def primary_id(ids: Collection[str], record_ids: Collection[str]) -> str:
    """CVE first (the oldest when a group holds several), then GHSA, then an upstream id, then a record id."""
    cves = [i for i in ids if i.startswith("CVE-") and _CVE.match(i)]
    if cves:
        return min(cves, key=_cve_key)
    ghsa = sorted(i for i in ids if i.startswith("GHSA-"))
    if ghsa:
        return ghsa[0]
    upstream = sorted(i for i in ids if i not in record_ids)
    if upstream:
        return upstream[0]
    return sorted(ids)[0] if ids else sorted(record_ids)[0]


class _Groups:
    """Union-find over vulnerability ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, ids: Sequence[str]) -> str:
        root = self.find(ids[0])
        for other in ids[1:]:
            r = self.find(other)
            if r != root:
                self.parent[r] = root
        return root


def collapse(pkg: Package, hits: Sequence[Hit], installed: str, compare_ecosystem: str) -> list[VulnFinding]:
    """The findings for one package: hits grouped into vulnerabilities."""
    groups = _Groups()
    units: list[tuple[list[str], Hit, bool]] = []  # (ids, hit, the hit is a notice covering several)
    for hit in hits:
        vulns = vulnerability_ids(hit.advisory)
        shared = is_notice(hit.advisory) and len(vulns) > 1
        for ids in vulns:
            groups.union(ids)
            units.append((ids, hit, shared))
    by_root: dict[str, list[tuple[list[str], Hit, bool]]] = {}
    for unit in units:
        by_root.setdefault(groups.find(unit[0][0]), []).append(unit)
    return [_finding(pkg, members, installed, compare_ecosystem) for members in by_root.values()]


def _finding(pkg: Package, members: list[tuple[list[str], Hit, bool]], installed: str,
             compare_ecosystem: str) -> VulnFinding:
    ids: list[str] = []
    for unit_ids, _hit, _shared in members:
        ids.extend(unit_ids)
    ids = list(dict.fromkeys(ids))
    hits: dict[str, tuple[Hit, bool]] = {hit.advisory.id: (hit, shared) for _ids, hit, shared in members}
    record_ids = sorted(hits)
    vid = primary_id(ids, record_ids)
    # Records about this one vulnerability first, then notices; the finding's text comes from the first.
    ordered = sorted(hits.values(), key=lambda hs: (hs[1], is_notice(hs[0].advisory), hs[0].advisory.id != vid,
                                                   hs[0].advisory.id))
    own = [h.severity for h, shared in ordered if not shared]
    rated = [s for s in own if s.level != "UNKNOWN"]
    severity = highest(rated) if rated else highest([h.severity for h, _ in ordered])
    fixed = _sort_versions(compare_ecosystem, (v for h, _ in ordered for v in h.fixed))
    title = next((h.advisory.summary for h, _ in ordered if h.advisory.summary), "")
    description = next((h.advisory.details for h, _ in ordered if h.advisory.details), "")
    if not title and description:
        title = description.strip().splitlines()[0].strip()
    references = list(dict.fromkeys(url for h, _ in ordered for _t, url in h.advisory.references))
    published = min((h.advisory.published for h, _ in ordered if h.advisory.published), default="")
    modified = max((h.advisory.modified for h, _ in ordered if h.advisory.modified), default="")
    aliases = [i for i in ids if i != vid]
    for h, _shared in ordered:  # a notice's own aliases (e.g. an RHSA's), not ids of the vulnerability
        if is_notice(h.advisory):
            aliases.extend(a for a in h.advisory.aliases if a != vid and a not in aliases and a not in hits)
    return VulnFinding(
        id=vid,
        package=pkg,
        advisory_ids=record_ids,
        aliases=sorted(aliases, key=lambda a: (not a.startswith("CVE-"), a)),
        installed_version=installed,
        fixed_versions=fixed,
        status="fixed" if fixed else "affected",
        severity=severity.level,
        severity_source=severity.source,
        cvss_score=severity.score,
        cvss_vector=severity.vector,
        title=title,
        description=description,
        references=references,
        published=published,
        modified=modified,
        data_source=ordered[0][0].entries[0].ecosystem if ordered[0][0].entries else "",
        kev=any(h.advisory.kev for h, _ in ordered),
    )


# -- the image ------------------------------------------------------------------------------------------------


class _Matcher:
    def __init__(self, store: AdvisoryStore) -> None:
        self.store = store
        self._lookups: dict[tuple[str, str], list[tuple[Advisory, Affected]]] = {}
        self._findings: dict[tuple[tuple[str, ...], tuple[str, ...], str], list[VulnFinding]] = {}

    def lookup(self, ecosystem: str, name: str) -> list[tuple[Advisory, Affected]]:
        key = (ecosystem, name)
        found = self._lookups.get(key)
        if found is None:
            found = self.store.lookup(ecosystem, name)
            self._lookups[key] = found
        return found

    def hits(self, ecosystems: Sequence[str], names: Sequence[str], version: str) -> list[Hit]:
        """The advisories that apply. With several ecosystems (Ubuntu's LTS and Pro, Red Hat's streams), the
        first one holding an advisory's entries for the package decides for that advisory: a fix recorded
        for the release is not undone by the same advisory's Pro entry."""
        by_id: dict[str, Hit] = {}
        decided: set[str] = set()  # advisories with entries in an ecosystem already evaluated
        for ecosystem in ecosystems:
            here: set[str] = set()
            seen_entries: set[int] = set()
            for name in names:
                for advisory, entry in self.lookup(ecosystem, name):
                    if advisory.withdrawn or advisory.id in decided or id(entry) in seen_entries:
                        continue
                    seen_entries.add(id(entry))
                    here.add(advisory.id)
                    ok, fixed = entry_matches(entry, version)
                    if not ok:
                        continue
                    hit = by_id.get(advisory.id)
                    if hit is None:
                        by_id[advisory.id] = Hit(advisory, [entry], fixed, assess(advisory, entry))
                        continue
                    hit.entries.append(entry)
                    hit.fixed.extend(f for f in fixed if f not in hit.fixed)
                    rating = assess(advisory, entry)
                    if rating.rank > hit.severity.rank:
                        hit.severity = rating
            decided |= here
        return list(by_id.values())

    def findings(self, pkg: Package, ecosystems: Sequence[str], names: Sequence[str], version: str,
                 installed: str) -> list[VulnFinding]:
        """The package's findings; packages that query the same names at the same version (the binaries of
        one source package, a library vendored at several paths) share one evaluation."""
        key = (tuple(ecosystems), tuple(names), version)
        protos = self._findings.get(key)
        if protos is None:
            hits = self.hits(ecosystems, names, version)
            protos = collapse(pkg, hits, installed, ecosystems[0]) if hits else []
            self._findings[key] = protos
            return protos
        return [_instance(p, pkg, installed) for p in protos]


def _instance(proto: VulnFinding, pkg: Package, installed: str) -> VulnFinding:
    # copy.copy/dataclasses.replace cost several times more; the lists are copied so findings stay independent.
    new = object.__new__(VulnFinding)
    new.__dict__.update(proto.__dict__)
    new.package = pkg
    new.installed_version = installed
    new.advisory_ids = list(proto.advisory_ids)
    new.aliases = list(proto.aliases)
    new.fixed_versions = list(proto.fixed_versions)
    new.references = list(proto.references)
    return new


@dataclass
class _Skipped:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, pkg: Package) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(f"{pkg.name} {pkg.version}".strip())


def _os_note(facts: ImageFacts, res: OSEcosystems, available: Collection[str], count: int) -> Note:
    os_info = facts.os
    what = f"{count} OS package{'s' if count != 1 else ''}"
    if os_info is None:
        return Note("vuln-os-unknown", f"OS packages not checked: the image's operating system could not be "
                                       f"identified ({what} found)")
    name = os_info.name or f"{os_info.family} {os_info.version}".strip()
    if not res.family:
        return Note("vuln-os-unsupported", f"OS packages not checked: no vulnerability data source for {name} "
                                           f"(os-release ID {os_info.family!r}; {what})")
    if not res.wanted:
        return Note("vuln-os-no-data", f"OS packages not checked: cannot tell which {res.family} release "
                                       f"{name} is ({what})")
    have = family_ecosystems(res.family, available)
    held = f"; the database has {res.family} data for {', '.join(have)}" if have else \
        f"; the database has no {res.family} data at all"
    return Note("vuln-os-no-data", f"OS packages not checked: no vulnerability data for {res.wanted[0]} "
                                   f"({what}{held})")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Matching allocates many short-lived, acyclic objects (decoded advisories, findings): reference counting
    frees them, and the cyclic collector's full passes over the store's cache would cost as much as the
    matching itself (measured: 10,000 packages 0.6-1.4 s with it, 0.3-0.8 s without)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def match_image(facts: ImageFacts, store: AdvisoryStore, *, ignore_unfixed: bool = False,
                kev: Collection[str] | None = None) -> MatchResult:
    """Every vulnerability the store knows in the image's packages.

    `ignore_unfixed` leaves out vulnerabilities with no fixed version. `kev`, the CVE ids of CISA's catalogue
    when the caller has them, decides the KEV flag per vulnerability; without it the records' own flag is used
    (a notice flagged for one of its CVEs then flags each of them)."""
    if kev is None and hasattr(store, "kev_cves"):
        kev = store.kev_cves() or None  # the catalogue imported as enrichment marks each CVE
    with _gc_paused():
        return _match_image(facts, store, ignore_unfixed, kev)


def _match_image(facts: ImageFacts, store: AdvisoryStore, ignore_unfixed: bool,
                 kev: Collection[str] | None) -> MatchResult:
    available = store.ecosystems()
    os_res = resolve_os(facts.os, available)
    _family, os_pkg_type = os_family(facts.os)
    matcher = _Matcher(store)
    result = MatchResult()
    os_skipped = _Skipped()
    other_os: dict[str, _Skipped] = {}  # OS packages of another kind than the OS's own (rpm on Debian...)
    lang_skipped: dict[tuple[str, bool], _Skipped] = {}  # (ecosystem, OSV has such an ecosystem)
    no_version = _Skipped()

    for pkg in facts.packages:
        if pkg.ecosystem in OS_ECOSYSTEMS:
            if not os_res.present:
                os_skipped.add(pkg)
                key = os_res.label or pkg.ecosystem
                result.unchecked[key] = result.unchecked.get(key, 0) + 1
                continue
            if pkg.ecosystem != os_pkg_type:
                other_os.setdefault(pkg.ecosystem, _Skipped()).add(pkg)
                result.unchecked[pkg.ecosystem] = result.unchecked.get(pkg.ecosystem, 0) + 1
                continue
            ecosystems, label = os_res.present, os_res.label
        else:
            lang = language_ecosystem(pkg.ecosystem)
            if not lang or lang not in available:
                key = lang or pkg.ecosystem
                lang_skipped.setdefault((key, bool(lang)), _Skipped()).add(pkg)
                result.unchecked[key] = result.unchecked.get(key, 0) + 1
                continue
            ecosystems, label = [lang], lang
        names = query_names(pkg, ecosystems[0])
        if not names:  # a binary whose product has no advisories in that ecosystem
            lang_skipped.setdefault((pkg.ecosystem, False), _Skipped()).add(pkg)
            result.unchecked[pkg.ecosystem] = result.unchecked.get(pkg.ecosystem, 0) + 1
            continue
        version = query_version(pkg, ecosystems[0])
        if not version or version == "(devel)":
            no_version.add(pkg)
            result.unchecked[label] = result.unchecked.get(label, 0) + 1
            continue
        result.checked[label] = result.checked.get(label, 0) + 1
        installed = rpm_evr(pkg) if pkg.ecosystem == "rpm" else pkg.version
        for finding in matcher.findings(pkg, ecosystems, names, version, installed):
            if ignore_unfixed and finding.status != "fixed":
                continue
            if kev is not None:
                finding.kev = finding.id in kev or any(a in kev for a in finding.aliases)
            result.findings.append(finding)

    if os_skipped.count:
        result.notes.append(_os_note(facts, os_res, available, os_skipped.count))
    for kind, skipped in sorted(other_os.items()):
        result.notes.append(Note("vuln-os-mismatch", f"{skipped.count} {kind} package(s) not checked: the image's "
                                                     f"OS ({os_res.label or 'unknown'}) does not use {kind} "
                                                     f"(e.g. {', '.join(skipped.examples)})"))
    for (eco, known), skipped in sorted(lang_skipped.items()):
        why = f"no vulnerability data for {eco}" if known else f"no vulnerability source for {eco} packages"
        result.notes.append(Note("vuln-ecosystem-no-data", f"{skipped.count} package(s) not checked: {why} "
                                                           f"(e.g. {', '.join(skipped.examples)})"))
    if no_version.count:
        result.notes.append(Note("vuln-no-version", f"{no_version.count} package(s) not checked: no version "
                                                    f"recorded (e.g. {', '.join(no_version.examples)})"))
    enrich_findings(result.findings, store)
    result.findings.sort(key=lambda f: (-severity_rank(f.severity), f.package.name, f.package.version,
                                        f.package.path, f.id))
    return result
