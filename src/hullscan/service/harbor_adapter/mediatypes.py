"""The MIME types of the Harbor Scanner Adapter API v1.2, and content negotiation by `Accept`.

The spec names its types with a `version` parameter and matches them as whole strings, so answers carry the
spec's exact spelling (`...; version=1.1`); requests are read leniently (case, spaces, quotes, q-values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONSUMES = (OCI_MANIFEST, DOCKER_MANIFEST)

METADATA_V11 = "application/vnd.scanner.adapter.metadata+json; version=1.1"
METADATA_V10 = "application/vnd.scanner.adapter.metadata+json; version=1.0"
SCAN_REQUEST = "application/vnd.scanner.adapter.scan.request+json"  # versions 1.0 and 1.1 read alike
SCAN_RESPONSE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
ERROR = "application/vnd.scanner.adapter.error+json; version=1.0"

HARBOR_REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
VULN_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
RAW_REPORT = "application/vnd.scanner.adapter.vuln.report.raw"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
VULNERABILITY_REPORTS = (HARBOR_REPORT, VULN_REPORT, RAW_REPORT)
REPORTS = (*VULNERABILITY_REPORTS, SBOM_REPORT)

SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
SBOM_FORMATS = {SPDX: "spdx-json", CYCLONEDX: "cyclonedx"}  # the sbom_media_type -> hullscan's renderer


@dataclass(frozen=True)
class MediaType:
    essence: str  # type/subtype, lower case
    params: dict[str, str] = field(default_factory=dict)  # names lower case, values unquoted
    q: float = 1.0

    @classmethod
    def parse(cls, text: str) -> MediaType:
        essence, *rest = text.split(";")
        params: dict[str, str] = {}
        q = 1.0
        for part in rest:
            name, eq, value = part.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if not eq or not name:
                continue
            if name == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
            else:
                params[name] = value
        return cls(essence.strip().lower(), params, q)

    def covers(self, offer: MediaType) -> bool:
        """This range (from an Accept header) admits the offer: same essence or a wildcard, and every parameter
        it names has the offer's value."""
        kind, _, sub = self.essence.partition("/")
        offer_kind, _, offer_sub = offer.essence.partition("/")
        if kind != "*" and (kind != offer_kind or (sub != "*" and sub != offer_sub)):
            return False
        return all(offer.params.get(k) == v for k, v in self.params.items())

    @property
    def wildcard(self) -> bool:
        return "*" in self.essence


def same(a: str, b: str) -> bool:
    """Two spellings of one media type (parameter order, case and spaces aside)."""
    x, y = MediaType.parse(a), MediaType.parse(b)
    return x.essence == y.essence and x.params == y.params


def essence(text: str) -> str:
    return MediaType.parse(text).essence


def negotiate(accept: str | None, offers: tuple[str, ...], default: str) -> str | None:
    """The offer the Accept header prefers: `default` for no header or a wildcard, None when nothing fits.
    Ranges are tried in order of q-value (then as written); a range that fits several offers takes the
    earliest in `offers`."""
    if accept is None or not accept.strip():
        return default
    ranges = [MediaType.parse(part) for part in accept.split(",") if part.strip()]
    parsed = [(offer, MediaType.parse(offer)) for offer in offers]
    for wanted in sorted((r for r in ranges if r.q > 0), key=lambda r: -r.q):
        if wanted.wildcard and wanted.covers(MediaType.parse(default)):
            return default
        for offer, media in parsed:
            if wanted.covers(media):
                return offer
    return None
