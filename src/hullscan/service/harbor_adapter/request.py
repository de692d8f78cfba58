"""A Harbor scan request, read and checked: what to pull, from where, with which credentials, for which reports.

The spec's statuses decide how a bad request is answered: 400 for a body that is not JSON or has values of the
wrong JSON type, 422 for a field whose value cannot be used (a registry URL, a repository name, a digest, the
credentials), 501 for an artifact or report type hullscan does not handle. Fields the spec does not name (Harbor
sends `namespace_id` and `size` in some versions) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from hullscan import safejson
from hullscan.errors import HullscanError
from hullscan.oci.credentials import from_authorization
from hullscan.oci.reference import parse_reference, split_host_port
from hullscan.safejson import DocumentError
from hullscan.service.harbor_adapter import mediatypes as mt
from hullscan.service.harbor_adapter.errors import bad_request, invalid_field, not_capable

PRODUCES = {"vulnerability": mt.VULNERABILITY_REPORTS, "sbom": (mt.SBOM_REPORT,)}


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegistryIn(_In):
    url: str = ""
    authorization: str = ""


class ArtifactIn(_In):
    repository: str = ""
    digest: str = ""
    tag: str = ""
    mime_type: str = ""


class SbomParametersIn(_In):
    sbom_media_types: list[Literal["application/spdx+json", "application/vnd.cyclonedx+json"]] | None = None


class CapabilityIn(_In):
    type: Literal["vulnerability", "sbom"]
    produces_mime_types: list[str] | None = None
    parameters: SbomParametersIn | None = None


class ScanRequestIn(_In):
    registry: RegistryIn
    artifact: ArtifactIn
    enabled_capabilities: list[CapabilityIn] | None = None


@dataclass(frozen=True)
class Registry:
    url: str  # scheme://host[:port], normalised: how the adapter's registry record is found again
    host: str  # host[:port] as image references name it
    insecure: bool  # plain HTTP was asked for


@dataclass(frozen=True)
class ScanTarget:
    registry: Registry
    repository: str
    digest: str
    tag: str | None
    mime_type: str | None
    authorization: str | None  # the Authorization value to pull with (checked, never logged)
    capabilities: tuple[str, ...]  # vulnerability, sbom

    @property
    def namespace(self) -> str:
        return self.repository.split("/", 1)[0]


def content_type_ok(content_type: str | None) -> bool:
    """The spec's scan request type (either version), or plain JSON; a missing header is read as JSON too."""
    if not content_type:
        return True
    return mt.essence(content_type) in (mt.SCAN_REQUEST, "application/json")


def parse(body: bytes) -> ScanTarget:
    try:
        doc = safejson.loads(body, what="the scan request")
    except DocumentError as exc:
        raise bad_request(str(exc)) from None
    try:
        request = ScanRequestIn.model_validate(doc)
    except ValidationError as exc:
        problems = exc.errors()
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems[:10])
        # A value of the wrong JSON type is the spec's 400; a missing or out-of-range field its 422.
        if any(e["type"].endswith("_type") for e in problems):
            raise bad_request(text) from None
        raise invalid_field(text) from None
    return _check(request)


def _check(request: ScanRequestIn) -> ScanTarget:
    registry = registry_of(request.registry.url)
    artifact = request.artifact
    if not artifact.repository:
        raise invalid_field("artifact.repository is required")
    if not artifact.digest:
        raise invalid_field("artifact.digest is required: hullscan scans exactly the manifest Harbor names")
    tag = artifact.tag or None
    written = f"{registry.host}/{artifact.repository}{':' + tag if tag else ''}@{artifact.digest}"
    try:
        ref = parse_reference(written)
    except HullscanError as exc:
        raise invalid_field(f"artifact: {exc.detail}") from None
    if ref.registry != registry.host or ref.repository != artifact.repository:
        raise invalid_field(f"artifact.repository {artifact.repository!r} is not a repository name")
    if artifact.mime_type and not any(mt.same(artifact.mime_type, m) for m in mt.CONSUMES):
        raise not_capable(f"artifact.mime_type {artifact.mime_type!r} is not scanned; hullscan reads "
                          f"{' and '.join(mt.CONSUMES)}")
    authorization = request.registry.authorization.strip() or None
    if authorization is not None:
        try:
            from_authorization(authorization, "the scan request")
        except HullscanError as exc:
            raise invalid_field(f"registry.authorization: {exc.detail}") from None
    return ScanTarget(registry, artifact.repository, artifact.digest, tag, artifact.mime_type or None,
                      authorization, _capabilities(request.enabled_capabilities))


def registry_of(url: str) -> Registry:
    """The registry a request names: `scheme://host[:port]` (https when no scheme is written), nothing after it."""
    text = url.strip()
    if not text:
        raise invalid_field("registry.url is required")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = parts.port
    except ValueError:
        raise invalid_field(f"invalid registry.url {url!r}: the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise invalid_field(f"invalid registry.url {url!r}: write it as http[s]://host[:port]")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise invalid_field(f"invalid registry.url {url!r}: the registry API lives at the host's root; "
                            "leave out any path")
    host = parts.netloc.lower()
    name, _ = split_host_port(host)
    if port is None and "." not in name and ":" not in name and name != "localhost":
        # A bare name (a Kubernetes service, `harbor-core`) would read as a Docker Hub path in an image
        # reference; its scheme's port makes it a host.
        host = f"{host}:{80 if parts.scheme == 'http' else 443}"
    return Registry(f"{parts.scheme}://{host}", host, parts.scheme == "http")


def _capabilities(enabled: list[CapabilityIn] | None) -> tuple[str, ...]:
    """Which capabilities the request enables (all of them when it does not say), checked against what
    hullscan produces."""
    if enabled is None:
        return tuple(PRODUCES)
    if not enabled:
        raise invalid_field("enabled_capabilities is empty: enable vulnerability, sbom or both")
    for capability in enabled:
        offered = PRODUCES[capability.type]
        for wanted in capability.produces_mime_types or ():
            if not any(mt.same(wanted, m) for m in offered):
                raise not_capable(f"the {capability.type} capability does not produce {wanted!r}; it produces "
                                  f"{', '.join(offered)}")
    return tuple(dict.fromkeys(c.type for c in enabled))
