"""Automatic scans on push. A real docker-registry, configured with a `notifications` endpoint, tells a real
service (Uvicorn on a loopback port) about every push; the service records the image and, in a namespace that
scans automatically, scans it. Harbor and Artifactory cannot run here: their payloads are the documented ones
(../shared/specs/harbor-api/webhooks.md, ../shared/specs/jfrog-artifactory/README.md), posted by the test.
Every hook without the registry's hook token is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar
from tests.service.conftest import make_settings, until, wait_for, wait_sync
from tests.service.images import app_image, push
from tests.service.live import LiveService
from tests.support.registry import RegistryServer, notifications, open_registry

pytestmark = pytest.mark.timeout(300)
GHP = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"  # shaped like a GitHub token, made up
EVENTS = "application/vnd.docker.distribution.events.v2+json"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveService]:
    service = LiveService(make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")).start()
    try:
        yield service
    finally:
        service.stop()


def test_a_push_to_the_real_registry_is_scanned(live: LiveService, tmp_path: Path) -> None:
    with live.client() as api:
        # The registry's notifications need the hook URL and token, which exist once the registry is added: add
        # it first, start the registry with them, then give the service its address.
        reg = api.post("/api/v1/registries", json={"name": "pushes", "type": "distribution",
                                                    "url": "http://127.0.0.1:9", "insecure": True}).json()
        hook = f"{live.url}/api/v1/hooks/distribution/{reg['id']}"
        registry = open_registry(tmp_path / "registry", extra={"notifications": notifications(hook, reg["hook_token"])})
        try:
            assert api.patch(f"/api/v1/registries/{reg['id']}", json={"url": registry.url}).status_code == 200

            before = dt.datetime.now(dt.UTC)
            first = push(registry, "team/app", "1.0", app_image(1))
            after = dt.datetime.now(dt.UTC)
            image = until(lambda: api.get("/api/v1/images", params={"registry": reg["id"]}).json())
            assert [(i["namespace"], i["repository"], i["tag"], i["digest"], i["last_scan"]) for i in image] == \
                [("team", "team/app", "1.0", first, None)]  # namespace created on first sight; not scanned yet
            # Pushed: the notification's timestamp (the registry's clock, this machine's). Size: not the manifest
            # length the event carries; unknown until a scan reads the manifest.
            assert before - dt.timedelta(seconds=1) <= dt.datetime.fromisoformat(image[0]["pushed_at"]) <= after
            assert image[0]["size"] is None
            assert api.get("/api/v1/scans", params={"registry": reg["id"]}).json() == []

            assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/team", json={"auto_scan": True}).status_code \
                == 200
            leaky = Image([app_image(2).layers[0], Layer(layer_tar([FileSpec("srv", type="d"),
                                                                   ("srv/.env", f"GITHUB_TOKEN={GHP}\n")]))])
            second = push(registry, "team/app", "2.0", leaky)
            scans = until(lambda: api.get("/api/v1/scans", params={"registry": reg["id"]}).json())
            assert [(s["repository"], s["tag"], s["trigger"], s["digest"]) for s in scans] == \
                [("team/app", "2.0", "push", second)]
            scan = wait_for(api, scans[0]["id"])
            assert scan["state"] == "succeeded", scan
            report = api.get(f"/api/v1/scans/{scan['id']}/report", params={"format": "json"}).json()
            assert [c["id"] for c in report["checks"] if c["item"] == "secret"] == ["github-pat"]
            images = api.get("/api/v1/images", params={"registry": reg["id"], "tag": "2.0"}).json()
            assert images[0]["last_scan"]["id"] == scan["id"]
            # The scan read the manifest: the image's size is its config and layers, as a sync would record it.
            manifest = httpx.get(f"{registry.url}/v2/team/app/manifests/{second}",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
            assert images[0]["size"] == manifest["config"]["size"] + sum(la["size"] for la in manifest["layers"])
            assert images[0]["pushed_at"] is not None

            # Pushing the same content again queues nothing; deleting the manifest marks the image absent.
            push(registry, "team/app", "2.0", leaky)
            deleted = httpx.delete(f"{registry.url}/v2/team/app/manifests/{first}")
            assert deleted.status_code == 202
            gone = until(lambda: api.get("/api/v1/images", params={"registry": reg["id"], "present": False}).json())
            assert [i["tag"] for i in gone] == ["1.0"]
            assert len(api.get("/api/v1/scans", params={"registry": reg["id"]}).json()) == 1
        finally:
            registry.stop()


def _hook(client: httpx.Client | TestClient, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(path, json=body, headers=headers, auth=None)


def _distribution_push(repository: str, tag: str, digest: str) -> dict[str, Any]:
    """One manifest push event, as notifications.md documents it."""
    return {"events": [{
        "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7", "timestamp": "2016-03-09T14:44:26.402973972-08:00",
        "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 708, "digest": digest,
                   "length": 708, "repository": repository, "url": f"http://127.0.0.1:5000/v2/{repository}/manifests/"
                   f"{digest}", "tag": tag},
        "request": {"id": "6df24a34-0959-4923-81ca-14f09767db19", "addr": "127.0.0.1:53040", "host": "127.0.0.1",
                    "method": "PUT", "useragent": "skopeo"},
        "actor": {}, "source": {"addr": "hostname.local:5000", "instanceID": "ee5d0f1c-b4e5-4e5d-8a9b-3e0e3bbd8f45"},
    }]}


def test_every_hook_needs_the_registry_token(api: TestClient) -> None:
    created = api.post("/api/v1/registries", json={"name": "a", "type": "distribution", "url": "http://127.0.0.1:9"})
    other = api.post("/api/v1/registries", json={"name": "b", "type": "distribution", "url": "http://127.0.0.1:9"})
    reg, token, other_token = created.json(), created.json()["hook_token"], other.json()["hook_token"]
    path = f"/api/v1/hooks/distribution/{reg['id']}"
    event = _distribution_push("team/app", "1", "sha256:" + "a" * 64)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {other_token}"},
                    {"Authorization": f"Basic {token}"}):
        refused = _hook(api, path, event, **headers)
        assert refused.status_code == 401, headers
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
    # Refused before the body is validated, and an unknown registry looks the same.
    assert api.post(path, content=b"[1, 2]", headers={"Content-Type": EVENTS}).status_code == 401
    assert _hook(api, "/api/v1/hooks/distribution/99999", event, Authorization=f"Bearer {token}").status_code == 401
    assert api.get("/api/v1/images", params={"registry": reg["id"]}).json() == []

    accepted = api.post(path, content=httpx.Request("POST", "/", json=event).content,
                        headers={"Content-Type": EVENTS, "Authorization": f"Bearer {token}"}, auth=None)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["received"] == 1 and len(accepted.json()["images"]) == 1
    # A new token replaces the old one.
    rotated = api.post(f"/api/v1/registries/{reg['id']}/hook-token").json()["hook_token"]
    assert _hook(api, path, event, Authorization=f"Bearer {token}").status_code == 401
    assert _hook(api, path, event, Authorization=f"Bearer {rotated}").status_code == 200


def test_distribution_events_that_are_not_image_pushes_are_ignored(api: TestClient) -> None:
    reg = api.post("/api/v1/registries", json={"name": "a", "type": "distribution", "url": "http://127.0.0.1:9"}).json()
    auth = {"Authorization": f"Bearer {reg['hook_token']}"}
    layer = {"events": [{"action": "push", "target": {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "b" * 64, "size": 10,
        "repository": "team/app"}}]}
    by_digest = _distribution_push("team/app", "", "sha256:" + "c" * 64)
    pull = _distribution_push("team/app", "1", "sha256:" + "d" * 64)
    pull["events"][0]["action"] = "pull"
    too_long = _distribution_push("team/app", "t" * 300, "sha256:" + "e" * 64)  # no registry takes such a tag
    for body in (layer, by_digest, pull, too_long, {"events": []}):
        answer = _hook(api, f"/api/v1/hooks/distribution/{reg['id']}", body, **auth)
        assert answer.status_code == 200 and answer.json()["images"] == [], body
    assert api.get("/api/v1/images", params={"registry": reg["id"]}).json() == []


def test_push_events_say_when_the_image_was_pushed(api: TestClient) -> None:
    """Pushed comes from the event's own time; the manifest length Distribution's and Artifactory's events carry
    is not the image's size (config and layers), so Size stays unknown until a scan."""
    dist = api.post("/api/v1/registries", json={"name": "d", "type": "distribution", "url": "http://127.0.0.1:9"})
    harbor = api.post("/api/v1/registries", json={"name": "h", "type": "harbor", "url": "http://127.0.0.1:9"})
    auth = {"Authorization": f"Bearer {dist.json()['hook_token']}"}
    event = _distribution_push("team/app", "1", "sha256:" + "a" * 64)
    assert _hook(api, f"/api/v1/hooks/distribution/{dist.json()['id']}", event, **auth).status_code == 200
    cloud = {"specversion": "1.0", "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2", "type": "harbor.artifact.pushed",
             "time": "2023-04-03T06:05:00Z", "data": {**HARBOR_PUSH["event_data"], "resources": [  # type: ignore[dict-item]
                 {"digest": "sha256:" + "f" * 64, "tag": "3.9", "resource_url": "harbor.example/library/alpine:3.9"}]}}
    for body in (HARBOR_PUSH, cloud):
        answer = _hook(api, f"/api/v1/hooks/harbor/{harbor.json()['id']}", body,
                       Authorization=f"Bearer {harbor.json()['hook_token']}")
        assert answer.status_code == 200, answer.text
    listed = [i for reg in (dist.json(), harbor.json())
              for i in api.get("/api/v1/images", params={"registry": reg["id"]}).json()]
    seen = {(i["repository"], i["tag"]): (i["size"], dt.datetime.fromisoformat(i["pushed_at"])) for i in listed}
    assert seen == {
        ("team/app", "1"): (None, dt.datetime(2016, 3, 9, 22, 44, 26, 402973, tzinfo=dt.UTC)),  # -08:00 in the event
        ("library/alpine", "3.8"): (None, dt.datetime(2023, 4, 3, 6, 4, 53, tzinfo=dt.UTC)),  # occur_at 1680501893
        ("library/alpine", "3.9"): (None, dt.datetime(2023, 4, 3, 6, 5, tzinfo=dt.UTC)),  # CloudEvents' time
    }


HARBOR_PUSH = {  # webhooks.md, 3.1: a push by tag (Default format)
    "type": "PUSH_ARTIFACT", "occur_at": 1680501893, "operator": "admin",
    "event_data": {
        "resources": [{"digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                       "tag": "3.8", "resource_url": "harbor.example/library/alpine:3.8"}],
        "repository": {"date_created": 1680501893, "name": "alpine", "namespace": "library",
                       "repo_full_name": "library/alpine", "repo_type": "private"},
    },
}


def test_harbor_push_artifact_webhook(api: TestClient) -> None:
    reg = api.post("/api/v1/registries", json={"name": "h", "type": "harbor", "url": "http://127.0.0.1:9"}).json()
    path = f"/api/v1/hooks/harbor/{reg['id']}"
    assert _hook(api, path, HARBOR_PUSH).status_code == 401
    # Harbor sends the policy's auth header verbatim: "Bearer <token>", or the token alone.
    first = _hook(api, path, HARBOR_PUSH, Authorization=f"Bearer {reg['hook_token']}")
    assert first.status_code == 200, first.text
    images = api.get("/api/v1/images", params={"registry": reg["id"]}).json()
    assert [(i["namespace"], i["repository"], i["tag"], i["digest"]) for i in images] == \
        [("library", "library/alpine", "3.8", HARBOR_PUSH["event_data"]["resources"][0]["digest"])]  # type: ignore[index]

    assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/library", json={"auto_scan": True}).status_code == 200
    moved = {**HARBOR_PUSH, "event_data": {**HARBOR_PUSH["event_data"], "resources": [  # type: ignore[dict-item]
        {"digest": "sha256:" + "e" * 64, "tag": "3.8", "resource_url": "harbor.example/library/alpine:3.8"}]}}
    queued = _hook(api, path, moved, Authorization=reg["hook_token"]).json()["queued"]
    scan = api.get(f"/api/v1/scans/{queued[0]}").json()
    assert (scan["trigger"], scan["repository"], scan["tag"], scan["digest"]) == \
        ("push", "library/alpine", "3.8", "sha256:" + "e" * 64)

    # CloudEvents format (webhooks.md, 4), pushed by digest: recorded untagged, so not scanned.
    cloud = {"specversion": "1.0", "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2", "type": "harbor.artifact.pushed",
             "source": "/projects/1/webhook/policies/1", "datacontenttype": "application/json", "operator": "admin",
             "data": {"resources": [{"digest": "sha256:" + "f" * 64, "tag": "sha256:" + "f" * 64,
                                     "resource_url": "harbor.example/library/alpine@sha256:" + "f" * 64}],
                      "repository": {"name": "alpine", "namespace": "library", "repo_full_name": "library/alpine",
                                     "repo_type": "private"}}}
    answer = _hook(api, path, cloud, Authorization=f"Bearer {reg['hook_token']}").json()
    assert len(answer["images"]) == 1 and answer["queued"] == []
    untagged = api.get(f"/api/v1/images/{answer['images'][0]}").json()
    assert untagged["tag"] is None and untagged["scannable"] is False

    delete = {**HARBOR_PUSH, "type": "DELETE_ARTIFACT"}
    assert _hook(api, path, delete, Authorization=f"Bearer {reg['hook_token']}").json()["removed"] == 0  # moved on
    other = api.post("/api/v1/registries", json={"name": "d", "type": "distribution",
                                                 "url": "http://127.0.0.1:9"}).json()
    wrong = _hook(api, f"/api/v1/hooks/harbor/{other['id']}", HARBOR_PUSH,
                  Authorization=f"Bearer {other['hook_token']}")
    assert wrong.status_code == 422 and "/api/v1/hooks/distribution/" in wrong.json()["error"]["message"]


JFROG_PUSH = {  # jfrog-artifactory/README.md, docker domain "pushed", with the envelope
    "domain": "docker", "event_type": "pushed", "subscription_key": "scanner-hook",
    "jpd_origin": "https://acme.jfrog.io", "source": "jfrog/artifactory",
    "data": {"repo_key": "docker-local", "path": "myteam/myapp/1.4.2/manifest.json", "name": "manifest.json",
             "sha256": "6b1f5a8c0c9e4d2b7a3f9e8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978877665", "size": 1206,
             "image_name": "myteam/myapp", "tag": "1.4.2",
             "platforms": [{"architecture": "amd64", "os": "linux"}]},
}


def test_artifactory_pushed_webhook(api: TestClient) -> None:
    reg = api.post("/api/v1/registries", json={"name": "j", "type": "jfrog", "url": "http://127.0.0.1:9"}).json()
    path = f"/api/v1/hooks/jfrog/{reg['id']}"
    assert _hook(api, path, JFROG_PUSH, **{"X-JFrog-Event-Auth": "wrong"}).status_code == 401
    assert _hook(api, path, JFROG_PUSH, **{"X-JFrog-Event-Auth": reg["hook_token"]}).status_code == 200
    image = api.get("/api/v1/images", params={"registry": reg["id"]}).json()
    assert [(i["namespace"], i["repository"], i["tag"], i["digest"]) for i in image] == \
        [("docker-local", "docker-local/myteam/myapp", "1.4.2", "sha256:" + JFROG_PUSH["data"]["sha256"])]  # type: ignore[index]

    assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/docker-local",
                   json={"auto_scan": True}).status_code == 200
    # The flattened form the docker-domain page shows: data's members beside event_type.
    flat = {"event_type": "pushed", **JFROG_PUSH["data"], "tag": "1.4.3", "sha256": "1" * 64}  # type: ignore[dict-item]
    queued = _hook(api, path, flat, **{"X-JFrog-Event-Auth": reg["hook_token"]}).json()["queued"]
    scan = api.get(f"/api/v1/scans/{queued[0]}").json()
    assert (scan["trigger"], scan["repository"], scan["tag"]) == ("push", "docker-local/myteam/myapp", "1.4.3")

    deleted = {**JFROG_PUSH, "event_type": "deleted"}
    assert _hook(api, path, deleted, **{"X-JFrog-Event-Auth": reg["hook_token"]}).json()["removed"] == 1
    assert [i["tag"] for i in api.get("/api/v1/images", params={"registry": reg["id"], "present": True}).json()] \
        == ["1.4.3"]


def test_images_synchronised_into_an_auto_scan_namespace_are_scanned(api: TestClient, registry: RegistryServer,
                                                                     request: pytest.FixtureRequest) -> None:
    ns = f"sync{request.node.callspec.id}"
    push(registry, f"{ns}/app", "1", app_image(101))
    reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                               "insecure": True}).json()
    api.post(f"/api/v1/registries/{reg['id']}/sync")
    assert wait_sync(api, reg["id"])["last_sync"]["counts"]["queued"] == 0  # the namespace is new: settings off
    assert api.put(f"/api/v1/registries/{reg['id']}/namespaces/{ns}", json={"auto_scan": True}).status_code == 200

    digest = push(registry, f"{ns}/app", "2", app_image(102))
    api.post(f"/api/v1/registries/{reg['id']}/sync")
    synced = wait_sync(api, reg["id"])
    assert synced["last_sync"]["state"] == "succeeded"
    # Only the new tag of the auto-scan namespace: the old one did not change, other namespaces scan nothing.
    scans = api.get("/api/v1/scans", params={"registry": reg["id"]}).json()
    assert [(s["repository"], s["tag"], s["trigger"], s["digest"]) for s in scans] == [(f"{ns}/app", "2", "sync",
                                                                                        digest)]
    assert wait_for(api, scans[0]["id"])["state"] == "succeeded"
