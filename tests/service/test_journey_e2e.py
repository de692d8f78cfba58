"""Issue 11's end-to-end journey, with real processes only: `hullscan serve` started as a user starts it (a fresh data
directory, HULLSCAN_ADMIN_PASSWORD), Debian's docker-registry notifying it of pushes, `hullscan gate` in front of
that registry, and `skopeo` pulling through the gate.

connect the registry -> automatic scanning and blocking (HIGH) on a namespace -> push a vulnerable image -> the
automatic scan succeeds -> `skopeo copy` through the gate fails with Harbor's 412 and the reason -> allowlist the
blocking findings -> the same `skopeo copy` succeeds.

Each step is one function. Two are the console's in the issue ("see the scan", "allowlist the findings"): they go
through the REST API until the console lands, and are the ones to replace with the browser steps then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hullscan.findings import severity_rank
from hullscan.imagebuild import Image, Layer, layer_tar
from hullscan.vulndb.store import build_from_paths
from tests.service.conftest import ADMIN, OSV_EXTRACT, wait_for
from tests.service.images import lodash_image, push
from tests.service.live import GateProcess, ServeProcess, skopeo_pull
from tests.support.registry import RegistryServer, notifications, open_registry

pytestmark = pytest.mark.timeout(600)
NAMESPACE, REPOSITORY, TAG = "shop", "shop/web", "1.0"
THRESHOLD = "HIGH"
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
HARBOR_REASON = ("cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of "
                 "\"High\" or higher from running.'")


def _until(what: Callable[[], Any], timeout: float = 120) -> Any:
    """Poll `what()` until it returns something truthy (a bound against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


# -- the steps --------------------------------------------------------------------------------------------------------


def start_service(data_dir: Path, work: Path) -> ServeProcess:
    """`hullscan serve --data-dir DIR` on a fresh data directory; the vulnerability database is the real OSV
    extract the tests keep, built where the service looks for it by default (<data_dir>/db/hullscan.db)."""
    (data_dir / "db").mkdir(parents=True)
    build_from_paths(data_dir / "db" / "hullscan.db", [OSV_EXTRACT])
    (work / "empty.toml").write_text("")  # no user config file leaks in
    return ServeProcess(data_dir, {"HULLSCAN_ADMIN_PASSWORD": ADMIN[1], "HULLSCAN_CONFIG": str(work / "empty.toml"),
                                   "HULLSCAN_CACHE_DIR": str(work / "cache"), "HULLSCAN_POOL_WORKERS": "0"}).start()


def connect_registry(api: httpx.Client, service_url: str, root: Path) -> tuple[dict[str, Any], RegistryServer]:
    """Add the registry, then start it with notifications to the service's Distribution hook and its token (both
    exist once the registry is added), then give the service its address and test the connection."""
    created = api.post("/api/v1/registries", json={"name": "local", "type": "distribution",
                                                    "url": "http://127.0.0.1:9", "insecure": True})
    assert created.status_code == 201, created.text
    reg: dict[str, Any] = created.json()
    hook = f"{service_url}/api/v1/hooks/distribution/{reg['id']}"
    registry = open_registry(root, extra={"notifications": notifications(hook, reg["hook_token"])})
    api.patch(f"/api/v1/registries/{reg['id']}", json={"url": registry.url}).raise_for_status()
    assert api.post(f"/api/v1/registries/{reg['id']}/test").json()["ok"] is True
    return reg, registry


def create_namespace(api: httpx.Client, registry: RegistryServer, registry_id: int) -> None:
    """A namespace is configurable once it exists: a first (clean) push makes it known through the push hook."""
    push(registry, f"{NAMESPACE}/hello", "1", Image([Layer(layer_tar([("srv/hello", "hello\n")]))]))
    assert _until(lambda: api.get("/api/v1/images", params={"registry": registry_id,
                                                            "repository": f"{NAMESPACE}/hello"}).json())


def enable_auto_scan_and_blocking(api: httpx.Client, registry_id: int) -> dict[str, Any]:
    put = api.put(f"/api/v1/registries/{registry_id}/namespaces/{NAMESPACE}",
                  json={"auto_scan": True, "block": {"enabled": True, "severity": THRESHOLD}, "allowlist": []})
    assert put.status_code == 200, put.text
    settings: dict[str, Any] = put.json()
    return settings


def push_vulnerable_image(registry: RegistryServer) -> str:
    """lodash 4.17.11 (GHSA-jf85-cpcp-j695 = CVE-2019-10744, critical, in the real OSV extract); its digest."""
    return push(registry, REPOSITORY, TAG, lodash_image())


def see_the_scan(api: httpx.Client, registry_id: int) -> dict[str, Any]:
    """The automatic scan the push started, once it has ended. Console step: to become the browser's image page."""
    scans = _until(lambda: api.get("/api/v1/scans", params={"registry": registry_id}).json())
    assert [(s["repository"], s["tag"], s["trigger"]) for s in scans] == [(REPOSITORY, TAG, "push")]
    return wait_for(api, scans[0]["id"])


def blocking_findings(api: httpx.Client, scan_id: int) -> list[str]:
    """Ids of the vulnerabilities at or above the namespace's threshold, from the scan's report."""
    report = api.get(f"/api/v1/scans/{scan_id}/report", params={"format": "json"}).json()
    floor = severity_rank(THRESHOLD)
    return sorted({f["id"] for f in report["vulnerabilities"] if severity_rank(f["severity"]) >= floor})


def allowlist(api: httpx.Client, registry_id: int, ids: list[str]) -> None:
    """Allowlist every blocking finding, with a reason. Console step: to become the namespace settings page's
    allowlist editor."""
    path = f"/api/v1/registries/{registry_id}/namespaces/{NAMESPACE}"
    current = api.get(path).json()  # a PUT sets every setting: keep the others as they are
    entries = [{"id": i, "reason": "lodash is not reachable from user input in this build"} for i in ids]
    put = api.put(path, json={"auto_scan": current["auto_scan"], "block": current["block"], "allowlist": entries})
    assert put.status_code == 200, put.text
    assert put.json()["block"]["enabled"] is True


# -- the journey ------------------------------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServeProcess]:
    process = start_service(tmp_path / "data", tmp_path)
    try:
        yield process
    finally:
        process.stop()


def test_push_scan_refuse_allowlist_pull(service: ServeProcess, tmp_path: Path) -> None:
    with service.client() as api:
        reg, registry = connect_registry(api, service.url, tmp_path / "registry")
        gate: GateProcess | None = None
        try:
            create_namespace(api, registry, reg["id"])
            settings = enable_auto_scan_and_blocking(api, reg["id"])
            assert settings["auto_scan"] is True and settings["block"]["enabled"] is True
            digest = push_vulnerable_image(registry)

            scan = see_the_scan(api, reg["id"])
            assert scan["state"] == "succeeded", scan
            assert scan["digest"] == digest
            ids = blocking_findings(api, scan["id"])
            assert ids == ["CVE-2019-10744"], ids  # GHSA-jf85-cpcp-j695, named by its CVE alias

            gate = GateProcess(service.data_dir, reg["name"]).start()
            for reference in (TAG, digest):
                # skopeo shows the registry error's message (it prints no status, and "unknown" for a code it
                # does not know), so the wire answer is checked too: Harbor's 412 and code.
                separator = "@" if reference == digest else ":"
                refused = skopeo_pull(f"{gate.listen}/{REPOSITORY}{separator}{reference}", tmp_path / "pulled")
                assert refused.returncode != 0, reference
                logged = ("current image with 1 vulnerability " + HARBOR_REASON).replace('"', '\\"')  # logfmt quotes
                assert logged in refused.stderr, refused.stderr
                assert not (tmp_path / "pulled" / "index.json").exists()
                answer = httpx.get(f"{gate.url}/v2/{REPOSITORY}/manifests/{reference}", headers=ACCEPT)
                assert answer.status_code == 412, answer.text
                assert answer.json()["errors"][0]["code"] == "PROJECTPOLICYVIOLATION"
                assert HARBOR_REASON in answer.json()["errors"][0]["message"]
                assert httpx.head(f"{gate.url}/v2/{REPOSITORY}/manifests/{reference}", headers=ACCEPT).status_code \
                    == 412

            allowlist(api, reg["id"], ids)
            pulled = skopeo_pull(f"{gate.listen}/{REPOSITORY}:{TAG}", tmp_path / "pulled")
            assert pulled.returncode == 0, pulled.stderr
            assert (tmp_path / "pulled" / "index.json").is_file()
            assert api.get(f"/api/v1/registries/{reg['id']}/pullable",
                           params={"repository": REPOSITORY, "reference": TAG}).json()["pullable"] is True
        finally:
            if gate is not None:
                gate.stop()
            registry.stop()
