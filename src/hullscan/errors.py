"""The failure catalogue: every error hullscan raises has a stable code, a message and a solution.

CLI, API and console all render these the same way, so a user sees one vocabulary of causes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    code: str
    title: str
    solution: str
    exit_code: int = 3


CATALOGUE: dict[str, Cause] = {
    c.code: c
    for c in [
        Cause("INVALID_REFERENCE", "The image reference is not valid",
              "Write it as [registry[:port]/]path/name[:tag][@sha256:digest]."),
        Cause("REGISTRY_UNREACHABLE", "The registry could not be reached",
              "Check the registry address, the network and, for plain HTTP, pass --insecure."),
        Cause("REGISTRY_ERROR", "The registry answered with an error",
              "Check the registry's health; retry later if it was overloaded."),
        Cause("AUTH_FAILED", "The registry refused the credentials",
              "Check the username and password or token (flags, environment or Docker config.json)."),
        Cause("AUTH_REQUIRED", "The registry requires credentials and none were given",
              "Set a username and password (or token) for the registry: flags, environment or Docker config.json on "
              "the command line; the registry's settings in the service."),
        Cause("NOT_FOUND", "The image or one of its parts does not exist",
              "Check the repository name and tag, and that the image was pushed."),
        Cause("TLS_ERROR", "The registry's TLS certificate could not be verified",
              "Pass --ca-cert with the registry's CA, or --insecure for a registry you trust."),
        Cause("MANIFEST_INVALID", "The image manifest is malformed",
              "Re-push the image with a standard client (docker, skopeo, buildah)."),
        Cause("SCHEMA_V1", "schema v1 images cannot be scanned",
              "Upgrade the image to schema v2 (for example: skopeo copy --format v2s2)."),
        Cause("PLATFORM_REQUIRED", "The image is a multi-architecture index",
              "Choose one of its platforms with --platform os/arch[/variant]."),
        Cause("UNSUPPORTED_PLATFORM", "Only Linux images can be scanned",
              "Scan the Linux variant of the image (--platform linux/amd64)."),
        Cause("NOT_AN_IMAGE", "The artifact is not a container image",
              "Scan a container image; Helm charts, signatures and other artifacts are not images."),
        Cause("TOO_MANY_LAYERS", "The image has too many layers",
              "Images must have fewer than 127 layers; squash some layers."),
        Cause("IMAGE_TOO_LARGE", "The image is larger than the size limit",
              "Images may total at most 50 GB; slim the image or raise --max-image-size."),
        Cause("LAYER_TOO_LARGE", "A layer is larger than the size limit",
              "A layer may hold at most 10 GB; split the layer or raise --max-layer-size."),
        Cause("DIGEST_MISMATCH", "Downloaded content does not match its digest",
              "The registry or a proxy served corrupted content; check storage integrity and retry."),
        Cause("LAYER_INVALID", "A layer could not be read",
              "The layer is corrupt, truncated or hostile; rebuild and re-push the image."),
        Cause("SOURCE_INVALID", "The image source could not be read",
              "Check the path: a docker-archive tar, an OCI layout (directory or tar) or a root filesystem."),
        Cause("CACHE_ERROR", "The layer cache could not be used",
              "Run 'hullscan cache clean' or pass --no-cache."),
        Cause("CREDENTIAL_HELPER", "A Docker credential helper failed",
              "Check that the docker-credential-* program named in config.json is installed and logged in."),
        Cause("NO_DATABASE", "No vulnerability database",
              "Run `hullscan db update` (online) or `hullscan db import PATH` (offline), "
              "or pull one with `hullscan db pull REF`."),
        Cause("DB_INVALID", "The vulnerability database cannot be used",
              "Rebuild it with `hullscan db update` or `hullscan db import PATH`, or pull one made by this "
              "hullscan version with `hullscan db pull REF`."),
        Cause("DB_DOWNLOAD_FAILED", "The vulnerability data could not be downloaded",
              "Check the network and --base-url and retry; offline, use `hullscan db import PATH` or "
              "`hullscan db pull REF`. The existing database was left unchanged."),
        Cause("DB_IMPORT_FAILED", "The vulnerability data could not be read",
              "Give an OSV all.zip, a directory of OSV JSON files (or of all.zip files) or one OSV JSON file; "
              "for enrichment, CVE JSON 5 records (a directory or zip), NVD 2.0 JSON or an EPSS CSV."),
        Cause("VEX_INVALID", "A VEX document could not be used",
              "Give an OpenVEX document (https://openvex.dev) or a CycloneDX BOM with vulnerabilities[].analysis; "
              "check the file is complete JSON.", exit_code=2),
        Cause("INVALID_OPTION", "A scan option, or a file it names, cannot be used",
              "Correct the option or the file named in the message.", exit_code=2),
        # The service's own causes (API, jobs); the CLI never meets them.
        Cause("UNAUTHORIZED", "Authentication is required",
              "Send HTTP Basic credentials of a user, 'Authorization: Bearer <API token>', or log in to the console."),
        Cause("LOGIN_THROTTLED", "Too many failed log-ins",
              "Wait the seconds the Retry-After header (or the message) gives, then log in with the right password; "
              "an administrator can set a new one meanwhile (PUT /api/v1/users/{id})."),
        Cause("FORBIDDEN", "Your role does not allow this",
              "Ask an administrator, or a maintainer of the namespace, for the role this needs."),
        Cause("INVALID_REQUEST", "The request is not valid",
              "Correct the fields named in the message; the OpenAPI document at /openapi.json describes each one."),
        Cause("CONFLICT", "That already exists or conflicts with the current state",
              "Use the existing object, or change the one in the way."),
        Cause("RESOURCE_NOT_FOUND", "No such object",
              "Check the id or name; list the collection to see what exists."),
        Cause("IMAGE_NOT_FOUND", "The image is not known to hullscan",
              "Synchronise the registry's images (POST /api/v1/registries/{id}/sync), then check the repository and "
              "tag."),
        Cause("IMAGE_UNTAGGED", "Untagged images are not scanned on request",
              "Tag the image in the registry (or scan it by its tag), then start the scan again."),
        Cause("NAMESPACE_UNKNOWN", "The namespace does not exist yet",
              "Synchronise the registry first: namespaces appear with their first image, and only then take settings."),
        Cause("WORKER_LOST", "The process running the scan stopped before it finished",
              "The scan was retried and the worker died each time; check the workers' logs and memory limits, then "
              "scan again."),
        Cause("UNSUPPORTED_MEDIA_TYPE", "hullscan does not read or produce that media type",
              "Ask for one of the media types the scanner adapter's metadata lists (GET /api/v1/metadata)."),
        Cause("INTERNAL_ERROR", "hullscan failed unexpectedly",
              "This is a bug: report it with the service log around the scan; scanning again may work."),
        Cause("STOPPED", "The scan was stopped",
              "Someone asked for the scan to stop; start it again when wanted."),
        Cause("TIMEOUT", "The scan took longer than its time limit",
              "Slim the image (fewer and smaller layers, no build tools or caches in the final image), or raise "
              "the limit (--timeout, or scan_timeout in the settings)."),
    ]
}


class HullscanError(Exception):
    """An error with a catalogue cause; `detail` says what exactly happened."""

    code = "SOURCE_INVALID"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail

    @property
    def cause(self) -> Cause:
        return CATALOGUE[self.code]

    def render(self) -> str:
        c = self.cause
        return f"{c.title}: {self.detail}\n  [{c.code}] {c.solution}"


class InvalidReference(HullscanError):
    code = "INVALID_REFERENCE"


class RegistryError(HullscanError):
    code = "REGISTRY_ERROR"


class AuthError(HullscanError):
    code = "AUTH_FAILED"


class NotFoundError(HullscanError):
    code = "NOT_FOUND"


class ManifestError(HullscanError):
    code = "MANIFEST_INVALID"


class UnsupportedImageError(HullscanError):
    """Schema v1, non-Linux, multi-arch without a platform, non-image artifacts."""


class LimitExceeded(HullscanError):
    pass


class DigestMismatch(HullscanError):
    code = "DIGEST_MISMATCH"


class LayerError(HullscanError):
    code = "LAYER_INVALID"


class SourceError(HullscanError):
    code = "SOURCE_INVALID"


class OptionError(HullscanError):
    code = "INVALID_OPTION"


class ScanStopped(HullscanError):
    code = "STOPPED"


class ScanTimedOut(HullscanError):
    code = "TIMEOUT"


class DatabaseError(HullscanError):
    """The vulnerability database is missing, unreadable or of another schema; or its data could not be fetched."""

    code = "DB_INVALID"
