"""The failure catalogue through the service: every limit and failure of issue 10, item 8, produced by a real image
or a real registry, ends the scan as failed with its cause (code, message) and the catalogue's solution on
GET /api/v1/scans/{id}. Refusals decided from the manifest fetch no layer.

The images are the ones tests/oci and tests/e2e build for the CLI (tests/service/images.py), uploaded to a
docker-registry that accepts schema 1 manifests (`compatibility.schema1.enabled`), behind the fault proxy. The
service's size limits are set small (20 kB an image, 10 kB a layer) so small images can cross them. A scan past
its deadline is in test_lifecycle.py (TIMEOUT)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hullscan.errors import CATALOGUE
from hullscan.imagebuild import Image, Layer, layer_tar
from tests.service.conftest import make_settings, running, wait_for
from tests.service.images import (
    app_image,
    many_layers,
    push,
    push_helm_chart,
    push_index,
    push_schema1,
    windows_image,
)
from tests.service.test_lifecycle import connect, layer_digest
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer, open_registry

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def old_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry that still takes schema 1 pushes, as registries did before distribution 2.7."""
    server = open_registry(tmp_path_factory.mktemp("registry-schema1"),
                           extra={"compatibility": {"schema1": {"enabled": True}}})
    try:
        yield server
    finally:
        server.stop()


def _random_layer(size: int, name: str) -> Layer:
    return Layer(layer_tar([(f"data/{name}", os.urandom(size))]), f"ADD {name}")  # incompressible


def _check(scan: dict[str, Any], code: str, *words: str) -> None:
    assert scan["state"] == "failed", scan
    cause = scan["cause"]
    assert cause["code"] == code, scan
    assert cause["solution"] == CATALOGUE[code].solution
    for word in words:
        assert word in cause["message"], (word, cause)


def test_every_failure_shows_its_cause_and_solution(old_registry: RegistryServer, tmp_path: Path,
                                                    fault_proxy: Callable[..., FaultProxy]) -> None:
    reg = old_registry
    big_image = Image([_random_layer(8000, f"part-{i}") for i in range(3)])  # each layer < 10 kB, in all > 20 kB
    big_layer = Image([_random_layer(12000, "blob")])
    flaky = app_image(501)
    push(reg, "limits/image", "1", big_image)
    push(reg, "limits/layer", "1", big_layer)
    push(reg, "limits/layers", "127", many_layers(127))
    push_schema1(reg, "old/app", "v1")
    push_index(reg, "multi/app", "1", [Image(app_image(502).layers, architecture="arm64", variant="v8"),
                                       Image(app_image(503).layers, architecture="s390x")])
    push(reg, "windows/app", "1", windows_image())
    push_helm_chart(reg, "charts/mychart", "0.1.0")
    deleted = push(reg, "gone/app", "1", app_image(504))
    push(reg, "flaky/app", "1", flaky)
    proxy = fault_proxy(reg)
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}", max_image_size="20kB",
                             max_layer_size="10kB", scan_attempts=2, retry_delay=0.1)
    with running(settings) as api:
        registry_id, images = connect(api, proxy.url)
        # Gone from the registry after hullscan listed it.
        assert httpx.delete(f"{reg.url}/v2/gone/app/manifests/{deleted}").status_code == 202
        # Every download of the layer is cut after 10 bytes (the client resumes, then gives up; so does the job).
        proxy.reset(rf"/blobs/{layer_digest(flaky)}", after_bytes=10, times=-1)
        expected = {
            "limits/image:1": ("IMAGE_TOO_LARGE", "the image totals", "20,000"),
            "limits/layer:1": ("LAYER_TOO_LARGE", "the limit is 10,000"),
            "limits/layers:127": ("TOO_MANY_LAYERS", "127 layers"),
            "old/app:v1": ("SCHEMA_V1", "schema v1"),
            "multi/app:1": ("PLATFORM_REQUIRED", "linux/arm64/v8, linux/s390x"),
            "windows/app:1": ("UNSUPPORTED_PLATFORM", "windows"),
            "charts/mychart:0.1.0": ("NOT_AN_IMAGE", "Helm chart"),
            "gone/app:1": ("IMAGE_NOT_FOUND", "no longer in the registry", deleted),
            "flaky/app:1": ("REGISTRY_ERROR", "the download of blob", "kept failing"),
        }
        scans = {ref: api.post("/api/v1/scans", json={"image_id": images[ref]}).json()["id"] for ref in expected}
        ended = {ref: wait_for(api, scan_id, timeout=180) for ref, scan_id in scans.items()}
        for ref, (code, *words) in expected.items():
            _check(ended[ref], code, *words)
        assert "Synchronise" in ended["gone/app:1"]["cause"]["solution"]
        assert ended["flaky/app:1"]["attempts"] == 2  # a transient failure: tried again, then given up
        assert {ended[ref]["attempts"] for ref in expected if ref != "flaky/app:1"} == {1}
        # Decided from the manifest: not one layer of these was downloaded.
        for repo in ("limits/image", "limits/layer", "limits/layers", "old/app", "multi/app", "charts/mychart"):
            assert proxy.count(rf"/v2/{repo}/blobs/", method="GET") <= (1 if repo == "charts/mychart" else 0), repo

        # The registry unreachable: listed while it answered, then gone.
        proxy.stop()
        down = wait_for(api, api.post("/api/v1/scans", json={"image_id": images["limits/layer:1"]}).json()["id"],
                        timeout=120)
        _check(down, "REGISTRY_UNREACHABLE", "cannot connect")
        assert down["attempts"] == 2
        assert api.get(f"/api/v1/registries/{registry_id}").status_code == 200


def test_authorization_missing_or_refused(basic_registry: RegistryServer, tmp_path: Path) -> None:
    basic_registry.push_images(app_image(511), "private/app:1", tmp_path)
    user, password = basic_registry.creds or ("", "")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    with running(settings) as api:
        registry_id, images = connect(api, basic_registry.url, username=user, password=password)
        image = images["private/app:1"]
        assert api.patch(f"/api/v1/registries/{registry_id}", json={"username": None, "password": None}).status_code \
            == 200
        missing = wait_for(api, api.post("/api/v1/scans", json={"image_id": image}).json()["id"])
        _check(missing, "AUTH_FAILED")
        assert api.patch(f"/api/v1/registries/{registry_id}",
                         json={"username": user, "password": "not-the-password"}).status_code == 200
        refused = wait_for(api, api.post("/api/v1/scans", json={"image_id": image}).json()["id"])
        _check(refused, "AUTH_FAILED")
        assert missing["cause"]["message"] != refused["cause"]["message"]  # it says which
        assert "not-the-password" not in refused["cause"]["message"]
        assert (missing["attempts"], refused["attempts"]) == (1, 1)


def test_no_vulnerability_database(registry: RegistryServer, tmp_path: Path) -> None:
    push(registry, "nodb/app", "1", app_image(521))
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    settings.db_path.unlink()
    with running(settings) as api:
        _, images = connect(api, registry.url)
        scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": images["nodb/app:1"]}).json()["id"])
        _check(scan, "NO_DATABASE", str(settings.db_path))
        assert api.get("/api/v1/database").json()["database"] is None
        # Without the vulnerability item, the same image scans.
        other = api.post("/api/v1/scans", json={"image_id": images["nodb/app:1"], "items": ["secret"]}).json()
        assert wait_for(api, other["id"])["state"] == "succeeded"
