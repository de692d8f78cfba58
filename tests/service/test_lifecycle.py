"""The life of a scan job against the real registry, with faults injected by the fault proxy in front of it:
stopped while running or while queued, past its deadline, retried only for transient registry errors (with
backoff), and two scans of images sharing a base layer walking it once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, sha256
from hullscan.layers.cache import LayerStore
from hullscan.model import LayerFacts
from hullscan.service.core import Service
from tests.service.conftest import make_settings, running, wait_for, wait_sync
from tests.service.images import app_image, push
from tests.support.proxy import FaultProxy
from tests.support.registry import RegistryServer, free_port

pytestmark = pytest.mark.timeout(300)
ProxyFactory = Callable[..., FaultProxy]


def connect(api: TestClient | httpx.Client, url: str, name: str = "local", **extra: Any) -> tuple[int, dict[str, int]]:
    """Add the registry, synchronise it; its id and its image ids by "repository:tag"."""
    reg = api.post("/api/v1/registries", json={"name": name, "type": "distribution", "url": url, "insecure": True,
                                               **extra})
    assert reg.status_code == 201, reg.text
    registry_id = reg.json()["id"]
    api.post(f"/api/v1/registries/{registry_id}/sync")
    assert wait_sync(api, registry_id)["last_sync"]["state"] == "succeeded"
    images, page = {}, 1
    while True:
        rows = api.get("/api/v1/images", params={"registry": registry_id, "page": page, "page_size": 500}).json()
        images.update({f"{i['repository']}:{i['tag']}": i["id"] for i in rows})
        if len(rows) < 500:
            return registry_id, images
        page += 1


def layer_digest(image: Image, index: int = -1) -> str:
    return sha256(image.layers[index].blob)


def scan(api: TestClient, image_id: int) -> dict[str, Any]:
    started = api.post("/api/v1/scans", json={"image_id": image_id})
    assert started.status_code == 202, started.text
    return started.json()  # type: ignore[no-any-return]


def wait_state(api: TestClient, scan_id: int, state: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(api, scan_id, (state, "succeeded", "failed", "stopped"), timeout)


@pytest.fixture
def lifecycle(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    """One scan at a time per registry, fast retries."""
    settings = make_settings(tmp_path, database_url, max_scans_per_registry=1, retry_delay=0.2)
    with running(settings) as client:
        yield client


def test_stop_a_running_and_a_queued_scan(lifecycle: TestClient, registry: RegistryServer,
                                          fault_proxy: ProxyFactory, request: pytest.FixtureRequest) -> None:
    api, ns = lifecycle, f"stop{request.node.callspec.id}"
    slow, other = app_image(301), app_image(302)
    push(registry, f"{ns}/app", "slow", slow)
    push(registry, f"{ns}/app", "other", other)
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{layer_digest(slow)}")
    registry_id, images = connect(api, proxy.url)

    first = scan(api, images[f"{ns}/app:slow"])
    assert held.wait_stalled()
    assert wait_state(api, first["id"], "running")["state"] == "running"
    # The registry allows one scan at a time: the second waits, and is stopped before it starts.
    second = scan(api, images[f"{ns}/app:other"])
    assert api.get(f"/api/v1/scans/{second['id']}").json()["state"] == "queued"
    stopped = api.post(f"/api/v1/scans/{second['id']}/stop").json()
    assert stopped["state"] == "stopped" and stopped["cause"]["code"] == "STOPPED"
    assert "before it started" in stopped["cause"]["message"]

    asked = api.post(f"/api/v1/scans/{first['id']}/stop")
    assert asked.status_code == 200
    ended = wait_for(api, first["id"], timeout=30)  # while the download still hangs
    assert held.stalled and ended["state"] == "stopped", ended
    assert ended["cause"]["code"] == "STOPPED" and ended["cause"]["solution"]
    assert api.get(f"/api/v1/scans/{first['id']}/report").status_code == 404
    held.release()
    # Stopped scans can be asked for again: a new scan, not the stopped one.
    again = scan(api, images[f"{ns}/app:slow"])
    assert again["id"] != first["id"] and wait_for(api, again["id"])["state"] == "succeeded"
    assert api.post(f"/api/v1/scans/{again['id']}/stop").json()["state"] == "succeeded"  # too late: unchanged


def test_a_scan_past_its_deadline_ends_with_the_timeout_cause(tmp_path: Path, database_url: str,
                                                              registry: RegistryServer, fault_proxy: ProxyFactory,
                                                              request: pytest.FixtureRequest) -> None:
    ns = f"deadline{request.node.callspec.id}"
    img = app_image(303)
    push(registry, f"{ns}/app", "1", img)
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{layer_digest(img)}")
    with running(make_settings(tmp_path, database_url, scan_timeout=3.0)) as api:
        _, images = connect(api, proxy.url)
        try:
            ended = wait_for(api, scan(api, images[f"{ns}/app:1"])["id"], timeout=60)
            assert held.stalled
            assert ended["state"] == "failed" and ended["cause"]["code"] == "TIMEOUT", ended
            assert "3 s" in ended["cause"]["message"] and "Slim the image" in ended["cause"]["solution"]
            assert ended["attempts"] == 1  # a timeout is not retried
        finally:
            held.release()


def test_only_transient_registry_errors_are_retried(lifecycle: TestClient, registry: RegistryServer,
                                                    fault_proxy: ProxyFactory,
                                                    request: pytest.FixtureRequest) -> None:
    api, ns = lifecycle, f"retry{request.node.callspec.id}"
    for tag, n in (("busy", 311), ("refused", 312), ("gone", 313), ("blob", 314)):
        push(registry, f"{ns}/app", tag, app_image(n))
    proxy = fault_proxy(registry)
    _, images = connect(api, proxy.url)

    # 503 then 200: retried (after a backoff) within the scan, which succeeds.
    proxy.unavailable(rf"/{ns}/app/manifests/", times=1)
    busy = wait_for(api, scan(api, images[f"{ns}/app:busy"])["id"])
    assert busy["state"] == "succeeded" and busy["attempts"] == 1
    assert [r.status for r in proxy.matching(rf"/{ns}/app/manifests/sha256:")][:2] == [503, 200]

    # 401 and 404 are answers, not accidents: failed at once, one request each.
    proxy.clear()
    proxy.respond(rf"/{ns}/app/manifests/", 401, times=-1, body=b'{"errors":[{"code":"DENIED","message":"no"}]}',
                  headers={"Content-Type": "application/json"})
    refused = wait_for(api, scan(api, images[f"{ns}/app:refused"])["id"])
    assert (refused["state"], refused["cause"]["code"], refused["attempts"]) == ("failed", "AUTH_FAILED", 1)
    assert proxy.count(rf"/{ns}/app/manifests/") == 1

    proxy.clear()
    proxy.respond(rf"/{ns}/app/manifests/", 404, times=-1, headers={"Content-Type": "application/json"},
                  body=b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    gone = wait_for(api, scan(api, images[f"{ns}/app:gone"])["id"])
    assert (gone["state"], gone["cause"]["code"], gone["attempts"]) == ("failed", "IMAGE_NOT_FOUND", 1)
    assert "Synchronise" in gone["cause"]["solution"]
    assert proxy.count(rf"/{ns}/app/manifests/") == 1

    proxy.clear()
    layer = layer_digest(app_image(314))
    proxy.respond(rf"/blobs/{layer}", 404, times=-1, headers={"Content-Type": "application/json"},
                  body=b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
    blob = wait_for(api, scan(api, images[f"{ns}/app:blob"])["id"])
    assert (blob["state"], blob["cause"]["code"], blob["attempts"]) == ("failed", "NOT_FOUND", 1)
    assert proxy.count(rf"/blobs/{layer}") == 1


def test_an_unreachable_registry_is_retried_with_backoff(tmp_path: Path, database_url: str,
                                                         registry: RegistryServer, fault_proxy: ProxyFactory,
                                                         request: pytest.FixtureRequest) -> None:
    ns = f"down{request.node.callspec.id}"
    digest = push(registry, f"{ns}/app", "1", app_image(321))
    port = free_port()
    settings = make_settings(tmp_path, database_url, retry_delay=0.5, scan_attempts=4)
    with running(settings) as api:
        # Listed while up, then down: the scan fails to connect and waits to be tried again.
        up = fault_proxy(registry, port=port)
        _, images = connect(api, up.url)
        up.stop()
        started = scan(api, images[f"{ns}/app:1"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = api.get(f"/api/v1/scans/{started['id']}").json()
            if waiting["state"] == "queued" and waiting["attempts"] >= 1:
                break
            time.sleep(0.05)
        assert (waiting["state"], waiting["cause"]) == ("queued", None), waiting
        assert waiting["progress_text"].startswith("retrying in 0.5 s") and waiting["retry_at"] is not None
        back = fault_proxy(registry, port=port)  # the registry comes back where it was
        done = wait_for(api, started["id"])
        assert done["state"] == "succeeded" and done["digest"] == digest and done["attempts"] >= 2, done
        assert back.count(r"/manifests/") >= 1

        # Down for good: tried scan_attempts times, then failed with the cause.
        back.stop()
        again = scan(api, images[f"{ns}/app:1"])
        failed = wait_for(api, again["id"], timeout=120)
        assert (failed["state"], failed["cause"]["code"], failed["attempts"]) == ("failed", "REGISTRY_UNREACHABLE", 4)


class CountingCache:
    """The engine's layer cache, with the walks it stores counted by diff_id."""

    def __init__(self, inner: LayerStore) -> None:
        self.inner = inner
        self.puts: dict[str, int] = {}

    def get(self, diff_id: str, key: str) -> LayerFacts | None:
        return self.inner.get(diff_id, key)

    def has(self, diff_id: str, key: str) -> bool:
        return self.inner.has(diff_id, key)

    def put(self, facts: LayerFacts) -> None:
        self.puts[facts.diff_id] = self.puts.get(facts.diff_id, 0) + 1
        self.inner.put(facts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_concurrent_scans_sharing_a_base_layer_walk_it_once(api: TestClient, registry: RegistryServer,
                                                            fault_proxy: ProxyFactory,
                                                            request: pytest.FixtureRequest) -> None:
    ns = f"shared{request.node.callspec.id}"
    base = Layer(layer_tar([FileSpec("etc", type="d"), ("etc/os-release", f"ID=alpine\nVERSION_ID=3.19.{ns}\n"),
                            ("etc/base-of", ns)]))
    one, two = app_image(331, base), app_image(332, base)
    push(registry, f"{ns}/one", "1", one)
    push(registry, f"{ns}/two", "1", two)
    base_blob, base_diff = layer_digest(one, 0), sha256(base.tar)
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{base_blob}")
    svc: Service = api.app.state.service  # type: ignore[attr-defined]
    assert svc.engine.cache is not None
    counting = CountingCache(svc.engine.cache)
    svc.engine.cache = counting  # type: ignore[assignment]
    _, images = connect(api, proxy.url)

    first = scan(api, images[f"{ns}/one:1"])
    assert held.wait_stalled()  # the first scan is walking the base layer
    second = scan(api, images[f"{ns}/two:1"])
    # Until the second scan either waits for the first's walk or (without single-flight) downloads the layer too.
    deadline = time.monotonic() + 60
    while svc.engine.flights.waiting() == 0 and proxy.count(rf"/blobs/{base_blob}") < 2:
        assert time.monotonic() < deadline, "the second scan never reached the shared layer"
        time.sleep(0.02)
    held.release()
    assert wait_for(api, first["id"])["state"] == "succeeded"
    assert wait_for(api, second["id"])["state"] == "succeeded"
    assert proxy.count(rf"/blobs/{base_blob}", method="GET") == 1
    assert counting.puts[base_diff] == 1


def test_the_same_digest_queued_twice_runs_once(lifecycle: TestClient, registry: RegistryServer,
                                                fault_proxy: ProxyFactory, request: pytest.FixtureRequest) -> None:
    api, ns = lifecycle, f"twice{request.node.callspec.id}"
    img = app_image(341)
    push(registry, f"{ns}/app", "1.0", img)
    push(registry, f"{ns}/app", "latest", img)  # the same digest under a second tag
    proxy = fault_proxy(registry)
    held = proxy.hold(rf"/blobs/{layer_digest(img)}")
    registry_id, images = connect(api, proxy.url)
    first = scan(api, images[f"{ns}/app:1.0"])
    again = scan(api, images[f"{ns}/app:1.0"])  # still queued, or running (held): the same scan either way
    assert again["id"] == first["id"]
    assert held.wait_stalled()
    other_tag = scan(api, images[f"{ns}/app:latest"])
    assert other_tag["id"] == first["id"] and other_tag["state"] == "running"
    held.release()
    assert wait_for(api, first["id"])["state"] == "succeeded"
    assert api.get("/api/v1/scans", params={"registry": registry_id}).headers["X-Total-Count"] == "1"
    assert proxy.count(rf"/blobs/{layer_digest(img)}", method="GET") == 1
