"""The API's main journey against the real local registry: connect it, synchronise, scan an image, read the
report, set a namespace's policy and ask whether the image may be pulled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar
from tests.service.conftest import wait_for, wait_sync
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(300)
GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # shaped like a GitHub token, made up


def _image() -> Image:
    return Image([Layer(layer_tar([
        FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
        ("srv/app/.env", f"GITHUB_TOKEN={GHP}\n"),
    ]))])


def test_connect_sync_scan_report_and_decide(api: TestClient, own_registry: RegistryServer, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    registry = own_registry
    repo = f"team{request.node.callspec.id}/app"
    registry.push_images(_image(), f"{repo}:1.0", tmp_path)

    created = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                                   "insecure": True})
    assert created.status_code == 201, created.text
    reg = created.json()
    assert reg["hook_token"].startswith("hs_") and "password" not in reg
    assert api.post(f"/api/v1/registries/{reg['id']}/test").json()["ok"] is True

    assert api.post(f"/api/v1/registries/{reg['id']}/sync").status_code == 202
    assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
    images = api.get("/api/v1/images", params={"registry": reg["id"], "repository": repo}).json()
    assert [(i["namespace"], i["repository"], i["tag"], i["last_scan"]) for i in images] == \
        [(repo.split("/")[0], repo, "1.0", None)]
    assert images[0]["digest"].startswith("sha256:")

    started = api.post("/api/v1/scans", json={"image_id": images[0]["id"]})
    assert started.status_code == 202, started.text
    scan = wait_for(api, started.json()["id"])
    assert scan["state"] == "succeeded", scan
    assert scan["digest"] == images[0]["digest"]

    report = api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "json"})
    assert report.status_code == 200 and report.headers["content-type"].startswith("application/json")
    doc = report.json()
    assert [c["id"] for c in doc["checks"] if c["item"] == "secret"] == ["github-pat"]
    sarif = api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "sarif"}).json()
    assert sarif["version"] == "2.1.0"
    html = api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "github-pat" in html.text
    assert api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "yaml"}).status_code == 422

    listed = api.get("/api/v1/images", params={"registry": reg["id"], "repository": repo}).json()
    assert listed[0]["last_scan"]["id"] == scan["id"] and listed[0]["last_scan"]["state"] == "succeeded"

    ns = repo.split("/")[0]
    assert api.get(f"/api/v1/registries/{reg['id']}/pullable",
                   params={"repository": repo, "reference": "1.0"}).json()["pullable"] is True
    put = api.put(f"/api/v1/registries/{reg['id']}/namespaces/{ns}",
                  json={"auto_scan": True, "block": {"enabled": True, "severity": "HIGH", "unscanned": True},
                        "allowlist": []})
    assert put.status_code == 200, put.text
    unknown = api.put(f"/api/v1/registries/{reg['id']}/namespaces/nope", json={"auto_scan": True})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NAMESPACE_UNKNOWN"
    # never-scanned tags are blocked now, with Harbor's words
    registry.push_images(_image(), f"{repo}:2.0", tmp_path)
    decision = api.get(f"/api/v1/registries/{reg['id']}/pullable",
                       params={"repository": repo, "reference": "2.0"}).json()
    assert decision["pullable"] is False
    assert "without vulnerability scanning cannot be pulled due to configured policy" in decision["reasons"][0]


def test_errors_carry_the_catalogue_cause_and_solution(api: TestClient) -> None:
    missing = api.get("/api/v1/scans/999999")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "solution"}
    bad = api.post("/api/v1/registries", json={"name": "x", "type": "quay", "url": "http://x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    anonymous = api.get("/api/v1/images", auth=None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    assert api.get("/healthz", auth=None).json()["status"] == "ok"
    assert api.get("/metrics", auth=None).status_code == 200
    untagged = api.post("/api/v1/scans", json={"registry": 1})
    assert untagged.status_code in (404, 422)
    assert json.loads(untagged.text)["error"]["solution"]
