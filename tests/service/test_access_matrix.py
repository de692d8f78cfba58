"""Every endpoint, called by every role and by nobody, answers with the status its access rule gives.

The routes come from the application itself (so an endpoint added without a rule here fails
`test_every_route_has_a_rule`); each rule gives the expected status for the admin, a maintainer and a viewer of the
namespace the call is about (`team`), a maintainer of another namespace only (`other`), a user with no role
(`none`) and a caller without credentials (`anonymous`). A resource a caller may not see answers 404, as if it did
not exist; one they may see but not change answers 403; no credentials answer 401. Only /healthz, /metrics and
logging in answer without credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from tests.service.world import PASSWORDS, ROLES, World, running_world

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("matrix")) as w:
        yield w


def expect(admin: int, maintainer: int, viewer: int, other: int, none: int, anonymous: int = 401) -> dict[str, int]:
    return dict(zip(ROLES, (admin, maintainer, viewer, other, none, anonymous), strict=True))


PUBLIC = expect(200, 200, 200, 200, 200, 200)
ANY_USER = expect(200, 200, 200, 200, 200)
ADMIN_ONLY = expect(200, 403, 403, 403, 403)
TEAM_READ = expect(200, 200, 200, 404, 404)  # an object of namespace team: hidden from non-members
TEAM_NS_READ = expect(200, 200, 200, 403, 404)  # a namespace of a registry `other` can see (it has one there)
REGISTRY_READ = expect(200, 200, 200, 200, 404)  # a registry: seen by anyone with a role in one of its namespaces
SELF_OR_ADMIN = expect(200, 200, 403, 403, 403)  # the maintainer's own account
TEAM_MANAGE = expect(200, 200, 404, 404, 404)  # an object of namespace team only its maintainers see (a webhook)


def with_status(rule: dict[str, int], ok: int) -> dict[str, int]:
    return {role: ok if status == 200 else status for role, status in rule.items()}


Maker = Callable[[World, str], dict[str, Any]]


@dataclass
class Rule:
    expected: dict[str, int]
    request: Maker = lambda w, role: {}  # noqa: E731 - path parameters and request keywords for one call


def fresh_user(w: World, role: str) -> dict[str, Any]:
    made = w.client.post("/api/v1/users", json={"username": w.unique("temp"), "password": "temporary-pass-1"})
    assert made.status_code == 201, made.text
    return {"user_id": made.json()["id"]}


def admin_token(w: World, role: str) -> dict[str, Any]:
    made = w.client.post("/api/v1/tokens", json={"name": w.unique("matrix")})
    assert made.status_code == 201, made.text
    return {"token_id": made.json()["id"]}


def fresh_registry(w: World, role: str) -> dict[str, Any]:
    made = w.client.post("/api/v1/registries", json={"name": w.unique("doomed"), "type": "distribution",
                                                      "url": w.registry.url, "insecure": True})
    assert made.status_code == 201, made.text
    return {"registry_id": made.json()["id"]}


def team(w: World, role: str) -> dict[str, Any]:
    return {"registry_id": w.registry_id, "namespace": "team"}


def scan_1(w: World, role: str) -> dict[str, Any]:
    return {"scan_id": w.scans["team/app:1.0"]}


def team_schedule(w: World, role: str) -> dict[str, Any]:
    """A fresh nightly scan schedule of namespace team, made by the admin."""
    made = w.client.post("/api/v1/schedules", json={"action": "scan", "registry": w.registry_id, "namespace": "team",
                                                    "cron": "0 2 * * *"})
    assert made.status_code == 201, made.text
    return {"schedule_id": made.json()["id"]}


def hook(body: dict[str, Any]) -> Maker:
    """A well-formed hook body; a user's own credentials are not the registry's hook token."""
    return lambda w, role: {"registry_id": w.registry_id, "json": body}


def own_credentials(w: World, role: str) -> dict[str, Any]:
    login = w.auth(role) or ("none", PASSWORDS["none"])
    return {"json": {"username": login[0], "password": login[1]}}


def team_webhook(w: World, role: str) -> dict[str, Any]:
    """A webhook of namespace team (made by the admin), posting to an address where nothing listens."""
    made = w.client.post("/api/v1/webhooks", json={"name": w.unique("hook"), "url": "http://127.0.0.1:9/hook",
                                                   "event_types": ["PULL_BLOCKED"], "registry": w.registry_id,
                                                   "namespace": "team", "secret": "matrix-secret"})
    assert made.status_code == 201, made.text
    return {"webhook_id": made.json()["id"]}


def team_delivery(w: World, role: str) -> dict[str, Any]:
    made = team_webhook(w, role)
    ping = w.client.post(f"/api/v1/webhooks/{made['webhook_id']}/test")
    assert ping.status_code == 200, ping.text
    return {**made, "delivery_id": ping.json()["id"]}


RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/metrics"): Rule(PUBLIC),
    ("GET", "/openapi.json"): Rule(ANY_USER),
    ("GET", "/docs"): Rule(ANY_USER),
    # logging in needs no credentials but the ones in the body
    ("POST", "/api/v1/session"): Rule(expect(201, 201, 201, 201, 201, 201), own_credentials),
    ("GET", "/api/v1/session"): Rule(ANY_USER),
    ("DELETE", "/api/v1/session"): Rule(with_status(ANY_USER, 204)),
    # users
    ("GET", "/api/v1/users"): Rule(ADMIN_ONLY),
    ("POST", "/api/v1/users"): Rule(with_status(ADMIN_ONLY, 201), lambda w, role: {"json": {
        "username": w.unique("made"), "password": "made-pass-123"}}),
    ("GET", "/api/v1/users/me"): Rule(ANY_USER),
    ("PUT", "/api/v1/users/me/password"): Rule(with_status(ANY_USER, 204), lambda w, role: {"json": {
        "current_password": PASSWORDS.get(role, "anything-1"), "new_password": PASSWORDS.get(role, "anything-1")}}),
    ("GET", "/api/v1/users/{user_id}"): Rule(SELF_OR_ADMIN, lambda w, role: {"user_id": w.users["maintainer"]}),
    ("PATCH", "/api/v1/users/{user_id}"): Rule(ADMIN_ONLY, lambda w, role: {
        **fresh_user(w, role), "json": {"disabled": True}}),
    ("DELETE", "/api/v1/users/{user_id}"): Rule(with_status(ADMIN_ONLY, 204), fresh_user),
    ("PUT", "/api/v1/users/{user_id}/password"): Rule(with_status(ADMIN_ONLY, 204), lambda w, role: {
        **fresh_user(w, role), "json": {"password": "reset-pass-123"}}),
    ("GET", "/api/v1/users/{user_id}/memberships"): Rule(SELF_OR_ADMIN, lambda w, role: {
        "user_id": w.users["maintainer"]}),
    ("PUT", "/api/v1/users/{user_id}/memberships"): Rule(ADMIN_ONLY, lambda w, role: {
        **fresh_user(w, role), "json": [{"namespace_id": w.namespaces["team"], "role": "viewer"}]}),
    # API tokens: everyone has their own; someone else's are the admins' business
    ("GET", "/api/v1/tokens"): Rule(ANY_USER),
    ("POST", "/api/v1/tokens"): Rule(with_status(ANY_USER, 201), lambda w, role: {"json": {"name": "mine"}}),
    ("GET", "/api/v1/tokens/{token_id}"): Rule(expect(200, 404, 404, 404, 404), admin_token),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(expect(204, 404, 404, 404, 404), admin_token),
    # registries
    ("GET", "/api/v1/registries"): Rule(ANY_USER),
    ("POST", "/api/v1/registries"): Rule(with_status(ADMIN_ONLY, 201), lambda w, role: {"json": {
        "name": w.unique("reg"), "type": "distribution", "url": w.registry.url, "insecure": True}}),
    ("GET", "/api/v1/registries/{registry_id}"): Rule(REGISTRY_READ, team),
    ("PATCH", "/api/v1/registries/{registry_id}"): Rule(ADMIN_ONLY, lambda w, role: {
        **team(w, role), "json": {"insecure": True}}),
    ("DELETE", "/api/v1/registries/{registry_id}"): Rule(with_status(ADMIN_ONLY, 204), fresh_registry),
    ("POST", "/api/v1/registries/{registry_id}/hook-token"): Rule(ADMIN_ONLY, fresh_registry),
    ("POST", "/api/v1/registries/{registry_id}/test"): Rule(ADMIN_ONLY, team),
    ("POST", "/api/v1/registries/{registry_id}/sync"): Rule(with_status(ADMIN_ONLY, 202), fresh_registry),
    ("GET", "/api/v1/registries/{registry_id}/namespaces"): Rule(REGISTRY_READ, team),
    ("GET", "/api/v1/registries/{registry_id}/namespaces/{namespace}"): Rule(TEAM_NS_READ, team),
    ("PUT", "/api/v1/registries/{registry_id}/namespaces/{namespace}"): Rule(
        expect(200, 200, 403, 403, 404), lambda w, role: {**team(w, role), "json": {"auto_scan": False}}),
    ("GET", "/api/v1/registries/{registry_id}/pullable"): Rule(TEAM_NS_READ, lambda w, role: {
        **team(w, role), "params": {"repository": "team/app", "reference": "1.0"}}),
    ("GET", "/api/v1/registries/{registry_id}/summary"): Rule(REGISTRY_READ, team),
    ("GET", "/api/v1/registries/{registry_id}/namespaces/{namespace}/summary"): Rule(TEAM_NS_READ, team),
    ("GET", "/api/v1/registries/{registry_id}/usage"): Rule(ADMIN_ONLY, team),
    # images and scans of namespace team
    ("GET", "/api/v1/images"): Rule(ANY_USER),
    ("GET", "/api/v1/images/{image_id}"): Rule(TEAM_READ, lambda w, role: {"image_id": w.images["team/app:1.0"]}),
    ("GET", "/api/v1/images/{image_id}/scans"): Rule(TEAM_READ, lambda w, role: {
        "image_id": w.images["team/app:1.0"]}),
    ("POST", "/api/v1/scans"): Rule(expect(202, 202, 403, 404, 404), lambda w, role: {"json": {
        "image_id": w.images["team/app:1.0"]}}),
    ("GET", "/api/v1/scans"): Rule(ANY_USER),
    ("GET", "/api/v1/scans/{scan_id}"): Rule(TEAM_READ, scan_1),
    ("POST", "/api/v1/scans/{scan_id}/stop"): Rule(expect(200, 200, 403, 404, 404), scan_1),
    ("GET", "/api/v1/scans/{scan_id}/report"): Rule(TEAM_READ, scan_1),
    ("GET", "/api/v1/scans/{scan_id}/diff"): Rule(TEAM_READ, lambda w, role: {
        "scan_id": w.scans["team/app:2.0"], "params": {"against": w.scans["team/app:1.0"]}}),
    # schedules: a namespace's scan schedules are its maintainers' (viewers see them); the rest are the admins'
    ("GET", "/api/v1/schedules"): Rule(ANY_USER),
    ("POST", "/api/v1/schedules"): Rule(expect(201, 201, 403, 403, 403), lambda w, role: {"json": {
        "action": "scan", "registry": w.registry_id, "namespace": "team", "cron": "0 3 * * *"}}),
    ("GET", "/api/v1/schedules/{schedule_id}"): Rule(TEAM_READ, team_schedule),
    ("PATCH", "/api/v1/schedules/{schedule_id}"): Rule(expect(200, 200, 403, 404, 404), lambda w, role: {
        **team_schedule(w, role), "json": {"enabled": False}}),
    ("DELETE", "/api/v1/schedules/{schedule_id}"): Rule(expect(204, 204, 403, 404, 404), team_schedule),
    ("POST", "/api/v1/schedules/{schedule_id}/run"): Rule(expect(202, 202, 403, 404, 404), team_schedule),
    # inbound hooks answer to the registry's hook token only, never to a user's credentials
    ("POST", "/api/v1/hooks/distribution/{registry_id}"): Rule(expect(401, 401, 401, 401, 401), hook(
        {"events": []})),
    ("POST", "/api/v1/hooks/harbor/{registry_id}"): Rule(expect(401, 401, 401, 401, 401), hook(
        {"type": "PUSH_ARTIFACT", "occur_at": 0, "operator": "admin", "event_data": {"resources": []}})),
    ("POST", "/api/v1/hooks/jfrog/{registry_id}"): Rule(expect(401, 401, 401, 401, 401), hook(
        {"domain": "docker", "event_type": "pushed", "data": {}})),
    # the vulnerability database: anyone may see its age; updating it is the admins' (a source that is not
    # there, so the background update fails fast and offline)
    ("GET", "/api/v1/database"): Rule(ANY_USER),
    ("POST", "/api/v1/database/update"): Rule(with_status(ADMIN_ONLY, 202), lambda w, role: {"json": {
        "base_url": "http://127.0.0.1:9/osv"}}),
    # the system-wide allowlist and the audit log
    ("GET", "/api/v1/allowlist"): Rule(ADMIN_ONLY),
    ("PUT", "/api/v1/allowlist"): Rule(ADMIN_ONLY, lambda w, role: {"json": {"allowlist": [
        {"id": "CVE-2020-14343", "reason": "matrix"}]}}),
    ("GET", "/api/v1/audit"): Rule(ADMIN_ONLY),
    # webhooks: a namespace's maintainers manage its own, viewers do not see them; system-wide ones are admins'
    ("GET", "/api/v1/webhooks"): Rule(ANY_USER),
    ("POST", "/api/v1/webhooks"): Rule(expect(201, 201, 403, 403, 403), lambda w, role: {"json": {
        "name": "mine", "url": "http://127.0.0.1:9/hook", "event_types": ["SCANNING_FAILED"],
        "registry": w.registry_id, "namespace": "team"}}),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Rule(TEAM_MANAGE, team_webhook),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): Rule(TEAM_MANAGE, lambda w, role: {
        **team_webhook(w, role), "json": {"enabled": False}}),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Rule(with_status(TEAM_MANAGE, 204), team_webhook),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): Rule(TEAM_MANAGE, team_webhook),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Rule(TEAM_MANAGE, team_delivery),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): Rule(TEAM_MANAGE, team_delivery),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Rule(
        with_status(TEAM_MANAGE, 202), team_delivery),
    # the Harbor pluggable scanner adapter: Harbor registers it with an admin's credentials
    ("GET", "/api/v1/metadata"): Rule(ADMIN_ONLY),
    ("POST", "/api/v1/scan"): Rule(with_status(ADMIN_ONLY, 202), lambda w, role: {"json": {
        "registry": {"url": w.registry.url},
        "artifact": {"repository": "team/app", "tag": "1.0", "mime_type": "application/vnd.oci.image.manifest.v1+json",
                     "digest": w.client.get(f"/api/v1/images/{w.images['team/app:1.0']}").json()["digest"]}}}),
    ("GET", "/api/v1/scan/{scan_request_id}/report"): Rule(expect(404, 403, 403, 403, 403), lambda w, role: {
        "scan_request_id": "999999-0000000000000000"}),
}


def routes(world: World) -> list[tuple[str, str]]:
    """(method, path template) of every route the application serves, documented or not; but the console's pages,
    which act through these endpoints as the logged-in user (tests/service/console/test_console.py checks that
    each of them needs a session)."""
    found = []
    for route in iter_route_contexts(world.client.app.routes):  # type: ignore[attr-defined]
        if route.path_format == "/" or route.path_format.startswith("/ui"):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, route.path_format))
    return found


def test_every_route_has_a_rule(world: World) -> None:
    served = set(routes(world))
    assert served - RULES.keys() == set(), "add an access rule for each new endpoint"
    assert RULES.keys() - served == set(), "a rule names an endpoint that no longer exists"
    documented = {(m.upper(), p) for p, ops in world.client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
                  for m in ops}
    assert documented <= served


@pytest.mark.parametrize("key", list(RULES), ids=[f"{m} {p}" for m, p in RULES])
def test_every_role_gets_the_expected_status(world: World, key: tuple[str, str]) -> None:
    method, template = key
    rule = RULES[key]
    wrong = {}
    for role in ROLES:
        made = rule.request(world, role)
        path = template.format(**{k: v for k, v in made.items() if f"{{{k}}}" in template})
        kwargs = {k: v for k, v in made.items() if k in ("json", "params")}
        response = world.call(method, path, role, **kwargs)
        if response.status_code != rule.expected[role]:
            wrong[role] = (response.status_code, rule.expected[role], response.text[:200])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "solution"}, response.text
    assert not wrong, f"{method} {template}: (got, expected) per role: {wrong}"


def test_anonymous_calls_are_refused_with_a_challenge(world: World) -> None:
    refused = world.call("GET", "/api/v1/images", "anonymous")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_matrix_ran_on_a_real_world(world: World, tmp_path: Path) -> None:
    """The world the matrix used holds what the rules assume: two namespaces, the users' roles, two scans."""
    me = world.call("GET", "/api/v1/users/me", "maintainer").json()
    assert [(m["namespace"], m["role"]) for m in me["memberships"]] == [("team", "maintainer")]
    listed = world.call("GET", "/api/v1/images", "other").json()
    assert {i["repository"] for i in listed} == {"other/app"}
    assert world.call("GET", "/api/v1/images", "none").json() == []
    assert world.call("GET", f"/api/v1/scans/{world.scans['team/app:1.0']}", "viewer").json()["state"] == "succeeded"


def test_every_list_pages_filters_and_sorts(world: World) -> None:
    """Each list answers a JSON array with X-Total-Count and Link headers, takes page, page_size and sort, refuses
    an unknown sort field with a cause, and offers at least one filter."""
    document = world.client.app.openapi()  # type: ignore[attr-defined]
    def answers_a_list(path: str) -> bool:
        content = document["paths"][path]["get"]["responses"]["200"].get("content", {})
        return bool(content.get("application/json", {}).get("schema", {}).get("type") == "array")

    lists = [(m, p) for m, p in RULES if m == "GET" and p in document["paths"] and answers_a_list(p)]
    assert len(lists) >= 9
    for method, template in lists:
        query = {p["name"] for p in document["paths"][template]["get"]["parameters"] if p["in"] == "query"}
        assert {"page", "page_size", "sort"} <= query, template
        assert query - {"page", "page_size", "sort"}, f"{template} has no filter"
        made = RULES[(method, template)].request(world, "admin")
        path = template.format(**{k: v for k, v in made.items() if f"{{{k}}}" in template})
        first = world.call("GET", path, "admin", params={"page_size": 1})
        assert first.status_code == 200 and isinstance(first.json(), list), (path, first.text)
        total = int(first.headers["X-Total-Count"])
        assert len(first.json()) == min(total, 1)
        if total > 1:
            assert 'rel="next"' in first.headers["Link"], path
            second = world.call("GET", path, "admin", params={"page_size": 1, "page": 2})
            assert 'rel="prev"' in second.headers["Link"] and second.json() != first.json()
        unknown = world.call("GET", path, "admin", params={"sort": "-no_such_field"})
        assert unknown.status_code == 422 and "cannot sort by" in unknown.json()["error"]["message"], path


def test_system_wide_webhooks_are_the_admins_alone(world: World) -> None:
    body = {"name": "all", "url": "http://127.0.0.1:9/hook", "event_types": ["SCANNING_FAILED"]}
    assert world.call("POST", "/api/v1/webhooks", "maintainer", json=body).status_code == 403
    made = world.call("POST", "/api/v1/webhooks", "admin", json=body)
    assert made.status_code == 201 and made.json()["namespace"] is None
    hook_id = made.json()["id"]
    assert world.call("GET", f"/api/v1/webhooks/{hook_id}", "maintainer").status_code == 404
    assert hook_id not in [h["id"] for h in world.call("GET", "/api/v1/webhooks", "maintainer").json()]
    assert hook_id in [h["id"] for h in world.call("GET", "/api/v1/webhooks", "admin").json()]
