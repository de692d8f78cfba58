"""Images for the service tests, built by code and pushed to the real registry through its API (blobs and a
manifest: cheaper than skopeo when a test needs hundreds).

The failure-catalogue images are the ones tests/oci and tests/e2e build for the CLI, uploaded whole: an index
without linux/amd64, a Windows image, a Helm chart, 127 layers, and a schema 1 manifest signed the way Docker's
libtrust signs it (the registry verifies the signature on upload)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from hullscan.imagebuild import FileSpec, Image, Layer, compress, layer_tar, sha256
from hullscan.oci import media
from tests.support.registry import RegistryServer

ALPINE = Layer(layer_tar([FileSpec("etc", type="d"), ("etc/alpine-release", "3.11.2\n"),
                          ("etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.11.2\n')]),
               "ADD alpine-minirootfs.tar.gz /")


def app_image(n: int, base: Layer = ALPINE) -> Image:
    """A distinct small image on a shared base layer: one file of its own on top."""
    return Image([base, Layer(layer_tar([FileSpec("srv", type="d"), (f"srv/app-{n}.txt", f"app {n}\n")]),
                              f"COPY app-{n}.txt /srv/")])


def openssl_image() -> Image:
    """Alpine 3.11 with libssl1.1 from openssl 1.1.1d-r2: ALPINE-CVE-2019-1551 (fixed in 1.1.1d-r3) applies."""
    installed = "\n".join(["C:Q1abcdefabcdefabcdefabcdefab=", "P:libssl1.1", "V:1.1.1d-r2", "A:x86_64",
                           "S:201234", "I:540672", "T:SSL shared libraries", "U:https://www.openssl.org",
                           "L:OpenSSL", "o:openssl", "m:Timo Teras <timo.teras@iki.fi>", "t:1576000000",
                           "c:0123456789abcdef0123456789abcdef01234567", "F:lib", "R:libssl.so.1.1"]) + "\n"
    return Image([ALPINE, Layer(layer_tar([FileSpec("lib", type="d"), FileSpec("lib/apk", type="d"),
                                           FileSpec("lib/apk/db", type="d"), ("lib/apk/db/installed", installed)]),
                                "RUN apk add libssl1.1")])


def lodash_image() -> Image:
    """lodash 4.17.11: GHSA-jf85-cpcp-j695 (CVE-2019-10744, CVSS 3.1 I:H/A:H, critical) in the test extract of real
    OSV data (tests/vulndb/data/osv/npm)."""
    pkg = json.dumps({"name": "lodash", "version": "4.17.11", "license": "MIT"})
    return Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
                                   ("srv/app/node_modules/lodash/package.json", pkg)]))])


def push(registry: RegistryServer, repo: str, tag: str, image: Image) -> str:
    """Upload the image's blobs and manifest; its manifest digest."""
    manifest, _, blobs = image.blobs()
    return registry.upload(repo, tag, manifest, media.OCI_MANIFEST, blobs)


def many_layers(count: int) -> Image:
    return Image([Layer(layer_tar([(f"layer-{i}", f"{i}\n")]), f"RUN step {i}") for i in range(count)])


def windows_image() -> Image:
    return Image([Layer(layer_tar([("Windows/System32/drivers/etc/hosts", "127.0.0.1 localhost\n")]))],
                 os="windows", config_extra={"os.version": "10.0.17763.1"})


def push_index(registry: RegistryServer, repo: str, tag: str, images: list[Image]) -> str:
    """An OCI index over `images` (each pushed by digest first)."""
    entries = []
    for image in images:
        manifest, _, blobs = image.blobs()
        digest = registry.upload(repo, sha256(manifest), manifest, media.OCI_MANIFEST, blobs)
        platform = {"os": image.os, "architecture": image.architecture, **({"variant": image.variant}
                                                                            if image.variant else {})}
        entries.append({"mediaType": media.OCI_MANIFEST, "digest": digest, "size": len(manifest),
                        "platform": platform})
    index = json.dumps({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": entries}).encode()
    return registry.upload(repo, tag, index, media.OCI_INDEX)


def push_helm_chart(registry: RegistryServer, repo: str, tag: str) -> str:
    config = b"{}"
    chart = gzip.compress(layer_tar([("mychart/Chart.yaml", "apiVersion: v2\nname: mychart\nversion: 0.1.0\n")]),
                          mtime=0)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": sha256(chart),
                    "size": len(chart)}],
    }).encode()
    return registry.upload(repo, tag, manifest, media.OCI_MANIFEST, {sha256(config): config, sha256(chart): chart})


# -- schema 1 -------------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _libtrust_key_id(key: ec.EllipticCurvePublicKey) -> str:
    """libtrust's key ID: the SHA-256 of the DER public key, 240 bits of it in base32, in groups of four."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def signed_schema1(repo: str, tag: str, layer: bytes) -> bytes:
    """A Docker image manifest v1 (application/vnd.docker.distribution.manifest.v1+prettyjws) with a JWS
    signature by a fresh P-256 key, as `docker push` made them before 2017."""
    v1 = json.dumps({"id": hashlib.sha256(layer).hexdigest(), "os": "linux", "architecture": "amd64",
                     "created": "2016-01-01T00:00:00Z"})
    doc: dict[str, Any] = {"schemaVersion": 1, "name": repo, "tag": tag, "architecture": "amd64",
                           "fsLayers": [{"blobSum": sha256(layer)}], "history": [{"v1Compatibility": v1}]}
    content = json.dumps(doc, indent=3).encode()
    cut = content.rindex(b"\n", 0, content.rindex(b"}"))  # the signatures go before the closing brace
    protected = _b64(json.dumps({"formatLength": cut, "formatTail": _b64(content[cut:]),
                                 "time": "2016-01-01T00:00:00Z"}).encode())
    key = ec.generate_private_key(ec.SECP256R1())
    r, s = utils.decode_dss_signature(key.sign(f"{protected}.{_b64(content)}".encode(), ec.ECDSA(hashes.SHA256())))
    numbers = key.public_key().public_numbers()
    jwk = {"crv": "P-256", "kid": _libtrust_key_id(key.public_key()), "kty": "EC",
           "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}
    signatures = [{"header": {"jwk": jwk, "alg": "ES256"}, "protected": protected,
                   "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}]
    signed = json.dumps(signatures, indent=3).replace("\n", "\n   ")
    return content[:cut] + f',\n   "signatures": {signed}'.encode() + content[cut:]


def push_schema1(registry: RegistryServer, repo: str, tag: str) -> str:
    layer = compress(layer_tar([("etc/hostname", "old\n")]), "gzip")
    return registry.upload(repo, tag, signed_schema1(repo, tag, layer), media.DOCKER_SCHEMA1_SIGNED,
                           {sha256(layer): layer})
