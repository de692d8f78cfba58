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
  was found.
- The image depends on every other component.

``serialNumber`` and ``metadata.timestamp`` change from run to run unless ``deterministic=True``, which derives the
serial number from the image identity and uses `timestamp` (default: the Unix epoch).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import fixup_id
from license_expression import get_spdx_licensing
from packageurl import PackageURL

from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.report import image_purl, sorted_packages, tool_version

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_licensing = get_spdx_licensing()


def spdx_expression(text: str) -> str | None:
    """The normalised form of `text` when it is a valid SPDX licence expression over known ids, else None."""
    try:
        result = _licensing.validate(text)
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
    packages = sorted_packages(facts)
    for pkg, ref in zip(packages, _bom_refs(packages), strict=True):
        components.append(_package_component(pkg, ref))
    # The graph is built here rather than with Bom.register_dependency, which scans the whole graph on every
    # call (quadratic on big images).
    dependencies = [Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components])]
    dependencies += [Dependency(ref=c.bom_ref) for c in components]
    return Bom(serial_number=serial, metadata=metadata, components=components, dependencies=dependencies)


def render(facts: ImageFacts, *, deterministic: bool = False, timestamp: datetime | None = None) -> str:
    """CycloneDX 1.6 JSON for `facts`.

    Serialising costs time quadratic in the number of packages (about 9 s for 5000): the library's outputter
    always runs ``Bom.validate()``, which looks every component up with a linear scan
    (CycloneDX/cyclonedx-python-lib#1006, fix proposed in #1007).
    """
    bom = build_bom(facts, deterministic=deterministic, timestamp=timestamp)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
