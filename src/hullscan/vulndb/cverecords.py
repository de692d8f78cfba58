"""CVE severity data for enrichment: CVE JSON 5 records (CVE List V5) and NVD CVE API 2.0 JSON.

Most OSV records carry no severity (no Debian DSA/DLA, no Alpine secdb record does), so the database keeps,
per CVE, the metrics its CVE record publishes:

- CVE JSON 5 (https://github.com/CVEProject/cve-schema): `containers.cna.metrics[]` (the CNA's own CVSS
  objects `cvssV4_0`, `cvssV3_1`, `cvssV3_0`, `cvssV2_0`, and `other` entries, where some CNAs give their own
  word, e.g. OpenSSL's "High"), and `containers.adp[].metrics[]` (CISA's "Vulnrichment" ADP adds CVSS where the
  CNA gave none; its SSVC `other` entries are decisions, not ratings, and are skipped).
- NVD CVE API 2.0: `metrics.cvssMetricV40/V31/V30/V2[]`, the `Primary` (NVD's own) entry preferred.

A CVE is rated from these in the order CNA CVSS, ADP CVSS, NVD CVSS, then the CNA's own word (a rating, but
on no common scale); within one source the CVSS versions are preferred as vulndb.severity prefers them.
Scores are recomputed from the vector with the `cvss` package (a record's `baseScore` is not trusted), so a
vector that does not parse is no metric at all.

Input shapes accepted: a JSON file, a directory of them (flat, or laid out as the CVE List V5 repository's
`cves/YYYY/NNxxx/CVE-*.json`), or a zip of either (the repository's bulk release zip nests `cves.zip`).
A file that is not a CVE record is counted and skipped, never fatal.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.vulndb.severity import cvss_rating, vendor_level

MAX_RECORD_SIZE = 8 << 20
MAX_NESTING = 2  # zips inside zips (the bulk release: outer zip -> cves.zip -> records)
_CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
_CVSS_KEYS = ("cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0")
_NVD_KEYS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
# Lower is better: where each metric ranks when a CVE is rated (see the module docstring).
_SOURCE_RANK = {"cna": 0, "adp": 1, "nvd": 2, "cna-rating": 3}
_VERSION_RANK = {"3.1": 0, "3.0": 1, "4.0": 2, "2.0": 3}


@dataclass(frozen=True)
class CveMetric:
    """One rating of a CVE by one provider."""

    source: str  # "cna:<short name>", "adp:<short name>", "nvd" (provider of the metric)
    kind: str  # "cvss" or "rating" (a provider's own word)
    level: str  # CRITICAL / HIGH / MEDIUM / LOW
    version: str = ""  # CVSS version ("3.1", ...), "" for a word
    vector: str = ""
    score: float | None = None

    @property
    def tier(self) -> str:
        if self.kind == "rating":
            return "cna-rating"
        return self.source.split(":", 1)[0]

    def to_list(self) -> list[Any]:
        return [self.source, self.kind, self.level, self.version, self.vector, self.score]

    @classmethod
    def from_list(cls, item: list[Any]) -> CveMetric:
        source, kind, level, version, vector, score = item
        return cls(str(source), str(kind), str(level), str(version), str(vector),
                   None if score is None else float(score))


@dataclass
class CveRecord:
    """The severity data of one CVE from one kind of input (a CVE JSON 5 record or an NVD entry)."""

    cve: str
    origin: str  # "cve5" or "nvd"
    metrics: list[CveMetric] = field(default_factory=list)
    modified: str = ""
    rejected: bool = False


def best_metric(metrics: Iterable[CveMetric]) -> CveMetric | None:
    """The metric a CVE is rated by: CNA CVSS, ADP CVSS, NVD CVSS, then the CNA's word."""
    ranked = sorted(metrics, key=lambda m: (_SOURCE_RANK.get(m.tier, 9), _VERSION_RANK.get(m.version, 9)))
    return ranked[0] if ranked else None


def best_cvss(metrics: Iterable[CveMetric]) -> CveMetric | None:
    """The preferred metric with a CVSS score (to show a score and vector next to a vendor's word)."""
    return best_metric(m for m in metrics if m.kind == "cvss")


# -- parsing --------------------------------------------------------------------------------------------------


def _cvss_metric(source: str, obj: Any) -> CveMetric | None:
    if not isinstance(obj, dict):
        return None
    vector = obj.get("vectorString")
    if not isinstance(vector, str):
        return None
    rating = cvss_rating(vector)
    if rating is None or rating.level == "UNKNOWN":
        return None
    return CveMetric(source, "cvss", rating.level, rating.version, rating.vector, rating.score)


def _word_metric(source: str, other: Any) -> CveMetric | None:
    """A CNA's own word in an `other` metric: {"content": {"text": "High"}} or {"content": {"value": ...}}."""
    if not isinstance(other, dict) or str(other.get("type", "")).lower() == "ssvc":
        return None
    content = other.get("content")
    if not isinstance(content, dict):
        return None
    for key in ("text", "value", "severity", "baseSeverity"):
        word = content.get(key)
        if isinstance(word, str) and (level := vendor_level(word)):
            return CveMetric(source, "rating", level)
    return None


def _container_metrics(source: str, container: Any, words: bool) -> list[CveMetric]:
    if not isinstance(container, dict) or not isinstance(container.get("metrics"), list):
        return []
    out: list[CveMetric] = []
    for entry in container["metrics"]:
        if not isinstance(entry, dict):
            continue
        for key in _CVSS_KEYS:
            if (m := _cvss_metric(source, entry.get(key))) is not None:
                out.append(m)
        if words and (m := _word_metric(source, entry.get("other"))) is not None:
            out.append(m)
    return out


def _provider(container: Any, default: str) -> str:
    meta = container.get("providerMetadata") if isinstance(container, dict) else None
    name = meta.get("shortName") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else default


def parse_cve5(doc: Any) -> CveRecord | None:
    """A CVE JSON 5 record; None when `doc` is not one."""
    if not isinstance(doc, dict) or doc.get("dataType") != "CVE_RECORD":
        return None
    meta = doc.get("cveMetadata")
    cve = meta.get("cveId") if isinstance(meta, dict) else None
    if not isinstance(cve, str) or not _CVE_ID.match(cve):
        return None
    assert isinstance(meta, dict)
    record = CveRecord(cve, "cve5", modified=str(meta.get("dateUpdated") or ""),
                       rejected=meta.get("state") == "REJECTED")
    containers = doc.get("containers")
    if record.rejected or not isinstance(containers, dict):
        return record
    cna = containers.get("cna")
    record.metrics += _container_metrics(f"cna:{_provider(cna, 'CNA')}", cna, words=True)
    for adp in containers.get("adp") or []:
        record.metrics += _container_metrics(f"adp:{_provider(adp, 'ADP')}", adp, words=False)
    return record


def _nvd_one(cve_obj: Any) -> CveRecord | None:
    if not isinstance(cve_obj, dict):
        return None
    cve = cve_obj.get("id")
    if not isinstance(cve, str) or not _CVE_ID.match(cve):
        return None
    record = CveRecord(cve, "nvd", modified=str(cve_obj.get("lastModified") or ""),
                       rejected=cve_obj.get("vulnStatus") == "Rejected")
    metrics = cve_obj.get("metrics")
    if record.rejected or not isinstance(metrics, dict):
        return record
    for key in _NVD_KEYS:
        entries = [e for e in metrics.get(key) or [] if isinstance(e, dict)]
        # NVD's own assessment ("Primary") before a copy of the CNA's ("Secondary")
        entries.sort(key=lambda e: e.get("type") != "Primary")
        for entry in entries[:1]:
            if (m := _cvss_metric("nvd", entry.get("cvssData"))) is not None:
                record.metrics.append(m)
    return record


def parse_nvd(doc: Any) -> list[CveRecord]:
    """NVD CVE API 2.0 JSON: an API answer ({"vulnerabilities": [{"cve": {...}}]}) or one CVE object."""
    if isinstance(doc, dict) and isinstance(doc.get("vulnerabilities"), list):
        items = [v.get("cve") for v in doc["vulnerabilities"] if isinstance(v, dict)]
    else:
        items = [doc]
    return [r for r in (_nvd_one(i) for i in items) if r is not None]


def parse_document(doc: Any) -> list[CveRecord]:
    """Whatever CVE severity data a decoded JSON document holds (CVE JSON 5 or NVD 2.0), else []."""
    record = parse_cve5(doc)
    if record is not None:
        return [record]
    return parse_nvd(doc)


def looks_like_cve_data(doc: Any) -> bool:
    return bool(parse_document(doc))


# -- inputs ---------------------------------------------------------------------------------------------------


@dataclass
class CveImportStats:
    files: int = 0
    records: int = 0  # CVE records read (CVE JSON 5 and NVD)
    with_metrics: int = 0
    rejected: int = 0
    skipped: int = 0  # files that were not CVE data
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < 50:
            self.problems.append(text)


def _is_json_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(".json") and base not in ("delta.json", "deltalog.json")


def _zip_documents(archive: zipfile.ZipFile, label: str, stats: CveImportStats,
                   depth: int) -> Iterator[tuple[str, bytes]]:
    for info in archive.infolist():
        name = info.filename
        if info.is_dir():
            continue
        if name.lower().endswith(".zip") and depth < MAX_NESTING:
            with archive.open(info) as member, zipfile.ZipFile(io.BytesIO(member.read())) as inner:
                yield from _zip_documents(inner, f"{label}:{name}", stats, depth + 1)
        elif _is_json_name(name):
            if info.file_size > MAX_RECORD_SIZE:
                stats.problem(f"{label}:{name}: {info.file_size:,} bytes is over the {MAX_RECORD_SIZE:,} limit")
                continue
            with archive.open(info) as member:
                yield f"{label}:{name}", member.read(MAX_RECORD_SIZE)


def _documents(path: Path, stats: CveImportStats) -> Iterator[tuple[str, bytes]]:
    """(source, bytes) of every JSON document under `path`: a file, a zip, or a directory (in name order)."""
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                file = Path(dirpath) / name
                if _is_json_name(name):
                    if file.stat().st_size > MAX_RECORD_SIZE:
                        stats.problem(f"{file}: over the {MAX_RECORD_SIZE:,} byte limit")
                        continue
                    yield str(file), file.read_bytes()
                elif name.lower().endswith(".zip"):
                    yield from _documents(file, stats)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield from _zip_documents(archive, str(path), stats, 0)
    else:
        yield str(path), path.read_bytes()


def _records(data: bytes, source: str, stats: CveImportStats) -> Iterator[CveRecord]:
    stats.files += 1
    try:
        doc = safejson.loads(data, what=source)
    except safejson.DocumentError as exc:
        stats.problem(f"{source}: not valid JSON ({exc.reason})")
        return
    records = parse_document(doc)
    if not records:
        stats.problem(f"{source}: neither a CVE JSON 5 record nor NVD CVE API 2.0 JSON")
    for record in records:
        stats.records += 1
        stats.rejected += record.rejected
        stats.with_metrics += bool(record.metrics)
        yield record


def iter_cve_path(path: Path, stats: CveImportStats) -> Iterator[CveRecord]:
    """CVE severity data from a JSON file, a zip or a directory (recursively, in name order)."""
    for source, data in _documents(path, stats):
        yield from _records(data, source, stats)


def sniff_cve_path(path: Path, limit: int = 5) -> bool:
    """Whether `path` holds CVE records rather than OSV advisories: one of its first JSON documents is one."""
    stats = CveImportStats()
    try:
        for n, (_source, data) in enumerate(_documents(path, stats)):
            if n >= limit:
                return False
            try:
                if parse_document(safejson.loads(data, what=_source)):
                    return True
            except safejson.DocumentError:
                continue
    except (OSError, zipfile.BadZipFile):
        return False
    return False


@dataclass
class CveIntel:
    """What the database knows of one CVE beyond its advisories (see vulndb.store, enrichment)."""

    cve: str
    metrics: list[CveMetric] = field(default_factory=list)
    records: set[str] = field(default_factory=set)  # "cve5" / "nvd": which kinds of record were imported
    epss: float | None = None
    epss_percentile: float | None = None
    kev: bool = False


def metric_label(metric: CveMetric) -> str:
    """How a finding names where its severity came from: "cna:redhat/cvss:3.1", "adp:CISA-ADP/cvss:3.1",
    "nvd/cvss:3.1", or "cna:openssl/rating" for a CNA's own word."""
    return f"{metric.source}/cvss:{metric.version}" if metric.kind == "cvss" else f"{metric.source}/rating"
