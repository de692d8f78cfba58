"""SPDX 2.3 renderings of an image's software inventory, built with spdx-tools: JSON (`render`, the CLI's
``spdx-json``) and tag-value (`render_tag_value`, the CLI's ``spdx``, as Trivy names them).

- The document DESCRIBES one package for the image (purpose CONTAINER, version = manifest digest, purl
  ``pkg:oci/...`` when known); the image CONTAINS the operating system (purpose OPERATING_SYSTEM) and every
  package (purpose LIBRARY, purl as a PACKAGE-MANAGER external reference).
- SPDXIDs are ``SPDXRef-Package-<16 hex of a hash of the package's identity>`` (plus ``-<n>`` on collision),
  so they only use the characters SPDX allows whatever the package is called.
- ``licenseDeclared`` is what the package declares: an SPDX expression when the string is one, else a
  ``LicenseRef-<sanitised string>`` with an ``hasExtractedLicensingInfos`` entry holding the original text;
  several declared licences are joined with AND; none gives NOASSERTION. ``licenseConcluded`` is NOASSERTION
  (hullscan reports declarations, it does not conclude).
- Where each package was found goes in its ``comment``, one ``hullscan:<key>: <value>`` line per fact
  (``package:path``, ``layer:index``, ``layer:diff_id``, ``layer:created_by``, ...: the CycloneDX property
  names). Not annotations: spdx-tools' JSON writer looks each package's annotations up with a linear scan,
  which made a 5000-package image take half a minute.

The document namespace is ``https://spdx.org/spdxdocs/hullscan-<name>-<uuid>`` with a random uuid, or one
derived from the image identity when ``deterministic=True`` (which also fixes ``created``, see `render`).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from packageurl import PackageURL
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.package import ExternalPackageRef, ExternalPackageRefCategory, PackagePurpose
from spdx_tools.spdx.model.package import Package as SpdxPackage
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from hullscan.licenses import spdx_licensing
from hullscan.model import ImageFacts, OSInfo, Package
from hullscan.report import image_purl, sorted_packages, tool_version

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DOCUMENT_ID = "SPDXRef-DOCUMENT"
_LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.-]+$")
_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.]+")
# SPDX's purl check (spdx_tools.spdx.validation.external_package_ref_validator) is looser than this; both apply.
_PURL_SHAPE = re.compile(r"^pkg:[^/]+/.+")


class LicenceRefs:
    """Maps licence strings that are not SPDX expressions to LicenseRef ids, and keeps their extracted text."""

    def __init__(self) -> None:
        self._text_of: dict[str, str] = {}  # LicenseRef id -> text
        self._id_of: dict[str, str] = {}  # text -> LicenseRef id

    def for_text(self, text: str) -> str:
        known = self._id_of.get(text)
        if known:
            return known
        slug = _NOT_IDSTRING.sub("-", text).strip("-.")[:64].strip("-.") or "unknown"
        base = f"LicenseRef-{slug}"
        candidate, n = base, 1
        while candidate in self._text_of:
            n += 1
            candidate = f"{base}-{n}"
        self._text_of[candidate] = text
        self._id_of[text] = candidate
        return candidate

    def declare(self, ref: str, text: str) -> None:
        """Record `ref`, a LicenseRef id the package itself used, unless it is already known."""
        self._text_of.setdefault(ref, text)

    def infos(self) -> list[ExtractedLicensingInfo]:
        return [
            ExtractedLicensingInfo(
                license_id=ref,
                extracted_text=text,
                license_name=text,
                comment="Licence as declared by the package metadata; not an SPDX licence expression.",
            )
            for ref, text in sorted(self._text_of.items())
        ]


def declared_expression(raw: str, refs: LicenceRefs) -> str:
    """An SPDX expression for one declared licence string: itself (normalised) or a LicenseRef."""
    text = " ".join(raw.split())
    try:
        result = spdx_licensing().validate(text)
    except Exception:  # the parser raises assorted types on junk
        return refs.for_text(text)
    if not result.errors and result.normalized_expression:
        return str(result.normalized_expression)
    if result.invalid_symbols and all(_LICENSE_REF.match(s) for s in result.invalid_symbols):
        # Already written with LicenseRefs (e.g. "LicenseRef-public-domain"): keep it, define what it uses.
        try:
            rendered = str(spdx_licensing().parse(text))
        except Exception:
            return refs.for_text(text)
        for symbol in result.invalid_symbols:
            refs.declare(symbol, text)
        return rendered
    return refs.for_text(text)


def _declared(licences: Iterable[str], refs: LicenceRefs) -> Any:
    parts: list[str] = []
    for raw in licences:
        if raw.strip():
            expr = declared_expression(raw, refs)
            if expr not in parts:
                parts.append(expr)
    if not parts:
        return SpdxNoAssertion()
    if len(parts) == 1:
        return spdx_licensing().parse(parts[0])
    return spdx_licensing().parse(" AND ".join(f"({p})" if " " in p else p for p in parts))


def _hash_id(prefix: str, *fields: str) -> str:
    digest = hashlib.sha256("\0".join(fields).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"SPDXRef-{prefix}-{digest}"


def _purl_ref(purl: str) -> list[ExternalPackageRef]:
    if not purl or not _PURL_SHAPE.match(purl):
        return []
    try:
        PackageURL.from_string(purl)
    except ValueError:
        return []
    return [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)]


def _comment(pairs: Iterable[tuple[str, str]]) -> str | None:
    """`hullscan:<key>: <value>` lines (values on one line), the same keys as the CycloneDX properties."""
    lines = [f"hullscan:{key}: {' '.join(value.splitlines())}" for key, value in pairs if value]
    return "\n".join(lines) or None


def _actor_name(name: str) -> str:
    # The serialised form is "Organization: name (email)": parentheses in a name would read as an email.
    return " ".join(name.replace("(", "[").replace(")", "]").split())


class _Builder:
    def __init__(self, facts: ImageFacts, created: datetime) -> None:
        self.facts = facts
        self.created = created
        self.tool = Actor(ActorType.TOOL, f"hullscan-{tool_version()}")
        self.refs = LicenceRefs()
        self.packages: list[SpdxPackage] = []
        self.relationships: list[Relationship] = []
        self.ids: set[str] = set()

    def unique_id(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}-{n}"
        self.ids.add(candidate)
        return candidate

    def image(self) -> str:
        facts = self.facts
        spdx_id = self.unique_id(_hash_id("Image", facts.reference, facts.manifest_digest))
        self.packages.append(
            SpdxPackage(
                spdx_id=spdx_id,
                name=facts.reference or "image",
                download_location=SpdxNoAssertion(),
                version=facts.manifest_digest or None,
                files_analyzed=False,
                license_concluded=SpdxNoAssertion(),
                license_declared=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
                external_references=_purl_ref(image_purl(facts)),
                primary_package_purpose=PackagePurpose.CONTAINER,
                comment=_comment(
                    [
                        ("image:manifest_digest", facts.manifest_digest),
                        ("image:config_digest", facts.config_digest),
                        ("image:platform", str(facts.platform)),
                        ("image:layers", str(len(facts.layers))),
                    ]
                ),
            )
        )
        self.relationships.append(Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, spdx_id))
        return spdx_id

    def operating_system(self, image_id: str, os_info: OSInfo) -> None:
        spdx_id = self.unique_id(_hash_id("OperatingSystem", os_info.family, os_info.version))
        self.packages.append(
            SpdxPackage(
                spdx_id=spdx_id,
                name=os_info.family or "unknown",
                download_location=SpdxNoAssertion(),
                version=os_info.version or None,
                files_analyzed=False,
                license_concluded=SpdxNoAssertion(),
                license_declared=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
                description=os_info.name or None,
                primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
            )
        )
        self.relationships.append(Relationship(image_id, RelationshipType.CONTAINS, spdx_id))

    def package(self, image_id: str, pkg: Package) -> None:
        identity = (pkg.ecosystem, pkg.name, pkg.version, pkg.path, pkg.arch, pkg.release, str(pkg.epoch))
        spdx_id = self.unique_id(_hash_id("Package", *identity))
        source = " ".join(part for part in (pkg.source_name, pkg.source_version) if part)
        purl_refs = _purl_ref(pkg.purl)
        self.packages.append(
            SpdxPackage(
                spdx_id=spdx_id,
                name=pkg.name or "unknown",
                download_location=SpdxNoAssertion(),
                version=pkg.version or None,
                supplier=Actor(ActorType.ORGANIZATION, _actor_name(pkg.vendor))
                if _actor_name(pkg.vendor)
                else SpdxNoAssertion(),
                files_analyzed=False,
                source_info=f"built package from: {source}" if source else None,
                license_concluded=SpdxNoAssertion(),
                license_declared=_declared(pkg.licenses, self.refs),
                copyright_text=SpdxNoAssertion(),
                external_references=purl_refs,
                primary_package_purpose=PackagePurpose.LIBRARY,
                comment=_comment(
                    [
                        ("package:ecosystem", pkg.ecosystem),
                        ("package:path", pkg.path),
                        ("package:arch", pkg.arch),
                        ("package:epoch", "" if pkg.epoch is None else str(pkg.epoch)),
                        ("package:release", pkg.release),
                        ("package:purl", "" if purl_refs else pkg.purl),
                        ("layer:index", str(pkg.layer_index) if pkg.layer_index >= 0 else ""),
                        ("layer:diff_id", pkg.layer_diff_id),
                        ("layer:created_by", pkg.layer_created_by),
                    ]
                ),
            )
        )
        self.relationships.append(Relationship(image_id, RelationshipType.CONTAINS, spdx_id))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:100] or "image"


def build_document(
    facts: ImageFacts, *, deterministic: bool = False, created: datetime | None = None
) -> Document:
    """The spdx-tools model of `facts` (for callers that want to validate or extend it)."""
    if deterministic:
        seed = "|".join(("hullscan", facts.reference, facts.manifest_digest, facts.config_digest))
        doc_uuid = uuid.uuid5(uuid.NAMESPACE_URL, seed)
        when = created or EPOCH
    else:
        doc_uuid = uuid.uuid4()
        when = created or datetime.now(UTC)
    when = when.replace(microsecond=0)
    builder = _Builder(facts, when)
    image_id = builder.image()
    if facts.os is not None:
        builder.operating_system(image_id, facts.os)
    for pkg in sorted_packages(facts):
        builder.package(image_id, pkg)
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id=DOCUMENT_ID,
        name=facts.reference or "image",
        document_namespace=f"https://spdx.org/spdxdocs/hullscan-{_slug(facts.reference)}-{doc_uuid}",
        creators=[builder.tool],
        created=when,
    )
    return Document(
        info,
        packages=builder.packages,
        relationships=builder.relationships,
        extracted_licensing_info=builder.refs.infos(),
    )


def render(facts: ImageFacts, *, deterministic: bool = False, created: datetime | None = None) -> str:
    """SPDX 2.3 JSON for `facts`.

    ``created`` defaults to now, or to the Unix epoch when `deterministic`; with `deterministic` the document
    namespace is derived from the image identity instead of a random uuid, so equal inputs give equal output.
    """
    document = build_document(facts, deterministic=deterministic, created=created)
    out = io.StringIO()
    # Validation is left to callers and tests (validate_full_spdx_document): it costs seconds on big images.
    write_document_to_stream(document, out, validate=False)
    return out.getvalue() + "\n"


def render_tag_value(facts: ImageFacts, *, deterministic: bool = False, created: datetime | None = None) -> str:
    """The same document as `render`, in SPDX's tag-value text form."""
    from spdx_tools.spdx.writer.tagvalue.tagvalue_writer import write_document_to_stream as write_tag_value

    document = build_document(facts, deterministic=deterministic, created=created)
    out = io.StringIO()
    write_tag_value(document, out, validate=False)
    return out.getvalue()
