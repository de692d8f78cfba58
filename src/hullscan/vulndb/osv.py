"""The OSV importer: records from an `all.zip`, a directory (of JSON files and zips) or one JSON file.

Every field that matters for matching and reporting is kept (see vulndb.model). The rules:

- A record that is not usable as a whole (not an object, no id, a field of the wrong type, an affected entry
  without a package, an event that is not exactly one of introduced/fixed/last_affected/limit) is *malformed*:
  it is skipped, counted and reported with its file name and id. Dropping only the broken part could turn a
  "fixed" boundary into "every version affected", so a record is imported whole or not at all.
- GIT ranges are counted and skipped (hullscan matches package versions, not commits); so are range types
  it does not know. An affected entry left with no ECOSYSTEM/SEMVER range and no `versions` matches nothing
  and is skipped (counted).
- Vendor severities that OSV producers put outside `severity[]` become SeverityScore entries: GHSA's
  `database_specific.severity` on the advisory, Debian's per-release `ecosystem_specific.urgency` (and similar
  `severity`/`priority` words) on the affected entry. The raw dictionaries are kept as well.
- `null` for an optional field is taken as absent.

Zips are read member by member, each member capped in size, so memory stays bounded by the largest record.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.errors import HullscanError
from hullscan.vulndb.model import Advisory, Affected, Range, SeverityScore

MAX_RECORD_SIZE = 32 << 20  # one advisory; the largest real OSV records are a few MB
MAX_PROBLEMS = 200  # problems kept with details; the counters stay exact
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
VERSION_RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
_VENDOR_KEYS = ("severity", "urgency", "priority")
_PLACEHOLDER_WORDS = frozenset({"", "not yet assigned", "unknown", "none", "n/a", "unassigned"})


class MalformedRecord(ValueError):
    """A record that cannot be imported; the message says why."""


class OSVImportError(HullscanError):
    code = "DB_IMPORT_FAILED"


@dataclass
class Problem:
    source: str  # file, or zip:member
    id: str  # the record id when it could be read
    reason: str

    def __str__(self) -> str:
        who = f"{self.id} ({self.source})" if self.id else self.source
        return f"{who}: {self.reason}"


@dataclass
class ImportStats:
    """What an import saw. Counters are exact; `problems` keeps the first MAX_PROBLEMS with details."""

    records: int = 0  # records parsed and handed on
    malformed: int = 0  # records skipped
    withdrawn: int = 0
    affected: int = 0  # affected entries kept
    git_ranges: int = 0  # GIT ranges skipped
    other_ranges: int = 0  # ranges of an unknown type, skipped
    unusable_entries: int = 0  # affected entries left with nothing to match on (e.g. GIT-only), skipped
    empty_affected: int = 0  # records with no affected entry at all (kept: they still carry ids and text)
    duplicates: int = 0  # the same id seen again (the newest `modified` wins), set by the store
    per_ecosystem: Counter[str] = field(default_factory=Counter)  # affected entries per base ecosystem
    problems: list[Problem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def problem(self, source: str, rid: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(source, rid, reason))

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "malformed": self.malformed, "withdrawn": self.withdrawn,
            "affected": self.affected, "git_ranges": self.git_ranges, "other_ranges": self.other_ranges,
            "unusable_entries": self.unusable_entries, "empty_affected": self.empty_affected,
            "duplicates": self.duplicates, "per_ecosystem": dict(sorted(self.per_ecosystem.items())),
            "problems": [{"source": p.source, "id": p.id, "reason": p.reason} for p in self.problems],
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ImportStats:
        out = cls()
        for key in ("records", "malformed", "withdrawn", "affected", "git_ranges", "other_ranges",
                    "unusable_entries", "empty_affected", "duplicates"):
            value = doc.get(key)
            if isinstance(value, int):
                setattr(out, key, value)
        out.per_ecosystem = Counter({str(k): int(v) for k, v in (doc.get("per_ecosystem") or {}).items()})
        out.problems = [Problem(str(p.get("source", "")), str(p.get("id", "")), str(p.get("reason", "")))
                        for p in doc.get("problems") or [] if isinstance(p, dict)]
        out.sources = [str(s) for s in doc.get("sources") or []]
        return out


# -- one record ---------------------------------------------------------------------------------------------


def _opt(doc: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise MalformedRecord(f"{what}{key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _text(doc: dict[str, Any], key: str, what: str = "") -> str:
    value = _opt(doc, key, str, what)
    return value or ""


def _strings(doc: dict[str, Any], key: str, what: str = "") -> list[str]:
    value = _opt(doc, key, list, what)
    if not value:
        return []
    if not all(isinstance(v, str) for v in value):
        raise MalformedRecord(f"{what}{key} holds something other than strings")
    return list(value)


def _object(doc: dict[str, Any], key: str, what: str = "") -> dict[str, Any]:
    value = _opt(doc, key, dict, what)
    return dict(value) if value else {}


def _severities(doc: dict[str, Any], what: str = "") -> list[SeverityScore]:
    out = []
    for i, item in enumerate(_opt(doc, "severity", list, what) or []):
        if not (isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("score"), str)):
            raise MalformedRecord(f"{what}severity[{i}] needs string type and score")
        out.append(SeverityScore(item["type"], item["score"]))
    return out


def _vendor_word(*dicts: dict[str, Any]) -> str:
    for d in dicts:
        for key in _VENDOR_KEYS:
            value = d.get(key)
            if isinstance(value, str) and value.strip().lower() not in _PLACEHOLDER_WORDS:
                return value.strip()
    return ""


def _add_vendor(scores: list[SeverityScore], vendor: str, word: str) -> None:
    if word and vendor and not any(s.type == vendor for s in scores):
        scores.append(SeverityScore(vendor, word))


def _ranges(entry: dict[str, Any], what: str, stats: ImportStats) -> list[Range]:
    out: list[Range] = []
    for i, raw in enumerate(_opt(entry, "ranges", list, what) or []):
        where = f"{what}ranges[{i}]"
        if not isinstance(raw, dict):
            raise MalformedRecord(f"{where} is not an object")
        rtype = raw.get("type")
        if not isinstance(rtype, str) or not rtype:
            raise MalformedRecord(f"{where} has no type")
        if rtype == "GIT":
            stats.git_ranges += 1
            continue
        if rtype not in VERSION_RANGE_TYPES:
            stats.other_ranges += 1
            continue
        events = raw.get("events")
        if not isinstance(events, list) or not events:
            raise MalformedRecord(f"{where} has no events")
        parsed: list[tuple[str, str]] = []
        for j, ev in enumerate(events):
            if not isinstance(ev, dict) or len(ev) != 1:
                raise MalformedRecord(f"{where}.events[{j}] must hold exactly one of {', '.join(EVENT_KINDS)}")
            ((kind, version),) = ev.items()
            if kind not in EVENT_KINDS:
                raise MalformedRecord(f"{where}.events[{j}] has an unknown event {kind!r}")
            if not isinstance(version, str) or not version:
                raise MalformedRecord(f"{where}.events[{j}].{kind} is not a version string")
            parsed.append((kind, version))
        out.append(Range(rtype, parsed))
    return out


def _affected(advisory_id: str, i: int, entry: Any, stats: ImportStats) -> Affected | None:
    what = f"affected[{i}]."
    if not isinstance(entry, dict):
        raise MalformedRecord(f"affected[{i}] is not an object")
    package = entry.get("package")
    ranges = _ranges(entry, what, stats)
    versions = _strings(entry, "versions", what)
    if package is None:
        raw_ranges = entry.get("ranges") or []
        if raw_ranges and all(isinstance(r, dict) and r.get("type") == "GIT" for r in raw_ranges) and not versions:
            stats.unusable_entries += 1  # OSV allows a package-less entry for GIT-only ranges
            return None
        raise MalformedRecord(f"affected[{i}] has no package")
    if not isinstance(package, dict):
        raise MalformedRecord(f"affected[{i}].package is not an object")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem.strip():
        raise MalformedRecord(f"affected[{i}].package has no ecosystem")
    if not isinstance(name, str) or not name.strip():
        raise MalformedRecord(f"affected[{i}].package has no name")
    purl = _text(package, "purl", f"{what}package.")
    eco_specific = _object(entry, "ecosystem_specific", what)
    db_specific = _object(entry, "database_specific", what)
    severity = _severities(entry, what)
    if not ranges and not versions:
        stats.unusable_entries += 1
        return None
    base = ecosystem.split(":", 1)[0]
    _add_vendor(severity, "GHSA" if advisory_id.startswith("GHSA-") else base, _vendor_word(eco_specific, db_specific))
    return Affected(ecosystem=ecosystem.strip(), name=name.strip(), purl=purl, ranges=ranges, versions=versions,
                    ecosystem_specific=eco_specific, database_specific=db_specific, severity=severity)


def parse_record(doc: Any, stats: ImportStats | None = None) -> Advisory:
    """One OSV record (a decoded JSON object) as an Advisory; MalformedRecord when it cannot be used.

    `stats` receives the range and entry counters (skipped GIT ranges...), not the record counters.
    """
    stats = stats if stats is not None else ImportStats()
    if not isinstance(doc, dict):
        raise MalformedRecord(f"the record is a JSON {type(doc).__name__}, not an object")
    rid = doc.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise MalformedRecord("the record has no id")
    rid = rid.strip()
    raw_affected = _opt(doc, "affected", list, "")
    local = ImportStats()  # counters are committed only if the whole record is good
    affected = [a for i, e in enumerate(raw_affected or []) if (a := _affected(rid, i, e, local)) is not None]
    references: list[tuple[str, str]] = []
    for i, ref in enumerate(_opt(doc, "references", list, "") or []):
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
            raise MalformedRecord(f"references[{i}] has no url")
        rtype = ref.get("type")
        references.append((rtype if isinstance(rtype, str) else "WEB", ref["url"]))
    db_specific = _object(doc, "database_specific")
    severity = _severities(doc)
    vendor = "GHSA" if rid.startswith("GHSA-") else (affected[0].ecosystem.split(":", 1)[0] if affected else "")
    _add_vendor(severity, vendor or rid.split("-", 1)[0], _vendor_word(db_specific))
    advisory = Advisory(
        id=rid,
        modified=_text(doc, "modified"),
        published=_text(doc, "published"),
        withdrawn=_text(doc, "withdrawn"),
        aliases=_strings(doc, "aliases"),
        related=_strings(doc, "related"),
        upstream=_strings(doc, "upstream"),
        summary=_text(doc, "summary"),
        details=_text(doc, "details"),
        severity=severity,
        affected=affected,
        references=references,
        database_specific=db_specific,
    )
    stats.git_ranges += local.git_ranges
    stats.other_ranges += local.other_ranges
    stats.unusable_entries += local.unusable_entries
    return advisory


# -- sources ------------------------------------------------------------------------------------------------


def _accept(advisory: Advisory, stats: ImportStats) -> Advisory:
    stats.records += 1
    if advisory.withdrawn:
        stats.withdrawn += 1
    if not advisory.affected:
        stats.empty_affected += 1
    stats.affected += len(advisory.affected)
    for a in advisory.affected:
        stats.per_ecosystem[a.ecosystem.split(":", 1)[0]] += 1
    return advisory


def _records_from_bytes(data: bytes, source: str, stats: ImportStats) -> Iterator[Advisory]:
    """A JSON document holding one record, a list of records, or an OSV API answer ({"vulns": [...]})."""
    try:
        doc = safejson.loads(data, what=source)
    except safejson.DocumentError as exc:
        stats.malformed += 1
        stats.problem(source, "", f"not valid JSON: {exc.reason}")
        return
    if isinstance(doc, dict) and "id" not in doc and isinstance(doc.get("vulns"), list):
        items: list[Any] = doc["vulns"]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    for item in items:
        try:
            advisory = parse_record(item, stats)
        except MalformedRecord as exc:
            stats.malformed += 1
            rid = item.get("id") if isinstance(item, dict) else None
            stats.problem(source, rid if isinstance(rid, str) else "", str(exc))
            continue
        yield _accept(advisory, stats)


def iter_zip(path: Path, stats: ImportStats, label: str | None = None) -> Iterator[Advisory]:
    """Every `*.json` member of a zip, one at a time."""
    label = label or str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OSVImportError(f"{label} is not a readable zip file: {exc}") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            source = f"{label}:{info.filename}"
            if info.file_size > MAX_RECORD_SIZE:
                stats.malformed += 1
                stats.problem(source, "", f"member of {info.file_size:,} bytes is over the {MAX_RECORD_SIZE:,} limit")
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_RECORD_SIZE + 1)
            except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
                stats.malformed += 1
                stats.problem(source, "", f"cannot be read from the zip: {exc}")
                continue
            if len(data) > MAX_RECORD_SIZE:
                stats.malformed += 1
                stats.problem(source, "", "member is larger than its header says")
                continue
            yield from _records_from_bytes(data, source, stats)


def iter_json_file(path: Path, stats: ImportStats, label: str | None = None) -> Iterator[Advisory]:
    label = label or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_SIZE * 8:
            raise OSVImportError(f"{label} is {size:,} bytes; a JSON file of advisories may be at most "
                               f"{MAX_RECORD_SIZE * 8:,} (split it, or zip it)")
        data = path.read_bytes()
    except OSError as exc:
        raise OSVImportError(f"cannot read {label}: {exc.strerror or exc}") from None
    yield from _records_from_bytes(data, label, stats)


def _walk(root: Path) -> Iterator[Path]:
    """Files under root in a stable order, without following directory symlinks into loops."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def iter_path(path: Path, stats: ImportStats, label: str | None = None) -> Iterator[Advisory]:
    """Records from a zip, a JSON file, or a directory holding either (recursively, in name order)."""
    label = label or str(path)
    if path.is_dir():
        found = False
        for file in _walk(path):
            lower = file.name.lower()
            rel = f"{label.rstrip('/')}/{file.relative_to(path).as_posix()}"
            if lower.endswith(".zip"):
                found = True
                yield from iter_zip(file, stats, rel)
            elif lower.endswith(".json"):
                found = True
                yield from iter_json_file(file, stats, rel)
        if not found:
            raise OSVImportError(f"{label} holds no .json or .zip files")
        stats.sources.append(label)
        return
    if not path.exists():
        raise OSVImportError(f"{label} does not exist")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        yield from iter_zip(path, stats, label)
    else:
        yield from iter_json_file(path, stats, label)
    stats.sources.append(label)


# -- CISA KEV -----------------------------------------------------------------------------------------------


@dataclass
class KevCatalog:
    cves: frozenset[str]
    version: str = ""  # catalogVersion
    source: str = ""

    def marks(self, advisory: Advisory) -> bool:
        """Listed when the id, an alias or an upstream id is a KEV CVE (ALPINE-CVE-x and DSAs name theirs there)."""
        if advisory.id in self.cves:
            return True
        return any(i in self.cves for i in advisory.aliases) or any(i in self.cves for i in advisory.upstream)


def load_kev(path: Path) -> KevCatalog:
    """CISA's known_exploited_vulnerabilities.json."""
    try:
        doc = safejson.loads(path.read_bytes(), what=f"the KEV catalogue {path}")
    except OSError as exc:
        raise OSVImportError(f"cannot read the KEV catalogue {path}: {exc.strerror or exc}") from None
    except safejson.DocumentError as exc:
        raise OSVImportError(str(exc)) from None
    items = doc.get("vulnerabilities") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise OSVImportError(f"{path} is not a CISA KEV catalogue (no 'vulnerabilities' list)")
    cves = frozenset(str(v["cveID"]).strip() for v in items if isinstance(v, dict) and isinstance(v.get("cveID"), str))
    version = str(doc.get("catalogVersion") or "")
    return KevCatalog(cves, version, str(path))
