"""Users, passwords, API tokens and console sessions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hullscan.service.api.throttle import Attempts, LoginThrottle
from hullscan.service.core import Service
from hullscan.service.storage.db import Database
from hullscan.service.storage.models import LOGIN_NAME_MAX, ApiToken, LoginFailure, LoginSession, User
from tests.service.conftest import ADMIN, make_settings, running
from tests.service.world import seed_namespace

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def with_the_admin_password(api: TestClient) -> None:
    """These tests act as the admin with its password: a token could not make tokens, and would be listed."""
    api.auth = ADMIN


def svc(api: TestClient) -> Service:
    service: Service = api.app.state.service  # type: ignore[attr-defined]
    return service


def make_user(api: TestClient, name: str, password: str, **kw: object) -> int:
    made = api.post("/api/v1/users", json={"username": name, "password": password, **kw})
    assert made.status_code == 201, made.text
    user_id: int = made.json()["id"]
    return user_id


def test_passwords_are_argon2id_and_weak_ones_are_refused(api: TestClient) -> None:
    user_id = make_user(api, "carol", "carol-pass-1")
    with svc(api).db.session() as session:
        stored = session.get(User, user_id)
        assert stored is not None and stored.password_hash.startswith("$argon2id$")
        assert "carol-pass-1" not in stored.password_hash
    for weak, why in (("short", "at least 8"), ("DaveDave", "may not be the username"), ("x" * 1025, "1024")):
        refused = api.post("/api/v1/users", json={"username": "davedave", "password": weak})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "INVALID_REQUEST"
        assert why in refused.json()["error"]["message"]
    assert api.post("/api/v1/users", json={"username": "carol", "password": "another-1"}).status_code == 409
    got = api.get(f"/api/v1/users/{user_id}").json()
    assert "password" not in str(got).replace("password_changed_at", "")


def test_a_changed_password_is_refused_at_once_and_ends_sessions(api: TestClient) -> None:
    make_user(api, "erin", "erin-pass-1")
    old = ("erin", "erin-pass-1")
    assert api.get("/api/v1/users/me", auth=old).status_code == 200  # now remembered by the Basic cache
    login = api.post("/api/v1/session", json={"username": "erin", "password": "erin-pass-1"}, auth=None)
    assert login.status_code == 201
    cookie = login.cookies["hullscan_session"]
    api.cookies.clear()

    wrong = api.put("/api/v1/users/me/password", auth=old,
                    json={"current_password": "nope-nope-1", "new_password": "erin-pass-2"})
    assert wrong.status_code == 403
    changed = api.put("/api/v1/users/me/password", auth=old,
                      json={"current_password": "erin-pass-1", "new_password": "erin-pass-2"})
    assert changed.status_code == 204
    assert api.get("/api/v1/users/me", auth=old).status_code == 401  # not a minute later: now
    assert api.get("/api/v1/users/me", auth=("erin", "erin-pass-2")).status_code == 200
    assert api.get("/api/v1/session", auth=None, headers={"Cookie": f"hullscan_session={cookie}"}).status_code == 401

    # an admin's reset works the same way
    erin = api.get("/api/v1/users", params={"username": "erin"}).json()[0]["id"]
    assert api.put(f"/api/v1/users/{erin}/password", json={"password": "erin-pass-3"}).status_code == 204
    assert api.get("/api/v1/users/me", auth=("erin", "erin-pass-2")).status_code == 401
    assert api.get("/api/v1/users/me", auth=("erin", "erin-pass-3")).json()["password_changed_at"]
    actions = [e["action"] for e in api.get("/api/v1/audit", params={"target": f"user:{erin}"}).json()]
    assert actions == ["user.password", "user.password", "user.create"]


def test_the_last_admin_stays_and_disabled_users_are_locked_out(api: TestClient) -> None:
    me = api.get("/api/v1/users/me").json()
    for change in ({"is_admin": False}, {"disabled": True}):
        refused = api.patch(f"/api/v1/users/{me['id']}", json=change)
        assert refused.status_code == 409 and "last enabled admin" in refused.json()["error"]["message"]
    assert api.delete(f"/api/v1/users/{me['id']}").status_code == 409

    frank = make_user(api, "frank", "frank-pass-1", is_admin=True)
    made = api.post("/api/v1/tokens", json={"name": "frank laptop"}, auth=("frank", "frank-pass-1"))
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert api.patch(f"/api/v1/users/{me['id']}", json={"is_admin": False}, auth=("frank", "frank-pass-1")) \
        .status_code == 200  # another admin exists now
    assert api.patch(f"/api/v1/users/{me['id']}", json={"is_admin": True}, auth=("frank", "frank-pass-1")) \
        .status_code == 200
    assert api.patch(f"/api/v1/users/{frank}", json={"disabled": True}).json()["disabled"] is True
    assert api.get("/api/v1/users/me", auth=("frank", "frank-pass-1")).status_code == 401
    assert api.get("/api/v1/users/me", auth=None, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.post("/api/v1/session", json={"username": "frank", "password": "frank-pass-1"},
                    auth=None).status_code == 401
    assert api.delete(f"/api/v1/users/{frank}").status_code == 204
    assert api.get(f"/api/v1/users/{frank}").status_code == 404


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(api: TestClient) -> None:
    made = api.post("/api/v1/tokens", json={"name": "ci", "expires_at": "2999-01-01T00:00:00Z"})
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("hs_") and token.startswith(made.json()["prefix"])
    bearer = {"Authorization": f"Bearer {token}"}

    listed = api.get("/api/v1/tokens").json()
    assert [(t["name"], t["token"], t["last_used_at"]) for t in listed] == [("ci", None, None)]
    assert token not in api.get(f"/api/v1/tokens/{made.json()['id']}").text
    with svc(api).db.session() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.name, row.prefix, row.token_hash)

    me = api.get("/api/v1/users/me", auth=None, headers=bearer)
    assert me.status_code == 200 and me.json()["username"] == ADMIN[0]
    assert api.get("/api/v1/session", auth=None, headers=bearer).json()["via"] == "token"
    assert api.get("/api/v1/tokens").json()[0]["last_used_at"] is not None
    refused = api.post("/api/v1/tokens", json={"name": "more"}, auth=None, headers=bearer)
    assert refused.status_code == 403 and "cannot create tokens" in refused.json()["error"]["message"]
    assert api.post("/api/v1/tokens", json={"name": "old", "expires_at": "2001-01-01T00:00:00Z"}).status_code == 422
    assert api.post("/api/v1/tokens", json={"name": "naive", "expires_at": "2999-01-01T00:00:00"}).status_code == 422

    with svc(api).db.session() as session:  # the token's time has come
        session.scalars(select(ApiToken)).one().expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert api.get("/api/v1/users/me", auth=None, headers=bearer).status_code == 401
    assert api.get("/api/v1/tokens", params={"expired": True}).json()[0]["name"] == "ci"

    assert api.delete(f"/api/v1/tokens/{made.json()['id']}").status_code == 204
    assert api.get("/api/v1/tokens").json() == []
    audit = [e["action"] for e in api.get("/api/v1/audit", params={"action": "token."}).json()]
    assert audit == ["token.revoke", "token.create"]


def test_console_session_cookie_csrf_and_logout(api: TestClient) -> None:
    make_user(api, "gina", "gina-pass-1")
    bad = api.post("/api/v1/session", json={"username": "gina", "password": "wrong-pass-1"}, auth=None)
    assert bad.status_code == 401
    nobody = api.post("/api/v1/session", json={"username": "ghost", "password": "wrong-pass-1"}, auth=None)
    assert nobody.status_code == 401 and nobody.json() == bad.json()  # no hint whether the user exists

    login = api.post("/api/v1/session", json={"username": "gina", "password": "gina-pass-1"}, auth=None)
    assert login.status_code == 201
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    csrf = login.json()["csrf_token"]
    with svc(api).db.session() as session:
        stored = session.scalars(select(LoginSession)).one()
        assert stored.token_hash == hashlib.sha256(login.cookies["hullscan_session"].encode()).hexdigest()

    assert api.get("/api/v1/users/me", auth=None).json()["username"] == "gina"  # the cookie alone
    assert api.get("/api/v1/session", auth=None).json()["csrf_token"] == csrf
    change = {"current_password": "gina-pass-1", "new_password": "gina-pass-1"}
    no_csrf = api.put("/api/v1/users/me/password", json=change, auth=None)
    assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.json()["error"]["message"]
    forged = api.put("/api/v1/users/me/password", json=change, auth=None, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert api.put("/api/v1/users/me/password", json=change, auth=None,
                   headers={"X-CSRF-Token": csrf}).status_code == 204  # its own session survives the change

    out = api.delete("/api/v1/session", auth=None, headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and "hullscan_session=" in out.headers["set-cookie"]
    api.cookies.clear()
    ended = login.cookies["hullscan_session"]
    assert api.get("/api/v1/users/me", auth=None, headers={"Cookie": f"hullscan_session={ended}"}).status_code == 401


def test_session_cookie_is_secure_over_https(api: TestClient) -> None:
    make_user(api, "hank", "hank-pass-1")
    login = api.post("https://testserver/api/v1/session", json={"username": "hank", "password": "hank-pass-1"},
                     auth=None)
    assert login.status_code == 201 and "Secure" in login.headers["set-cookie"]


def test_memberships_name_existing_namespaces_once(api: TestClient) -> None:
    with svc(api).db.session() as session:
        ns_id = seed_namespace(session).id
    user = make_user(api, "ivan", "ivan-pass-1", memberships=[{"namespace_id": ns_id, "role": "viewer"}])
    assert api.get(f"/api/v1/users/{user}/memberships").json() == [
        {"namespace_id": ns_id, "registry": 1, "namespace": "team", "role": "viewer"}]
    unknown = api.put(f"/api/v1/users/{user}/memberships", json=[{"namespace_id": 999, "role": "viewer"}])
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NAMESPACE_UNKNOWN"
    twice = api.put(f"/api/v1/users/{user}/memberships", json=[{"namespace_id": ns_id, "role": "viewer"},
                                                                {"namespace_id": ns_id, "role": "maintainer"}])
    assert twice.status_code == 422
    promoted = api.patch(f"/api/v1/users/{user}", json={"memberships": [{"namespace_id": ns_id,
                                                                         "role": "maintainer"}]})
    assert promoted.json()["memberships"][0]["role"] == "maintainer"
    assert api.get("/api/v1/users/me", auth=("ivan", "ivan-pass-1")).json()["memberships"][0]["role"] == "maintainer"
    assert api.get("/api/v1/users", params={"namespace_id": ns_id}).json()[0]["username"] == "ivan"


def test_repeated_failed_logins_are_throttled_per_user_name_and_address(api: TestClient) -> None:
    make_user(api, "gina", "gina-pass-1")
    limit = api.app.state.login_throttle.limit  # type: ignore[attr-defined]  # the settings' login_attempts: 10
    for _ in range(limit):
        wrong = api.post("/api/v1/session", json={"username": "gina", "password": "guess-guess"}, auth=None)
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "UNAUTHORIZED"

    # Now even the right password is refused from here, by the session endpoint and by Basic alike, so guessing
    # cannot go on and a right guess is not confirmed.
    for refused in (api.post("/api/v1/session", json={"username": "gina", "password": "gina-pass-1"}, auth=None),
                    api.get("/api/v1/users/me", auth=("gina", "gina-pass-1"))):
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "LOGIN_THROTTLED" and error["solution"]
        assert 0 < int(refused.headers["retry-after"]) <= 900
        assert f"try again in {refused.headers['retry-after']} s" in error["message"]
        assert "gina-pass-1" not in refused.text and "set-cookie" not in refused.headers

    # Someone guessing from one address does not lock the user out elsewhere, nor other users out here.
    elsewhere = TestClient(api.app, client=("203.0.113.9", 40000))
    assert elsewhere.get("/api/v1/users/me", auth=("gina", "gina-pass-1")).json()["username"] == "gina"
    assert api.get("/api/v1/users/me").status_code == 200  # the admin, from the same address

    # The console says the same, with the same status.
    page = api.post("/ui/login", data={"username": "gina", "password": "gina-pass-1"}, auth=None,
                    headers={"Origin": "http://testserver"})
    assert page.status_code == 429 and "too many failed log-ins with this user name" in page.text


def test_basic_auth_reads_the_failed_log_ins_in_the_request_session(api: TestClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Basic authenticates every request: the throttle reads its count in the request's session, and opens one of
    its own only to write, so a failure is kept although its request is refused."""
    make_user(api, "hank", "hank-pass-1")
    db = api.app.state.login_throttle.db  # type: ignore[attr-defined]
    opened: list[str] = []
    session = db.session
    monkeypatch.setattr(db, "session", lambda: opened.append("session") or session())
    for _ in range(3):
        assert api.get("/api/v1/users/me", auth=("hank", "hank-pass-1")).json()["username"] == "hank"
    assert opened == []
    assert api.get("/api/v1/users/me", auth=("hank", "hank-guess")).status_code == 401
    assert opened == ["session"]  # the failure, written
    assert api.get("/api/v1/users/me", auth=("hank", "hank-pass-1")).status_code == 200
    assert opened == ["session", "session"]  # the success after it clears the count
    assert api.get("/api/v1/users/me", auth=("hank", "hank-pass-1")).status_code == 200
    assert len(opened) == 2


def _throttle(database_url: str, limit: int, window: float, clock: list[float]) -> LoginThrottle:
    db = Database(database_url)
    db.migrate()
    return LoginThrottle(db, limit, window, clock=lambda: clock[0])


def test_the_login_throttle_forgets_after_its_window_and_on_success(database_url: str) -> None:
    clock = [1000.0]
    throttle = _throttle(database_url, 3, 60.0, clock)
    try:
        for _ in range(3):
            assert throttle.check("ann", "10.0.0.1").wait is None
            throttle.failed("ann", "10.0.0.1")
            clock[0] += 10
        assert throttle.check("ann", "10.0.0.1").wait == pytest.approx(30.0)  # the first failure: 30 s from expiry
        assert throttle.check("ann", "10.0.0.2").wait is None and throttle.check("bob", "10.0.0.1").wait is None
        clock[0] += 30
        assert throttle.check("ann", "10.0.0.1") == Attempts(2, None)  # only two failures left in the window
        throttle.failed("ann", "10.0.0.1")
        assert throttle.check("ann", "10.0.0.1").wait is not None
        throttle.succeeded("ann", "10.0.0.1")
        assert throttle.check("ann", "10.0.0.1") == Attempts(0, None)
    finally:
        throttle.db.close()


def test_the_login_throttle_keeps_one_window_of_failures(database_url: str) -> None:
    clock = [0.0]
    throttle = _throttle(database_url, 2, 60.0, clock)
    try:
        for i in range(300):
            throttle.failed(f"made-up-{i}" + "x" * 1000, "10.0.0.9")
        with throttle.db.session() as session:
            rows = session.scalars(select(LoginFailure)).all()
            assert len(rows) == 300 and all(len(r.username) == LOGIN_NAME_MAX for r in rows)
        clock[0] += 61  # a window later, the next failure takes the expired ones away
        throttle.failed("real", "10.0.0.1")
        with throttle.db.session() as session:
            assert [(r.username, r.client) for r in session.scalars(select(LoginFailure))] == [("real", "10.0.0.1")]
    finally:
        throttle.db.close()


def test_every_api_process_counts_the_same_failed_logins(tmp_path: Path, database_url: str) -> None:
    # Two services on one database, as two API processes of a fleet behind one balancer.
    with running(make_settings(tmp_path / "a", database_url, login_attempts=4)) as first, \
            running(make_settings(tmp_path / "b", database_url, login_attempts=4)) as second:
        make_user(first, "hana", "hana-pass-1")
        for client in (first, second, first, second):
            wrong = client.post("/api/v1/session", json={"username": "hana", "password": "guess"}, auth=None)
            assert wrong.status_code == 401, wrong.text
        for client in (first, second):
            refused = client.get("/api/v1/users/me", auth=("hana", "hana-pass-1"))
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "LOGIN_THROTTLED"
