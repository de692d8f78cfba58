"""The console over HTTP, without a browser: sessions and their cookie, CSRF and same-origin checks on every form,
the security headers, roles, error pages, and escaping of hostile values from an image. The real service app (its
lifespan, migrations and executor) with the real local registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from hullscan.service.console.web import human_size
from hullscan.service.notify.signing import verify
from hullscan.service.storage.models import Registry
from tests.service.conftest import ADMIN, make_settings, running, wait_for, wait_sync
from tests.service.console import images
from tests.service.images import app_image, push
from tests.support.receiver import Receiver
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.timeout(300)
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with running(make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")) as client:
        yield client


def synced(api: TestClient, registry: RegistryServer) -> int:
    """The registry connected and synchronised; its id."""
    reg = api.post("/api/v1/registries", json={"name": "local", "type": "distribution", "url": registry.url,
                                               "insecure": True}).json()
    api.post(f"/api/v1/registries/{reg['id']}/sync")
    assert wait_sync(api, reg["id"])["last_sync"]["state"] == "succeeded"
    return int(reg["id"])


def log_in(client: TestClient, username: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    """Log in through the console's form; the session's CSRF token, read from a page's form."""
    client.cookies.clear()
    answer = client.post("/ui/login", data={"username": username, "password": password, "next": "/ui/registries"},
                         headers=ORIGIN, follow_redirects=False, auth=None)
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/registries", auth=None)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_pages_need_a_session_and_carry_the_security_headers(api: TestClient) -> None:
    first = api.get("/ui/scans?state=failed", auth=None, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=%2Fui%2Fscans%3Fstate%3Dfailed"
    assert api.get("/", auth=None, follow_redirects=False).headers["location"] == "/ui/"
    login = api.get("/ui/login", auth=None)
    csp = login.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert login.headers["x-frame-options"] == "DENY" and login.headers["x-content-type-options"] == "nosniff"
    assert "https://" not in login.text and "//cdn" not in login.text  # nothing from another site
    for asset in ("console.css", "console.js", "hullscan.svg"):
        served = api.get(f"/ui/static/{asset}", auth=None)
        assert served.status_code == 200 and "content-security-policy" in served.headers
    assert "content-security-policy" not in api.get("/healthz").headers  # the API is no page


def console_routes(api: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(api.app.routes):  # type: ignore[attr-defined]
        if route.path_format.startswith("/ui/") and route.path_format != "/ui/static":
            found += [(m, route.path_format) for m in sorted((route.methods or set()) - {"HEAD"})]
    return found


def test_every_console_route_needs_a_session(api: TestClient) -> None:
    """Anonymous: every page but the login page sends the browser to log in; every form is refused (from another
    site: forbidden; from here without a session: to the login page)."""
    routes = console_routes(api)
    assert len(routes) >= 30 and ("POST", "/ui/login") in routes
    for method, template in routes:
        path = re.sub(r"\{[^}]+\}", "1", template)
        if (method, template) in (("GET", "/ui/login"), ("POST", "/ui/login")):
            continue
        if method == "GET":
            answer = api.get(path, params={"repository": "team/app"}, auth=None, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next="), path
        else:
            foreign = api.post(path, data={"csrf": "x"}, headers={"Origin": "https://evil.example"}, auth=None,
                               follow_redirects=False)
            assert foreign.status_code == 403, path
            local = api.post(path, data={"csrf": "x"}, headers=ORIGIN, auth=None, follow_redirects=False)
            assert local.status_code == 303 and local.headers["location"].startswith("/ui/login"), path
    assert api.get("/api/v1/registries").json() == []  # nothing happened


def test_login_cookie_and_logout(api: TestClient) -> None:
    wrong = api.post("/ui/login", data={"username": "admin", "password": "not it"}, headers=ORIGIN, auth=None)
    assert wrong.status_code == 401 and "wrong username or password" in wrong.text
    assert "set-cookie" not in wrong.headers
    foreign = api.post("/ui/login", data={"username": ADMIN[0], "password": ADMIN[1]}, auth=None,
                       headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers

    answer = api.post("/ui/login", data={"username": ADMIN[0], "password": ADMIN[1], "next": "https://evil.example/"},
                      headers=ORIGIN, follow_redirects=False, auth=None)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"  # never off-site
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("hullscan_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    session = api.cookies["hullscan_session"]
    assert api.get("/api/v1/session", auth=None).json()["username"] == "admin"  # the API's own session

    page = api.get("/ui/", auth=None)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None and page.headers["cache-control"] == "no-store"
    out = api.post("/ui/logout", data={"csrf": csrf.group(1)}, headers=ORIGIN, follow_redirects=False, auth=None)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    api.cookies.set("hullscan_session", session)  # the old cookie, replayed: the session is over
    assert api.get("/api/v1/session", auth=None).status_code == 401
    assert api.get("/ui/", auth=None, follow_redirects=False).headers["location"].startswith("/ui/login")


def test_forms_need_the_csrf_token_and_this_origin(api: TestClient) -> None:
    csrf = log_in(api)
    form = {"name": "local", "type": "distribution", "url": "http://127.0.0.1:9", "insecure": "on"}
    for data, headers in (({**form}, ORIGIN), ({**form, "csrf": "forged"}, ORIGIN),
                          ({**form, "csrf": csrf}, {"Origin": "https://evil.example"}), ({**form, "csrf": csrf}, {})):
        refused = api.post("/ui/registries", data=data, headers=headers, auth=None)
        assert refused.status_code == 403, (data, headers)
        assert "FORBIDDEN" in refused.text
    assert api.get("/api/v1/registries").json() == []  # nothing was created
    created = api.post("/ui/registries", data={**form, "csrf": csrf}, headers=ORIGIN, auth=None)
    assert created.status_code == 200 and "local is connected" in created.text
    assert [r["name"] for r in api.get("/api/v1/registries").json()] == ["local"]
    # The API refuses what it always refuses, and the console says so with the catalogue's words.
    again = api.post("/ui/registries", data={**form, "csrf": csrf}, headers=ORIGIN, auth=None)
    assert again.status_code == 422 and "CONFLICT" in again.text and "a registry named" in again.text


def test_errors_are_pages_with_cause_and_solution(api: TestClient) -> None:
    log_in(api)
    missing = api.get("/ui/scans/424242", auth=None)
    assert missing.status_code == 404 and "RESOURCE_NOT_FOUND" in missing.text and "What to do" in missing.text
    assert missing.headers["content-type"].startswith("text/html")


def test_roles_decide_what_a_page_offers(api: TestClient, own_registry: RegistryServer, tmp_path: Path) -> None:
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    reg = {"id": synced(api, own_registry)}
    team = api.get(f"/api/v1/registries/{reg['id']}/namespaces/team").json()
    viewer = api.post("/api/v1/users", json={"username": "vic", "password": "vic-reads-only-1",
                                             "memberships": [{"namespace_id": team["id"], "role": "viewer"}]})
    assert viewer.status_code == 201, viewer.text
    image = api.get("/api/v1/images", params={"registry": reg["id"]}).json()[0]

    csrf = log_in(api, "vic", "vic-reads-only-1")
    assert api.get("/ui/users", auth=None).status_code == 403
    registries = api.get("/ui/registries", auth=None).text
    assert "Connect a registry" not in registries and "Test connection" not in registries
    repository = api.get(f"/ui/registries/{reg['id']}/images", params={"repository": "team/base"}, auth=None).text
    assert "Scanning needs the maintainer role in team" in repository and 'name="image_id"' not in repository
    # A forged Scan form is refused by the API, and nothing is queued.
    forged = api.post("/ui/scans", data={"csrf": csrf, "image_id": str(image["id"]), "next": "/ui/scans"},
                      headers=ORIGIN, auth=None)
    assert "FORBIDDEN" in forged.text and "maintainer role" in forged.text
    assert api.get("/api/v1/scans").json() == []
    settings = api.get(f"/ui/registries/{reg['id']}/namespaces/team", auth=None).text
    assert "<fieldset class=\"card\" disabled>" in settings and "needs the maintainer role" in settings


def test_an_image_a_push_hook_recorded_shows_size_pushed_and_a_full_breadcrumb(api: TestClient,
                                                                                own_registry: RegistryServer) -> None:
    """The journey of a pushed image: the registry's notification records it with the push time, its scan fills in
    the size a sync would have listed, and its scan page leads back through registry and repository."""
    digest = push(own_registry, "team/hooked", "1.0", app_image(3))
    reg = api.post("/api/v1/registries", json={"name": "pushing-registry", "type": "distribution",
                                               "url": own_registry.url, "insecure": True}).json()
    event = {"events": [{  # notifications.md's shape, for the manifest just pushed
        "id": "9f0c1a52-3a43-4c1e-9a43-6f1e2b8d7c10", "timestamp": "2026-01-31T12:34:56.123456789Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 708,
                   "length": 708, "repository": "team/hooked", "tag": "1.0",
                   "url": f"{own_registry.url}/v2/team/hooked/manifests/{digest}"}}]}
    hooked = api.post(f"/api/v1/hooks/distribution/{reg['id']}", json=event,
                      headers={"Authorization": f"Bearer {reg['hook_token']}"}, auth=None)
    assert hooked.status_code == 200 and len(hooked.json()["images"]) == 1, hooked.text
    scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": hooked.json()["images"][0]}).json()["id"])
    assert scan["state"] == "succeeded", scan
    with own_registry.client() as client:
        manifest = json.loads(client.get_manifest("team/hooked", digest).data)
    size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    listed = api.get("/api/v1/images", params={"registry": reg["id"]}).json()
    assert [(i["size"], i["pushed_at"]) for i in listed] == [(size, "2026-01-31T12:34:56.123456Z")]

    team = api.get(f"/api/v1/registries/{reg['id']}/namespaces/team").json()
    assert api.post("/api/v1/users", json={"username": "vic", "password": "vic-reads-only-1", "memberships": [
        {"namespace_id": team["id"], "role": "viewer"}]}).status_code == 201
    log_in(api, "vic", "vic-reads-only-1")
    row = api.get(f"/ui/registries/{reg['id']}/images", params={"repository": "team/hooked"}, auth=None).text
    cells = re.findall(r'<td class="num">([^<]*)</td>\s*<td>([^<]*)</td>', row)
    assert cells == [(human_size(size), "2026-01-31 12:34 UTC")]
    crumbs = re.search(r'<p class="crumbs">(.*?)</p>', api.get(f"/ui/scans/{scan['id']}", auth=None).text)
    assert crumbs is not None
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', crumbs.group(1)) == [
        ("/ui/registries", "Registries"), (f"/ui/registries/{reg['id']}", "pushing-registry"),
        (f"/ui/registries/{reg['id']}/images?repository=team%2Fhooked", "team/hooked")]

    # The tag pushed again with other content: the size was the old manifest's, so it is unknown until a scan.
    event["events"][0]["target"]["digest"] = push(own_registry, "team/hooked", "1.0", app_image(4))
    event["events"][0]["timestamp"] = "2026-02-01T08:00:00Z"
    assert api.post(f"/api/v1/hooks/distribution/{reg['id']}", json=event,
                    headers={"Authorization": f"Bearer {reg['hook_token']}"}, auth=None).status_code == 200
    listed = api.get("/api/v1/images", params={"registry": reg["id"]}).json()
    assert [(i["digest"], i["size"], i["pushed_at"]) for i in listed] == \
        [(event["events"][0]["target"]["digest"], None, "2026-02-01T08:00:00Z")]


def test_hostile_values_are_escaped(api: TestClient, own_registry: RegistryServer, tmp_path: Path) -> None:
    own_registry.push_images(images.hostile(), "zone/hostile:1", tmp_path)
    image = api.get("/api/v1/images", params={"registry": synced(api, own_registry)}).json()[0]
    scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
    assert scan["state"] == "succeeded", scan
    log_in(api)
    text = "".join(api.get(f"/ui/scans/{scan['id']}", params={"tab": tab}, auth=None).text
                   for tab in ("vuln", "software", "file", "secret", "compliance", "baseline", "base"))
    for hostile in images.HOSTILE_STRINGS:
        assert hostile not in text, hostile  # never as markup...
    assert "&lt;script&gt;alert(&#34;pkg&#34;)&lt;/script&gt;" in text  # ...but there, escaped
    assert "&lt;svg onload=alert(&#39;setuid&#39;)&gt;" in text
    assert "&#34;&gt;&lt;img src=x onerror=alert(&#39;path&#39;)&gt;" in text
    assert images.GHP not in text  # the secret's evidence is redacted


def test_a_refused_namespace_form_keeps_what_was_typed(api: TestClient, own_registry: RegistryServer,
                                                       tmp_path: Path) -> None:
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    registry_id = synced(api, own_registry)
    csrf = log_in(api)
    form = {"csrf": csrf, "block_enabled": "on", "block_severity": "CRITICAL", "rows": "2",
            "allow-0-id": "CVE-2020-1747", "allow-0-reason": "only trusted YAML", "allow-0-expires": "2031-02-30",
            "allow-1-id": "", "allow-1-reason": "a row left empty is no entry"}
    refused = api.post(f"/ui/registries/{registry_id}/namespaces/team", data=form, headers=ORIGIN, auth=None)
    assert refused.status_code == 422 and "INVALID_REQUEST" in refused.text and "expires_at" in refused.text
    assert 'value="CVE-2020-1747"' in refused.text and 'value="only trusted YAML"' in refused.text
    assert api.get(f"/api/v1/registries/{registry_id}/namespaces/team").json()["block"]["enabled"] is False

    form["allow-0-expires"] = "2031-02-28"
    saved = api.post(f"/ui/registries/{registry_id}/namespaces/team", data=form, headers=ORIGIN, auth=None)
    assert saved.status_code == 200 and "Settings of team saved: 1 allowlist entry" in saved.text
    ns = api.get(f"/api/v1/registries/{registry_id}/namespaces/team").json()
    assert ns["block"]["severity"] == "CRITICAL" and ns["allowlist"] == [
        {"id": "CVE-2020-1747", "reason": "only trusted YAML", "expires_at": "2031-02-28T00:00:00Z"}]
    form["allow-0-remove"] = "on"  # and removed again
    api.post(f"/ui/registries/{registry_id}/namespaces/team", data=form, headers=ORIGIN, auth=None)
    assert api.get(f"/api/v1/registries/{registry_id}/namespaces/team").json()["allowlist"] == []


# Console forms a viewer may send: their own session and their own API tokens.
SELF_SERVICE = {"/ui/login", "/ui/logout", "/ui/tokens"}
OPERATIONS = {"/ui/users/{user_id}/{operation}": ("admin", "unadmin", "disable", "enable", "password", "memberships",
                                                  "delete"),
              "/ui/schedules/{schedule_id}/{operation}": ("run", "enable", "disable", "delete"),
              "/ui/webhooks/{webhook_id}/{operation}": ("test", "enable", "disable", "delete")}
# Things a viewer may not even see (another user's token, a webhook): the answer is "not found", as from the API.
UNSEEN = ("/ui/tokens/{token_id}/revoke", "/ui/webhooks/{webhook_id}/{operation}", "/ui/webhooks/{webhook_id}/edit",
          "/ui/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")


def test_a_viewer_can_post_no_maintainer_or_admin_form(api: TestClient, own_registry: RegistryServer,
                                                       tmp_path: Path) -> None:
    """Every console form but the viewer's own session and tokens, sent by a viewer of the namespace with a valid
    CSRF token and fields that would work for an admin: refused with the catalogue's FORBIDDEN, and the audit log
    (which records every change) gains nothing."""
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    registry_id = synced(api, own_registry)
    team = api.get(f"/api/v1/registries/{registry_id}/namespaces/team").json()
    image = api.get("/api/v1/images", params={"registry": registry_id}).json()[0]
    scan = wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
    schedule = api.post("/api/v1/schedules", json={"registry": registry_id, "namespace": "team", "cron": "0 2 * * *"})
    assert schedule.status_code == 201, schedule.text
    admin_id = api.get("/api/v1/session").json()["user_id"]
    admin_token = api.post("/api/v1/tokens", json={"name": "admin-ci"}).json()["id"]
    hook = api.post("/api/v1/webhooks", json={"name": "ci", "registry": registry_id, "namespace": "team",
                                              "url": "http://127.0.0.1:9/hook", "event_types": ["PULL_BLOCKED"]})
    assert hook.status_code == 201, hook.text
    delivery = api.post(f"/api/v1/webhooks/{hook.json()['id']}/test").json()  # nobody listens: failed, logged
    vic = api.post("/api/v1/users", json={"username": "vic", "password": "vic-reads-only-1",
                                          "memberships": [{"namespace_id": team["id"], "role": "viewer"}]}).json()
    ids = {"registry_id": registry_id, "namespace": "team", "scan_id": scan["id"], "user_id": admin_id,
           "schedule_id": schedule.json()["id"], "token_id": admin_token, "webhook_id": hook.json()["id"],
           "delivery_id": delivery["id"]}
    fields = {"name": "another", "type": "distribution", "url": own_registry.url, "insecure": "on",
              "image_id": str(image["id"]), "auto_scan": "on", "block_enabled": "on", "block_severity": "LOW",
              "rows": "1", "allow-0-id": "CVE-2020-1747", "allow-0-reason": "viewer", "member-0-namespace":
              str(team["id"]), "member-0-role": "maintainer", "username": "mallory",
              "password": "mallory-long-password", "cron": "* * * * *", "registry": str(registry_id),
              "event_types": "SCANNING_COMPLETED", "enabled": "on"}

    csrf = log_in(api, "vic", "vic-reads-only-1")
    audited = int(api.get("/api/v1/audit").headers["x-total-count"])
    tried = 0
    for method, template in console_routes(api):
        if method != "POST" or template in SELF_SERVICE:
            continue
        for operation in OPERATIONS.get(template, ("",)):
            path = template.format(operation=operation, **{k: v for k, v in ids.items()
                                                          if "{" + k + "}" in template})
            answer = api.post(path, data={**fields, "csrf": csrf}, headers=ORIGIN, auth=None)
            tried += 1
            if template in UNSEEN:
                assert "RESOURCE_NOT_FOUND" in answer.text, answer.text
            else:
                assert "FORBIDDEN" in answer.text, (path, answer.status_code, answer.text[-2000:])
    assert tried >= 28
    assert [h["enabled"] for h in api.get("/api/v1/webhooks").json()] == [True]
    assert len(api.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries").json()) == 1  # no ping, no redelivery
    assert int(api.get("/api/v1/audit").headers["x-total-count"]) == audited  # nothing changed
    assert api.get("/api/v1/session", auth=None).json()["username"] == vic["username"]  # still the viewer's session


def test_a_registry_the_harbor_adapter_manages_offers_no_synchronisation(api: TestClient) -> None:
    """Its images come with Harbor's scan requests and the API refuses to synchronise it: the pages say who manages
    it and offer no Synchronise button (the record is marked as the adapter marks the ones it makes)."""
    connected = api.post("/api/v1/registries", json={"name": "mine", "type": "distribution",
                                                     "url": "http://127.0.0.1:9", "insecure": True}).json()
    managed = api.post("/api/v1/registries", json={"name": "harbor-core", "type": "distribution",
                                                   "url": "http://127.0.0.1:9", "insecure": True}).json()
    with api.app.state.service.db.session() as session:  # type: ignore[attr-defined]
        session.get(Registry, managed["id"]).managed_by = "harbor-adapter"
    log_in(api)
    listing = api.get("/ui/registries", auth=None).text
    assert listing.count("managed by the harbor-adapter") == 1
    assert f'action="/ui/registries/{connected["id"]}/sync"' in listing
    assert f'action="/ui/registries/{managed["id"]}/sync"' not in listing
    page = api.get(f"/ui/registries/{managed['id']}", auth=None).text
    assert "Managed by" in page and f'action="/ui/registries/{managed["id"]}/sync"' not in page


def test_webhooks_added_pinged_redelivered_and_their_secret_shown_once(api: TestClient, own_registry: RegistryServer,
                                                                        tmp_path: Path) -> None:
    """A namespace's webhook made through the console's form: its generated secret is on the answer to the form and
    nowhere after; the test ping reaches the real receiver signed with that secret; the delivery log lists it and
    Redeliver posts it again as a new delivery. A name made of markup prints as text; a refused form keeps what was
    typed except the secrets."""
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    registry_id = synced(api, own_registry)
    csrf = log_in(api)
    receiver = Receiver().start()
    try:
        hooks = f"/ui/registries/{registry_id}/namespaces/team/webhooks"
        name = '<img src=x onerror=alert("hook")>'
        form = {"csrf": csrf, "name": name, "url": "ftp://127.0.0.1/hook", "event_types": ["SCANNING_COMPLETED",
                "PULL_BLOCKED"], "secret": "typed-secret-kept-out-of-pages", "auth_header": "Bearer typed-token-1",
                "enabled": "on"}
        refused = api.post(hooks, data=form, headers=ORIGIN, auth=None)
        assert refused.status_code == 422 and "INVALID_REQUEST" in refused.text
        assert "&lt;img src=x onerror=alert(&#34;hook&#34;)&gt;" in refused.text and name not in refused.text
        assert "typed-secret-kept-out-of-pages" not in refused.text and "typed-token-1" not in refused.text
        assert refused.text.count("checked>") >= 3  # the two events and Enabled, as ticked (generate is default)
        assert api.get("/api/v1/webhooks").json() == []

        form.update(url=receiver.url, secret="", auth_header="", generate_secret="on")
        made = api.post(hooks, data=form, headers=ORIGIN, auth=None)
        assert made.status_code == 201, made.text[-2000:]
        found = re.search(r'id="new-secret">([^<]+)<', made.text)
        assert found is not None and found.group(1).startswith("whsec_") and len(found.group(1)) > 40
        secret = found.group(1)
        hook = api.get("/api/v1/webhooks").json()[0]
        assert (hook["name"], hook["namespace"], hook["has_secret"], hook["has_auth_header"]) == (
            name, "team", True, False)
        assert hook["event_types"] == ["SCANNING_COMPLETED", "PULL_BLOCKED"]
        for path in (hooks, f"/ui/webhooks/{hook['id']}", "/ui/webhooks"):
            shown = api.get(path, auth=None)
            assert shown.status_code == 200 and secret not in shown.text, path  # shown once
            assert name not in shown.text and "&lt;img src=x" in shown.text, path

        pinged = api.post(f"/ui/webhooks/{hook['id']}/test", data={"csrf": csrf}, headers=ORIGIN, auth=None)
        assert "Test ping delivered: the receiver answered 200." in pinged.text
        assert [verify(secret, r.body, r.headers["x-hullscan-signature"]) for r in receiver.of("PING")] == [True]
        log = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        assert [(d["event_type"], d["state"], d["attempts"], d["last_status"]) for d in log] == [
            ("PING", "delivered", 1, 200)]
        assert f'id="delivery-{log[0]["id"]}"' in pinged.text

        again = api.post(f"/ui/webhooks/{hook['id']}/deliveries/{log[0]['id']}/redeliver", data={"csrf": csrf},
                         headers=ORIGIN, auth=None)
        assert f"Delivery {log[0]['id']} sent again as delivery" in again.text
        assert receiver.wait(lambda r: len(r.of("PING")) == 2)
        first, second = receiver.of("PING")
        assert first.headers["x-hullscan-delivery"] != second.headers["x-hullscan-delivery"]
        assert first.json()["event_data"] == second.json()["event_data"]

        receiver.statuses = [503]
        failed = api.post(f"/ui/webhooks/{hook['id']}/test", data={"csrf": csrf}, headers=ORIGIN, auth=None)
        assert "Test ping not delivered: the receiver answered HTTP 503." in failed.text

        disabled = api.post(f"/ui/webhooks/{hook['id']}/disable", data={"csrf": csrf, "next": hooks}, headers=ORIGIN,
                            auth=None)
        assert f"Webhook {hook['id']} disabled." in disabled.text and "Enable &lt;img" in disabled.text
        assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["enabled"] is False
        gone = api.post(f"/ui/webhooks/{hook['id']}/delete", data={"csrf": csrf}, headers=ORIGIN, auth=None)
        assert "deleted, with its delivery log" in gone.text and gone.url.path == hooks
        assert api.get("/api/v1/webhooks").json() == []
    finally:
        receiver.stop()


def _edit(api: TestClient, hook_id: int, **fields: object) -> Any:
    return api.post(f"/ui/webhooks/{hook_id}/edit", data=fields, headers=ORIGIN, auth=None)


def _ping(api: TestClient, hook_id: int, csrf: str) -> None:
    pinged = api.post(f"/ui/webhooks/{hook_id}/test", data={"csrf": csrf}, headers=ORIGIN, auth=None)
    assert "Test ping delivered: the receiver answered 200." in pinged.text, pinged.text[-2000:]


def test_a_webhook_edited_in_the_console(api: TestClient, own_registry: RegistryServer, tmp_path: Path) -> None:
    """A namespace's maintainer moves its webhook to a new address and replaces its secret (typed, then generated)
    through the edit form: the next ping reaches the new address signed with the new secret, which the answer to
    the form shows once; the old secret no longer verifies; the header is kept until removed. A refused form shows
    what was typed except the secret and the header; a viewer of the namespace cannot edit it."""
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    registry_id = synced(api, own_registry)
    team = api.get(f"/api/v1/registries/{registry_id}/namespaces/team").json()
    hook = api.post("/api/v1/webhooks", json={"name": "ci", "registry": registry_id, "namespace": "team",
                                              "url": "http://127.0.0.1:9/hook", "event_types": ["PULL_BLOCKED"],
                                              "secret": "old-secret-1", "auth_header": "Bearer old-token"}).json()
    for username, role in (("mia", "maintainer"), ("vic", "viewer")):
        made = api.post("/api/v1/users", json={"username": username, "password": f"{username}-long-password",
                                               "memberships": [{"namespace_id": team["id"], "role": role}]})
        assert made.status_code == 201, made.text
    receiver = Receiver().start()
    try:
        moved = {"name": "ci", "url": receiver.url, "event_types": ["PULL_BLOCKED", "SCANNING_FAILED"],
                 "description": "moved to the new receiver", "enabled": "on"}

        csrf = log_in(api, "vic", "vic-long-password")
        refused = _edit(api, hook["id"], csrf=csrf, secret_change="generate", **moved)
        assert "RESOURCE_NOT_FOUND" in refused.text and "whsec_" not in refused.text
        assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["url"] == "http://127.0.0.1:9/hook"

        csrf = log_in(api, "mia", "mia-long-password")
        page = api.get(f"/ui/webhooks/{hook['id']}", auth=None)
        assert f'action="/ui/webhooks/{hook["id"]}/edit"' in page.text
        assert 'value="http://127.0.0.1:9/hook"' in page.text
        bad = _edit(api, hook["id"], csrf=csrf, **{**moved, "url": "ftp://127.0.0.1/hook"}, secret_change="typed",
                    secret="typed-secret-kept-out", auth_change="typed", auth_header="Bearer typed-token-kept-out")
        assert bad.status_code == 422 and "INVALID_REQUEST" in bad.text
        assert "moved to the new receiver" in bad.text and 'value="ftp://127.0.0.1/hook"' in bad.text
        assert "typed-secret-kept-out" not in bad.text and "typed-token-kept-out" not in bad.text
        assert 'value="typed" checked' in bad.text and "<details open>" in bad.text
        empty = _edit(api, hook["id"], csrf=csrf, secret_change="typed", secret="", **moved)
        assert empty.status_code == 422 and "type the new signing secret" in empty.text
        assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["description"] == ""  # neither was saved

        typed = _edit(api, hook["id"], csrf=csrf, secret_change="typed", secret="new-typed-secret-2", **moved)
        assert typed.status_code == 200, typed.text[-2000:]
        assert re.search(r'id="new-secret">new-typed-secret-2<', typed.text)
        changed = api.get(f"/api/v1/webhooks/{hook['id']}").json()
        assert (changed["url"], set(changed["event_types"]), changed["has_secret"], changed["has_auth_header"]) == (
            receiver.url, {"PULL_BLOCKED", "SCANNING_FAILED"}, True, True)
        assert "new-typed-secret-2" not in api.get(f"/ui/webhooks/{hook['id']}", auth=None).text  # shown once
        _ping(api, hook["id"], csrf)
        (first,) = receiver.of("PING")
        signature = first.headers["x-hullscan-signature"]
        assert verify("new-typed-secret-2", first.body, signature) and not verify("old-secret-1", first.body, signature)
        assert first.headers["authorization"] == "Bearer old-token"  # kept

        generated = _edit(api, hook["id"], csrf=csrf, secret_change="generate", auth_change="remove", **moved)
        found = re.search(r'id="new-secret">(whsec_[^<]+)<', generated.text)
        assert found is not None, generated.text[-2000:]
        _ping(api, hook["id"], csrf)
        second = receiver.of("PING")[1]
        signature = second.headers["x-hullscan-signature"]
        assert verify(found.group(1), second.body, signature)
        assert not verify("new-typed-secret-2", second.body, signature) and "authorization" not in second.headers

        kept = _edit(api, hook["id"], csrf=csrf, **{**moved, "enabled": ""})  # the secret kept: no secret shown
        assert kept.url.path == f"/ui/webhooks/{hook['id']}" and "Webhook ci saved." in kept.text
        assert "new-secret" not in kept.text
        assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["enabled"] is False
    finally:
        receiver.stop()


def test_the_delivery_log_filtered_by_state_and_event(api: TestClient, own_registry: RegistryServer,
                                                      tmp_path: Path) -> None:
    """A webhook with a scan's completion delivered, one ping delivered and 26 refused: the log filtered by state
    or event lists only those, counts them, and its pages (25 rows each) keep the filters."""
    own_registry.push_images(images.base(), "team/base:1.0", tmp_path)
    registry_id = synced(api, own_registry)
    receiver = Receiver().start()
    try:
        hook = api.post("/api/v1/webhooks", json={"name": "ci", "registry": registry_id, "namespace": "team",
                                                  "url": receiver.url, "event_types": ["SCANNING_COMPLETED"]}).json()
        image = api.get("/api/v1/images", params={"registry": registry_id}).json()[0]
        wait_for(api, api.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])
        deliveries = f"/api/v1/webhooks/{hook['id']}/deliveries"
        assert receiver.wait(lambda _: [d["state"] for d in api.get(deliveries).json()] == ["delivered"])
        assert api.post(f"/api/v1/webhooks/{hook['id']}/test").json()["state"] == "delivered"
        receiver.statuses = [503] * 26
        assert {api.post(f"/api/v1/webhooks/{hook['id']}/test").json()["state"] for _ in range(26)} == {"failed"}

        log_in(api)
        base = f"/ui/webhooks/{hook['id']}"
        whole = api.get(base, auth=None).text
        assert "(28)" in whole and whole.count('<tr id="delivery-') == 25

        failed = api.get(base, params={"state": "failed"}, auth=None).text
        assert "(26 matching the filters)" in failed and failed.count('<span class="state failed">') == 25
        assert '<option value="failed" selected>' in failed
        assert 'href="?state=failed&amp;page=2#log-title"' in failed  # the next page keeps the filter
        rest = api.get(base, params={"state": "failed", "page": "2"}, auth=None).text
        assert rest.count('<tr id="delivery-') == 1 and "delivered</span>" not in rest

        scans = api.get(base, params={"event_type": "SCANNING_COMPLETED"}, auth=None).text
        assert "(1 matching the filters)" in scans and scans.count('<tr id="delivery-') == 1
        assert "<td>PING</td>" not in scans and "<td>SCANNING_COMPLETED</td>" in scans
        pings = api.get(base, params={"event_type": "PING", "state": "delivered"}, auth=None).text
        assert "(1 matching the filters)" in pings and "<td>SCANNING_COMPLETED</td>" not in pings
        rows = api.get(f"{base}/deliveries", params={"state": "delivered"}, auth=None).text  # the refreshed part
        assert rows.count('<tr id="delivery-') == 2 and "failed</span>" not in rows
        none = api.get(base, params={"event_type": "PULL_BLOCKED"}, auth=None).text
        assert "No delivery matches the filters." in none
        wrong = api.get(base, params={"state": "lost"}, auth=None)
        assert wrong.status_code == 422 and "INVALID_REQUEST" in wrong.text
    finally:
        receiver.stop()
