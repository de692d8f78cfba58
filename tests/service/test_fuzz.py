"""The OpenAPI document fuzzed with schemathesis: every operation, called as the admin with generated valid and
invalid input, never answers with a server error, and every error carries the failure catalogue's body.

The app runs in-process (started once, with its executor), seeded with a registry, a namespace, an image and a
user so that generated ids sometimes hit something; schemathesis calls it through ASGI. A bounded number of
examples per operation keeps the run short.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from sqlalchemy import select, update
from starlette.types import Receive, Scope, Send

from hullscan.service.api.app import create_app
from hullscan.service.storage.models import Image, User
from tests.service.conftest import ADMIN, make_settings
from tests.service.world import seed_namespace

pytestmark = pytest.mark.timeout(600)
EXAMPLES = 30
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()}


class Started:
    """The app without its lifespan: the test started the service once, schemathesis must not start it again."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        with app.state.service.db.session() as session:
            self.admin_hash = session.scalars(select(User).where(User.username == ADMIN[0])).one().password_hash

    def restore_admin(self) -> None:
        """Generated calls may reset the admin's password or take its role (another admin having been made): put
        them back, so every call is made by an admin, as the fuzzing means to."""
        with self.app.state.service.db.session() as session:
            session.execute(update(User).where(User.username == ADMIN[0]).values(
                password_hash=self.admin_hash, is_admin=True, disabled=False))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@contextmanager
def seeded_app(tmp: Path, database_url: str | None = None) -> Iterator[Started]:
    app = create_app(make_settings(tmp, database_url or f"sqlite:///{tmp / 'service.db'}"))
    with TestClient(app) as client:
        with app.state.service.db.session() as session:
            ns = seed_namespace(session)  # unreachable: a generated "sync" or "test" fails fast with a cause
            session.add(Image(registry_id=ns.registry_id, namespace_id=ns.id, repository="team/app", reference="1",
                              tag="1", digest="sha256:" + "0" * 64))
        client.post("/api/v1/users", auth=ADMIN, json={"username": "seed", "password": "seed-password-1"})
        yield Started(app)


def fuzz(operation: Any, app: Started, examples: int = EXAMPLES) -> str | None:
    """Call one operation with generated valid and invalid input; what went wrong, if anything."""
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def call(case: Any) -> None:
        response = case.call(app=app, headers=AUTH)
        app.restore_admin()
        assert response.status_code < 500, f"{response.status_code} {response.text[:300]}\n" \
                                           f"reproduce: {case.as_curl_command()}"
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"code", "message", "solution"} and error["solution"], response.text

    try:
        call()
    except Exception as exc:  # noqa: BLE001 - every operation is tried, then all failures are shown
        return f"{type(exc).__name__}: {str(exc)[:800]}"
    return None


def operations(app: Started) -> list[Any]:
    return [result.ok() for result in schemathesis.openapi.from_dict(app.app.openapi()).get_all_operations()]


def test_no_server_errors(tmp_path: Path) -> None:
    with seeded_app(tmp_path) as app:
        found = operations(app)
        assert len(found) > 40
        failures = {op.label: why for op in found if (why := fuzz(op, app)) is not None}
    assert not failures, "\n\n".join(f"{label}: {why}" for label, why in failures.items())


MALFORMED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/registries", {"json": {"name": "x", "type": "distribution", "url": "http://h\x00st"}}),
    ("PUT", "/api/v1/allowlist", {"json": {"allowlist": [{"id": "CVE-\x00", "reason": "nul"}]}}),
    ("POST", "/api/v1/scans", {"json": {"items": ["vuln\x00"], "image_id": 1}}),
    ("GET", "/api/v1/images", {"params": {"repository": "team/\x00"}}),
    ("GET", "/api/v1/scans/-9223372036854775809/diff", {}),
    ("GET", "/api/v1/images/99999999999999999999", {}),
    ("GET", "/api/v1/registries/2147483648", {}),
    # Log-ins are counted in the database (api/throttle.py): a NUL in the name must not reach it either.
    ("POST", "/api/v1/session", {"json": {"username": "ad\x00min", "password": "x"}, "auth": None}),
    ("GET", "/api/v1/users/me", {"auth": ("ad\x00min", "x")}),
]


def test_malformed_values_are_refused_with_a_cause(api: TestClient) -> None:
    """Found by fuzzing: text with a NUL character (PostgreSQL stores none, SQLite did) and ids beyond a database
    integer were server errors or stored; they are the request's fault, answered 4xx with the catalogue's body."""
    for method, path, kwargs in MALFORMED:
        response = api.request(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.text)
        assert set(response.json()["error"]) == {"code", "message", "solution"}
    assert api.get("/api/v1/registries").json() == []  # nothing was stored
