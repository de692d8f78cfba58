"""The registry client and RegistrySource against real distribution 2.8 registries (and a fault proxy)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import ssl
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard

from hullscan.errors import (
    AuthError,
    DigestMismatch,
    HullscanError,
    LimitExceeded,
    NotFoundError,
    RegistryError,
    UnsupportedImageError,
)
from hullscan.imagebuild import Image, Layer, layer_tar, sha256
from hullscan.model import Platform
from hullscan.oci import media
from hullscan.oci.credentials import Credentials
from hullscan.oci.reference import parse_reference
from hullscan.oci.registry import (
    RegistryClient,
    RetryPolicy,
    parse_retry_after,
    parse_www_authenticate,
    tls_context,
)
from hullscan.oci.registry_source import RegistrySource
from hullscan.oci.source import Limits, ResolvedImage
from tests.support.proxy import FaultProxy
from tests.support.registry import FAST_RETRY, PASSWORD, USER, RegistryServer, free_port

ProxyFactory = Callable[..., FaultProxy]


def image(name: str = "app", *, layers: int = 1, compression: str = "gzip", arch: str = "amd64",
          variant: str = "", size: int = 0) -> Image:
    out = []
    for i in range(layers):
        files: list[tuple[str, bytes | str]] = [(f"etc/{name}-{arch}-{i}", f"{name} {arch} layer {i}\n")]
        if size:
            noise = b"".join(hashlib.sha256(f"{name}{arch}{i}{j}".encode()).digest() for j in range(size // 32))
            files.append((f"data/{name}-{i}.bin", noise))
        out.append(Layer(layer_tar(files), compression=compression))
    if not out:
        raise ValueError("at least one layer")
    return Image(out, architecture=arch, variant=variant)


def source(server_or_host: RegistryServer | str, repo_tag: str, *, creds: Credentials | None | bool = True,
           limits: Limits | None = None, sleeps: list[float] | None = None, **kw: Any) -> RegistrySource:
    """A RegistrySource; creds=True means the server fixture's own credentials (none for a bare host)."""
    host = server_or_host.host if isinstance(server_or_host, RegistryServer) else server_or_host
    if creds is True:
        creds = server_or_host.credentials if isinstance(server_or_host, RegistryServer) else None
    elif creds is False:
        creds = None
    client = RegistryClient(host, creds, retry=FAST_RETRY, sleep=(sleeps.append if sleeps is not None else
                                                                  lambda _s: None), **kw)
    return RegistrySource(parse_reference(f"{host}/{repo_tag}"), client, limits, owns_client=True)


def read_layer(src: RegistrySource, resolved: ResolvedImage, index: int = 0) -> bytes:
    reader = src.open_layer(resolved.layers[index])
    chunks = []
    while chunk := reader.read(4096):
        chunks.append(chunk)
    reader.close()
    return b"".join(chunks)


def tar_names(blob: bytes, compression: str = "gzip") -> list[str]:
    if compression == "gzip":
        data = gzip.decompress(blob)
    else:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """One two-layer image at test/app:1 on the open registry, shared by the fault tests."""
    img = image("shared", layers=2, size=4096)
    registry.push_images(img, "test/app:1", tmp_path_factory.mktemp("pushed"))
    return img


# -- ping, anonymous, basic ---------------------------------------------------------------------------


def test_ping(registry: RegistryServer, basic_registry: RegistryServer, token_registry: RegistryServer) -> None:
    with registry.client() as c:
        assert c.ping() == "none"
    with basic_registry.client() as c:
        assert c.ping() == "basic"
    with basic_registry.client(credentials=None) as c:
        assert c.ping() == "basic"
    with token_registry.client() as c:
        assert c.ping() == "bearer"
    with token_registry.client(credentials=Credentials(USER, "wrong", source="test")) as c, \
            pytest.raises(AuthError) as info:
        c.ping()
    assert token_registry.host in str(info.value) and "wrong" not in str(info.value)


def test_anonymous_pull(registry: RegistryServer, tmp_path: Path) -> None:
    img = image("anon", layers=2)
    registry.push_images(img, "anon/app:v1", tmp_path)
    seen: list[int] = []
    with source(registry, "anon/app:v1") as src:
        src.on_bytes = seen.append
        resolved = src.resolve(None)
        assert resolved.manifest_media_type == media.OCI_MANIFEST
        assert resolved.platform == Platform("linux", "amd64", "")
        assert resolved.reference == f"{registry.host}/anon/app:v1"
        manifest, _config, _blobs = img.blobs()
        assert resolved.manifest_digest == sha256(manifest)
        assert [layer.diff_id for layer in resolved.layers] == img.config()["rootfs"]["diff_ids"]
        blob = read_layer(src, resolved, 1)
        assert blob == img.layers[1].blob
        assert tar_names(blob) == ["etc/anon-amd64-1"]
        assert sum(seen) == len(blob)
    # The same image by digest.
    with source(registry, f"anon/app@{resolved.manifest_digest}") as src:
        assert src.resolve(None).manifest_digest == resolved.manifest_digest


def test_basic_auth(basic_registry: RegistryServer, tmp_path: Path) -> None:
    basic_registry.push_images(image("basic"), "private/app:1", tmp_path)
    with source(basic_registry, "private/app:1") as src:
        resolved = src.resolve(None)
        assert read_layer(src, resolved) == image("basic").layers[0].blob

    bad = Credentials(USER, "not-the-password", source="command-line flags")
    with source(basic_registry, "private/app:1", creds=bad) as src, pytest.raises(AuthError) as info:
        src.resolve(None)
    msg = str(info.value)
    assert info.value.code == "AUTH_FAILED"
    assert basic_registry.host in msg and "credentials were given" in msg and USER in msg
    assert "not-the-password" not in msg and "command-line flags" in msg

    with source(basic_registry, "private/app:1", creds=None) as src, \
            pytest.raises(AuthError, match="no credentials were given"):
        src.resolve(None)

    with basic_registry.client(credentials=bad) as c, pytest.raises(AuthError):
        c.ping()


def test_registry_source_open(basic_registry: RegistryServer, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    basic_registry.push_images(image("opened"), "opened/app:1", tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nodocker"))
    with RegistrySource.open(basic_registry.ref("opened/app:1"), username=USER, password=PASSWORD) as src:
        assert src.resolve(None).platform.architecture == "amd64"
    monkeypatch.setenv("HULLSCAN_USERNAME", USER)
    monkeypatch.setenv("HULLSCAN_PASSWORD", PASSWORD)
    with RegistrySource.open(basic_registry.ref("opened/app:1")) as src:
        assert len(src.resolve(None).layers) == 1


# -- bearer tokens ------------------------------------------------------------------------------------


def test_bearer_tokens_cached_per_scope(token_registry: RegistryServer, tmp_path: Path) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(image("tok-a"), "team/a:1", tmp_path)
    token_registry.push_images(image("tok-b"), "team/b:1", tmp_path)
    issuer.reset()
    with token_registry.client() as client:
        for _ in range(2):
            src = RegistrySource(parse_reference(token_registry.ref("team/a:1")), client)
            resolved = src.resolve(None)
            read_layer(src, resolved)
        assert issuer.count("repository:team/a:pull") == 1
        src = RegistrySource(parse_reference(token_registry.ref("team/b:1")), client)
        read_layer(src, src.resolve(None))
        assert issuer.count("repository:team/b:pull") == 1
        assert "team/a" in client.catalog() and client.list_tags("team/a") == ["1"]
        assert issuer.count("registry:catalog:*") == 1
        assert issuer.count() == 3 and client.token_requests == 3
        assert all(r.user == USER for r in issuer.requests)


def test_bearer_denied(token_registry: RegistryServer, tmp_path: Path) -> None:
    token_registry.push_images(image("deny"), "team/deny:1", tmp_path)
    with source(token_registry, "team/deny:1", creds=None) as src, pytest.raises(AuthError) as info:
        src.resolve(None)
    assert "no credentials were given" in str(info.value) and token_registry.host in str(info.value)
    wrong = Credentials(USER, "bad-password", source="environment (HULLSCAN_USERNAME)")
    with source(token_registry, "team/deny:1", creds=wrong) as src, pytest.raises(AuthError) as info:
        src.resolve(None)
    msg = str(info.value)
    assert "token service" in msg and "credentials were given" in msg and "bad-password" not in msg


def test_bearer_anonymous_pull_of_public_repo(token_registry: RegistryServer, tmp_path: Path) -> None:
    assert token_registry.issuer is not None
    token_registry.push_images(image("public"), "pub/app:1", tmp_path)
    token_registry.issuer.anonymous_pull.add("pub/app")
    with token_registry.client(credentials=None) as c:
        assert c.get_manifest("pub/app", "1").media_type == media.OCI_MANIFEST


def test_bearer_refresh_on_401(token_registry: RegistryServer, tmp_path: Path, fault_proxy: ProxyFactory) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(image("refresh"), "team/refresh:1", tmp_path)
    proxy = fault_proxy(token_registry)
    with RegistryClient(proxy.host, token_registry.credentials, retry=FAST_RETRY) as c:
        c.get_manifest("team/refresh", "1")
        before = issuer.count("repository:team/refresh:pull")
        # The registry rejects the next request (as if the token had been revoked): fetch a new one, retry.
        proxy.strip_auth(r"/manifests/", times=1)
        c.get_manifest("team/refresh", "1")
        assert issuer.count("repository:team/refresh:pull") == before + 1
        assert [r.status for r in proxy.matching(r"/manifests/")][-2:] == [401, 200]


def test_bearer_expires_in(token_registry: RegistryServer, tmp_path: Path) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(image("expiry"), "team/expiry:1", tmp_path)
    now = [1000.0]
    old = issuer.expires_in
    issuer.expires_in = 120
    try:
        with token_registry.client(clock=lambda: now[0]) as c:
            c.get_manifest("team/expiry", "1")
            n = issuer.count("repository:team/expiry:pull")
            now[0] += 60
            c.get_manifest("team/expiry", "1")
            assert issuer.count("repository:team/expiry:pull") == n  # still valid
            now[0] += 55  # 115s: within the renewal margin of a 120s token
            c.get_manifest("team/expiry", "1")
            assert issuer.count("repository:team/expiry:pull") == n + 1
    finally:
        issuer.expires_in = old


def test_identity_token(token_registry: RegistryServer, tmp_path: Path) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(image("ident"), "team/ident:1", tmp_path)
    issuer.identity_tokens["refresh-token-123"] = USER
    creds = Credentials(identity_token="refresh-token-123", source="Docker config")
    with token_registry.client(credentials=creds) as c:
        c.get_manifest("team/ident", "1")
    assert issuer.requests[-1].method == "POST" and issuer.requests[-1].user == USER


# -- retries ------------------------------------------------------------------------------------------


def test_retry_after_429(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.rate_limit(r"/manifests/", retry_after="1", times=1)
    proxy.rate_limit(r"/blobs/", retry_after="2", times=1)  # at the cap (max_retry_after is 2s here)
    sleeps: list[float] = []
    waits: list[str] = []
    with source(proxy.host, "test/app:1", sleeps=sleeps, on_wait=waits.append) as src:
        resolved = src.resolve(None)
        read_layer(src, resolved)
    assert sleeps == [1.0, 2.0]
    assert proxy.count(r"/manifests/1$") == 2
    # What the scan's progress display is told while it waits.
    assert waits == [f"waiting {s} s for registry {proxy.host} (HTTP 429 Too Many Requests, attempt 2/5)"
                     for s in ("1", "2")]


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_503_then_give_up(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.unavailable(r"/manifests/", times=3)
    sleeps: list[float] = []
    with source(proxy.host, "test/app:1", sleeps=sleeps) as src:
        src.resolve(None)
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # exponential backoff

    proxy.unavailable(r"/manifests/", times=10, status=502)
    with source(proxy.host, "test/app:1") as src, pytest.raises(RegistryError) as info:
        src.resolve(None)
    assert info.value.code == "REGISTRY_ERROR" and "502" in str(info.value) and "5 attempts" in str(info.value)
    assert "UNAVAILABLE" in str(info.value)


def test_connection_resets(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.reset(r"/manifests/", times=2)
    with source(proxy.host, "test/app:1") as src:
        resolved = src.resolve(None)
        # A layer download dropped mid-body resumes with a Range request.
        digest = resolved.layers[0].descriptor.digest
        assert len(pushed.layers[0].blob) > 2000
        proxy.reset(rf"/blobs/{digest}", after_bytes=1000, times=1)
        assert read_layer(src, resolved, 0) == pushed.layers[0].blob
    ranged = [r for r in proxy.matching(rf"/blobs/{digest}") if "range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers["range"] == "bytes=1000-"


def test_blob_reads_are_whole_like_a_file_even_across_a_resumed_connection(
        registry: RegistryServer, fault_proxy: ProxyFactory) -> None:
    # The network hands over 64 KiB at a time; a read asks for more and gets all of it (the layer reader
    # inflates what each read returns, so small pieces cost four times the hand-offs), up to the end of the blob.
    blob = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(40_000))  # 1.28 MB
    with registry.client() as c:
        digest = c.put_blob("raw/big", blob)
    proxy = fault_proxy(registry)
    proxy.reset(rf"/blobs/{digest}", after_bytes=300_000, times=1)
    with RegistryClient(proxy.host, None, retry=FAST_RETRY, sleep=lambda _s: None) as c:
        stream = c.get_blob("raw/big", digest)
        pieces = []
        while piece := stream.read(256 << 10):
            pieces.append(piece)
    assert b"".join(pieces) == blob
    assert [len(p) for p in pieces[:-1]] == [256 << 10] * (len(blob) // (256 << 10))
    ranged = [r for r in proxy.matching(rf"/blobs/{digest}") if "range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers["range"] == "bytes=300000-"


def test_connection_refused() -> None:
    sleeps: list[float] = []
    port = free_port()
    with RegistryClient(f"127.0.0.1:{port}", retry=FAST_RETRY, sleep=sleeps.append) as c, \
            pytest.raises(RegistryError) as info:
        c.get_manifest("x", "latest")
    assert info.value.code == "REGISTRY_UNREACHABLE" and f"127.0.0.1:{port}" in str(info.value)
    assert len(sleeps) == FAST_RETRY.connect_attempts - 1


# -- TLS ----------------------------------------------------------------------------------------------


def test_tls(tls_registry: RegistryServer) -> None:
    with tls_registry.client() as c:
        assert c.base_url.startswith("https://") and c.ping() == "none"
    with RegistryClient(tls_registry.host, scheme="https", retry=FAST_RETRY) as c, \
            pytest.raises(RegistryError) as info:
        c.ping()
    assert info.value.code == "TLS_ERROR" and "--ca-cert" in str(info.value)
    with RegistryClient(tls_registry.host, scheme="https", insecure=True, retry=FAST_RETRY) as c:
        assert c.ping() == "none"
    with pytest.raises(RegistryError) as info:
        RegistryClient(tls_registry.host, ca_cert="/nonexistent/ca.pem")
    assert info.value.code == "TLS_ERROR"


def test_a_replaced_ca_file_is_read_again_by_the_same_process(tls_registry: RegistryServer, tmp_path: Path) -> None:
    """TLS contexts are kept per CA file; a file rewritten in place (a rotated CA, a long-running service) is loaded
    again, not served from what was kept."""
    from tests.support.tokenissuer import self_signed, write_pem

    assert tls_registry.ca_cert is not None
    key, cert = self_signed("some other certificate authority")
    _, other = write_pem(key, cert, tmp_path / "other", "ca")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(other.read_bytes())
    with RegistryClient(tls_registry.host, scheme="https", ca_cert=ca, retry=FAST_RETRY) as c, \
            pytest.raises(RegistryError) as info:
        c.ping()
    assert info.value.code == "TLS_ERROR"
    ca.write_bytes(tls_registry.ca_cert.read_bytes())  # the registry's own CA, at the same path
    with RegistryClient(tls_registry.host, scheme="https", ca_cert=ca, retry=FAST_RETRY) as c:
        assert c.ping() == "none"


def test_trust_roots_are_loaded_by_the_first_tls_connection(tls_registry: RegistryServer, registry: RegistryServer,
                                                             tmp_path: Path) -> None:
    """certifi's roots cost a cold scan 15-25 ms: a registry spoken to over plain HTTP never loads them, and the
    first HTTPS connection loads them all, beside the CA file given."""
    import certifi

    assert tls_registry.ca_cert is not None
    ca = tmp_path / "ca.pem"  # a CA file of its own: a context this test alone uses
    ca.write_bytes(tls_registry.ca_cert.read_bytes())
    ctx = tls_context(ca)
    assert ctx.cert_store_stats()["x509_ca"] == 1
    with RegistryClient(registry.host, ca_cert=ca, retry=FAST_RETRY) as c:
        assert c.base_url.startswith("http://") and c.ping() == "none"
    assert ctx.cert_store_stats()["x509_ca"] == 1
    roots = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    with RegistryClient(tls_registry.host, scheme="https", ca_cert=ca, retry=FAST_RETRY) as c:
        assert c.ping() == "none"
    assert roots > 100 and ctx.cert_store_stats()["x509_ca"] == roots + 1
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_plain_http_to_tls_port_is_a_tls_error(tls_registry: RegistryServer, registry: RegistryServer) -> None:
    # HTTPS to a plain-HTTP server fails the handshake: a TLS error, not a retry loop.
    with RegistryClient(registry.host, scheme="https", retry=FAST_RETRY) as c, pytest.raises(RegistryError) as info:
        c.ping()
    assert info.value.code == "TLS_ERROR"


def test_insecure_falls_back_to_http_without_network() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number",
                                     request=request) from ssl.SSLError("wrong version number")
        return httpx.Response(200, json={}, request=request)

    with RegistryClient("registry.example.com:5000", insecure=True, transport=httpx.MockTransport(handler),
                        retry=FAST_RETRY) as c:
        assert c.ping() == "none"
        assert c.base_url == "http://registry.example.com:5000"
    assert seen == ["https://registry.example.com:5000/v2/", "http://registry.example.com:5000/v2/"]
    # Without insecure, a non-loopback registry is HTTPS only.
    with RegistryClient("registry.example.com:5000", transport=httpx.MockTransport(handler),
                        retry=FAST_RETRY) as c, pytest.raises(RegistryError) as info:
        c.ping()
    assert info.value.code == "TLS_ERROR"


def test_no_credentials_to_plain_http_realm_without_network() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "registry.example.com":
            return httpx.Response(401, request=request, headers={
                "WWW-Authenticate": 'Bearer realm="http://auth.example.com/token",service="reg"'})
        raise AssertionError("the token service must not be contacted")

    creds = Credentials("u", "secret-pw", source="test")
    with RegistryClient("registry.example.com", creds, transport=httpx.MockTransport(handler),
                        retry=FAST_RETRY) as c, pytest.raises(AuthError, match="plain HTTP"):
        c.get_manifest("a/b", "1")


# -- integrity ----------------------------------------------------------------------------------------


def test_digest_mismatch(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    manifest, config, _ = pushed.blobs()
    proxy = fault_proxy(registry)
    layer_digest = sha256(pushed.layers[0].blob)
    proxy.replace_body(rf"/blobs/{layer_digest}", b"x" * len(pushed.layers[0].blob))
    with source(proxy.host, "test/app:1") as src:
        resolved = src.resolve(None)
        with pytest.raises(DigestMismatch) as info:
            read_layer(src, resolved, 0)
        assert info.value.code == "DIGEST_MISMATCH" and layer_digest in str(info.value)
        assert read_layer(src, resolved, 1) == pushed.layers[1].blob

    proxy.replace_body(rf"/blobs/{sha256(config)}", b'{"os":"linux"}')
    with source(proxy.host, "test/app:1") as src, pytest.raises(DigestMismatch, match="image config"):
        src.resolve(None)

    proxy.replace_body(rf"/manifests/{sha256(manifest)}", manifest.replace(b"sha256", b"sha256 "))
    with RegistryClient(proxy.host, retry=FAST_RETRY) as c, pytest.raises(DigestMismatch):
        c.get_manifest("test/app", sha256(manifest))

    # By tag: the body no longer matches the registry's Docker-Content-Digest header.
    proxy.replace_body(r"/manifests/1$", manifest.replace(b"sha256", b"sha256 "))
    with RegistryClient(proxy.host, retry=FAST_RETRY) as c, pytest.raises(DigestMismatch, match="registry says"):
        c.get_manifest("test/app", "1")


def test_not_found(registry: RegistryServer, pushed: Image) -> None:
    with registry.client() as c:
        with pytest.raises(NotFoundError, match="MANIFEST_UNKNOWN"):
            c.get_manifest("test/app", "nope")
        with pytest.raises(NotFoundError, match="NAME_UNKNOWN|MANIFEST_UNKNOWN") as info:
            c.get_manifest("no/such/repo", "1")
        assert info.value.code == "NOT_FOUND"
        with pytest.raises(NotFoundError, match="BLOB_UNKNOWN"):
            c.get_blob("test/app", "sha256:" + "0" * 64).read()


# -- manifests and platforms --------------------------------------------------------------------------


SCHEMA1 = json.dumps({
    "schemaVersion": 1, "name": "test/app", "tag": "old", "architecture": "amd64",
    "fsLayers": [{"blobSum": "sha256:" + "a" * 64}], "history": [{"v1Compatibility": "{}"}],
    "signatures": [],
}).encode()


def test_schema1_refused(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.serve(r"/manifests/old$", SCHEMA1, media.DOCKER_SCHEMA1_SIGNED)
    with source(proxy.host, "test/app:old") as src, pytest.raises(UnsupportedImageError) as info:
        src.resolve(None)
    assert info.value.code == "SCHEMA_V1" and "schema v1" in str(info.value) and "schema v2" in str(info.value)
    assert "skopeo copy --format v2s2" in info.value.render()
    assert proxy.count(r"/blobs/") == 0


def test_index_platforms(registry: RegistryServer, tmp_path: Path) -> None:
    amd, arm = image("multi", arch="amd64"), image("multi", arch="arm64", variant="v8")
    registry.push_images([amd, arm], "multi/app:1", tmp_path)
    with source(registry, "multi/app:1") as src:
        r = src.resolve(None)
        assert r.platform == Platform("linux", "amd64") and src.index_digest
        assert r.manifest_digest == sha256(amd.blobs()[0]) and r.manifest_media_type == media.OCI_MANIFEST
        r = src.resolve(Platform.parse("linux/arm64/v8"))
        assert r.platform == Platform("linux", "arm64", "v8") and r.manifest_digest == sha256(arm.blobs()[0])
        assert tar_names(read_layer(src, r)) == ["etc/multi-arm64-0"]
        r = src.resolve(Platform.parse("linux/arm64"))  # a variant-less request matches any variant
        assert r.platform.architecture == "arm64"
        with pytest.raises(UnsupportedImageError, match="available: linux/amd64, linux/arm64/v8"):
            src.resolve(Platform.parse("linux/ppc64le"))


def test_index_without_amd64(registry: RegistryServer, tmp_path: Path, fault_proxy: ProxyFactory) -> None:
    registry.push_images([image("noamd", arch="arm64", variant="v8"), image("noamd", arch="s390x")],
                         "noamd/app:1", tmp_path)
    proxy = fault_proxy(registry)
    with source(proxy.host, "noamd/app:1") as src:
        with pytest.raises(UnsupportedImageError) as info:
            src.resolve(None)
        assert info.value.code == "PLATFORM_REQUIRED"
        assert "linux/arm64/v8, linux/s390x" in str(info.value) and "--platform" in str(info.value)
        assert proxy.count(r"/blobs/") == 0 and proxy.count(r"/manifests/sha256:") == 0
        assert src.resolve(Platform.parse("linux/arm64/v8")).platform.variant == "v8"


def test_docker_v2s2_manifest_list(registry: RegistryServer, tmp_path: Path) -> None:
    registry.push_images([image("dock", arch="amd64"), image("dock", arch="arm64", variant="v8")],
                         "docker/list:1", tmp_path, fmt="v2s2")
    with registry.client() as c:
        assert c.get_manifest("docker/list", "1").media_type == media.DOCKER_LIST
    with source(registry, "docker/list:1") as src:
        r = src.resolve(Platform.parse("linux/arm64/v8"))
        assert r.manifest_media_type == media.DOCKER_MANIFEST
        assert r.layers[0].descriptor.media_type == media.DOCKER_LAYER
        assert tar_names(read_layer(src, r)) == ["etc/dock-arm64-0"]


def test_zstd_layer_media_type_kept(registry: RegistryServer, tmp_path: Path) -> None:
    img = image("zstd", compression="zstd")
    registry.push_images(img, "zstd/app:1", tmp_path)
    with source(registry, "zstd/app:1") as src:
        r = src.resolve(None)
        assert r.layers[0].descriptor.media_type == media.OCI_LAYER_ZSTD
        assert tar_names(read_layer(src, r), "zstd") == ["etc/zstd-amd64-0"]


def test_helm_chart_refused(registry: RegistryServer, fault_proxy: ProxyFactory) -> None:
    config = b"{}"
    chart = gzip.compress(layer_tar([("mychart/Chart.yaml", "name: mychart\n")]), mtime=0)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": sha256(chart),
                    "size": len(chart)}],
    }).encode()
    registry.upload("charts/mychart", "0.1.0", manifest, media.OCI_MANIFEST,
                    {sha256(config): config, sha256(chart): chart})
    proxy = fault_proxy(registry)
    with source(proxy.host, "charts/mychart:0.1.0") as src, pytest.raises(UnsupportedImageError) as info:
        src.resolve(None)
    assert info.value.code == "NOT_AN_IMAGE" and "Helm chart" in str(info.value)
    assert proxy.count(r"/blobs/") == 0


# -- limits and lying registries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (Limits(max_layers=3), "TOO_MANY_LAYERS"),
        (Limits(max_layer_size=100), "LAYER_TOO_LARGE"),
        (Limits(max_image_size=500), "IMAGE_TOO_LARGE"),
    ],
)
def test_limits_checked_before_any_blob(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory,
                                        fault_proxy: ProxyFactory, limits: Limits, code: str) -> None:
    tag = "limits/app:4"
    with registry.client() as c:
        try:
            c.get_manifest("limits/app", "4")
        except NotFoundError:
            registry.push_images(image("limits", layers=4), tag, tmp_path_factory.mktemp("limits"))
    proxy = fault_proxy(registry)
    with source(proxy.host, tag, limits=limits) as src, pytest.raises(LimitExceeded) as info:
        src.resolve(None)
    assert info.value.code == code
    assert proxy.count(r"/manifests/") == 1 and proxy.count(r"/blobs/") == 0


def _declare_layer_size(size: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(doc: dict[str, Any]) -> dict[str, Any]:
        for layer in doc.get("layers", []):
            layer["size"] = size
        return doc
    return rewrite


def test_registry_lies_about_layer_size(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.rewrite_manifest(r"/manifests/1$", _declare_layer_size(100))
    with source(proxy.host, "test/app:1") as src:
        r = src.resolve(None)  # within limits: the manifest says 100 bytes a layer
        # The announced Content-Length already contradicts the manifest.
        with pytest.raises(DigestMismatch, match="announces"):
            src.open_layer(r.layers[0])
        # Without a Content-Length (chunked), the stream is cut as soon as it passes the declared size.
        proxy.chunked(r"/blobs/")
        reader = src.open_layer(r.layers[0])
        with pytest.raises(DigestMismatch, match="more than the 100 bytes"):
            while reader.read(64):
                pass
        assert reader.read_bytes <= 100  # type: ignore[attr-defined]


def test_registry_declares_more_than_it_sends(registry: RegistryServer, pushed: Image,
                                              fault_proxy: ProxyFactory) -> None:
    real = len(pushed.layers[0].blob)
    proxy = fault_proxy(registry)
    proxy.rewrite_manifest(r"/manifests/1$", _declare_layer_size(real + 10))
    with source(proxy.host, "test/app:1") as src:
        r = src.resolve(None)
        with pytest.raises(DigestMismatch, match=f"expected {real + 10} bytes, received {real}"):
            read_layer(src, r, 0)


def test_layer_limit_enforced_while_streaming(registry: RegistryServer, pushed: Image,
                                              fault_proxy: ProxyFactory) -> None:
    # A manifest that declares no size (0) passes the manifest checks; the stream is still capped.
    proxy = fault_proxy(registry)
    proxy.rewrite_manifest(r"/manifests/1$", _declare_layer_size(0))
    proxy.chunked(r"/blobs/")
    with source(proxy.host, "test/app:1", limits=Limits(max_layer_size=1000)) as src:
        r = src.resolve(None)
        with pytest.raises(LimitExceeded) as info:
            read_layer(src, r, 0)
        assert info.value.code == "LAYER_TOO_LARGE"


# -- redirects, listing, pushing ----------------------------------------------------------------------


def test_blob_redirect_to_storage_drops_credentials(basic_registry: RegistryServer, tmp_path: Path,
                                                    fault_proxy: ProxyFactory) -> None:
    img = image("redir")
    basic_registry.push_images(img, "redir/app:1", tmp_path)
    storage = fault_proxy(basic_registry, upstream_auth=basic_registry.creds)  # "S3": authorises by itself
    front = fault_proxy(basic_registry)
    front.redirect(r"/blobs/", storage.url)
    with source(front.host, "redir/app:1", creds=basic_registry.credentials) as src:
        r = src.resolve(None)
        assert read_layer(src, r) == img.layers[0].blob
    assert front.count(r"/blobs/") == 2 and storage.count(r"/blobs/") == 2
    assert all("authorization" in rec.headers for rec in front.matching(r"/blobs/"))
    assert not any("authorization" in rec.headers for rec in storage.matching(r"/blobs/"))


def test_tags_and_catalog_pagination(registry: RegistryServer, pushed: Image) -> None:
    manifest, _config, _ = pushed.blobs()
    for tag in ("a", "b", "c"):
        registry.upload("test/app", tag, manifest, media.OCI_MANIFEST)
    with registry.client() as c:
        tags = c.list_tags("test/app", page_size=2)
        assert {"1", "a", "b", "c"} <= set(tags) and len(tags) == len(set(tags))
        repos = c.catalog(page_size=1)
        assert "test/app" in repos and len(repos) == len(set(repos))


def test_push_and_pull_raw(registry: RegistryServer) -> None:
    with registry.client() as c:
        digest = c.put_blob("raw/blob", b"hello")
        assert digest == sha256(b"hello") and c.blob_exists("raw/blob", digest)
        assert c.put_blob("raw/blob", b"hello") == digest  # already there: no second upload
        assert c.get_blob("raw/blob", digest).read() == b"hello"


# -- unit: challenge parsing --------------------------------------------------------------------------


def test_parse_www_authenticate() -> None:
    [c] = parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"')
    assert (c.scheme, c.realm, c.service, c.scope) == (
        "bearer", "https://auth.docker.io/token", "registry.docker.io", "repository:samalba/my-app:pull,push")
    [c] = parse_www_authenticate('Basic realm="Registry Realm"')
    assert c.scheme == "basic" and c.realm == "Registry Realm"
    cs = parse_www_authenticate('Basic realm="a, b", Bearer realm=https://x/token, service=y')
    assert [(c.scheme, c.realm) for c in cs] == [("basic", "a, b"), ("bearer", "https://x/token")]
    assert cs[1].service == "y"
    assert parse_www_authenticate('Bearer realm="q\\"uote"')[0].realm == 'q"uote'
    assert parse_www_authenticate("") == []


def test_retry_policy_is_bounded() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 5 and policy.max_retry_after <= 60


def test_errors_render(registry: RegistryServer) -> None:
    with registry.client() as c, pytest.raises(HullscanError) as info:
        c.get_manifest("test/none", "1")
    assert "[NOT_FOUND]" in info.value.render()
