"""Registry types: any OCI registry (the real docker-registry), Harbor and JFrog Artifactory.

Harbor and Artifactory cannot run here, so their APIs are FAKES built from the documents in ../shared/specs
(tests/support/fakes.py), answering from a real docker-registry behind them and proxying its /v2/ API: the
listing is the product's, the image bytes are real and scanned for real.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hullscan.imagebuild import Image, Layer, layer_tar
from hullscan.oci import media
from hullscan.service.api.app import create_app
from hullscan.service.connectors import jfrog
from tests.service.conftest import ADMIN, make_settings, wait_for, wait_sync
from tests.support.fakes import fake_artifactory, fake_harbor
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 's.db'}"))) as client:
        client.auth = ADMIN
        yield client


def _image(text: str) -> Image:
    return Image([Layer(layer_tar([("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"), ("srv/note", text)]))])


def _upload_many(registry: RegistryServer, repos: list[str], tag: str = "1") -> None:
    """Cheap images: one small manifest and its blobs uploaded to many repositories with the registry API."""
    manifest, _config, blobs = _image("bulk").blobs()
    for repo in repos:
        registry.upload(repo, tag, manifest, media.OCI_MANIFEST, blobs)


def _connect(api: TestClient, **body: object) -> dict[str, object]:
    created = api.post("/api/v1/registries", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, object] = created.json()
    return result


def test_harbor_projects_repositories_and_artifacts(api: TestClient, registry: RegistryServer, tmp_path: Path) -> None:
    registry.push_images(_image("one"), "hbproj/app:1.0", tmp_path)
    registry.push_images(_image("one"), "hbproj/app:latest", tmp_path)  # same digest: one artifact, two tags
    registry.push_images(_image("two"), "hbproj/team/tool:2", tmp_path)  # a slash left after the project
    _upload_many(registry, [f"hbbulk/r{i:03d}" for i in range(105)])  # more than one page of repositories
    harbor = fake_harbor(registry.url)
    try:
        reg = _connect(api, name="harbor", type="harbor", url=harbor.url, username="robot$scanner",
                       password="harbor-secret")
        test = api.post(f"/api/v1/registries/{reg['id']}/test").json()
        assert test["ok"], test
        api.post(f"/api/v1/registries/{reg['id']}/sync")
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
        images = api.get("/api/v1/images", params={"registry": reg["id"], "namespace": "hbproj"}).json()
        assert sorted((i["repository"], i["tag"]) for i in images) == \
            [("hbproj/app", "1.0"), ("hbproj/app", "latest"), ("hbproj/team/tool", "2")]
        assert len({i["digest"] for i in images if i["repository"] == "hbproj/app"}) == 1
        assert all(i["size"] and i["pushed_at"] and i["platform"] == "linux/amd64" for i in images)
        bulk = api.get("/api/v1/images", params={"registry": reg["id"], "namespace": "hbbulk", "page_size": 500})
        assert bulk.headers["X-Total-Count"] == "105"
        assert any("page=2" in r for r in harbor.requests if "/repositories" in r)  # it followed Harbor's Link
        assert any("team%252Ftool" in r for r in harbor.requests)  # the swagger's double encoding

        tool = next(i for i in images if i["repository"] == "hbproj/team/tool")
        scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": tool["id"]}).json()["id"])
        assert scan["state"] == "succeeded", scan  # pulled through Harbor's /v2/ with its credentials
    finally:
        harbor.stop()


def test_artifactory_docker_repositories(api: TestClient, registry: RegistryServer, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jfrog, "PAGE", 2)  # several n/last pages, which Artifactory may send without Link
    for tag in ("1", "2", "3", "4", "5"):
        registry.push_images(_image(f"jf{tag}"), f"docker-local/team/app:{tag}", tmp_path)
    registry.push_images(_image("x"), "docker-local/solo:1", tmp_path)
    fake = fake_artifactory(registry.url)
    try:
        # An access token alone is sent as Bearer to the REST API (JFrog's preferred form) ...
        bearer = _connect(api, name="jfrog-token", type="jfrog", url=fake.url, password="jfrog-access-token")
        assert api.post(f"/api/v1/registries/{bearer['id']}/test").json()["ok"]
        assert any(r.startswith("GET /artifactory/api/repositories") for r in fake.requests)
        # ... and with a username, as the password of HTTP Basic, which `docker login` (and pulling) needs
        reg = _connect(api, name="jfrog", type="jfrog", url=fake.url, username="scanner",
                       password="jfrog-access-token")
        assert api.post(f"/api/v1/registries/{reg['id']}/test").json()["ok"]
        api.post(f"/api/v1/registries/{reg['id']}/sync")
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
        images = api.get("/api/v1/images", params={"registry": reg["id"], "namespace": "docker-local"}).json()
        assert sorted((i["repository"], i["tag"]) for i in images) == \
            [("docker-local/solo", "1"), *(("docker-local/team/app", t) for t in "12345")]
        assert any("last=" in r for r in fake.requests if "tags/list" in r)
        app = next(i for i in images if i["repository"] == "docker-local/team/app" and i["tag"] == "5")
        scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": app["id"]}).json()["id"])
        assert scan["state"] == "succeeded", scan  # the repository-path pull method
    finally:
        fake.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_tests_name_the_precise_cause(api: TestClient, registry: RegistryServer,
                                                 basic_registry: RegistryServer, tls_registry: RegistryServer) -> None:
    harbor = fake_harbor(registry.url)
    try:
        cases = [
            ({"type": "distribution", "url": f"http://127.0.0.1:{_closed_port()}"}, "REGISTRY_UNREACHABLE"),
            ({"type": "harbor", "url": harbor.url}, "AUTH_REQUIRED"),
            ({"type": "harbor", "url": harbor.url, "username": "robot$scanner", "password": "wrong"}, "AUTH_FAILED"),
            ({"type": "distribution", "url": basic_registry.url}, "AUTH_REQUIRED"),
            ({"type": "distribution", "url": basic_registry.url, "username": basic_registry.creds[0],  # type: ignore[index]
              "password": "wrong"}, "AUTH_FAILED"),
            ({"type": "distribution", "url": tls_registry.url}, "TLS_ERROR"),
            ({"type": "distribution", "url": tls_registry.url,
              "ca_cert": Path(tls_registry.ca_cert).read_text()}, None),  # type: ignore[arg-type]
            ({"type": "distribution", "url": basic_registry.url, "username": basic_registry.creds[0],  # type: ignore[index]
              "password": basic_registry.creds[1]}, None),  # type: ignore[index]
        ]
        for n, (body, code) in enumerate(cases):
            reg = _connect(api, name=f"case{n}", **body)
            result = api.post(f"/api/v1/registries/{reg['id']}/test").json()
            if code is None:
                assert result["ok"] is True, (body, result)
            else:
                assert result["ok"] is False and result["cause"]["code"] == code, (body, result)
                assert result["cause"]["solution"]
            assert "password" not in str(api.get(f"/api/v1/registries/{reg['id']}").json()).replace(
                "has_password", "")
    finally:
        harbor.stop()
