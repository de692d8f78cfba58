"""The pull gate: real `skopeo` pulls through `hullscan gate` in front of the real registry, answered as Harbor
answers a vulnerable pull (shared/specs/harbor-api/pull-blocking.md), and everything else streamed through."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hullscan.imagebuild import Image, Layer, layer_tar
from hullscan.service.api.app import create_app
from tests.service.conftest import ADMIN, make_settings, scan_repository, synced_registry
from tests.service.gates import free_port, pull, start_gate, vulnerable
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(600)
HARBOR_WORDS = "cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of"


@pytest.fixture
def setup(tmp_path: Path, own_registry: RegistryServer) -> Iterator[tuple[TestClient, str, Path]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    with TestClient(create_app(settings)) as api:
        api.auth = ADMIN
        yield api, f"127.0.0.1:{free_port()}", tmp_path  # each test starts its gate once the registry is known


def test_a_vulnerable_image_is_refused_until_its_findings_are_allowlisted(
        setup: tuple[TestClient, str, Path], own_registry: RegistryServer) -> None:
    api, listen, tmp = setup
    own_registry.push_images(vulnerable(), "web/shop:1.0", tmp)
    own_registry.push_images(Image([Layer(layer_tar([("srv/ok", "fine")]))]), "tools/clean:1", tmp)
    reg = synced_registry(api, own_registry.url)
    image, scan = scan_repository(api, "web/shop")
    assert scan["state"] == "succeeded", scan
    ids = sorted({f["id"] for f in api.get(f"/api/v1/scans/{scan['id']}/report").json()["vulnerabilities"]})
    assert "CVE-2019-10744" in ids or "GHSA-jf85-cpcp-j695" in ids, ids

    policy = {"auto_scan": False, "block": {"enabled": True, "severity": "HIGH"}, "allowlist": []}
    assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy).status_code == 200
    gate = start_gate(tmp / "data", listen, "local")
    try:
        refused = pull(f"{listen}/web/shop:1.0", tmp / "out")
        assert refused.returncode != 0
        assert HARBOR_WORDS in refused.stderr, refused.stderr
        by_digest = pull(f"{listen}/web/shop@{image['digest']}", tmp / "out")
        assert by_digest.returncode != 0 and HARBOR_WORDS in by_digest.stderr
        # the wire answer, as Harbor's
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        r = httpx.get(f"http://{listen}/v2/web/shop/manifests/1.0", headers=accept)
        assert r.status_code == 412 and r.headers["content-type"] == "application/json; charset=utf-8", r.text
        assert r.json()["errors"][0]["code"] == "PROJECTPOLICYVIOLATION" and r.text.endswith("\n")
        head = httpx.head(f"http://{listen}/v2/web/shop/manifests/1.0", headers=accept)
        assert head.status_code == 412 and head.content == b""
        # other namespaces, and blobs, pass untouched
        assert pull(f"{listen}/tools/clean:1", tmp / "out").returncode == 0

        # allowlisting every blocking finding changes the answer at once
        blocking = api.get(f"/api/v1/registries/{reg['id']}/pullable",
                           params={"repository": "web/shop", "reference": "1.0"}).json()
        assert blocking["pullable"] is False
        policy["allowlist"] = [{"id": i, "reason": "not reachable in our build"} for i in ids]
        assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy).status_code == 200
        allowed = pull(f"{listen}/web/shop:1.0", tmp / "out")
        assert allowed.returncode == 0, allowed.stderr
        # ... and an entry that has expired counts no more
        policy["allowlist"] = [{"id": i, "reason": "expired", "expires_at": "2020-01-01T00:00:00Z"} for i in ids]
        api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy)
        assert pull(f"{listen}/web/shop:1.0", tmp / "out").returncode != 0
    finally:
        gate.terminate()
        gate.wait(timeout=30)


def test_large_blobs_stream_through_with_bounded_memory(setup: tuple[TestClient, str, Path],
                                                        own_registry: RegistryServer) -> None:
    api, listen, tmp = setup
    api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": own_registry.url})
    size = 1 << 30
    chunk = os.urandom(1 << 20)
    h = hashlib.sha256()  # a 1 GiB blob, uploaded in one streamed PUT
    for _ in range(size // len(chunk)):
        h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    location = httpx.post(f"{own_registry.url}/v2/big/blob/blobs/uploads/").headers["location"]
    location += ("&" if "?" in location else "?") + f"digest={digest}"

    def body() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    assert httpx.put(location, content=body(), timeout=600,
                     headers={"Content-Length": str(size)}).status_code == 201
    gate = start_gate(tmp / "data", listen, "local")
    try:
        got = hashlib.sha256()
        received = 0
        with httpx.stream("GET", f"http://{listen}/v2/big/blob/blobs/{digest}", timeout=600) as r:
            assert r.status_code == 200
            for part in r.iter_raw(1 << 20):
                got.update(part)
                received += len(part)
        assert received == size and "sha256:" + got.hexdigest() == digest
        peak_kb = int(next(line for line in Path(f"/proc/{gate.pid}/status").read_text().splitlines()
                           if line.startswith("VmHWM:")).split()[1])
        assert peak_kb < 400 * 1024, f"the gate held {peak_kb} kB: the blob was buffered"
    finally:
        gate.terminate()
        gate.wait(timeout=30)
