"""Media types hullscan recognises (OCI image spec and Docker image manifest v2)."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
SCHEMA1 = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
IMAGE_CONFIGS = (OCI_CONFIG, DOCKER_CONFIG)

# What a registry client sends in Accept when fetching a manifest by tag.
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, *SCHEMA1))

# Config media types of well-known non-image artifacts, for a precise refusal message.
ARTIFACT_NAMES = {
    "application/vnd.cncf.helm.config.v1+json": "a Helm chart",
    "application/vnd.dev.cosign.simplesigning.v1+json": "a cosign signature",
    "application/vnd.cncf.notary.signature": "a Notary signature",
    "application/vnd.in-toto+json": "an in-toto attestation",
    "application/vnd.oci.empty.v1+json": "an OCI artifact with an empty config",
    "application/vnd.wasm.config.v1+json": "a WebAssembly module",
}


def layer_compression(media_type: str) -> str:
    """gzip, zstd or none, from a layer media type; unknown types are sniffed by the walker."""
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith("+gzip") or media_type in (DOCKER_LAYER, DOCKER_FOREIGN_LAYER):
        return "gzip"
    if media_type.endswith(".tar"):
        return "none"
    return "auto"
