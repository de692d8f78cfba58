"""CycloneDX 1.6 JSON rendering of an image's software inventory: the document cyclonedx-python-lib writes.

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

Written as JSON directly, not through cyclonedx-python-lib's model: building and serialising that model cost about
1.2 ms per component and 2 ms per vulnerability (sorted sets of objects whose every comparison builds a tuple of
all their fields): 10 s for a 5,000-package scan report, a fifth of an everyday image's ``hullscan sbom``. The
document is the one the library wrote, member for member and in its order (objects' keys sorted, every list sorted
as the library sorts it, equal entries once); the tests check it against the library's CycloneDX 1.6 schema, and
the library still provides the SPDX licence ids.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from cyclonedx.schema._res import SPDX_JSON
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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OSV_URL = "https://osv.dev/vulnerability/"
SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"
Json = dict[str, Any]


@functools.cache
def _spdx_ids() -> dict[str, str]:
    """The library's SPDX licence ids (its schema's list), by lower-cased id. Read here rather than through
    `cyclonedx.spdx`, which builds an SPDX licensing of its own when imported (15 ms; hullscan.licenses holds one)."""
    with open(SPDX_JSON, encoding="utf-8") as f:
        ids: list[str] = json.load(f).get("enum", [])
    return {i.lower(): i for i in ids}


def fixup_id(text: str) -> str | None:
    """The SPDX id `text` names, in the id's own case (as the library's `fixup_id`), else None."""
    return _spdx_ids().get(text.lower())


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


def licences(raws: Iterable[str]) -> list[Json]:
    """CycloneDX ``licenses`` entries for a package's declared licence strings (see the module docstring)."""
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
            return [{"expression": entries[0][1]}]
        return [{"expression": " AND ".join(f"({v})" if " " in v else v for _, v in entries)}]
    # Ids and names only, or an expression next to a name: a list of licences, ids first (as the library sorts).
    ids = sorted({v for k, v in entries if k == "id"})
    names = sorted({v for k, v in entries if k != "id"})
    return [{"license": {"id": v}} for v in ids] + [{"license": {"name": v}} for v in names]


# --- the library's orders -----------------------------------------------------------------------------------------
# cyclonedx-python-lib keeps every list in a sorted set: entries compare field by field, a missing field after any
# value, and equal entries are kept once. These keys give the same order for what this module writes.


def _last_if_none(value: Any) -> tuple[Any, ...]:
    return (1,) if value is None else (0, value)


def _properties(pairs: Iterable[tuple[str, str]]) -> list[Json]:
    return [{"name": name, "value": value} for name, value in sorted({(n, v) for n, v in pairs if v})]


_URI_ESCAPES = ((" ", "%20"), ('"', "%22"), ("'", "%27"), ("[", "%5B"), ("]", "%5D"), ("<", "%3C"), (">", "%3E"),
                ("{", "%7B"), ("}", "%7D"))


def _uri(text: str) -> str:
    """A URI as the library writes it (its clean-up for XML anyURI and JSON iri-reference)."""
    for char, escaped in _URI_ESCAPES:
        text = text.replace(char, escaped)
    return text


def _clean(obj: Json) -> Json:
    """`obj` without empty members, its keys in order (the library writes no empty value, and sorts names)."""
    return {k: obj[k] for k in sorted(obj) if obj[k] is not None and obj[k] != [] and obj[k] != {}}


# --- components -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _purl(text: str) -> str | None:
    """The purl as the library writes it (parsed and written again), None when it does not parse."""
    if not text:
        return None
    try:
        return str(PackageURL.from_string(text).to_string())
    except ValueError:
        return None


def _bom_refs(packages: list[Package], taken: set[str]) -> list[str]:
    bases = [p.purl or f"{p.ecosystem}:{p.name}@{p.version}" for p in packages]
    shared = Counter(bases)
    refs: list[str] = []
    seen = set(taken)
    for pkg, base in zip(packages, bases, strict=True):
        ref = base if shared[base] == 1 and base not in seen else f"{base}|{pkg.path}"
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
_EVIDENCE: dict[str, tuple[str, float]] = {
    "package-database": ("manifest-analysis", 1.0),
    "installed-metadata": ("manifest-analysis", 0.9),
    "build-info": ("binary-analysis", 0.9),
    "pom-properties": ("manifest-analysis", 0.9),
    "elf-note": ("binary-analysis", 0.9),
    "lock-file": ("manifest-analysis", 0.8),
    "pom-xml": ("manifest-analysis", 0.8),
    "jenkins-manifest": ("manifest-analysis", 0.8),
    "release-file": ("manifest-analysis", 0.8),
    "osgi-manifest": ("manifest-analysis", 0.7),
    "archive-manifest": ("manifest-analysis", 0.6),
    "pe-version-resource": ("binary-analysis", 0.6),
    "record": ("filename", 0.5),
    "binary-signature": ("binary-analysis", 0.5),
    "file-name": ("filename", 0.3),
}


def evidence(pkg: Package) -> Json | None:
    """Which file identified the package (an occurrence) and how (an identity method with its confidence)."""
    if not pkg.path and not pkg.method:
        return None
    identity = None
    if pkg.method:
        technique, confidence = _EVIDENCE.get(pkg.method, ("other", 0.5))
        value = f"{pkg.method}: {pkg.path}" if pkg.path else pkg.method
        field = "purl" if pkg.purl else "cpe" if pkg.cpe else "name"
        identity = [{"concludedValue": pkg.purl or pkg.cpe or pkg.name, "confidence": confidence, "field": field,
                     "methods": [{"confidence": confidence, "technique": technique, "value": value}]}]
    return _clean({"identity": identity, "occurrences": [{"location": pkg.path}] if pkg.path else None}) or None


def _package_component(pkg: Package, bom_ref: str) -> Json:
    purl = _purl(pkg.purl)
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
    if pkg.purl and purl is None:
        props.append(("hullscan:package:purl", pkg.purl))  # kept, even though it does not parse as a purl
    return _clean({
        "bom-ref": bom_ref,
        "cpe": pkg.cpe or None,
        "evidence": evidence(pkg),
        "licenses": licences(pkg.licenses),
        "name": pkg.name,
        "properties": _properties(props),
        "purl": purl,
        # development-only dependencies are not needed at run time: CycloneDX's "optional" lets users filter them
        "scope": "optional" if pkg.dev else None,
        "supplier": {"name": pkg.vendor} if pkg.vendor else None,
        "type": "library",
        "version": pkg.version or None,
    })


def _os_component(os_info: OSInfo) -> Json:
    return _clean({
        "bom-ref": f"hullscan:os:{os_info.family}:{os_info.version}",
        "description": os_info.name or None,
        "name": os_info.family,
        "properties": _properties([("hullscan:os:codename", os_info.codename)]),
        "type": "operating-system",
        "version": os_info.version or None,
    })


def _image_component(facts: ImageFacts) -> Json:
    return _clean({
        "bom-ref": f"hullscan:image:{facts.manifest_digest or facts.reference}",
        "name": facts.reference,
        "properties": _properties([
            ("hullscan:image:manifest_digest", facts.manifest_digest),
            ("hullscan:image:config_digest", facts.config_digest),
            ("hullscan:image:platform", str(facts.platform)),
            ("hullscan:image:layers", str(len(facts.layers))),
        ]),
        "purl": _purl(image_purl(facts)),
        "type": "container",
        "version": facts.manifest_digest or None,
    })


def _component_key(c: Json) -> tuple[Any, ...]:
    # type, group (never set), name, version, bom-ref: bom-refs are unique, so nothing after them decides
    return (c["type"], c["name"], _last_if_none(c.get("version")), c["bom-ref"])


def _inventory(facts: ImageFacts, packages: list[Package], deterministic: bool,
               timestamp: datetime | None) -> tuple[Json, dict[int, str]]:
    """The document of `facts` listing `packages` (no vulnerabilities yet), and the bom-ref of each package (keyed
    by ``id(package)``)."""
    root = _image_component(facts)
    version = tool_version()
    if deterministic:
        seed = "|".join(("hullscan", version, facts.reference, facts.manifest_digest, facts.config_digest))
        serial = uuid.uuid5(uuid.NAMESPACE_URL, seed)
        when = timestamp or EPOCH
    else:
        serial = uuid.uuid4()
        when = timestamp or datetime.now(UTC)
    components: list[Json] = []
    if facts.os is not None:
        components.append(_os_component(facts.os))
    ordered = sorted(packages, key=package_sort_key)
    refs = _bom_refs(ordered, {root["bom-ref"], *(c["bom-ref"] for c in components)})
    components += [_package_component(pkg, ref) for pkg, ref in zip(ordered, refs, strict=True)]
    components.sort(key=_component_key)
    # The image depends on every other component; each component has an entry of its own.
    dependencies = [{"dependsOn": sorted(c["bom-ref"] for c in components), "ref": root["bom-ref"]}] if components \
        else [{"ref": root["bom-ref"]}]
    dependencies += [{"ref": c["bom-ref"]} for c in components]
    dependencies.sort(key=lambda d: d["ref"])
    doc: Json = {
        "components": components,
        "dependencies": dependencies,
        "metadata": {
            "component": root,
            "timestamp": when.isoformat(),
            "tools": {"components": [{"name": "hullscan", "type": "application", "version": version}]},
        },
        "serialNumber": serial.urn,
        "version": 1,
    }
    return doc, {id(pkg): ref for pkg, ref in zip(ordered, refs, strict=True)}


def _text(doc: Json) -> str:
    body = {k: doc[k] for k in ("components", "dependencies", "metadata", "serialNumber", "version",
                                 "vulnerabilities") if doc.get(k)}
    body.update({"$schema": SCHEMA, "bomFormat": "CycloneDX", "specVersion": "1.6"})
    return json.dumps(body, indent=2) + "\n"


def render(facts: ImageFacts, *, deterministic: bool = False, timestamp: datetime | None = None) -> str:
    """CycloneDX 1.6 JSON for `facts`."""
    return _text(_inventory(facts, facts.packages, deterministic, timestamp)[0])


# --- vulnerabilities --------------------------------------------------------------------------------------------


def osv_url(advisory_id: str) -> str:
    """The OSV page of an advisory (any id OSV knows: CVE, GHSA, DSA, PYSEC, ...)."""
    return OSV_URL + quote(advisory_id, safe="")


def _score_method(finding: VulnFinding) -> str | None:
    """The CVSS version of the finding's score (CycloneDX's method), from its vector's prefix or else its severity
    source."""
    if not finding.cvss_vector and finding.cvss_score is None:
        return None
    vector = finding.cvss_vector
    for prefix, known in (("CVSS:4.", "CVSSv4"), ("CVSS:3.1", "CVSSv31"), ("CVSS:3.", "CVSSv3"), ("CVSS:2.", "CVSSv2"),
                          ("OWASP", "OWASP")):
        if vector.startswith(prefix):
            return known
    source = finding.severity_source.lower().replace(" ", "")
    for prefix, known in (("cvss:4", "CVSSv4"), ("cvss:3.1", "CVSSv31"), ("cvss:3", "CVSSv3"), ("cvss:2", "CVSSv2")):
        if source.startswith(prefix):
            return known
    # OSV's CVSS_V2 vectors carry no prefix: "AV:N/AC:L/Au:N/C:P/I:P/A:P" (Au is v2 only).
    if "Au:" in vector:
        return "CVSSv2"
    return "other"


_SCHEME_PREFIX = {"CVSSv4": r"^CVSS:4\.\d/?", "CVSSv31": r"^CVSS:3\.\d/?", "CVSSv3": r"^CVSS:3\.\d/?",
                  "CVSSv2": r"^CVSS:2\.\d/?", "OWASP": r"^OWASP/?"}


def _vector(vector: str, method: str | None) -> str | None:
    """The vector without its scheme prefix when the method names the scheme (as the library writes it)."""
    if not vector:
        return None
    prefix = _SCHEME_PREFIX.get(method or "")
    return re.sub(prefix, "", vector) if prefix else vector


_CVE_PROVIDERS = {"cna": "CNA", "adp": "ADP"}
NVD_URL = "https://nvd.nist.gov/vuln/detail/"
_SEVERITIES = frozenset({"critical", "high", "medium", "low", "info", "none", "unknown"})


def cve_rating_source(finding: VulnFinding) -> Json | None:
    """The provider of a severity taken from the CVE record: "redhat (CNA)", "CISA-ADP (ADP)" or "NVD"."""
    provider = finding.severity_source.split("/", 1)[0]
    kind, _, name = provider.partition(":")
    if kind == "nvd":
        url = _uri(NVD_URL + quote(finding.id, safe="")) if finding.id.startswith("CVE-") else None
        return _clean({"name": "NVD", "url": url})
    if kind in _CVE_PROVIDERS and name and "/" in finding.severity_source:
        return {"name": f"{name} ({_CVE_PROVIDERS[kind]})"}
    return None


def _rating(source: Json | None, severity: str | None, score: Decimal | None, method: str | None,
            vector: str | None) -> tuple[tuple[Any, ...], Json]:
    """A rating, with the key the library orders (and tells equal) ratings by."""
    vector = _vector(vector or "", method)
    key = (_last_if_none(severity), score or 0,
           _last_if_none(None if source is None else (source["name"], _last_if_none(source.get("url")))),
           _last_if_none(method), _last_if_none(vector))
    text = None if score is None else float(format(score, ".1f"))
    return key, _clean({"method": method, "score": text, "severity": severity, "source": source, "vector": vector})


def _ratings(finding: VulnFinding) -> list[tuple[tuple[Any, ...], Json]]:
    """One rating per source of the finding's severity: the vendor's word, a CVE provider's CVSS or word, or the
    advisory's own CVSS; the CVSS score and vector go with the rating they came from."""
    severity = severity_of(finding).lower()
    severity = severity if severity in _SEVERITIES else "unknown"
    method = _score_method(finding)
    score = None if finding.cvss_score is None else Decimal(str(finding.cvss_score))
    vector = finding.cvss_vector or None
    data_source = {"name": finding.data_source} if finding.data_source else None
    kind, _, vendor = finding.severity_source.partition(":")
    cve_source = cve_rating_source(finding)
    if cve_source is not None and not finding.severity_source.endswith("/rating"):
        return [_rating(cve_source, severity, score, method, vector)]
    if (kind.lower() == "vendor" and vendor) or cve_source is not None:
        word_source = cve_source or {"name": vendor}
        ratings = [_rating(word_source, severity, None, "other", None)]
        if method is not None:
            ratings.append(_rating(data_source, None, score, method, vector))
        return ratings
    return [_rating(data_source, severity, score, method, vector)]


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


def _vulnerability(key: tuple[str, str], findings: list[VulnFinding], refs: dict[int, str]) -> Json:
    vid, data_source = key
    lead = findings[0]  # the most severe finding of the group
    origin = next(iter(lead.advisory_ids), vid)
    ids: list[str] = []
    for f in findings:
        for other in (*f.aliases, *f.advisory_ids):
            if other and other != vid and other not in ids:
                ids.append(other)
    ratings: dict[tuple[Any, ...], Json] = {}
    for f in findings:
        for rating_key, rating in _ratings(f):
            ratings.setdefault(rating_key, rating)  # the library keeps one of ratings it compares equal
    advisories: list[str] = []
    for f in findings:
        advisories += [u for u in (web_uri(r) for r in f.references) if u and u not in advisories]
    affects: dict[str, Json] = {}
    for f in findings:
        ref = refs[id(f.package)]
        version = f.installed_version or f.package.version
        affects.setdefault(ref, _clean({"ref": ref, "versions": [{"status": "affected", "version": version}]
                                        if version else None}))
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
    references = [{"id": other, "source": {"name": "OSV", "url": _uri(osv_url(other))}} for other in ids]
    return _clean({
        "advisories": [{"url": url} for url in sorted({_uri(url) for url in advisories})],
        "affects": sorted(affects.values(), key=lambda a: a["ref"]),
        "bom-ref": f"hullscan:vulnerability:{vid}:{data_source}",
        "description": title or None,
        "detail": lead.description.strip() or None,
        "id": vid,
        "properties": _properties(properties),
        "published": published.isoformat() if published else None,
        "ratings": [ratings[k] for k in sorted(ratings)],
        "recommendation": _recommendation(findings),
        "references": sorted(references, key=lambda r: r["id"]),  # one per id (see `ids`), as the library sorts
        "source": {"name": data_source or "OSV", "url": _uri(osv_url(origin))},
        "updated": updated.isoformat() if updated else None,
    })


def _identity(pkg: Package) -> tuple[str, ...]:
    return (*pkg.key, pkg.path, pkg.purl)


def render_report(report: ScanReport, *, deterministic: bool = False, timestamp: datetime | None = None) -> str:
    """CycloneDX 1.6 JSON for a scan report: the inventory of `render` plus a ``vulnerabilities`` section."""
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
    doc, refs = _inventory(report.facts, packages, deterministic, timestamp)
    for alias, twin in twin_of.items():
        refs[alias] = refs[id(twin)]

    groups: dict[tuple[str, str], list[VulnFinding]] = {}
    for finding in sorted_findings(report.vulnerabilities):
        groups.setdefault((finding.id, finding.data_source), []).append(finding)
    vulnerabilities = [_vulnerability(key, group, refs) for key, group in groups.items()]
    doc["vulnerabilities"] = sorted(vulnerabilities, key=lambda v: (v["id"], v["bom-ref"]))
    properties = _coverage_properties(report)
    if properties:
        doc["metadata"]["properties"] = properties
        doc["metadata"] = _clean(doc["metadata"])
    return _text(doc)


def _coverage_properties(report: ScanReport) -> list[Json]:
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
    return _properties(pairs)
