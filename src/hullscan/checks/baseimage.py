"""Base image identification, and which findings come from the base rather than the image's own layers.

How the base is found:

1. **annotation**: the manifest's `org.opencontainers.image.base.name` (and `.base.digest`), written by
   BuildKit and most build tools. The number of base layers is known when the catalogue holds that base
   (same digest, else same reference) and its layer chain is a proper prefix of the image's; otherwise
   `BaseImage.layers` is 0, meaning unknown.
2. **catalogue**: the image's diff_id chain is compared with every known image: each stored scan (every
   image hullscan has scanned, see scanstore) and the entries of the base catalogue, a JSON file in the
   data dir filled by `hullscan base add REF`. The base is the LONGEST PROPER prefix of the chain: an
   image with the same chain is the same image re-tagged, never its own base.

When the catalogue also holds a newer tag of the base's repository (same registry/repository, another
tag, a later config `created`) with fewer vulnerability findings, `BaseImage.recommendation` names it.

Contract for renderers (findings carry the index of the layer that introduced them): a finding comes
from the base when `0 <= layer_index < report.base_image.layers`, from the image's own layers when
`layer_index >= report.base_image.layers`; with no base identified (or layers == 0) or no layer
(`layer_index == -1`) its origin is unknown. `finding_origin` and `split_by_base` compute exactly this;
nothing is stored on the findings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hullscan import safejson
from hullscan.detectors import DetectContext
from hullscan.errors import HullscanError
from hullscan.findings import SEVERITIES, BaseImage, CheckFinding, ScanReport
from hullscan.model import ImageFacts
from hullscan.oci.reference import parse_reference
from hullscan.scanstore import ScanStoreBackend

ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
CATALOGUE_FILE = "base-catalogue.json"
FORMAT = 1


class CatalogueError(ValueError):
    """The base catalogue file cannot be read or written."""


def repository_and_tag(reference: str) -> tuple[str, str]:
    """`debian:12` -> (`docker.io/library/debian`, `12`); anything that is not a registry reference (an
    archive path, `oci:dir:tag`) is split at its last colon after the last slash."""
    try:
        ref = parse_reference(reference)
    except HullscanError:
        name, tag = reference, ""
        slash = reference.rfind("/")
        colon = reference.rfind(":")
        if colon > slash:
            name, tag = reference[:colon], reference[colon + 1:]
        return name, tag
    return ref.name, ref.tag or ("" if ref.digest else "latest")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _created(value: str) -> dt.datetime | None:
    """An image config's `created` (RFC 3339, often with nanoseconds, which Python does not parse)."""
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@dataclass
class CatalogueEntry:
    reference: str
    diff_ids: list[str]
    digest: str = ""  # manifest digest
    config_digest: str = ""
    repository: str = ""  # registry/repository
    tag: str = ""
    created: str = ""  # the image config's "created"
    findings: int | None = None  # vulnerability findings, when a database was available
    database_built_at: str = ""
    added_at: str = ""
    origin: str = "catalogue"  # catalogue (hullscan base add) | scan (a stored scan)

    @classmethod
    def from_facts(cls, facts: ImageFacts, *, name: str | None = None, findings: int | None = None,
                   database_built_at: str = "", origin: str = "catalogue") -> CatalogueEntry:
        reference = name or facts.reference
        repo, tag = repository_and_tag(reference)
        created = facts.config.get("created") if isinstance(facts.config, dict) else None
        return cls(reference=reference, diff_ids=[layer.diff_id for layer in facts.layers],
                   digest=facts.manifest_digest, config_digest=facts.config_digest, repository=repo, tag=tag,
                   created=created if isinstance(created, str) else "", findings=findings,
                   database_built_at=database_built_at,
                   added_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), origin=origin)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CatalogueEntry:
        findings = d.get("findings")
        return cls(reference=str(d["reference"]), diff_ids=[str(x) for x in d.get("diff_ids") or []],
                   digest=str(d.get("digest", "")), config_digest=str(d.get("config_digest", "")),
                   repository=str(d.get("repository", "")), tag=str(d.get("tag", "")),
                   created=str(d.get("created", "")), findings=int(findings) if findings is not None else None,
                   database_built_at=str(d.get("database_built_at", "")), added_at=str(d.get("added_at", "")),
                   origin=str(d.get("origin", "catalogue")))

    @property
    def created_at(self) -> dt.datetime | None:
        return _created(self.created)


class BaseCatalogue:
    """The JSON file of known base images (`hullscan base add/list/remove`)."""

    def __init__(self, path: Path) -> None:
        self.path = path  # Settings.catalogue_path

    def entries(self) -> list[CatalogueEntry]:
        if not self.path.exists():
            return []
        try:
            doc = safejson.loads(self.path.read_bytes(), what=str(self.path))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise CatalogueError(f"{self.path}: not a base catalogue of format {FORMAT}")
            return [CatalogueEntry.from_dict(e) for e in doc.get("entries", [])]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CatalogueError):
                raise
            raise CatalogueError(f"{self.path}: {exc}") from None

    def _save(self, entries: list[CatalogueEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, "entries": [asdict(e) for e in entries]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-base-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(self, entry: CatalogueEntry) -> CatalogueEntry:
        """Add `entry`, replacing an entry with the same reference."""
        entry.origin = "catalogue"
        kept = [e for e in self.entries() if e.reference != entry.reference]
        self._save([*kept, entry])
        return entry

    def remove(self, ref: str) -> list[CatalogueEntry]:
        """Remove entries whose reference (as written, or normalised), or digest, is `ref`."""
        wanted = {ref, _normal(ref)}
        entries = self.entries()
        gone = [e for e in entries if e.reference in wanted or e.digest == ref or _normal(e.reference) in wanted]
        if gone:
            self._save([e for e in entries if e not in gone])
        return gone


def _normal(reference: str) -> str:
    try:
        return str(parse_reference(reference))
    except HullscanError:
        return reference


def stored_scan_entries(scans: ScanStoreBackend) -> list[CatalogueEntry]:
    out = []
    for stored in scans.all():
        findings = len(stored.finding_keys) if stored.database_built_at else None
        out.append(CatalogueEntry.from_facts(stored.facts, findings=findings,
                                             database_built_at=stored.database_built_at, origin="scan"))
    return out


def known_images(catalogue: BaseCatalogue | None = None, scans: ScanStoreBackend | None = None) -> list[CatalogueEntry]:
    """Everything base identification compares against: catalogue entries first, then stored scans."""
    out: list[CatalogueEntry] = []
    if catalogue is not None:
        out.extend(catalogue.entries())
    if scans is not None:
        out.extend(stored_scan_entries(scans))
    return out


# --- identification ---------------------------------------------------------------------------------


def _chain(facts: ImageFacts) -> list[str]:
    ids = [layer.diff_id for layer in facts.layers]
    return ids if ids and all(ids) else []


def _rank(e: CatalogueEntry) -> tuple[int, int, int, str, str]:
    """Among entries with the same chain: curated before scanned, tagged before untagged, then newest."""
    created = e.created_at
    return (len(e.diff_ids), e.origin == "catalogue", bool(e.tag),
            created.isoformat() if created else "", e.reference)


def longest_prefix(facts: ImageFacts, entries: Iterable[CatalogueEntry]) -> CatalogueEntry | None:
    chain = _chain(facts)
    best: CatalogueEntry | None = None
    for e in entries:
        n = len(e.diff_ids)
        if 0 < n < len(chain) and chain[:n] == e.diff_ids and (best is None or _rank(e) > _rank(best)):
            best = e
    return best


def recommend(base: CatalogueEntry, entries: Iterable[CatalogueEntry]) -> CatalogueEntry | None:
    """A newer tag of the base's repository with fewer vulnerability findings, when the catalogue has one
    (the fewest findings wins; then the newest)."""
    created = base.created_at
    if base.findings is None or created is None or not base.repository:
        return None
    candidates: list[tuple[int, float, CatalogueEntry]] = []
    for e in entries:
        when = e.created_at
        if (e.repository != base.repository or not e.tag or e.tag == base.tag or e.findings is None
                or when is None or when <= created or e.findings >= base.findings
                or (e.digest and e.digest == base.digest)):
            continue
        candidates.append((e.findings, -when.timestamp(), e))
    return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def _recommendation_text(base: CatalogueEntry, rec: CatalogueEntry) -> str:
    when = rec.created_at
    day = when.date().isoformat() if when else rec.created
    return (f"{rec.reference} (created {day}): {rec.findings} vulnerabilities against {base.findings} "
            f"in {base.reference}")


def identify(facts: ImageFacts, entries: list[CatalogueEntry]) -> tuple[BaseImage, CatalogueEntry | None] | None:
    """The base image and the catalogue entry it matched (None when only the annotation names it)."""
    chain = _chain(facts)
    ann_name = facts.annotations.get(ANNOTATION_BASE_NAME, "").strip()
    ann_digest = facts.annotations.get(ANNOTATION_BASE_DIGEST, "").strip()
    if ann_name or ann_digest:
        match: CatalogueEntry | None = None
        wanted = _normal(ann_name) if ann_name else ""
        for e in entries:
            n = len(e.diff_ids)
            if not (0 < n < len(chain) and chain[:n] == e.diff_ids):
                continue
            same = e.digest == ann_digest if ann_digest else bool(wanted) and _normal(e.reference) == wanted
            if same and (match is None or _rank(e) > _rank(match)):
                match = e
        base = BaseImage(name=ann_name or (match.reference if match else ann_digest), digest=ann_digest,
                         method="annotation", layers=len(match.diff_ids) if match else 0)
        return base, match
    found = longest_prefix(facts, entries)
    if found is None:
        return None
    return BaseImage(name=found.reference, digest=found.digest or found.config_digest, method="catalogue",
                     layers=len(found.diff_ids)), found


# --- origin of findings -----------------------------------------------------------------------------


def finding_origin(layer_index: int, base: BaseImage | None) -> str:
    """"base", "image" (the image's own layers) or "unknown" — the contract in the module docstring."""
    if base is None or base.layers <= 0 or layer_index < 0:
        return "unknown"
    return "base" if layer_index < base.layers else "image"


@dataclass
class OriginCounts:
    vulnerabilities: int = 0
    checks: int = 0
    by_severity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))

    def count(self, severity: str, *, vuln: bool) -> None:
        if vuln:
            self.vulnerabilities += 1
        else:
            self.checks += 1
        key = severity.upper() if severity.upper() in self.by_severity else "UNKNOWN"
        self.by_severity[key] += 1


@dataclass
class BaseSplit:
    base_layers: int
    base: OriginCounts = field(default_factory=OriginCounts)
    image: OriginCounts = field(default_factory=OriginCounts)
    unknown: OriginCounts = field(default_factory=OriginCounts)

    def of(self, origin: str) -> OriginCounts:
        return {"base": self.base, "image": self.image}.get(origin, self.unknown)


def split_by_base(report: ScanReport) -> BaseSplit:
    """Counts of the report's findings (vulnerabilities and every other item) per origin."""
    base = report.base_image
    split = BaseSplit(base_layers=base.layers if base else 0)
    for v in report.vulnerabilities:
        split.of(finding_origin(v.package.layer_index, base)).count(v.severity, vuln=True)
    for c in report.checks:
        if c.item == "base":
            continue  # findings about the base itself
        split.of(finding_origin(c.layer_index, base)).count(c.severity, vuln=False)
    return split


# --- the detector -----------------------------------------------------------------------------------


class BaseImageDetector:
    """Identifies the base image. `identify` gives the BaseImage for `ScanReport.base_image`; `detect`
    gives the item's findings (a newer base with fewer vulnerabilities); `apply` does both on a report.

    Known images are the `catalogue`'s entries and, when `scans` is given, every image scanned before."""

    item = "base"

    def __init__(self, catalogue: BaseCatalogue, scans: ScanStoreBackend | None = None) -> None:
        self.catalogue = catalogue
        self.scans = scans

    def _entries(self, context: DetectContext | None) -> list[CatalogueEntry]:
        return known_images(self.catalogue, self.scans)

    def identify_with_recommendation(
            self, facts: ImageFacts, context: DetectContext | None = None) -> tuple[BaseImage | None,
                                                                                   CatalogueEntry | None]:
        entries = self._entries(context)
        found = identify(facts, entries)
        if found is None:
            return None, None
        base, matched = found
        rec = recommend(matched, entries) if matched is not None else None
        if matched is not None and rec is not None:
            base.recommendation = _recommendation_text(matched, rec)
        return base, rec

    def identify(self, facts: ImageFacts, context: DetectContext | None = None) -> BaseImage | None:
        return self.identify_with_recommendation(facts, context)[0]

    def detect(self, facts: ImageFacts, context: DetectContext | None = None) -> list[CheckFinding]:
        return findings_for(*self.identify_with_recommendation(facts, context))

    def apply(self, report: ScanReport, context: DetectContext | None = None) -> None:
        """Set `report.base_image` and add the base item's findings to `report.checks`."""
        base, rec = self.identify_with_recommendation(report.facts, context)
        report.base_image = base
        report.checks.extend(findings_for(base, rec))
        if "base" not in report.scanners:
            report.scanners.append("base")


def findings_for(base: BaseImage | None, rec: CatalogueEntry | None) -> list[CheckFinding]:
    if base is None or rec is None:
        return []
    return [CheckFinding(
        item="base", id="base-update-available", severity="LOW",
        title=f"A newer base image with fewer vulnerabilities is known: {rec.reference}",
        description=f"The image is built on {base.name}. {base.recommendation}.",
        remediation=f"Rebuild the image FROM {rec.reference}" + (f"@{rec.digest}." if rec.digest else "."),
        evidence=base.name, metadata={"base": base.name, "digest": base.digest, "method": base.method,
                                      "recommended": rec.reference, "recommended_digest": rec.digest,
                                      "recommended_findings": str(rec.findings)})]
