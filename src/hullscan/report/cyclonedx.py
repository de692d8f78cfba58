"""CycloneDX 1.6 JSON rendering of an image's software inventory, built with cyclonedx-python-lib.

- ``metadata.component`` is the image: type ``container``, name = the reference, version = the manifest digest,
  purl ``pkg:oci/<name>@<digest>?repository_url=...`` when the digest is known.
- One ``operating-system`` component for the identified OS, one ``library`` component per package. A package's
  bom-ref is its purl; when several packages share a purl (the same wheel in two virtualenvs), each bom-ref is
  the purl plus ``|<path>`` (and ``|<n>`` if that still collides).
- Licences: a single known SPDX id becomes ``license.id``, an SPDX expression becomes ``expression`` (several
  SPDX entries are joined with AND), anything else a ``license.name``. When an expression and a non-SPDX name
  are mixed, every entry is written as a name (the schema forbids mixing expressions with licences).
- Properties ``hullscan:package:*`` and ``hullscan:layer:*`` (index, diff_id, created_by) say where each package
  was found. ``evidence`` says which file identified it (``occurrences``) and how (``identity`` with the method
  as an analysis technique and a confidence: a package database 1, a version string in a binary 0.5, a file name
  0.3); a development-only dependency has ``scope: optional``; a binary identified by its contents has its ``cpe``.
- The image depends on every other component.

``serialNumber`` and ``metadata.timestamp`` change from run to run unless ``deterministic=True``, which derives the
serial number from the image identity and uses `timestamp` (default: the Unix epoch).

A scan report (:func:`render_report`) adds a ``vulnerabilities`` section: one entry per vulnerability id and data
source (findings of one advisory on several packages share it), in the library's order (by id):

- ``id``, ``source`` (name = the OSV ecosystem the advisory came from, e.g. ``Debian:12``; url = its OSV page),
  ``references`` (every alias and advisory id, each with its OSV page);
- ``ratings``: the finding's severity, with its CVSS score, method (CVSSv2/v3/v31/v4, or other) and vector when the
  severity came from CVSS; a vendor severity (``severity_source`` ``vendor:<name>``) is a rating of its own with
  method ``other``, next to an unrated CVSS score when the advisory has one;
- ``description`` = the title, ``detail`` = the description, ``recommendation`` = ``Upgrade <package> to
  <versions>`` for each fixable package (or that no fix exists yet), ``advisories`` = the reference URLs,
  ``published`` / ``updated``;
- ``affects``: the bom-ref of each affected package's component, with the installed version as ``affected``;
- properties ``hullscan:kev`` (``true`` for a known exploited vulnerability), ``hullscan:advisory_ids`` and
  ``hullscan:status`` (``fixed`` when every affected package has a fix, else ``affected``).

Ignored findings are left out: the BOM lists the vulnerabilities that remain. ``metadata.properties`` say whether the
vulnerability scan could check every package (``hullscan:vulnerabilities:complete``, ``...:unchecked`` and one
``...:unchecked:<scope>`` per OS or ecosystem without data).
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAdvisory,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.spdx import fixup_id
from packageurl import PackageURL

from hullscan.findings import ScanReport, VulnFinding
from hullscan.licenses import spdx_licensing
from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.report import (
    coverage_dict,
    image_purl,
    is_fixable,
    package_sort_key,
    parse_time,
    severity_of,
    sorted_findings,
    tool_version,
    web_uri,
)
from hullscan.report.cyclonedx_json import to_json

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OSV_URL = "https://osv.dev/vulnerability/"


@functools.lru_cache(maxsize=4096)
def spdx_expression(text: str) -> str | None:
    """The normalised form of `text` when it is a valid SPDX licence expression over known ids, else None.
    Kept per text: validating takes about a millisecond, and an image repeats a few dozen licence strings."""
    try:
        result = spdx_licensing().validate(text)
    except Exception:  # the parser raises assorted types on junk input
        return None
    if result.errors or not result.normalized_expression:
        return None
    return str(result.normalized_expression)


def licences(raws: Iterable[str]) -> list[License]:
    """CycloneDX licences for a package's declared licence strings (see the module docstring)."""
    entries: list[tuple[str, str]] = []  # (kind, value) in declaration order, de-duplicated
    for raw in raws:
        text = " ".join(raw.split())
        if not text:
            continue
        known = fixup_id(text)
        expr = None if known else spdx_expression(text)
        entry = ("id", known) if known else ("expression", expr) if expr else ("name", text)
        if entry not in entries:
            entries.append(entry)
    kinds = {kind for kind, _ in entries}
    if "expression" in kinds and "name" not in kinds:
        if len(entries) == 1:
            return [LicenseExpression(entries[0][1])]
        return [LicenseExpression(" AND ".join(f"({v})" if " " in v else v for _, v in entries))]
    # Ids and names only, or an expression next to a name: a list of licences.
    return [DisjunctiveLicense(id=v) if k == "id" else DisjunctiveLicense(name=v) for k, v in entries]


def _purl(text: str) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _bom_refs(packages: list[Package]) -> list[str]:
    bases = [p.purl or f"{p.ecosystem}:{p.name}@{p.version}" for p in packages]
    shared = Counter(bases)
    refs: list[str] = []
    seen: set[str] = set()
    for pkg, base in zip(packages, bases, strict=True):
        ref = base if shared[base] == 1 else f"{base}|{pkg.path}"
        candidate, n = ref, 1
        while candidate in seen:
            n += 1
            candidate = f"{ref}|{n}"
        seen.add(candidate)
        refs.append(candidate)
    return refs


# Each evidence method (hullscan.model.EVIDENCE_METHODS) as a CycloneDX analysis technique, and how far it can be
# trusted to name the right package (evidence.identity confidence, 0 to 1): a package database is the installer's
# own record, a version string found in a binary or a file name is a guess that can be wrong.
_EVIDENCE: dict[str, tuple[AnalysisTechnique, str]] = {
    "package-database": (AnalysisTechnique.MANIFEST_ANALYSIS, "1"),
    "installed-metadata": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.9"),
    "build-info": (AnalysisTechnique.BINARY_ANALYSIS, "0.9"),
    "pom-properties": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.9"),
    "elf-note": (AnalysisTechnique.BINARY_ANALYSIS, "0.9"),
    "lock-file": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.8"),
    "pom-xml": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.8"),
    "jenkins-manifest": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.8"),
    "release-file": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.8"),
    "osgi-manifest": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.7"),
    "archive-manifest": (AnalysisTechnique.MANIFEST_ANALYSIS, "0.6"),
    "pe-version-resource": (AnalysisTechnique.BINARY_ANALYSIS, "0.6"),
    "record": (AnalysisTechnique.FILENAME, "0.5"),
    "binary-signature": (AnalysisTechnique.BINARY_ANALYSIS, "0.5"),
    "file-name": (AnalysisTechnique.FILENAME, "0.3"),
}


def evidence(pkg: Package) -> ComponentEvidence | None:
    """Which file identified the package (an occurrence) and how (an identity method with its confidence)."""
    if not pkg.path and not pkg.method:
        return None
    occurrences = [Occurrence(location=pkg.path)] if pkg.path else None
    identity = None
    if pkg.method:
        technique, confidence = _EVIDENCE.get(pkg.method, (AnalysisTechnique.OTHER, "0.5"))
        value = f"{pkg.method}: {pkg.path}" if pkg.path else pkg.method
        field = IdentityField.PURL if pkg.purl else IdentityField.CPE if pkg.cpe else IdentityField.NAME
        identity = Identity(field=field, confidence=Decimal(confidence),
                            concluded_value=pkg.purl or pkg.cpe or pkg.name,
                            methods=[Method(technique=technique, confidence=Decimal(confidence), value=value)])
    return ComponentEvidence(identity=identity, occurrences=occurrences)


def _properties(pairs: Iterable[tuple[str, str]]) -> list[Property]:
    return [Property(name=name, value=value) for name, value in pairs if value]


def _package_component(pkg: Package, bom_ref: str) -> Component:
    props = [
        ("hullscan:package:ecosystem", pkg.ecosystem),
        ("hullscan:package:path", pkg.path),
        ("hullscan:package:source_name", pkg.source_name),
        ("hullscan:package:source_version", pkg.source_version),
        ("hullscan:package:arch", pkg.arch),
        ("hullscan:package:epoch", "" if pkg.epoch is None else str(pkg.epoch)),
        ("hullscan:package:release", pkg.release),
        ("hullscan:package:method", pkg.method),
        ("hullscan:package:dev", "true" if pkg.dev else ""),
        ("hullscan:layer:index", str(pkg.layer_index) if pkg.layer_index >= 0 else ""),
        ("hullscan:layer:diff_id", pkg.layer_diff_id),
        ("hullscan:layer:created_by", pkg.layer_created_by),
    ]
    if pkg.purl and _purl(pkg.purl) is None:
        props.append(("hullscan:package:purl", pkg.purl))  # kept, even though it does not parse as a purl
    return Component(
        type=ComponentType.LIBRARY,
        name=pkg.name,
        version=pkg.version or None,
        bom_ref=bom_ref,
        purl=_purl(pkg.purl),
        licenses=licences(pkg.licenses),
        supplier=OrganizationalEntity(name=pkg.vendor) if pkg.vendor else None,
        properties=_properties(props),
        cpe=pkg.cpe or None,
        # development-only dependencies are not needed at run time: CycloneDX's "optional" lets users filter them
        scope=ComponentScope.OPTIONAL if pkg.dev else None,
        evidence=evidence(pkg),
    )


def _os_component(os_info: OSInfo) -> Component:
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os_info.family,
        version=os_info.version or None,
        description=os_info.name or None,
        bom_ref=f"hullscan:os:{os_info.family}:{os_info.version}",
        properties=_properties([("hullscan:os:codename", os_info.codename)]),
    )


def _image_component(facts: ImageFacts) -> Component:
    return Component(
        type=ComponentType.CONTAINER,
        name=facts.reference,
        version=facts.manifest_digest or None,
        bom_ref=f"hullscan:image:{facts.manifest_digest or facts.reference}",
        purl=_purl(image_purl(facts)),
        properties=_properties(
            [
                ("hullscan:image:manifest_digest", facts.manifest_digest),
                ("hullscan:image:config_digest", facts.config_digest),
                ("hullscan:image:platform", str(facts.platform)),
                ("hullscan:image:layers", str(len(facts.layers))),
            ]
        ),
    )


def build_bom(facts: ImageFacts, *, deterministic: bool = False, timestamp: datetime | None = None) -> Bom:
    """The CycloneDX model of `facts` (for callers that want to add to it before writing)."""
    return _inventory_bom(facts, facts.packages, deterministic, timestamp)[0]


def _inventory_bom(
    facts: ImageFacts, packages: list[Package], deterministic: bool, timestamp: datetime | None
) -> tuple[Bom, dict[int, str]]:
    """The BOM of `facts` listing `packages`, and the bom-ref of each package (keyed by ``id(package)``)."""
    root = _image_component(facts)
    version = tool_version()
    metadata = BomMetaData(component=root)
    metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="hullscan", version=version))
    if deterministic:
        seed = "|".join(("hullscan", version, facts.reference, facts.manifest_digest, facts.config_digest))
        serial = uuid.uuid5(uuid.NAMESPACE_URL, seed)
        metadata.timestamp = timestamp or EPOCH
    else:
        serial = uuid.uuid4()
        if timestamp is not None:
            metadata.timestamp = timestamp

    components: list[Component] = []
    if facts.os is not None:
        components.append(_os_component(facts.os))
    ordered = sorted(packages, key=package_sort_key)
    refs = _bom_refs(ordered)
    for pkg, ref in zip(ordered, refs, strict=True):
        components.append(_package_component(pkg, ref))
    # The graph is built here rather than with Bom.register_dependency, which scans the whole graph on every
    # call (quadratic on big images).
    dependencies = [Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components])]
    dependencies += [Dependency(ref=c.bom_ref) for c in components]
    bom = Bom(serial_number=serial, metadata=metadata, components=components, dependencies=dependencies)
    return bom, {id(pkg): ref for pkg, ref in zip(ordered, refs, strict=True)}


def render(facts: ImageFacts, *, deterministic: bool = False, timestamp: datetime | None = None) -> str:
    """CycloneDX 1.6 JSON for `facts` (written by hullscan.report.cyclonedx_json: linear in the package count)."""
    bom = build_bom(facts, deterministic=deterministic, timestamp=timestamp)
    return to_json(bom) + "\n"


def osv_url(advisory_id: str) -> str:
    """The OSV page of an advisory (any id OSV knows: CVE, GHSA, DSA, PYSEC, ...)."""
    return OSV_URL + quote(advisory_id, safe="")


def _score_method(finding: VulnFinding) -> VulnerabilityScoreSource | None:
    """The CVSS version of the finding's score, from its vector's prefix or else its severity source."""
    if not finding.cvss_vector and finding.cvss_score is None:
        return None
    method = VulnerabilityScoreSource.get_from_vector(finding.cvss_vector)
    if method is not VulnerabilityScoreSource.OTHER:
        return method
    source = finding.severity_source.lower().replace(" ", "")
    for prefix, known in (
        ("cvss:4", VulnerabilityScoreSource.CVSS_V4),
        ("cvss:3.1", VulnerabilityScoreSource.CVSS_V3_1),
        ("cvss:3", VulnerabilityScoreSource.CVSS_V3),
        ("cvss:2", VulnerabilityScoreSource.CVSS_V2),
    ):
        if source.startswith(prefix):
            return known
    # OSV's CVSS_V2 vectors carry no prefix: "AV:N/AC:L/Au:N/C:P/I:P/A:P" (Au is v2 only).
    if "Au:" in finding.cvss_vector:
        return VulnerabilityScoreSource.CVSS_V2
    return VulnerabilityScoreSource.OTHER


_CVE_PROVIDERS = {"cna": "CNA", "adp": "ADP"}
NVD_URL = "https://nvd.nist.gov/vuln/detail/"


def cve_rating_source(finding: VulnFinding) -> VulnerabilitySource | None:
    """The provider of a severity taken from the CVE record: "redhat (CNA)", "CISA-ADP (ADP)" or "NVD"."""
    provider = finding.severity_source.split("/", 1)[0]
    kind, _, name = provider.partition(":")
    if kind == "nvd":
        url = XsUri(NVD_URL + quote(finding.id, safe="")) if finding.id.startswith("CVE-") else None
        return VulnerabilitySource(name="NVD", url=url)
    if kind in _CVE_PROVIDERS and name and "/" in finding.severity_source:
        return VulnerabilitySource(name=f"{name} ({_CVE_PROVIDERS[kind]})")
    return None


def _ratings(finding: VulnFinding) -> list[VulnerabilityRating]:
    """One rating per source of the finding's severity: the vendor's word, a CVE provider's CVSS or word, or the
    advisory's own CVSS; the CVSS score and vector go with the rating they came from."""
    severity = VulnerabilitySeverity(severity_of(finding).lower())
    method = _score_method(finding)
    score = None if finding.cvss_score is None else Decimal(str(finding.cvss_score))
    vector = finding.cvss_vector or None
    data_source = VulnerabilitySource(name=finding.data_source) if finding.data_source else None
    kind, _, vendor = finding.severity_source.partition(":")
    cve_source = cve_rating_source(finding)
    if cve_source is not None and not finding.severity_source.endswith("/rating"):
        return [VulnerabilityRating(source=cve_source, severity=severity, score=score, method=method, vector=vector)]
    if (kind.lower() == "vendor" and vendor) or cve_source is not None:
        word_source = cve_source or VulnerabilitySource(name=vendor)
        ratings = [VulnerabilityRating(source=word_source, severity=severity, method=VulnerabilityScoreSource.OTHER)]
        if method is not None:
            ratings.append(VulnerabilityRating(source=data_source, score=score, method=method, vector=vector))
        return ratings
    return [VulnerabilityRating(source=data_source, severity=severity, score=score, method=method, vector=vector)]


def _recommendation(findings: list[VulnFinding]) -> str:
    upgrades: list[str] = []
    for f in findings:
        if is_fixable(f) and f.fixed_versions:
            line = f"Upgrade {f.package.name} to {' or '.join(f.fixed_versions)}"
            if line not in upgrades:
                upgrades.append(line)
    if not upgrades:
        return "No fixed version is available yet."
    return "; ".join(upgrades) + "."


def _vulnerability(key: tuple[str, str], findings: list[VulnFinding], refs: dict[int, str]) -> Vulnerability:
    vid, data_source = key
    lead = findings[0]  # the most severe finding of the group
    origin = next(iter(lead.advisory_ids), vid)
    ids: list[str] = []
    for f in findings:
        for other in (*f.aliases, *f.advisory_ids):
            if other and other != vid and other not in ids:
                ids.append(other)
    ratings: list[VulnerabilityRating] = []
    for f in findings:
        ratings += [r for r in _ratings(f) if r not in ratings]
    advisories: list[str] = []
    for f in findings:
        advisories += [u for u in (web_uri(r) for r in f.references) if u and u not in advisories]
    affects: dict[str, BomTarget] = {}
    for f in findings:
        ref = refs[id(f.package)]
        version = f.installed_version or f.package.version
        versions = [BomTargetVersionRange(version=version, status=ImpactAnalysisAffectedStatus.AFFECTED)] if version \
            else []
        affects.setdefault(ref, BomTarget(ref=ref, versions=versions))
    published = min((t for f in findings if (t := parse_time(f.published)) is not None), default=None)
    updated = max((t for f in findings if (t := parse_time(f.modified)) is not None), default=None)
    title = " ".join(lead.title.split())
    properties = [
        ("hullscan:kev", "true" if any(f.kev for f in findings) else ""),
        ("hullscan:advisory_ids", ", ".join(dict.fromkeys(a for f in findings for a in f.advisory_ids))),
        ("hullscan:status", "fixed" if all(is_fixable(f) for f in findings) else "affected"),
        ("hullscan:severity_source", lead.severity_source),
        ("hullscan:epss", "" if lead.epss is None else f"{lead.epss:.5f}"),
        ("hullscan:epss_percentile", "" if lead.epss_percentile is None else f"{lead.epss_percentile:.5f}"),
    ]
    return Vulnerability(
        bom_ref=f"hullscan:vulnerability:{vid}:{data_source}",
        id=vid,
        source=VulnerabilitySource(name=data_source or "OSV", url=XsUri(osv_url(origin))),
        references=[VulnerabilityReference(id=other, source=VulnerabilitySource(name="OSV", url=XsUri(osv_url(other))))
                    for other in ids],
        ratings=ratings,
        description=title or None,
        detail=lead.description.strip() or None,
        recommendation=_recommendation(findings),
        advisories=[VulnerabilityAdvisory(url=XsUri(url)) for url in advisories],
        published=published,
        updated=updated,
        affects=list(affects.values()),
        properties=_properties(properties),
    )


def _identity(pkg: Package) -> tuple[str, ...]:
    return (*pkg.key, pkg.path, pkg.purl)


def build_report_bom(report: ScanReport, *, deterministic: bool = False, timestamp: datetime | None = None) -> Bom:
    """The CycloneDX model of a scan report: the inventory plus a ``vulnerabilities`` section."""
    packages = list(report.facts.packages)
    known = {id(p) for p in packages}
    by_identity = {_identity(p): p for p in packages}
    twin_of: dict[int, Package] = {}  # a finding's package object -> the inventory's equal package
    for finding in report.vulnerabilities:
        pkg = finding.package
        if id(pkg) in known or id(pkg) in twin_of:
            continue
        twin = by_identity.get(_identity(pkg))
        if twin is None:  # a finding on a package the inventory does not list: it gets a component too
            packages.append(pkg)
            known.add(id(pkg))
            by_identity[_identity(pkg)] = pkg
        else:
            twin_of[id(pkg)] = twin
    bom, refs = _inventory_bom(report.facts, packages, deterministic, timestamp)
    for alias, twin in twin_of.items():
        refs[alias] = refs[id(twin)]

    groups: dict[tuple[str, str], list[VulnFinding]] = {}
    for finding in sorted_findings(report.vulnerabilities):
        groups.setdefault((finding.id, finding.data_source), []).append(finding)
    bom.vulnerabilities = [_vulnerability(key, group, refs) for key, group in groups.items()]
    for prop in _coverage_properties(report):
        bom.metadata.properties.add(prop)
    return bom


def _coverage_properties(report: ScanReport) -> list[Property]:
    """``hullscan:vulnerabilities:complete`` (false when some package could not be checked), the number not
    checked, and one ``hullscan:vulnerabilities:unchecked:<scope>`` per gap: a short vulnerability list in the BOM
    is not mistaken for a clean image."""
    coverage = coverage_dict(report)
    if coverage is None:
        return []
    pairs = [("hullscan:vulnerabilities:complete", "true" if coverage["complete"] else "false"),
             ("hullscan:vulnerabilities:unchecked", str(coverage["unchecked"]))]
    pairs += [(f"hullscan:vulnerabilities:unchecked:{gap.scope}", f"{gap.packages} ({gap.reason})")
              for gap in report.unchecked]
    return [Property(name=name, value=value) for name, value in pairs]


def render_report(report: ScanReport, *, deterministic: bool = False, timestamp: datetime | None = None) -> str:
    """CycloneDX 1.6 JSON for a scan report: the inventory of `render` plus a ``vulnerabilities`` section."""
    bom = build_report_bom(report, deterministic=deterministic, timestamp=timestamp)
    return to_json(bom) + "\n"
