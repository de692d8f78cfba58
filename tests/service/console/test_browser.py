"""The console in a real browser (Debian's Chromium, driven by Playwright) against the real service on a real port
and the real local registry: the user journeys of issue 11, with a screenshot of every page, and a page fed hostile
names from an image that runs no script.

One service, registry and browser serve the whole module (starting them is most of the cost). Between the service
and registry A sits the test proxy: it passes everything through, except one layer download of `team/big` it holds,
so that a scan stays running long enough to be stopped. An untagged image comes the way the service learns of
one: Harbor's push webhook for a manifest pushed by digest (Harbor cannot run here: the test sends its webhook, in
the format of shared/specs/harbor-api, for a manifest really pushed to the real registry behind the Harbor fake of
tests/support/fakes.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.service.notify.signing import verify
from tests.service.conftest import ADMIN, make_settings, wait_for, wait_sync
from tests.service.console import images
from tests.service.console.browser import Watched, chromium, expect, flash, log_in, needs_chromium, row, watch
from tests.service.live import LiveService
from tests.support.fakes import FakeServer, fake_harbor
from tests.support.proxy import FaultProxy
from tests.support.receiver import Receiver
from tests.support.registry import RegistryServer, open_registry

pytestmark = [needs_chromium, pytest.mark.timeout(900)]
APP_1, APP_2 = "team/app:1.0", "team/app:1.1"
HOSTILE_REPO = "zone/" + "/".join(["deep"] * 8) + "/hostile"  # a long path: the registry allows no markup in names
HOSTILE_TAG = "t" * 128  # the longest tag the registry accepts


@dataclass
class World:
    live: LiveService
    registry: RegistryServer  # A: plain
    proxy: FaultProxy  # in front of A: what the console is told to connect to
    harbor: FakeServer  # Harbor's API over registry A
    harbor_id: int  # hullscan's registry row for it
    hook_token: str  # its inbound-hook token
    big_layer: str  # the digest of team/big's own layer, held by the proxy when asked
    workdir: Path

    @property
    def url(self) -> str:
        return self.live.url

    def api(self) -> httpx.Client:
        return self.live.client()


def _big() -> Image:
    # A layer of its own (nothing else shares its digest), so holding its download holds only this scan.
    return Image([Layer(layer_tar([FileSpec("etc", type="d"), ("etc/os-release", "ID=alpine\nVERSION_ID=3.18.0\n"),
                                   ("srv/big.bin", b"\x00" * 4096 + b"big")]))])


def layer_digest(image: Image, index: int) -> str:
    return "sha256:" + hashlib.sha256(image.layers[index].blob).hexdigest()


def _push_by_digest(registry: RegistryServer, repo: str, image: Image, workdir: Path) -> str:
    """Upload an image's blobs and then its manifest by digest, with no tag: an untagged manifest."""
    layout = Path(tempfile.mkdtemp(dir=workdir))
    write_oci_layout(layout, image, "latest")
    index = json.loads((layout / "index.json").read_text())
    descriptor = index["manifests"][0]
    algorithm, hex_ = descriptor["digest"].split(":")
    manifest = (layout / "blobs" / algorithm / hex_).read_bytes()
    blobs = {}
    for entry in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
        a, h = entry["digest"].split(":")
        blobs[entry["digest"]] = (layout / "blobs" / a / h).read_bytes()
    return registry.upload(repo, descriptor["digest"], manifest, descriptor["mediaType"], blobs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("console")
    registry = open_registry(tmp / "registry-a")
    registry.push_images(images.base(), "team/base:1.0", tmp)
    registry.push_images(images.app(), APP_1, tmp)
    registry.push_images(_big(), "team/big:1.0", tmp)
    registry.push_images(images.hostile(), f"{HOSTILE_REPO}:{HOSTILE_TAG}", tmp)
    proxy = FaultProxy(registry.url).start()
    harbor = fake_harbor(registry.url)
    live = LiveService(make_settings(tmp, f"sqlite:///{tmp / 'service.db'}")).start()
    try:
        with live.client() as api:
            created = api.post("/api/v1/registries", json={"name": "harbor", "type": "harbor", "url": harbor.url,
                                                           "insecure": True, "username": "robot$scanner",
                                                           "password": "harbor-secret"}).json()
        big_layer = layer_digest(_big(), 0)
        yield World(live, registry, proxy, harbor, created["id"], created["hook_token"], big_layer, tmp)
    finally:
        live.stop()
        harbor.stop()
        proxy.stop()
        registry.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture
def w(browser: Any) -> Iterator[Watched]:
    watched = watch(browser)
    try:
        yield watched
    finally:
        watched.page.close()


def registry_id(world: World, name: str) -> int:
    with world.api() as api:
        return int(api.get("/api/v1/registries", params={"name": name}).json()[0]["id"])


def test_journey(world: World, w: Watched) -> None:
    page, base = w.page, world.url

    # Log in. The session cookie is out of any script's reach and never sent by another site's page.
    log_in(w, base, shot="01-login")
    session = next(c for c in page.context.cookies() if c["name"] == "hullscan_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    w.shot("02-dashboard-empty")

    # Connect the local registry (through the test proxy), see its hook token once, test the connection.
    page.get_by_role("link", name="Registries").click()
    page.get_by_label("Name", exact=True).fill("local")
    page.get_by_label("Address").fill(world.proxy.url)
    page.get_by_label("Plain HTTP or an unverified certificate").check()
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator("#created-title")).to_contain_text("local is connected")
    assert page.locator("#hook-token").inner_text().startswith("hs_")
    w.shot("03-registry-added")
    row(w, "local").get_by_role("button", name="Test connection").click()
    assert "Connection works" in flash(w)

    # A registry that cannot be reached: the test says why, with the catalogue's cause and solution.
    page.get_by_label("Name", exact=True).fill("unreachable")
    page.get_by_label("Address").fill("http://127.0.0.1:9")
    page.get_by_role("button", name="Connect", exact=True).click()
    row(w, "unreachable").get_by_role("button", name="Test connection").click()
    message = flash(w)
    assert "REGISTRY_UNREACHABLE" in message and "What to do" in message
    w.shot("04-test-connection-failed")

    # Synchronise, and the repositories appear (the page refreshes itself while the sync runs).
    page.get_by_role("link", name="local", exact=True).click()
    page.get_by_role("button", name="Synchronise").click()
    assert "Synchronisation of local started" in flash(w)
    expect(page.locator("#repo-title")).to_contain_text("(4)", timeout=60_000)
    expect(row(w, "team/app")).to_be_visible()
    w.shot("05-registry-synchronised")

    # Scan the base, then the application: press Scan and watch it run to the end.
    page.get_by_role("link", name="team/base").click()
    page.get_by_role("button", name="Scan 1.0").click()
    assert "is queued" in flash(w) or "is running" in flash(w)
    expect(row(w, "1.0").locator(".state")).to_have_text("succeeded", timeout=120_000)
    page.get_by_role("link", name="local").click()
    page.get_by_role("link", name="team/app").click()
    # The app's own layer is held for a moment, so the page is sure to show the scan running before it ends.
    held = world.proxy.hold(re.escape(layer_digest(images.app(), 1)), after_bytes=64)
    page.get_by_role("button", name="Scan 1.0").click()
    assert held.wait_stalled(60)
    expect(row(w, "1.0").locator(".scan-cell .state")).to_have_text("running", timeout=30_000)  # refreshed in place
    expect(row(w, "1.0").locator(".scan-cell progress")).to_be_visible()
    expect(row(w, "1.0").get_by_role("button", name="Stop")).to_be_visible()
    w.shot("06-repository-scan-running")
    held.release()
    expect(row(w, "1.0").locator(".scan-cell .state")).to_have_text("succeeded", timeout=120_000)
    w.shot("07-repository-scanned")

    # The report: summary, tabs, the layer and origin of each finding.
    row(w, "1.0").locator(".scan-cell a").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("team/app:1.0")
    findings = page.locator("table.findings tbody tr")
    assert findings.count() == 5  # lodash (2), express, PyYAML, py
    assert page.locator("table.findings .tag.base").count() == 2  # PyYAML and py come from team/base
    assert page.locator("table.findings .tag.own").count() == 3  # lodash and express: the app's own layer
    w.shot("08-report-vulnerabilities")
    for tab, shot, expected in (("Sensitive information", "09-report-secrets", "github-pat"),
                                ("Software", "10-report-software", "lodash"),
                                ("Base image", "11-report-base-image", "team/base")):
        page.get_by_role("navigation", name="Scan items").get_by_role("link", name=re.compile(f"^{tab} ")).click()
        expect(page.locator("#tab-title")).to_contain_text(tab)
        expect(page.locator("#findings")).to_contain_text(expected)
        w.shot(shot)
    for tab in ("Malicious files", "Files", "Baseline", "Compliance"):
        page.get_by_role("navigation", name="Scan items").get_by_role("link", name=re.compile(f"^{tab} ")).click()
        expect(page.locator("#tab-title")).to_contain_text(tab)
    w.shot("12-report-compliance")

    # Filters: severity, fixed/unfixed, package, layer.
    page.get_by_role("navigation", name="Scan items").get_by_role("link", name=re.compile("^Vulnerabilities ")).click()
    page.get_by_role("checkbox", name="Critical").check()
    page.get_by_role("button", name="Apply").click()
    assert {r.inner_text().split("\n")[0] for r in findings.locator("td:nth-child(3)").all()} == {"lodash"}
    w.shot("13-report-filtered-critical")
    page.get_by_role("checkbox", name="Critical").uncheck()
    page.get_by_label("Fix").select_option("unfixed")
    page.get_by_role("button", name="Apply").click()
    assert [r.inner_text().split("\n")[0] for r in findings.locator("td:nth-child(3)").all()] == ["py"]
    page.get_by_label("Fix").select_option("")
    page.get_by_label("Package").fill("express")
    page.get_by_role("button", name="Apply").click()
    assert [r.inner_text().split("\n")[0] for r in findings.locator("td:nth-child(3)").all()] == ["express"]
    page.get_by_label("Package").fill("")
    page.get_by_label("Layer").select_option("0")
    page.get_by_role("button", name="Apply").click()
    assert {r.inner_text().split("\n")[0] for r in findings.locator("td:nth-child(3)").all()} == {"pyyaml", "py"}
    assert findings.locator(".tag.own").count() == 0

    # Export: each format downloads from the API with the session, as the CLI would write it.
    for label, check in (("JSON", lambda d: any(c["id"] == "github-pat" for c in d["checks"])),
                         ("SARIF", lambda d: d["version"] == "2.1.0"),
                         ("CycloneDX", lambda d: d["bomFormat"] == "CycloneDX"),
                         ("SPDX JSON", lambda d: d["spdxVersion"] == "SPDX-2.3")):
        with page.expect_download() as download:
            page.get_by_role("link", name=label, exact=True).click()
        assert check(json.loads(Path(download.value.path()).read_text())), label
    for label, expected in (("SPDX tag-value", "SPDXVersion: SPDX-2.3"), ("HTML", "github-pat")):
        with page.expect_download() as download:
            page.get_by_role("link", name=label, exact=True).click()
        assert expected in Path(download.value.path()).read_text(), label

    # A rebuild fixes express: synchronise, scan again, and the report says what changed.
    world.registry.push_images(images.app(express="4.20.0"), APP_1, world.workdir)
    page.goto(f"{base}/ui/registries")
    row(w, "local").get_by_role("button", name="Synchronise").click()
    expect(page.locator(".sync .state").first).to_have_text("succeeded", timeout=60_000)
    page.get_by_role("link", name="team/app").click()
    page.get_by_role("button", name="Scan 1.0").click()
    expect(row(w, "1.0").locator(".scan-cell .state")).to_have_text("succeeded", timeout=120_000)
    row(w, "1.0").locator(".scan-cell a").click()
    diff = page.locator("#diff-title").locator("xpath=..")
    expect(diff).to_contain_text("0 new, 1 fixed")
    expect(diff).to_contain_text("express")
    w.shot("14-report-difference")

    # Namespace settings: block HIGH and above, and the image may no longer be pulled...
    report_url = page.url
    critical = page.locator("table.findings tbody tr", has_text="lodash").filter(has_text="CRITICAL")
    vuln_id = critical.locator("td:nth-child(2)").inner_text().split()[0]
    local = registry_id(world, "local")
    page.goto(f"{base}/ui/registries/{local}")
    row(w, "team").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Namespace team")
    page.get_by_label("Prevent pulls of vulnerable images").check()
    page.get_by_label("Block when a vulnerability").select_option("HIGH")
    page.get_by_role("button", name="Save settings").click()
    assert "Settings of team saved: 0 allowlist entries" in flash(w)
    with world.api() as api:
        decision = api.get(f"/api/v1/registries/{local}/pullable", params={"repository": "team/app",
                                                                     "reference": "1.0"}).json()
    assert decision["pullable"] is False
    assert decision["reasons"][0].startswith("current image with 1 vulnerability cannot be pulled")
    page.goto(f"{base}/ui/registries/{local}/images?repository=team%2Fapp")  # the page says so too
    expect(row(w, "1.0").locator("td.pull")).to_contain_text("blocked")
    expect(row(w, "1.0").locator("td.pull")).to_contain_text("current image with 1 vulnerability cannot be pulled")
    w.shot("15-repository-pull-blocked")

    # ...until lodash's critical finding is allowlisted, with a reason and an expiry, from its report row.
    page.goto(report_url)
    critical.get_by_role("link", name="Allowlist…").click()
    assert page.get_by_label("New vulnerability ID, row 1").input_value() == vuln_id
    page.get_by_label("Reason, row 1").fill("lodash template is not used; replacement planned")
    page.get_by_label("Expires, row 1").fill("2031-01-31")
    w.shot("16-namespace-settings")
    page.get_by_role("button", name="Save settings").click()
    assert "Settings of team saved: 1 allowlist entry" in flash(w)
    assert page.get_by_label("Vulnerability ID, row 1").input_value() == vuln_id
    assert page.get_by_label("Expires, row 1").input_value() == "2031-01-31"
    with world.api() as api:
        ns = api.get(f"/api/v1/registries/{local}/namespaces/team").json()
        assert ns["block"] == {"enabled": True, "severity": "HIGH", "unscanned": False, "kev": False}
        assert ns["allowlist"] == [{"id": vuln_id, "reason": "lodash template is not used; replacement planned",
                                    "expires_at": "2031-01-31T00:00:00Z"}]
        decision = api.get(f"/api/v1/registries/{local}/pullable", params={"repository": "team/app",
                                                                     "reference": "1.0"}).json()
    assert decision["pullable"] is True and decision["reasons"] == []
    page.goto(f"{base}/ui/registries/{local}/images?repository=team%2Fapp")
    expect(row(w, "1.0").locator("td.pull")).to_have_text("allowed")

    # Stop a running scan: its layer download is held, so it stays running until stopped.
    held_big = world.proxy.hold(re.escape(world.big_layer), after_bytes=64)
    page.goto(f"{base}/ui/registries/{local}/images?repository=team%2Fbig")
    page.get_by_role("button", name="Scan 1.0").click()
    assert held_big.wait_stalled(60)
    page.get_by_role("link", name="Scans").click()
    running = row(w, "team/big")
    expect(running.locator(".state")).to_have_text("running", timeout=30_000)
    expect(running.locator("progress")).to_be_visible()
    w.shot("17-scans-running")
    running.get_by_role("button", name=re.compile("Stop scan")).click()
    assert "is stopping" in flash(w) or "is stopped" in flash(w)
    expect(row(w, "team/big").locator(".state")).to_have_text("stopped", timeout=60_000)
    expect(row(w, "team/big")).to_contain_text("STOPPED")
    held_big.release()
    page.get_by_role("link", name=re.compile("^Stopped")).click()
    w.shot("18-scans-stopped")

    # A scan that fails says why and what to do: the registry now answers 404 for the image (deleted after the
    # last synchronisation).
    world.proxy.respond(r"/v2/team/big/manifests/", 404, times=-1,
                        body=b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                        headers={"Content-Type": "application/json"})
    page.goto(f"{base}/ui/registries/{local}/images?repository=team%2Fbig")
    page.get_by_role("button", name="Scan 1.0").click()
    expect(row(w, "1.0").locator(".scan-cell .state")).to_have_text("failed", timeout=120_000)
    page.get_by_role("link", name="Scans").click()
    page.get_by_role("link", name=re.compile("^Failed")).click()
    failed = row(w, "team/big")
    expect(failed.locator(".cause")).to_contain_text("NOT_FOUND")
    expect(failed.locator(".cause")).to_contain_text("What to do")
    # The cause names the image by its digest, one long word: it wraps inside its box instead of running over.
    assert failed.locator(".cause").evaluate("e => e.scrollWidth <= e.clientWidth")
    w.shot("19-scans-failed")

    # A synchronisation that fails shows its cause and solution too.
    page.goto(f"{base}/ui/registries")
    row(w, "unreachable").get_by_role("button", name="Synchronise").click()
    expect(page.locator(".sync .state", has_text="failed").first).to_be_visible(timeout=60_000)
    expect(page.locator(".cause").first).to_contain_text("REGISTRY_UNREACHABLE")
    w.shot("20-registries-sync-failed")
    w.accept_dialogs = True  # disconnecting asks first
    page.get_by_role("button", name="Disconnect").click()
    assert "The registry was disconnected" in flash(w) and w.dialogs[-1].startswith("confirm: Disconnect unreachable?")
    expect(page.locator("tbody")).not_to_contain_text("unreachable")
    w.accept_dialogs, w.dialogs = False, []

    # Schedules: a daily scan of the namespace.
    page.get_by_role("link", name="Schedules").click()
    page.get_by_label("Registry").select_option(label="local")
    page.get_by_label("Namespace (scans only)").fill("team")
    page.get_by_label("Cron").fill("0 2 * * *")
    page.get_by_role("button", name="Add schedule").click()
    assert re.search(r"Schedule \d+ created; it next runs \d{4}-\d\d-\d\d 02:00 UTC\.", flash(w))
    expect(row(w, "0 2 * * *")).to_contain_text("team")
    w.shot("21-schedules")

    # An untagged image (pushed by digest; Harbor's webhook says so) cannot be scanned, and the page says why.
    digest = _push_by_digest(world.registry, "team/tools", _big(), world.workdir)
    pushed = {"specversion": "1.0", "id": "console-untagged", "type": "harbor.artifact.pushed",
              "source": "/projects/1/webhook/policies/1", "datacontenttype": "application/json", "operator": "admin",
              "data": {"resources": [{"digest": digest, "tag": digest,
                                      "resource_url": f"{world.registry.host}/team/tools@{digest}"}],
                       "repository": {"name": "tools", "namespace": "team", "repo_full_name": "team/tools",
                                      "repo_type": "private"}}}
    hook = httpx.post(f"{base}/api/v1/hooks/harbor/{world.harbor_id}", json=pushed,
                      headers={"Authorization": f"Bearer {world.hook_token}"})
    assert hook.status_code == 200 and len(hook.json()["images"]) == 1, hook.text
    page.goto(f"{base}/ui/registries/{world.harbor_id}/images?repository=team%2Ftools")
    untagged = row(w, "untagged")
    expect(untagged.locator("code")).to_have_attribute("title", digest)
    expect(untagged.get_by_role("button", name="Scan")).to_be_disabled()
    expect(untagged.locator(".why")).to_contain_text("untagged images are not scanned on request")
    w.shot("22-repository-untagged")

    # The dashboard now has something to draw.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("svg.chart").first).to_be_visible()
    assert page.locator("svg.chart rect.seg").count() >= 1
    assert page.locator("svg.chart polyline.line").count() == 2
    w.shot("23-dashboard")
    assert not w.dialogs and not w.console_errors, (w.dialogs, w.console_errors)

    # Log out: the session ends, the pages ask for a login again.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to hullscan")
    page.goto(f"{base}/ui/scans")
    assert "/ui/login" in page.url


def test_users_and_tokens(world: World, w: Watched) -> None:
    page, base = w.page, world.url
    w.accept_dialogs = True  # revoking and deleting ask first
    log_in(w, base)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill("carol-has-a-long-passphrase")
    page.get_by_role("button", name="Add user").click()
    assert "User carol created" in flash(w)
    expect(page.get_by_role("heading", level=1)).to_have_text("carol")

    # Roles: maintainer of the namespace `team` of the first registry that has one.
    namespace = page.get_by_label("Namespace, row 1")
    label = next(o for o in namespace.locator("option").all_inner_texts() if o.endswith("/ team"))
    namespace.select_option(label=label)
    page.get_by_label("Role, row 1").select_option("maintainer")
    page.get_by_role("button", name="Save roles").click()
    assert "Roles saved: 1 namespace" in flash(w)
    w.shot("24-user")
    page.get_by_role("button", name="Disable").click()
    assert "Disabled" in flash(w)
    page.get_by_role("button", name="Enable").click()

    # carol logs in, makes a token (shown once) and uses it; then revokes it and it stops working.
    log_in(w, base, "carol", "carol-has-a-long-passphrase")
    assert page.get_by_role("link", name="Users").count() == 0  # not an admin
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Expires (optional)").fill("2031-06-30")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("hs_")
    w.shot("25-token-created")
    with httpx.Client(base_url=base) as client:
        me = client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == "carol"
        page.reload()
        assert token not in page.content()  # shown once: a reload does not show it again
        row(w, "ci").get_by_role("button", name="Revoke ci").click()
        assert "revoked" in flash(w)
        assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    w.shot("26-tokens")

    # Back as admin: the system-wide allowlist, and the namespace team reusing it.
    log_in(w, base)
    page.get_by_role("link", name="System allowlist").click()
    page.get_by_label("New vulnerability ID, row 1").fill("CVE-2022-42969")
    page.get_by_label("Reason, row 1").fill("py's ReDoS is in code no image of ours calls")
    page.get_by_role("button", name="Save the system allowlist").click()
    assert page.get_by_label("Vulnerability ID, row 1").input_value() == "CVE-2022-42969"
    w.shot("28-system-allowlist")
    local = registry_id(world, "local")
    page.goto(f"{base}/ui/registries/{local}/namespaces/team")
    page.get_by_label("Also use the system-wide allowlist").check()
    page.get_by_role("button", name="Save settings").click()
    assert "Settings of team saved" in flash(w)
    page.get_by_text("The system-wide allowlist (1)").click()
    expect(page.locator("#allowlist details")).to_contain_text("CVE-2022-42969")
    with world.api() as api:
        assert api.get(f"/api/v1/registries/{local}/namespaces/team").json()["reuse_system_allowlist"] is True
        assert [e["id"] for e in api.get("/api/v1/allowlist").json()["allowlist"]] == ["CVE-2022-42969"]

    # Delete carol.
    page.goto(f"{base}/ui/users")
    page.get_by_role("link", name="carol").click()
    page.get_by_role("button", name="Delete user").click()
    assert "User deleted" in flash(w)
    expect(page.locator("tbody")).not_to_contain_text("carol")
    w.shot("27-users")


@pytest.fixture(scope="module")
def hostile_scan(world: World) -> tuple[int, int]:
    """The hostile image synchronised (registry `direct`, no proxy) and scanned: (registry id, scan id)."""
    with world.api() as api:
        reg = api.post("/api/v1/registries", json={"name": "direct", "type": "distribution",
                                                   "url": world.registry.url, "insecure": True}).json()
        api.post(f"/api/v1/registries/{reg['id']}/sync")
        assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
        image = api.get("/api/v1/images", params={"registry": reg["id"], "repository": HOSTILE_REPO}).json()[0]
        scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
        assert scan["state"] == "succeeded", scan
    return reg["id"], scan["id"]


def test_hostile_names_from_an_image_run_no_script(world: World, w: Watched, hostile_scan: tuple[int, int]) -> None:
    """An image whose package names, versions, licences and paths are markup and script, with a long repository
    and tag: every tab of its report shows them as text, no dialog opens, no element is injected, the CSP holds."""
    registry_id, scan_id = hostile_scan
    page, base = w.page, world.url
    # The canary works: the same markup on a page that neither escapes it nor has a policy sets the global.
    page.set_content(f"<p>{images.XSS_CANARY}</p>")
    page.wait_for_function("window.hullscanpwned === 1")
    log_in(w, base)
    pages = [f"/ui/registries/{registry_id}", f"/ui/registries/{registry_id}/images?repository={HOSTILE_REPO}",
             "/ui/scans"] + [f"/ui/scans/{scan_id}?tab={t}" for t in ("vuln", "software", "file", "secret",
                                                                          "compliance", "baseline", "base")]
    shots = {pages[1]: "30-hostile-repository", pages[4]: "31-hostile-software", pages[5]: "32-hostile-files",
             pages[6]: "33-hostile-secrets"}
    seen = ""
    for path in pages:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        page.wait_for_timeout(300)  # time for anything that would run, to run
        assert page.evaluate("typeof window.hullscanpwned") == "undefined", path  # the canary's script never ran
        # Nothing became markup: no image with src=x, no svg with onload, no bold licence, only our own script.
        assert page.locator("img[src='x'], svg[onload], b[onmouseover], [onerror], [onload]").count() == 0, path
        assert [s.get_attribute("src") for s in page.locator("script").all()] == ["/ui/static/console.js"], path
        seen += page.inner_text("main")
        if path in shots:
            w.shot(shots[path])
    for text in images.HOSTILE_STRINGS:  # ...and they are there, as text
        assert text in seen or text[:40] in seen, text
    assert HOSTILE_TAG in seen
    assert not w.dialogs, w.dialogs
    assert not [e for e in w.console_errors if "Content Security Policy" in e], w.console_errors


def test_keyboard(world: World, w: Watched, hostile_scan: tuple[int, int]) -> None:
    """Log in, skip to the content, move through the navigation and switch report tabs with the keyboard alone."""
    page, base = w.page, world.url
    page.context.clear_cookies()
    page.goto(f"{base}/ui/login")
    assert page.evaluate("document.activeElement.id") == "username"  # the form has the focus
    page.keyboard.type(ADMIN[0])
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    page.keyboard.press("Tab")  # the skip link comes first, and leads to the content
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Shift+Tab")  # back into the navigation
    for _ in range(30):  # Tab until the navigation's "Scans" link, then follow it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Scans":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scans")
    page.goto(f"{base}/ui/scans/{hostile_scan[1]}")
    tab = page.get_by_role("navigation", name="Scan items").get_by_role("link", name=re.compile("^Software"))
    tab.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#tab-title")).to_contain_text("Software")


def test_webhooks(world: World, w: Watched, hostile_scan: tuple[int, int]) -> None:
    """A webhook of the namespace `team` posting to a real receiver: added in its settings (the generated secret
    shown once), pinged, told of a scan pressed in the console, the delivery seen in its log, redelivered; a
    receiver that fails for a while shows the retry in the log until the delivery gets through."""
    registry_id = hostile_scan[0]  # `direct`: the registry without the test proxy
    page, base = w.page, world.url
    receiver = Receiver().start()
    try:
        log_in(w, base)
        page.goto(f"{base}/ui/registries/{registry_id}/namespaces/team")
        page.get_by_role("link", name="its webhooks").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks of team")
        page.get_by_label("Name", exact=True).fill("ci")
        page.get_by_label("Address").fill(receiver.url)
        for event in ("A scan completed", "A scan failed", "A scan was stopped"):  # ticked for a new webhook
            expect(page.get_by_label(event)).to_be_checked()
        page.get_by_role("button", name="Add webhook").click()
        expect(page.locator("#created-title")).to_contain_text("Webhook ci added")
        secret = page.locator("#new-secret").inner_text()
        assert secret.startswith("whsec_")
        w.shot("40-webhook-added")
        page.goto(page.url)  # the list again: the secret is never shown twice
        assert secret not in page.content()

        # The test ping reaches the receiver, signed with the secret shown.
        row(w, "ci").get_by_role("button", name="Test ping ci").click()
        assert "Test ping delivered: the receiver answered 200." in flash(w)
        assert [verify(secret, r.body, r.headers["x-hullscan-signature"]) for r in receiver.of("PING")] == [True]

        # A scan pressed in the console: its completion is posted and logged.
        page.goto(f"{base}/ui/registries/{registry_id}/images?repository=team%2Fbase")
        page.get_by_role("button", name="Scan 1.0").click()
        expect(row(w, "1.0").locator(".scan-cell .state")).to_have_text("succeeded", timeout=120_000)
        assert receiver.wait(lambda r: len(r.of("SCANNING_COMPLETED")) == 1)
        posted = receiver.of("SCANNING_COMPLETED")[0]
        assert verify(secret, posted.body, posted.headers["x-hullscan-signature"])
        assert posted.json()["event_data"]["repository"]["repo_full_name"] == "team/base"
        page.goto(f"{base}/ui/registries/{registry_id}/namespaces/team/webhooks")
        page.get_by_role("link", name="ci", exact=True).click()
        delivered = row(w, "SCANNING_COMPLETED")
        expect(delivered.locator(".state")).to_have_text("delivered", timeout=60_000)  # refreshed in place
        expect(delivered.locator(".attempts")).to_have_text("1")
        expect(delivered.locator(".response")).to_have_text("200")
        w.shot("41-webhook-delivery-log")

        # Redeliver while the receiver answers 503 twice: the new delivery waits for its retry, then gets through.
        receiver.statuses = [503, 503]
        delivered.get_by_role("button", name=re.compile("^Redeliver")).click()
        assert re.search(r"Delivery \d+ sent again as delivery \d+\.", flash(w))
        again = page.locator("tbody tr").first  # newest first
        expect(again.locator(".response")).to_contain_text("503", timeout=60_000)
        expect(again.locator(".state")).to_have_text("pending")
        expect(again.locator(".next")).to_contain_text("UTC")  # when it is tried next
        w.shot("42-webhook-retry-pending")
        expect(again.locator(".state")).to_have_text("delivered", timeout=120_000)
        expect(again.locator(".attempts")).to_have_text("3")
        w.shot("43-webhook-redelivered")
        completed = receiver.of("SCANNING_COMPLETED")
        assert len(completed) == 4 and len({r.headers["x-hullscan-delivery"] for r in completed}) == 2
        assert {json.dumps(r.json()["event_data"], sort_keys=True) for r in completed} == {
            json.dumps(posted.json()["event_data"], sort_keys=True)}  # the same event each time

        # Edited on its page: a generated secret replaces the old one, shown once; the next ping is signed with it.
        page.get_by_text("Change its address, events").click()
        page.get_by_label("Generate a new one").check()
        page.get_by_label("Description (optional)").fill("edited in the console")
        w.shot("45-webhook-edit-form")
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#saved-title")).to_contain_text("saved with a new signing secret")
        replaced = page.locator("#new-secret").inner_text()
        assert replaced.startswith("whsec_") and replaced != secret
        w.shot("46-webhook-edited")
        page.get_by_role("button", name="Send a test ping").click()
        assert "Test ping delivered: the receiver answered 200." in flash(w)
        pinged = receiver.of("PING")[-1]
        assert verify(replaced, pinged.body, pinged.headers["x-hullscan-signature"])
        assert not verify(secret, pinged.body, pinged.headers["x-hullscan-signature"])
        assert replaced not in page.content()

        # The log filtered to the pings: the scan's deliveries are left out.
        page.get_by_label("Event", exact=True).select_option("PING")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#log-title")).to_contain_text("(2 matching the filters)")
        expect(page.locator("tbody tr")).to_have_count(2)
        w.shot("47-webhook-log-filtered")

        # Disabled: the admin's list of every webhook says so.
        page.get_by_role("button", name="Disable").click()
        assert "disabled" in flash(w)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        expect(row(w, "ci")).to_contain_text("disabled")
        expect(row(w, "ci")).to_contain_text("direct / team")
        w.shot("44-webhooks")
        assert secret not in page.content() and replaced not in page.content()
        assert not w.dialogs and not w.console_errors, (w.dialogs, w.console_errors)
    finally:
        receiver.stop()
