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
from tests.service.conftest import ADMIN, make_settings, wait_for, wait_sync
from tests.service.images import lodash_image
from tests.service.live import GateProcess, skopeo_pull
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(600)
HARBOR_WORDS = "cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of"
KEY = {"HULLSCAN_SECRET_KEY": "test key"}  # make_settings' key: the gate reads the same records


@pytest.fixture
def setup(tmp_path: Path, own_registry: RegistryServer) -> Iterator[tuple[TestClient, Path]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    with TestClient(create_app(settings)) as api:
        api.auth = ADMIN
        yield api, tmp_path  # each test starts its gate once the registry is known


def test_a_vulnerable_image_is_refused_until_its_findings_are_allowlisted(
        setup: tuple[TestClient, Path], own_registry: RegistryServer) -> None:
    api, tmp = setup
    own_registry.push_images(lodash_image(), "web/shop:1.0", tmp)
    own_registry.push_images(Image([Layer(layer_tar([("srv/ok", "fine")]))]), "tools/clean:1", tmp)
    reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": own_registry.url,
                                               "insecure": True}).json()
    api.post(f"/api/v1/registries/{reg['id']}/sync")
    assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
    image = api.get("/api/v1/images", params={"repository": "web/shop"}).json()[0]
    scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
    assert scan["state"] == "succeeded", scan
    ids = sorted({f["id"] for f in api.get(f"/api/v1/scans/{scan['id']}/report").json()["vulnerabilities"]})
    assert "CVE-2019-10744" in ids or "GHSA-jf85-cpcp-j695" in ids, ids

    policy = {"auto_scan": False, "block": {"enabled": True, "severity": "HIGH"}, "allowlist": []}
    assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy).status_code == 200
    gate = GateProcess(tmp / "data", "local", KEY).start()
    listen = gate.listen
    try:
        refused = skopeo_pull(f"{listen}/web/shop:1.0", tmp / "out")
        assert refused.returncode != 0
        assert HARBOR_WORDS in refused.stderr, refused.stderr
        by_digest = skopeo_pull(f"{listen}/web/shop@{image['digest']}", tmp / "out")
        assert by_digest.returncode != 0 and HARBOR_WORDS in by_digest.stderr
        # the wire answer, as Harbor's
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        r = httpx.get(f"http://{listen}/v2/web/shop/manifests/1.0", headers=accept)
        assert r.status_code == 412 and r.headers["content-type"] == "application/json; charset=utf-8", r.text
        assert r.json()["errors"][0]["code"] == "PROJECTPOLICYVIOLATION" and r.text.endswith("\n")
        head = httpx.head(f"http://{listen}/v2/web/shop/manifests/1.0", headers=accept)
        assert head.status_code == 412 and head.content == b""
        # other namespaces, and blobs, pass untouched
        assert skopeo_pull(f"{listen}/tools/clean:1", tmp / "out").returncode == 0

        # allowlisting every blocking finding changes the answer at once
        blocking = api.get(f"/api/v1/registries/{reg['id']}/pullable",
                           params={"repository": "web/shop", "reference": "1.0"}).json()
        assert blocking["pullable"] is False
        policy["allowlist"] = [{"id": i, "reason": "not reachable in our build"} for i in ids]
        assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy).status_code == 200
        allowed = skopeo_pull(f"{listen}/web/shop:1.0", tmp / "out")
        assert allowed.returncode == 0, allowed.stderr
        # ... and an entry that has expired counts no more
        policy["allowlist"] = [{"id": i, "reason": "expired", "expires_at": "2020-01-01T00:00:00Z"} for i in ids]
        api.put(f"/api/v1/registries/{reg['id']}/namespaces/web", json=policy)
        assert skopeo_pull(f"{listen}/web/shop:1.0", tmp / "out").returncode != 0
    finally:
        gate.stop()


def test_large_blobs_stream_through_with_bounded_memory(setup: tuple[TestClient, Path],
                                                        own_registry: RegistryServer) -> None:
    api, tmp = setup
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
    gate = GateProcess(tmp / "data", "local", KEY).start()
    listen = gate.listen
    try:
        got = hashlib.sha256()
        received = 0
        with httpx.stream("GET", f"http://{listen}/v2/big/blob/blobs/{digest}", timeout=600) as r:
            assert r.status_code == 200
            for part in r.iter_raw(1 << 20):
                got.update(part)
                received += len(part)
        assert received == size and "sha256:" + got.hexdigest() == digest
        peak_kb = gate.peak_rss_kb()
        assert peak_kb < 400 * 1024, f"the gate held {peak_kb} kB: the blob was buffered"
    finally:
        gate.stop()
