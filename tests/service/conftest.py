"""A running service for API tests: the real app (lifespan, migrations, executor) on SQLite or on a real
PostgreSQL server, with the user admin, and helpers to wait for scans."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hullscan.service.api.app import create_app
from hullscan.service.core import Service
from hullscan.service.passwords import new_token, token_hash
from hullscan.service.storage.models import ApiToken, Image, Namespace, Registry, User
from hullscan.settings import Settings
from hullscan.vulndb.store import build_from_paths
from tests.support.postgres import PostgresServer
from tests.support.registry import RegistryServer, open_registry

ADMIN = ("admin", "correct horse battery staple")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


OSV_EXTRACT = Path(__file__).parent.parent / "vulndb" / "data" / "osv"  # real OSV records (see its PROVENANCE.md)


def make_settings(tmp_path: Path, database_url: str, **kw: Any) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", database_url=database_url,
                        admin_password=ADMIN[1], secret_key="test key", pool_workers=0, **kw)
    if not settings.db_path.exists():
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        build_from_paths(settings.db_path, [OSV_EXTRACT])
    return settings


class TokenAuth(httpx.Auth):
    """`Authorization: Bearer <API token>` (a request's own `auth=` replaces it, `auth=None` drops it)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def admin_token(svc: Service) -> TokenAuth:
    """An API token of the user admin, made in the database: what a script sends (a client over the network in
    these tests acts with one)."""
    token = new_token()
    with svc.db.session() as session:
        admin = session.scalars(select(User).where(User.username == ADMIN[0])).one()
        session.add(ApiToken(user_id=admin.id, name="tests", token_hash=token_hash(token), prefix=token[:8]))
    return TokenAuth(token)


@contextmanager
def running(settings: Settings) -> Iterator[TestClient]:
    """The app started (lifespan: migrations, admin, executor, scheduler) with a client acting as admin with the
    admin's password; `client.app.state.service` is its Service."""
    with TestClient(create_app(settings)) as client:
        client.auth = ADMIN
        yield client


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with running(make_settings(tmp_path, database_url)) as client:
        yield client


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of the test's own: a sync lists what this test pushed and nothing another test left."""
    root = tmp_path / "registry"
    root.mkdir()
    server = open_registry(root)
    try:
        yield server
    finally:
        server.stop()


def until(what: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `what()` until it returns something truthy, or give its last answer (a bound against hanging, not a
    timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def wait_for(client: httpx.Client | TestClient, scan_id: int, states: tuple[str, ...] = ("succeeded", "failed",
                                                                                       "stopped"),
             timeout: float = 120) -> dict[str, Any]:
    """Poll a scan until it reaches one of `states` (a bound against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        scan: dict[str, Any] = client.get(f"/api/v1/scans/{scan_id}").json()
        if scan["state"] in states or time.monotonic() > deadline:
            return scan
        time.sleep(0.1)


def wait_sync(client: httpx.Client | TestClient, registry_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reg: dict[str, Any] = client.get(f"/api/v1/registries/{registry_id}").json()
        if reg["last_sync"]["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return reg
        time.sleep(0.1)


def synced_registry(client: httpx.Client | TestClient, url: str, name: str = "local") -> dict[str, Any]:
    """A registry added (without TLS) and synchronised; its record."""
    reg: dict[str, Any] = client.post("/api/v1/registries", json={"name": name, "type": "distribution", "url": url,
                                                                  "insecure": True}).json()
    client.post(f"/api/v1/registries/{reg['id']}/sync")
    assert wait_sync(client, reg["id"])["last_sync"]["state"] == "succeeded"
    return reg


def scan_repository(client: httpx.Client | TestClient, repository: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first image of `repository` and its manual scan, once finished."""
    image: dict[str, Any] = client.get("/api/v1/images", params={"repository": repository}).json()[0]
    return image, wait_for(client, client.post("/api/v1/scans", json={"image_id": image["id"]}).json()["id"])


def wait_update(client: httpx.Client | TestClient, timeout: float = 120) -> dict[str, Any]:
    """Poll GET /api/v1/database until the vulnerability database update is no longer running."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get("/api/v1/database").json()
        if (status["update"] or {}).get("state") != "running" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


@pytest.fixture
def idle_service(tmp_path: Path, database_url: str) -> Iterator[Service]:
    """A service whose database is ready, with nothing started: the test drives it."""
    service = Service(make_settings(tmp_path, database_url), scheduler=False)
    service.db.migrate()
    try:
        yield service
    finally:
        service.db.close()


def seed_images(service: Service) -> tuple[int, int]:
    """A registry with namespace team (3 present tagged images, one absent, one untagged) and namespace other."""
    with service.db.session() as session:
        registry = Registry(name="r", type="distribution", url="http://127.0.0.1:9")
        session.add(registry)
        session.flush()
        team, other = Namespace(registry_id=registry.id, name="team"), Namespace(registry_id=registry.id, name="other")
        session.add_all([team, other])
        session.flush()
        rows = [("team/a", "1", True), ("team/a", "2", True), ("team/b", "1", True), ("team/b", "old", False),
                ("team/c", None, True), ("other/x", "1", True)]
        for n, (repo, tag, present) in enumerate(rows):
            ns = team if repo.startswith("team/") else other
            session.add(Image(registry_id=registry.id, namespace_id=ns.id, repository=repo, present=present,
                              reference=tag or f"sha256:{n:064d}", tag=tag, digest=f"sha256:{n:064d}"))
        return registry.id, team.id
