"""Deeply nested JSON wherever an image source reads JSON: a catalogue error, never RecursionError.

Registry answers come from a real registry through the fault proxy (manifests, error bodies, tag lists)
or from the test token service; layouts and archives are written by code.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hullscan.cli import app
from hullscan.errors import AuthError, HullscanError, NotFoundError, RegistryError
from hullscan.imagebuild import Image, Layer, layer_tar, write_docker_archive, write_oci_layout
from hullscan.oci import media
from hullscan.oci.local import DockerArchiveSource, OCILayoutSource
from hullscan.oci.reference import parse_reference
from hullscan.oci.registry import RegistryClient
from hullscan.oci.registry_source import RegistrySource
from hullscan.safejson import MAX_DEPTH
from hullscan.vulndb.update import pull_database
from tests.support.proxy import FaultProxy
from tests.support.registry import FAST_RETRY, RegistryServer

ProxyFactory = Callable[..., FaultProxy]
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"schemaVersion": 2, "mediaType": "' + media.OCI_MANIFEST.encode() + b'", "layers": ' + DEEP + b"}"
NESTS = f"it nests deeper than {MAX_DEPTH} levels"


def small_image() -> Image:
    return Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.20\n")]))])


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Image:
    img = small_image()
    registry.push_images(img, "deep/app:1", tmp_path_factory.mktemp("deep"))
    return img


# -- registry ---------------------------------------------------------------------------------------------


def test_deep_manifest_from_the_registry(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.serve(r"/manifests/1$", DEEP_OBJECT, media.OCI_MANIFEST)
    client = RegistryClient(proxy.host, retry=FAST_RETRY)
    with RegistrySource(parse_reference(f"{proxy.host}/deep/app:1"), client, owns_client=True) as src, \
            pytest.raises(HullscanError) as info:
        src.resolve(None)
    assert info.value.code == "MANIFEST_INVALID" and NESTS in str(info.value)
    assert proxy.count(r"/blobs/") == 0


def test_deep_error_body_still_gives_the_status(registry: RegistryServer, pushed: Image,
                                                fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.respond(r"/manifests/", 404, body=b'{"errors": ' + DEEP + b"}", headers={"Content-Type": "application/json"})
    with RegistryClient(proxy.host, retry=FAST_RETRY) as c, pytest.raises(NotFoundError) as info:
        c.get_manifest("deep/app", "1")
    assert "HTTP 404" in str(info.value)


def test_deep_tag_list(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.serve(r"/tags/list", b'{"tags": ' + DEEP + b"}", "application/json")
    with RegistryClient(proxy.host, retry=FAST_RETRY) as c, pytest.raises(RegistryError, match=NESTS):
        c.list_tags("deep/app")


def test_deep_token_answer(token_registry: RegistryServer, tmp_path: Path) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    token_registry.push_images(small_image(), "team/deeptoken:1", tmp_path)
    issuer.raw_answer = b'{"token": ' + DEEP + b"}"
    try:
        with token_registry.client() as c, pytest.raises(AuthError) as info:
            c.get_manifest("team/deeptoken", "1")
    finally:
        issuer.raw_answer = None
    assert f"the answer of the token service {issuer.url} is not valid JSON: {NESTS}" in str(info.value)


def test_deep_database_artifact_manifest(registry: RegistryServer, pushed: Image, fault_proxy: ProxyFactory,
                                         tmp_path: Path) -> None:
    proxy = fault_proxy(registry)
    proxy.serve(r"/manifests/db$", DEEP, media.OCI_MANIFEST)
    with RegistryClient(proxy.host, retry=FAST_RETRY) as c, pytest.raises(HullscanError) as info:
        pull_database(f"{proxy.host}/deep/app:db", tmp_path / "x.db", client=c)
    assert info.value.code == "DB_INVALID" and NESTS in str(info.value)
    assert not (tmp_path / "x.db").exists()


# -- OCI layouts and docker archives ----------------------------------------------------------------------


def _layout(tmp_path: Path) -> Path:
    return write_oci_layout(tmp_path / "layout", small_image())


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":")[1]


def _resolve(layout: Path) -> None:
    source = OCILayoutSource(layout)
    try:
        source.resolve(None)
    finally:
        source.close()


def test_deep_index_json(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    (layout / "index.json").write_bytes(b'{"manifests": ' + DEEP + b"}")
    with pytest.raises(HullscanError) as info:
        _resolve(layout)
    assert info.value.code == "MANIFEST_INVALID" and f"index.json is not valid JSON: {NESTS}" in str(info.value)


@pytest.mark.parametrize("which", ["manifest", "config"])
def test_deep_manifest_or_config_in_a_layout(tmp_path: Path, which: str) -> None:
    """The blob is replaced and the digests above it are rewritten, so only the nesting is wrong."""
    layout = _layout(tmp_path)
    index = json.loads((layout / "index.json").read_text())
    manifest_path = _blob(layout, index["manifests"][0]["digest"])
    manifest = json.loads(manifest_path.read_bytes())
    if which == "config":
        body = b'{"os": "linux", "rootfs": ' + DEEP + b"}"
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        _blob(layout, digest).write_bytes(body)
        manifest["config"].update(digest=digest, size=len(body))
        data = json.dumps(manifest).encode()
    else:
        data = DEEP_OBJECT
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    index["manifests"][0].update(digest=digest, size=len(data))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(HullscanError) as info:
        _resolve(layout)
    assert info.value.code == "MANIFEST_INVALID" and NESTS in str(info.value)
    assert ("image config" if which == "config" else f"manifest {digest}") in str(info.value)


def test_deep_docker_archive_manifest(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "image.tar", small_image())
    rebuilt = tmp_path / "rebuilt.tar"
    with tarfile.open(archive) as src, tarfile.open(rebuilt, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            if m.name == "manifest.json":
                data, m.size = DEEP, len(DEEP)
            dst.addfile(m, io.BytesIO(data))
    source = DockerArchiveSource(rebuilt)
    try:
        with pytest.raises(HullscanError) as info:
            source.resolve(None)
    finally:
        source.close()
    assert info.value.code == "SOURCE_INVALID"
    assert f"manifest.json in {rebuilt} is not valid JSON: {NESTS}" in str(info.value)


def test_cli_exits_3_not_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULLSCAN_CACHE_DIR", str(tmp_path / "cache"))
    layout = _layout(tmp_path)
    (layout / "index.json").write_bytes(DEEP)
    result = CliRunner().invoke(app, ["sbom", f"oci:{layout}", "--quiet"])
    assert result.exit_code == 3, result.output
    assert "MANIFEST_INVALID" in result.output
    shutil.rmtree(layout)
